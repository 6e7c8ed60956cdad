/* conv.cu — the causal depthwise conv1d + bias + SiLU, per segment, in place. One thread
 * per (segment, channel) walks the segment's rows in order with the last K-1 inputs in
 * registers: a one-token segment is the decode step, a long one the prefill; both read
 * and write the window in the segment's state. Rows of consecutive threads are
 * consecutive channels, so every load and store is coalesced. */
#include "cuda/cuda_ops.h"

#define MAX_K 8

__device__ static inline float silu(float x) { return x / (1.0f + expf(-x)); }

template <int K>
__global__ static void conv_k(float *x, int64_t stride, int64_t C, const float *w, const float *b, const mcu_seg *seg) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const mcu_seg g = seg[blockIdx.y];
    float wk[K], hist[K > 1 ? K - 1 : 1];
    for (int k = 0; k < K; k++) wk[k] = w[c * K + k];
    float *win = g.conv + c * (K - 1);
    for (int k = 0; k < K - 1; k++) hist[k] = win[k];
    const float bias = b ? b[c] : 0.0f;
    float *xr = x + (int64_t)g.row0 * stride + c;
    for (int32_t t = 0; t < g.n; t++, xr += stride) {
        const float in = *xr;
        float acc = bias;
        for (int k = 0; k < K - 1; k++) acc += wk[k] * hist[k];
        acc += wk[K - 1] * in;
        for (int k = 0; k + 1 < K - 1; k++) hist[k] = hist[k + 1];
        if (K > 1) hist[K - 2] = in;
        *xr = silu(acc);
    }
    for (int k = 0; k < K - 1; k++) win[k] = hist[k];
}

extern "C" void mcu_conv(float *x, int64_t stride, int64_t C, int64_t K, const float *w, const float *b,
                         const mcu_seg *seg, int64_t n_seg, int64_t max_n, mcu_stream s) {
    (void)max_n;
    if (n_seg <= 0 || C <= 0) return;
    const dim3 grid((unsigned)((C + 127) / 128), (unsigned)n_seg);
    switch (K) {
    case 1: conv_k<1><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg); break;
    case 2: conv_k<2><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg); break;
    case 3: conv_k<3><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg); break;
    case 4: conv_k<4><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg); break;
    case 5: conv_k<5><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg); break;
    case 6: conv_k<6><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg); break;
    case 7: conv_k<7><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg); break;
    default: conv_k<MAX_K><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg); break;
    }
}
