#define _POSIX_C_SOURCE 200809L
/* fuzz_gguf.c — libFuzzer target for GGUF files: the container (metadata, tensor
 * infos, bounds), the mamba / mamba2 model mapping and binding, and the tokenizer
 * rebuilt from the metadata. Accepted tensors' bytes are read. */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    mambac_error err;
    struct mambac_model *m = calloc(1, sizeof *m);
    m->path = strdup("fuzz.gguf");
    m->dir = strdup(".");
    volatile unsigned char sink = 0;
    if (mc_gguf_model_parse(m, data, size, &err) == MAMBAC_OK && mc_model_bind(m, &err) == MAMBAC_OK)
        for (size_t i = 0; i < m->tensors.n; i++)
            for (size_t k = 0; k < m->tensors.v[i].nbytes; k += 64) sink ^= ((const unsigned char *)m->tensors.v[i].data)[k];
    mambac_model_free(m);
    mambac_tokenizer *t = NULL;
    if (mc_tokenizer_from_gguf_bytes(data, size, "fuzz.gguf", &t, &err) == MAMBAC_OK) mambac_tokenizer_free(t);
    (void)sink;
    return 0;
}
