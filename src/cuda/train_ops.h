/* train_ops.h — C-callable launchers of the training kernels (train_ops.cu, train_scan.cu,
 * train_ssd.cu): the forward pieces that keep what the backward needs and the backward of
 * every op, float32, the semantics of train/ops_train.h and train/act.h on the device.
 * Pointers are device memory; launches go on `s` and return at once. Shapes as on the
 * CPU: T = B L rows, sequence-major, strides in floats.
 *
 * Every reduction over rows (weight gradients of norms, convs, biases, D, A) is done in
 * a fixed order through partial sums (never atomics), so a step gives the same
 * gradients bit for bit every time it is run. */
#ifndef MC_CUDA_TRAIN_OPS_H
#define MC_CUDA_TRAIN_OPS_H

#include <stdint.h>

#include "cuda/cuda_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Floats of partial-sum scratch that mct_colsum and the reductions below need for T rows
 * of n columns. */
int64_t mct_colsum_scratch(int64_t T, int64_t n);
/* dst[k] (+)= sum over rows r of src[r * stride + k], k < n (accumulate: add into dst). */
void mct_colsum(float *dst, const float *src, int64_t stride, int64_t T, int64_t n, int accumulate, float *scratch,
                mcu_stream s);

/* RMSNorm over rows of n: out = x rstd w, rstd kept (T). With groups > 1 the rows are
 * the groups of wider rows and row r uses w + (r % groups) n (the gated norm's groups).
 * out and out16 (bf16) may each be NULL. */
void mct_rmsnorm_fwd(float *out, void *out16, float *rstd, const float *x, const float *w, int64_t T, int64_t n,
                     int64_t groups, float eps, mcu_stream s);
/* dx (+)= the input gradient (accumulate); dw += sum of dy x rstd per weight (weights of
 * groups rows apart as above). */
void mct_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *rstd, const float *w, int64_t T,
                     int64_t n, int64_t groups, int accumulate, float *scratch, mcu_stream s);

/* Elementwise, over T rows of n values (rows of the given strides; contiguous when the
 * stride is n). */
/* y (T, n) = clamp(softplus(x (rows xs apart) + b), lo, hi); b (n) may be NULL. */
void mct_softplus(float *y, const float *x, int64_t xs, const float *b, int64_t T, int64_t n, float lo, float hi,
                  mcu_stream s);
/* g (T, n; rows gs apart) = dd (T, n) softplus'(x + b) (x rows xs apart), zero where the
 * clamp held (y <= lo with lo > 0, or y >= hi). */
void mct_softplus_bwd(float *g, int64_t gs, const float *dd, const float *x, int64_t xs, const float *b, const float *y,
                      int64_t T, int64_t n, float lo, float hi, mcu_stream s);
/* y (T, n) = a (T, n) silu(z) (z rows zs apart) */
void mct_gate(float *y, const float *a, const float *z, int64_t zs, int64_t T, int64_t n, mcu_stream s);
/* of y = a silu(z), given g = dL/dy (T, n): da = g silu(z) (may alias g), dz (rows dzs
 * apart) = g a silu'(z) */
void mct_gate_bwd(float *da, float *dz, int64_t dzs, const float *g, const float *a, const float *z, int64_t zs, int64_t T,
                  int64_t n, mcu_stream s);
/* Mamba-2's skip: ys (T, E) += D[e / P] x (rows xs apart). */
void mct_dskip(float *ys, const float *x, int64_t xs, const float *D, int64_t T, int64_t E, int64_t P, mcu_stream s);
/* Its backward: dx (rows dxs apart; not written when NULL) = dys D[e / P]; dD[h] += sum
 * dys x over the head's channels and all rows. */
void mct_dskip_bwd(float *dx, int64_t dxs, float *dD, const float *dys, const float *x, int64_t xs, const float *D, int64_t T,
                   int64_t E, int64_t P, float *scratch, mcu_stream s);
/* y (T, n) += a (T, n) */
void mct_add(float *y, const float *a, int64_t n, mcu_stream s);

/* Causal depthwise conv per sequence of L rows, zero history, and its SiLU: convp (T, C)
 * = conv(in (rows of stride ins)) + b, act (T, C) = silu(convp). K <= 8 taps. */
void mct_conv_silu_fwd(float *convp, float *act, void *act16, const float *in, int64_t ins, const float *w, const float *b,
                       int64_t B, int64_t L, int64_t C, int64_t K, mcu_stream s);
/* Its backward from dact (T, C): din (rows dins apart, overwritten), dw (C, K) +=, db (C)
 * += (db may be NULL). scratch: mct_conv_scratch floats. */
int64_t mct_conv_scratch(int64_t B, int64_t L, int64_t C);
void mct_conv_silu_bwd(float *din, int64_t dins, float *dw, float *db, const float *dact, const float *convp, const float *in,
                       int64_t ins, const float *w, int64_t B, int64_t L, int64_t C, int64_t K, float *scratch, mcu_stream s);

/* Embedding gradient: demb[tok] += the sum of dh rows of that token, in row order. The
 * rows come grouped by token: order (T) the rows sorted by token (stable), and for each
 * of n_tok distinct tokens its id, the start of its rows in order and their count. */
void mct_embed_bwd(float *demb, const float *dh, int64_t D, const int32_t *order, const int32_t *tok, const int32_t *start,
                   const int32_t *count, int64_t n_tok, mcu_stream s);

