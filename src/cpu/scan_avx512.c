/* scan_avx512.c — Mamba-1 selective scan for AVX-512, vectorized across channels: one
 * register holds 16 channels, and the state of a block of 16 channels is N registers
 * (transposed to (N, 16) on entry, back on exit). Per token: softplus of 16 dt at once,
 * then for each n one exp(dt * A[:, n]), two FMAs for the state and one for y — no
 * horizontal sums (the earlier form, vectorized along N, spent a reduction and a scalar
 * softplus + SiLU per channel and token: ~38% of a one-thread mamba-130m prefill).
 * Wider states than MAX_N use the reference. exp / log: simd_avx512.h (about 1 ulp),
 * tested against the reference in test_kernels. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/simd_avx512.h"

#define TARGET MC_AVX512_TARGET
#define MAX_N 64

/* Channels [c, c + nc) (nc <= 16); N is a constant after inlining (see the switch). */
TARGET static inline __attribute__((always_inline)) void scan_block(const mc_scan_args *a, int64_t c, int nc, int N) {
    const __mmask16 m = (__mmask16)((1u << nc) - 1);
    float At[MAX_N][16] = {{0}}, St[MAX_N][16] = {{0}};
    for (int j = 0; j < nc; j++)
        for (int n = 0; n < N; n++) At[n][j] = a->A[(c + j) * N + n], St[n][j] = a->state[(c + j) * N + n];
    __m512 s[MAX_N];
    for (int n = 0; n < N; n++) s[n] = _mm512_loadu_ps(St[n]);
    const __m512 bias = _mm512_maskz_loadu_ps(m, a->dt_bias + c), D = _mm512_maskz_loadu_ps(m, a->D + c);
    for (int64_t t = 0; t < a->T; t++) {
        const __m512 dt = mc_softplus512(_mm512_add_ps(_mm512_maskz_loadu_ps(m, a->dt + t * a->dt_stride + c), bias));
        const __m512 x = _mm512_maskz_loadu_ps(m, a->x + t * a->x_stride + c), dx = _mm512_mul_ps(dt, x);
        const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
        __m512 y = _mm512_setzero_ps();
        for (int n = 0; n < N; n++) {
            const __m512 dA = mc_exp512(_mm512_mul_ps(dt, _mm512_loadu_ps(At[n])));
            s[n] = _mm512_fmadd_ps(dA, s[n], _mm512_mul_ps(dx, _mm512_set1_ps(B[n])));
            y = _mm512_fmadd_ps(s[n], _mm512_set1_ps(C[n]), y);
        }
        y = _mm512_fmadd_ps(D, x, y);
        y = _mm512_mul_ps(y, mc_silu512(_mm512_maskz_loadu_ps(m, a->z + t * a->z_stride + c)));
        _mm512_mask_storeu_ps(a->y + t * a->y_stride + c, m, y);
    }
    for (int n = 0; n < N; n++) _mm512_storeu_ps(St[n], s[n]);
    for (int j = 0; j < nc; j++)
        for (int n = 0; n < N; n++) a->state[(c + j) * N + n] = St[n][j];
}

TARGET void mc_scan_avx512(const mc_scan_args *a) {
    if (a->N > MAX_N) {
        mc_selective_scan(a);
        return;
    }
    for (int64_t c = 0; c < a->E; c += 16) {
        const int nc = a->E - c < 16 ? (int)(a->E - c) : 16;
        if (a->N == 16) scan_block(a, c, nc, 16); /* every released Mamba-1: state in registers */
        else scan_block(a, c, nc, (int)a->N);
    }
}
#endif
