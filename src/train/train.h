/* train.h — training on the CPU: trainable float32 parameters, a forward pass that
 * keeps what the backward pass needs (the "tape"), the backward pass, AdamW, data
 * batches and checkpoints. Everything is float32; batches are B sequences of L tokens,
 * each starting from a zero state (as transformers' training forward does).
 *
 * Layout of the gradient computation (docs/TRAINING.md has the derivations):
 *   forward  h = embed(ids); per layer h += mixer(rmsnorm(h)); logits = rmsnorm_f(h) W^T
 *   loss     mean cross-entropy of positions 0..L-2 predicting 1..L-1 of each sequence
 *   backward the same ops in reverse; the scans are recomputed per sequence and
 *            channel/head from the tape's inputs instead of being stored. */
#ifndef MC_TRAIN_H
#define MC_TRAIN_H

#include <stdint.h>

#include "core/threadpool.h"
#include "cpu/kernels.h"
#include "mambac.h"

/* One trainable tensor: its transformers name and shape, its values and gradient. */
typedef struct mc_param {
    char name[96];
    int ndim;
    int64_t shape[3];
    int64_t n;
    float *w, *g;
    int decay; /* AdamW weight decay applies (matrices; not A_log, D, dt_bias, norms, biases) */
} mc_param;

/* Per-layer views into the parameter arena (NULL when the model has no such tensor). */
typedef struct mc_tlayer {
    float *norm, *in_w, *in_b, *conv_w, *conv_b, *x_w, *dt_w, *dt_b, *A_log, *D, *gnorm, *out_w, *out_b;
} mc_tlayer;

typedef struct mc_params {
    mambac_model_info cfg;  /* dims of the model (pointers in it are not owned) */
    int64_t in_rows, C, R;  /* in_proj rows, conv channels, dt rank */
    mc_param *v;
    size_t n;
    float *w, *g;           /* arenas: the same layout */
    int64_t total;          /* floats in each arena */
    float *emb, *norm_f, *lm_head; /* lm_head NULL when tied */
    mc_tlayer *L;
} mc_params;

/* The gradient twin of a pointer into the weight arena. */
static inline float *mc_grad_of(const mc_params *P, const float *w) { return w ? P->g + (w - P->w) : NULL; }

/* Trainable float32 copy of a loaded model (any format; A_log read from the file, or
 * log(-A) for GGUF). */
mambac_status mc_params_from_model(const mambac_model *m, mc_params *P, mambac_error *err);
void mc_params_free(mc_params *P);
const mc_param *mc_params_find(const mc_params *P, const char *name);

/* Writes one float32 safetensors file of the set under the parameters' names: which =
 * 0 weights, 1 gradients, 2 / 3 an arena of the same layout at `base` (optimizer
 * moments). With loss, a "loss" [1] tensor comes first. Atomic. */
mambac_status mc_params_write(const mc_params *P, const char *path, int which, const float *base, const float *loss,
                              mambac_error *err);
/* Reads such a file (exactly the set's tensors, float32) into an arena of the set's
 * layout (P->w for weights). */
mambac_status mc_params_read(const mc_params *P, const char *path, float *dst_base, mambac_error *err);

/* Threads, kernels and scratch for the matrix products. */
typedef struct mc_tctx {
    mc_pool *pool;
    const mc_kernels *k;
    float *gemm;            /* per-thread GEMM scratch */
    int64_t gemm_stride;
    float *ta, *tb, *tc;    /* transposes and product temporaries */
    int64_t tcap;
} mc_tctx;

/* isa: a kernel set by name ("scalar", "avx2", "avx512", "amx") or NULL for the best one. */
mambac_status mc_tctx_init(mc_tctx *c, int threads, const char *isa, int64_t max_k, int64_t tcap, mambac_error *err);
void mc_tctx_free(mc_tctx *c);
/* out (T, R) = x (T, K; rows x_stride apart) W^T (+ bias); W (R, K) row-major. */
void mc_mm(mc_tctx *c, float *out, const float *x, int64_t x_stride, int64_t T, const float *W, int64_t R, int64_t K,
           const float *bias);
/* dx (T, K; rows dx_stride apart) = dy (T, R) W; W (R, K). */
void mc_mm_dx(mc_tctx *c, float *dx, int64_t dx_stride, const float *dy, int64_t T, const float *W, int64_t R, int64_t K);
/* dW (R, K) += dy (T, R)^T x (T, K; rows x_stride apart). */
void mc_mm_dw(mc_tctx *c, float *dW, const float *dy, int64_t T, const float *x, int64_t x_stride, int64_t R, int64_t K);

/* Activations of one batch (B sequences of L tokens), sized at creation. */
typedef struct mc_tape mc_tape;
mambac_status mc_tape_new(const mc_params *P, int64_t B, int64_t L, int n_threads, mc_tape **out, mambac_error *err);
/* GEMM reduction length and temporary size (floats) the products of a batch need. */
void mc_train_sizes(const mc_params *P, int64_t B, int64_t L, int64_t *max_k, int64_t *tcap);
void mc_tape_free(mc_tape *t);

/* Forward over ids (B*L, sequence-major), keeping the tape; returns the mean loss
 * (positions 0..L-2 of each sequence predicting the next). With backward set, adds the
 * gradient of that loss to P->g (callers zero it first; accumulation over micro-batches
 * scales with `scale`, the factor applied to this batch's loss). */
double mc_train_step(mc_tctx *c, mc_params *P, mc_tape *t, const int32_t *ids, int backward, float scale);
/* The same with explicit targets (B*L; < 0: no loss at that position; the targets of
 * position r predict after ids[r]; the caller keeps them below the model's vocabulary
 * rows, as it does the ids), the loss the mean over the counted positions (0 when none).
 * mc_train_step is targets = the next id within each sequence. */
double mc_train_step_targets(mc_tctx *c, mc_params *P, mc_tape *t, const int32_t *ids, const int32_t *targets, int backward,
                             float scale);
/* Positions with a target (targets NULL: B (L - 1)). */
int64_t mc_train_count_targets(const int32_t *targets, int64_t B, int64_t L);

/* ---- optimizer ------------------------------------------------------------------ */

typedef struct mc_adamw {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;           /* updates done */
    float *m, *v;           /* moments, the arena layout */
    int64_t total;
} mc_adamw;

mambac_status mc_adamw_init(mc_adamw *o, const mc_params *P, mambac_error *err);
void mc_adamw_free(mc_adamw *o);
/* Clips the global gradient norm to max_norm (when > 0); returns the norm before. */
double mc_clip_grad(mc_params *P, double max_norm);
/* One update with learning rate lr (decoupled decay lr * wd on decayed tensors). */
void mc_adamw_update(mc_adamw *o, mc_params *P, float lr);
/* Linear warmup over `warmup` steps to lr_max, then cosine decay to lr_min at `total`. */
float mc_lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min);

#endif
