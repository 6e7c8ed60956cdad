/* scan.cu — the Mamba-1 selective scan, per segment, continuing from its state:
 *   dt = softplus(dt + dt_bias); s = exp(dt A) s + dt B x; y = (s . C + D x) silu(z)
 * A group of LPC lanes (a power of two up to 32) per channel, each lane holding SPL of
 * the channel's N states in registers; s . C is summed across the group by shuffles.
 * The lanes of one channel read the same x, dt, z and consecutive B, C: every access is
 * a broadcast or coalesced. Time runs in order inside the kernel (a one-token segment
 * is the decode step). */
#include "cuda/cuda_ops.h"

__device__ static inline float silu(float x) { return x / (1.0f + expf(-x)); }
__device__ static inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

template <int SPL>
__global__ static void scan_k(mcu_scan_args a, const mcu_seg *seg, int lpc) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t c = tid / lpc;
    const int lane = (int)(tid % lpc);
    const bool live = c < a.E; /* every lane takes part in the shuffles */
    const int64_t cc = live ? c : a.E - 1;
    const mcu_seg g = seg[blockIdx.y];
    float s[SPL], A[SPL];
    for (int i = 0; i < SPL; i++) {
        const int64_t n = lane + (int64_t)i * lpc;
        s[i] = live && n < a.N ? g.ssm[cc * a.N + n] : 0.0f;
        A[i] = n < a.N ? a.A[cc * a.N + n] : 0.0f;
    }
    const float Dc = a.D[cc], bias = a.dt_bias[cc];
    for (int32_t t = 0; t < g.n; t++) {
        const int64_t r = (int64_t)g.row0 + t;
        const float dt = softplus(a.dt[r * a.dt_stride + cc] + bias);
        const float xv = a.x[r * a.x_stride + cc];
        const float *B = a.B + r * a.bc_stride, *C = a.C + r * a.bc_stride;
        float acc = 0.0f;
        for (int i = 0; i < SPL; i++) {
            const int64_t n = lane + (int64_t)i * lpc;
            if (n < a.N) {
                s[i] = expf(dt * A[i]) * s[i] + dt * B[n] * xv;
                acc += s[i] * C[n];
            }
        }
        for (int o = lpc / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o, lpc);
        if (live && lane == 0) {
            const float y = acc + Dc * xv;
            a.y[r * a.y_stride + cc] = y * silu(a.z[r * a.z_stride + cc]);
        }
    }
    if (live)
        for (int i = 0; i < SPL; i++) {
            const int64_t n = lane + (int64_t)i * lpc;
            if (n < a.N) g.ssm[cc * a.N + n] = s[i];
        }
}

extern "C" void mcu_selective_scan(const mcu_scan_args *a, const mcu_seg *seg, int64_t n_seg, mcu_stream s) {
    if (n_seg <= 0) return;
    int lpc = 1;
    while (lpc < a->N && lpc < 32) lpc *= 2;
    const int64_t spl = (a->N + lpc - 1) / lpc, threads = a->E * lpc;
    const dim3 grid((unsigned)((threads + 127) / 128), (unsigned)n_seg);
    if (spl <= 1) scan_k<1><<<grid, 128, 0, s>>>(*a, seg, lpc);
    else if (spl <= 2) scan_k<2><<<grid, 128, 0, s>>>(*a, seg, lpc);
    else if (spl <= 4) scan_k<4><<<grid, 128, 0, s>>>(*a, seg, lpc);
    else scan_k<8><<<grid, 128, 0, s>>>(*a, seg, lpc);
}
