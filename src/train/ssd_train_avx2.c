/* ssd_train_avx2.c — the Mamba-2 SSD backward of training (ops_train.h mc_ssd_bwd) with
 * the N columns of the state in AVX2 vectors of 8 (the last one masked). Same recurrence
 * and the same work layout as the scalar form; the sums over n are float vectors added
 * into the double totals once per state row (the scalar form adds every term in double),
 * and dB / dC collect a step's rows in registers before one add to memory. */
#if defined(__x86_64__)
#include "cpu/simd_avx2.h"
#include "train/ops_train.h"

#include <math.h>
#include <string.h>

#define MAXV 32 /* N <= 256 */


MC_AVX2_TARGET void mc_ssd_bwd_avx2(const mc_ssd_train *a, int64_t g) {
    const int64_t P = a->P, N = a->N, L = a->L, hpg = a->H / a->G, PN = P * N, NV = (N + 7) / 8;
    float *S = a->work, *G = a->work + L * PN; /* states S_t (L, P, N); G = dL/dS_t (P, N) */
    float *dS = G + PN;                        /* carried gradient a_{t+1} G_{t+1} */
    __m256i mk[MAXV];
    for (int64_t v = 0; v < NV; v++) mk[v] = mc_mask256(N - 8 * v >= 8 ? 8 : (int)(N - 8 * v));
#define LD(p, v) _mm256_maskload_ps((p) + 8 * (v), mk[v])
#define ST(p, v, x) _mm256_maskstore_ps((p) + 8 * (v), mk[v], (x))
    for (int64_t h = g * hpg; h < (g + 1) * hpg; h++) {
        const float A = a->A[h];
        for (int64_t t = 0; t < L; t++) { /* recompute the states */
            const float dt = a->dt[t * a->dt_stride + h], at = expf(dt * A);
            const float *x = a->x + t * a->x_stride + h * P, *B = a->B + t * a->bc_stride + g * N;
            float *St = S + t * PN;
            const float *Sp = t ? St - PN : NULL;
            for (int64_t p = 0; p < P; p++) {
                const __m256 dx = _mm256_set1_ps(dt * x[p]), av = _mm256_set1_ps(at);
                for (int64_t v = 0; v < NV; v++) {
                    const __m256 prev = Sp ? LD(Sp + p * N, v) : _mm256_setzero_ps();
                    ST(St + p * N, v, _mm256_fmadd_ps(av, prev, _mm256_mul_ps(dx, LD(B, v))));
                }
            }
        }
        memset(dS, 0, (size_t)PN * sizeof(float));
        float dA = 0.0f;
        for (int64_t t = L - 1; t >= 0; t--) {
            const float dt = a->dt[t * a->dt_stride + h], at = expf(dt * A);
            const float *x = a->x + t * a->x_stride + h * P, *B = a->B + t * a->bc_stride + g * N;
            const float *C = a->C + t * a->bc_stride + g * N, *dy = a->dy + t * a->dy_stride + h * P;
            float *dx = a->dx + t * a->dx_stride + h * P, *dB = a->dB + t * a->bc_stride + g * N;
            float *dC = a->dC + t * a->bc_stride + g * N;
            const float *St = S + t * PN, *Sp = t ? St - PN : NULL;
            __m256 Bv[MAXV], Cv[MAXV], dBa[MAXV], dCa[MAXV];
            for (int64_t v = 0; v < NV; v++)
                Bv[v] = LD(B, v), Cv[v] = LD(C, v), dBa[v] = _mm256_setzero_ps(), dCa[v] = _mm256_setzero_ps();
            double da = 0, ddt = 0;
            for (int64_t p = 0; p < P; p++) {
                const __m256 dyp = _mm256_set1_ps(dy[p]), dtx = _mm256_set1_ps(dt * x[p]);
                __m256 sx = _mm256_setzero_ps(), sa = _mm256_setzero_ps();
                for (int64_t v = 0; v < NV; v++) {
                    const __m256 gv = _mm256_fmadd_ps(dyp, Cv[v], LD(dS + p * N, v));
                    ST(G + p * N, v, gv);
                    dCa[v] = _mm256_fmadd_ps(dyp, LD(St + p * N, v), dCa[v]);
                    if (Sp) sa = _mm256_fmadd_ps(gv, LD(Sp + p * N, v), sa);
                    sx = _mm256_fmadd_ps(gv, Bv[v], sx);
                    dBa[v] = _mm256_fmadd_ps(gv, dtx, dBa[v]);
                }
                const float dxp = mc_hsum256(sx);
                da += mc_hsum256(sa);
                ddt += (double)x[p] * dxp;
                dx[p] += dt * dxp;
            }
            for (int64_t v = 0; v < NV; v++) {
                ST(dB, v, _mm256_add_ps(LD(dB, v), dBa[v]));
                ST(dC, v, _mm256_add_ps(LD(dC, v), dCa[v]));
            }
            a->ddt[t * a->dt_stride + h] += (float)(da * at * A + ddt);
            dA += (float)(da * at * dt);
            const __m256 av = _mm256_set1_ps(at);
            for (int64_t p = 0; p < P; p++)
                for (int64_t v = 0; v < NV; v++) ST(dS + p * N, v, _mm256_mul_ps(av, LD(G + p * N, v)));
        }
        a->dA[h] += dA;
    }
#undef LD
#undef ST
}
#endif
