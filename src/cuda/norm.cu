/* norm.cu — the row-wise kernels: embedding rows, RMSNorm, bias, bf16 conversion, Mamba-2's
 * dt softplus and its gated RMSNorm (with the D skip). One block per row where a row
 * needs a reduction; float32 throughout, sums in the order of a block reduction. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/cuda_ops.h"
#include "cuda/fastmath.cuh"

#define ROW_THREADS 256

__device__ static inline float silu(float x) { return x / (1.0f + expf(-x)); }

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

__device__ static inline void put4(float *o, float4 v) { *(float4 *)o = v; }
__device__ static inline void put4(__nv_bfloat16 *o, float4 v) {
    *(__nv_bfloat162 *)o = __floats2bfloat162_rn(v.x, v.y);
    *(__nv_bfloat162 *)(o + 2) = __floats2bfloat162_rn(v.z, v.w);
}

/* VEC: four values a thread at a time (n a multiple of 4, rows aligned): the loads of a
 * row in flight at once, not one 4-byte load each. */
template <typename O, bool VEC>
__global__ static void rmsnorm_k(O *out, const float *x, const int32_t *rows, const float *w, int64_t n, float eps) {
    const int64_t r = rows ? rows[blockIdx.x] : blockIdx.x;
    const float *xr = x + r * n;
    O *o = out + (int64_t)blockIdx.x * n;
    float ss = 0.0f;
    if (VEC) {
        for (int64_t i = 4 * threadIdx.x; i < n; i += 4 * blockDim.x) {
            const float4 v = *(const float4 *)(xr + i);
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    }
    const float inv = rsqrtf(block_sum(ss) / (float)n + eps);
    if (VEC) {
        for (int64_t i = 4 * threadIdx.x; i < n; i += 4 * blockDim.x) {
            const float4 v = *(const float4 *)(xr + i), g = *(const float4 *)(w + i);
            put4(o + i, make_float4(v.x * inv * g.x, v.y * inv * g.y, v.z * inv * g.z, v.w * inv * g.w));
        }
    } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) put(o + i, xr[i] * inv * w[i]);
    }
}

extern "C" void mcu_rmsnorm(void *out, int out_bf16, const float *x, const int32_t *rows, const float *w, int64_t T,
                            int64_t n, float eps, mcu_stream s) {
    if (T <= 0) return;
    const bool vec = n % 4 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)w % 16 == 0 && (uintptr_t)out % 16 == 0;
    if (out_bf16) {
        if (vec) rmsnorm_k<__nv_bfloat16, true><<<(unsigned)T, ROW_THREADS, 0, s>>>((__nv_bfloat16 *)out, x, rows, w, n, eps);
        else rmsnorm_k<__nv_bfloat16, false><<<(unsigned)T, ROW_THREADS, 0, s>>>((__nv_bfloat16 *)out, x, rows, w, n, eps);
    } else {
        if (vec) rmsnorm_k<float, true><<<(unsigned)T, ROW_THREADS, 0, s>>>((float *)out, x, rows, w, n, eps);
        else rmsnorm_k<float, false><<<(unsigned)T, ROW_THREADS, 0, s>>>((float *)out, x, rows, w, n, eps);
    }
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
    float v = mcu_softplus(raw[t * rs + h] + bias[h]);
    dt[i] = v < lo ? lo : v > hi ? hi : v;
}

extern "C" void mcu_dt_softplus(float *dt, const float *raw, int64_t rs, const float *dt_bias, int64_t T, int64_t H,
                                float lo, float hi, mcu_stream s) {
    const int64_t n = T * H;
    if (n > 0) dt_softplus_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(dt, raw, rs, dt_bias, T, H, lo, hi);
}

/* One block per (row, group): y += D x over the group's channels, then its gated norm;
 * y16 (or NULL) the result rounded to bf16 too. */
