/* train_ssd_tc.cu — the Mamba-2 SSD of training with each chunk's work as matrix products
 * on tensor cores (bf16 operands in shared memory, float32 accumulation: mma.cuh), one
 * block per (sequence, head, chunk of Q steps). Within a chunk of l rows, head h, with
 * X (Q, P), dY (Q, P), B and C (Q, N) of the head's group, S0 the entering state and dSe
 * the gradient of the end state (P, N), cs_t = sum_{s<=t} dt_s A (inclusive) and
 *   Dec[t, s] = exp(cs_t - cs_s) for s <= t (0 above),  w_s = exp(cs_last - cs_s),
 *   G = C B^T,  R = dY X^T,  M1 = Dec o G,  M2 = Dec o R diag(dt):
 * forward   end state   = (diag(dt w) X)^T B                     (from a zero state)
 *           y           = diag(exp(cs)) C S0^T + M1 diag(dt) X
 * backward  carry       = (diag(exp(cs)) dY)^T C                 (the gradient S0 gets)
 *           dX          = diag(dt) (M1^T dY + diag(w) B dSe^T)
 *           dC          = diag(exp(cs)) dY S0 + M2 B
 *           dB          = M2^T C + diag(dt w) X dSe
 *           ddt_s       = sum_t (Dec o G o R)[t, s] + w_s x_s . (dSe B_s) + A da_s
 * where da_s = sum_{t>=s} dcs_t (the chunk's cumulative sum is linear) and dcs_t gathers
 * every term's dependence on cs_t: the row sums of Z = Dec o G o R diag(dt) less their
 * column sums, exp(cs_t) C_t . (dY S0)_t, -dt_t w_t x_t . (dSe B_t), and at the last row
 * exp(cs_last) <S0, dSe> plus the sum of those end terms. The chunks' states and carries in
 * order are train_ssd.cu's combine (the tape is laid out as the recurrent form lays it),
 * dB and dC over a group's heads its final sum. Every sum runs in a fixed order: results
 * do not depend on timing. exp is MUFU's ex2 with cs kept in log2 units; every factor
 * exp(...) is at most 1. */
#include <cuda_runtime.h>

#include "cuda/fastmath.cuh"
#include "cuda/mma.cuh"
#include "cuda/train_ops.h"
#include "cuda/train_ssd_tc.h"

#define Q MCT_SSD_CHUNK
#define QT (Q / 16)           /* tiles along a chunk */
#define TRI (QT * (QT + 1) / 2) /* tiles of a lower triangle */
#define WARPS 8
#define THREADS (32 * WARPS)
/* shared-memory rows padded by 8 bf16 so that ldmatrix's 8 rows of 16 bytes meet every
 * bank once (ssd_tc.cu) */
#define PAD 8
#define LQ (Q + PAD)
#define FULL 0xffffffffu

static_assert(Q == 64, "chunk_cum gives each lane two rows");

/* the block's sequence b, head h (group g), chunk k of nch; its first row r0 and l rows */
struct tc_blk {
    int64_t b, h, g, k, nch, r0;
    int l;
};
__device__ static tc_blk blk_of(const mct_ssd &a) {
    tc_blk q;
    q.nch = (a.L + Q - 1) / Q;
    q.k = blockIdx.x % q.nch;
    const int64_t bh = blockIdx.x / q.nch;
    q.h = bh % a.H, q.b = bh / a.H;
    q.g = q.h / (a.H / a.G);
    q.r0 = q.b * a.L + q.k * Q;
    q.l = (int)(a.L - q.k * Q < Q ? a.L - q.k * Q : Q);
    return q;
}

__device__ static inline float one(int) { return 1.0f; }
__device__ static inline float bf(const bf16 *p) { return __bfloat162float(*p); }

/* rows [0, rows) x cols [0, n) of src (rows ld apart; rows from l on as zeros) into shared
 * bf16 rows of n + PAD, row r times scale(r) (in float32, before rounding) */
