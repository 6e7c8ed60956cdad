/* ssd_avx2.c — Mamba-2's SSD for AVX2: the chunked form (ssd_chunked_impl.h) with the
 * AVX2 GEMM and an 8-wide causal-decay row, and the one-token recurrent step. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/simd_avx2.h"

#define TARGET MC_AVX2_TARGET

/* M[s] = CB[s] * exp(cum[t] - cum[s]) * dt[s], s = 0..t, 8 at a time. */
TARGET static void ssd_decay_row(float *M, const float *CB, const float *cum, const float *dt, int64_t t) {
    const __m256 ct = _mm256_set1_ps(cum[t]);
    for (int64_t s = 0; s <= t; s += 8) {
        const __m256i m = mc_mask256(t + 1 - s < 8 ? (int)(t + 1 - s) : 8);
        const __m256 dec = mc_exp256(_mm256_sub_ps(ct, _mm256_maskload_ps(cum + s, m)));
        _mm256_maskstore_ps(M + s, m, _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(CB + s, m), dec), _mm256_maskload_ps(dt + s, m)));
    }
}

#define SSD_TARGET TARGET
#define SSD_NAME mc_ssd_avx2
#define SSD_GEMM mc_gemm_avx2
#include "cpu/ssd_chunked_impl.h"

/* The recurrent step, vectorized along N: S = S exp(dt A) + (dt x) B; y = S . C. */
TARGET void mc_ssd_step_avx2(const mc_ssd_args *a) {
    const int64_t P = a->P, N = a->N, N8 = N / 8 * 8, hpg = a->H / a->G;
    for (int64_t h = a->h0; h < (a->h1 ? a->h1 : a->H); h++) {
        const int64_t g = h / hpg;
        const float dt = a->dt[h], dAs = expf(dt * a->A[h]);
        const __m256 dA = _mm256_set1_ps(dAs);
        const float *B = a->B + g * N, *C = a->C + g * N;
        float *S = a->state + h * P * N;
        for (int64_t p = 0; p < P; p++) {
            const float dxs = dt * a->x[h * P + p];
            const __m256 dx = _mm256_set1_ps(dxs);
            float *Sp = S + p * N;
            __m256 acc = _mm256_setzero_ps();
            for (int64_t n = 0; n < N8; n += 8) {
                const __m256 sv = _mm256_fmadd_ps(_mm256_loadu_ps(Sp + n), dA, _mm256_mul_ps(dx, _mm256_loadu_ps(B + n)));
                _mm256_storeu_ps(Sp + n, sv);
                acc = _mm256_fmadd_ps(sv, _mm256_loadu_ps(C + n), acc);
            }
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            float y = _mm_cvtss_f32(_mm_add_ss(s4, _mm_movehdup_ps(s4)));
            for (int64_t n = N8; n < N; n++) {
                Sp[n] = Sp[n] * dAs + dxs * B[n];
                y += Sp[n] * C[n];
            }
            a->y[h * P + p] = y;
        }
    }
}
#endif
