/* config.h — parsing a checkpoint's config.json into mambac_model_info. */
#ifndef MC_CONFIG_H
#define MC_CONFIG_H

#include <stddef.h>

#include "mambac.h"

/* Fills everything but the fields known only from the weights (n_vocab_rows for the
 * transformers layout, dtype, n_params, weight_bytes, format). */
mambac_status mc_config_parse(const char *text, size_t len, const char *path, mambac_model_info *c,
                              mambac_error *err);

/* Cross-field checks (heads x head_dim = inner width, ...), shared by every loader. */
mambac_status mc_config_validate(const char *path, mambac_model_info *c, mambac_error *err);

#endif
