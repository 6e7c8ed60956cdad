/* testutil.c — see testutil.h. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "io/safetensors.h"

int ref_open(ref_file *r, const char *path) {
    memset(r, 0, sizeof *r);
    mambac_error err;
    if (mc_file_map(path, &r->file, &err) != MAMBAC_OK ||
        mc_safetensors_parse(r->file.data, r->file.size, path, &r->tensors, &err) != MAMBAC_OK) {
        printf("cannot read reference %s: %s\n", path, err.msg);
        return 0;
    }
    return 1;
}

void ref_close(ref_file *r) {
    mc_tensor_list_free(&r->tensors);
    mc_file_unmap(&r->file);
}

float *ref_f32(const ref_file *r, const char *name, int64_t *s0, int64_t *s1) {
    const mc_tensor_entry *e = mc_tensor_list_find(&r->tensors, name);
    mambac_dtype dt;
    if (!e || !mc_elem_to_dtype(e->elem, &dt)) return NULL;
    size_t n = e->nbytes / mc_elem_size(e->elem);
    float *v = malloc((n ? n : 1) * sizeof(float));
    mc_convert_to_f32(v, e->data, dt, n);
    if (s0) *s0 = e->ndim > 0 ? e->shape[0] : 1;
    if (s1) *s1 = e->ndim > 1 ? e->shape[1] : 1;
    return v;
}

int32_t *ref_i32(const ref_file *r, const char *name, int64_t *n) {
    const mc_tensor_entry *e = mc_tensor_list_find(&r->tensors, name);
    if (!e || e->elem != MC_ELEM_I32) return NULL;
    *n = (int64_t)(e->nbytes / 4);
    int32_t *v = malloc(e->nbytes + 4);
    memcpy(v, e->data, e->nbytes);
    return v;
}

double rel_l2(const float *a, int64_t as, const float *b, int64_t bs, int64_t rows, int64_t cols) {
    double num = 0, den = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double d = (double)a[r * as + c] - b[r * bs + c];
            num += d * d;
            den += (double)b[r * bs + c] * b[r * bs + c];
        }
    if (isnan(num)) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

char *make_temp_dir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/mambac-test-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

char *path_in(const char *dir, const char *name) { return mc_path_join(dir, name); }
