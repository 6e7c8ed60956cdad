/* ssd_avx512.c — the chunked SSD of Mamba-2 as matrix products (AVX-512). For each
 * chunk of l <= L tokens, group g and head h (P channels, state (P, N)):
 *   CB   (l, l) = C_g B_g^T                              GEMM, once per group
 *   M    (l, l) = CB * exp(cum_t - cum_s) * dt_s, s <= t  (causal decay mask)
 *   y    (l, P) = exp(cum_t) * (C_g S_h^T)  +  M X_h      two GEMMs
 *   S_h  (P, N) = exp(cum_l) S_h + (X_h^T * tail) B_g     GEMM, tail_s = exp(cum_l - cum_s) dt_s
 * the same algebra as mc_ssd_chunked (ops_ref.c), which stays the reference. The GEMMs
 * are mc_gemm_avx512; operands are copied into contiguous / transposed scratch first. */
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
    return 2 * L * L + L * N + N * L + 2 * P * L + L * P + P * N + 2 * L + MC_GEMM_SCRATCH(K > P ? K : P) + 64;
}

TARGET void mc_ssd_avx512(const mc_ssd_args *a) {
    const int64_t P = a->P, N = a->N, L = a->L, hpg = a->H / a->G;
    const int64_t h0 = a->h0, h1 = a->h1 ? a->h1 : a->H;
    float *CB = a->scratch, *M = CB + L * L, *Bc = M + L * L, *Bt = Bc + L * N, *Xt = Bt + N * L, *Xs = Xt + P * L;
    float *Yt = Xs + P * L, *St = Yt + L * P, *cum = St + P * N, *tail = cum + L, *pack = tail + L;
    for (int64_t c0 = 0; c0 < a->T; c0 += L) {
        const int64_t l = a->T - c0 < L ? a->T - c0 : L;
        for (int64_t g = h0 / hpg; g < a->G && g * hpg < h1; g++) {
            const float *Cg = a->C + c0 * a->bc_stride + g * N, *Bg = a->B + c0 * a->bc_stride + g * N;
            for (int64_t s = 0; s < l; s++) { /* B of the chunk, as rows and transposed */
                memcpy(Bc + s * N, Bg + s * a->bc_stride, (size_t)N * sizeof(float));
                for (int64_t n = 0; n < N; n++) Bt[n * l + s] = Bg[s * a->bc_stride + n];
            }
            mc_weight Wb = {MAMBAC_DTYPE_F32, Bc, l, N};
            mc_gemm_avx512(CB, L, Cg, a->bc_stride, l, &Wb, 0, l, NULL, pack);
            const int64_t hb = g * hpg > h0 ? g * hpg : h0, he = (g + 1) * hpg < h1 ? (g + 1) * hpg : h1;
            for (int64_t h = hb; h < he; h++) {
                float run = 0.0f;
                for (int64_t t = 0; t < l; t++) cum[t] = run += a->dt[(c0 + t) * a->dt_stride + h] * a->A[h];
                float *S = a->state + h * P * N, *y = a->y + c0 * a->y_stride + h * P;
                const float *X = a->x + c0 * a->x_stride + h * P;
                /* inter-chunk: y = exp(cum_t) * C S^T */
                mc_weight Ws = {MAMBAC_DTYPE_F32, S, P, N};
                mc_gemm_avx512(y, a->y_stride, Cg, a->bc_stride, l, &Ws, 0, P, NULL, pack);
                for (int64_t t = 0; t < l; t++) {
                    const float e = expf(cum[t]);
                    for (int64_t p = 0; p < P; p++) y[t * a->y_stride + p] *= e;
                }
                /* intra-chunk: M (causal, decayed, dt-weighted CB) times X; 16 s at a time */
                for (int64_t s = 0; s < l; s++) tail[s] = a->dt[(c0 + s) * a->dt_stride + h]; /* dt of this head */
                for (int64_t t = 0; t < l; t++) {
                    const __m512 ct = _mm512_set1_ps(cum[t]);
                    for (int64_t s = 0; s <= t; s += 16) {
                        const __mmask16 m = t + 1 - s >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (t + 1 - s)) - 1);
                        const __m512 dec = mc_exp512(_mm512_sub_ps(ct, _mm512_maskz_loadu_ps(m, cum + s)));
                        const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, CB + t * L + s), dec),
                                                       _mm512_maskz_loadu_ps(m, tail + s));
                        _mm512_mask_storeu_ps(M + t * L + s, m, v);
                    }
                    for (int64_t s = t + 1; s < l; s++) M[t * L + s] = 0.0f;
                }
                for (int64_t s = 0; s < l; s++)
                    for (int64_t p = 0; p < P; p++) Xt[p * l + s] = X[s * a->x_stride + p];
                mc_weight Wx = {MAMBAC_DTYPE_F32, Xt, P, l};
                mc_gemm_avx512(Yt, P, M, L, l, &Wx, 0, P, NULL, pack);
                for (int64_t t = 0; t < l; t++)
                    for (int64_t p = 0; p < P; p++) y[t * a->y_stride + p] += Yt[t * P + p];
                /* state: decay, plus (X^T * tail) B */
                const float decay = expf(cum[l - 1]);
                for (int64_t s = 0; s < l; s++) tail[s] = expf(cum[l - 1] - cum[s]) * a->dt[(c0 + s) * a->dt_stride + h];
                for (int64_t p = 0; p < P; p++)
                    for (int64_t s = 0; s < l; s++) Xs[p * l + s] = Xt[p * l + s] * tail[s];
                mc_weight Wbt = {MAMBAC_DTYPE_F32, Bt, N, l};
                mc_gemm_avx512(St, N, Xs, l, P, &Wbt, 0, N, NULL, pack);
                for (int64_t i = 0; i < P * N; i++) S[i] = S[i] * decay + St[i];
            }
        }
    }
}
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
