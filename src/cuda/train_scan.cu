/* train_scan.cu — the Mamba-1 selective scan of training (train_ops.h): forward from a zero
 * state, and its backward with the states recomputed rather than stored.
 *
 * Time is cut into segments of SEG steps, each of SEG_PIECES pieces of PIECE steps. The
 * passes over segments run a thread per (sequence, channel, segment) with its N <= 16
 * states in registers, a block being 128 channels of one segment whose rows are staged in
 * shared memory a piece at a time by coalesced loads. Forward: every segment from a zero
 * state (its end state and sum of delta), the segments' entering states in order (h_in of
 * segment k+1 = exp(A dsum_k) h_in_k + end_k), every segment again from its entering state
 * for the outputs, keeping the state entering every piece in the tape. Backward: the same
 * three steps in reverse time for the gradient carried into each segment from the ones
 * after it (dL/dh flows back through the same per-state decay), then per segment its
 * pieces in reverse (seg_bwd_k): a piece's states recomputed into registers from the
 * tape, the piece walked backwards for the gradients.
 *
 * States past N run with A = B = C = 0 (they stay zero), so the state loops carry no
 * predicate; rows past L are staged as zeros (delta 0: the states do not move) and only
 * their stores are skipped. Sums shared by all channels (dB, dC) leave one partial per 32
 * channels and step, per-thread sums (dA, dD) one per (sequence, segment); both are added
 * in a fixed order afterwards. exp is one MUFU op (fastmath.cuh) of the same argument in
 * every pass, so recomputed states equal the forward's. */
#include <cuda_bf16.h>
#include <math.h>

#include "cuda/fastmath.cuh"
#include "cuda/train_ops.h"

#define SCAN_NMAX 16
#define PIECE 16                   /* steps staged at once; the backward's recomputed run */
#define SEG_PIECES 4               /* pieces per segment */
#define SEG (PIECE * SEG_PIECES)   /* one thread's steps in the passes over segments */
#define WIDE 128                   /* channels of a block in those passes */
#define MCU_LN2 0.69314718055994531f

static int64_t n_pieces(int64_t L) { return (L + PIECE - 1) / PIECE; }
static int64_t n_segs(int64_t L) { return (L + SEG - 1) / SEG; }

extern "C" int mct_scan_supported(int64_t E, int64_t N) { return E % 32 == 0 && N >= 1 && N <= SCAN_NMAX; }

/* hin (B, pieces, N, E): the state entering every piece; dsum (B, segments, E) */
extern "C" int64_t mct_scan_tape(int64_t B, int64_t L, int64_t E, int64_t N) {
    return B * n_pieces(L) * N * E + B * n_segs(L) * E;
}

/* where the pieces, segments and the tape's two parts are, for one launch */
struct geo {
    int64_t np, ns;
    float *hin, *dsum;
};
__host__ __device__ static geo geo_of(const mct_scan &a) {
    geo g;
    g.np = (a.L + PIECE - 1) / PIECE;
    g.ns = (a.L + SEG - 1) / SEG;
    g.hin = a.keep;
    g.dsum = a.keep + a.B * g.np * a.N * a.E;
    return g;
}
/* element (n, e) of piece k's state row of sequence b */
__device__ static inline int64_t hin_at(const mct_scan &a, const geo &g, int64_t b, int64_t k, int n, int64_t e) {
    return ((b * g.np + k) * a.N + n) * a.E + e;
}

struct scan_scratch {
    float *carry, *dBp, *dCp, *dA, *dD;
};
/* carry (B, segments, N, E); dB and dC warp partials (B, E / 32, L, N) each; dA (B
 * segments, E, N); dD (B segments, E) */
__host__ __device__ static scan_scratch scratch_of(const mct_scan &a) {
    scan_scratch s;
    const int64_t ns = (a.L + SEG - 1) / SEG, part = a.B * (a.E / 32) * a.L * a.N;
    s.carry = a.scratch;
    s.dBp = s.carry + a.B * ns * a.N * a.E;
    s.dCp = s.dBp + part;
    s.dA = s.dCp + part;
    s.dD = s.dA + a.B * ns * a.E * a.N;
    return s;
}
extern "C" int64_t mct_scan_scratch(int64_t B, int64_t L, int64_t E, int64_t N) {
    const int64_t ns = n_segs(L);
    return B * ns * N * E + 2 * B * (E / 32) * L * N + B * ns * E * N + B * ns * E;
}

