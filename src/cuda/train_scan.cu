/* train_scan.cu — the Mamba-1 selective scan of training (train_ops.h): forward from a zero
 * state, and its backward with the states recomputed rather than stored.
 *
 * Time is cut into chunks of SCAN_Q steps and a thread runs one (sequence, channel,
 * chunk), its N <= 16 states in registers; a warp is 32 consecutive channels of one
 * sequence and chunk. Forward: every chunk from a zero state (its end state and sum of
 * delta), the chunks' entering states in order (h_in of chunk k+1 = exp(A dsum_k) h_in_k
 * + end_k), every chunk again from its entering state for the outputs; the entering
 * states stay in the tape. Backward, the same three steps in reverse time for the
 * gradient carried into each chunk from the ones after it (dL/dh flows back through the
 * same per-state decay), then each chunk's states recomputed into registers and the
 * chunk walked in reverse for the gradients (chunk_bwd_k). Sums shared by all channels
 * (dB, dC) leave one partial per 32 channels and step, per-thread sums (dA, dD) one per
 * (sequence, chunk); both are added in a fixed order afterwards. exp is one MUFU op
 * (fastmath.cuh), the same in every pass, so recomputed states equal the forward's. */
#include <math.h>

#include "cuda/fastmath.cuh"
#include "cuda/train_ops.h"

#define SCAN_NMAX 16
#define SCAN_Q 16    /* steps per chunk */
#define SCAN_WARPS 4 /* chunks per block (one warp each) */

static int64_t n_chunks(int64_t L) { return (L + SCAN_Q - 1) / SCAN_Q; }

extern "C" int mct_scan_supported(int64_t E, int64_t N) { return E % 32 == 0 && N >= 1 && N <= SCAN_NMAX; }

/* hin (B, chunks, N, E), dsum (B, chunks, E) */
extern "C" int64_t mct_scan_tape(int64_t B, int64_t L, int64_t E, int64_t N) { return B * n_chunks(L) * E * (N + 1); }

/* the forward's keep: each chunk's entering state and sum of delta */
__host__ __device__ static float *hin_of(const mct_scan &a) { return a.keep; }
__host__ __device__ static float *dsum_of(const mct_scan &a) {
    return a.keep + a.B * ((a.L + SCAN_Q - 1) / SCAN_Q) * a.N * a.E;
}

struct scan_scratch {
    float *carry, *dBp, *dCp, *dA, *dD;
};
/* carry (B, chunks, N, E); dB and dC warp partials (B, E / 32, L, N) each; dA (B chunks,
 * E, N); dD (B chunks, E) */
__host__ __device__ static scan_scratch scratch_of(const mct_scan &a) {
    scan_scratch s;
    const int64_t nch = (a.L + SCAN_Q - 1) / SCAN_Q, part = a.B * (a.E / 32) * a.L * a.N;
    s.carry = a.scratch;
    s.dBp = s.carry + a.B * nch * a.N * a.E;
    s.dCp = s.dBp + part;
    s.dA = s.dCp + part;
    s.dD = s.dA + a.B * nch * a.E * a.N;
    return s;
}
extern "C" int64_t mct_scan_scratch(int64_t B, int64_t L, int64_t E, int64_t N) {
    const int64_t nch = n_chunks(L);
    return B * nch * N * E + 2 * B * (E / 32) * L * N + B * nch * E * N + B * nch * E;
}

/* this thread's (sequence, channel, chunk) and the chunk's rows [l0, l1) */
struct scan_pos {
    int64_t b, e, k, nch, l0, l1;
    int ok;
};
__device__ static scan_pos pos_of(const mct_scan &a) {
    scan_pos p;
    p.e = (int64_t)blockIdx.x * 32 + threadIdx.x;
    p.k = (int64_t)blockIdx.y * SCAN_WARPS + threadIdx.y;
    p.b = blockIdx.z;
    p.nch = (a.L + SCAN_Q - 1) / SCAN_Q;
    p.l0 = p.k * SCAN_Q;
    p.l1 = p.l0 + SCAN_Q < a.L ? p.l0 + SCAN_Q : a.L;
    p.ok = p.k < p.nch;
    return p;
}
/* an (sequence, chunk)'s row of N values per channel: element n of channel e */
__device__ static inline int64_t chunk_at(const mct_scan &a, const scan_pos &p, int n) {
    return ((p.b * p.nch + p.k) * a.N + n) * a.E + p.e;
}

