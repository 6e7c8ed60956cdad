/* conv.cu — the causal depthwise conv1d + bias + SiLU, per segment, in place. One thread
 * per (segment, channel, chunk of rows) walks its rows in order with the last K-1 inputs
 * in registers: a one-token segment is the decode step, a long one the prefill. Rows of
 * consecutive threads are consecutive channels, so loads and stores are coalesced.
 * A segment of one chunk reads and writes its window in the state directly. A longer one
 * has the K-1 inputs before each chunk (the window, for the first) copied aside first
 * (hist_k), because chunks overwrite their rows; its last chunk writes the new window. */
#include "cuda/cuda_ops.h"

#include <cuda_bf16.h>

#define MAX_K 8

__device__ static inline float silu(float x) { return x / (1.0f + expf(-x)); }

/* hist (chunk, K-1, C): the inputs before chunk j of each multi-chunk segment. */
__global__ static void hist_k(const float *x, int64_t stride, int64_t C, int K, const mcu_seg *seg, float *hist) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const mcu_seg g = seg[blockIdx.y];
    const int32_t j = (int32_t)blockIdx.z, t0 = j * MCU_CONV_CHUNK;
    if (c >= C || g.cchunk0 < 0 || t0 >= g.n) return;
    float *h = hist + (int64_t)(g.cchunk0 + j) * (K - 1) * C;
    for (int k = 0; k < K - 1; k++) { /* input row t0 - (K-1) + k: the window before row 0 */
        const int32_t t = t0 - (K - 1) + k;
        h[(int64_t)k * C + c] = t >= 0 ? x[((int64_t)g.row0 + t) * stride + c] : g.conv[c * (K - 1) + (K - 1 + t)];
    }
}

template <int K>
__global__ static void conv_k(float *x, int64_t stride, int64_t C, const float *w, const float *b, const mcu_seg *seg,
                              const float *hist, __nv_bfloat16 *out16) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const mcu_seg g = seg[blockIdx.y];
    const int32_t j = (int32_t)blockIdx.z;
    if (c >= C) return;
    int32_t t0 = 0, t1 = g.n;
    if (g.cchunk0 >= 0) {
        t0 = j * MCU_CONV_CHUNK;
        if (t0 >= g.n) return;
        t1 = t0 + MCU_CONV_CHUNK < g.n ? t0 + MCU_CONV_CHUNK : g.n;
    } else if (j > 0) {
        return;
    }
    float wk[K], hw[K > 1 ? K - 1 : 1];
    for (int k = 0; k < K; k++) wk[k] = w[c * K + k];
    float *win = g.conv + c * (K - 1);
    const float *h = g.cchunk0 >= 0 ? hist + (int64_t)(g.cchunk0 + j) * (K - 1) * C : nullptr;
    for (int k = 0; k < K - 1; k++) hw[k] = h ? h[(int64_t)k * C + c] : win[k];
    const float bias = b ? b[c] : 0.0f;
    float *xr = x + ((int64_t)g.row0 + t0) * stride + c;
    __nv_bfloat16 *o16 = out16 ? out16 + ((int64_t)g.row0 + t0) * C + c : nullptr;
    for (int32_t t = t0; t < t1; t++, xr += stride) {
        const float in = *xr;
        float acc = bias;
        for (int k = 0; k < K - 1; k++) acc += wk[k] * hw[k];
        acc += wk[K - 1] * in;
        for (int k = 0; k + 1 < K - 1; k++) hw[k] = hw[k + 1];
        if (K > 1) hw[K - 2] = in;
        const float y = silu(acc);
        *xr = y;
        if (o16) *o16 = __float2bfloat16_rn(y), o16 += C;
    }
    if (t1 == g.n)
        for (int k = 0; k < K - 1; k++) win[k] = hw[k];
}

extern "C" void mcu_conv(float *x, int64_t stride, int64_t C, int64_t K, const float *w, const float *b,
                         const mcu_seg *seg, int64_t n_seg, int64_t max_cchunks, float *hist, void *out16, mcu_stream s) {
    __nv_bfloat16 *o16 = (__nv_bfloat16 *)out16;
    if (n_seg <= 0 || C <= 0) return;
    const unsigned depth = max_cchunks > 0 ? (unsigned)max_cchunks : 1;
    const dim3 grid((unsigned)((C + 127) / 128), (unsigned)n_seg, depth);
    if (max_cchunks > 0 && K > 1) hist_k<<<grid, 128, 0, s>>>(x, stride, C, (int)K, seg, hist);
    switch (K) {
    case 1: conv_k<1><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg, hist, o16); break;
    case 2: conv_k<2><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg, hist, o16); break;
    case 3: conv_k<3><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg, hist, o16); break;
    case 4: conv_k<4><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg, hist, o16); break;
    case 5: conv_k<5><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg, hist, o16); break;
    case 6: conv_k<6><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg, hist, o16); break;
    case 7: conv_k<7><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg, hist, o16); break;
    default: conv_k<MAX_K><<<grid, 128, 0, s>>>(x, stride, C, w, b, seg, hist, o16); break;
    }
}
