/* checkpoint.h — training checkpoints (see checkpoint.c for the layout and why it
 * cannot be torn). */
#ifndef MC_CHECKPOINT_H
#define MC_CHECKPOINT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "train/train.h"

/* FNV-1a 64 of a file's bytes. */
mambac_status mc_file_fnv(const char *path, uint64_t *out, mambac_error *err);
/* Writes model.safetensors, the two optimizer files and `state` (with their checksums
 * added) as train_state.json, atomically as a whole (checkpoint.c). config.json and
 * tokenizer.json are written once when the run starts. */
mambac_status mc_ckpt_save(const char *dir, const mc_params *P, const mc_adamw *o, cJSON *state, mambac_error *err);
/* Completes a save interrupted after its switch, then reads train_state.json and checks
 * the three files against its checksums. */
mambac_status mc_ckpt_read_state(const char *dir, cJSON **state, mambac_error *err);
mambac_status mc_ckpt_load_optimizer(const char *dir, const mc_params *P, mc_adamw *o, mambac_error *err);

#endif