/* What the chunk kernels read of a block's rows [l0, l0 + ROWS) of sequence b (rows past
 * L as zeros), staged in shared memory by coalesced loads before any step runs: per row
 * delta, x and dy of the block's 32 channels, B and C. A step then waits on shared memory,
 * not on a global load issued one step at a time. */
enum { ST_D = 1, ST_X = 2, ST_DY = 4, ST_B = 8, ST_C = 16 };
template <int ROWS>
struct rows_smem {
    float d[ROWS][32], x[ROWS][32], dy[ROWS][32], B[ROWS][SCAN_NMAX], C[ROWS][SCAN_NMAX];
};
template <int ROWS, int WHAT>
__device__ static void stage_rows(rows_smem<ROWS> &sm, const mct_scan &a, int64_t b, int64_t l0, int64_t e0, int tid, int nthr) {
    for (int i = tid; i < ROWS * 32; i += nthr) {
        const int j = i / 32, c = i % 32;
        const int ok = l0 + j < a.L;
        const int64_t r = b * a.L + l0 + j;
        if (WHAT & ST_D) sm.d[j][c] = ok ? a.delta[r * a.E + e0 + c] : 0.0f;
        if (WHAT & ST_X) sm.x[j][c] = ok ? a.x[r * a.xs + e0 + c] : 0.0f;
        if (WHAT & ST_DY) sm.dy[j][c] = ok ? a.dys[r * a.E + e0 + c] : 0.0f;
    }
    for (int i = tid; i < ROWS * SCAN_NMAX; i += nthr) {
        const int j = i / SCAN_NMAX, n = i % SCAN_NMAX;
        const int ok = l0 + j < a.L && n < a.N;
        const int64_t r = b * a.L + l0 + j;
        if (WHAT & ST_B) sm.B[j][n] = ok ? a.Bm[r * a.bcs + n] : 0.0f;
        if (WHAT & ST_C) sm.C[j][n] = ok ? a.Cm[r * a.bcs + n] : 0.0f;
    }
}
/* the block's first row (blocks of SCAN_WARPS chunks) */
__device__ static inline int64_t block_l0(void) { return (int64_t)blockIdx.y * SCAN_WARPS * SCAN_Q; }

__device__ static inline void load_A(const mct_scan &a, int64_t e, float Ae[SCAN_NMAX]) {
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) Ae[n] = n < a.N ? a.A[e * a.N + n] : 0.0f;
}

/* forward 1: each chunk from zero: end state (into hin) and sum of delta */
__global__ static void chunk_end_k(mct_scan a) {
    __shared__ rows_smem<SCAN_WARPS * SCAN_Q> sm;
    const scan_pos p = pos_of(a);
    const int64_t L0 = block_l0();
    stage_rows<SCAN_WARPS * SCAN_Q, ST_D | ST_X | ST_B>(sm, a, p.b, L0, p.e - threadIdx.x, threadIdx.y * 32 + threadIdx.x, 32 * SCAN_WARPS);
    __syncthreads();
    if (!p.ok) return;
    float Ae[SCAN_NMAX], h[SCAN_NMAX];
    load_A(a, p.e, Ae);
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) h[n] = 0.0f;
    float ds = 0.0f;
    for (int64_t l = p.l0; l < p.l1; l++) {
        const int j = (int)(l - L0);
        const float d = sm.d[j][threadIdx.x], xv = sm.x[j][threadIdx.x];
        const float *Bp = sm.B[j];
        ds += d;
#pragma unroll
        for (int n = 0; n < SCAN_NMAX; n++)
            if (n < a.N) h[n] = mcu_exp(d * Ae[n]) * h[n] + d * Bp[n] * xv;
    }
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++)
        if (n < a.N) hin_of(a)[chunk_at(a, p, n)] = h[n];
    dsum_of(a)[(p.b * p.nch + p.k) * a.E + p.e] = ds;
}

