/* pickle.h — a restricted unpickler for PyTorch state dicts (torch.save), and the
 * reader of torch.save's zip container built on it.
 *
 * It is not a Python VM. It knows the opcodes torch.save emits for a state dict
 * (protocol 2-4: containers, ints, strings, memo, persistent ids, REDUCE/BUILD) and
 * exactly these callables: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter and the Float/Half/BFloat16 storage types. REDUCE
 * of those is interpreted as data, never executed; any other opcode or global is
 * refused with an error naming it. */
#ifndef MC_PICKLE_H
#define MC_PICKLE_H

#include "io/tensors.h"

typedef struct mc_pickled_tensor {
    char *name;
    mc_elem elem;
    char *storage_key;     /* the persistent id's key: data/<key> in the archive */
    uint64_t storage_numel;
    int64_t offset;        /* in elements */
    int ndim;
    int64_t shape[MC_MAX_DIMS];
    int64_t stride[MC_MAX_DIMS];
} mc_pickled_tensor;

/* Runs pickle bytes that must produce a flat {str: tensor} dict (plain or OrderedDict). */
mambac_status mc_pickle_state_dict(const unsigned char *pkl, size_t len, const char *path,
                                   mc_pickled_tensor **out, size_t *n, mambac_error *err);
void mc_pickled_tensors_free(mc_pickled_tensor *t, size_t n);

/* Reads a torch.save zip file: unpickles its data.pkl and resolves every tensor to its
 * bytes in data/<key> (bounds, dtype and contiguity checked), adding them to `out`. */
mambac_status mc_torch_parse(const unsigned char *data, size_t size, const char *path,
                             mc_tensor_list *out, mambac_error *err);

#endif
