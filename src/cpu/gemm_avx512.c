/* gemm_avx512.c — GEMM / GEMV for AVX-512 (F, BW, VL). Two kernels, chosen by T:
 *
 * - few tokens (decode: T = 1): one weight row at a time, 4 accumulators of 16 floats
 *   along K, masked loads for the K tail, one horizontal sum per output. Weights are
 *   read in their stored dtype and widened in registers (f16: vcvtph2ps; bf16: the
 *   even/odd split below), so bf16/f16 models stream half the bytes of f32.
 * - many tokens (prefill): weights are packed, 32 rows at a time, into a K x 32 float
 *   panel (the dtype conversion happens once here), then an outer-product micro-kernel
 *   computes 6 tokens x 32 rows: per k, 2 panel loads, 6 broadcasts of x, 12 FMAs into
 *   12 accumulators — no horizontal sums, stores of 16 consecutive outputs. Compute-bound.
 *
 * Workbench: bench/bench_gemm; measurements in docs/PERFORMANCE.md. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "core/dtype.h"
#include "core/quant.h"
#include "cpu/kernels.h"
#include "cpu/simd_avx512.h"
#include "model/repack_x16.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define MR 6  /* tokens per micro-tile */
#define NR 32 /* rows per panel (= MC_GEMM_PANEL) */
#define MIN_T_PACKED 4

TARGET static inline __m512 load_f32(const void *p, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, (const float *)p + k);
}
TARGET static inline __m512 load_bf16(const void *p, int64_t k, __mmask16 m) {
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
TARGET static inline __m512 load_f16(const void *p, int64_t k, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k));
}

/* GEMV: rows [r0, r1) for each token separately, one weight row at a time (the bytes
 * are then read strictly in order: reading 8 rows side by side, as an earlier version
 * did, made 8 short streams the hardware prefetcher never got ahead of — half the
 * DRAM bandwidth on the 50280-row head), 4 accumulators to hide the FMA latency. */
#define DEFINE_GEMV(NAME, LOAD, ESIZE)                                                                              \
    TARGET static void NAME(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W,      \
                            int64_t r0, int64_t r1, const float *bias) {                                            \
        const int64_t K = W->cols;                                                                                  \
        const __mmask16 tail = (__mmask16)((1u << (K % 16)) - 1);                                                   \
        for (int64_t t = 0; t < T; t++) {                                                                           \
            const float *xr = x + t * xs;                                                                           \
            for (int64_t r = r0; r < r1; r++) {                                                                     \
                const char *w = (const char *)W->data + (size_t)(r * K) * ESIZE;                                    \
                mc_prefetch_row_ahead(W->data, (size_t)K * ESIZE, r, r1);                                           \
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                         \
                int64_t k = 0;                                                                                      \
                for (; k + 64 <= K; k += 64) {                                                                      \
                    a0 = _mm512_fmadd_ps(LOAD(w, k, 0xffff), _mm512_loadu_ps(xr + k), a0);                          \
                    a1 = _mm512_fmadd_ps(LOAD(w, k + 16, 0xffff), _mm512_loadu_ps(xr + k + 16), a1);                \
                    a2 = _mm512_fmadd_ps(LOAD(w, k + 32, 0xffff), _mm512_loadu_ps(xr + k + 32), a2);                \
                    a3 = _mm512_fmadd_ps(LOAD(w, k + 48, 0xffff), _mm512_loadu_ps(xr + k + 48), a3);                \
                }                                                                                                   \
                for (; k + 16 <= K; k += 16) a0 = _mm512_fmadd_ps(LOAD(w, k, 0xffff), _mm512_loadu_ps(xr + k), a0); \
                if (k < K) a1 = _mm512_fmadd_ps(LOAD(w, k, tail), _mm512_maskz_loadu_ps(tail, xr + k), a1);        \
                const __m512 sum = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));                    \
                out[t * os + r] = _mm512_reduce_add_ps(sum) + (bias ? bias[r] : 0.0f);                              \
            }                                                                                                       \
        }                                                                                                           \
    }

