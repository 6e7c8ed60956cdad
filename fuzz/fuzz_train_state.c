/* fuzz_train_state.c — libFuzzer target for a checkpoint's train_state.json as --resume
 * reads it: the JSON (duplicate keys refused), then the run's settings and progress taken
 * from it (every count bounded) and the settings' range check. */
#include <stdlib.h>

#include "io/json.h"
#include "train/trainer.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    mambac_error err;
    cJSON *state = mc_json_parse((const char *)data, size, "fuzz", &err);
    if (state && mc_json_unique_keys(state, "fuzz", &err) == MAMBAC_OK) {
        mc_train_config cfg = mc_train_default_config();
        mc_train_resume_point pg;
        if (mc_train_resume_from(state, "fuzz", &cfg, &pg, &err) == MAMBAC_OK) mc_train_check_config(&cfg, &err);
        free((char *)cfg.data), free((char *)cfg.tokenizer);
    }
    cJSON_Delete(state);
    return 0;
}
