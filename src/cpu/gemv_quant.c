/* gemv_quant.c — products with block-quantized weights (q8_0, q4_0, q4_K) for few
 * tokens (decode). As llama.cpp does, the activations are quantized too, to int8 per
 * block of 32 with one float scale (x ≈ dx * qx), so a block's dot product is an
 * integer dot of 32 bytes followed by one float multiply-add:
 *   q8_0: dw * dx * sum(qw * qx)
 *   q4_0: dw * dx * (sum(nibble * qx) - 8 * sum(qx))
 *   q4_K: dx * (d * sc * sum(nibble * qx) - dmin * m * sum(qx))
 * The integer dot of unsigned × signed bytes is vpmaddubsw + vpmaddwd on AVX2 and
 * one vpdpbusd with AVX512-VNNI; q8_0's signed weights go through vpsignb (|w| and
 * sign(w) * x). Products are at most 2 * 255 * 127 per 16-bit lane: no saturation.
 * The error against float activations is bounded by sum |w| * dx / 2 per block
 * (tests/test_kernels.c checks exactly that bound). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "core/dtype.h"
#include "core/quant.h"
#include "cpu/kernels.h"

#define TOKENS 4 /* activations quantized per pass: the weight row is reused from L1 */

/* Quantized activations of one token: qx[K], one scale and one sum per 32 values. */
typedef struct qx_row {
    int8_t *q;
    float *d;
    int32_t *s;
} qx_row;

