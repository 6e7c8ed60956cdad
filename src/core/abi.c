/* abi.c — the sizes of the public structs, for bindings that mirror them (mambac_sizeof). */
#include <string.h>

#include "mambac.h"

size_t mambac_sizeof(const char *type_name) {
    static const struct { const char *name; size_t size; } t[] = {
        {"mambac_error", sizeof(mambac_error)},
        {"mambac_model_info", sizeof(mambac_model_info)},
        {"mambac_model_params", sizeof(mambac_model_params)},
        {"mambac_init_params", sizeof(mambac_init_params)},
        {"mambac_context_params", sizeof(mambac_context_params)},
        {"mambac_seq", sizeof(mambac_seq)},
        {"mambac_loglik", sizeof(mambac_loglik)},
        {"mambac_ll_request", sizeof(mambac_ll_request)},
        {"mambac_sampler_params", sizeof(mambac_sampler_params)},
        {"mambac_generate_params", sizeof(mambac_generate_params)},
        {"mambac_generate_result", sizeof(mambac_generate_result)},
        {"mambac_chat_message", sizeof(mambac_chat_message)},
        {"mambac_train_params", sizeof(mambac_train_params)},
        {"mambac_train_progress", sizeof(mambac_train_progress)},
    };
    for (size_t i = 0; type_name && i < sizeof t / sizeof t[0]; i++)
        if (strcmp(t[i].name, type_name) == 0) return t[i].size;
    return 0;
}