template <bool Y16>
__global__ static void gate_k(float *y, __nv_bfloat16 *y16, const float *x, const float *z, int64_t xs, const float *D,
                              const float *w, int64_t E, int64_t P, int64_t G, int nbg, float eps) {
    const int64_t t = blockIdx.x, g = blockIdx.y, gs = E / G;
    float *yr = y + t * E + g * gs;
    __nv_bfloat16 *y16r = Y16 ? y16 + t * E + g * gs : nullptr;
    const float *xr = x + t * xs + g * gs, *zr = z + t * xs + g * gs;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < gs; i += blockDim.x) {
        float v = yr[i] + D[(g * gs + i) / P] * xr[i];
        if (!w || !nbg) v *= silu(zr[i]);
        yr[i] = v;
        if (Y16 && !w) y16r[i] = __float2bfloat16_rn(v);
        ss += v * v;
    }
    if (!w) return;
    const float inv = rsqrtf(block_sum(ss) / (float)gs + eps);
    for (int64_t i = threadIdx.x; i < gs; i += blockDim.x) {
        float v = yr[i] * inv * w[g * gs + i];
        if (nbg) v *= silu(zr[i]);
        yr[i] = v;
        if (Y16) y16r[i] = __float2bfloat16_rn(v);
    }
}

extern "C" void mcu_gate(float *y, void *y16, const float *x, const float *z, int64_t xs, const float *D,
                         const float *gnorm, int64_t T, int64_t E, int64_t P, int64_t G, int norm_before_gate, float eps,
                         mcu_stream s) {
    const int64_t blocks = T * (gnorm ? G : 1);
    const int threads = blocks < 256 ? 1024 : ROW_THREADS; /* a decode step's few rows: more threads each */
    if (T <= 0) return;
    const dim3 grid((unsigned)T, (unsigned)(gnorm ? G : 1));
    if (y16)
        gate_k<true><<<grid, threads, 0, s>>>(y, (__nv_bfloat16 *)y16, x, z, xs, D, gnorm, E, P, gnorm ? G : 1,
                                              norm_before_gate, eps);
    else
        gate_k<false><<<grid, threads, 0, s>>>(y, nullptr, x, z, xs, D, gnorm, E, P, gnorm ? G : 1, norm_before_gate, eps);
}

/* Blocks of ARGMAX_SPAN values of a row each: every thread keeps its best key (cuda_ops.h
 * mcu_argmax_key: larger is a larger value, then a lower index), the block combines them
 * and merges its best into the row's key with one 64-bit atomicMax. NaN is skipped. */
#define ARGMAX_THREADS 256
#define ARGMAX_SPAN (8 * ARGMAX_THREADS)
__device__ static inline unsigned long long argmax_key(float v, int64_t i) {
    const uint32_t u = __float_as_uint(v), ord = (u & 0x80000000u) ? ~u : u | 0x80000000u;
    return ((unsigned long long)ord << 32) | (0xffffffffu - (uint32_t)i);
}
__global__ static void argmax_k(unsigned long long *keys, const float *logits, int64_t ld, int64_t n) {
    const float *row = logits + (int64_t)blockIdx.y * ld;
    const int64_t i0 = (int64_t)blockIdx.x * ARGMAX_SPAN, i1 = i0 + ARGMAX_SPAN < n ? i0 + ARGMAX_SPAN : n;
    unsigned long long best = 0;
    for (int64_t i = i0 + threadIdx.x; i < i1; i += ARGMAX_THREADS) {
        const float v = row[i];
        const unsigned long long k = v == v ? argmax_key(v, i) : 0ull;
        best = k > best ? k : best;
    }
    for (int o = 16; o > 0; o >>= 1) {
        const unsigned long long k = __shfl_xor_sync(0xffffffffu, best, o);
        best = k > best ? k : best;
    }
    __shared__ unsigned long long part[ARGMAX_THREADS / 32];
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) part[w] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int j = 1; j < ARGMAX_THREADS / 32; j++) best = part[j] > best ? part[j] : best;
        if (best) atomicMax(keys + blockIdx.y, best);
    }
}

extern "C" void mcu_argmax(uint64_t *keys, const float *logits, int64_t ld, int64_t rows, int64_t n, mcu_stream s) {
    if (rows <= 0 || n <= 0) return;
    cudaMemsetAsync(keys, 0, (size_t)rows * sizeof *keys, s);
    const int64_t blocks = (n + ARGMAX_SPAN - 1) / ARGMAX_SPAN;
    argmax_k<<<dim3((unsigned)blocks, (unsigned)rows), ARGMAX_THREADS, 0, s>>>((unsigned long long *)keys, logits, ld, n);
}
