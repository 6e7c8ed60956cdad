/* scan_avx512.c — Mamba-1 selective scan for AVX-512: the state of one channel (N
 * values, 16 per register) is updated with a vector exp(dt * A) per token; the rest of
 * the recurrence is the reference's. exp: Cody-Waite range reduction, cephes' degree-6
 * polynomial, scaling by 2^n with vscalefps — about 1 ulp on the arguments the scan
 * produces (dt * A <= 0), tested against the reference in test_kernels. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu/kernels.h"
#include "cpu/ops.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

TARGET static inline __m512 exp512(__m512 x) {
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

TARGET void mc_scan_avx512(const mc_scan_args *a) {
    const int64_t N = a->N;
    for (int64_t c = 0; c < a->E; c++) {
        float *s = a->state + c * N;
        const float *Ac = a->A + c * N;
        for (int64_t t = 0; t < a->T; t++) {
            const float dt = mc_softplus(a->dt[t * a->dt_stride + c] + a->dt_bias[c]);
            const float xv = a->x[t * a->x_stride + c];
            const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
            const __m512 vdt = _mm512_set1_ps(dt), vdx = _mm512_set1_ps(dt * xv);
            __m512 acc = _mm512_setzero_ps();
            for (int64_t n = 0; n < N; n += 16) {
                const __mmask16 m = N - n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (N - n)) - 1);
                __m512 sv = _mm512_maskz_loadu_ps(m, s + n);
                const __m512 dA = exp512(_mm512_mul_ps(vdt, _mm512_maskz_loadu_ps(m, Ac + n)));
                sv = _mm512_fmadd_ps(dA, sv, _mm512_mul_ps(vdx, _mm512_maskz_loadu_ps(m, B + n)));
                _mm512_mask_storeu_ps(s + n, m, sv);
                acc = _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(m, C + n), acc);
            }
            const float y = _mm512_reduce_add_ps(acc) + a->D[c] * xv;
            a->y[t * a->y_stride + c] = y * mc_silu(a->z[t * a->z_stride + c]);
        }
    }
}
#endif
