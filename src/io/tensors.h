/* tensors.h — a flat list of named tensors found in checkpoint files, independent of
 * the file format they came from (safetensors, PyTorch zip). Data pointers point into
 * mapped files that the caller keeps alive. */
#ifndef MC_TENSORS_H
#define MC_TENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "mambac.h"

#define MC_MAX_DIMS 8

/* Element types a file may declare. Only the float types can be model weights; the
 * integer ones are read so test references (ids) can use the same parser. */
typedef enum mc_elem {
    MC_ELEM_F32, MC_ELEM_F16, MC_ELEM_BF16, MC_ELEM_F64,
    MC_ELEM_I8, MC_ELEM_I16, MC_ELEM_I32, MC_ELEM_I64,
    MC_ELEM_U8, MC_ELEM_U16, MC_ELEM_U32, MC_ELEM_U64, MC_ELEM_BOOL,
    /* block-quantized (GGUF): mc_elem_size is 0, sizes come from core/dtype.h */
    MC_ELEM_Q8_0, MC_ELEM_Q4_0, MC_ELEM_Q4_K, MC_ELEM_Q5_0, MC_ELEM_Q6_K,
} mc_elem;

/* Bytes per element; 0 for the block-quantized types. */
size_t mc_elem_size(mc_elem e);
const char *mc_elem_name(mc_elem e);
/* Maps a float element type to a weight dtype; 0 for the types weights can't have. */
int mc_elem_to_dtype(mc_elem e, mambac_dtype *out);

typedef struct mc_tensor_entry {
    char *name;          /* owned */
    mc_elem elem;
    int ndim;
    int64_t shape[MC_MAX_DIMS];
    const void *data;    /* into a mapped file; may be unaligned */
    size_t nbytes;
    const char *file;    /* path for messages; owned by whoever mapped the file */
} mc_tensor_entry;

/* Entries in file order, with a hash index of their names (lookups and the duplicate
 * check in constant time: files may list any number of tensors). Zero-initialised is
 * empty; change n and the names only through the functions below. */
typedef struct mc_tensor_list {
    mc_tensor_entry *v;
    size_t n, cap;
    int32_t *slots;  /* index into v, or -1; a power-of-two table at most half full */
    size_t mask;
    uint64_t probes; /* slots looked at by adds: the work done (tests check it is linear) */
} mc_tensor_list;

/* Appends a copy of e (its name is duplicated). Fails on a duplicate name. */
mambac_status mc_tensor_list_add(mc_tensor_list *l, const mc_tensor_entry *e, mambac_error *err);
const mc_tensor_entry *mc_tensor_list_find(const mc_tensor_list *l, const char *name);
/* Drops the entries from n on (an add of several that failed part way). */
void mc_tensor_list_truncate(mc_tensor_list *l, size_t n);
/* Rebuilds the index after names were changed in place; fails on a name now twice. */
mambac_status mc_tensor_list_reindex(mc_tensor_list *l, mambac_error *err);
/* Refuses entries from `first` on whose bytes overlap (one file's tensors are disjoint:
 * an alias would let a write through one change another). */
mambac_status mc_tensor_list_check_overlap(const mc_tensor_list *l, size_t first, const char *path, mambac_error *err);
void mc_tensor_list_free(mc_tensor_list *l);

/* Product of the shape with overflow detection: 0 on overflow past `limit`. */
int mc_shape_numel(const int64_t *shape, int ndim, uint64_t limit, uint64_t *out);

#endif
