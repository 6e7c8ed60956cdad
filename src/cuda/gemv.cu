/* gemv.cu — products of a few rows (decode: T <= 8) with the weights as stored on the
 * device (float32, bf16, or q8_0 / q4_0 kept quantized: cuda_ops.h mcu_matrix), float32
 * activations, float32 sums: out (T, R) = x (T, K) W^T (+ beta out), optionally with the
 * RMSNorm of x fused in.
 *
 * Memory-bound: each weight row is read once by one warp, 16 bytes a lane at a time (a
 * "chunk", wread.cuh; quantized chunks are summed raw and scaled once per block). The
 * activations are staged in shared memory where they fit (gemv_staged_k); otherwise they
 * come through L1 and WPR warps split each row's K between them (gemv_k; the slices' sums
 * meet in shared memory in a fixed order, so results do not depend on timing). Rows whose
 * K does not suit the chunks (or misaligned pointers) take gemv_k's scalar loop. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda/cuda_ops.h"
#include "cuda/wread.cuh"

#define WARPS 8

/* WPR (warps per row) and VEC (the chunk loop) are arguments, not template parameters: the
 * instances would multiply (readers x T x norm x WPR x VEC) for no measured gain. */
template <class RD, int NT, bool NORM>
__global__ static void __launch_bounds__(32 * WARPS) gemv_k(float *out, int64_t ldo, const float *x, int64_t xs, RD rd,
                                                            int64_t R, int64_t K, float beta, const float *nw, float eps,
                                                            int WPR, bool VEC, int T) {
    constexpr int V = RD::V;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, slice = warp % WPR;
    const int64_t r_want = (int64_t)blockIdx.x * (WARPS / WPR) + warp / WPR;
    const int64_t r = r_want < R ? r_want : R - 1; /* a row past the end repeats the last (not stored) */
    float acc[NT], ss[NT];
    for (int t = 0; t < NT; t++) acc[t] = ss[t] = 0.0f;
    if (VEC) {
        const int64_t chunks = K / V;
#pragma unroll 4
        for (int64_t c = (int64_t)slice * 32 + lane; c < chunks; c += 32 * WPR) {
            const uint4 u = rd.load(r, c);
            const float sc = rd.scale(r, c);
            float sum[NT];
            for (int t = 0; t < NT; t++) sum[t] = 0.0f;
#pragma unroll
            for (int j = 0; j < RD::Q; j++) {
                float v[4];
                RD::quad(u, j, v);
                const int64_t k = c * V + 4 * j;
                float4 n4;
                if (NORM) n4 = __ldg((const float4 *)(nw + k));
                for (int t = 0; t < NT; t++) {
                    float4 xv = __ldg((const float4 *)(x + (t < T ? t : T - 1) * xs + k));
                    if (NORM) {
                        ss[t] += xv.x * xv.x + xv.y * xv.y + xv.z * xv.z + xv.w * xv.w;
                        xv.x *= n4.x, xv.y *= n4.y, xv.z *= n4.z, xv.w *= n4.w;
                    }
                    sum[t] += v[0] * xv.x + v[1] * xv.y + v[2] * xv.z + v[3] * xv.w;
                }
            }
            for (int t = 0; t < NT; t++) acc[t] += sc * sum[t];
        }
    } else {
        for (int64_t k = (int64_t)slice * 32 + lane; k < K; k += 32 * WPR) {
            const float wv = rd.at(r, k), nk = NORM ? nw[k] : 1.0f;
            for (int t = 0; t < NT; t++) {
                const float xv = x[(t < T ? t : T - 1) * xs + k];
                if (NORM) ss[t] += xv * xv;
                acc[t] += wv * (xv * nk);
            }
        }
    }
    for (int t = 0; t < NT; t++)
        for (int o = 16; o > 0; o >>= 1) {
            acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
            if (NORM) ss[t] += __shfl_xor_sync(0xffffffffu, ss[t], o);
        }
    if (WPR > 1) { /* the row's slices, summed in slice order by slice 0 */
        __shared__ float part[WARPS][2 * NT];
        if (lane == 0)
            for (int t = 0; t < NT; t++) part[warp][t] = acc[t], part[warp][NT + t] = ss[t];
        __syncthreads();
        if (slice != 0) return;
        for (int j = 1; j < WPR; j++)
            for (int t = 0; t < NT; t++) acc[t] += part[warp + j][t], ss[t] += part[warp + j][NT + t];
    }
    if (lane < T && r_want < R) {
        float v = acc[0], q = ss[0];
        for (int t = 1; t < NT; t++) v = lane == t ? acc[t] : v, q = lane == t ? ss[t] : q;
        if (NORM) v *= rsqrtf(q / (float)K + eps);
        float *o = out + lane * ldo + r;
        *o = beta != 0.0f ? v + beta * *o : v;
    }
}

