/* ssd_tc.cu — the chunked Mamba-2 SSD on tensor cores (precision bf16): chunks of
 * MCU_SSD_TC_CHUNK tokens, one block of 16 warps per (head, segment, chunk). Within a chunk
 * of l rows, with cum_t = sum_{s<=t} dt_s A_h (kept in log2 units):
 *   end state (pass 1):  S_end (P, N) = Xw^T B,  Xw[s, p] = x[s, p] exp(cum_last - cum_s) dt_s
 *   outputs   (pass 3):  y (L, P) = Ce S_in^T + M X,  Ce[t] = exp(cum_t) C[t],
 *                        M[t, s] = (C B^T)[t, s] exp(cum_t - cum_s) dt_s  (s <= t)
 * Operands are rounded to bf16 in shared memory, products accumulate in float32 (WMMA
 * 16x16x16 tiles); every factor exp(...) is at most 1, so nothing overflows in bf16.
 * Pass 2 (the chunks' states in order) is ssd.cu's combine kernel. For P and N multiples
 * of 16, P <= 128, N <= 128 (shared memory); other shapes take ssd.cu's float32 path. */
#include "cuda/cuda_ops.h"
#include "cuda/fastmath.cuh"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

using namespace nvcuda;
typedef __nv_bfloat16 bf16;

#define L MCU_SSD_TC_CHUNK
#define WARPS 16
#define THREADS (32 * WARPS)
/* Every shared-memory row is padded by 8 bf16 (4 floats): rows then start 16 bytes apart
 * modulo the 128-byte bank period, so a tile load (8 rows of 16 bytes at a time) touches
 * all banks once instead of one bank group 8 times. */
#define PAD 8
#define PADF 4

typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc_t;

/* Where chunk j of segment g starts, or false when the block has nothing to do. */
__device__ static bool chunk_of(const mcu_seg &g, int32_t j, int64_t *r0, int *l) {
    if (g.chunk0 < 0) return false;
    const int32_t t0 = j * L;
    if (t0 >= g.n) return false;
    *r0 = (int64_t)g.row0 + t0;
    *l = g.n - t0 < L ? g.n - t0 : L;
    return true;
}

/* dt of the chunk's rows, cum in log2 units (rows past l: dt 0, cum flat) and the sum of
 * dt into shared memory: warp 0, 4 rows a lane, a shuffle scan over the lanes. */
__device__ static void chunk_cum(const mcu_ssd_args &a, int64_t h, int64_t r0, int l, float *dts, float *cum,
                                 float *dsum) {
    static_assert(L == 128, "chunk_cum gives each lane 4 rows");
    if (threadIdx.x < 32) {
        const int lane = threadIdx.x;
        const float A2 = a.A[h] * MCU_LOG2E;
        float v[4], run = 0.0f, d = 0.0f;
        for (int k = 0; k < 4; k++) {
            const int t = lane * 4 + k;
            const float x = t < l ? a.dt[(r0 + t) * a.dt_stride + h] : 0.0f;
            dts[t] = x;
            d += x;
            run += x * A2;
            v[k] = run;
        }
        float tot = run;
        for (int o = 1; o < 32; o <<= 1) {
            const float y = __shfl_up_sync(0xffffffffu, tot, o);
            if (lane >= o) tot += y;
        }
        for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        const float off = tot - run;
        for (int k = 0; k < 4; k++) cum[lane * 4 + k] = v[k] + off;
        if (lane == 0) *dsum = d;
    }
    __syncthreads();
}

/* rows [0, R) x cols [0, n) of a float32 source (row r at src + r * ld) as bf16 rows of
 * n + PAD, each row scaled by scale(r), and, when dst2 is given, scaled by scale2(r) into
 * dst2 too; rows >= l are zero. n is a multiple of 16. Each thread issues LOADS_AHEAD
 * loads before it uses any (one block per SM leaves few warps to hide memory latency), of
 * four floats each where the source's alignment allows. */
