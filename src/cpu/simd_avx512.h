/* simd_avx512.h — small AVX-512 helpers shared by the AVX-512 kernels (only included
 * by files whose functions carry the AVX-512 target attribute). */
#ifndef MC_SIMD_AVX512_H
#define MC_SIMD_AVX512_H

#include <immintrin.h>

#define MC_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* exp(x): Cody-Waite range reduction, cephes' degree-6 polynomial, 2^n by vscalefps;
 * about 1 ulp, flushes to 0 below ~-104, saturates at +88.7. */
MC_AVX512_TARGET static inline __m512 mc_exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-103.97f)), _mm512_set1_ps(88.72283f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* log(x) for x > 0 (normal): mantissa in [sqrt(1/2), sqrt(2)) by getmant/getexp,
 * cephes' logf polynomial; about 1 ulp. */
MC_AVX512_TARGET static inline __m512 mc_log512(__m512 x) {
    __m512 e = _mm512_getexp_ps(x);
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    const __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_ps(e, big, e, _mm512_set1_ps(1.0f));
    const __m512 f = _mm512_sub_ps(m, _mm512_set1_ps(1.0f)), z = _mm512_mul_ps(f, f);
    __m512 y = _mm512_set1_ps(7.0376836292e-2f);
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-1.1514610310e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.1676998740e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-1.2420140846e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.4249322787e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-1.6668057665e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(2.0000714765e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-2.4999993993e-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(3.3333331174e-1f));
    y = _mm512_mul_ps(_mm512_mul_ps(y, f), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fnmadd_ps(z, _mm512_set1_ps(0.5f), y);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f), _mm512_add_ps(f, y));
}

/* softplus with torch's threshold (x > 20 returns x), as mc_softplus: log1p(exp(x))
 * with log1p(u) = log(w) * u / (w - 1), w = 1 + u, exact to a few ulp for small u. */
MC_AVX512_TARGET static inline __m512 mc_softplus512(__m512 x) {
    const __m512 u = mc_exp512(_mm512_min_ps(x, _mm512_set1_ps(20.0f)));
    const __m512 w = _mm512_add_ps(u, _mm512_set1_ps(1.0f)), wm1 = _mm512_sub_ps(w, _mm512_set1_ps(1.0f));
    const __mmask16 exact = _mm512_cmp_ps_mask(wm1, _mm512_setzero_ps(), _CMP_EQ_OQ);
    __m512 r = _mm512_div_ps(_mm512_mul_ps(mc_log512(w), u), _mm512_mask_blend_ps(exact, wm1, _mm512_set1_ps(1.0f)));
    r = _mm512_mask_blend_ps(exact, r, u);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(20.0f), _CMP_GT_OQ), r, x);
}

/* silu(x) = x / (1 + exp(-x)). */
MC_AVX512_TARGET static inline __m512 mc_silu512(__m512 v) {
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), mc_exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
}

/* Distance, in bytes, that the decode GEMVs prefetch ahead of the weight row they read:
 * on the Xeon of docs/PERFORMANCE.md the hardware prefetcher alone left a bf16 GEMV
 * reading DRAM at 6.8 GB/s on one core; a row's worth prefetched per row,
 * MC_PREFETCH_AHEAD bytes ahead, brought it to 9.5-10 GB/s, the speed of a plain sum
 * over the same buffer (2, 8 and 16 KB measured within the noise of 4 KB). */
#define MC_PREFETCH_AHEAD 4096

/* Prefetches the row `ahead` rows after row r (rows of rb bytes from base) when it is
 * before row end: the next weights of a GEMV, MC_PREFETCH_AHEAD bytes ahead. */
static inline void mc_prefetch_row_ahead(const void *base, size_t rb, int64_t r, int64_t end) {
    const int64_t ahead = (int64_t)((MC_PREFETCH_AHEAD + rb - 1) / rb);
    if (r + ahead >= end) return;
    const char *p = (const char *)base + (size_t)(r + ahead) * rb;
    for (size_t o = 0; o < rb; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

/* A 16 x 16 transpose of 32-bit elements in registers: r[i] lane j <-> r[j] lane i.
 * Unpack pairs, then quads, then exchange 128-bit lanes twice. */
MC_AVX512_TARGET static inline void mc_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* r[4i + j], lane L: column 4L + j of rows 4i..4i+3 */
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
    }
}

/* 32 activations to int16 with one scale dx = max|x| / 32767, round to nearest (the
 * rounding of every int16-activation kernel: gemv_quant.c and the VNNI ones); q0 / q1
 * hold values 0-15 / 16-31 as int32. Returns dx. */
MC_AVX512_TARGET static inline float mc_quantize_block_i16(const float *x, __m512i *q0, __m512i *q1) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float dx = amax / 32767.0f;
    const __m512 id = _mm512_set1_ps(dx > 0 ? 1.0f / dx : 0.0f);
    *q0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    *q1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return dx;
}

#endif