#define DEFINE_QUANT_GEMV(SUFFIX, TGT, DOT)                                                                          \
    __attribute__((target(TGT))) static inline float hsum_##SUFFIX(__m256 v) {                                      \
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));                             \
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                                                     \
        s = _mm_add_ss(s, _mm_movehdup_ps(s));                                                                      \
        return _mm_cvtss_f32(s);                                                                                    \
    }                                                                                                               \
    /* The low and high nibbles of 16 bytes as 32 bytes: values 0..15 then 16..31. */                             \
    __attribute__((target(TGT))) static inline __m256i nibbles16_##SUFFIX(const uint8_t *p) {                      \
        const __m128i raw = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(0xF);                           \
        return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));                   \
    }                                                                                                               \
    __attribute__((target(TGT))) static void quantize_x_##SUFFIX(const float *x, int64_t K, qx_row *o) {           \
        for (int64_t b = 0; b < K / 32; b++) {                                                                      \
            const float *xb = x + 32 * b;                                                                           \
            __m256 v[4], amax = _mm256_setzero_ps();                                                                \
            const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));                             \
            for (int i = 0; i < 4; i++) {                                                                           \
                v[i] = _mm256_loadu_ps(xb + 8 * i);                                                                 \
                amax = _mm256_max_ps(amax, _mm256_and_ps(v[i], absmask));                                           \
            }                                                                                                       \
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));                   \
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));                                                             \
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));                                                               \
            const float d = _mm_cvtss_f32(m4) / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;                               \
            __m256i q[4];                                                                                           \
            for (int i = 0; i < 4; i++)                                                                             \
                q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], _mm256_set1_ps(id)),                   \
                                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));          \
            const __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));      \
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));             \
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));                                                    \
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));                                                    \
            /* pack 32 int32 to 32 int8 in order: packs interleave 128-bit lanes, undone by the permute */         \
            const __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);            \
            const __m256i p8 = _mm256_packs_epi16(p16a, p16b);                                                      \
            _mm256_storeu_si256((__m256i *)(o->q + 32 * b),                                                         \
                                _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));        \
            o->d[b] = d;                                                                                            \
            o->s[b] = _mm_cvtsi128_si32(s4);                                                                        \
        }                                                                                                           \
    }                                                                                                               \
    __attribute__((target(TGT))) static float dot_q8_0_##SUFFIX(const uint8_t *w, const qx_row *x, int64_t nb) {  \
        __m256 acc = _mm256_setzero_ps();                                                                           \
        for (int64_t b = 0; b < nb; b++, w += 34) {                                                                 \
            const __m256i wq = _mm256_loadu_si256((const __m256i *)(w + 2));                                       \
            const __m256i xq = _mm256_loadu_si256((const __m256i *)(x->q + 32 * b));                               \
            const __m256i dot = DOT(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));                           \
            uint16_t h;                                                                                             \
            memcpy(&h, w, 2);                                                                                       \
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(_cvtsh_ss(h) * x->d[b]), acc);            \
        }                                                                                                           \
        return hsum_##SUFFIX(acc);                                                                                  \
    }                                                                                                               \
    __attribute__((target(TGT))) static float dot_q4_0_##SUFFIX(const uint8_t *w, const qx_row *x, int64_t nb) {  \
        __m256 acc = _mm256_setzero_ps();                                                                           \
        float corr = 0.0f;                                                                                          \
        for (int64_t b = 0; b < nb; b++, w += 18) {                                                                 \
            const __m256i xq = _mm256_loadu_si256((const __m256i *)(x->q + 32 * b));                               \
            const __m256i dot = DOT(nibbles16_##SUFFIX(w + 2), xq);                                                 \
            uint16_t h;                                                                                             \
            memcpy(&h, w, 2);                                                                                       \
            const float s = _cvtsh_ss(h) * x->d[b];                                                                 \
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(s), acc);                                 \
            corr += s * (float)x->s[b];                                                                             \
        }                                                                                                           \
        return hsum_##SUFFIX(acc) - 8.0f * corr;                                                                    \
    }                                                                                                               \
    __attribute__((target(TGT))) static float dot_q4_K_##SUFFIX(const uint8_t *w, const qx_row *x, int64_t nsb) { \
        __m256 acc = _mm256_setzero_ps();                                                                           \
        float corr = 0.0f;                                                                                          \
        const __m256i m = _mm256_set1_epi8(0xF);                                                                    \
        for (int64_t sb = 0; sb < nsb; sb++, w += 144) {                                                            \
            uint16_t h[2];                                                                                          \
            memcpy(h, w, 4);                                                                                        \
            const float d = _cvtsh_ss(h[0]), dmin = _cvtsh_ss(h[1]);                                                \
            for (int g = 0; g < 4; g++) {                                                                           \
                const int64_t b = sb * 8 + 2 * g;                                                                   \
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * g));                        \
                const __m256i lo = _mm256_and_si256(raw, m), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m);   \
                const __m256i d0 = DOT(lo, _mm256_loadu_si256((const __m256i *)(x->q + 32 * b)));                  \
                const __m256i d1 = DOT(hi, _mm256_loadu_si256((const __m256i *)(x->q + 32 * b + 32)));             \
                uint8_t sc0, m0, sc1, m1;                                                                           \
                mc_q4k_scale_min(w + 4, 2 * g, &sc0, &m0);                                                          \
                mc_q4k_scale_min(w + 4, 2 * g + 1, &sc1, &m1);                                                      \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0), _mm256_set1_ps(d * sc0 * x->d[b]), acc);              \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1), _mm256_set1_ps(d * sc1 * x->d[b + 1]), acc);          \
                corr += dmin * (m0 * x->d[b] * (float)x->s[b] + m1 * x->d[b + 1] * (float)x->s[b + 1]);             \
            }                                                                                                       \
        }                                                                                                           \
        return hsum_##SUFFIX(acc) - corr;                                                                           \
    }                                                                                                               \
    void mc_gemv_quant_##SUFFIX(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W, \
                                int64_t r0, int64_t r1, const float *bias, float *scratch) {                       \
        const int64_t K = W->cols, nb = K / 32;                                                                     \
        const size_t row = mc_dtype_row_bytes(W->dtype, K);                                                         \
        qx_row qx[TOKENS];                                                                                          \
        char *p = (char *)scratch;                                                                                  \
        for (int j = 0; j < TOKENS; j++) {                                                                          \
            qx[j].d = (float *)p;                                                                                   \
            qx[j].s = (int32_t *)(p + 4 * nb);                                                                      \
            qx[j].q = (int8_t *)(p + 8 * nb);                                                                       \
            p += 8 * nb + K;                                                                                        \
        }                                                                                                           \
        for (int64_t t = 0; t < T; t += TOKENS) {                                                                   \
            const int nt = T - t < TOKENS ? (int)(T - t) : TOKENS;                                                  \
            for (int j = 0; j < nt; j++) quantize_x_##SUFFIX(x + (t + j) * xs, K, &qx[j]);                          \
            for (int64_t r = r0; r < r1; r++) {                                                                     \
                const uint8_t *w = (const uint8_t *)W->data + (size_t)r * row;                                      \
                const float b = bias ? bias[r] : 0.0f;                                                              \
                for (int j = 0; j < nt; j++) {                                                                      \
                    float v = W->dtype == MAMBAC_DTYPE_Q8_0   ? dot_q8_0_##SUFFIX(w, &qx[j], nb)                   \
                              : W->dtype == MAMBAC_DTYPE_Q4_0 ? dot_q4_0_##SUFFIX(w, &qx[j], nb)                   \
                                                              : dot_q4_K_##SUFFIX(w, &qx[j], K / 256);              \
                    out[(t + j) * os + r] = v + b;                                                                  \
                }                                                                                                   \
            }                                                                                                       \
        }                                                                                                           \
    }

#define DOT_AVX2(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#define DOT_VNNI(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))

DEFINE_QUANT_GEMV(avx2, "avx2,fma,f16c", DOT_AVX2)
DEFINE_QUANT_GEMV(vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", DOT_VNNI)

int mc_gemv_quant_supported(mambac_dtype t) {
    return t == MAMBAC_DTYPE_Q8_0 || t == MAMBAC_DTYPE_Q4_0 || t == MAMBAC_DTYPE_Q4_K;
}
#endif
