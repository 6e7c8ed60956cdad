/* gguf_write.c — streaming GGUF v3 writer (see gguf.h). Metadata and tensor infos are
 * collected in memory (small), the header goes out before the first tensor byte, and
 * tensor data is streamed, each tensor padded to the alignment. Errors are sticky:
 * the add_* calls never fail on their own; mc_gguf_writer_finish reports the first. */
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "io/file.h"
#include "io/gguf.h"

#define ALIGN 32

typedef struct tinfo {
    char *name;
    int ndim;
    int64_t shape[4];
    mambac_dtype t;
    uint64_t bytes, offset;
} tinfo;

struct mc_gguf_writer {
    mc_atomic_file af;
    mambac_error err;
    mambac_status st;
    uint8_t *head;             /* metadata bytes */
    size_t head_len, head_cap;
    uint64_t n_kv;
    tinfo *t;
    size_t n_t, cap_t;
    int header_done;
    size_t cur;                /* tensor being written */
    uint64_t cur_left, written;
};

static void put(mc_gguf_writer *w, const void *p, size_t n) {
    if (w->st != MAMBAC_OK) return;
    if (w->head_len + n > w->head_cap) {
        size_t cap = w->head_cap ? w->head_cap : 4096;
        while (cap < w->head_len + n) cap *= 2;
        uint8_t *nh = realloc(w->head, cap);
        if (!nh) {
            w->st = mc_fail(&w->err, MAMBAC_ERR_NOMEM, "out of memory");
            return;
        }
        w->head = nh;
        w->head_cap = cap;
    }
    memcpy(w->head + w->head_len, p, n);
    w->head_len += n;
}

static void put_u32(mc_gguf_writer *w, uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 4);
}

static void put_u64(mc_gguf_writer *w, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 8);
}

static void put_str(mc_gguf_writer *w, const char *s, size_t n) {
    put_u64(w, n);
    put(w, s, n);
}

static void key(mc_gguf_writer *w, const char *k, uint32_t type) {
    put_str(w, k, strlen(k));
    put_u32(w, type);
    w->n_kv++;
}

mambac_status mc_gguf_writer_open(mc_gguf_writer **out, const char *path, mambac_error *err) {
    mc_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    mambac_status st = mc_atomic_open(&w->af, path, err);
    if (st != MAMBAC_OK) {
        free(w);
        return st;
    }
    *out = w;
    return MAMBAC_OK;
}

void mc_gguf_add_str(mc_gguf_writer *w, const char *k, const char *v) {
    key(w, k, MC_GGUF_STRING);
    put_str(w, v, strlen(v));
}

void mc_gguf_add_u32(mc_gguf_writer *w, const char *k, uint32_t v) {
    key(w, k, MC_GGUF_U32);
    put_u32(w, v);
}

void mc_gguf_add_i32(mc_gguf_writer *w, const char *k, int32_t v) {
    key(w, k, MC_GGUF_I32);
    put_u32(w, (uint32_t)v);
}

void mc_gguf_add_f32(mc_gguf_writer *w, const char *k, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    key(w, k, MC_GGUF_F32);
    put_u32(w, u);
}

void mc_gguf_add_bool(mc_gguf_writer *w, const char *k, int v) {
    uint8_t b = v ? 1 : 0;
    key(w, k, MC_GGUF_BOOL);
    put(w, &b, 1);
}

void mc_gguf_add_str_array(mc_gguf_writer *w, const char *k, const char *const *s, const size_t *len, uint64_t n) {
    key(w, k, MC_GGUF_ARRAY);
    put_u32(w, MC_GGUF_STRING);
    put_u64(w, n);
    for (uint64_t i = 0; i < n; i++) put_str(w, s[i], len[i]);
}

void mc_gguf_add_i32_array(mc_gguf_writer *w, const char *k, const int32_t *v, uint64_t n) {
    key(w, k, MC_GGUF_ARRAY);
    put_u32(w, MC_GGUF_I32);
    put_u64(w, n);
    for (uint64_t i = 0; i < n; i++) put_u32(w, (uint32_t)v[i]);
}

