/* fuzz_tokenizer_json.c — libFuzzer target for tokenizer.json parsing; an accepted
 * tokenizer also encodes and decodes a short text. */
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    mambac_tokenizer *t;
    mambac_error err;
    if (mc_tokenizer_from_json((const char *)data, size, "fuzz", &t, &err) != MAMBAC_OK) return 0;
    int32_t *ids;
    size_t n;
    if (mambac_tokenize(t, "Hello, world! \xc3\xa9  x", 18, &ids, &n, &err) == MAMBAC_OK) {
        char *out;
        size_t len;
        if (mambac_detokenize(t, ids, n, &out, &len, &err) == MAMBAC_OK) mambac_free(out);
        mambac_free(ids);
    }
    mambac_tokenizer_free(t);
    return 0;
}
