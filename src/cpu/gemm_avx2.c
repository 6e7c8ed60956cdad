/* gemm_avx2.c — GEMM / GEMV for AVX2 + FMA + F16C, gemm_avx512.c's design at 8 lanes:
 * - few tokens (decode): one weight row at a time in its stored dtype, widened in
 *   registers, 4 accumulators, a scalar K tail (quantized rows: gemv_quant.c);
 * - many tokens (prefill): weights packed 16 rows at a time into K x 16 float panels
 *   (8 x 8 register transposes; quantized rows dequantized first), then a 6 x 16
 *   outer-product micro-kernel. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "core/dtype.h"
#include "core/quant.h"
#include "cpu/kernels.h"
#include "model/repack_x16.h"

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define NR 16 /* rows per packed panel */
#define MR 6  /* tokens per micro-tile */
#define MIN_T_PACKED 4

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

/* GEMV: one weight row at a time (sequential reads, see gemm_avx512.c), 4 accumulators. */
#define DEFINE_GEMV(NAME, LOAD, ONE, ESIZE)                                                                        \
    TARGET static void NAME(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W,     \
                            int64_t r0, int64_t r1, const float *bias) {                                           \
        const int64_t K = W->cols;                                                                                 \
        for (int64_t t = 0; t < T; t++) {                                                                          \
            const float *xr = x + t * xs;                                                                          \
            for (int64_t r = r0; r < r1; r++) {                                                                    \
                const char *w = (const char *)W->data + (size_t)(r * K) * ESIZE;                                   \
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                        \
                int64_t k = 0;                                                                                     \
                for (; k + 32 <= K; k += 32) {                                                                     \
                    a0 = _mm256_fmadd_ps(LOAD(w, k), _mm256_loadu_ps(xr + k), a0);                                 \
                    a1 = _mm256_fmadd_ps(LOAD(w, k + 8), _mm256_loadu_ps(xr + k + 8), a1);                         \
                    a2 = _mm256_fmadd_ps(LOAD(w, k + 16), _mm256_loadu_ps(xr + k + 16), a2);                       \
                    a3 = _mm256_fmadd_ps(LOAD(w, k + 24), _mm256_loadu_ps(xr + k + 24), a3);                       \
                }                                                                                                  \
                for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(LOAD(w, k), _mm256_loadu_ps(xr + k), a0);         \
                float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));                       \
                for (; k < K; k++) s += ONE(w, k) * xr[k];                                                         \
                out[t * os + r] = s + (bias ? bias[r] : 0.0f);                                                     \
            }                                                                                                      \
        }                                                                                                          \
    }

DEFINE_GEMV(gemv_f32, load_f32, one_f32, 4)
DEFINE_GEMV(gemv_bf16, load_bf16, one_bf16, 2)
DEFINE_GEMV(gemv_f16, load_f16, one_f16, 2)

/* r[0..7] (rows) -> columns, in registers. */
TARGET static inline void transpose8(__m256 r[8]) {
    __m256 t[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) { /* r[4i + j], lane L: column 4L + j of rows 4i..4i+3 */
        const __m256d a = _mm256_castps_pd(t[4 * i]), b = _mm256_castps_pd(t[4 * i + 1]);
        const __m256d c = _mm256_castps_pd(t[4 * i + 2]), d = _mm256_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
    }
    for (int j = 0; j < 4; j++) {
        const __m256 lo = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20), hi = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
        r[j] = lo, r[4 + j] = hi;
    }
}

/* Rows [r, r + nr) (nr <= NR) into panel[k * NR + i] as float32, zero rows past nr:
 * 8 x 8 blocks widened, transposed in registers, stored as panel rows. Quantized rows
 * are first dequantized, 8 at a time, into `tmp` (8 K floats). */
TARGET static void pack_panel(float *panel, const mc_weight *W, int64_t r, int nr, float *tmp) {
    const int64_t K = W->cols, K8 = K / 8 * 8;
    const size_t rb = mc_dtype_row_bytes(W->dtype, K);
    const int quant = mc_dtype_is_quant(W->dtype);
    for (int h = 0; h < NR / 8; h++) {
        const char *rows[8];
        for (int i = 0; i < 8; i++) {
            const int ri = h * 8 + i;
            rows[i] = ri < nr ? (const char *)W->data + (size_t)(r + ri) * rb : NULL;
            if (quant && rows[i]) {
                mc_weight_row_f32(tmp + i * K, W, r + ri);
                rows[i] = (const char *)(tmp + i * K);
            }
        }
        const mambac_dtype dt = quant ? MAMBAC_DTYPE_F32 : W->dtype;
        for (int64_t k = 0; k < K8; k += 8) {
            __m256 v[8];
            for (int i = 0; i < 8; i++)
                v[i] = !rows[i] ? _mm256_setzero_ps() : dt == MAMBAC_DTYPE_F32 ? load_f32(rows[i], k)
                                                     : dt == MAMBAC_DTYPE_BF16 ? load_bf16(rows[i], k) : load_f16(rows[i], k);
            transpose8(v);
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(panel + (k + j) * NR + h * 8, v[j]);
        }
        for (int64_t k = K8; k < K; k++)
            for (int i = 0; i < 8; i++)
                panel[k * NR + h * 8 + i] = !rows[i] ? 0.0f : dt == MAMBAC_DTYPE_F32 ? one_f32(rows[i], k)
                                                              : dt == MAMBAC_DTYPE_BF16 ? one_bf16(rows[i], k) : one_f16(rows[i], k);
    }
}