void mc_gguf_add_tensor(mc_gguf_writer *w, const char *name, int ndim, const int64_t *shape, mambac_dtype t) {
    if (w->st != MAMBAC_OK) return;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        tinfo *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) {
            w->st = mc_fail(&w->err, MAMBAC_ERR_NOMEM, "out of memory");
            return;
        }
        w->t = nt;
        w->cap_t = cap;
    }
    tinfo *ti = &w->t[w->n_t];
    memset(ti, 0, sizeof *ti);
    ti->name = strdup(name);
    ti->ndim = ndim;
    ti->t = t;
    uint64_t rows = 1;
    for (int d = 0; d < ndim; d++) {
        ti->shape[d] = shape[d];
        if (d < ndim - 1) rows *= (uint64_t)shape[d];
    }
    ti->bytes = rows * mc_dtype_row_bytes(t, shape[ndim - 1]);
    ti->offset = w->n_t ? (w->t[w->n_t - 1].offset + w->t[w->n_t - 1].bytes + ALIGN - 1) / ALIGN * ALIGN : 0;
    if (!ti->name) w->st = mc_fail(&w->err, MAMBAC_ERR_NOMEM, "out of memory");
    w->n_t++;
}

static void write_out(mc_gguf_writer *w, const void *p, size_t n) {
    if (w->st == MAMBAC_OK) w->st = mc_atomic_write(&w->af, p, n, &w->err);
    w->written += n;
}

static void pad(mc_gguf_writer *w) {
    static const uint8_t zeros[ALIGN];
    const size_t r = (size_t)(w->written % ALIGN);
    if (r) write_out(w, zeros, ALIGN - r);
}

static void write_header(mc_gguf_writer *w) {
    uint8_t *kv = w->head;
    const size_t kv_len = w->head_len;
    w->head = NULL;
    w->head_len = w->head_cap = 0;
    put(w, "GGUF", 4);
    put_u32(w, 3);
    put_u64(w, w->n_t);
    put_u64(w, w->n_kv);
    put(w, kv, kv_len);
    free(kv);
    for (size_t i = 0; i < w->n_t; i++) {
        const tinfo *t = &w->t[i];
        put_str(w, t->name, strlen(t->name));
        put_u32(w, (uint32_t)t->ndim);
        for (int d = t->ndim - 1; d >= 0; d--) put_u64(w, (uint64_t)t->shape[d]); /* ne[0] innermost */
        put_u32(w, mc_dtype_to_ggml(t->t));
        put_u64(w, t->offset);
    }
    write_out(w, w->head, w->head_len);
    pad(w);
    w->written = 0; /* offsets count from the data section */
    w->header_done = 1;
    w->cur_left = w->n_t ? w->t[0].bytes : 0;
}

void mc_gguf_writer_data(mc_gguf_writer *w, const void *data, size_t n) {
    if (!w->header_done) write_header(w);
    const uint8_t *p = data;
    while (n > 0 && w->st == MAMBAC_OK) {
        if (w->cur >= w->n_t) {
            w->st = mc_fail(&w->err, MAMBAC_ERR_INVALID_ARG, "GGUF writer: more tensor data than declared");
            return;
        }
        size_t k = n < w->cur_left ? n : (size_t)w->cur_left;
        write_out(w, p, k);
        p += k;
        n -= k;
        w->cur_left -= k;
        while (w->cur_left == 0 && w->cur < w->n_t) {
            pad(w);
            if (++w->cur < w->n_t) w->cur_left = w->t[w->cur].bytes;
        }
    }
}

mambac_status mc_gguf_writer_finish(mc_gguf_writer *w, int abort, mambac_error *err) {
    if (!w->header_done && w->st == MAMBAC_OK && !abort) write_header(w);
    if (w->st == MAMBAC_OK && !abort && w->cur < w->n_t)
        w->st = mc_fail(&w->err, MAMBAC_ERR_INVALID_ARG, "GGUF writer: tensor '%s' is missing data", w->t[w->cur].name);
    mambac_status st = w->st;
    if (st == MAMBAC_OK && !abort) st = mc_atomic_commit(&w->af, &w->err);
    else mc_atomic_abort(&w->af);
    if (st != MAMBAC_OK && err) *err = w->err;
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w->head);
    free(w);
    return abort && st == MAMBAC_OK ? MAMBAC_ERR_INVALID_ARG : st;
}
