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
TARGET static inline __attribute__((always_inline)) void from_channel_major(const float *a, int S, __m512 v[4]) {
    __m512 r[4];
    for (int q = 0; q < 4; q++) r[q] = q < S ? _mm512_loadu_ps(a + 16 * q) : _mm512_setzero_ps();
    for (int k = 0; k < S; k++) {
        int32_t e[16];
        __mmask16 hi = 0;
        for (int j = 0; j < 16; j++) {
            e[j] = j * S + k; /* in r[e / 16]; permutex2var reads its low 5 bits */
            if (e[j] >= 32) hi |= (__mmask16)(1u << j);
        }
        const __m512i idx = _mm512_loadu_si512((const void *)e);
        v[k] = _mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(r[0], idx, r[1]), _mm512_permutex2var_ps(r[2], idx, r[3]));
    }
}
TARGET static inline __attribute__((always_inline)) void to_channel_major(float *a, int S, const __m512 v[4]) {
    const __m512 z = _mm512_setzero_ps();
    for (int q = 0; q < S; q++) {
        int32_t idx[16];
        __mmask16 hi = 0;
        for (int i = 0; i < 16; i++) { /* a[16 q + i] = v[k] lane j with 16 q + i = j S + k */
            const int e = 16 * q + i, j = e / S, k = e % S;
            idx[i] = j + 16 * (k & 1);
            if (k >= 2) hi |= (__mmask16)(1u << i);
        }
        const __m512i ix = _mm512_loadu_si512((const void *)idx);
        const __m512 lo2 = _mm512_permutex2var_ps(v[0], ix, S > 1 ? v[1] : z);
        const __m512 hi2 = S > 2 ? _mm512_permutex2var_ps(v[2], ix, S > 3 ? v[3] : z) : z;
        _mm512_storeu_ps(a + 16 * q, _mm512_mask_blend_ps(hi, lo2, hi2));
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