template <typename F>
__device__ static void stage(bf16 *dst, const float *src, int64_t ld, int n, int rows, int l, F scale) {
    const bool vec = (uintptr_t)src % 16 == 0 && ld % 4 == 0;
    const int q4 = n / 4;
    for (int i = threadIdx.x; i < rows * q4; i += THREADS) {
        const int r = i / q4, c = (i % q4) * 4;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r < l) {
            const float *p = src + (int64_t)r * ld + c;
            v = vec ? __ldg((const float4 *)p) : make_float4(__ldg(p), __ldg(p + 1), __ldg(p + 2), __ldg(p + 3));
        }
        const float k = r < l ? scale(r) : 0.0f;
        bf16 *o = dst + r * (n + PAD) + c;
        *(__nv_bfloat162 *)o = __floats2bfloat162_rn(v.x * k, v.y * k);
        *(__nv_bfloat162 *)(o + 2) = __floats2bfloat162_rn(v.z * k, v.w * k);
    }
}

/* S0 and dSe (P x N each, rows N apart) into shared bf16 rows of N + PAD, returning this
 * thread's part of <S0, dSe> in float32 (from the values as read, before rounding) */
__device__ static float stage_states(bf16 *s0, bf16 *dse, const float *S0g, const float *dSg, int P, int N) {
    const int q4 = N / 4; /* N is a multiple of 16: rows of float4 */
    float dot = 0.0f;
    for (int i = threadIdx.x; i < P * q4; i += THREADS) {
        const int r = i / q4, c = (i % q4) * 4;
        const float4 u = __ldg((const float4 *)(S0g + (int64_t)r * N + c)), v = __ldg((const float4 *)(dSg + (int64_t)r * N + c));
        dot += u.x * v.x + u.y * v.y + u.z * v.z + u.w * v.w;
        bf16 *o = s0 + r * (N + PAD) + c, *od = dse + r * (N + PAD) + c;
        *(__nv_bfloat162 *)o = __floats2bfloat162_rn(u.x, u.y);
        *(__nv_bfloat162 *)(o + 2) = __floats2bfloat162_rn(u.z, u.w);
        *(__nv_bfloat162 *)od = __floats2bfloat162_rn(v.x, v.y);
        *(__nv_bfloat162 *)(od + 2) = __floats2bfloat162_rn(v.z, v.w);
    }
    return dot;
}

/* Warp 0: dt of the chunk's rows (0 from l on), cl = the inclusive cumulative sum of dt A
 * in log2 units (flat from l on) and, when asked, the chunk's sum of dt. */
__device__ static void chunk_cum(const mct_ssd &a, const tc_blk &q, float *dts, float *cl, float *dsum) {
    if (threadIdx.x >= 32) return;
    const int lane = threadIdx.x;
    const float A2 = a.A[q.h] * MCU_LOG2E;
    float v[2], run = 0.0f, d = 0.0f;
    for (int i = 0; i < 2; i++) {
        const int t = 2 * lane + i;
        const float x = t < q.l ? a.dt[(q.r0 + t) * a.H + q.h] : 0.0f;
        dts[t] = x;
        d += x;
        run += x * A2;
        v[i] = run;
    }
    float tot = run;
    for (int o = 1; o < 32; o <<= 1) {
        const float y = __shfl_up_sync(FULL, tot, o);
        if (lane >= o) tot += y;
    }
    for (int i = 0; i < 2; i++) cl[2 * lane + i] = v[i] + tot - run;
    for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(FULL, d, o);
    if (dsum && lane == 0) *dsum = d;
}

/* the sum over a row group's four lanes (one accumulator row), and over the eight row
 * groups (one accumulator column) */
__device__ static inline float row4_sum(float v) {
    v += __shfl_xor_sync(FULL, v, 1);
    return v + __shfl_xor_sync(FULL, v, 2);
}
__device__ static inline float col8_sum(float v) {
    v += __shfl_xor_sync(FULL, v, 4);
    v += __shfl_xor_sync(FULL, v, 8);
    return v + __shfl_xor_sync(FULL, v, 16);
}

static __host__ __device__ inline size_t up128(size_t n) { return (n + 127) / 128 * 128; }
static __host__ __device__ inline size_t rows_bytes(int rows, int n) { return up128((size_t)rows * (n + PAD) * sizeof(bf16)); }

/* ---- forward end states and backward carries: Out (P, N) = (diag(wgt) U)^T V ---------- */
enum { OUTER_END, OUTER_CARRY };
static size_t outer_smem(int P, int N) { return rows_bytes(Q, P) + rows_bytes(Q, N) + up128((2 * Q + 1) * sizeof(float)); }

