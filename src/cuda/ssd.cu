/* ssd.cu — the Mamba-2 SSD, per segment, continuing from its state (H, P, N):
 *   s_t = exp(dt_t A_h) s_{t-1} + dt_t x_t ⊗ B_t;  y_t = s_t . C_t
 * Recurrent form: one warp per (segment, head, p), the N states of that row of the head's
 * state spread over the lanes (N / 32 each, up to 8: N <= 256), s . C summed by shuffles.
 * Time runs in order inside the kernel; a one-token segment is the decode step. */
#include "cuda/cuda_ops.h"

template <int SPL>
__global__ static void ssd_k(mcu_ssd_args a, const mcu_seg *seg) {
    const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= a.H * a.P) return; /* whole warps leave together */
    const int64_t h = warp / a.P, p = warp % a.P, grp = h / (a.H / a.G);
    const mcu_seg g = seg[blockIdx.y];
    float *S = g.ssm + (h * a.P + p) * a.N;
    float s[SPL];
    for (int i = 0; i < SPL; i++) {
        const int64_t n = lane + 32 * i;
        s[i] = n < a.N ? S[n] : 0.0f;
    }
    const float Ah = a.A[h];
    for (int32_t t = 0; t < g.n; t++) {
        const int64_t r = (int64_t)g.row0 + t;
        const float dt = a.dt[r * a.dt_stride + h], dA = expf(dt * Ah);
        const float xv = a.x[r * a.x_stride + h * a.P + p];
        const float *B = a.B + r * a.bc_stride + grp * a.N, *C = a.C + r * a.bc_stride + grp * a.N;
        float acc = 0.0f;
        for (int i = 0; i < SPL; i++) {
            const int64_t n = lane + 32 * i;
            if (n < a.N) {
                s[i] = s[i] * dA + dt * xv * B[n];
                acc += s[i] * C[n];
            }
        }
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) a.y[r * a.y_stride + h * a.P + p] = acc;
    }
    for (int i = 0; i < SPL; i++) {
        const int64_t n = lane + 32 * i;
        if (n < a.N) S[n] = s[i];
    }
}

extern "C" void mcu_ssd(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, mcu_stream s) {
    if (n_seg <= 0) return;
    const int64_t spl = (a->N + 31) / 32, threads = a->H * a->P * 32;
    const dim3 grid((unsigned)((threads + 255) / 256), (unsigned)n_seg);
    if (spl <= 1) ssd_k<1><<<grid, 256, 0, s>>>(*a, seg);
    else if (spl <= 2) ssd_k<2><<<grid, 256, 0, s>>>(*a, seg);
    else if (spl <= 4) ssd_k<4><<<grid, 256, 0, s>>>(*a, seg);
    else ssd_k<8><<<grid, 256, 0, s>>>(*a, seg);
}
