/* tensors.c — see tensors.h. */
#include "tensors.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hash.h"

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

/* The slot of name: its entry's, or the empty one where it would go. */
static size_t slot_of(const mc_tensor_list *l, const char *name, uint64_t *probes) {
    const size_t len = strlen(name);
    for (size_t i = mc_hash_bytes((const unsigned char *)name, len) & l->mask;; i = (i + 1) & l->mask) {
        ++*probes;
        if (l->slots[i] < 0 || strcmp(l->v[l->slots[i]].name, name) == 0) return i;
    }
}

/* A table for at least `entries` names, at most half full, with the current entries. */
static int reindex(mc_tensor_list *l, size_t entries) {
    size_t cap = 64;
    while (cap < 2 * entries + 2) cap *= 2;
    int32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) return 0;
    for (size_t i = 0; i < cap; i++) slots[i] = -1;
    free(l->slots);
    l->slots = slots, l->mask = cap - 1;
    for (size_t k = 0; k < l->n; k++) l->slots[slot_of(l, l->v[k].name, &l->probes)] = (int32_t)k;
    return 1;
}

mambac_status mc_tensor_list_add(mc_tensor_list *l, const mc_tensor_entry *e, mambac_error *err) {
    if (l->n >= INT32_MAX / 2) return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: too many tensors", e->file);
    if ((!l->slots || 2 * (l->n + 1) > l->mask + 1) && !reindex(l, 2 * l->n + 64))
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    const size_t slot = slot_of(l, e->name, &l->probes);
    if (l->slots[slot] >= 0) return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' appears twice", e->file, e->name);
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
    l->slots[slot] = (int32_t)l->n++;
    return MAMBAC_OK;
}

const mc_tensor_entry *mc_tensor_list_find(const mc_tensor_list *l, const char *name) {
    if (!l->slots) return NULL;
    uint64_t probes = 0;
    const int32_t k = l->slots[slot_of(l, name, &probes)];
    return k >= 0 ? &l->v[k] : NULL;
}

void mc_tensor_list_truncate(mc_tensor_list *l, size_t n) {
    if (n >= l->n) return;
    while (l->n > n) free(l->v[--l->n].name);
    if (!reindex(l, l->n)) { /* no memory for a new table: clear this one and refill it */
        for (size_t i = 0; i <= l->mask; i++) l->slots[i] = -1;
        for (size_t k = 0; k < l->n; k++) l->slots[slot_of(l, l->v[k].name, &l->probes)] = (int32_t)k;
    }
}

mambac_status mc_tensor_list_reindex(mc_tensor_list *l, mambac_error *err) {
    const size_t n = l->n;
    l->n = 0; /* re-added one by one, so that a duplicate is found */
    if (!reindex(l, n)) {
        l->n = n;
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        const size_t slot = slot_of(l, l->v[k].name, &l->probes);
        if (l->slots[slot] >= 0) {
            l->n = n;
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' appears twice", l->v[k].file, l->v[k].name);
        }
        l->slots[slot] = (int32_t)k;
        l->n = k + 1;
    }
    return MAMBAC_OK;
}

typedef struct span {
    uintptr_t begin, end;
    size_t index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

mambac_status mc_tensor_list_check_overlap(const mc_tensor_list *l, size_t first, const char *path, mambac_error *err) {
    if (l->n <= first + 1) return MAMBAC_OK;
    span *spans = malloc((l->n - first) * sizeof *spans);
    if (!spans) return mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", path);
    size_t n = 0;
    for (size_t i = first; i < l->n; i++)
        if (l->v[i].nbytes) spans[n++] = (span){(uintptr_t)l->v[i].data, (uintptr_t)l->v[i].data + l->v[i].nbytes, i};
    qsort(spans, n, sizeof *spans, span_cmp);
    mambac_status st = MAMBAC_OK;
    /* Sorted by begin: a span overlaps an earlier one iff it starts before the furthest end. */
    for (size_t i = 1, far = 0; i < n && st == MAMBAC_OK; i++) {
        if (spans[i].begin < spans[far].end)
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", path, l->v[spans[far].index].name,
                         l->v[spans[i].index].name);
        if (spans[i].end > spans[far].end) far = i;
    }
    free(spans);
    return st;
}

void mc_tensor_list_free(mc_tensor_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i].name);
    free(l->v);
    free(l->slots);
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