/* The activations staged in shared memory first, in the order the lanes read them: quad j
 * of chunk c of row t at (t Q + j) C + c (C chunks a row), so that a warp's 32 lanes, on
 * consecutive chunks, read consecutive 16 bytes (from global memory the lanes of a chunk
 * loop are V floats apart: a quantized chunk's activations span up to 32 cache lines per
 * warp load). With the norm, x nw is staged and each row's rsqrt applied at the end: one
 * sum of squares a block, not a warp. Each block then takes rows blockIdx.x * WARPS + warp,
 * + gridDim.x * WARPS, ... */
__device__ static float block_sum(float v, float *part) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads(); /* part[] may still be read by an earlier call */
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    v = 0.0f;
    for (int w = 0; w < WARPS; w++) v += part[w];
    return v;
}

template <class RD, int NT, bool NORM>
__global__ static void __launch_bounds__(32 * WARPS) gemv_staged_k(float *out, int64_t ldo, const float *x, int64_t xs,
                                                                   RD rd, int64_t R, int64_t K, float beta,
                                                                   const float *nw, float eps, int T) {
    constexpr int V = RD::V, Q = RD::Q;
    extern __shared__ float4 sx[];
    __shared__ float rs[NT], part[WARPS];
    const int64_t C = K / V;
    for (int t = 0; t < T; t++) {
        float ss = 0.0f;
        for (int64_t i = threadIdx.x; i < K / 4; i += blockDim.x) {
            float4 v = __ldg((const float4 *)(x + t * xs) + i);
            if (NORM) {
                const float4 n = __ldg((const float4 *)nw + i);
                ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
                v.x *= n.x, v.y *= n.y, v.z *= n.z, v.w *= n.w;
            }
            sx[((int64_t)t * Q + (4 * i % V) / 4) * C + 4 * i / V] = v;
        }
        if (NORM) {
            ss = block_sum(ss, part);
            if (threadIdx.x == 0) rs[t] = rsqrtf(ss / (float)K + eps);
        }
    }
    __syncthreads();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int64_t r = (int64_t)blockIdx.x * WARPS + warp; r < R; r += (int64_t)gridDim.x * WARPS) {
        float acc[NT];
        for (int t = 0; t < NT; t++) acc[t] = 0.0f;
#pragma unroll 4
        for (int64_t c = lane; c < C; c += 32) {
            const uint4 u = rd.load(r, c);
            const float sc = rd.scale(r, c);
            float sum[NT];
            for (int t = 0; t < NT; t++) sum[t] = 0.0f;
#pragma unroll
            for (int j = 0; j < Q; j++) {
                float v[4];
                RD::quad(u, j, v);
                for (int t = 0; t < NT; t++) {
                    const float4 xv = sx[((int64_t)(t < T ? t : T - 1) * Q + j) * C + c];
                    sum[t] += v[0] * xv.x + v[1] * xv.y + v[2] * xv.z + v[3] * xv.w;
                }
            }
            for (int t = 0; t < NT; t++) acc[t] += sc * sum[t];
        }
        for (int t = 0; t < NT; t++)
            for (int o = 16; o > 0; o >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
        if (lane < T) {
            float v = acc[0];
            for (int t = 1; t < NT; t++) v = lane == t ? acc[t] : v;
            if (NORM) v *= rs[lane];
            float *o = out + lane * ldo + r;
            *o = beta != 0.0f ? v + beta * *o : v;
        }
    }
}

#define STAGED_MAX_BYTES (48 << 10) /* the default dynamic shared memory limit */
#define STAGED_BLOCKS_PER_SM 4

static int sm_count(void) {
    int dev = 0, sms = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
        return 132;
    return sms;
}

/* Warps per row (activations from global memory): the fewest that give every SM ~32 warps,
 * within the chunks a row has (each slice at least one full pass of 32 lanes). */
static int pick_wpr(int64_t R, int64_t chunks) {
    int wpr = 1;
    while (wpr < 8 && R * wpr < 32 * (int64_t)sm_count() && chunks >= 64 * wpr) wpr *= 2;
    return wpr;
}

