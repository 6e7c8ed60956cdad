/* eltwise_avx2.c — eltwise_avx512.c's causal conv1d prefill and gated RMSNorm for AVX2
 * (8 channels / values per register, masked loads for the tails). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/simd_avx2.h"

#define TARGET MC_AVX2_TARGET
#define MAX_K 8

TARGET static inline __attribute__((always_inline)) void conv_block(float *x, int64_t T, int64_t stride, int nc,
                                                                    int K, const float *w, const float *b,
                                                                    float *window) {
    const __m256i m = mc_mask256(nc);
    float wt[MAX_K][8] = {{0}}, ht[MAX_K][8] = {{0}}, bt[8] = {0};
    for (int j = 0; j < nc; j++) {
        for (int k = 0; k < K; k++) wt[k][j] = w[j * K + k];
        for (int k = 0; k < K - 1; k++) ht[k][j] = window[j * (K - 1) + k];
        bt[j] = b ? b[j] : 0.0f;
    }
    __m256 wk[MAX_K], hist[MAX_K];
    for (int k = 0; k < K; k++) wk[k] = _mm256_loadu_ps(wt[k]), hist[k] = _mm256_loadu_ps(ht[k]);
    const __m256 bias = _mm256_loadu_ps(bt);
    for (int64_t t = 0; t < T; t++) {
        const __m256 in = _mm256_maskload_ps(x + t * stride, m);
        __m256 acc = bias;
        for (int k = 0; k < K - 1; k++) acc = _mm256_fmadd_ps(wk[k], hist[k], acc);
        acc = _mm256_fmadd_ps(wk[K - 1], in, acc);
        for (int k = 0; k + 1 < K - 1; k++) hist[k] = hist[k + 1];
        hist[K - 2] = in;
        _mm256_maskstore_ps(x + t * stride, m, mc_silu256(acc));
    }
    for (int k = 0; k < K - 1; k++) _mm256_storeu_ps(ht[k], hist[k]);
    for (int j = 0; j < nc; j++)
        for (int k = 0; k < K - 1; k++) window[j * (K - 1) + k] = ht[k][j];
}

TARGET void mc_conv1d_prefill_avx2(float *x, int64_t T, int64_t stride, int64_t C, int64_t K, const float *w,
                                   const float *b, float *window) {
    if (K < 2 || K > MAX_K) {
        mc_conv1d_prefill(x, T, stride, C, K, w, b, window);
        return;
    }
    for (int64_t c = 0; c < C; c += 8) {
        const int nc = C - c < 8 ? (int)(C - c) : 8;
        const float *bc = b ? b + c : NULL;
        float *xc = x + c, *win = window + c * (K - 1);
        switch (K) {
        case 4: conv_block(xc, T, stride, nc, 4, w + c * 4, bc, win); break;
        case 3: conv_block(xc, T, stride, nc, 3, w + c * 3, bc, win); break;
        case 2: conv_block(xc, T, stride, nc, 2, w + c * 2, bc, win); break;
        default: conv_block(xc, T, stride, nc, (int)K, w + c * K, bc, win); break;
        }
    }
}

TARGET static void gate(float *y, const float *z, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = mc_mask256(n - i < 8 ? (int)(n - i) : 8);
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(y + i, m), mc_silu256(_mm256_maskload_ps(z + i, m))));
    }
}

/* y = rmsnorm(y) * w; the sum of squares in double, as the reference. */
TARGET static void rmsnorm_row(float *y, const float *w, int64_t n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 v = _mm256_maskload_ps(y + i, mc_mask256(n - i < 8 ? (int)(n - i) : 8));
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    double s[4];
    _mm256_storeu_pd(s, _mm256_add_pd(s0, s1));
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sqrt((s[0] + s[1] + s[2] + s[3]) / (double)n + eps)));
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = mc_mask256(n - i < 8 ? (int)(n - i) : 8);
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(y + i, m), inv), _mm256_maskload_ps(w + i, m)));
    }
}

TARGET void mc_gated_rmsnorm_avx2(float *y, const float *z, const float *w, int64_t E, int64_t G, int norm_before_gate,
                                  float eps) {
    if (!w || !norm_before_gate) gate(y, z, E);
    if (!w) return;
    const int64_t gs = E / G;
    for (int64_t g = 0; g < G; g++) rmsnorm_row(y + g * gs, w + g * gs, gs, eps);
    if (norm_before_gate) gate(y, z, E);
}
#endif
