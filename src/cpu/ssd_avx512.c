/* ssd_avx512.c — Mamba-2's SSD for AVX-512: the chunked form (ssd_chunked_impl.h) with
 * the AVX-512 GEMM and a vector causal-decay row, and the one-token recurrent step. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/simd_avx512.h"

#define TARGET MC_AVX512_TARGET

int64_t mc_ssd_scratch_floats(int64_t L, int64_t N, int64_t P) {
    const int64_t K = L > N ? L : N;
    const int64_t avx512 = 2 * L * L + L * N + N * L + 2 * P * L + L * P + P * N + 2 * L + MC_GEMM_SCRATCH_FLOAT(K > P ? K : P) + 64;
    const int64_t amx = mc_ssd_amx_scratch_floats(L, N, P); /* the "amx" kernel set's SSD */
    return avx512 > amx ? avx512 : amx;
}

/* M[s] = CB[s] * exp(cum[t] - cum[s]) * dt[s], s = 0..t, 16 at a time. */
TARGET static void ssd_decay_row(float *M, const float *CB, const float *cum, const float *dt, int64_t t) {
    const __m512 ct = _mm512_set1_ps(cum[t]);
    for (int64_t s = 0; s <= t; s += 16) {
        const __mmask16 m = t + 1 - s >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (t + 1 - s)) - 1);
        const __m512 dec = mc_exp512(_mm512_sub_ps(ct, _mm512_maskz_loadu_ps(m, cum + s)));
        _mm512_mask_storeu_ps(M + s, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, CB + s), dec), _mm512_maskz_loadu_ps(m, dt + s)));
    }
}

#define SSD_TARGET TARGET
#define SSD_NAME mc_ssd_avx512
#define SSD_GEMM mc_gemm_avx512
#include "cpu/ssd_chunked_impl.h"

/* The recurrent step, vectorized along N: S = S exp(dt A) + (dt x) B; y = S . C. */
TARGET void mc_ssd_step_avx512(const mc_ssd_args *a) {
    const int64_t P = a->P, N = a->N, hpg = a->H / a->G;
    for (int64_t h = a->h0; h < (a->h1 ? a->h1 : a->H); h++) {
        const int64_t g = h / hpg;
        const float dt = a->dt[h];
        const __m512 dA = _mm512_set1_ps(expf(dt * a->A[h]));
        const float *B = a->B + g * N, *C = a->C + g * N;
        float *S = a->state + h * P * N;
        for (int64_t p = 0; p < P; p++) {
            const __m512 dx = _mm512_set1_ps(dt * a->x[h * P + p]);
            float *Sp = S + p * N;
            __m512 acc = _mm512_setzero_ps();
            for (int64_t n = 0; n < N; n += 16) {
                const __mmask16 m = N - n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (N - n)) - 1);
                __m512 sv = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, Sp + n), dA, _mm512_mul_ps(dx, _mm512_maskz_loadu_ps(m, B + n)));
                _mm512_mask_storeu_ps(Sp + n, m, sv);
                acc = _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(m, C + n), acc);
            }
            a->y[h * P + p] = _mm512_reduce_add_ps(acc);
        }
    }
}
#endif