/* out rows [t, t + mr) x panel rows [r, r + nr): a 6 x 16 outer product per k
 * (2 panel loads, 6 broadcasts, 12 FMAs into 12 accumulators: 15 of the 16 registers).
 * The accumulators are named variables: as an array, gcc stored all 12 to the stack on
 * every k (store-bound at ~40% of the FMA peak). */
TARGET static void micro(float *out, int64_t os, const float *x, int64_t xs, int64_t K, const float *panel, int64_t r,
                         int nr, int mr, const float *bias) {
    const float *x0 = x, *x1 = x + (mr > 1 ? 1 : 0) * xs, *x2 = x + (mr > 2 ? 2 : mr - 1) * xs;
    const float *x3 = x + (mr > 3 ? 3 : mr - 1) * xs, *x4 = x + (mr > 4 ? 4 : mr - 1) * xs, *x5 = x + (mr > 5 ? 5 : mr - 1) * xs;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t k = 0; k < K; k++) {
        const __m256 w0 = _mm256_loadu_ps(panel + k * NR), w1 = _mm256_loadu_ps(panel + k * NR + 8);
        __m256 xb = _mm256_broadcast_ss(x0 + k);
        c00 = _mm256_fmadd_ps(xb, w0, c00), c01 = _mm256_fmadd_ps(xb, w1, c01);
        xb = _mm256_broadcast_ss(x1 + k);
        c10 = _mm256_fmadd_ps(xb, w0, c10), c11 = _mm256_fmadd_ps(xb, w1, c11);
        xb = _mm256_broadcast_ss(x2 + k);
        c20 = _mm256_fmadd_ps(xb, w0, c20), c21 = _mm256_fmadd_ps(xb, w1, c21);
        xb = _mm256_broadcast_ss(x3 + k);
        c30 = _mm256_fmadd_ps(xb, w0, c30), c31 = _mm256_fmadd_ps(xb, w1, c31);
        xb = _mm256_broadcast_ss(x4 + k);
        c40 = _mm256_fmadd_ps(xb, w0, c40), c41 = _mm256_fmadd_ps(xb, w1, c41);
        xb = _mm256_broadcast_ss(x5 + k);
        c50 = _mm256_fmadd_ps(xb, w0, c50), c51 = _mm256_fmadd_ps(xb, w1, c51);
    }
    float o[MR][NR];
    _mm256_storeu_ps(o[0], c00), _mm256_storeu_ps(o[0] + 8, c01), _mm256_storeu_ps(o[1], c10), _mm256_storeu_ps(o[1] + 8, c11);
    _mm256_storeu_ps(o[2], c20), _mm256_storeu_ps(o[2] + 8, c21), _mm256_storeu_ps(o[3], c30), _mm256_storeu_ps(o[3] + 8, c31);
    _mm256_storeu_ps(o[4], c40), _mm256_storeu_ps(o[4] + 8, c41), _mm256_storeu_ps(o[5], c50), _mm256_storeu_ps(o[5] + 8, c51);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) out[i * os + r + j] = o[i][j] + (bias ? bias[r + j] : 0.0f);
}

TARGET static void gemm_packed(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W,
                               int64_t r0, int64_t r1, const float *bias, float *scratch) {
    const int64_t K = W->cols;
    float *panel = scratch, *tmp = scratch + (int64_t)NR * K;
    for (int64_t r = r0; r < r1; r += NR) {
        const int nr = r1 - r < NR ? (int)(r1 - r) : NR;
        pack_panel(panel, W, r, nr, tmp);
        for (int64_t t = 0; t < T; t += MR) {
            const int mr = T - t < MR ? (int)(T - t) : MR;
            micro(out + t * os, os, x + t * xs, xs, K, panel, r, nr, mr, bias);
        }
    }
}

void mc_gemm_avx2(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W, int64_t r0,
                  int64_t r1, const float *bias, float *scratch) {
    if (T >= MIN_T_PACKED && scratch) gemm_packed(out, os, x, xs, T, W, r0, r1, bias, scratch);
    else if (mc_dtype_is_quant(W->dtype)) {
        if (scratch && mc_gemv_quant_supported(W->dtype)) mc_gemv_quant_avx2(out, os, x, xs, T, W, r0, r1, bias, scratch);
        else mc_gemm_scalar(out, os, x, xs, T, W, r0, r1, bias, scratch);
    } else if (W->dtype == MAMBAC_DTYPE_F32) gemv_f32(out, os, x, xs, T, W, r0, r1, bias);
    else if (W->dtype == MAMBAC_DTYPE_BF16) gemv_bf16(out, os, x, xs, T, W, r0, r1, bias);
    else gemv_f16(out, os, x, xs, T, W, r0, r1, bias);
}
#endif