/* One piece of rows [l0, l0 + PIECE) of sequence b for CH channels from c0, staged by
 * coalesced loads before any step runs: up to three per-channel rows (which depend on the
 * pass: delta, x, z or dy) and the shared B and C rows. A step then waits on shared
 * memory, not on a global load issued one step at a time. Out of range: zeros. */
struct col_src {
    const float *p;
    int64_t stride;
};
template <int CH>
struct piece_smem {
    float u[3][PIECE][CH];
    float4 B[PIECE][SCAN_NMAX / 4], C[PIECE][SCAN_NMAX / 4];
};
template <int CH>
__device__ static void stage(piece_smem<CH> &sm, const mct_scan &a, int64_t b, int64_t l0, int64_t c0, col_src u0, col_src u1,
                             col_src u2, int with_b, int with_c) {
    const int tid = threadIdx.x;
    const int64_t E = a.E, L = a.L;
    for (int i = tid; i < PIECE * CH; i += blockDim.x) {
        const int j = i / CH, c = i % CH;
        const int ok = l0 + j < L && c0 + c < E;
        const int64_t r = b * L + l0 + j, e = c0 + c;
        sm.u[0][j][c] = ok && u0.p ? u0.p[r * u0.stride + e] : 0.0f;
        sm.u[1][j][c] = ok && u1.p ? u1.p[r * u1.stride + e] : 0.0f;
        sm.u[2][j][c] = ok && u2.p ? u2.p[r * u2.stride + e] : 0.0f;
    }
    float *Bf = &sm.B[0][0].x, *Cf = &sm.C[0][0].x;
    for (int i = tid; i < PIECE * SCAN_NMAX; i += blockDim.x) {
        const int j = i / SCAN_NMAX, n = i % SCAN_NMAX;
        const int ok = l0 + j < L && n < a.N;
        const int64_t r = b * L + l0 + j;
        if (with_b) Bf[i] = ok ? a.Bm[r * a.bcs + n] : 0.0f;
        if (with_c) Cf[i] = ok ? a.Cm[r * a.bcs + n] : 0.0f;
    }
}

__device__ static inline void unpack(const float4 *v, float out[SCAN_NMAX]) {
#pragma unroll
    for (int q = 0; q < SCAN_NMAX / 4; q++) {
        const float4 t = v[q];
        out[4 * q] = t.x, out[4 * q + 1] = t.y, out[4 * q + 2] = t.z, out[4 * q + 3] = t.w;
    }
}

/* A log2(e) of channel e (zeros for the states past N, and for a channel past E) */
__device__ static inline void load_al2(const mct_scan &a, int64_t e, float Al2[SCAN_NMAX]) {
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) Al2[n] = n < a.N && e < a.E ? a.A[e * a.N + n] * MCU_LOG2E : 0.0f;
}

/* this thread's channel and segment in the passes over segments; the segment's pieces */
struct wide_pos {
    int64_t b, e, s, c0;
    int ok;
};
__device__ static wide_pos wide_of(const mct_scan &a) {
    wide_pos p;
    p.c0 = (int64_t)blockIdx.x * WIDE;
    p.e = p.c0 + threadIdx.x;
    p.s = blockIdx.y;
    p.b = blockIdx.z;
    p.ok = p.e < a.E;
    return p;
}
__device__ static inline int64_t piece_l0(int64_t s, int p) { return s * SEG + (int64_t)p * PIECE; }

/* forward 1: each segment from zero: its end state (into hin at the segment's first
 * piece) and its sum of delta */
