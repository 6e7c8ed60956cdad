/* safetensors_write.c — see safetensors_write.h. */
#include "io/safetensors_write.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"

uint64_t mc_st_decl_bytes(const mc_st_decl *d) {
    uint64_t n = mc_dtype_size(d->dtype);
    for (int i = 0; i < d->ndim; i++) n *= (uint64_t)d->shape[i];
    return n;
}

mambac_status mc_st_writer_open(mc_st_writer *w, const char *path, const mc_st_decl *decls, size_t n, mambac_error *err) {
    static const char *names[] = {"F32", "F16", "BF16"};
    memset(w, 0, sizeof *w);
    cJSON *root = cJSON_CreateObject();
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, decls[i].name), *shape = cJSON_AddArrayToObject(t, "shape");
        cJSON *offs = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddStringToObject(t, "dtype", names[decls[i].dtype]);
        for (int d = 0; d < decls[i].ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)decls[i].shape[d]));
        uint64_t b = mc_st_decl_bytes(&decls[i]);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + b)));
        off += b;
    }
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    size_t hl = strlen(text), padded = (hl + 7) / 8 * 8; /* data starts 8-byte aligned */
    char *head = malloc(padded + 8);
    if (!head) {
        free(text);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < 8; i++) head[i] = (char)((uint64_t)padded >> (8 * i));
    memcpy(head + 8, text, hl);
    memset(head + 8 + hl, ' ', padded - hl);
    free(text);
    mambac_status st = mc_atomic_open(&w->af, path, err);
    if (st == MAMBAC_OK && (st = mc_atomic_write(&w->af, head, padded + 8, err)) != MAMBAC_OK) mc_atomic_abort(&w->af);
    free(head);
    if (st != MAMBAC_OK) return st;
    w->decls = decls;
    w->n = n;
    w->left = n ? mc_st_decl_bytes(&decls[0]) : 0;
    return MAMBAC_OK;
}

mambac_status mc_st_writer_put(mc_st_writer *w, const float *v, size_t count, mambac_error *err) {
    unsigned char buf[8192];
    while (count > 0) {
        while (w->next < w->n && w->left == 0) {
            w->next++;
            if (w->next < w->n) w->left = mc_st_decl_bytes(&w->decls[w->next]);
        }
        if (w->next >= w->n) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "safetensors writer: more data than declared");
        const mambac_dtype dt = w->decls[w->next].dtype;
        const size_t es = mc_dtype_size(dt);
        size_t k = sizeof buf / 4;
        if (k > count) k = count;
        if ((uint64_t)k * es > w->left) k = (size_t)(w->left / es);
        for (size_t i = 0; i < k; i++) {
            if (dt == MAMBAC_DTYPE_F32) memcpy(buf + 4 * i, &v[i], 4);
            else {
                uint16_t h = dt == MAMBAC_DTYPE_BF16 ? mc_f32_to_bf16(v[i]) : mc_f32_to_f16(v[i]);
                memcpy(buf + 2 * i, &h, 2);
            }
        }
        mambac_status st = mc_atomic_write(&w->af, buf, k * es, err);
        if (st != MAMBAC_OK) return st;
        w->left -= k * es;
        v += k;
        count -= k;
    }
    return MAMBAC_OK;
}

mambac_status mc_st_writer_close(mc_st_writer *w, mambac_error *err) {
    while (w->next < w->n && w->left == 0) {
        w->next++;
        if (w->next < w->n) w->left = mc_st_decl_bytes(&w->decls[w->next]);
    }
    if (w->next < w->n) {
        mc_atomic_abort(&w->af);
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "safetensors writer: tensor '%s' incomplete", w->decls[w->next].name);
    }
    return mc_atomic_commit(&w->af, err);
}

void mc_st_writer_abort(mc_st_writer *w) { mc_atomic_abort(&w->af); }