template <int MODE>
__global__ static void __launch_bounds__(THREADS) outer_k(mct_ssd a, mct_ssd_tc_bufs o) {
    extern __shared__ __align__(128) unsigned char smem[];
    const tc_blk q = blk_of(a);
    const int P = (int)a.P, N = (int)a.N, lp = P + PAD, ln = N + PAD, warp = threadIdx.x / 32;
    const int64_t E = a.H * a.P;
    bf16 *us = (bf16 *)smem, *vs = (bf16 *)(smem + rows_bytes(Q, P));
    float *dts = (float *)(smem + rows_bytes(Q, P) + rows_bytes(Q, N)), *cl = dts + Q, *dsum = cl + Q;
    chunk_cum(a, q, dts, cl, dsum);
    __syncthreads();
    const float last = cl[q.l - 1];
    if (MODE == OUTER_END) {
        stage(us, a.x + q.r0 * a.xs + q.h * P, a.xs, P, Q, q.l, [&](int s) { return mcu_ex2(last - cl[s]) * dts[s]; });
        stage(vs, a.Bm + q.r0 * a.bcs + q.g * N, a.bcs, N, Q, q.l, one);
    } else {
        stage(us, a.dy + q.r0 * E + q.h * P, E, P, Q, q.l, [&](int s) { return mcu_ex2(cl[s]); });
        stage(vs, a.Cm + q.r0 * a.bcs + q.g * N, a.bcs, N, Q, q.l, one);
    }
    __syncthreads();
    const int64_t slots = MODE == OUTER_END ? q.nch + 1 : q.nch;
    float *out = (MODE == OUTER_END ? o.states : o.carry) + ((q.b * a.H + q.h) * slots + q.k) * P * N;
    const int nt = N / 16;
    for (int u = warp; u < (P / 16) * nt; u += WARPS) {
        const int pi = u / nt, ni = u % nt;
        float c[2][4];
        zero16(c);
        mma_run<A_KMAJOR, B_KMAJOR>(c, us + pi * 16, lp, vs + ni * 16, ln, 0, Q); /* U^T: us is k-major */
        store16(out + (int64_t)pi * 16 * N + ni * 16, N, c, 16, true);
    }
    if (MODE == OUTER_END && threadIdx.x == 0) o.dtsum[(q.b * a.H + q.h) * q.nch + q.k] = *dsum;
}

/* ---- forward outputs ------------------------------------------------------------------ */
static size_t y_smem(int P, int N) {
    return 2 * rows_bytes(Q, N) + rows_bytes(Q, P) + rows_bytes(P, N) + rows_bytes(Q, Q) + up128(2 * Q * sizeof(float));
}