DEFINE_GEMV(gemv_f32, load_f32, 4)
DEFINE_GEMV(gemv_f16, load_f16, 2)
DEFINE_GEMV(gemv_bf16_widen, load_bf16, 2) /* without scratch */

/* bf16 GEMV without widening shuffles: one 64-byte load holds 32 weights; shifting each
 * 32-bit lane left by 16 gives the even-indexed weights as f32, masking the low half
 * gives the odd ones. x is split once per token into its even and odd elements (xe, xo
 * in scratch) to match. Sums differ from the other kernels only in order. */
TARGET static void gemv_bf16(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W,
                             int64_t r0, int64_t r1, const float *bias, float *scratch) {
    const int64_t K = W->cols, K32 = K / 32 * 32;
    float *xe = scratch, *xo = scratch + K / 2 + 16;
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * xs;
        for (int64_t k = 0; k < K32 / 2; k++) xe[k] = xr[2 * k], xo[k] = xr[2 * k + 1];
        for (int64_t r = r0; r < r1; r++) {
            const uint16_t *w = (const uint16_t *)W->data + (size_t)(r * K);
            mc_prefetch_row_ahead(W->data, (size_t)K * 2, r, r1);
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            int64_t k = 0;
            for (; k + 64 <= K32; k += 64) {
                const __m512i v0 = _mm512_loadu_si512((const void *)(w + k)), v1 = _mm512_loadu_si512((const void *)(w + k + 32));
                a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_loadu_ps(xe + k / 2), a0);
                a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, hi)), _mm512_loadu_ps(xo + k / 2), a1);
                a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)), _mm512_loadu_ps(xe + k / 2 + 16), a2);
                a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v1, hi)), _mm512_loadu_ps(xo + k / 2 + 16), a3);
            }
            for (; k < K32; k += 32) {
                const __m512i v = _mm512_loadu_si512((const void *)(w + k));
                a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(xe + k / 2), a0);
                a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi)), _mm512_loadu_ps(xo + k / 2), a1);
            }
            float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
            for (; k < K; k += 16) { /* the tail, 16 at a time with masks */
                const __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
                sum += _mm512_reduce_add_ps(_mm512_mul_ps(load_bf16(w, k, m), _mm512_maskz_loadu_ps(m, xr + k)));
            }
            out[t * os + r] = sum + (bias ? bias[r] : 0.0f);
        }
    }
}

TARGET static inline __m512 load_any(mambac_dtype dt, const void *p, int64_t k, __mmask16 m) {
    return dt == MAMBAC_DTYPE_F32 ? load_f32(p, k, m) : dt == MAMBAC_DTYPE_BF16 ? load_bf16(p, k, m) : load_f16(p, k, m);
}

/* Packs rows [r, r + nr) (nr <= NR) of W into panel[k * NR + i] as float32, zero rows
 * past nr. Float rows: 16 x 16 blocks loaded (widened), transposed in registers and
 * stored as panel rows (a scalar scatter here was ~9% of prefill). Quantized rows are
 * first dequantized into `row` (K floats). */
TARGET static void pack_panel(float *panel, const mc_weight *W, int64_t r, int nr, float *row) {
    const int64_t K = W->cols;
    if (mc_dtype_is_quant(W->dtype)) {
        for (int i = 0; i < NR; i++) {
            if (i >= nr) {
                for (int64_t k = 0; k < K; k++) panel[k * NR + i] = 0.0f;
                continue;
            }
            mc_weight_row_f32(row, W, r + i);
            for (int64_t k = 0; k < K; k++) panel[k * NR + i] = row[k];
        }
        return;
    }
    const size_t rb = mc_dtype_row_bytes(W->dtype, K);
    for (int64_t k = 0; k < K; k += 16) {
        const __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
        const int nk = K - k >= 16 ? 16 : (int)(K - k);
        for (int half = 0; half < NR / 16; half++) {
            __m512 v[16];
            for (int i = 0; i < 16; i++) {
                const int ri = half * 16 + i;
                v[i] = ri < nr ? load_any(W->dtype, (const char *)W->data + (size_t)(r + ri) * rb, k, m) : _mm512_setzero_ps();
            }
            mc_transpose16(v);
            for (int j = 0; j < nk; j++) _mm512_storeu_ps(panel + (k + j) * NR + half * 16, v[j]);
        }
    }
}

