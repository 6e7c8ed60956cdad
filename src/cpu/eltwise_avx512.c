/* eltwise_avx512.c — the element-wise ops around the matrix products, for AVX-512:
 * the causal conv1d of prefill (16 channels per register, the K - 1 previous inputs
 * kept in registers while walking the tokens) and Mamba-2's gated RMSNorm. Before
 * these, the scalar forms were ~12% of a one-thread mamba2-130m prefill (perf, with
 * their expf). SiLU uses mc_exp512 (about 1 ulp); tested against ops_ref.c in
 * test_kernels. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/simd_avx512.h"

#define TARGET MC_AVX512_TARGET
#define MAX_K 8

/* A block of 16 channels of a channel-major (16, S) array, S <= 4, to and from S
 * registers (v[k] lane j = a[j * S + k]): two two-source permutes and a blend per
 * register. In decode (T = 1) the scalar copies these replace were most of the conv. */
/* Permute indices and blend masks (S = 1..4): FROM_IDX[S][k] lane j = j S + k (the
 * element of r[0..3] holding tap k of channel j); TO_IDX[S][q] lane i = the lane of
 * v[k] (+ 16 for odd k) that element 16 q + i = j S + k comes from. */
static const int32_t FROM_IDX[5][4][16] __attribute__((aligned(64))) = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}, {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {{0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45}, {1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37, 40, 43, 46}, {2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 41, 44, 47}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {{0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60}, {1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61}, {2, 6, 10, 14, 18, 22, 26, 30, 34, 38, 42, 46, 50, 54, 58, 62}, {3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47, 51, 55, 59, 63}}};
static const __mmask16 FROM_HI[5][4] = {{0x0, 0x0, 0x0, 0x0}, {0x0, 0x0, 0x0, 0x0}, {0x0, 0x0, 0x0, 0x0}, {0xf800, 0xf800, 0xfc00, 0x0}, {0xff00, 0xff00, 0xff00, 0xff00}};
static const int32_t TO_IDX[5][4][16] __attribute__((aligned(64))) = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {{0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23}, {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {{0, 16, 0, 1, 17, 1, 2, 18, 2, 3, 19, 3, 4, 20, 4, 5}, {21, 5, 6, 22, 6, 7, 23, 7, 8, 24, 8, 9, 25, 9, 10, 26}, {10, 11, 27, 11, 12, 28, 12, 13, 29, 13, 14, 30, 14, 15, 31, 15}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {{0, 16, 0, 16, 1, 17, 1, 17, 2, 18, 2, 18, 3, 19, 3, 19}, {4, 20, 4, 20, 5, 21, 5, 21, 6, 22, 6, 22, 7, 23, 7, 23}, {8, 24, 8, 24, 9, 25, 9, 25, 10, 26, 10, 26, 11, 27, 11, 27}, {12, 28, 12, 28, 13, 29, 13, 29, 14, 30, 14, 30, 15, 31, 15, 31}}};
static const __mmask16 TO_HI[5][4] = {{0x0, 0x0, 0x0, 0x0}, {0x0, 0x0, 0x0, 0x0}, {0x0, 0x0, 0x0, 0x0}, {0x4924, 0x2492, 0x9249, 0x0}, {0xcccc, 0xcccc, 0xcccc, 0xcccc}};

TARGET static inline __attribute__((always_inline)) void from_channel_major(const float *a, int S, __m512 v[4]) {
    __m512 r[4];
    for (int q = 0; q < 4; q++) r[q] = q < S ? _mm512_loadu_ps(a + 16 * q) : _mm512_setzero_ps();
    for (int k = 0; k < S; k++) {
        const __m512i idx = _mm512_load_si512((const void *)FROM_IDX[S][k]);
        v[k] = _mm512_mask_blend_ps(FROM_HI[S][k], _mm512_permutex2var_ps(r[0], idx, r[1]),
                                    _mm512_permutex2var_ps(r[2], idx, r[3]));
    }
}
TARGET static inline __attribute__((always_inline)) void to_channel_major(float *a, int S, const __m512 v[4]) {
    const __m512 z = _mm512_setzero_ps();
    for (int q = 0; q < S; q++) {
        const __m512i idx = _mm512_load_si512((const void *)TO_IDX[S][q]);
        const __m512 lo2 = _mm512_permutex2var_ps(v[0], idx, S > 1 ? v[1] : z);
        const __m512 hi2 = S > 2 ? _mm512_permutex2var_ps(v[2], idx, S > 3 ? v[3] : z) : z;
        _mm512_storeu_ps(a + 16 * q, _mm512_mask_blend_ps(TO_HI[S][q], lo2, hi2));
    }
}

/* One block of nc <= 16 channels; K is a constant after inlining (see the switch). */
TARGET static inline __attribute__((always_inline)) void conv_block(float *x, int64_t T, int64_t stride, int nc,
                                                                    int K, const float *w, const float *b,
                                                                    float *window) {
    const __mmask16 m = (__mmask16)((1u << nc) - 1);
    const int regs = nc == 16 && K <= 4; /* whole block, taps through permutes */
    __m512 wk[MAX_K], hist[MAX_K];
    if (regs) {
        from_channel_major(w, K, wk);
        from_channel_major(window, K - 1, hist);
    } else {
        float wt[MAX_K][16] = {{0}}, ht[MAX_K][16] = {{0}};
        for (int j = 0; j < nc; j++) {
            for (int k = 0; k < K; k++) wt[k][j] = w[j * K + k];
            for (int k = 0; k < K - 1; k++) ht[k][j] = window[j * (K - 1) + k];
        }
        for (int k = 0; k < K; k++) wk[k] = _mm512_loadu_ps(wt[k]), hist[k] = _mm512_loadu_ps(ht[k]);
    }
    const __m512 bias = b ? _mm512_maskz_loadu_ps(m, b) : _mm512_setzero_ps();
    for (int64_t t = 0; t < T; t++) {
        const __m512 in = _mm512_maskz_loadu_ps(m, x + t * stride);
        __m512 acc = bias;
        for (int k = 0; k < K - 1; k++) acc = _mm512_fmadd_ps(wk[k], hist[k], acc);
        acc = _mm512_fmadd_ps(wk[K - 1], in, acc);
        for (int k = 0; k + 1 < K - 1; k++) hist[k] = hist[k + 1];
        hist[K - 2] = in;
        _mm512_mask_storeu_ps(x + t * stride, m, mc_silu512(acc));
    }
    if (regs) {
        to_channel_major(window, K - 1, hist);
        return;
    }
    float ht[MAX_K][16];
    for (int k = 0; k < K - 1; k++) _mm512_storeu_ps(ht[k], hist[k]);
    for (int j = 0; j < nc; j++)
        for (int k = 0; k < K - 1; k++) window[j * (K - 1) + k] = ht[k][j];
}

TARGET void mc_conv1d_prefill_avx512(float *x, int64_t T, int64_t stride, int64_t C, int64_t K, const float *w,
                                     const float *b, float *window) {
    if (K < 2 || K > MAX_K) {
        mc_conv1d_prefill(x, T, stride, C, K, w, b, window);
        return;
    }
    for (int64_t c = 0; c < C; c += 16) {
        const int nc = C - c < 16 ? (int)(C - c) : 16;
        const float *bc = b ? b + c : NULL;
        float *xc = x + c, *win = window + c * (K - 1);
        switch (K) { /* the common widths with K known to the compiler */
        case 4: conv_block(xc, T, stride, nc, 4, w + c * 4, bc, win); break;
        case 3: conv_block(xc, T, stride, nc, 3, w + c * 3, bc, win); break;
        case 2: conv_block(xc, T, stride, nc, 2, w + c * 2, bc, win); break;
        default: conv_block(xc, T, stride, nc, (int)K, w + c * K, bc, win); break;
        }
    }
}

/* y *= silu(z) over n values. */
TARGET static void gate(float *y, const float *z, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), mc_silu512(_mm512_maskz_loadu_ps(m, z + i)));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

/* y = rmsnorm(y) * w over n values; the sum of squares in double, as the reference. */
TARGET static void rmsnorm_row(float *y, const float *w, int64_t n, float eps) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, y + i);
        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        s0 = _mm512_fmadd_pd(lo, lo, s0);
        s1 = _mm512_fmadd_pd(hi, hi, s1);
    }
    const double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    const __m512 inv = _mm512_set1_ps((float)(1.0 / sqrt(ss / (double)n + eps)));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), inv), _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

TARGET void mc_gated_rmsnorm_avx512(float *y, const float *z, const float *w, int64_t E, int64_t G,
                                    int norm_before_gate, float eps) {
    if (!w || !norm_before_gate) gate(y, z, E);
    if (!w) return;
    const int64_t gs = E / G;
    for (int64_t g = 0; g < G; g++) rmsnorm_row(y + g * gs, w + g * gs, gs, eps);
    if (norm_before_gate) gate(y, z, E);
}
#endif
