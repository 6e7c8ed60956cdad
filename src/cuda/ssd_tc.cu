/* ssd_tc.cu — the chunked Mamba-2 SSD on tensor cores (precision bf16): chunks of
 * MCU_SSD_TC_CHUNK tokens. Within a chunk of l rows, with cum_t = sum_{s<=t} dt_s A_h
 * (kept in log2 units):
 *   end state (pass 1):  S_end (P, N) = Xw^T B,  Xw[s, p] = x[s, p] exp(cum_last - cum_s) dt_s
 *   outputs   (pass 3):  y (L, P) = diag(exp(cum)) C S_in^T + M X,
 *                        M[t, s] = (C B^T)[t, s] exp(cum_t - cum_s) dt_s  (s <= t)
 * One block of 16 warps per (chunk, slice of hb heads of one group): B, C and C B^T belong
 * to the group, so the block loads them once and walks its heads, each head's x and S_in
 * loaded into registers while the previous head computes (one block fills an SM's shared
 * memory; the prefetch is what hides the loads). C B^T stays in the warps' accumulators
 * across the heads. Operands are rounded to bf16 once, in shared memory; products
 * accumulate in float32 (mma.sync with ldmatrix operands: the accumulators' known layout
 * lets M be built and y scaled in registers); every factor exp(...) is at most 1, so
 * nothing overflows in bf16. Pass 2 (the chunks' states in order) is ssd.cu's combine
 * kernel. For P in {16, 32, 64, 128} and N a multiple of 16 up to 128 where shared memory
 * allows; other shapes take ssd.cu's float32 path. */
#include "cuda/cuda_ops.h"
#include "cuda/fastmath.cuh"
#include "cuda/mma.cuh"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#define L MCU_SSD_TC_CHUNK
#define WARPS 16
#define THREADS (32 * WARPS)
#define NMAX 128
#define HB_MAX 8 /* heads a block walks */
/* Every shared-memory row is padded by 8 bf16 (4 floats): rows then start 16 bytes apart
 * modulo the 128-byte bank period, so a tile load (8 rows of 16 bytes at a time) touches
 * all banks once instead of one bank group 8 times. */
#define PAD 8
#define LT (L / 16)                           /* tiles along a chunk */
#define TRI (LT * (LT + 1) / 2)               /* tiles of C B^T's lower triangle */
#define CB_PER_WARP ((TRI + WARPS - 1) / WARPS)

/* A float32 tile of rows [0, R) x cols [0, n) (n a multiple of 16) held in registers,
 * four consecutive floats an item, V items a thread: loaded from global memory (rows >= l
 * as zeros) and later stored to shared memory as bf16 rows of n + PAD. Loading the next
 * head's tiles before computing the current head keeps the loads in flight. */