template <class RD, int NT>
static void launch(float *out, int64_t ldo, const float *x, int64_t xs, int T, const RD &rd, int64_t R, int64_t K,
                   float beta, const float *nw, float eps, int variant, bool vec, mcu_stream s) {
    const size_t smem = (size_t)(T * K) * sizeof(float);
    const int wpr = pick_wpr(R, K / RD::V);
    /* staged: one warp a row, so only where rows alone fill the GPU (few rows: split K) */
    if (vec && variant != MCU_GEMV_GLOBAL_X && smem <= STAGED_MAX_BYTES && wpr == 1) {
        int per_sm = 0;
        if (nw) cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_staged_k<RD, NT, true>, 32 * WARPS, smem);
        else cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_staged_k<RD, NT, false>, 32 * WARPS, smem);
        per_sm = per_sm < 1 ? 1 : per_sm > STAGED_BLOCKS_PER_SM ? STAGED_BLOCKS_PER_SM : per_sm;
        const int64_t want = (R + WARPS - 1) / WARPS, most = (int64_t)sm_count() * per_sm;
        const unsigned blocks = (unsigned)(want < most ? want : most);
        if (nw) gemv_staged_k<RD, NT, true><<<blocks, 32 * WARPS, smem, s>>>(out, ldo, x, xs, rd, R, K, beta, nw, eps, T);
        else gemv_staged_k<RD, NT, false><<<blocks, 32 * WARPS, smem, s>>>(out, ldo, x, xs, rd, R, K, beta, nw, eps, T);
        return;
    }
    const unsigned blocks = (unsigned)((R + WARPS / wpr - 1) / (WARPS / wpr));
    if (nw) gemv_k<RD, NT, true><<<blocks, 32 * WARPS, 0, s>>>(out, ldo, x, xs, rd, R, K, beta, nw, eps, wpr, vec, T);
    else gemv_k<RD, NT, false><<<blocks, 32 * WARPS, 0, s>>>(out, ldo, x, xs, rd, R, K, beta, nw, eps, wpr, vec, T);
}

template <class RD>
static void by_t(float *out, int64_t ldo, const float *x, int64_t xs, int64_t T, const RD &rd, int64_t R, int64_t K,
                 float beta, const float *nw, float eps, int variant, mcu_stream s) {
    /* the chunk loop needs whole chunks and 16-byte aligned activation rows (and norm) */
    const bool vec = rd.aligned() && xs % 4 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)nw % 16 == 0;
    /* instances for 1, 2, 4 and 8 rows; the others compute their last row again (not stored) */
    const int t = (int)T;
    if (T == 1) launch<RD, 1>(out, ldo, x, xs, t, rd, R, K, beta, nw, eps, variant, vec, s);
    else if (T == 2) launch<RD, 2>(out, ldo, x, xs, t, rd, R, K, beta, nw, eps, variant, vec, s);
    else if (T <= 4) launch<RD, 4>(out, ldo, x, xs, t, rd, R, K, beta, nw, eps, variant, vec, s);
    else launch<RD, 8>(out, ldo, x, xs, t, rd, R, K, beta, nw, eps, variant, vec, s);
}

extern "C" void mcu_gemv(float *out, int64_t ldo, const float *x, int64_t xs, int64_t T, const mcu_matrix *W, float beta,
                         const float *norm_w, float eps, int variant, mcu_stream s) {
    const int64_t R = W->R, K = W->K;
    if (T <= 0 || T > MCU_GEMV_MAX_T || R <= 0 || K <= 0) return;
    switch (W->type) {
    case MCU_W_F32: {
        const ReadF32 rd{(const float *)W->w, K};
        by_t(out, ldo, x, xs, T, rd, R, K, beta, norm_w, eps, variant, s);
        break;
    }
    case MCU_W_BF16: {
        const ReadBF16 rd{(const __nv_bfloat16 *)W->w, K};
        by_t(out, ldo, x, xs, T, rd, R, K, beta, norm_w, eps, variant, s);
        break;
    }
    case MCU_W_Q8_0: {
        if (K % 32) return;
        const ReadQ8 rd{(const uint8_t *)W->w, (const __half *)W->d, K};
        by_t(out, ldo, x, xs, T, rd, R, K, beta, norm_w, eps, variant, s);
        break;
    }
    case MCU_W_Q4_0: {
        if (K % 32) return;
        const ReadQ4 rd{(const uint8_t *)W->w, (const __half *)W->d, K};
        by_t(out, ldo, x, xs, T, rd, R, K, beta, norm_w, eps, variant, s);
        break;
    }
    }
}
