/* trainer.h — the training loop behind `mambac train`: data, batches, AdamW steps with
 * warmup + cosine schedule, gradient accumulation and clipping, periodic validation,
 * a CSV log, and checkpoints a crash cannot tear (see checkpoint.c). */
#ifndef MC_TRAINER_H
#define MC_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "mambac.h"
#include "train/token_file.h"

typedef struct mc_data {
    int32_t *ids;       /* a text file's ids; NULL for a token file (read through tf) */
    mc_token_file tf;   /* a token file (`mambac prepare-data`), mapped */
    int64_t n, n_train;
    int32_t vocab;
} mc_data;

/* Loads a text file as bytes (tokenizer NULL) or through a tokenizer.json, split
 * train / validation (val_frac of the ids at the end); or a token file, split by document
 * as it was written (val_frac unused; the tokenizer, when the file was made with one, must
 * be that one). Refuses data too short for windows of L tokens. */
mambac_status mc_data_load(mc_data *d, const char *path, const char *tokenizer, double val_frac, int64_t L,
                           mambac_error *err);
void mc_data_free(mc_data *d);
static inline int32_t mc_data_id(const mc_data *d, int64_t i) { return d->ids ? d->ids[i] : mc_token_at(&d->tf, i); }
/* FNV-1a of the data (a checkpoint remembers it: a resumed run refuses other data). */
uint64_t mc_data_fnv(const mc_data *d);
uint64_t mc_rng_next(uint64_t *state);
/* B windows of L ids at random training offsets (advances *rng). */
void mc_data_train_batch(const mc_data *d, uint64_t *rng, int64_t B, int64_t L, int32_t *out);
int64_t mc_data_val_windows(const mc_data *d, int64_t L);
void mc_data_val_window(const mc_data *d, int64_t i, int64_t L, int32_t *out);

typedef mambac_train_progress mc_train_progress; /* val_loss is NaN on steps without an evaluation */

typedef struct mc_train_config {
    /* the model: a new one (init), an existing folder to fine-tune, or a checkpoint to
     * resume (then out is that folder) */
    mambac_init_params init;
    int have_arch_flags;      /* init was given on the command line (checked on resume) */
    const char *init_from, *resume;
    const char *data, *tokenizer, *out;
    int64_t batch, seq, steps, warmup, accum, eval_every, eval_windows, save_every;
    int64_t stop_at;          /* > 0: save and stop at this step (the schedule still runs to steps) */
    float lr, min_lr, weight_decay, clip, beta1, beta2;
    double val_frac, time_limit;
    uint64_t seed;
    int threads;
    const char *device;       /* NULL or "cpu"; "cuda" / "cuda:N": steps on that GPU (train_gpu.h) */
    const char *precision;    /* the GPU's products: NULL or "f32", "tf32", "bf16" */
    void (*progress)(const mc_train_progress *p, void *user);
    void *user;
    /* Set (by a signal handler, another thread) to stop: the step in progress finishes,
     * a checkpoint is saved and the run returns as if it had reached its last step.
     * NULL: never. */
    volatile sig_atomic_t *stop;
} mc_train_config;

/* Defaults (nanoGPT-like for small character models). */
mc_train_config mc_train_default_config(void);
/* A new model's small CPU-sized shapes (d_model 128, 4 layers; Mamba-2: d_state 32, head
 * dimension 32, chunks of 64) over init's architecture defaults. */
void mc_train_small_init(mambac_init_params *init);
mambac_status mc_train_run(const mc_train_config *cfg, mambac_error *err);

/* Where a resumed run stands (train_state.json). */
typedef struct mc_train_resume_point {
    int64_t step, tokens;
    double elapsed_s;
    uint64_t rng;
} mc_train_resume_point;
/* A checkpoint's train_state.json (parsed) into the run's settings (steps kept when
 * cfg->steps > 0) and its progress; every count bounded, strings copied into cfg (the
 * caller frees cfg->data and cfg->tokenizer). dir names the folder in messages. */
struct cJSON;
mambac_status mc_train_resume_from(const struct cJSON *state, const char *dir, mc_train_config *cfg, mc_train_resume_point *pg,
                                   mambac_error *err);
/* The settings' ranges (the run refuses what this refuses). */
mambac_status mc_train_check_config(const mc_train_config *c, mambac_error *err);

#endif