#define LOADS_AHEAD 4
static __device__ inline float one(int) { return 1.0f; }
template <int R, typename F, typename F2 = float (*)(int)>
__device__ static void load_rows(bf16 *dst, const float *src, int64_t ld, int n, int l, F scale, bf16 *dst2 = nullptr,
                                 F2 scale2 = one) {
    const bool vec = ((uintptr_t)src % 16 == 0) && ld % 4 == 0;
    const int w = vec ? 4 : 1, q = n / w, total = R * q; /* loads of w floats */
    for (int i0 = threadIdx.x; i0 < total; i0 += THREADS * LOADS_AHEAD) {
        float4 v[LOADS_AHEAD];
#pragma unroll
        for (int u = 0; u < LOADS_AHEAD; u++) {
            const int i = i0 + u * THREADS, r = i / q, c = (i % q) * w;
            v[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (i < total && r < l) {
                const float *p = src + (int64_t)r * ld + c;
                if (vec) v[u] = __ldg((const float4 *)p);
                else v[u].x = __ldg(p);
            }
        }
#pragma unroll
        for (int u = 0; u < LOADS_AHEAD; u++) {
            const int i = i0 + u * THREADS, r = i / q, c = (i % q) * w;
            if (i >= total) break;
            for (int d = 0; d < (dst2 ? 2 : 1); d++) {
                const float k = r >= l ? 0.0f : d ? scale2(r) : scale(r);
                bf16 *o = (d ? dst2 : dst) + r * (n + PAD) + c;
                if (vec) {
                    *(__nv_bfloat162 *)o = __floats2bfloat162_rn(v[u].x * k, v[u].y * k);
                    *(__nv_bfloat162 *)(o + 2) = __floats2bfloat162_rn(v[u].z * k, v[u].w * k);
                } else {
                    *o = __float2bfloat16(v[u].x * k);
                }
            }
        }
    }
}

template <int P>
__global__ static void __launch_bounds__(THREADS) ssd_tc_end(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch) {
    extern __shared__ __align__(128) unsigned char smem[];
    __shared__ float dts[L], cum[L], dsum;
    const mcu_seg g = seg[blockIdx.y];
    int64_t r0;
    int l;
    if (!chunk_of(g, (int32_t)blockIdx.z, &r0, &l)) return;
    const int64_t h = blockIdx.x, grp = h / (a.H / a.G);
    const int N = (int)a.N;
    const int lp = P + PAD, ln = N + PAD;
    bf16 *xw = (bf16 *)smem, *bs = xw + L * lp; /* (L, P), (L, N) */
    chunk_cum(a, h, r0, l, dts, cum, &dsum);
    const float last = cum[L - 1];
    load_rows<L>(xw, a.x + r0 * a.x_stride + h * P, a.x_stride, P, l, [&](int s) { return mcu_ex2(last - cum[s]) * dts[s]; });
    load_rows<L>(bs, a.B + r0 * a.bc_stride + grp * N, a.bc_stride, N, l, one);
    __syncthreads();
    const int64_t chunk = (int64_t)g.chunk0 + blockIdx.z;
    float *S = ch.state + chunk * a.H * P * N + h * P * N;
    const int warp = threadIdx.x / 32, nt = N / 16;
    for (int tile = warp; tile < (P / 16) * nt; tile += WARPS) {
        const int pi = tile / nt, ni = tile % nt;
        acc_t acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int k = 0; k < L; k += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> fa; /* Xw^T */
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
            wmma::load_matrix_sync(fa, xw + k * lp + pi * 16, lp);
            wmma::load_matrix_sync(fb, bs + k * ln + ni * 16, ln);
            wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(S + (int64_t)pi * 16 * N + ni * 16, acc, N, wmma::mem_row_major);
    }
    if (threadIdx.x == 0) ch.dtsum[chunk * a.H + h] = dsum;
}

/* Shared memory of the passes, in bytes. Output pass: [C | B] (or the y tile over them) |
 * Ce | X | S_in | M | a 16x16 float32 scratch per warp. */
static size_t end_smem(int P, int N) { return (size_t)L * (P + PAD + N + PAD) * sizeof(bf16); }
__host__ __device__ static inline size_t out_region0(int P, int N) {
    const size_t cb = (size_t)2 * L * (N + PAD) * sizeof(bf16), y = (size_t)L * (P + PADF) * sizeof(float);
    return cb > y ? cb : y;
}
static size_t out_smem(int P, int N) {
    const size_t ln = N + PAD;
    return out_region0(P, N) + (L * ln + L * (P + PAD) + P * ln + L * (L + PAD)) * sizeof(bf16) + WARPS * 256 * sizeof(float);
}

template <int P>
__global__ static void __launch_bounds__(THREADS) ssd_tc_out(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch) {
    extern __shared__ __align__(128) unsigned char smem[];
    __shared__ float dts[L], cum[L], dsum;
    const mcu_seg g = seg[blockIdx.y];
    int64_t r0;
    int l;
    if (!chunk_of(g, (int32_t)blockIdx.z, &r0, &l)) return;
    const int64_t h = blockIdx.x, grp = h / (a.H / a.G);
    const int N = (int)a.N;
    const int ln = N + PAD, lp = P + PAD, ll = L + PAD, ly = P + PADF;
    bf16 *cs = (bf16 *)smem, *bs = cs + L * ln;
    float *ys = (float *)smem; /* (L, P), once C and B are no longer read */
    bf16 *ce = (bf16 *)(smem + out_region0(P, N)), *xs = ce + L * ln, *st = xs + L * lp, *ms = st + P * ln;
    float *scratch = (float *)(ms + L * ll) + (threadIdx.x / 32) * 256;
    chunk_cum(a, h, r0, l, dts, cum, &dsum);
    const float *C = a.C + r0 * a.bc_stride + grp * N;
    load_rows<L>(cs, C, a.bc_stride, N, l, one, ce, [&](int t) { return mcu_ex2(cum[t]); });
    load_rows<L>(bs, a.B + r0 * a.bc_stride + grp * N, a.bc_stride, N, l, one);
    load_rows<L>(xs, a.x + r0 * a.x_stride + h * P, a.x_stride, P, l, one);
    const float *S = ch.state + ((int64_t)g.chunk0 + blockIdx.z) * a.H * P * N + h * P * N; /* S_in (P, N) */
    load_rows<P>(st, S, N, N, P, one);
    __syncthreads();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, lt = L / 16;
    /* M, tile by tile of the lower triangle: C B^T through the warp's scratch */
    for (int tile = warp; tile < lt * lt; tile += WARPS) {
        const int ti = tile / lt, si = tile % lt;
        if (si > ti) continue;
        acc_t acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int k = 0; k < N; k += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb; /* B^T */
            wmma::load_matrix_sync(fa, cs + ti * 16 * ln + k, ln);
            wmma::load_matrix_sync(fb, bs + si * 16 * ln + k, ln);
            wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(scratch, acc, 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
            const int t = ti * 16 + e / 16, s = si * 16 + e % 16;
            const float m = s <= t && t < l ? scratch[e] * mcu_ex2(cum[t] - cum[s]) * dts[s] : 0.0f;
            ms[t * ll + s] = __float2bfloat16(m);
        }
        __syncwarp();
    }
    __syncthreads();
    /* y = Ce S_in^T + M X, tile by tile, into the y tile over C and B */
    for (int tile = warp; tile < lt * (P / 16); tile += WARPS) {
        const int ti = tile / (P / 16), pi = tile % (P / 16);
        acc_t acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int k = 0; k < N; k += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb; /* S_in^T */
            wmma::load_matrix_sync(fa, ce + ti * 16 * ln + k, ln);
            wmma::load_matrix_sync(fb, st + pi * 16 * ln + k, ln);
            wmma::mma_sync(acc, fa, fb, acc);
        }
        for (int k = 0; k <= ti * 16; k += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
            wmma::load_matrix_sync(fa, ms + ti * 16 * ll + k, ll);
            wmma::load_matrix_sync(fb, xs + k * lp + pi * 16, lp);
            wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(ys + ti * 16 * ly + pi * 16, acc, ly, wmma::mem_row_major);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < l * P; i += THREADS) {
        const int t = i / P, p = i % P;
        a.y[(r0 + t) * a.y_stride + h * P + p] = ys[t * ly + p];
    }
}

/* The shapes the kernels are built for, within the device's shared memory per block. */
static bool fits(int64_t P, int64_t N) {
    if (!((P == 16 || P == 32 || P == 64 || P == 128) && N % 16 == 0 && N >= 16 && N <= 128)) return false;
    int dev = 0, optin = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
        return false;
    return out_smem((int)P, (int)N) + 3 * L * sizeof(float) <= (size_t)optin;
}

template <int P>
static void run(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s) {
    const unsigned depth = (unsigned)((ch->max_chunks_per_seg * MCU_CHUNK + L - 1) / L);
    const dim3 grid((unsigned)a->H, (unsigned)n_seg, depth);
    const size_t esm = end_smem(P, (int)a->N), osm = out_smem(P, (int)a->N);
    cudaFuncSetAttribute(ssd_tc_end<P>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)esm);
    cudaFuncSetAttribute(ssd_tc_out<P>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)osm);
    ssd_tc_end<P><<<grid, THREADS, esm, s>>>(*a, seg, *ch);
    mcu_ssd_combine(a, seg, n_seg, ch, L, s);
    ssd_tc_out<P><<<grid, THREADS, osm, s>>>(*a, seg, *ch);
}

extern "C" int mcu_ssd_tc(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s) {
    if (!fits(a->P, a->N)) return 0;
    switch (a->P) {
    case 16: run<16>(a, seg, n_seg, ch, s); break;
    case 32: run<32>(a, seg, n_seg, ch, s); break;
    case 64: run<64>(a, seg, n_seg, ch, s); break;
    default: run<128>(a, seg, n_seg, ch, s); break;
    }
    return 1;
}