__global__ static void __launch_bounds__(THREADS) y_k(mct_ssd a, mct_ssd_tc_bufs o) {
    extern __shared__ __align__(128) unsigned char smem[];
    const tc_blk q = blk_of(a);
    const int P = (int)a.P, N = (int)a.N, lp = P + PAD, ln = N + PAD;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, qq = lane % 4;
    const int64_t E = a.H * a.P;
    unsigned char *p = smem;
    bf16 *cs = (bf16 *)p;
    bf16 *bs = (bf16 *)(p += rows_bytes(Q, N));
    bf16 *xs = (bf16 *)(p += rows_bytes(Q, N));
    bf16 *st = (bf16 *)(p += rows_bytes(Q, P));
    bf16 *ms = (bf16 *)(p += rows_bytes(P, N));
    float *dts = (float *)(p += rows_bytes(Q, Q)), *cl = dts + Q;
    chunk_cum(a, q, dts, cl, nullptr);
    stage(cs, a.Cm + q.r0 * a.bcs + q.g * N, a.bcs, N, Q, q.l, one);
    stage(bs, a.Bm + q.r0 * a.bcs + q.g * N, a.bcs, N, Q, q.l, one);
    stage(xs, a.x + q.r0 * a.xs + q.h * P, a.xs, P, Q, q.l, one);
    stage(st, o.states + ((q.b * a.H + q.h) * (q.nch + 1) + q.k) * P * N, N, N, P, P, one);
    __syncthreads();
    /* M = (C B^T) o Dec diag(dt): the lower triangle's tiles */
    for (int j = warp; j < TRI; j += WARPS) {
        int ti, si;
        tri_tile(j, &ti, &si);
        float c[2][4];
        zero16(c);
        mma_run<A_ROWS, B_NMAJOR>(c, cs + ti * 16 * ln, ln, bs + si * 16 * ln, ln, 0, N); /* B^T: bs is n-major */
#pragma unroll
        for (int hh = 0; hh < 2; hh++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int t = ti * 16 + g + 8 * half, s = si * 16 + hh * 8 + 2 * qq;
                float m[2];
                for (int e = 0; e < 2; e++)
                    m[e] = s + e <= t ? c[hh][2 * half + e] * mcu_ex2(cl[t] - cl[s + e]) * dts[s + e] : 0.0f;
                *(__nv_bfloat162 *)(ms + t * LQ + s) = __floats2bfloat162_rn(m[0], m[1]);
            }
    }
    __syncthreads();
    float *y = a.y + q.r0 * E + q.h * P;
    const bool yvec = (uintptr_t)y % 8 == 0;
    const int pt = P / 16;
    for (int u = warp; u < QT * pt; u += WARPS) {
        const int ti = u / pt, pc = u % pt;
        float c[2][4];
        zero16(c);
        mma_run<A_ROWS, B_NMAJOR>(c, cs + ti * 16 * ln, ln, st + pc * 16 * ln, ln, 0, N); /* S0^T: st is n-major */
        const float e0 = mcu_ex2(cl[ti * 16 + g]), e1 = mcu_ex2(cl[ti * 16 + g + 8]);
#pragma unroll
        for (int hh = 0; hh < 2; hh++) c[hh][0] *= e0, c[hh][1] *= e0, c[hh][2] *= e1, c[hh][3] *= e1;
        mma_run<A_ROWS, B_KMAJOR>(c, ms + ti * 16 * LQ, LQ, xs + pc * 16, lp, 0, ti * 16 + 16); /* X: k-major */
        if (a.D) { /* the skip, from x in float32 */
            const float Dh = a.D[q.h];
#pragma unroll
            for (int hh = 0; hh < 2; hh++)
#pragma unroll
                for (int half = 0; half < 2; half++) {
                    const int t = ti * 16 + g + 8 * half, p0 = pc * 16 + hh * 8 + 2 * qq;
                    if (t >= q.l) continue;
                    const float *xr = a.x + (q.r0 + t) * a.xs + q.h * P + p0;
                    c[hh][2 * half] += Dh * __ldg(xr), c[hh][2 * half + 1] += Dh * __ldg(xr + 1);
                }
        }
        store16(y + (int64_t)ti * 16 * E + pc * 16, E, c, q.l - ti * 16, yvec);
    }
}

/* ---- backward gradients ----------------------------------------------------------------- */
struct grad_layout {
    size_t xs, dys, bs, cs, s0, dse, m1, m2, f, total;
};
static __host__ __device__ inline grad_layout grad_lay(int P, int N) {
    grad_layout o;
    o.xs = 0;
    o.dys = o.xs + rows_bytes(Q, P);
    o.bs = o.dys + rows_bytes(Q, P);
    o.cs = o.bs + rows_bytes(Q, N);
    o.s0 = o.cs + rows_bytes(Q, N);
    o.dse = o.s0 + rows_bytes(P, N);
    o.m1 = o.dse + rows_bytes(P, N);
    o.m2 = o.m1 + rows_bytes(Q, Q);
    o.f = o.m2 + rows_bytes(Q, Q);
    /* dt, cl, row sums of Z per column tile, column sums of Z / dt per row tile, the end
     * terms per P tile, the C . (dY S0) terms per N tile; one sum per warp */
    o.total = o.f + up128(((2 + 2 * QT + P / 16 + N / 16) * Q + WARPS) * sizeof(float));
    return o;
}

