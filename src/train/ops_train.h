/* ops_train.h — forward pieces that keep what their backward needs, and the backward
 * of every op of both architectures. Plain C over float32; the callers split work
 * across threads (by sequence or channel) where the loops are heavy.
 * Shapes: T = B * L tokens (sequence-major); strides in floats. */
#ifndef MC_OPS_TRAIN_H
#define MC_OPS_TRAIN_H

#include <math.h>
#include <stdint.h>

static inline float mc_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
/* d silu(x) / dx = s (1 + x (1 - s)), s = sigmoid(x). */
static inline float mc_dsilu(float x) {
    const float s = mc_sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}
/* d softplus(x) / dx with torch's threshold (x > 20: softplus is x). */
static inline float mc_dsoftplus(float x) { return x > 20.0f ? 1.0f : mc_sigmoid(x); }

/* RMSNorm: out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) per row (kept). */
void mc_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t n, float eps);
/* dx (+)= d/dx; dw += d/dw. accumulate: add into dx instead of writing. */
void mc_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *rstd, const float *w, int64_t T,
                    int64_t n, int accumulate);

/* Causal depthwise conv per sequence (zero history): out (T, C) = conv(in) + b, where
 * in is channels [0, C) of rows in_stride apart. */
void mc_conv_fwd(float *out, const float *in, int64_t in_stride, const float *w, const float *b, int64_t B, int64_t L,
                 int64_t C, int64_t K, int64_t c0, int64_t c1);
/* Given dout (T, C): din (rows din_stride apart, overwritten), dw += , db += (db may be
 * NULL); channels [c0, c1). */
void mc_conv_bwd(float *din, int64_t din_stride, float *dw, float *db, const float *dout, const float *in, int64_t in_stride,
                 const float *w, int64_t B, int64_t L, int64_t C, int64_t K, int64_t c0, int64_t c1);

/* Mamba-1 selective scan for sequence rows [t0, t0 + L), channels [e0, e1), zero
 * state: ys = y + D x (no gating), y_t = sum_n h_t C_t, h_t = exp(delta A) h + delta B x. */
typedef struct mc_scan_train {
    int64_t L, E, N, x_stride, bc_stride;
    const float *x, *delta, *B, *C, *A, *D; /* x: act; B, C: in xdbl rows; A = -exp(A_log) (E, N) */
    float *ys;
    /* backward */
    const float *dys;
    float *dx, *ddelta, *dB, *dC; /* dx, ddelta (T, E) overwritten; dB, dC rows bc_stride apart, += */
    float *dA, *dD;               /* (E, N), (E): += (per-thread copies when split by sequence) */
    float *work;                  /* 2 * L * round_up(N, 16) floats, 64-byte aligned */
} mc_scan_train;
void mc_scan_fwd(const mc_scan_train *a, int64_t e0, int64_t e1);
void mc_scan_bwd(const mc_scan_train *a, int64_t e0, int64_t e1);
#if defined(__x86_64__)
/* The same with the N states in AVX-512 vectors (scan_train_avx512.c); work must be
 * 64-byte aligned and hold 2 * L * round_up(N, 16) floats. */
void mc_scan_fwd_avx512(const mc_scan_train *a, int64_t e0, int64_t e1);
void mc_scan_bwd_avx512(const mc_scan_train *a, int64_t e0, int64_t e1);
/* And in AVX2 vectors of 8 (scan_train_avx2.c); the same work (rows of round_up(N, 16)). */
void mc_scan_fwd_avx2(const mc_scan_train *a, int64_t e0, int64_t e1);
void mc_scan_bwd_avx2(const mc_scan_train *a, int64_t e0, int64_t e1);
#endif

/* Mamba-2 SSD backward for one sequence (L rows) and the heads of group g, recurrent
 * form with the states recomputed: given dy (gradient of y = S_t C_t), adds into dx,
 * dB, dC (rows of their strides; this group's slices), ddt (L, H), dA (H). */
typedef struct mc_ssd_train {
    int64_t L, H, P, N, G;
    const float *x; int64_t x_stride;
    const float *B, *C; int64_t bc_stride;
    const float *dt; int64_t dt_stride;
    const float *A;             /* (H): -exp(A_log) */
    const float *dy; int64_t dy_stride;
    float *dx; int64_t dx_stride;
    float *dB, *dC;             /* rows bc_stride apart, like B and C */
    float *ddt;                 /* rows dt_stride apart */
    float *dA;                  /* (H) += */
    float *work;                /* (L + 2) * P * N floats */
} mc_ssd_train;
void mc_ssd_bwd(const mc_ssd_train *a, int64_t g);
#if defined(__x86_64__)
/* The same with the state's columns in AVX2 vectors (ssd_train_avx2.c); N <= 256. */
void mc_ssd_bwd_avx2(const mc_ssd_train *a, int64_t g);
#endif

#endif
