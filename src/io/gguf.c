/* gguf.c — GGUF parsing (see gguf.h). Everything read from the file goes through the
 * bounds-checked cursor below; a failure names the file, what was being read and the
 * byte offset. */
#include "io/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/strset.h"

#define MAX_KEY 65535
#define MAX_NAME 512
#define MAX_DIMS 4

typedef struct cursor {
    const uint8_t *base;
    size_t size, pos;
    const char *path;
    mambac_error *err;
    mambac_status st;
} cursor;

static int fail(cursor *c, const char *what) {
    if (c->st == MAMBAC_OK)
        c->st = mc_fail(c->err, MAMBAC_ERR_FORMAT, "%s: malformed GGUF: %s at byte %zu", c->path, what, c->pos);
    return 0;
}

static int take(cursor *c, size_t n, const uint8_t **p, const char *what) {
    if (c->st != MAMBAC_OK) return 0;
    if (n > c->size - c->pos) return fail(c, what);
    *p = c->base + c->pos;
    c->pos += n;
    return 1;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int u32(cursor *c, uint32_t *v, const char *what) {
    const uint8_t *p;
    if (!take(c, 4, &p, what)) return 0;
    *v = (uint32_t)rd_le(p, 4);
    return 1;
}

static int u64(cursor *c, uint64_t *v, const char *what) {
    const uint8_t *p;
    if (!take(c, 8, &p, what)) return 0;
    *v = rd_le(p, 8);
    return 1;
}

static int str(cursor *c, const char **s, uint64_t *len, uint64_t max, const char *what) {
    const uint8_t *p;
    if (!u64(c, len, what)) return 0;
    if (*len > max) return fail(c, what);
    if (!take(c, (size_t)*len, &p, what)) return 0;
    *s = (const char *)p;
    return 1;
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case MC_GGUF_U8: case MC_GGUF_I8: case MC_GGUF_BOOL: return 1;
    case MC_GGUF_U16: case MC_GGUF_I16: return 2;
    case MC_GGUF_U32: case MC_GGUF_I32: case MC_GGUF_F32: return 4;
    case MC_GGUF_U64: case MC_GGUF_I64: case MC_GGUF_F64: return 8;
    }
    return 0;
}

/* Skips one value of type t (not an array), checking it fits. */
static int skip_value(cursor *c, uint32_t t) {
    const uint8_t *p;
    if (t == MC_GGUF_STRING) {
        const char *s;
        uint64_t len;
        return str(c, &s, &len, UINT64_MAX, "string value");
    }
    size_t n = scalar_size(t);
    if (!n) return fail(c, "unknown value type");
    return take(c, n, &p, "value");
}

int mc_ggml_to_dtype(uint32_t g, mambac_dtype *out) {
    switch (g) {
    case MC_GGML_F32: *out = MAMBAC_DTYPE_F32; return 1;
    case MC_GGML_F16: *out = MAMBAC_DTYPE_F16; return 1;
    case MC_GGML_BF16: *out = MAMBAC_DTYPE_BF16; return 1;
    case MC_GGML_Q8_0: *out = MAMBAC_DTYPE_Q8_0; return 1;
    case MC_GGML_Q4_0: *out = MAMBAC_DTYPE_Q4_0; return 1;
    case MC_GGML_Q4_K: *out = MAMBAC_DTYPE_Q4_K; return 1;
    case MC_GGML_Q5_0: *out = MAMBAC_DTYPE_Q5_0; return 1;
    case MC_GGML_Q6_K: *out = MAMBAC_DTYPE_Q6_K; return 1;
    }
    return 0;
}

uint32_t mc_dtype_to_ggml(mambac_dtype t) {
    static const uint32_t map[] = {MC_GGML_F32, MC_GGML_F16, MC_GGML_BF16, MC_GGML_Q8_0,
                                   MC_GGML_Q4_0, MC_GGML_Q4_K, MC_GGML_Q5_0, MC_GGML_Q6_K};
    return (unsigned)t < sizeof map / sizeof map[0] ? map[t] : UINT32_MAX;
}