/* forward 2 (and backward 2 with reverse set): per (sequence, state element), the chunks
 * in order; v holds each chunk's own contribution and becomes what enters it. The loads
 * do not depend on the running value: COMBINE_AHEAD chunks are read at once. */
#define COMBINE_AHEAD 8
__global__ static void chunk_combine_k(mct_scan a, float *v, int reverse) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, E = a.E, N = a.N;
    if (i >= a.B * N * E) return;
    const int64_t e = i % E, n = (i / E) % N, b = i / (E * N), nch = (a.L + SCAN_Q - 1) / SCAN_Q;
    const float A = a.A[e * N + n];
    const float *dsum = dsum_of(a);
    float h = 0.0f;
    for (int64_t t0 = 0; t0 < nch; t0 += COMBINE_AHEAD) {
        float own[COMBINE_AHEAD], ds[COMBINE_AHEAD];
#pragma unroll
        for (int u = 0; u < COMBINE_AHEAD; u++) {
            const int64_t t = t0 + u, k = reverse ? nch - 1 - t : t;
            own[u] = t < nch ? v[((b * nch + k) * N + n) * E + e] : 0.0f;
            ds[u] = t < nch ? dsum[(b * nch + k) * E + e] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < COMBINE_AHEAD; u++) {
            const int64_t t = t0 + u, k = reverse ? nch - 1 - t : t;
            if (t >= nch) break;
            v[((b * nch + k) * N + n) * E + e] = h;
            h = mcu_exp(ds[u] * A) * h + own[u];
        }
    }
}

/* forward 3: each chunk from its entering state: ys */
__global__ static void chunk_out_k(mct_scan a) {
    __shared__ rows_smem<SCAN_WARPS * SCAN_Q> sm;
    const scan_pos p = pos_of(a);
    const int64_t L0 = block_l0();
    stage_rows<SCAN_WARPS * SCAN_Q, ST_D | ST_X | ST_B | ST_C>(sm, a, p.b, L0, p.e - threadIdx.x, threadIdx.y * 32 + threadIdx.x,
                                                           32 * SCAN_WARPS);
    __syncthreads();
    if (!p.ok) return;
    float Ae[SCAN_NMAX], h[SCAN_NMAX];
    load_A(a, p.e, Ae);
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) h[n] = n < a.N ? hin_of(a)[chunk_at(a, p, n)] : 0.0f;
    const float Dv = a.D[p.e];
    for (int64_t l = p.l0; l < p.l1; l++) {
        const int64_t r = p.b * a.L + l;
        const int j = (int)(l - L0);
        const float d = sm.d[j][threadIdx.x], xv = sm.x[j][threadIdx.x];
        const float *Bp = sm.B[j], *Cp = sm.C[j];
        float y = 0.0f;
#pragma unroll
        for (int n = 0; n < SCAN_NMAX; n++)
            if (n < a.N) {
                h[n] = mcu_exp(d * Ae[n]) * h[n] + d * Bp[n] * xv;
                y += h[n] * Cp[n];
            }
        a.ys[r * a.E + p.e] = y + Dv * xv;
    }
}

/* backward 1: each chunk in reverse from a zero carry: the gradient it passes to the
 * chunk before (a_{l0} dL/dh_{l0}), into carry */
__global__ static void chunk_carry_k(mct_scan a) {
    __shared__ rows_smem<SCAN_WARPS * SCAN_Q> sm;
    const scan_pos p = pos_of(a);
    const int64_t L0 = block_l0();
    stage_rows<SCAN_WARPS * SCAN_Q, ST_D | ST_DY | ST_C>(sm, a, p.b, L0, p.e - threadIdx.x, threadIdx.y * 32 + threadIdx.x, 32 * SCAN_WARPS);
    __syncthreads();
    if (!p.ok) return;
    const scan_scratch s = scratch_of(a);
    float Ae[SCAN_NMAX], g[SCAN_NMAX];
    load_A(a, p.e, Ae);
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) g[n] = 0.0f;
    for (int64_t l = p.l1 - 1; l >= p.l0; l--) {
        const int j = (int)(l - L0);
        const float d = sm.d[j][threadIdx.x], dy = sm.dy[j][threadIdx.x];
        const float *Cp = sm.C[j];
#pragma unroll
        for (int n = 0; n < SCAN_NMAX; n++)
            if (n < a.N) g[n] = (g[n] + dy * Cp[n]) * mcu_exp(d * Ae[n]);
    }
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++)
        if (n < a.N) s.carry[chunk_at(a, p, n)] = g[n];
}