/* out rows [t, t + mr) x panel rows [r, r + nr): the 6 x 32 outer-product micro-kernel. */
TARGET static void micro(float *out, int64_t os, const float *x, int64_t xs, int64_t K, const float *panel, int64_t r,
                         int nr, int mr, const float *bias) {
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float *xp[MR];
    for (int i = 0; i < MR; i++) xp[i] = x + (i < mr ? i : mr - 1) * xs;
    for (int64_t k = 0; k < K; k++) {
        const __m512 w0 = _mm512_loadu_ps(panel + k * NR), w1 = _mm512_loadu_ps(panel + k * NR + 16);
        for (int i = 0; i < MR; i++) {
            const __m512 xb = _mm512_set1_ps(xp[i][k]);
            acc[i][0] = _mm512_fmadd_ps(xb, w0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(xb, w1, acc[i][1]);
        }
    }
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias + r) : _mm512_setzero_ps();
    __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + r + 16) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(out + i * os + r, m0, _mm512_add_ps(acc[i][0], b0));
        _mm512_mask_storeu_ps(out + i * os + r + 16, m1, _mm512_add_ps(acc[i][1], b1));
    }
}

TARGET static void gemm_packed(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W,
                               int64_t r0, int64_t r1, const float *bias, float *panel) {
    const int64_t K = W->cols;
    for (int64_t r = r0; r < r1; r += NR) {
        const int nr = r1 - r < NR ? (int)(r1 - r) : NR;
        pack_panel(panel, W, r, nr, panel + (int64_t)NR * K);
        for (int64_t t = 0; t < T; t += MR) {
            const int mr = T - t < MR ? (int)(T - t) : MR;
            micro(out + t * os, os, x + t * xs, xs, K, panel, r, nr, mr, bias);
        }
    }
}

void mc_gemm_avx512(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W, int64_t r0,
                    int64_t r1, const float *bias, float *scratch) {
    if (T >= MIN_T_PACKED && scratch && mc_gemm_quant_vnni_supported(W->dtype) && mc_cpu_has_vnni()) {
        mc_gemm_quant_vnni(out, os, x, xs, T, W, r0, r1, bias, scratch);
        return;
    }
    if (T >= MIN_T_PACKED && scratch) {
        gemm_packed(out, os, x, xs, T, W, r0, r1, bias, scratch);
        return;
    }
    if (mc_dtype_is_quant(W->dtype)) {
        if (!scratch || !mc_gemv_quant_supported(W->dtype)) mc_gemm_scalar(out, os, x, xs, T, W, r0, r1, bias, scratch);
        else if (mc_cpu_has_vnni()) mc_gemv_quant_pairs(out, os, x, xs, T, W, r0, r1, bias, scratch);
        else mc_gemv_quant_avx2(out, os, x, xs, T, W, r0, r1, bias, scratch);
    } else if (W->dtype == MAMBAC_DTYPE_F32) gemv_f32(out, os, x, xs, T, W, r0, r1, bias);
    else if (W->dtype == MAMBAC_DTYPE_BF16 && scratch) gemv_bf16(out, os, x, xs, T, W, r0, r1, bias, scratch);
    else if (W->dtype == MAMBAC_DTYPE_BF16) gemv_bf16_widen(out, os, x, xs, T, W, r0, r1, bias);
    else gemv_f16(out, os, x, xs, T, W, r0, r1, bias);
}
#endif
