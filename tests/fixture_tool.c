#define _POSIX_C_SOURCE 200809L
/* fixture_tool.c — lets the CLI test (cli_test.sh) read the reference files:
 *   fixture_tool ids REF [prompt]        input_ids (or the first prompt_len), comma-separated
 *   fixture_tool greedy REF              the reference greedy continuation
 *   fixture_tool compare OUT.npy REF COLS [ROW0]
 *       relative L2 between a (T, V) float32 .npy written by `mambac logits` and the
 *       reference logits rows ROW0.. over the first COLS columns; exit 0 when < 1e-4.
 *   fixture_tool tokcase CASES.jsonl N text|ids|decoded
 *       a field of line N of a tokenizer cases file: text and decoded as raw bytes, ids
 *       comma-separated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "testutil.h"

static int print_ids(const int32_t *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", v[i]);
    printf("\n");
    return 0;
}

/* Minimal .npy reader for what mambac writes: '<f4', C order, 2-D. */
static float *read_npy(const char *path, long long *rows, long long *cols) {
    mc_file f;
    mambac_error err;
    if (mc_file_map(path, &f, &err) != MAMBAC_OK) return NULL;
    float *out = NULL;
    if (f.size >= 10 && memcmp(f.data, "\x93NUMPY\x01\x00", 8) == 0) {
        size_t hl = f.data[8] | (size_t)f.data[9] << 8;
        char *h = strndup((const char *)f.data + 10, hl);
        const char *sh = strstr(h, "'shape': (");
        if (h && strstr(h, "'descr': '<f4'") && strstr(h, "'fortran_order': False") && sh &&
            sscanf(sh, "'shape': (%lld, %lld)", rows, cols) == 2 && 10 + hl + (size_t)(*rows * *cols) * 4 == f.size) {
            out = malloc((size_t)(*rows * *cols) * 4 + 4);
            memcpy(out, f.data + 10 + hl, (size_t)(*rows * *cols) * 4);
        }
        free(h);
    }
    mc_file_unmap(&f);
    return out;
}

static int tokcase(const char *file, int line_no, const char *field) {
    char *text = read_text(file);
    if (!text) return 2;
    char *line = text;
    for (int i = 0; i < line_no && line; i++) line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL;
    if (!line) return 2;
    char *nl = strchr(line, '\n');
    cJSON *c = nl ? cJSON_ParseWithLength(line, (size_t)(nl - line)) : cJSON_Parse(line);
    const cJSON *f = c ? cJSON_GetObjectItem(c, field) : NULL;
    if (cJSON_IsString(f)) fputs(f->valuestring, stdout);
    for (const cJSON *x = cJSON_IsArray(f) ? f->child : NULL; x; x = x->next) printf("%s%d", x == f->child ? "" : ",", x->valueint);
    if (cJSON_IsArray(f)) printf("\n");
    int rc = f ? 0 : 2;
    cJSON_Delete(c);
    free(text);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "tokcase") == 0) return tokcase(argv[2], atoi(argv[3]), argv[4]);
    if (argc < 3) return 2;
    ref_file r;
    const char *refp = strcmp(argv[1], "compare") == 0 ? argv[3] : argv[2];
    if (!ref_open(&r, refp)) return 2;
    int64_t n, np;
    if (strcmp(argv[1], "ids") == 0) {
        int32_t *v = ref_i32(&r, "input_ids", &n), *pl = ref_i32(&r, "prompt_len", &np);
        print_ids(v, argc > 3 ? pl[0] : n);
        free(v), free(pl);
        ref_close(&r);
        return 0;
    }
    if (strcmp(argv[1], "greedy") == 0) {
        int32_t *v = ref_i32(&r, "greedy", &n);
        print_ids(v, n);
        free(v);
        ref_close(&r);
        return 0;
    }
    if (strcmp(argv[1], "compare") == 0 && argc >= 5) {
        long long rows, cols, want_cols = atoll(argv[4]), row0 = argc > 5 ? atoll(argv[5]) : 0;
        int64_t T, RV;
        float *want = ref_f32(&r, "logits", &T, &RV);
        float *got = read_npy(argv[2], &rows, &cols);
        if (!got) {
            printf("%s: not a (T, V) float32 .npy\n", argv[2]);
            return 1;
        }
        if (rows != T - row0 || want_cols > cols || want_cols > RV) {
            printf("%s: shape (%lld, %lld), reference (%lld, %lld) from row %lld\n", argv[2], rows, cols, (long long)T,
                   (long long)RV, row0);
            return 1;
        }
        double e = rel_l2(got, cols, want + row0 * RV, RV, rows, want_cols);
        printf("rel L2 %.3g\n", e);
        free(want), free(got);
        ref_close(&r);
        return e < 1e-4 ? 0 : 1;
    }
    return 2;
}
