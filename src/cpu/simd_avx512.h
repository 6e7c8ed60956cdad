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

#endif
