/* norm.cu — the row-wise kernels: embedding rows, RMSNorm, bias, bf16 conversion, Mamba-2's
 * dt softplus and its gated RMSNorm (with the D skip). One block per row where a row
 * needs a reduction; float32 throughout, sums in the order of a block reduction. */
#include <cuda_bf16.h>
#include <stdint.h>

#include "cuda/cuda_ops.h"

#define ROW_THREADS 256

__device__ static inline float silu(float x) { return x / (1.0f + expf(-x)); }
__device__ static inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* Sum over the block (blockDim.x a multiple of 32, at most 1024). */
__device__ static float block_sum(float v) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads(); /* part[] may still be read by an earlier call */
    if (lane == 0) part[w] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x / 32) ? part[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ static void embed_k(float *h, const float *embed, const int32_t *ids, int64_t D) {
    const float *src = embed + (int64_t)ids[blockIdx.x] * D;
    float *dst = h + (int64_t)blockIdx.x * D;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dst[i] = src[i];
}

extern "C" void mcu_embed(float *h, const float *embed, const int32_t *ids, int64_t T, int64_t D, mcu_stream s) {
    if (T > 0) embed_k<<<(unsigned)T, ROW_THREADS, 0, s>>>(h, embed, ids, D);
}

__device__ static inline void put(float *o, float v) { *o = v; }
__device__ static inline void put(__nv_bfloat16 *o, float v) { *o = __float2bfloat16_rn(v); }

template <typename O>
__global__ static void rmsnorm_k(O *out, const float *x, const int32_t *rows, const float *w, int64_t n, float eps) {
    const int64_t r = rows ? rows[blockIdx.x] : blockIdx.x;
    const float *xr = x + r * n;
    O *o = out + (int64_t)blockIdx.x * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    const float inv = rsqrtf(block_sum(ss) / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) put(o + i, xr[i] * inv * w[i]);
}

extern "C" void mcu_rmsnorm(void *out, int out_bf16, const float *x, const int32_t *rows, const float *w, int64_t T,
                            int64_t n, float eps, mcu_stream s) {
    if (T <= 0) return;
    if (out_bf16) rmsnorm_k<<<(unsigned)T, ROW_THREADS, 0, s>>>((__nv_bfloat16 *)out, x, rows, w, n, eps);
    else rmsnorm_k<<<(unsigned)T, ROW_THREADS, 0, s>>>((float *)out, x, rows, w, n, eps);
}

__global__ static void add_bias_k(float *y, int64_t ys, const float *bias, int64_t cols) {
    float *yr = y + (int64_t)blockIdx.x * ys;
    for (int64_t i = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; i < cols; i += (int64_t)gridDim.y * blockDim.x)
        yr[i] += bias[i];
}

/* Row-wise launches: one block row per row (grid x up to 2^31 - 1), column blocks in y. */
static dim3 row_grid(int64_t T, int64_t cols, int64_t per_block) {
    int64_t cb = (cols + per_block - 1) / per_block;
    return dim3((unsigned)T, (unsigned)(cb < 1 ? 1 : cb > 65535 ? 65535 : cb));
}

extern "C" void mcu_add_bias(float *y, int64_t ys, const float *bias, int64_t T, int64_t cols, mcu_stream s) {
    if (T > 0 && cols > 0) add_bias_k<<<row_grid(T, cols, 256), 256, 0, s>>>(y, ys, bias, cols);
}

/* Four columns a thread; float4 loads where rows and strides allow. */
template <bool VEC>
__global__ static void to_bf16_k(__nv_bfloat16 *out, const float *x, int64_t xs, int64_t cols) {
    const float *xr = x + (int64_t)blockIdx.x * xs;
    __nv_bfloat16 *o = out + (int64_t)blockIdx.x * cols;
    for (int64_t c = 4 * ((int64_t)blockIdx.y * blockDim.x + threadIdx.x); c < cols; c += 4 * (int64_t)gridDim.y * blockDim.x) {
        if (VEC) {
            const float4 v = *(const float4 *)(xr + c);
            *(__nv_bfloat162 *)(o + c) = __floats2bfloat162_rn(v.x, v.y);
            *(__nv_bfloat162 *)(o + c + 2) = __floats2bfloat162_rn(v.z, v.w);
        } else {
            for (int64_t k = c; k < c + 4 && k < cols; k++) o[k] = __float2bfloat16_rn(xr[k]);
        }
    }
}

extern "C" void mcu_to_bf16(void *out, const float *x, int64_t xs, int64_t T, int64_t cols, mcu_stream s) {
    if (T <= 0 || cols <= 0) return;
    const dim3 grid = row_grid(T, cols, 4 * 128);
    if (xs % 4 == 0 && cols % 4 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)out % 4 == 0)
        to_bf16_k<true><<<grid, 128, 0, s>>>((__nv_bfloat16 *)out, x, xs, cols);
    else
        to_bf16_k<false><<<grid, 128, 0, s>>>((__nv_bfloat16 *)out, x, xs, cols);
}

