/* ops.h — the reference CPU kernels: plain, obviously-correct C, one function per op,
 * float32 arithmetic. Fast kernels (SIMD, threads) will be tested against these and
 * these stay forever. Shapes are written (rows, cols), row-major.
 *
 * Notation: T tokens, D d_model, E d_inner, N d_state, K conv width, C conv channels,
 * H heads, P head_dim, G groups, R dt_rank, L SSD chunk length. */
#ifndef MC_OPS_H
#define MC_OPS_H

#include <math.h>
#include <stdint.h>

#include "model/model.h"

static inline float mc_silu(float x) { return x / (1.0f + expf(-x)); }

/* torch.nn.functional.softplus with its default threshold: x > 20 returns x. */
static inline float mc_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* out (T, n) = rmsnorm(x (T, n)) * w (n). out may alias x. */
void mc_rmsnorm(float *out, const float *x, const float *w, int64_t T, int64_t n, float eps);

/* FalconMamba: x_proj's output rows [dt_r (R) | B (N) | C (N)] (T rows, stride floats
 * apart), each of the three parts RMS-normalized in place without a weight. rstd (T, 3),
 * when not NULL, receives each part's 1 / rms (for the backward). */
void mc_bcdt_rms(float *xdbl, int64_t T, int64_t stride, int64_t R, int64_t N, float eps, float *rstd);
/* Its backward: g (the gradient of the normalized rows) becomes that of the rows before
 * the norms, given y (the normalized rows) and rstd. */
void mc_bcdt_rms_bwd(float *g, int64_t gs, const float *y, int64_t ys, const float *rstd, int64_t T, int64_t R, int64_t N);

/* out (T, W.rows) = x (T, W.cols) @ W^T (+ bias (W.rows) when not NULL).
 * x rows are x_stride floats apart (only the first W.cols are read).
 * row_scratch: W.cols floats (used to widen f16/bf16 rows once for all T). */
void mc_matmul(float *out, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
               const float *bias, float *row_scratch);

/* Row `id` of an embedding matrix, widened to float32 (D floats). */
void mc_embed_row(float *out, const mc_weight *emb, int32_t id);

/* Causal depthwise conv over time + bias + SiLU, continuing from a window.
 * x: T rows of `stride` floats; channels [0, C) of each row are convolved in place.
 * w: (C, K); b: (C) or NULL; window: (C, K-1), the K-1 previous inputs per channel,
 * oldest first; updated to the last K-1 inputs. */
void mc_conv1d_prefill(float *x, int64_t T, int64_t stride, int64_t C, int64_t K, const float *w,
                       const float *b, float *window);
/* The same for one token: x (C), window shifted by one. */
void mc_conv1d_step(float *x, int64_t C, int64_t K, const float *w, const float *b, float *window);

/* Mamba-1 selective scan over T tokens, continuing from state s (E, N).
 *   dt_t = softplus(dt[t] + dt_bias); s = exp(dt_t*A) * s + dt_t * x_t * B_t
 *   y_t = s . C_t + D * x_t; y_t *= silu(z_t)
 * x, z, dt, y: T rows with the given strides (E values used); B, C: T rows of
 * stride bc_stride (N values each). y may alias neither x nor z. */
typedef struct mc_scan_args {
    int64_t T, E, N;
    const float *x; int64_t x_stride;
    const float *z; int64_t z_stride;
    const float *dt; int64_t dt_stride;
    const float *B, *C; int64_t bc_stride;
    const float *A, *D, *dt_bias;
    float *y; int64_t y_stride;
    float *state;
} mc_scan_args;
/* With T == 1 this is the recurrent single-token update (mamba_ssm's
 * selective_state_update); there is no separate step kernel for Mamba-1. */
void mc_selective_scan(const mc_scan_args *a);

/* Mamba-2 SSD over T tokens from state s (H, P, N), without D and gating:
 *   s_t = exp(dt_t A_h) s_{t-1} + dt_t x_t ⊗ B_t;  y_t = s_t . C_t
 * x (T, H*P) rows of x_stride; B, C: rows of bc_stride, group g at offset g*N;
 * dt (T, H) already softplus'ed and clamped, rows of dt_stride; y (T, H*P) rows of
 * y_stride. Chunked form: chunks of L tokens computed with intra-chunk (C B^T ∘ decay)
 * products plus the state passed between chunks. scratch: L*L + 2*L floats. */
typedef struct mc_ssd_args {
    int64_t T, H, P, N, G, L;
    int64_t h0, h1;    /* heads to process: [h0, h1); h1 == 0 means all */
    const float *x; int64_t x_stride;
    const float *B, *C; int64_t bc_stride;
    const float *dt; int64_t dt_stride;
    const float *A;
    float *y; int64_t y_stride;
    float *state;
    float *scratch;
} mc_ssd_args;
void mc_ssd_chunked(const mc_ssd_args *a);
/* The recurrent form for one token (a->T must be 1, no scratch needed). */
void mc_ssd_step(const mc_ssd_args *a);

/* Mamba-2 output gate and norm over one row y (E) with gate z (E), G groups:
 *   norm_before_gate=0: y = rmsnorm_g(y * silu(z)) * w
 *   norm_before_gate=1: y = rmsnorm_g(y) * w * silu(z)
 * w == NULL (no gated norm): y = y * silu(z). */
void mc_gated_rmsnorm(float *y, const float *z, const float *w, int64_t E, int64_t G, int norm_before_gate,
                      float eps);

#endif
