/* backend.h — the seam under the forward pass: the operations a Mamba model needs on
 * one micro-batch, and the memory a backend owns (prepared weights, scratch, sequence
 * states). Not a graph: infer/forward.c calls these ops in the model's layer order, and
 * a backend (the CPU one in cpu/backend_cpu.c, the CUDA one in cuda/) decides how each
 * runs — threads, fusions, repacked weights, device memory.
 *
 * A micro-batch is up to max_ubatch rows (tokens) from one or more sequences: segment s
 * holds rows [row0, row0 + n) of sequence state `state`, in order. Matrix products run
 * over all rows at once (every weight read once per micro-batch); the conv, the scan and
 * the SSD run per segment on its own state. A segment with n == 1 takes the recurrent
 * form, longer ones the parallel form; results agree up to rounding.
 *
 * Activations live in the backend's context (its scratch), between ops:
 *   h   (rows, D)   residual stream        xn (rows, D) normalized input
 *   proj(rows, in_proj rows)               y  (rows, E) mixer output before out_proj
 * Only logits() writes host memory. Ops report nothing; logits() ends the micro-batch
 * and returns the first error any op met (a GPU launch failure, say). */
#ifndef MC_BACKEND_H
#define MC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "mambac.h"

struct mambac_model;
struct mambac_state;

typedef struct mc_segment {
    struct mambac_state *state;
    int64_t row0, n;
} mc_segment;

typedef struct mc_ubatch {
    const int32_t *ids; /* n_rows token ids (host memory) */
    int64_t n_rows;
    const mc_segment *seg;
    int64_t n_seg;
    int decode; /* every segment has n == 1 */
} mc_ubatch;

/* A row whose logits are wanted, and where they go: n_vocab_rows host floats at dst, or
 * (dst NULL) their argmax over the real vocabulary at *token. */
typedef struct mc_logit_row {
    int64_t row;
    float *dst;
    int32_t *token;
} mc_logit_row;

typedef struct mc_backend {
    const char *name;
    int host_states; /* states are plain host memory (save / load / copy read them in place) */

    /* ---- model: called once by the loader after the tensors are bound. `device` is the
     * part after "name:" ("0" in "cuda:0"), or NULL. Prepares weights (repacking, device
     * copies) into m->bmodel. */
    mambac_status (*model_init)(struct mambac_model *m, const char *device, const mambac_model_params *p,
                                mambac_error *err);
    void (*model_free)(struct mambac_model *m);

    /* ---- states: n floats of zeros; copies between host and state memory */
    float *(*state_alloc)(const struct mambac_model *m, size_t n);
    void (*state_free)(const struct mambac_model *m, float *data);
    void (*state_zero)(const struct mambac_model *m, float *data, size_t n);
    void (*state_read)(const struct mambac_model *m, float *host, const float *data, size_t n);
    void (*state_write)(const struct mambac_model *m, float *data, const float *host, size_t n);
    void (*state_copy)(const struct mambac_model *m, float *dst, const float *src, size_t n);

    /* ---- contexts: scratch for max_ubatch rows, threads / streams */
    mambac_status (*ctx_new)(const struct mambac_model *m, const mambac_context_params *p, void **out,
                             mambac_error *err);
    void (*ctx_free)(void *ctx);
    const char *(*ctx_kernels)(const void *ctx); /* kernel set name, for messages and bench */
    int32_t (*ctx_threads)(const void *ctx);

    /* ---- ops on a micro-batch (layer l) */
    void (*embed)(void *ctx, const mc_ubatch *ub);                     /* h = embed[ids] */
    void (*norm)(void *ctx, const mc_ubatch *ub, int l);               /* xn = rmsnorm(h) * norm_l */
    void (*in_proj_conv)(void *ctx, const mc_ubatch *ub, int l);       /* proj = xn in_proj^T (+b); causal conv + SiLU
                                                                        * of the conv channels, per segment */
    void (*mamba1_ssm)(void *ctx, const mc_ubatch *ub, int l);         /* x_proj, dt_proj, selective scan with D and
                                                                        * the z gate: y */
    void (*mamba2_ssm)(void *ctx, const mc_ubatch *ub, int l);         /* dt softplus/clamp, SSD, D x, gated norm: y */
    void (*out_proj_residual)(void *ctx, const mc_ubatch *ub, int l);  /* h += y out_proj^T (+b) */
    /* norm_f and lm_head for the chosen rows, to host; ends the micro-batch */
    mambac_status (*logits)(void *ctx, const mc_ubatch *ub, const mc_logit_row *rows, int64_t n, mambac_error *err);
} mc_backend;

/* The backend named by `spec` ("cpu", "cuda", "cuda:1"; NULL = "cpu"); *device gets what
 * follows the colon, or NULL. NULL with a message when unknown or not built in. */
const mc_backend *mc_backend_find(const char *spec, const char **device, mambac_error *err);

extern const mc_backend mc_backend_cpu;
#ifdef MAMBAC_HAVE_CUDA
extern const mc_backend mc_backend_cuda;
#endif

#endif