template <int V>
struct tile_regs {
    float4 v[V];
    __device__ void load(const float *src, int64_t ld, int n, int R, int l) {
        const bool vec = ((uintptr_t)src % 16 == 0) && ld % 4 == 0;
        const int q = n / 4, total = R * q;
#pragma unroll
        for (int u = 0; u < V; u++) {
            const int i = threadIdx.x + u * THREADS, r = i / q, c = (i % q) * 4;
            v[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (i < total && r < l) {
                const float *p = src + (int64_t)r * ld + c;
                v[u] = vec ? __ldg((const float4 *)p) : make_float4(__ldg(p), __ldg(p + 1), __ldg(p + 2), __ldg(p + 3));
            }
        }
    }
    template <typename F>
    __device__ void store(bf16 *dst, int n, int R, F scale) const {
        const int q = n / 4, total = R * q;
#pragma unroll
        for (int u = 0; u < V; u++) {
            const int i = threadIdx.x + u * THREADS, r = i / q, c = (i % q) * 4;
            if (i < total) {
                const float k = scale(r);
                bf16 *o = dst + r * (n + PAD) + c;
                *(__nv_bfloat162 *)o = __floats2bfloat162_rn(v[u].x * k, v[u].y * k);
                *(__nv_bfloat162 *)(o + 2) = __floats2bfloat162_rn(v[u].z * k, v[u].w * k);
            }
        }
    }
};
static __device__ inline float one(int) { return 1.0f; }

/* The chunk's L rows of B or C (n <= NMAX) into shared memory, a quarter at a time (the
 * registers of a whole chunk would crowd out the head loop's). */
__device__ static void load_group_rows(bf16 *dst, const float *src, int64_t ld, int n, int l) {
#pragma unroll 1
    for (int r = 0; r < L; r += L / 4) {
        tile_regs<L / 4 * NMAX / 4 / THREADS> t;
        t.load(src + r * ld, ld, n, L / 4, l - r);
        t.store(dst + r * (n + PAD), n, L / 4, one);
    }
}

/* The block's chunk and heads: chunk blockIdx.z of segment blockIdx.y, heads [h0, h0 + hb)
 * of group grp (slice blockIdx.x); false when the segment has no such chunk. */
struct slice {
    int64_t r0, h0, grp, chunk;
    int l;
};
__device__ static bool slice_of(const mcu_ssd_args &a, const mcu_seg *seg, int hb, slice *s) {
    const mcu_seg g = seg[blockIdx.y];
    const int32_t t0 = (int32_t)blockIdx.z * L;
    if (g.chunk0 < 0 || t0 >= g.n) return false;
    const int64_t hg = a.H / a.G, per_group = hg / hb;
    s->grp = blockIdx.x / per_group;
    s->h0 = s->grp * hg + (blockIdx.x % per_group) * hb;
    s->r0 = (int64_t)g.row0 + t0;
    s->l = g.n - t0 < L ? g.n - t0 : L;
    s->chunk = (int64_t)g.chunk0 + blockIdx.z;
    return true;
}

/* dt of the chunk's rows and cum in log2 units (rows past l: dt 0, cum flat) for each of
 * the hb heads, warp i for head h0 + i: 4 rows a lane, a shuffle scan over the lanes;
 * dsum[i] (when given) the head's sum of dt. */
__device__ static void chunk_cums(const mcu_ssd_args &a, const slice &sl, int hb, float *dts, float *cum, float *dsum) {
    static_assert(L == 128, "chunk_cums gives each lane 4 rows");
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (w < hb) {
        const int64_t h = sl.h0 + w;
        const float A2 = a.A[h] * MCU_LOG2E;
        float v[4], run = 0.0f, d = 0.0f;
        for (int k = 0; k < 4; k++) {
            const int t = lane * 4 + k;
            const float x = t < sl.l ? a.dt[(sl.r0 + t) * a.dt_stride + h] : 0.0f;
            dts[w * L + t] = x;
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
        for (int k = 0; k < 4; k++) cum[w * L + lane * 4 + k] = v[k] + off;
        if (dsum && lane == 0) dsum[w] = d;
    }
}

/* Shared memory of the passes: byte offsets of their regions (each 128-byte aligned). */
static __host__ __device__ inline size_t up128(size_t n) { return (n + 127) / 128 * 128; }
struct end_layout {
    size_t bs, xw, dts, cum, dsum, total;
};
static __host__ __device__ inline end_layout end_lay(int P, int N, int hb) {
    end_layout o;
    o.bs = 0;
    o.xw = o.bs + up128((size_t)L * (N + PAD) * sizeof(bf16));
    o.dts = o.xw + up128((size_t)L * (P + PAD) * sizeof(bf16));
    o.cum = o.dts + up128((size_t)hb * L * sizeof(float));
    o.dsum = o.cum + up128((size_t)hb * L * sizeof(float));
    o.total = o.dsum + up128((size_t)hb * sizeof(float));
    return o;
}
/* Output pass: C | B, then M in its place | X | S_in | dt, cum. */
struct out_layout {
    size_t cs, bs, ms, xs, st, dts, cum, total;
};
static __host__ __device__ inline out_layout out_lay(int P, int N, int hb) {
    out_layout o;
    o.cs = 0;
    o.bs = o.ms = o.cs + up128((size_t)L * (N + PAD) * sizeof(bf16)); /* N <= L: B fits in M's place */
    o.xs = o.ms + up128((size_t)L * (L + PAD) * sizeof(bf16));
    o.st = o.xs + up128((size_t)L * (P + PAD) * sizeof(bf16));
    o.dts = o.st + up128((size_t)P * (N + PAD) * sizeof(bf16));
    o.cum = o.dts + up128((size_t)hb * L * sizeof(float));
    o.total = o.cum + up128((size_t)hb * L * sizeof(float));
    return o;
}

template <int P>
__global__ static void __launch_bounds__(THREADS, 2) ssd_tc_end(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch, int hb) {
    extern __shared__ __align__(128) unsigned char smem[];
    slice sl;
    if (!slice_of(a, seg, hb, &sl)) return;
    const int N = (int)a.N, lp = P + PAD, ln = N + PAD;
    const end_layout lay = end_lay(P, N, hb);
    bf16 *bs = (bf16 *)(smem + lay.bs), *xw = (bf16 *)(smem + lay.xw); /* (L, N), (L, P) */
    float *dts = (float *)(smem + lay.dts), *cum = (float *)(smem + lay.cum), *dsum = (float *)(smem + lay.dsum);
    load_group_rows(bs, a.B + sl.r0 * a.bc_stride + sl.grp * N, a.bc_stride, N, sl.l);
    tile_regs<P / 16> px;
    px.load(a.x + sl.r0 * a.x_stride + sl.h0 * P, a.x_stride, P, L, sl.l);
    chunk_cums(a, sl, hb, dts, cum, dsum);
    __syncthreads();
    const int warp = threadIdx.x / 32, nt = N / 16;
    for (int i = 0; i < hb; i++) {
        const int64_t h = sl.h0 + i;
        const float *ci = cum + i * L, *di = dts + i * L;
        const float last = ci[L - 1];
        px.store(xw, P, L, [&](int s) { return mcu_ex2(last - ci[s]) * di[s]; });
        __syncthreads();
        if (i + 1 < hb) px.load(a.x + sl.r0 * a.x_stride + (h + 1) * P, a.x_stride, P, L, sl.l);
        float *S = ch.state + sl.chunk * a.H * P * N + h * P * N; /* (P, N) */
        for (int u = warp; u < (P / 16) * nt; u += WARPS) {
            const int pi = u / nt, ni = u % nt;
            float c[2][4];
            zero16(c);
            mma_run<A_KMAJOR, B_KMAJOR>(c, xw + pi * 16, lp, bs + ni * 16, ln, 0, L); /* Xw^T: xw is k-major */
            store16(S + (int64_t)pi * 16 * N + ni * 16, N, c, 16, N % 2 == 0);
        }
        if (threadIdx.x == 0) ch.dtsum[sl.chunk * a.H + h] = dsum[i];
        __syncthreads(); /* xw is rewritten for the next head */
    }
}

template <int P>
__global__ static void __launch_bounds__(THREADS) ssd_tc_out(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch, int hb) {
    extern __shared__ __align__(128) unsigned char smem[];
    slice sl;
    if (!slice_of(a, seg, hb, &sl)) return;
    const int N = (int)a.N, ln = N + PAD, lp = P + PAD, ll = L + PAD;
    const out_layout lay = out_lay(P, N, hb);
    bf16 *cs = (bf16 *)(smem + lay.cs), *bs = (bf16 *)(smem + lay.bs), *ms = (bf16 *)(smem + lay.ms);
    bf16 *xs = (bf16 *)(smem + lay.xs), *st = (bf16 *)(smem + lay.st);
    float *dts = (float *)(smem + lay.dts), *cum = (float *)(smem + lay.cum);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
    load_group_rows(cs, a.C + sl.r0 * a.bc_stride + sl.grp * N, a.bc_stride, N, sl.l);
    load_group_rows(bs, a.B + sl.r0 * a.bc_stride + sl.grp * N, a.bc_stride, N, sl.l);
    const int64_t PN = (int64_t)P * N;
    const float *S = ch.state + sl.chunk * a.H * PN; /* S_in of head h at S + h * PN, (P, N) */
    tile_regs<P / 16> px, ps;
    px.load(a.x + sl.r0 * a.x_stride + sl.h0 * P, a.x_stride, P, L, sl.l);
    ps.load(S + sl.h0 * PN, N, N, P, P);
    chunk_cums(a, sl, hb, dts, cum, nullptr);
    __syncthreads();
    /* C B^T, the warp's tiles of its lower triangle, kept for every head */
    float cb[CB_PER_WARP][2][4];
#pragma unroll
    for (int j = 0; j < CB_PER_WARP; j++) {
        const int k = warp + j * WARPS;
        zero16(cb[j]);
        if (k >= TRI) continue;
        int ti, si;
        tri_tile(k, &ti, &si);
        mma_run<A_ROWS, B_NMAJOR>(cb[j], cs + ti * 16 * ln, ln, bs + si * 16 * ln, ln, 0, N); /* B^T: bs is n-major */
    }
    __syncthreads(); /* B's region becomes M's */
    const bool yvec = a.y_stride % 2 == 0 && (uintptr_t)a.y % 8 == 0;
    for (int i = 0; i < hb; i++) {
        const int64_t h = sl.h0 + i;
        const float *ci = cum + i * L, *di = dts + i * L;
        px.store(xs, P, L, one);
        ps.store(st, N, P, one);
        /* M = C B^T with the head's decays, from the accumulators (rows g, g + 8; columns
         * 2q, 2q + 1 of each half) */
#pragma unroll
        for (int j = 0; j < CB_PER_WARP; j++) {
            const int k = warp + j * WARPS;
            if (k >= TRI) continue;
            int ti, si;
            tri_tile(k, &ti, &si);
#pragma unroll
            for (int hh = 0; hh < 2; hh++)
#pragma unroll
                for (int half = 0; half < 2; half++) {
                    const int t = ti * 16 + g + 8 * half, s = si * 16 + hh * 8 + 2 * q;
                    float m[2];
                    for (int e = 0; e < 2; e++)
                        m[e] = s + e <= t && t < sl.l ? cb[j][hh][2 * half + e] * mcu_ex2(ci[t] - ci[s + e]) * di[s + e]
                                                      : 0.0f;
                    *(__nv_bfloat162 *)(ms + t * ll + s) = __floats2bfloat162_rn(m[0], m[1]);
                }
        }
        __syncthreads();
        if (i + 1 < hb) {
            px.load(a.x + sl.r0 * a.x_stride + (h + 1) * P, a.x_stride, P, L, sl.l);
            ps.load(S + (h + 1) * PN, N, N, P, P);
        }
        /* y = diag(exp(cum)) C S_in^T + M X by 16 x 16 tiles; a warp's tiles pair row
         * blocks ti and LT - 1 - ti, so every warp runs as many products */
        float *y = a.y + sl.r0 * a.y_stride + h * P;
        for (int u = warp; u < LT * (P / 16); u += WARPS) {
            const int pc = u % (P / 16), r = u / (P / 16), ti = r < LT / 2 ? r : 3 * LT / 2 - 1 - r;
            float c[2][4];
            zero16(c);
            mma_run<A_ROWS, B_NMAJOR>(c, cs + ti * 16 * ln, ln, st + pc * 16 * ln, ln, 0, N); /* S_in^T: n-major */
            const float e0 = mcu_ex2(ci[ti * 16 + g]), e1 = mcu_ex2(ci[ti * 16 + g + 8]);
#pragma unroll
            for (int hh = 0; hh < 2; hh++) c[hh][0] *= e0, c[hh][1] *= e0, c[hh][2] *= e1, c[hh][3] *= e1;
            mma_run<A_ROWS, B_KMAJOR>(c, ms + ti * 16 * ll, ll, xs + pc * 16, lp, 0, ti * 16 + 16); /* X: k-major */
            store16(y + (int64_t)ti * 16 * a.y_stride + pc * 16, a.y_stride, c, sl.l - ti * 16, yvec);
        }
        __syncthreads(); /* X, S_in and M are rewritten for the next head */
    }
}

/* The most heads a block can walk (a divisor of the heads per group, at most HB_MAX) that
 * still leaves two blocks per SM for the chunks there are; 1 for short prompts. */
static int heads_per_block(const mcu_ssd_args *a, int64_t n_seg, unsigned depth, int n_sm) {
    const int64_t hg = a->H / a->G, chunks = n_seg * (int64_t)depth;
    int best = 1;
    for (int hb = 2; hb <= HB_MAX && hb <= hg; hb++)
        if (hg % hb == 0 && chunks * a->G * (hg / hb) >= 2 * (int64_t)n_sm) best = hb;
    return best;
}

template <int P>
static int run(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s) {
    int dev = 0, optin = 0, n_sm = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
        return 0;
    const unsigned depth = (unsigned)((ch->max_chunks_per_seg * MCU_CHUNK + L - 1) / L);
    const int hb = heads_per_block(a, n_seg, depth, n_sm), N = (int)a->N;
    const size_t esm = end_lay(P, N, hb).total, osm = out_lay(P, N, hb).total;
    if (osm > (size_t)optin || esm > (size_t)optin) return 0;
    const dim3 grid((unsigned)(a->H / hb), (unsigned)n_seg, depth);
    cudaFuncSetAttribute(ssd_tc_end<P>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)esm);
    cudaFuncSetAttribute(ssd_tc_out<P>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)osm);
    ssd_tc_end<P><<<grid, THREADS, esm, s>>>(*a, seg, *ch, hb);
    mcu_ssd_combine(a, seg, n_seg, ch, L, s);
    ssd_tc_out<P><<<grid, THREADS, osm, s>>>(*a, seg, *ch, hb);
    return 1;
}

extern "C" int mcu_ssd_tc(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s) {
    if (a->N % 16 != 0 || a->N < 16 || a->N > NMAX || a->H % a->G != 0) return 0;
    switch (a->P) {
    case 16: return run<16>(a, seg, n_seg, ch, s);
    case 32: return run<32>(a, seg, n_seg, ch, s);
    case 64: return run<64>(a, seg, n_seg, ch, s);
    case 128: return run<128>(a, seg, n_seg, ch, s);
    default: return 0;
    }
}
