/* fuzz_config.c — libFuzzer target for config.json parsing (lenient JSON + fields). */
#include "model/config.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    mambac_model_info c;
    mambac_error err;
    mc_config_parse((const char *)data, size, "fuzz", &c, &err);
    return 0;
}