__global__ static void __launch_bounds__(WIDE) seg_end_k(mct_scan a) {
    __shared__ piece_smem<WIDE> sm;
    const wide_pos w = wide_of(a);
    const geo g = geo_of(a);
    float Al2[SCAN_NMAX], h[SCAN_NMAX];
    load_al2(a, w.e, Al2);
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) h[n] = 0.0f;
    float ds = 0.0f;
    for (int p = 0; p < SEG_PIECES; p++) {
        const int64_t l0 = piece_l0(w.s, p);
        if (l0 >= a.L) break;
        __syncthreads();
        stage<WIDE>(sm, a, w.b, l0, w.c0, {a.delta, a.E}, {a.x, a.xs}, {NULL, 0}, 1, 0);
        __syncthreads();
#pragma unroll
        for (int j = 0; j < PIECE; j++) {
            const float d = sm.u[0][j][threadIdx.x], dx = d * sm.u[1][j][threadIdx.x];
            float Bv[SCAN_NMAX];
            unpack(sm.B[j], Bv);
            ds += d;
#pragma unroll
            for (int n = 0; n < SCAN_NMAX; n++) h[n] = mcu_ex2(d * Al2[n]) * h[n] + dx * Bv[n];
        }
    }
    if (!w.ok) return;
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++)
        if (n < a.N) g.hin[hin_at(a, g, w.b, w.s * SEG_PIECES, n, w.e)] = h[n];
    g.dsum[(w.b * g.ns + w.s) * a.E + w.e] = ds;
}

/* forward 2 (and backward 2 with reverse set): per (sequence, state element), the
 * segments in order; v (segment k's row at piece k * vstep of a layout of nv pieces)
 * holds each segment's own contribution and becomes what enters it. The loads do not
 * depend on the running value: COMBINE_AHEAD segments are read at once. */
#define COMBINE_AHEAD 8
__global__ static void seg_combine_k(mct_scan a, float *v, int64_t nv, int vstep, int reverse) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, E = a.E, N = a.N;
    if (i >= a.B * N * E) return;
    const int64_t e = i % E, n = (i / E) % N, b = i / (E * N);
    const geo g = geo_of(a);
    const float Al2 = a.A[e * N + n] * MCU_LOG2E;
    float h = 0.0f;
    for (int64_t t0 = 0; t0 < g.ns; t0 += COMBINE_AHEAD) {
        float own[COMBINE_AHEAD], ds[COMBINE_AHEAD];
#pragma unroll
        for (int u = 0; u < COMBINE_AHEAD; u++) {
            const int64_t t = t0 + u, k = reverse ? g.ns - 1 - t : t;
            own[u] = t < g.ns ? v[((b * nv + k * vstep) * N + n) * E + e] : 0.0f;
            ds[u] = t < g.ns ? g.dsum[(b * g.ns + k) * E + e] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < COMBINE_AHEAD; u++) {
            const int64_t t = t0 + u, k = reverse ? g.ns - 1 - t : t;
            if (t >= g.ns) break;
            v[((b * nv + k * vstep) * N + n) * E + e] = h;
            h = mcu_ex2(ds[u] * Al2) * h + own[u];
        }
    }
}

/* forward 3: each segment from its entering state: ys = y + D x (and, given z, the gated
 * yo = ys silu(z)); the state entering each of its later pieces into hin */
