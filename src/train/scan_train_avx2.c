/* scan_train_avx2.c — AVX2 forms of the Mamba-1 training scan (ops_train.h): the N states
 * of a channel in vectors of 8 (masked past N), the polynomial exp of simd_avx2.h. The
 * recurrences of mc_scan_fwd / mc_scan_bwd; sums over n in another order
 * (tests/test_train.c compares them). */
#if defined(__x86_64__)
#include "cpu/simd_avx2.h"
#include "train/ops_train.h"

#define MAXV 64 /* N <= 512 */

MC_AVX2_TARGET static inline __m256i lanes(int64_t n0, int64_t N) { return mc_mask256(N - n0 >= 8 ? 8 : (int)(N - n0)); }

MC_AVX2_TARGET void mc_scan_fwd_avx2(const mc_scan_train *a, int64_t e0, int64_t e1) {
    const int64_t N = a->N, NV = (N + 7) / 8;
    __m256 h[MAXV];
    for (int64_t e = e0; e < e1; e++) {
        const float *Ae = a->A + e * N;
        for (int64_t v = 0; v < NV; v++) h[v] = _mm256_setzero_ps();
        for (int64_t t = 0; t < a->L; t++) {
            const float d = a->delta[t * a->E + e], x = a->x[t * a->x_stride + e];
            const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
            const __m256 dv = _mm256_set1_ps(d), dx = _mm256_set1_ps(d * x);
            __m256 y = _mm256_setzero_ps();
            for (int64_t v = 0; v < NV; v++) {
                const __m256i m = lanes(8 * v, N);
                const __m256 at = mc_exp256(_mm256_mul_ps(dv, _mm256_maskload_ps(Ae + 8 * v, m)));
                h[v] = _mm256_fmadd_ps(at, h[v], _mm256_mul_ps(dx, _mm256_maskload_ps(B + 8 * v, m)));
                y = _mm256_fmadd_ps(h[v], _mm256_maskload_ps(C + 8 * v, m), y);
            }
            a->ys[t * a->E + e] = mc_hsum256(y) + a->D[e] * x;
        }
    }
}

MC_AVX2_TARGET void mc_scan_bwd_avx2(const mc_scan_train *a, int64_t e0, int64_t e1) {
    const int64_t N = a->N, L = a->L, NV = (N + 7) / 8, NP = (N + 15) / 16 * 16; /* rows as the AVX-512 form's */
    float *hs = a->work, *as = a->work + L * NP;
    __m256 g[MAXV], dA[MAXV];
    for (int64_t e = e0; e < e1; e++) {
        const float *Ae = a->A + e * N;
        for (int64_t v = 0; v < NV; v++) g[v] = _mm256_setzero_ps(), dA[v] = _mm256_setzero_ps();
        for (int64_t t = 0; t < L; t++) { /* recompute the states; padding lanes stay 0 */
            const float d = a->delta[t * a->E + e], x = a->x[t * a->x_stride + e];
            const float *B = a->B + t * a->bc_stride;
            for (int64_t v = 0; v < NV; v++) {
                const __m256i m = lanes(8 * v, N);
                const __m256 at = mc_exp256(_mm256_mul_ps(_mm256_set1_ps(d), _mm256_maskload_ps(Ae + 8 * v, m)));
                const __m256 hp = t ? _mm256_load_ps(hs + (t - 1) * NP + 8 * v) : _mm256_setzero_ps();
                _mm256_store_ps(as + t * NP + 8 * v, at);
                _mm256_store_ps(hs + t * NP + 8 * v,
                                _mm256_fmadd_ps(at, hp, _mm256_mul_ps(_mm256_set1_ps(d * x), _mm256_maskload_ps(B + 8 * v, m))));
            }
        }
        float dD = 0.0f;
        for (int64_t t = L - 1; t >= 0; t--) {
            const float d = a->delta[t * a->E + e], x = a->x[t * a->x_stride + e], dy = a->dys[t * a->E + e];
            const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
            float *dB = a->dB + t * a->bc_stride, *dC = a->dC + t * a->bc_stride;
            dD += dy * x;
            const __m256 dyv = _mm256_set1_ps(dy), dxv = _mm256_set1_ps(d * x), dv = _mm256_set1_ps(d);
            __m256 r1 = _mm256_setzero_ps(), r2 = _mm256_setzero_ps(); /* sum da a A, sum g B */
            for (int64_t v = 0; v < NV; v++) {
                const __m256i m = lanes(8 * v, N);
                const __m256 Bv = _mm256_maskload_ps(B + 8 * v, m), Cv = _mm256_maskload_ps(C + 8 * v, m);
                const __m256 h = _mm256_load_ps(hs + t * NP + 8 * v), at = _mm256_load_ps(as + t * NP + 8 * v);
                const __m256 hp = t ? _mm256_load_ps(hs + (t - 1) * NP + 8 * v) : _mm256_setzero_ps();
                const __m256 gn = _mm256_fmadd_ps(dyv, Cv, g[v]);
                _mm256_maskstore_ps(dC + 8 * v, m, _mm256_fmadd_ps(dyv, h, _mm256_maskload_ps(dC + 8 * v, m)));
                const __m256 daa = _mm256_mul_ps(_mm256_mul_ps(gn, hp), at); /* da * a */
                r1 = _mm256_fmadd_ps(daa, _mm256_maskload_ps(Ae + 8 * v, m), r1);
                dA[v] = _mm256_fmadd_ps(daa, dv, dA[v]);
                _mm256_maskstore_ps(dB + 8 * v, m, _mm256_fmadd_ps(gn, dxv, _mm256_maskload_ps(dB + 8 * v, m)));
                r2 = _mm256_fmadd_ps(gn, Bv, r2);
                g[v] = _mm256_mul_ps(gn, at);
            }
            const float s1 = mc_hsum256(r1), s2 = mc_hsum256(r2);
            a->dx[t * a->E + e] = dy * a->D[e] + d * s2;
            a->ddelta[t * a->E + e] = s1 + x * s2;
        }
        for (int64_t v = 0; v < NV; v++) {
            const __m256i m = lanes(8 * v, N);
            _mm256_maskstore_ps(a->dA + e * N + 8 * v, m, _mm256_add_ps(_mm256_maskload_ps(a->dA + e * N + 8 * v, m), dA[v]));
        }
        a->dD[e] += dD;
    }
}
#endif