/* Cross-entropy per row of logits (n rows of V): loss[r] = logsumexp - logit[target]
 * (0 and a zero gradient where target < 0). With backward, the gradient (softmax - onehot)
 * * f replaces the row, or goes to grad16 in bf16 (n rows of V) when that is given and the
 * logits stay. loss (n) in double. */
void mct_xent(float *logits, void *grad16, double *loss, const int32_t *target, int64_t n, int64_t V, int backward, float f,
              mcu_stream s);
/* out[0] = sum of x (n doubles) in order, times scale. */
void mct_sum_d(double *out, const double *x, int64_t n, double scale, mcu_stream s);

/* Sum of squares of n floats into out (one double), in a fixed order; scratch holds
 * mct_sumsq_scratch() doubles. */
int64_t mct_sumsq_scratch(void);
void mct_sumsq(double *out, const float *x, int64_t n, double *scratch, mcu_stream s);
/* AdamW on n values (train/optim.c's formula): g scaled by gscale first. */
void mct_adamw(float *w, float *m, float *v, const float *g, int64_t n, float gscale, float beta1, float beta2, float eps,
               float a, float rb2, float decay, mcu_stream s);
/* dA_log (+)= dA A over n (A = -exp(A_log)). */
void mct_dalog(float *dA_log, const float *dA, const float *A, int64_t n, mcu_stream s);
/* A = -exp(A_log), n values */
void mct_neg_exp(float *A, const float *A_log, int64_t n, mcu_stream s);
/* dst (n) (+)= sum over k < parts of src[k * n + i], in order. */
void mct_sum_parts(float *dst, float *src, int64_t parts, int64_t n, int accumulate, mcu_stream s); /* src is clobbered */

/* ---- Mamba-1 selective scan (train_scan.cu), zero state per sequence ------------- *
 * ys (T, E) = y + D x; given z (rows zs apart), also the gated yo (T, E) = ys silu(z).
 * x rows xs apart; delta (T, E) = softplus(dt) already; B, C rows bcs apart (N values).
 * A (E, N). E a multiple of 32, N <= 16. The forward keeps the state entering every
 * piece of 16 steps and each segment's sum of delta (in keep, a layer's part of the
 * tape) for the backward of the same batch. */
typedef struct mct_scan {
    int64_t B, L, E, N;
    const float *x; int64_t xs;
    const float *delta, *Bm, *Cm; int64_t bcs;
    const float *A, *D;
    float *ys;
    const float *z; int64_t zs; /* optional: the gate */
    float *yo;              /* and its output: float32 (may be NULL) */
    void *yo16;             /* and / or bf16 (may be NULL) */
    float *keep;            /* mct_scan_tape floats: written by the forward, read by the backward */
    /* backward */
    const float *dys;
    float *dx;              /* (T, E) overwritten (dx = the scan's part + D dys) */
    float *ddelta;          /* (T, E) overwritten */
    float *dB, *dC;         /* rows bcs apart, overwritten */
    float *dA, *dD;         /* (E, N), (E) overwritten */
    float *scratch;         /* mct_scan_scratch floats */
} mct_scan;
int64_t mct_scan_tape(int64_t B, int64_t L, int64_t E, int64_t N);
int64_t mct_scan_scratch(int64_t B, int64_t L, int64_t E, int64_t N);
int mct_scan_supported(int64_t E, int64_t N);
void mct_scan_fwd(const mct_scan *a, mcu_stream s);
void mct_scan_bwd(const mct_scan *a, mcu_stream s);

/* ---- Mamba-2 SSD (train_ssd.cu), zero state per sequence ------------------------- *
 * y (T, E; head h's P channels at h P) = the SSD of x (rows xs apart), B / C (group g =
 * h / (H / G) at g N, rows bcs apart), dt (T, H), A (H); with D (H) and the tensor-core
 * form, also the skip: y += D x, and dx = D dy + the SSD's part (overwritten, not added).
 * The forward keeps each chunk's entering state (in keep, mct_ssd_tape floats, a layer's
 * part of the tape) for the backward of the same batch. */
typedef struct mct_ssd {
    int64_t B, L, H, P, N, G;
    const float *x; int64_t xs;
    const float *Bm, *Cm; int64_t bcs;
    const float *dt, *A;
    float *y;               /* (T, E) */
    float *keep;            /* written by the forward, read by the backward */
    /* backward */
    const float *dy;        /* (T, E) */
    float *dx; int64_t dxs; /* += (= with D) */
    float *dB, *dC;         /* rows bcs apart, overwritten */
    float *ddt;             /* (T, H) overwritten */
    float *dA;              /* (H) overwritten */
    float *scratch;         /* mct_ssd_scratch floats */
    int tc;                 /* each chunk as bf16 products on tensor cores (train_ssd_tc.h; only where
                               mct_ssd_tc_fits) instead of the float32 recurrent form */
    const float *D;         /* optional, tensor-core form only: the skip (H) */
} mct_ssd;
int64_t mct_ssd_tape(int64_t B, int64_t L, int64_t H, int64_t P, int64_t N);
int64_t mct_ssd_scratch(int64_t B, int64_t L, int64_t H, int64_t P, int64_t N);
int mct_ssd_supported(int64_t P, int64_t N);
void mct_ssd_fwd(const mct_ssd *a, mcu_stream s);
void mct_ssd_bwd(const mct_ssd *a, mcu_stream s);

#ifdef __cplusplus
}
#endif
#endif
