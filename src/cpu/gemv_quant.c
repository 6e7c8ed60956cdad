/* gemv_quant.c — products with block-quantized weights (q8_0, q4_0, q4_K) for few
 * tokens (decode). The activations are quantized per block of 32 to int16 with one
 * float scale (x ≈ dx * qx, dx = max|x| / 32767: a relative error ~1e-5, far below the
 * weights' own), so a block's dot product is an integer dot of 32 int16 pairs and one
 * float multiply-add:
 *   q8_0: dw * dx * sum(qw * qx)
 *   q4_0: dw * dx * (sum(nibble * qx) - 8 * sum(qx))
 *   q4_K: dx * (d * sc * sum(nibble * qx) - dmin * m * sum(qx))
 * (llama.cpp quantizes activations to int8 instead; on the small test models that
 * alone doubled the logit error of q8_0, see docs/PERFORMANCE.md.) Weights are widened
 * to int16 in registers; the int16 dot is vpmaddwd (AVX2; with AVX512-VNNI,
 * gemv_quant_avx512.c does the same integers two blocks per 512-bit step);
 * |sum| <= 32 * 127 * 32767 < 2^31. One weight row at a time, read
 * sequentially, two accumulators to hide the FMA latency (tiles of 2 or 4 interleaved
 * rows were measured 2.5x slower: docs/PERFORMANCE.md).
 * The error against float activations is bounded by sum |w| * dx / 2 per block
 * (tests/test_quant.c checks exactly that bound). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "core/dtype.h"
#include "core/quant.h"
#include "cpu/kernels.h"
#include "model/repack_x16.h"

#define TOKENS 4 /* activations quantized per pass: the weight rows are reused from L1 */
#define ROWS 2

/* Quantized activations of one token: qx[K] int16, one scale and one sum per 32 values. */
typedef struct qx_row {
    int16_t *q;
    float *d;
    float *s;     /* sum of the block's qx, as float */
    int32_t *l8;  /* per block, the 8 lanes of the int16 dot of 8 with qx: q4_0's offset */
} qx_row;

__attribute__((target("f16c"))) static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define DOT_AVX2(w0, x0, w1, x1) _mm256_add_epi32(_mm256_madd_epi16((w0), (x0)), _mm256_madd_epi16((w1), (x1)))

