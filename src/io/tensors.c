/* tensors.c — see tensors.h. */
#include "tensors.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

size_t mc_elem_size(mc_elem e) {
    switch (e) {
    case MC_ELEM_F64: case MC_ELEM_I64: case MC_ELEM_U64: return 8;
    case MC_ELEM_F32: case MC_ELEM_I32: case MC_ELEM_U32: return 4;
    case MC_ELEM_F16: case MC_ELEM_BF16: case MC_ELEM_I16: case MC_ELEM_U16: return 2;
    case MC_ELEM_I8: case MC_ELEM_U8: case MC_ELEM_BOOL: return 1;
    case MC_ELEM_Q8_0: case MC_ELEM_Q4_0: case MC_ELEM_Q4_K: case MC_ELEM_Q5_0: case MC_ELEM_Q6_K: return 0;
    }
    return 0;
}

const char *mc_elem_name(mc_elem e) {
    static const char *names[] = {"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64", "U8",
                                  "U16", "U32", "U64", "BOOL", "Q8_0", "Q4_0", "Q4_K", "Q5_0", "Q6_K"};
    return (unsigned)e < sizeof names / sizeof names[0] ? names[e] : "?";
}

int mc_elem_to_dtype(mc_elem e, mambac_dtype *out) {
    switch (e) {
    case MC_ELEM_F32: *out = MAMBAC_DTYPE_F32; return 1;
    case MC_ELEM_F16: *out = MAMBAC_DTYPE_F16; return 1;
    case MC_ELEM_BF16: *out = MAMBAC_DTYPE_BF16; return 1;
    case MC_ELEM_Q8_0: *out = MAMBAC_DTYPE_Q8_0; return 1;
    case MC_ELEM_Q4_0: *out = MAMBAC_DTYPE_Q4_0; return 1;
    case MC_ELEM_Q4_K: *out = MAMBAC_DTYPE_Q4_K; return 1;
    case MC_ELEM_Q5_0: *out = MAMBAC_DTYPE_Q5_0; return 1;
    case MC_ELEM_Q6_K: *out = MAMBAC_DTYPE_Q6_K; return 1;
    default: return 0;
    }
}

mambac_status mc_tensor_list_add(mc_tensor_list *l, const mc_tensor_entry *e, mambac_error *err) {
    if (mc_tensor_list_find(l, e->name))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' appears twice", e->file, e->name);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        mc_tensor_entry *v = realloc(l->v, cap * sizeof *v);
        if (!v) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    mc_tensor_entry *d = &l->v[l->n];
    *d = *e;
    d->name = strdup(e->name);
    if (!d->name) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    l->n++;
    return MAMBAC_OK;
}

const mc_tensor_entry *mc_tensor_list_find(const mc_tensor_list *l, const char *name) {
    /* Linear: checkpoints hold hundreds of tensors and lookups happen once at load. */
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0) return &l->v[i];
    return NULL;
}

void mc_tensor_list_free(mc_tensor_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int mc_shape_numel(const int64_t *shape, int ndim, uint64_t limit, uint64_t *out) {
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return 0;
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && n > limit / d) return 0;
        n *= d;
    }
    *out = n;
    return 1;
}
