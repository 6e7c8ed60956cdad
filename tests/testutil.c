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

int remove_temp_dir(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0;
}

int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = n == 0 || fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

char *path_in(const char *dir, const char *name) { return mc_path_join(dir, name); }

int write_raw_safetensors(const char *path, uint64_t header_len, const char *header, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(header_len >> (8 * i));
    int ok = fwrite(len, 1, 8, f) == 8 && fwrite(header, 1, strlen(header), f) == strlen(header) &&
             (n == 0 || fwrite(data, 1, n, f) == n);
    return fclose(f) == 0 && ok;
}

int write_safetensors(const char *path, const st_tensor *t, size_t n) {
    size_t cap = 256 + n * 256, k = 0, off = 0, total = 0;
    char *h = malloc(cap);
    k += (size_t)snprintf(h + k, cap - k, "{");
    for (size_t i = 0; i < n; i++) {
        k += (size_t)snprintf(h + k, cap - k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) k += (size_t)snprintf(h + k, cap - k, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        k += (size_t)snprintf(h + k, cap - k, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].nbytes);
        off += t[i].nbytes;
    }
    k += (size_t)snprintf(h + k, cap - k, "}");
    while (k % 8) h[k++] = ' ';
    h[k] = 0;
    total = off;
    unsigned char *data = malloc(total + 1);
    off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(data + off, t[i].data, t[i].nbytes);
        off += t[i].nbytes;
    }
    int ok = write_raw_safetensors(path, k, h, data, total);
    free(h);
    free(data);
    return ok;
}

static void le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int write_zip(const char *path, const zip_item *items, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    uint64_t *offs = calloc(n + 1, sizeof *offs), pos = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char h[30] = {0};
        size_t nl = strlen(items[i].name);
        le(h, 0x04034b50u, 4);
        le(h + 4, 20, 2);
        le(h + 18, items[i].size, 4);
        le(h + 22, items[i].size, 4);
        le(h + 26, nl, 2);
        offs[i] = pos;
        ok &= fwrite(h, 1, 30, f) == 30 && fwrite(items[i].name, 1, nl, f) == nl &&
              (items[i].size == 0 || fwrite(items[i].data, 1, items[i].size, f) == items[i].size);
        pos += 30 + nl + items[i].size;
    }
    uint64_t cd = pos;
    for (size_t i = 0; i < n; i++) {
        unsigned char h[46] = {0};
        size_t nl = strlen(items[i].name);
        le(h, 0x02014b50u, 4);
        le(h + 4, 20, 2);
        le(h + 6, 20, 2);
        le(h + 20, items[i].size, 4);
        le(h + 24, items[i].size, 4);
        le(h + 28, nl, 2);
        le(h + 42, offs[i], 4);
        ok &= fwrite(h, 1, 46, f) == 46 && fwrite(items[i].name, 1, nl, f) == nl;
        pos += 46 + nl;
    }
    unsigned char e[22] = {0};
    le(e, 0x06054b50u, 4);
    le(e + 8, n, 2);
    le(e + 10, n, 2);
    le(e + 12, pos - cd, 4);
    le(e + 16, cd, 4);
    ok &= fwrite(e, 1, 22, f) == 22;
    free(offs);
    return fclose(f) == 0 && ok;
}

#include <dirent.h>
#include <sys/stat.h>

int copy_dir_files(const char *src, const char *dst) {
    DIR *d = opendir(src);
    if (!d) return 0;
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d))) {
        char *s = path_in(src, e->d_name), *t = path_in(dst, e->d_name);
        struct stat sb;
        if (stat(s, &sb) == 0 && S_ISREG(sb.st_mode)) {
            mc_file f;
            mambac_error err;
            ok &= mc_file_map(s, &f, &err) == MAMBAC_OK && write_file(t, f.data, f.size);
            mc_file_unmap(&f);
        }
        free(s);
        free(t);
    }
    closedir(d);
    return ok;
}

char *read_text(const char *path) {
    char *t = NULL;
    size_t n;
    mambac_error err;
    return mc_file_read_all(path, 1u << 26, &t, &n, &err) == MAMBAC_OK ? t : NULL;
}

char *replace_once(const char *s, const char *from, const char *to) {
    const char *at = strstr(s, from);
    if (!at) return strdup(s);
    size_t a = (size_t)(at - s), fl = strlen(from), tl = strlen(to), sl = strlen(s);
    char *r = malloc(sl - fl + tl + 1);
    memcpy(r, s, a);
    memcpy(r + a, to, tl);
    memcpy(r + a + tl, at + fl, sl - a - fl + 1);
    return r;
}

char *json_set_field(const char *text, const char *key, const char *value) {
    char pat[256];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *k = strstr(text, pat);
    if (!k) return NULL;
    const char *v = strchr(k + strlen(pat), ':');
    if (!v) return NULL;
    v++;
    while (*v == ' ' || *v == '\n') v++;
    const char *end = v;
    if (*v == '[' || *v == '{') {
        int depth = 0, in_str = 0;
        for (; *end; end++) {
            if (in_str) { if (*end == '\\') end++; else if (*end == '"') in_str = 0; continue; }
            if (*end == '"') in_str = 1;
            else if (*end == '[' || *end == '{') depth++;
            else if ((*end == ']' || *end == '}') && --depth == 0) { end++; break; }
        }
    } else if (*v == '"') {
        for (end = v + 1; *end && *end != '"'; end++) if (*end == '\\') end++;
        if (*end) end++;
    } else {
        while (*end && *end != ',' && *end != '}' && *end != '\n') end++;
    }
    size_t a = (size_t)(v - text), vl = strlen(value);
    char *r = malloc(strlen(text) + vl + 1);
    memcpy(r, text, a);
    memcpy(r + a, value, vl);
    strcpy(r + a + vl, end);
    return r;
}

int st_model_open(st_model *m, const char *path) {
    memset(m, 0, sizeof *m);
    if (!ref_open(&m->ref, path)) return 0;
    m->n = m->ref.tensors.n;
    m->t = calloc(m->n + 4, sizeof *m->t); /* room for tests to append */
    for (size_t i = 0; i < m->n; i++) {
        const mc_tensor_entry *e = &m->ref.tensors.v[i];
        st_tensor *t = &m->t[i];
        t->name = e->name;
        t->dtype = mc_elem_name(e->elem);
        t->ndim = e->ndim;
        for (int d = 0; d < e->ndim && d < 4; d++) t->shape[d] = e->shape[d];
        t->data = e->data;
        t->nbytes = e->nbytes;
    }
    return 1;
}

void st_model_close(st_model *m) {
    free(m->t);
    ref_close(&m->ref);
}

const char *test_backend(void) {
    const char *b = getenv("MAMBAC_TEST_BACKEND");
    return b && *b ? b : NULL;
}

int test_backend_is_cpu(void) {
    const char *b = test_backend();
    return !b || strcmp(b, "cpu") == 0;
}

mambac_status test_model_load(const char *path, int32_t repack, mambac_model **out, mambac_error *err) {
    mambac_model_params p = mambac_model_default_params();
    p.backend = test_backend();
    p.precision = getenv("MAMBAC_TEST_PRECISION");
    p.repack = repack;
    return mambac_model_load_ex(path, &p, out, err);
}
