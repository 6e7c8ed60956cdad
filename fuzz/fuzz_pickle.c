/* fuzz_pickle.c — libFuzzer target for the restricted unpickler (raw pickle bytes). */
#include "io/pickle.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    mc_pickled_tensor *t;
    size_t n;
    mambac_error err;
    if (mc_pickle_state_dict(data, size, "fuzz", &t, &n, &err) == MAMBAC_OK) mc_pickled_tensors_free(t, n);
    return 0;
}