__global__ static void __launch_bounds__(THREADS) grad_k(mct_ssd a, mct_ssd_tc_bufs o) {
    extern __shared__ __align__(128) unsigned char smem[];
    const tc_blk q = blk_of(a);
    const int P = (int)a.P, N = (int)a.N, lp = P + PAD, ln = N + PAD, pt = P / 16, nt = N / 16;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, qq = lane % 4;
    const int64_t E = a.H * a.P, PN = a.P * a.N, bh = q.b * a.H + q.h;
    const grad_layout lay = grad_lay(P, N);
    bf16 *xs = (bf16 *)(smem + lay.xs), *dys = (bf16 *)(smem + lay.dys), *bs = (bf16 *)(smem + lay.bs);
    bf16 *cs = (bf16 *)(smem + lay.cs), *s0 = (bf16 *)(smem + lay.s0), *dse = (bf16 *)(smem + lay.dse);
    bf16 *m1 = (bf16 *)(smem + lay.m1), *m2 = (bf16 *)(smem + lay.m2);
    float *dts = (float *)(smem + lay.f), *cl = dts + Q, *rz = cl + Q, *cz = rz + QT * Q, *de = cz + QT * Q;
    float *dcy = de + pt * Q, *red = dcy + nt * Q;
    for (int i = threadIdx.x; i < QT * Q; i += THREADS) rz[i] = cz[i] = 0.0f;
    chunk_cum(a, q, dts, cl, nullptr);
    const float *S0g = o.states + (bh * (q.nch + 1) + q.k) * PN, *dSg = o.carry + (bh * q.nch + q.k) * PN;
    stage(xs, a.x + q.r0 * a.xs + q.h * P, a.xs, P, Q, q.l, one);
    stage(dys, a.dy + q.r0 * E + q.h * P, E, P, Q, q.l, one);
    stage(bs, a.Bm + q.r0 * a.bcs + q.g * N, a.bcs, N, Q, q.l, one);
    stage(cs, a.Cm + q.r0 * a.bcs + q.g * N, a.bcs, N, Q, q.l, one);
    float dot = stage_states(s0, dse, S0g, dSg, P, N); /* and <S0, dSe> in float32 */
    for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(FULL, dot, off);
    if (lane == 0) red[warp] = dot;
    __syncthreads();

    /* G = C B^T and R = dY X^T on the lower triangle: M1 = Dec o G and M2 = Dec o R diag(dt)
     * into shared memory, the row sums of Z = M1 o R diag(dt) and the column sums of
     * Z / dt = M1 o R, per tile */
    for (int j = warp; j < TRI; j += WARPS) {
        int ti, si;
        tri_tile(j, &ti, &si);
        float G[2][4], R[2][4];
        zero16(G);
        zero16(R);
        mma_run<A_ROWS, B_NMAJOR>(G, cs + ti * 16 * ln, ln, bs + si * 16 * ln, ln, 0, N);   /* B^T: bs is n-major */
        mma_run<A_ROWS, B_NMAJOR>(R, dys + ti * 16 * lp, lp, xs + si * 16 * lp, lp, 0, P); /* X^T: xs is n-major */
        float rs[2] = {0.0f, 0.0f}, csum[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
#pragma unroll
        for (int hh = 0; hh < 2; hh++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int t = ti * 16 + g + 8 * half, s = si * 16 + hh * 8 + 2 * qq;
                float v1[2], v2[2];
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float dec = s + e <= t ? mcu_ex2(cl[t] - cl[s + e]) : 0.0f;
                    const float gd = G[hh][2 * half + e] * dec, r = R[hh][2 * half + e], zp = gd * r;
                    v1[e] = gd;
                    v2[e] = dec * r * dts[s + e];
                    rs[half] += zp * dts[s + e];
                    csum[hh][e] += zp;
                }
                *(__nv_bfloat162 *)(m1 + t * LQ + s) = __floats2bfloat162_rn(v1[0], v1[1]);
                *(__nv_bfloat162 *)(m2 + t * LQ + s) = __floats2bfloat162_rn(v2[0], v2[1]);
            }
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const float v = row4_sum(rs[half]);
            if (qq == 0) rz[si * Q + ti * 16 + g + 8 * half] = v;
        }
#pragma unroll
        for (int hh = 0; hh < 2; hh++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const float v = col8_sum(csum[hh][e]);
                if (g == 0) cz[ti * Q + si * 16 + hh * 8 + 2 * qq + e] = v;
            }
    }
    __syncthreads();

    /* dX, dC and dB by 16 x 16 tiles: QT pt tiles of dX, then QT nt of dC, QT nt of dB */
    const float last = cl[q.l - 1];
    const int jobs = QT * pt + 2 * QT * nt;
    for (int u = warp; u < jobs; u += WARPS) {
        float c1[2][4], c2[2][4];
        zero16(c1);
        zero16(c2);
        if (u < QT * pt) { /* dX = diag(dt) (M1^T dY + diag(w) B dSe^T) */
            const int si = u / pt, pc = u % pt;
            mma_run<A_KMAJOR, B_KMAJOR>(c1, m1 + si * 16, LQ, dys + pc * 16, lp, si * 16, Q); /* M1^T: k-major */
            mma_run<A_ROWS, B_NMAJOR>(c2, bs + si * 16 * ln, ln, dse + pc * 16 * ln, ln, 0, N); /* dSe^T: n-major */
            float xd[2] = {0.0f, 0.0f};
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int s = si * 16 + g + 8 * half;
                const float w = mcu_ex2(last - cl[s]);
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const int pcol = pc * 16 + hh * 8 + 2 * qq;
                    const float b0 = c2[hh][2 * half], b1 = c2[hh][2 * half + 1];
                    xd[half] += b0 * bf(xs + s * lp + pcol) + b1 * bf(xs + s * lp + pcol + 1);
                    if (s < q.l) {
                        float *d = a.dx + (q.r0 + s) * a.dxs + q.h * P + pcol;
                        const float v0 = dts[s] * (c1[hh][2 * half] + w * b0), v1 = dts[s] * (c1[hh][2 * half + 1] + w * b1);
                        if (a.D) { /* the skip's part, from dy in float32: dx is overwritten */
                            const float *dyr = a.dy + (q.r0 + s) * E + q.h * P + pcol, Dh = a.D[q.h];
                            d[0] = Dh * __ldg(dyr) + v0, d[1] = Dh * __ldg(dyr + 1) + v1;
                        } else {
                            d[0] += v0, d[1] += v1;
                        }
                    }
                }
            }
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const float v = row4_sum(xd[half]);
                if (qq == 0) de[pc * Q + si * 16 + g + 8 * half] = v;
            }
        } else if (u < QT * pt + QT * nt) { /* dC = diag(exp(cs)) dY S0 + M2 B */
            const int v = u - QT * pt, ti = v / nt, ni = v % nt;
            mma_run<A_ROWS, B_KMAJOR>(c1, dys + ti * 16 * lp, lp, s0 + ni * 16, ln, 0, P);          /* S0: k-major */
            mma_run<A_ROWS, B_KMAJOR>(c2, m2 + ti * 16 * LQ, LQ, bs + ni * 16, ln, 0, ti * 16 + 16); /* B: k-major */
            float cd[2] = {0.0f, 0.0f};
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int t = ti * 16 + g + 8 * half;
                const float et = mcu_ex2(cl[t]);
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const int n = ni * 16 + hh * 8 + 2 * qq;
                    const float o0 = et * c1[hh][2 * half], o1 = et * c1[hh][2 * half + 1];
                    cd[half] += o0 * bf(cs + t * ln + n) + o1 * bf(cs + t * ln + n + 1);
                    if (t < q.l) {
                        float *d = o.dCp + (bh * a.L + q.k * Q + t) * N + n;
                        d[0] = o0 + c2[hh][2 * half], d[1] = o1 + c2[hh][2 * half + 1];
                    }
                }
            }
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const float s = row4_sum(cd[half]);
                if (qq == 0) dcy[ni * Q + ti * 16 + g + 8 * half] = s;
            }
        } else { /* dB = M2^T C + diag(dt w) X dSe */
            const int v = u - QT * pt - QT * nt, si = v / nt, ni = v % nt;
            mma_run<A_KMAJOR, B_KMAJOR>(c1, m2 + si * 16, LQ, cs + ni * 16, ln, si * 16, Q); /* M2^T: k-major */
            mma_run<A_ROWS, B_KMAJOR>(c2, xs + si * 16 * lp, lp, dse + ni * 16, ln, 0, P);   /* dSe: k-major */
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int s = si * 16 + g + 8 * half;
                if (s >= q.l) continue;
                const float k2 = dts[s] * mcu_ex2(last - cl[s]);
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const int n = ni * 16 + hh * 8 + 2 * qq;
                    float *d = o.dBp + (bh * a.L + q.k * Q + s) * N + n;
                    d[0] = c1[hh][2 * half] + k2 * c2[hh][2 * half];
                    d[1] = c1[hh][2 * half + 1] + k2 * c2[hh][2 * half + 1];
                }
            }
        }
    }
    __syncthreads();

    /* the chunk's scalars: warp 0, rows 2 lane and 2 lane + 1 */
    if (warp != 0) return;
    float dcs[2], dd[2], qv[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int t = 2 * lane + i;
        float rowz = 0.0f, colz = 0.0f, xe = 0.0f, cy = 0.0f;
        for (int j = 0; j < QT; j++) rowz += rz[j * Q + t], colz += cz[j * Q + t];
        for (int j = 0; j < pt; j++) xe += de[j * Q + t];
        for (int j = 0; j < nt; j++) cy += dcy[j * Q + t];
        const float dend = mcu_ex2(last - cl[t]) * xe; /* w_t x_t . (dSe B_t) */
        const bool ok = t < q.l;
        qv[i] = ok ? dts[t] * dend : 0.0f;
        dcs[i] = ok ? rowz - dts[t] * colz + cy - qv[i] : 0.0f;
        dd[i] = ok ? colz + dend : 0.0f;
    }
    float qsum = qv[0] + qv[1], dotv = 0.0f;
    for (int off = 16; off > 0; off >>= 1) qsum += __shfl_xor_sync(FULL, qsum, off);
    for (int w = 0; w < WARPS; w++) dotv += red[w];