TARGET static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
TARGET static void quantize_x(const float *x, int64_t K, qx_row *o) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < K / 32; b++) {
        const float *xb = x + 32 * b;
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(xb + 8 * i);
            amax = _mm256_max_ps(amax, _mm256_and_ps(v[i], absmask));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float d = _mm_cvtss_f32(m4) / 32767.0f, id = d > 0 ? 1.0f / d : 0.0f;
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], _mm256_set1_ps(id)),
                                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        /* packs interleave 128-bit lanes; the permute restores the order */
        const __m256i p0 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xd8);
        const __m256i p1 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2], q[3]), 0xd8);
        _mm256_storeu_si256((__m256i *)(o->q + 32 * b), p0);
        _mm256_storeu_si256((__m256i *)(o->q + 32 * b + 16), p1);
        o->d[b] = d;
        o->s[b] = (float)_mm_cvtsi128_si32(s4);
        const __m256i eight = _mm256_set1_epi16(8);
        _mm256_storeu_si256((__m256i *)(o->l8 + 8 * b), DOT_AVX2(eight, p0, eight, p1));
    }
}
/* One block of 32 weights (as two vectors of 16 int16) against x block b. */
TARGET static inline __m256 dot32(__m256i w0, __m256i w1, const int16_t *xq) {
    const __m256i x0 = _mm256_loadu_si256((const __m256i *)xq), x1 = _mm256_loadu_si256((const __m256i *)(xq + 16));
    return _mm256_cvtepi32_ps(DOT_AVX2(w0, x0, w1, x1));
}
TARGET static inline __m256 blk_q8_0(const uint8_t *p, const qx_row *x, int64_t b, __m256 acc) {
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 2)));
    const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 18)));
    return _mm256_fmadd_ps(dot32(w0, w1, x->q + 32 * b), _mm256_set1_ps(f16_at(p) * x->d[b]), acc);
}
TARGET static float row_q8_0(const uint8_t *w, const qx_row *x, int64_t nb) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        a0 = blk_q8_0(w + 34 * b, x, b, a0);
        a1 = blk_q8_0(w + 34 * (b + 1), x, b + 1, a1);
    }
    if (b < nb) a0 = blk_q8_0(w + 34 * b, x, b, a0);
    return hsum(_mm256_add_ps(a0, a1));
}
/* (nibble - 8) . qx = nibble . qx - 8 . qx, the second term precomputed per lane */
TARGET static inline __m256 blk_q4_0(const uint8_t *p, const qx_row *x, int64_t b, __m256 acc) {
    const __m128i m = _mm_set1_epi8(0xF), raw = _mm_loadu_si128((const __m128i *)(p + 2));
    const __m256i w0 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m));
    const __m256i w1 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m));
    const int16_t *xq = x->q + 32 * b;
    const __m256i x0 = _mm256_loadu_si256((const __m256i *)xq), x1 = _mm256_loadu_si256((const __m256i *)(xq + 16));
    const __m256i dot = _mm256_sub_epi32(DOT_AVX2(w0, x0, w1, x1), _mm256_loadu_si256((const __m256i *)(x->l8 + 8 * b)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(f16_at(p) * x->d[b]), acc);
}
TARGET static float row_q4_0(const uint8_t *w, const qx_row *x, int64_t nb) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        a0 = blk_q4_0(w + 18 * b, x, b, a0);
        a1 = blk_q4_0(w + 18 * (b + 1), x, b + 1, a1);
    }
    if (b < nb) a0 = blk_q4_0(w + 18 * b, x, b, a0);
    return hsum(_mm256_add_ps(a0, a1));
}
TARGET static float row_q4_K(const uint8_t *w, const qx_row *x, int64_t nsb) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    float corr = 0;
    const __m256i m = _mm256_set1_epi8(0xF);
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *p = w + 144 * sb;
        const float d = f16_at(p), dmin = f16_at(p + 2);
        for (int g = 0; g < 4; g++) {
            const int64_t b = sb * 8 + 2 * g;
            const __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * g));
            const __m256i lo = _mm256_and_si256(raw, m), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m);
            uint8_t sc0, m0, sc1, m1;
            mc_q4k_scale_min(p + 4, 2 * g, &sc0, &m0);
            mc_q4k_scale_min(p + 4, 2 * g + 1, &sc1, &m1);
            const __m256 d0 = dot32(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(lo)),
                                             _mm256_cvtepu8_epi16(_mm256_extracti128_si256(lo, 1)), x->q + 32 * b);
            const __m256 d1 = dot32(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(hi)),
                                             _mm256_cvtepu8_epi16(_mm256_extracti128_si256(hi, 1)), x->q + 32 * b + 32);
            a0 = _mm256_fmadd_ps(d0, _mm256_set1_ps(d * sc0 * x->d[b]), a0);
            a1 = _mm256_fmadd_ps(d1, _mm256_set1_ps(d * sc1 * x->d[b + 1]), a1);
            corr += dmin * (m0 * x->d[b] * x->s[b] + m1 * x->d[b + 1] * x->s[b + 1]);
        }
    }
    return hsum(_mm256_add_ps(a0, a1)) - corr;
}
void mc_gemv_quant_avx2(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W,
                            int64_t r0, int64_t r1, const float *bias, float *scratch) {
    const int64_t K = W->cols, nb = K / 32;
    qx_row qx[TOKENS];
    char *p = (char *)scratch;
    for (int j = 0; j < TOKENS; j++) {
        qx[j].d = (float *)p;
        qx[j].s = (float *)(p + 4 * nb);
        qx[j].l8 = (int32_t *)(p + 8 * nb);
        qx[j].q = (int16_t *)(p + 40 * nb);
        p += 40 * nb + 2 * K;
    }
    uint8_t *native = (uint8_t *)p; /* a row repacked at load, gathered (repack_x16.h) */
    for (int64_t t = 0; t < T; t += TOKENS) {
        const int nt = T - t < TOKENS ? (int)(T - t) : TOKENS;
        for (int j = 0; j < nt; j++) quantize_x(x + (t + j) * xs, K, &qx[j]);
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *w = mc_weight_row_bytes(W, r, native);
            const float bi = bias ? bias[r] : 0.0f;
            for (int j = 0; j < nt; j++) {
                const float v = W->dtype == MAMBAC_DTYPE_Q8_0   ? row_q8_0(w, &qx[j], nb)
                                : W->dtype == MAMBAC_DTYPE_Q4_0 ? row_q4_0(w, &qx[j], nb)
                                                                : row_q4_K(w, &qx[j], K / 256);
                out[(t + j) * os + r] = v + bi;
            }
        }
    }
}

int mc_gemv_quant_supported(mambac_dtype t) {
    return t == MAMBAC_DTYPE_Q8_0 || t == MAMBAC_DTYPE_Q4_0 || t == MAMBAC_DTYPE_Q4_K;
}
#endif
