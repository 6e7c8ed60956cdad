/* gemm_avx2.c — GEMM / GEMV for AVX2 + FMA + F16C: tiles of 4 weight rows x 2 tokens
 * (8 accumulators of 8 floats: with the loads it fits the 16 ymm registers), a scalar
 * loop for the K tail. Weights in their stored dtype, widened in registers. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "core/dtype.h"
#include "cpu/kernels.h"

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define TR 4
#define TT 2

TARGET static inline __m256 load_f32(const void *p, int64_t k) { return _mm256_loadu_ps((const float *)p + k); }
TARGET static inline __m256 load_bf16(const void *p, int64_t k) {
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
TARGET static inline __m256 load_f16(const void *p, int64_t k) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + k)));
}
static inline float one_f32(const void *p, int64_t k) { float v; memcpy(&v, (const float *)p + k, 4); return v; }
static inline float one_bf16(const void *p, int64_t k) { uint16_t h; memcpy(&h, (const uint16_t *)p + k, 2); return mc_bf16_to_f32(h); }
static inline float one_f16(const void *p, int64_t k) { uint16_t h; memcpy(&h, (const uint16_t *)p + k, 2); return mc_f16_to_f32(h); }

TARGET static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define DEFINE_GEMM(NAME, LOAD, ONE, ESIZE)                                                                        \
    TARGET static void NAME(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W,     \
                            int64_t r0, int64_t r1, const float *bias) {                                           \
        const int64_t K = W->cols, K8 = K / 8 * 8;                                                                 \
        for (int64_t r = r0; r < r1; r += TR) {                                                                    \
            const int nr = r1 - r < TR ? (int)(r1 - r) : TR;                                                       \
            const char *w[TR];                                                                                     \
            for (int i = 0; i < TR; i++) w[i] = (const char *)W->data + (size_t)((r + (i < nr ? i : nr - 1)) * K) * ESIZE; \
            for (int64_t t = 0; t < T; t += TT) {                                                                  \
                const int nt = T - t < TT ? (int)(T - t) : TT;                                                     \
                const float *xp[TT];                                                                               \
                for (int j = 0; j < TT; j++) xp[j] = x + (t + (j < nt ? j : nt - 1)) * xs;                         \
                __m256 acc[TR][TT];                                                                                \
                for (int i = 0; i < TR; i++)                                                                       \
                    for (int j = 0; j < TT; j++) acc[i][j] = _mm256_setzero_ps();                                  \
                for (int64_t k = 0; k < K8; k += 8) {                                                              \
                    __m256 xv[TT];                                                                                 \
                    for (int j = 0; j < TT; j++) xv[j] = _mm256_loadu_ps(xp[j] + k);                               \
                    for (int i = 0; i < TR; i++) {                                                                 \
                        __m256 wv = LOAD(w[i], k);                                                                 \
                        for (int j = 0; j < TT; j++) acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);            \
                    }                                                                                              \
                }                                                                                                  \
                for (int i = 0; i < nr; i++)                                                                       \
                    for (int j = 0; j < nt; j++) {                                                                 \
                        float s = hsum(acc[i][j]);                                                                 \
                        for (int64_t k = K8; k < K; k++) s += ONE(w[i], k) * xp[j][k];                             \
                        out[(t + j) * os + r + i] = s + (bias ? bias[r + i] : 0.0f);                               \
                    }                                                                                              \
            }                                                                                                      \
        }                                                                                                          \
    }

DEFINE_GEMM(gemm_f32, load_f32, one_f32, 4)
DEFINE_GEMM(gemm_bf16, load_bf16, one_bf16, 2)
DEFINE_GEMM(gemm_f16, load_f16, one_f16, 2)

void mc_gemm_avx2(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W, int64_t r0,
                  int64_t r1, const float *bias, float *scratch) {
    if (mc_dtype_is_quant(W->dtype)) {
        if (scratch && mc_gemv_quant_supported(W->dtype)) mc_gemv_quant_avx2(out, os, x, xs, T, W, r0, r1, bias, scratch);
        else mc_gemm_scalar(out, os, x, xs, T, W, r0, r1, bias, scratch);
    } else if (W->dtype == MAMBAC_DTYPE_F32) gemm_f32(out, os, x, xs, T, W, r0, r1, bias);
    else if (W->dtype == MAMBAC_DTYPE_BF16) gemm_bf16(out, os, x, xs, T, W, r0, r1, bias);
    else gemm_f16(out, os, x, xs, T, W, r0, r1, bias);
}
#endif
