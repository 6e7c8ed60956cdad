/* scan_train_avx512.c — AVX-512 forms of the Mamba-1 training scan (ops_train.h):
 * the N states of a channel in one vector (16 lanes, masked past N), the polynomial
 * exp of simd_avx512.h. Same recurrences as mc_scan_fwd / mc_scan_bwd; sums over n
 * are done in a different order (tests/test_train.c compares the two). */
#if defined(__x86_64__)
#include "cpu/simd_avx512.h"
#include "train/ops_train.h"

MC_AVX512_TARGET static inline __mmask16 lane_mask(int64_t n0, int64_t N) {
    return N - n0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (N - n0)) - 1);
}

MC_AVX512_TARGET void mc_scan_fwd_avx512(const mc_scan_train *a, int64_t e0, int64_t e1) {
    const int64_t N = a->N, NV = (N + 15) / 16;
    __m512 h[32];
    for (int64_t e = e0; e < e1; e++) {
        const float *Ae = a->A + e * N;
        for (int64_t v = 0; v < NV; v++) h[v] = _mm512_setzero_ps();
        for (int64_t t = 0; t < a->L; t++) {
            const float d = a->delta[t * a->E + e], x = a->x[t * a->x_stride + e];
            const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
            const __m512 dv = _mm512_set1_ps(d), dx = _mm512_set1_ps(d * x);
            __m512 y = _mm512_setzero_ps();
            for (int64_t v = 0; v < NV; v++) {
                const __mmask16 m = lane_mask(16 * v, N);
                const __m512 at = mc_exp512(_mm512_mul_ps(dv, _mm512_maskz_loadu_ps(m, Ae + 16 * v)));
                h[v] = _mm512_fmadd_ps(at, h[v], _mm512_mul_ps(dx, _mm512_maskz_loadu_ps(m, B + 16 * v)));
                y = _mm512_fmadd_ps(h[v], _mm512_maskz_loadu_ps(m, C + 16 * v), y);
            }
            a->ys[t * a->E + e] = _mm512_reduce_add_ps(y) + a->D[e] * x;
        }
    }
}

MC_AVX512_TARGET void mc_scan_bwd_avx512(const mc_scan_train *a, int64_t e0, int64_t e1) {
    const int64_t N = a->N, L = a->L, NV = (N + 15) / 16, NP = NV * 16; /* states padded to whole vectors */
    float *hs = a->work, *as = a->work + L * NP;
    __m512 g[32];
    for (int64_t e = e0; e < e1; e++) {
        const float *Ae = a->A + e * N;
        for (int64_t v = 0; v < NV; v++) g[v] = _mm512_setzero_ps();
        for (int64_t t = 0; t < L; t++) { /* recompute the states; padding lanes stay 0 */
            const float d = a->delta[t * a->E + e], x = a->x[t * a->x_stride + e];
            const float *B = a->B + t * a->bc_stride;
            for (int64_t v = 0; v < NV; v++) {
                const __mmask16 m = lane_mask(16 * v, N);
                const __m512 at = mc_exp512(_mm512_mul_ps(_mm512_set1_ps(d), _mm512_maskz_loadu_ps(m, Ae + 16 * v)));
                const __m512 hp = t ? _mm512_load_ps(hs + (t - 1) * NP + 16 * v) : _mm512_setzero_ps();
                _mm512_store_ps(as + t * NP + 16 * v, at);
                _mm512_store_ps(hs + t * NP + 16 * v,
                                _mm512_fmadd_ps(at, hp, _mm512_mul_ps(_mm512_set1_ps(d * x), _mm512_maskz_loadu_ps(m, B + 16 * v))));
            }
        }
        float dD = 0.0f;
        __m512 dA[32];
        for (int64_t v = 0; v < NV; v++) dA[v] = _mm512_setzero_ps();
        for (int64_t t = L - 1; t >= 0; t--) {
            const float d = a->delta[t * a->E + e], x = a->x[t * a->x_stride + e], dy = a->dys[t * a->E + e];
            const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
            float *dB = a->dB + t * a->bc_stride, *dC = a->dC + t * a->bc_stride;
            dD += dy * x;
            const __m512 dyv = _mm512_set1_ps(dy), dxv = _mm512_set1_ps(d * x), dv = _mm512_set1_ps(d);
            __m512 r1 = _mm512_setzero_ps(), r2 = _mm512_setzero_ps(); /* sum da a A, sum g B */
            for (int64_t v = 0; v < NV; v++) {
                const __mmask16 m = lane_mask(16 * v, N);
                const __m512 Bv = _mm512_maskz_loadu_ps(m, B + 16 * v), Cv = _mm512_maskz_loadu_ps(m, C + 16 * v);
                const __m512 h = _mm512_load_ps(hs + t * NP + 16 * v), at = _mm512_load_ps(as + t * NP + 16 * v);
                const __m512 hp = t ? _mm512_load_ps(hs + (t - 1) * NP + 16 * v) : _mm512_setzero_ps();
                const __m512 gn = _mm512_fmadd_ps(dyv, Cv, g[v]);
                _mm512_mask_storeu_ps(dC + 16 * v, m, _mm512_fmadd_ps(dyv, h, _mm512_maskz_loadu_ps(m, dC + 16 * v)));
                const __m512 daa = _mm512_mul_ps(_mm512_mul_ps(gn, hp), at); /* da * a */
                r1 = _mm512_fmadd_ps(daa, _mm512_maskz_loadu_ps(m, Ae + 16 * v), r1);
                dA[v] = _mm512_fmadd_ps(daa, dv, dA[v]);
                _mm512_mask_storeu_ps(dB + 16 * v, m, _mm512_fmadd_ps(gn, dxv, _mm512_maskz_loadu_ps(m, dB + 16 * v)));
                r2 = _mm512_fmadd_ps(gn, Bv, r2);
                g[v] = _mm512_mul_ps(gn, at);
            }
            const float s1 = _mm512_reduce_add_ps(r1), s2 = _mm512_reduce_add_ps(r2);
            a->dx[t * a->E + e] = dy * a->D[e] + d * s2;
            a->ddelta[t * a->E + e] = s1 + x * s2;
        }
        for (int64_t v = 0; v < NV; v++) {
            const __mmask16 m = lane_mask(16 * v, N);
            _mm512_mask_storeu_ps(a->dA + e * N + 16 * v, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a->dA + e * N + 16 * v), dA[v]));
        }
        a->dD[e] += dD;
    }
}
#endif