__global__ static void __launch_bounds__(WIDE) seg_out_k(mct_scan a) {
    __shared__ piece_smem<WIDE> sm;
    const wide_pos w = wide_of(a);
    const geo g = geo_of(a);
    float Al2[SCAN_NMAX], h[SCAN_NMAX];
    load_al2(a, w.e, Al2);
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) h[n] = w.ok && n < a.N ? g.hin[hin_at(a, g, w.b, w.s * SEG_PIECES, n, w.e)] : 0.0f;
    const float Dv = w.ok ? a.D[w.e] : 0.0f;
    for (int p = 0; p < SEG_PIECES; p++) {
        const int64_t l0 = piece_l0(w.s, p);
        if (l0 >= a.L) break;
        if (p > 0 && w.ok) {
#pragma unroll
            for (int n = 0; n < SCAN_NMAX; n++)
                if (n < a.N) g.hin[hin_at(a, g, w.b, w.s * SEG_PIECES + p, n, w.e)] = h[n];
        }
        __syncthreads();
        stage<WIDE>(sm, a, w.b, l0, w.c0, {a.delta, a.E}, {a.x, a.xs}, {a.z, a.zs}, 1, 1);
        __syncthreads();
        const int64_t row = (w.b * a.L + l0) * a.E + w.e; /* this thread's element of the piece's first row */
        const int Ei = (int)a.E;
        float *ysp = a.ys + row, *yop = a.z && a.yo ? a.yo + row : NULL;
        __nv_bfloat16 *yo16p = a.z && a.yo16 ? (__nv_bfloat16 *)a.yo16 + row : NULL;
#pragma unroll
        for (int j = 0; j < PIECE; j++) {
            const float d = sm.u[0][j][threadIdx.x], xv = sm.u[1][j][threadIdx.x], dx = d * xv;
            float Bv[SCAN_NMAX], Cv[SCAN_NMAX];
            unpack(sm.B[j], Bv);
            unpack(sm.C[j], Cv);
            float y = 0.0f;
#pragma unroll
            for (int n = 0; n < SCAN_NMAX; n++) {
                h[n] = mcu_ex2(d * Al2[n]) * h[n] + dx * Bv[n];
                y += h[n] * Cv[n];
            }
            if (!w.ok || l0 + j >= a.L) continue;
            const float ys = y + Dv * xv;
            ysp[j * Ei] = ys;
            if (a.z) {
                const float zv = sm.u[2][j][threadIdx.x]; /* silu in float32 as the elementwise kernels, else fast */
                const float yo = ys * (yop ? zv * (1.0f / (1.0f + expf(-zv))) : __fdividef(zv, 1.0f + __expf(-zv)));
                if (yop) yop[j * Ei] = yo;
                if (yo16p) yo16p[j * Ei] = __float2bfloat16(yo);
            }
        }
    }
}

/* backward 1: each segment in reverse from a zero carry: the gradient it passes to the
 * segment before (a_{l0} dL/dh_{l0}), into carry */
__global__ static void __launch_bounds__(WIDE) seg_carry_k(mct_scan a) {
    __shared__ piece_smem<WIDE> sm;
    const wide_pos w = wide_of(a);
    const geo g = geo_of(a);
    const scan_scratch s = scratch_of(a);
    float Al2[SCAN_NMAX], gr[SCAN_NMAX];
    load_al2(a, w.e, Al2);
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) gr[n] = 0.0f;
    for (int p = SEG_PIECES - 1; p >= 0; p--) {
        const int64_t l0 = piece_l0(w.s, p);
        if (l0 >= a.L) continue;
        __syncthreads();
        stage<WIDE>(sm, a, w.b, l0, w.c0, {a.delta, a.E}, {a.dys, a.E}, {NULL, 0}, 0, 1);
        __syncthreads();
#pragma unroll
        for (int j = PIECE - 1; j >= 0; j--) {
            const float d = sm.u[0][j][threadIdx.x], dy = sm.u[1][j][threadIdx.x];
            float Cv[SCAN_NMAX];
            unpack(sm.C[j], Cv);
#pragma unroll
            for (int n = 0; n < SCAN_NMAX; n++) gr[n] = (gr[n] + dy * Cv[n]) * mcu_ex2(d * Al2[n]);
        }
    }
    if (!w.ok) return;
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++)
        if (n < a.N) s.carry[((w.b * g.ns + w.s) * a.N + n) * a.E + w.e] = gr[n];
}

/* backward 3: per segment, its pieces in reverse: each piece's states recomputed from its
 * entering state (in registers: the piece's loops are unrolled), then the piece walked
 * backwards from the gradient that enters it from the future. Four lanes share a
 * channel, four states each; a warp is 8 channels, a block 32. The sums over a channel's
 * states (dx, ddelta) take two shuffles; dB and dC, summed over the warp's channels by
 * shuffles and over the block's warps through shared memory, leave one partial per 32
 * channels and step. */
