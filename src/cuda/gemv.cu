/* gemv.cu — products of a few rows (decode: T <= 8) with weights as stored on the device
 * (float32 or bf16), float32 activations, float32 sums: out (T, R) = x (T, K) W^T (+ beta
 * out). Memory-bound: each weight row is read once, 16 bytes a lane at a time, by one
 * warp; the T activation rows come through L1 (every warp reads the same ones). A warp
 * per row, four rows per block. Rows whose K is not a multiple of 8 (or misaligned
 * pointers) take the scalar loop. */
#include <cuda_bf16.h>

#include "cuda/cuda_ops.h"

#define ROWS_PER_BLOCK 4

__device__ static inline void load8(const float *w, float v[8]) {
    const float4 a = *(const float4 *)w, b = *(const float4 *)(w + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ static inline void load8(const __nv_bfloat16 *w, float v[8]) {
    const uint4 u = *(const uint4 *)w;
    const uint32_t q[4] = {u.x, u.y, u.z, u.w};
    for (int i = 0; i < 4; i++) { /* bf16 -> f32 is a shift: exact */
        v[2 * i] = __uint_as_float(q[i] << 16);
        v[2 * i + 1] = __uint_as_float(q[i] & 0xffff0000u);
    }
}
__device__ static inline float load1(const float *w) { return *w; }
__device__ static inline float load1(const __nv_bfloat16 *w) { return __bfloat162float(*w); }

template <typename TW, int NT, bool VEC>
__global__ static void gemv_k(float *out, int64_t ldo, const float *x, int64_t xs, const TW *W, int64_t R, int64_t K,
                              float beta) {
    const int64_t r = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (r >= R) return;
    const TW *w = W + r * K;
    float acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    if (VEC) {
        /* unrolled: several 16-byte loads of the row in flight per lane (the warps an SM
         * holds are too few to cover the memory latency with one each) */
#pragma unroll 4
        for (int64_t k = (int64_t)lane * 8; k < K; k += 256) {
            float wv[8];
            load8(w + k, wv);
            for (int t = 0; t < NT; t++) {
                float xv[8];
                load8(x + t * xs + k, xv);
                for (int i = 0; i < 8; i++) acc[t] += wv[i] * xv[i];
            }
        }
    } else {
        for (int64_t k = lane; k < K; k += 32) {
            const float wv = load1(w + k);
            for (int t = 0; t < NT; t++) acc[t] += wv * x[t * xs + k];
        }
    }
    for (int t = 0; t < NT; t++)
        for (int o = 16; o > 0; o >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
    if (lane < NT) {
        float v = acc[0];
        for (int t = 1; t < NT; t++) v = lane == t ? acc[t] : v;
        float *o = out + lane * ldo + r;
        *o = beta != 0.0f ? v + beta * *o : v;
    }
}

template <typename TW, int NT>
static void launch(float *out, int64_t ldo, const float *x, int64_t xs, const TW *W, int64_t R, int64_t K, float beta,
                   bool vec, mcu_stream s) {
    const unsigned blocks = (unsigned)((R + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    if (vec) gemv_k<TW, NT, true><<<blocks, 32 * ROWS_PER_BLOCK, 0, s>>>(out, ldo, x, xs, W, R, K, beta);
    else gemv_k<TW, NT, false><<<blocks, 32 * ROWS_PER_BLOCK, 0, s>>>(out, ldo, x, xs, W, R, K, beta);
}

template <typename TW>
static void dispatch(float *out, int64_t ldo, const float *x, int64_t xs, int64_t T, const TW *W, int64_t R, int64_t K,
                     float beta, mcu_stream s) {
    const bool vec = K % 8 == 0 && xs % 4 == 0 && ((uintptr_t)x % 16) == 0 && ((uintptr_t)W % 16) == 0;
    switch (T) {
    case 1: launch<TW, 1>(out, ldo, x, xs, W, R, K, beta, vec, s); break;
    case 2: launch<TW, 2>(out, ldo, x, xs, W, R, K, beta, vec, s); break;
    case 3: launch<TW, 3>(out, ldo, x, xs, W, R, K, beta, vec, s); break;
    case 4: launch<TW, 4>(out, ldo, x, xs, W, R, K, beta, vec, s); break;
    case 5: launch<TW, 5>(out, ldo, x, xs, W, R, K, beta, vec, s); break;
    case 6: launch<TW, 6>(out, ldo, x, xs, W, R, K, beta, vec, s); break;
    case 7: launch<TW, 7>(out, ldo, x, xs, W, R, K, beta, vec, s); break;
    default: launch<TW, 8>(out, ldo, x, xs, W, R, K, beta, vec, s); break;
    }
}

extern "C" void mcu_gemv(float *out, int64_t ldo, const float *x, int64_t xs, int64_t T, const void *W, int w_bf16,
                         int64_t R, int64_t K, float beta, mcu_stream s) {
    if (T <= 0 || T > MCU_GEMV_MAX_T || R <= 0) return;
    if (w_bf16) dispatch(out, ldo, x, xs, T, (const __nv_bfloat16 *)W, R, K, beta, s);
    else dispatch(out, ldo, x, xs, T, (const float *)W, R, K, beta, s);
}