__global__ static void dt_softplus_k(float *dt, const float *raw, int64_t rs, const float *bias, int64_t T, int64_t H,
                                     float lo, float hi) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * H) return;
    const int64_t t = i / H, h = i % H;
    float v = softplus(raw[t * rs + h] + bias[h]);
    dt[i] = v < lo ? lo : v > hi ? hi : v;
}

extern "C" void mcu_dt_softplus(float *dt, const float *raw, int64_t rs, const float *dt_bias, int64_t T, int64_t H,
                                float lo, float hi, mcu_stream s) {
    const int64_t n = T * H;
    if (n > 0) dt_softplus_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(dt, raw, rs, dt_bias, T, H, lo, hi);
}

/* One block per (row, group): y += D x over the group's channels, then its gated norm. */
__global__ static void gate_k(float *y, const float *x, const float *z, int64_t xs, const float *D, const float *w,
                              int64_t E, int64_t P, int64_t G, int nbg, float eps) {
    const int64_t t = blockIdx.x, g = blockIdx.y, gs = E / G;
    float *yr = y + t * E + g * gs;
    const float *xr = x + t * xs + g * gs, *zr = z + t * xs + g * gs;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < gs; i += blockDim.x) {
        float v = yr[i] + D[(g * gs + i) / P] * xr[i];
        if (!w || !nbg) v *= silu(zr[i]);
        yr[i] = v;
        ss += v * v;
    }
    if (!w) return;
    const float inv = rsqrtf(block_sum(ss) / (float)gs + eps);
    for (int64_t i = threadIdx.x; i < gs; i += blockDim.x) {
        float v = yr[i] * inv * w[g * gs + i];
        yr[i] = nbg ? v * silu(zr[i]) : v;
    }
}

extern "C" void mcu_gate(float *y, const float *x, const float *z, int64_t xs, const float *D, const float *gnorm,
                         int64_t T, int64_t E, int64_t P, int64_t G, int norm_before_gate, float eps, mcu_stream s) {
    if (T > 0) gate_k<<<dim3((unsigned)T, (unsigned)(gnorm ? G : 1)), ROW_THREADS, 0, s>>>(y, x, z, xs, D, gnorm, E, P,
                                                                                        gnorm ? G : 1, norm_before_gate, eps);
}

/* One block per row: each thread keeps its best (value, index), then the block combines
 * them; ties go to the lower index, so the result is the first maximum. */
__global__ static void argmax_k(int32_t *tok, const float *logits, int64_t ld, int64_t n) {
    const float *row = logits + (int64_t)blockIdx.x * ld;
    float best = -INFINITY;
    int32_t bi = INT32_MAX;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = row[i];
        if (v > best || (v == best && (int32_t)i < bi)) best = v, bi = (int32_t)i;
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, best, o);
        const int32_t j = __shfl_xor_sync(0xffffffffu, bi, o);
        if (v > best || (v == best && j < bi)) best = v, bi = j;
    }
    __shared__ float bv[32];
    __shared__ int32_t bj[32];
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) bv[w] = best, bj[w] = bi;
    __syncthreads();
    if (w == 0) {
        best = lane < (int)(blockDim.x / 32) ? bv[lane] : -INFINITY;
        bi = lane < (int)(blockDim.x / 32) ? bj[lane] : INT32_MAX;
        for (int o = 16; o > 0; o >>= 1) {
            const float v = __shfl_xor_sync(0xffffffffu, best, o);
            const int32_t j = __shfl_xor_sync(0xffffffffu, bi, o);
            if (v > best || (v == best && j < bi)) best = v, bi = j;
        }
        if (lane == 0) tok[blockIdx.x] = bi == INT32_MAX ? 0 : bi;
    }
}

extern "C" void mcu_argmax(int32_t *tok, const float *logits, int64_t ld, int64_t rows, int64_t n, mcu_stream s) {
    if (rows > 0) argmax_k<<<(unsigned)rows, 1024, 0, s>>>(tok, logits, ld, n);
}