static mc_elem dtype_elem(mambac_dtype t) {
    static const mc_elem map[] = {MC_ELEM_F32, MC_ELEM_F16, MC_ELEM_BF16, MC_ELEM_Q8_0,
                                  MC_ELEM_Q4_0, MC_ELEM_Q4_K, MC_ELEM_Q5_0, MC_ELEM_Q6_K};
    return map[t];
}

static const char *ggml_type_name(uint32_t g) {
    static const char *names[] = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
                                  "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS",
                                  "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64",
                                  "IQ1_M", "BF16"};
    return g < sizeof names / sizeof names[0] ? names[g] : "unknown";
}

static mambac_status parse_kv(cursor *c, mc_gguf *g, uint64_t n_kv) {
    size_t cap = 0;
    for (uint64_t i = 0; i < n_kv && c->st == MAMBAC_OK; i++) {
        if (g->n_kv == cap) { /* grown as entries are read: a lying count fails at EOF first */
            cap = cap ? 2 * cap : 32;
            mc_gguf_kv *nv = realloc(g->kv, cap * sizeof *nv);
            if (!nv) return c->st = mc_fail(c->err, MAMBAC_ERR_NOMEM, "out of memory");
            g->kv = nv;
        }
        const char *key;
        uint64_t klen;
        uint32_t type;
        if (!str(c, &key, &klen, MAX_KEY, "metadata key") || !u32(c, &type, "metadata value type")) break;
        mc_gguf_kv *kv = &g->kv[g->n_kv];
        memset(kv, 0, sizeof *kv);
        kv->key = malloc(klen + 1);
        if (!kv->key) return c->st = mc_fail(c->err, MAMBAC_ERR_NOMEM, "out of memory");
        memcpy(kv->key, key, klen);
        kv->key[klen] = 0;
        g->n_kv++;
        if (strlen(kv->key) != klen || klen == 0) return fail(c, "metadata key empty or with a NUL byte"), c->st;
        kv->type = type;
        kv->n = 1;
        if (type == MC_GGUF_ARRAY) {
            if (!u32(c, &kv->arr_type, "array element type") || !u64(c, &kv->n, "array length")) break;
            if (kv->arr_type == MC_GGUF_ARRAY) return fail(c, "nested arrays are not supported"), c->st;
            kv->data = c->base + c->pos;
            const size_t es = scalar_size(kv->arr_type);
            if (kv->arr_type != MC_GGUF_STRING && !es) return fail(c, "unknown array element type"), c->st;
            if (es) { /* fixed-size elements: one bounds check */
                const uint8_t *p;
                if (kv->n > (c->size - c->pos) / es) return fail(c, "array past the end of the file"), c->st;
                take(c, (size_t)kv->n * es, &p, "array");
            } else {
                for (uint64_t k = 0; k < kv->n && c->st == MAMBAC_OK; k++) skip_value(c, MC_GGUF_STRING);
            }
        } else {
            kv->data = c->base + c->pos;
            skip_value(c, type);
        }
    }
    if (c->st != MAMBAC_OK) return c->st;
    /* every key once: a set of the keys read (sized by them, not by the file's count) */
    mc_strset keys;
    if (!mc_strset_init(&keys, g->n_kv)) return c->st = mc_fail(c->err, MAMBAC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_kv && c->st == MAMBAC_OK; i++)
        if (!mc_strset_add(&keys, g->kv[i].key, strlen(g->kv[i].key)))
            c->st = mc_fail(c->err, MAMBAC_ERR_FORMAT, "%s: malformed GGUF: metadata key '%s' appears twice", c->path,
                            g->kv[i].key);
    mc_strset_free(&keys);
    return c->st;
}

