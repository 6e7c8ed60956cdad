/* gemm_avx512.c — GEMM / GEMV for AVX-512 (F, BW, VL): tiles of 4 weight rows x 4
 * tokens, 16 accumulators of 16 floats, masked loads for the K tail. Weights are read
 * in their stored dtype and widened in registers (bf16: shift; f16: vcvtph2ps), so
 * bf16/f16 models stream half the bytes of f32 in decode. Compiled for the target by
 * function attribute; only called when the CPU has it. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu/kernels.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define TR 4
#define TT 4

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

/* One kernel per weight dtype (LOAD is inlined into the tile loop). */
#define DEFINE_GEMM(NAME, LOAD, ESIZE)                                                                             \
    TARGET static void NAME(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W,     \
                            int64_t r0, int64_t r1, const float *bias) {                                           \
        const int64_t K = W->cols;                                                                                 \
        const __mmask16 tail = (__mmask16)((1u << (K % 16)) - 1);                                                  \
        for (int64_t r = r0; r < r1; r += TR) {                                                                    \
            const int nr = r1 - r < TR ? (int)(r1 - r) : TR;                                                       \
            const char *w[TR];                                                                                     \
            for (int i = 0; i < TR; i++) w[i] = (const char *)W->data + (size_t)((r + (i < nr ? i : nr - 1)) * K) * ESIZE; \
            for (int64_t t = 0; t < T; t += TT) {                                                                  \
                const int nt = T - t < TT ? (int)(T - t) : TT;                                                     \
                const float *xp[TT];                                                                               \
                for (int j = 0; j < TT; j++) xp[j] = x + (t + (j < nt ? j : nt - 1)) * xs;                         \
                __m512 acc[TR][TT];                                                                                \
                for (int i = 0; i < TR; i++)                                                                       \
                    for (int j = 0; j < TT; j++) acc[i][j] = _mm512_setzero_ps();                                  \
                int64_t k = 0;                                                                                     \
                for (; k + 16 <= K; k += 16) {                                                                     \
                    __m512 wv[TR], xv[TT];                                                                         \
                    for (int i = 0; i < TR; i++) wv[i] = LOAD(w[i], k, 0xffff);                                   \
                    for (int j = 0; j < TT; j++) xv[j] = _mm512_loadu_ps(xp[j] + k);                               \
                    for (int i = 0; i < TR; i++)                                                                   \
                        for (int j = 0; j < TT; j++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv[j], acc[i][j]);         \
                }                                                                                                  \
                if (k < K) {                                                                                       \
                    __m512 wv[TR], xv[TT];                                                                         \
                    for (int i = 0; i < TR; i++) wv[i] = LOAD(w[i], k, tail);                                     \
                    for (int j = 0; j < TT; j++) xv[j] = _mm512_maskz_loadu_ps(tail, xp[j] + k);                   \
                    for (int i = 0; i < TR; i++)                                                                   \
                        for (int j = 0; j < TT; j++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv[j], acc[i][j]);         \
                }                                                                                                  \
                for (int i = 0; i < nr; i++)                                                                       \
                    for (int j = 0; j < nt; j++)                                                                   \
                        out[(t + j) * os + r + i] = _mm512_reduce_add_ps(acc[i][j]) + (bias ? bias[r + i] : 0.0f); \
            }                                                                                                      \
        }                                                                                                          \
    }

DEFINE_GEMM(gemm_f32, load_f32, 4)
DEFINE_GEMM(gemm_bf16, load_bf16, 2)
DEFINE_GEMM(gemm_f16, load_f16, 2)

void mc_gemm_avx512(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W, int64_t r0,
                    int64_t r1, const float *bias) {
    if (W->dtype == MAMBAC_DTYPE_F32) gemm_f32(out, os, x, xs, T, W, r0, r1, bias);
    else if (W->dtype == MAMBAC_DTYPE_BF16) gemm_bf16(out, os, x, xs, T, W, r0, r1, bias);
    else gemm_f16(out, os, x, xs, T, W, r0, r1, bias);
}
#endif