#pragma unroll
    for (int i = 0; i < 2; i++)
        if (2 * lane + i == q.l - 1) dcs[i] += mcu_ex2(last) * dotv + qsum;
    /* da_t = the sum of dcs over rows t.. (a suffix sum over the lanes' pairs) */
    float tot = dcs[0] + dcs[1];
    for (int off = 1; off < 32; off <<= 1) {
        const float y = __shfl_down_sync(FULL, tot, off);
        if (lane + off < 32) tot += y;
    }
    const float da[2] = {tot, tot - dcs[0]}, A = a.A[q.h];
    float dAs = 0.0f;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int t = 2 * lane + i;
        if (t < q.l) o.ddtp[bh * a.L + q.k * Q + t] = dd[i] + A * da[i];
        dAs += t < q.l ? dts[t] * da[i] : 0.0f;
    }
    for (int off = 16; off > 0; off >>= 1) dAs += __shfl_xor_sync(FULL, dAs, off);
    if (lane == 0) o.dAp[bh * q.nch + q.k] = dAs;
}

/* ---- launchers ----------------------------------------------------------------------------- */
static int max_smem(void) {
    int dev = 0, optin = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
        return 0;
    return optin;
}

extern "C" int mct_ssd_tc_fits(int64_t P, int64_t N) {
    if (P % 16 != 0 || P < 16 || P > 128 || N % 16 != 0 || N < 16 || N > 256) return 0;
    return grad_lay((int)P, (int)N).total <= (size_t)max_smem(); /* the largest of the three passes' */
}