static mambac_status parse_tensors(cursor *c, mc_gguf *g, uint64_t n_tensors, mc_tensor_list *out) {
    const size_t base = out->n;
    uint64_t *offs = NULL;
    size_t cap = 0;
    for (uint64_t i = 0; i < n_tensors && c->st == MAMBAC_OK; i++) {
        if (i == cap) { /* grown as infos are read, as for the metadata */
            cap = cap ? 2 * cap : 256;
            uint64_t *no = realloc(offs, cap * sizeof *no);
            if (!no) {
                c->st = mc_fail(c->err, MAMBAC_ERR_NOMEM, "out of memory");
                break;
            }
            offs = no;
        }
        const char *name;
        uint64_t nlen, ne[MAX_DIMS];
        uint32_t nd, type;
        char nm[MAX_NAME + 1];
        if (!str(c, &name, &nlen, MAX_NAME, "tensor name") || !u32(c, &nd, "tensor dimension count")) break;
        memcpy(nm, name, nlen);
        nm[nlen] = 0;
        if (strlen(nm) != nlen || nlen == 0) {
            fail(c, "tensor name empty or with a NUL byte");
            break;
        }
        if (nd < 1 || nd > MAX_DIMS) {
            c->st = mc_fail(c->err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (1 to 4 allowed)", c->path, nm, nd);
            break;
        }
        for (uint32_t d = 0; d < nd; d++) u64(c, &ne[d], "tensor dimension");
        if (!u32(c, &type, "tensor type") || !u64(c, &offs[i], "tensor offset")) break;
        mambac_dtype dt;
        if (!mc_ggml_to_dtype(type, &dt)) {
            c->st = mc_fail(c->err, MAMBAC_ERR_UNSUPPORTED,
                            "%s: tensor '%s' has ggml type %u (%s); mambac reads F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K and Q6_K",
                            c->path, nm, type, ggml_type_name(type));
            break;
        }
        mc_tensor_entry e = {.name = nm, .elem = dtype_elem(dt), .ndim = (int)nd, .file = c->path};
        for (uint32_t d = 0; d < nd && c->st == MAMBAC_OK; d++) {
            if (ne[d] == 0 || ne[d] > ((uint64_t)1 << 40))
                c->st = mc_fail(c->err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has dimension %u of size %llu", c->path, nm, d,
                                (unsigned long long)ne[d]);
            e.shape[nd - 1 - d] = (int64_t)ne[d];
        }
        uint64_t numel;
        if (c->st != MAMBAC_OK) break;
        if (!mc_shape_numel(e.shape, e.ndim, (uint64_t)1 << 40, &numel)) {
            c->st = mc_fail(c->err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' is too large", c->path, nm);
            break;
        }
        if (ne[0] % (uint64_t)mc_dtype_block(dt)) {
            c->st = mc_fail(c->err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has rows of %llu values, not a multiple of the %s block (%lld)",
                            c->path, nm, (unsigned long long)ne[0], mambac_dtype_name(dt), (long long)mc_dtype_block(dt));
            break;
        }
        e.nbytes = mc_dtype_row_bytes(dt, (int64_t)ne[0]) * (size_t)(numel / ne[0]);
        c->st = mc_tensor_list_add(out, &e, c->err);
    }
    /* Data section: after the infos, aligned. */
    const uint64_t a = g->alignment, start = (c->pos + a - 1) / a * a;
    for (uint64_t i = 0; i < n_tensors && c->st == MAMBAC_OK; i++) {
        mc_tensor_entry *e = &out->v[base + i];
        if (offs[i] % a)
            c->st = mc_fail(c->err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' offset %llu is not a multiple of the alignment %llu",
                            c->path, e->name, (unsigned long long)offs[i], (unsigned long long)a);
        else if (start > c->size || offs[i] > c->size - start || e->nbytes > c->size - start - offs[i])
            c->st = mc_fail(c->err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' data (%zu bytes at offset %llu) lies past the end of the file",
                            c->path, e->name, e->nbytes, (unsigned long long)offs[i]);
        else
            e->data = c->base + start + offs[i];
    }
    free(offs);
    if (c->st == MAMBAC_OK) c->st = mc_tensor_list_check_overlap(out, base, c->path, c->err);
    return c->st;
}

mambac_status mc_gguf_parse(const void *data, size_t size, const char *path, mc_gguf *g, mc_tensor_list *tensors,
                            mambac_error *err) {
    memset(g, 0, sizeof *g);
    cursor c = {data, size, 0, path, err, MAMBAC_OK};
    const uint8_t *magic;
    uint64_t n_tensors = 0, n_kv = 0;
    if (!data || !take(&c, 4, &magic, "magic") || memcmp(magic, "GGUF", 4) != 0) {
        c.pos = 0;
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: not a GGUF file (no GGUF magic)", path);
    }
    if (!u32(&c, &g->version, "version")) return c.st;
    if (g->version != 2 && g->version != 3)
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: GGUF version %u (mambac reads versions 2 and 3)", path, g->version);
    if (!u64(&c, &n_tensors, "tensor count") || !u64(&c, &n_kv, "metadata count")) return c.st;
    /* Each entry takes at least 8 (key/name length) + 4 bytes: counts beyond that are lies. */
    if (n_kv > size / 12 || n_tensors > size / 12)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: malformed GGUF: %llu tensors / %llu metadata entries cannot fit in %zu bytes",
                       path, (unsigned long long)n_tensors, (unsigned long long)n_kv, size);
    if (parse_kv(&c, g, n_kv) != MAMBAC_OK) return c.st != MAMBAC_OK ? c.st : MAMBAC_ERR_FORMAT;
    g->alignment = 32;
    const mc_gguf_kv *al = mc_gguf_find(g, "general.alignment");
    if (al) {
        int64_t a;
        if (!mc_gguf_get_int(g, "general.alignment", &a) || a <= 0 || a > 65536 || (a & (a - 1)))
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: general.alignment must be a power of two up to 65536", path);
        g->alignment = (uint64_t)a;
    }
    return parse_tensors(&c, g, n_tensors, tensors);
}

void mc_gguf_free(mc_gguf *g) {
    for (size_t i = 0; i < g->n_kv; i++) free(g->kv[i].key);
    free(g->kv);
    memset(g, 0, sizeof *g);
}

const mc_gguf_kv *mc_gguf_find(const mc_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

static double num_at(uint32_t t, const uint8_t *p, int *ok) {
    int64_t i;
    double d;
    float f;
    *ok = 1;
    switch (t) {
    case MC_GGUF_U8: case MC_GGUF_BOOL: return p[0];
    case MC_GGUF_I8: return (int8_t)p[0];
    case MC_GGUF_U16: return (double)rd_le(p, 2);
    case MC_GGUF_I16: return (int16_t)rd_le(p, 2);
    case MC_GGUF_U32: return (double)rd_le(p, 4);
    case MC_GGUF_I32: return (int32_t)rd_le(p, 4);
    case MC_GGUF_U64: return (double)rd_le(p, 8);
    case MC_GGUF_I64: i = (int64_t)rd_le(p, 8); return (double)i;
    case MC_GGUF_F32: memcpy(&f, p, 4); return f;
    case MC_GGUF_F64: memcpy(&d, p, 8); return d;
    }
    *ok = 0;
    return 0;
}

int mc_gguf_get_int(const mc_gguf *g, const char *key, int64_t *out) {
    const mc_gguf_kv *kv = mc_gguf_find(g, key);
    if (!kv || kv->type == MC_GGUF_F32 || kv->type == MC_GGUF_F64 || kv->type == MC_GGUF_ARRAY) return 0;
    int ok;
    double v = num_at(kv->type, kv->data, &ok);
    if (!ok || v < -9e15 || v > 9e15) return 0;
    *out = (int64_t)v;
    return 1;
}

int mc_gguf_get_float(const mc_gguf *g, const char *key, double *out) {
    const mc_gguf_kv *kv = mc_gguf_find(g, key);
    if (!kv || (kv->type != MC_GGUF_F32 && kv->type != MC_GGUF_F64)) return 0;
    int ok;
    *out = num_at(kv->type, kv->data, &ok);
    return ok;
}

int mc_gguf_get_str(const mc_gguf *g, const char *key, const char **s, size_t *len) {
    const mc_gguf_kv *kv = mc_gguf_find(g, key);
    if (!kv || kv->type != MC_GGUF_STRING) return 0;
    mc_gguf_next_str(&(const uint8_t *){kv->data}, s, len);
    return 1;
}

void mc_gguf_next_str(const uint8_t **cursor_p, const char **s, size_t *len) {
    *len = (size_t)rd_le(*cursor_p, 8);
    *s = (const char *)*cursor_p + 8;
    *cursor_p += 8 + *len;
}

double mc_gguf_arr_num(const mc_gguf_kv *kv, uint64_t i) {
    int ok;
    return num_at(kv->arr_type, kv->data + i * scalar_size(kv->arr_type), &ok);
}
