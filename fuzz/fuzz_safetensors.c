/* fuzz_safetensors.c — libFuzzer target for the safetensors header parser. Every
 * accepted tensor's bytes are read, so an unchecked offset shows up under ASan. */
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    mc_tensor_list l = {0};
    mambac_error err;
    volatile unsigned char sink = 0;
    if (mc_safetensors_parse(data, size, "fuzz", &l, &err) == MAMBAC_OK)
        for (size_t i = 0; i < l.n; i++)
            for (size_t k = 0; k < l.v[i].nbytes; k++) sink ^= ((const unsigned char *)l.v[i].data)[k];
    mc_tensor_list_free(&l);
    (void)sink;
    return 0;
}
