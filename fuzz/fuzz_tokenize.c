/* fuzz_tokenize.c — libFuzzer target for the encoder: arbitrary bytes through the
 * GPT-2 tokenizer (a token for every byte) must decode back to exactly those bytes. */
#include <stdlib.h>
#include <string.h>

#include "mambac.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static mambac_tokenizer *tok;
    mambac_error err;
    if (!tok && mambac_tokenizer_load(MAMBAC_FUZZ_TOKENIZER, &tok, &err) != MAMBAC_OK) abort();
    int32_t *ids;
    size_t n;
    if (mambac_tokenize(tok, (const char *)data, size, &ids, &n, &err) != MAMBAC_OK) abort();
    char *out;
    size_t len;
    if (mambac_detokenize(tok, ids, n, &out, &len, &err) != MAMBAC_OK) abort();
    /* GPT-2 has no normalizer: the round trip is exact for any input. */
    if (len != size || (size && memcmp(out, data, size) != 0)) abort();
    mambac_free(out);
    mambac_free(ids);
    return 0;
}
