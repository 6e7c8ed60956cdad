/* scan_avx512.c — Mamba-1 selective scan for AVX-512: the state of one channel (N
 * values, 16 per register) is updated with a vector exp(dt * A) per token; the rest of
 * the recurrence is the reference's. exp: mc_exp512 (simd_avx512.h, about 1 ulp), tested
 * against the reference in test_kernels. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/simd_avx512.h"

#define TARGET MC_AVX512_TARGET

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
                const __m512 dA = mc_exp512(_mm512_mul_ps(vdt, _mm512_maskz_loadu_ps(m, Ac + n)));
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
