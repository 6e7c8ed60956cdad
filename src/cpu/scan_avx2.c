/* scan_avx2.c — Mamba-1 selective scan for AVX2, the algorithm of scan_avx512.c with
 * 8 channels per register: softplus of 8 dt at once, then for each n one exp(dt * A[:, n])
 * and the state update; the state of a block lives in a small (N, 8) array (AVX2 has 16
 * registers, too few to hold it). Wider states than MAX_N use the reference. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/simd_avx2.h"

#define TARGET MC_AVX2_TARGET
#define MAX_N 64

TARGET static void scan_block(const mc_scan_args *a, int64_t c, int nc) {
    const int N = (int)a->N;
    const __m256i m = mc_mask256(nc);
    float At[MAX_N][8] = {{0}}, St[MAX_N][8] = {{0}};
    for (int j = 0; j < nc; j++)
        for (int n = 0; n < N; n++) At[n][j] = a->A[(c + j) * N + n], St[n][j] = a->state[(c + j) * N + n];
    const __m256 bias = _mm256_maskload_ps(a->dt_bias + c, m), D = _mm256_maskload_ps(a->D + c, m);
    for (int64_t t = 0; t < a->T; t++) {
        const __m256 dt = mc_softplus256(_mm256_add_ps(_mm256_maskload_ps(a->dt + t * a->dt_stride + c, m), bias));
        const __m256 x = _mm256_maskload_ps(a->x + t * a->x_stride + c, m), dx = _mm256_mul_ps(dt, x);
        const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
        __m256 y = _mm256_setzero_ps();
        for (int n = 0; n < N; n++) {
            const __m256 dA = mc_exp256(_mm256_mul_ps(dt, _mm256_loadu_ps(At[n])));
            const __m256 s = _mm256_fmadd_ps(dA, _mm256_loadu_ps(St[n]), _mm256_mul_ps(dx, _mm256_set1_ps(B[n])));
            _mm256_storeu_ps(St[n], s);
            y = _mm256_fmadd_ps(s, _mm256_set1_ps(C[n]), y);
        }
        y = _mm256_fmadd_ps(D, x, y);
        y = _mm256_mul_ps(y, mc_silu256(_mm256_maskload_ps(a->z + t * a->z_stride + c, m)));
        _mm256_maskstore_ps(a->y + t * a->y_stride + c, m, y);
    }
    for (int j = 0; j < nc; j++)
        for (int n = 0; n < N; n++) a->state[(c + j) * N + n] = St[n][j];
}

void mc_scan_avx2(const mc_scan_args *a) {
    if (a->N > MAX_N) {
        mc_selective_scan(a);
        return;
    }
    for (int64_t c = 0; c < a->E; c += 8) scan_block(a, c, a->E - c < 8 ? (int)(a->E - c) : 8);
}
#endif