#define QUARTER (SCAN_NMAX / 4)
__global__ static void __launch_bounds__(128) seg_bwd_k(mct_scan a) {
    __shared__ float red[PIECE][4][2][SCAN_NMAX]; /* step, warp, dB / dC, state */
    __shared__ piece_smem<32> sm;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, qt = lane & 3, ch = w * 8 + (lane >> 2);
    const int64_t E = a.E, N = a.N, L = a.L, nw = E / 32, blk = blockIdx.x;
    const int64_t e = blk * 32 + ch, sg = blockIdx.y, b = blockIdx.z;
    const geo g = geo_of(a);
    const scan_scratch s = scratch_of(a);
    float Al2[QUARTER], gr[QUARTER], dA[QUARTER], hl[PIECE + 1][QUARTER];
#pragma unroll
    for (int u = 0; u < QUARTER; u++) {
        const int n = qt * QUARTER + u;
        Al2[u] = n < N ? a.A[e * N + n] * MCU_LOG2E : 0.0f;
        gr[u] = n < N ? s.carry[((b * g.ns + sg) * N + n) * E + e] : 0.0f;
        dA[u] = 0.0f;
    }
    float dD = 0.0f;
    const float Dv = a.D[e];
    for (int p = SEG_PIECES - 1; p >= 0; p--) {
        const int64_t l0 = piece_l0(sg, p);
        if (l0 >= L) continue;
        const int64_t len = l0 + PIECE < L ? PIECE : L - l0;
        __syncthreads();
        stage<32>(sm, a, b, l0, blk * 32, {a.delta, E}, {a.x, a.xs}, {a.dys, E}, 1, 1);
        __syncthreads();
#pragma unroll
        for (int u = 0; u < QUARTER; u++) {
            const int n = qt * QUARTER + u;
            hl[0][u] = n < N ? g.hin[hin_at(a, g, b, sg * SEG_PIECES + p, n, e)] : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < PIECE; j++) {
            const float d = sm.u[0][j][ch], dx = d * sm.u[1][j][ch]; /* zeros past the end */
            const float4 B4 = sm.B[j][qt];
            const float Bv[QUARTER] = {B4.x, B4.y, B4.z, B4.w};
#pragma unroll
            for (int u = 0; u < QUARTER; u++) hl[j + 1][u] = mcu_ex2(d * Al2[u]) * hl[j][u] + dx * Bv[u];
        }
        const int Ei = (int)E;
        float *dx_out = a.dx + (b * L + l0) * E + e, *dd_out = a.ddelta + (b * L + l0) * E + e;
#pragma unroll
        for (int j = PIECE - 1; j >= 0; j--) {
            const float d = sm.u[0][j][ch], xv = sm.u[1][j][ch], dy = sm.u[2][j][ch], dxv = d * xv;
            const float4 B4 = sm.B[j][qt], C4 = sm.C[j][qt];
            const float Bv[QUARTER] = {B4.x, B4.y, B4.z, B4.w}, Cv[QUARTER] = {C4.x, C4.y, C4.z, C4.w};
            float ddA = 0.0f, sB = 0.0f, vb[QUARTER], vc[QUARTER];
#pragma unroll
            for (int u = 0; u < QUARTER; u++) {
                const float gn = gr[u] + dy * Cv[u];
                const float at = mcu_ex2(d * Al2[u]);
                const float t = gn * hl[j][u] * at; /* dL/da_t times a_t */
                ddA += t * Al2[u];
                dA[u] += t * d;
                sB += gn * Bv[u];
                vb[u] = gn * dxv;
                vc[u] = dy * hl[j + 1][u];
                gr[u] = gn * at;
            }
            /* over the channel's four lanes, by a reduce-scatter: lane qt 0 ends with dx, 1 with ddelta */
            {
                const float dxp = d * sB, ddp = ddA * MCU_LN2 + xv * sB;
                const int upper = qt & 1;
                float v = (upper ? ddp : dxp) + __shfl_xor_sync(0xffffffffu, upper ? dxp : ddp, 1);
                v += __shfl_xor_sync(0xffffffffu, v, 2);
                if (j < len) {
                    if (qt == 0) {
                        dx_out[j * Ei] = v + dy * Dv;
                        dD += dy * xv;
                    }
                    if (qt == 1) dd_out[j * Ei] = v;
                }
            }
            /* dB and dC over the warp's eight channels (lanes of one quarter, bits 2-4), by a
             * reduce-scatter: 7 shuffles for 8 values, each lane ending with one sum */
            {
                float y[2 * QUARTER];
#pragma unroll
                for (int u = 0; u < QUARTER; u++) y[u] = vb[u], y[QUARTER + u] = vc[u];
                int base = 0;
#pragma unroll
                for (int half = QUARTER, bit = 16; half >= 1; half >>= 1, bit >>= 1) {
                    const int up = (lane & bit) != 0;
#pragma unroll
                    for (int i = 0; i < half; i++) {
                        const float send = up ? y[i] : y[i + half], keep = up ? y[i + half] : y[i];
                        y[i] = keep + __shfl_xor_sync(0xffffffffu, send, bit);
                    }
                    if (up) base += half;
                }
                red[j][w][base / QUARTER][qt * QUARTER + base % QUARTER] = y[0];
            }
        }
        __syncthreads();
        for (int i = threadIdx.x; i < len * 2 * SCAN_NMAX; i += blockDim.x) {
            const int j = i / (2 * SCAN_NMAX), which = (i / SCAN_NMAX) & 1, n = i % SCAN_NMAX;
            if (n >= N) continue;
            const float sum = red[j][0][which][n] + red[j][1][which][n] + red[j][2][which][n] + red[j][3][which][n];
            (which ? s.dCp : s.dBp)[((b * nw + blk) * L + l0 + j) * N + n] = sum;
        }
    }
    const int64_t part = b * g.ns + sg;
#pragma unroll
    for (int u = 0; u < QUARTER; u++) {
        const int n = qt * QUARTER + u;
        if (n < N) s.dA[(part * E + e) * N + n] = dA[u];
    }
    if (qt == 0) s.dD[part * E + e] = dD;
}