/* backward 3: each chunk's states recomputed from its entering state (in registers: the
 * chunk's loops are unrolled), then the chunk in reverse from the carry that enters it.
 * Four lanes share a channel, four states each; a warp is 8 channels, a block 32. The
 * sums over a channel's states (dx, ddelta) take two shuffles; dB and dC, summed over
 * the warp's channels by shuffles and over the block's warps through shared memory,
 * leave one partial per 32 channels and step. */
#define SCAN_QUARTER (SCAN_NMAX / 4)
__global__ static void __launch_bounds__(128) chunk_bwd_k(mct_scan a) {
    __shared__ float red[SCAN_Q][4][2][SCAN_NMAX]; /* step, warp, dB / dC, state */
    __shared__ rows_smem<SCAN_Q> sm;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, qt = lane & 3, ch = w * 8 + (lane >> 2);
    const int64_t E = a.E, N = a.N, L = a.L, nw = E / 32, blk = blockIdx.x;
    const int64_t e = blk * 32 + ch, k = blockIdx.y, b = blockIdx.z;
    const int64_t nch = (L + SCAN_Q - 1) / SCAN_Q, l0 = k * SCAN_Q;
    const int64_t len = l0 + SCAN_Q < L ? SCAN_Q : L - l0;
    stage_rows<SCAN_Q, ST_D | ST_X | ST_DY | ST_B | ST_C>(sm, a, b, l0, blk * 32, threadIdx.x, 128);
    __syncthreads();
    const scan_scratch s = scratch_of(a);
    const float *hin = hin_of(a);
    float Ae[SCAN_QUARTER], g[SCAN_QUARTER], dA[SCAN_QUARTER], hl[SCAN_Q + 1][SCAN_QUARTER];
#pragma unroll
    for (int u = 0; u < SCAN_QUARTER; u++) {
        const int n = qt * SCAN_QUARTER + u;
        const int64_t at = ((b * nch + k) * N + n) * E + e;
        Ae[u] = n < N ? a.A[e * N + n] : 0.0f;
        hl[0][u] = n < N ? hin[at] : 0.0f;
        g[u] = n < N ? s.carry[at] : 0.0f;
        dA[u] = 0.0f;
    }
#pragma unroll
    for (int j = 0; j < SCAN_Q; j++) {
        const float d = sm.d[j][ch], xv = sm.x[j][ch]; /* zeros past the end */
#pragma unroll
        for (int u = 0; u < SCAN_QUARTER; u++) {
            const int n = qt * SCAN_QUARTER + u;
            const float Bn = sm.B[j][n];
            hl[j + 1][u] = mcu_exp(d * Ae[u]) * hl[j][u] + d * Bn * xv;
        }
    }
    float dD = 0.0f;
    const float Dv = a.D[e];
#pragma unroll
    for (int j = SCAN_Q - 1; j >= 0; j--) {
        if (j >= len) continue; /* the same for the whole block */
        const int64_t r = b * L + l0 + j;
        const float d = sm.d[j][ch], xv = sm.x[j][ch], dy = sm.dy[j][ch];
        float dd = 0.0f, dx = 0.0f, vb[SCAN_QUARTER], vc[SCAN_QUARTER];
#pragma unroll
        for (int u = 0; u < SCAN_QUARTER; u++) {
            const int n = qt * SCAN_QUARTER + u;
            const float Bn = sm.B[j][n], Cn = sm.C[j][n];
            const float gn = g[u] + dy * Cn;
            const float at = mcu_exp(d * Ae[u]);
            const float da = gn * hl[j][u];
            dd += da * at * Ae[u] + gn * Bn * xv;
            dA[u] += da * at * d;
            vb[u] = gn * d * xv;
            vc[u] = dy * hl[j + 1][u];
            dx += gn * d * Bn;
            g[u] = gn * at;
        }
        /* over the channel's four lanes, by a reduce-scatter: lane qt 0 ends with dx, 1 with dd */
        {
            const int upper = qt & 1;
            float v = (upper ? dd : dx) + __shfl_xor_sync(0xffffffffu, upper ? dx : dd, 1);
            v += __shfl_xor_sync(0xffffffffu, v, 2);
            if (qt == 0) {
                a.dx[r * E + e] = v + dy * Dv;
                dD += dy * xv;
            }
            if (qt == 1) a.ddelta[r * E + e] = v;
        }
        /* dB and dC over the warp's eight channels (lanes of one quarter, bits 2-4), by a
         * reduce-scatter: 7 shuffles for 8 values, each lane ending with one sum */
        {
            float y[2 * SCAN_QUARTER];
#pragma unroll
            for (int u = 0; u < SCAN_QUARTER; u++) y[u] = vb[u], y[SCAN_QUARTER + u] = vc[u];
            int base = 0;
#pragma unroll
            for (int half = SCAN_QUARTER, bit = 16; half >= 1; half >>= 1, bit >>= 1) {
                const int up = (lane & bit) != 0;
#pragma unroll
                for (int i = 0; i < half; i++) {
                    const float send = up ? y[i] : y[i + half], keep = up ? y[i + half] : y[i];
                    y[i] = keep + __shfl_xor_sync(0xffffffffu, send, bit);
                }
                if (up) base += half;
            }
            red[j][w][base / SCAN_QUARTER][qt * SCAN_QUARTER + base % SCAN_QUARTER] = y[0];
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < len * 2 * SCAN_NMAX; i += blockDim.x) {
        const int j = i / (2 * SCAN_NMAX), which = (i / SCAN_NMAX) & 1, n = i % SCAN_NMAX;
        if (n >= N) continue;
        const float sum = red[j][0][which][n] + red[j][1][which][n] + red[j][2][which][n] + red[j][3][which][n];
        (which ? s.dCp : s.dBp)[((b * nw + blk) * L + l0 + j) * N + n] = sum;
    }
    const int64_t part = b * nch + k;
#pragma unroll
    for (int u = 0; u < SCAN_QUARTER; u++) {
        const int n = qt * SCAN_QUARTER + u;
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

static dim3 chunk_grid(const mct_scan *a) {
    return dim3((unsigned)(a->E / 32), (unsigned)((n_chunks(a->L) + SCAN_WARPS - 1) / SCAN_WARPS), (unsigned)a->B);
}
static void combine(const mct_scan *a, float *v, int reverse, mcu_stream s) {
    const int64_t n = a->B * a->N * a->E;
    chunk_combine_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(*a, v, reverse);
}

extern "C" void mct_scan_fwd(const mct_scan *a, mcu_stream s) {
    if (a->B * a->L <= 0) return;
    chunk_end_k<<<chunk_grid(a), dim3(32, SCAN_WARPS), 0, s>>>(*a);
    combine(a, hin_of(*a), 0, s);
    chunk_out_k<<<chunk_grid(a), dim3(32, SCAN_WARPS), 0, s>>>(*a);
}

extern "C" void mct_scan_bwd(const mct_scan *a, mcu_stream s) {
    const int64_t T = a->B * a->L;
    if (T <= 0) return;
    const scan_scratch sc = scratch_of(*a);
    chunk_carry_k<<<chunk_grid(a), dim3(32, SCAN_WARPS), 0, s>>>(*a);
    combine(a, sc.carry, 1, s);
    chunk_bwd_k<<<dim3((unsigned)(a->E / 32), (unsigned)n_chunks(a->L), (unsigned)a->B), 128, 0, s>>>(*a);
    scan_bc_reduce_k<<<(unsigned)((T * a->N + 255) / 256), 256, 0, s>>>(*a);
    mct_sum_parts(a->dA, sc.dA, a->B * n_chunks(a->L), a->E * a->N, 0, s);
    mct_sum_parts(a->dD, sc.dD, a->B * n_chunks(a->L), a->E, 0, s);
}