static unsigned grid_of(const mct_ssd *a) { return (unsigned)(a->B * a->H * ((a->L + Q - 1) / Q)); }

template <typename K>
static void launch(K kernel, size_t smem, const mct_ssd *a, const mct_ssd_tc_bufs *o, mcu_stream s) {
    if (a->B * a->L <= 0) return;
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    kernel<<<grid_of(a), THREADS, smem, s>>>(*a, *o);
}

extern "C" void mct_ssd_tc_end(const mct_ssd *a, const mct_ssd_tc_bufs *o, mcu_stream s) {
    launch(outer_k<OUTER_END>, outer_smem((int)a->P, (int)a->N), a, o, s);
}
extern "C" void mct_ssd_tc_carry(const mct_ssd *a, const mct_ssd_tc_bufs *o, mcu_stream s) {
    launch(outer_k<OUTER_CARRY>, outer_smem((int)a->P, (int)a->N), a, o, s);
}
extern "C" void mct_ssd_tc_y(const mct_ssd *a, const mct_ssd_tc_bufs *o, mcu_stream s) {
    launch(y_k, y_smem((int)a->P, (int)a->N), a, o, s);
}
extern "C" void mct_ssd_tc_grad(const mct_ssd *a, const mct_ssd_tc_bufs *o, mcu_stream s) {
    launch(grad_k, grad_lay((int)a->P, (int)a->N).total, a, o, s);
}