/* dB / dC rows = the sum of the warps' partials, in warp order */
__global__ static void scan_bc_reduce_k(mct_scan a) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, T = a.B * a.L, N = a.N, nw = a.E / 32;
    if (i >= T * N) return;
    const int64_t r = i / N, n = i % N, b = r / a.L, l = r % a.L;
    const scan_scratch s = scratch_of(a);
    float sb = 0.0f, sc = 0.0f;
    for (int64_t w = 0; w < nw; w++) {
        const int64_t o = ((b * nw + w) * a.L + l) * N + n;
        sb += s.dBp[o], sc += s.dCp[o];
    }
    a.dB[r * a.bcs + n] = sb;
    a.dC[r * a.bcs + n] = sc;
}

static dim3 wide_grid(const mct_scan *a) {
    return dim3((unsigned)((a->E + WIDE - 1) / WIDE), (unsigned)n_segs(a->L), (unsigned)a->B);
}
static void combine(const mct_scan *a, float *v, int64_t nv, int vstep, int reverse, mcu_stream s) {
    const int64_t n = a->B * a->N * a->E;
    seg_combine_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(*a, v, nv, vstep, reverse);
}

extern "C" void mct_scan_fwd(const mct_scan *a, mcu_stream s) {
    if (a->B * a->L <= 0) return;
    const geo g = geo_of(*a);
    seg_end_k<<<wide_grid(a), WIDE, 0, s>>>(*a);
    combine(a, g.hin, g.np, SEG_PIECES, 0, s);
    seg_out_k<<<wide_grid(a), WIDE, 0, s>>>(*a);
}

extern "C" void mct_scan_bwd(const mct_scan *a, mcu_stream s) {
    const int64_t T = a->B * a->L;
    if (T <= 0) return;
    const scan_scratch sc = scratch_of(*a);
    const int64_t ns = n_segs(a->L);
    seg_carry_k<<<wide_grid(a), WIDE, 0, s>>>(*a);
    combine(a, sc.carry, ns, 1, 1, s);
    seg_bwd_k<<<dim3((unsigned)(a->E / 32), (unsigned)ns, (unsigned)a->B), 128, 0, s>>>(*a);
    scan_bc_reduce_k<<<(unsigned)((T * a->N + 255) / 256), 256, 0, s>>>(*a);
    mct_sum_parts(a->dA, sc.dA, a->B * ns, a->E * a->N, 0, s);
    mct_sum_parts(a->dD, sc.dD, a->B * ns, a->E, 0, s);
}
