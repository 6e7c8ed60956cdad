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

/* Channels [c, c + nc) (nc <= 16); N is a constant after inlining (see the switch). A
 * and the state (channel-major, N per channel) become (N, 16) registers: for a whole
 * block of 16 channels with N = 16 by a register transpose (in decode, T = 1, a scalar
 * copy in and out cost more than the scan itself: perf, mamba-130m q4_0), else through
 * a scalar copy. */
TARGET static inline __attribute__((always_inline)) void scan_block(const mc_scan_args *a, int64_t c, int nc, int N) {
    const __mmask16 m = (__mmask16)((1u << nc) - 1);
    const int square = nc == 16 && N == 16;
    __m512 s[MAX_N], At[MAX_N];
    if (square) {
        for (int j = 0; j < 16; j++) {
            At[j] = _mm512_loadu_ps(a->A + (c + j) * 16);
            s[j] = _mm512_loadu_ps(a->state + (c + j) * 16);
        }
        mc_transpose16(At);
        mc_transpose16(s);
    } else {
        float Af[MAX_N][16] = {{0}}, Sf[MAX_N][16] = {{0}};
        for (int j = 0; j < nc; j++)
            for (int n = 0; n < N; n++) Af[n][j] = a->A[(c + j) * N + n], Sf[n][j] = a->state[(c + j) * N + n];
        for (int n = 0; n < N; n++) At[n] = _mm512_loadu_ps(Af[n]), s[n] = _mm512_loadu_ps(Sf[n]);
    }
    const __m512 bias = _mm512_maskz_loadu_ps(m, a->dt_bias + c), D = _mm512_maskz_loadu_ps(m, a->D + c);
    for (int64_t t = 0; t < a->T; t++) {
        const __m512 dt = mc_softplus512(_mm512_add_ps(_mm512_maskz_loadu_ps(m, a->dt + t * a->dt_stride + c), bias));
        const __m512 x = _mm512_maskz_loadu_ps(m, a->x + t * a->x_stride + c), dx = _mm512_mul_ps(dt, x);
        const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
        __m512 y = _mm512_setzero_ps();
        for (int n = 0; n < N; n++) {
            const __m512 dA = mc_exp512(_mm512_mul_ps(dt, At[n]));
            s[n] = _mm512_fmadd_ps(dA, s[n], _mm512_mul_ps(dx, _mm512_set1_ps(B[n])));
            y = _mm512_fmadd_ps(s[n], _mm512_set1_ps(C[n]), y);
        }
        y = _mm512_fmadd_ps(D, x, y);
        y = _mm512_mul_ps(y, mc_silu512(_mm512_maskz_loadu_ps(m, a->z + t * a->z_stride + c)));
        _mm512_mask_storeu_ps(a->y + t * a->y_stride + c, m, y);
    }
    if (square) {
        mc_transpose16(s);
        for (int j = 0; j < 16; j++) _mm512_storeu_ps(a->state + (c + j) * 16, s[j]);
        return;
    }
    float Sf[MAX_N][16];
    for (int n = 0; n < N; n++) _mm512_storeu_ps(Sf[n], s[n]);
    for (int j = 0; j < nc; j++)
        for (int n = 0; n < N; n++) a->state[(c + j) * N + n] = Sf[n][j];
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
