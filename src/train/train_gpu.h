/* train_gpu.h — training steps on an NVIDIA GPU (src/cuda/train_cuda.c): the same
 * forward, loss, backward and AdamW as train.h, with the parameters, their gradients,
 * the optimizer moments and the tape in device memory. Float32 throughout (cuBLAS SGEMM
 * products): gradients match the CPU's to rounding. The host mc_params gives the layout
 * (the device arenas mirror it) and receives the weights back for checkpoints.
 *
 * Built without CUDA, mc_gtrain_new fails with a clear error; nothing else is called. */
#ifndef MC_TRAIN_GPU_H
#define MC_TRAIN_GPU_H

#include <stdint.h>

#include "mambac.h"
#include "train/train.h"

typedef struct mc_gtrain mc_gtrain;

/* device: "cuda" or "cuda:N". Batches of up to B sequences of L tokens. precision: NULL
 * or "f32" (SGEMM: the CPU's gradients to rounding), "tf32" (the products on tensor cores
 * with TF32 operands), "bf16" (tensor cores on bf16 copies of the operands, as autocast
 * does); float32 weights, moments, sums and everything else in every case. Uploads the weights of P (the moments
 * start at zero: mc_gtrain_set_moments for a resumed run). */
mambac_status mc_gtrain_new(const mc_params *P, const char *device, const char *precision, int64_t B, int64_t L,
                            mc_gtrain **out, mambac_error *err);
void mc_gtrain_free(mc_gtrain *g);
/* The device can be opened ("cuda", "cuda:N"): a clear error before a run writes anything. */
mambac_status mc_gtrain_probe(const char *device, mambac_error *err);

mambac_status mc_gtrain_set_moments(mc_gtrain *g, const mc_adamw *o, mambac_error *err);
/* Weights into P->w and the moments into o (before a checkpoint is written). */
mambac_status mc_gtrain_download(mc_gtrain *g, mc_params *P, mc_adamw *o, mambac_error *err);
/* The gradient arena into dst (P->total floats). */
mambac_status mc_gtrain_grads(mc_gtrain *g, float *dst, mambac_error *err);

mambac_status mc_gtrain_zero_grad(mc_gtrain *g, mambac_error *err);
/* mc_train_step on the device for nb <= B sequences of ids (host, nb L ids). */
mambac_status mc_gtrain_step(mc_gtrain *g, const int32_t *ids, int64_t nb, int backward, float scale, double *loss,
                             mambac_error *err);
/* With explicit targets, as mc_train_step_targets (NULL: the next id). */
mambac_status mc_gtrain_step_targets(mc_gtrain *g, const int32_t *ids, const int32_t *targets, int64_t nb, int backward,
                                     float scale, double *loss, mambac_error *err);
/* mc_clip_grad (clip > 0) then mc_adamw_update with o's hyper-parameters (o->step
 * advances; o->m and o->v are not touched: the moments live on the device). */
mambac_status mc_gtrain_update(mc_gtrain *g, mc_adamw *o, double clip, float lr, double *grad_norm, mambac_error *err);

#endif
