/* fuzz_state.c — libFuzzer target for state bytes (mambac_state_from_bytes, the parser
 * of state files and of the server's cached states): any input is refused with a message
 * or loads; a state that loads is then evaluated one token further, so the forward pass
 * runs on whatever an accepted state holds. */
#include <stdlib.h>

#include "mambac.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static mambac_model *model;
    static mambac_context *ctx;
    static mambac_state *st;
    static float *logits;
    mambac_error err;
    if (!model) {
        if (mambac_model_load(MAMBAC_FUZZ_MODEL, &model, &err) != MAMBAC_OK || mambac_context_new(model, NULL, &ctx, &err) != MAMBAC_OK ||
            mambac_state_new(model, &st, &err) != MAMBAC_OK)
            abort();
        logits = malloc((size_t)mambac_model_get_info(model)->n_vocab_rows * sizeof *logits);
        if (!logits) abort();
    }
    if (mambac_state_from_bytes(st, data, size, &err) == MAMBAC_OK) {
        const int32_t id = 1;
        mambac_eval(ctx, st, &id, 1, MAMBAC_LOGITS_LAST, logits, &err);
    }
    return 0;
}
