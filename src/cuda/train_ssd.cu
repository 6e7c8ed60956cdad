/* train_ssd.cu — the Mamba-2 SSD of training (train_ops.h) in its recurrent form, parallel
 * over chunks of time: the forward from a zero state and the backward, the states
 * recomputed rather than stored.
 *
 * A block of 8 warps holds a slice of one head's (P, N) state of one sequence over one
 * chunk of SSD_Q steps: warp w rows p0 + w PW + i (i < PW), lane the columns n = lane +
 * 32 j (j < NV). Forward: every chunk from a zero state (its end state), the chunks'
 * entering states in order per state element (S_in of chunk k+1 = exp(A dtsum_k) S_in_k +
 * end_k; kept in the tape, with the final state), every chunk again from its entering
 * state for y. Backward: every chunk in reverse from a zero gradient (what it passes to
 * the chunk before), those carries combined in reverse order, then per chunk: forward
 * from its entering state for dC_t = S_t^T dy_t and c_t = dy_t . y_t, and reverse from
 * its carry: dS_t = C_t dy_t^T + a_{t+1} dS_{t+1}, then dx, dB and ddt.
 *
 * The decay's gradient needs <dS_t, S_{t-1}>, which reverse time does not have; it is
 * carried as P_t = <dS_t, S_t>, which obeys P_t = P_{t+1} + c_t - dt_{t+1} q_{t+1} (q_t =
 * x_t . dS_t B_t), set exactly at every chunk's end from the kept state, so rounding
 * cannot pile up: dl_t = <dS_t, a_t S_{t-1}> = P_t - dt_t q_t. Each of these sums is
 * linear in the state's rows, so a block computes its slice's part and the parts are
 * added afterwards in a fixed order (dB and dC over the heads of a group too). */
#include <math.h>

#include "cuda/fastmath.cuh"
#include "cuda/train_ops.h"
#include "cuda/train_ssd_tc.h"

#define SSD_Q MCT_SSD_CHUNK
#define SSD_WARPS 8

typedef struct ssd_plan {
    int nv, pw, split; /* values per lane (N <= 32 nv), rows per warp, blocks per head */
} ssd_plan;

static int64_t n_chunks(int64_t L) { return (L + SSD_Q - 1) / SSD_Q; }

static ssd_plan plan_of(int64_t B, int64_t L, int64_t H, int64_t P, int64_t N) {
    ssd_plan p;
    p.nv = N <= 32 ? 1 : N <= 64 ? 2 : N <= 128 ? 4 : 8;
    p.pw = 1;
    while (p.pw * 2 * p.nv <= 32 && p.pw * 2 * SSD_WARPS <= P && P % (p.pw * 2 * SSD_WARPS) == 0) p.pw *= 2;
    /* fewer rows per block while the blocks would not fill 132 SMs twice */
    while (p.pw > 1 && B * H * n_chunks(L) * (P / (p.pw * SSD_WARPS)) < 264) p.pw /= 2;
    p.split = (int)(P / (p.pw * SSD_WARPS));
    return p;
}

extern "C" int mct_ssd_supported(int64_t P, int64_t N) { return P % SSD_WARPS == 0 && N >= 1 && N <= 256; }

/* keep: each chunk's entering state and the final one (B, H, chunks + 1, P, N), each
 * chunk's sum of dt (B, H, chunks) */
extern "C" int64_t mct_ssd_tape(int64_t B, int64_t L, int64_t H, int64_t P, int64_t N) {
    return B * H * ((n_chunks(L) + 1) * P * N + n_chunks(L));
}
__host__ __device__ static float *states_of(const mct_ssd &a) { return a.keep; }
__host__ __device__ static float *dtsum_of(const mct_ssd &a) {
    return a.keep + a.B * a.H * ((a.L + SSD_Q - 1) / SSD_Q + 1) * a.P * a.N;
}

/* scratch: the carries (B, H, chunks, P, N); per (sequence, head, slice): dB and dC (L,
 * N), ddt and c (L); dA per (sequence, head, slice, chunk) */
typedef struct ssd_scratch {
    float *carry, *dBp, *dCp, *ddtp, *cbuf, *dAp;
} ssd_scratch;
__host__ __device__ static ssd_scratch scratch_of(const mct_ssd &a, int split) {
    ssd_scratch s;
    const int64_t nch = (a.L + SSD_Q - 1) / SSD_Q, nsl = a.B * a.H * split;
    s.carry = a.scratch;
    s.dBp = s.carry + a.B * a.H * nch * a.P * a.N;
    s.dCp = s.dBp + nsl * a.L * a.N;
    s.ddtp = s.dCp + nsl * a.L * a.N;
    s.cbuf = s.ddtp + nsl * a.L;
    s.dAp = s.cbuf + nsl * a.L;
    return s;
}
extern "C" int64_t mct_ssd_scratch(int64_t B, int64_t L, int64_t H, int64_t P, int64_t N) {
    const ssd_plan p = plan_of(B, L, H, P, N);
    const int64_t nch = n_chunks(L), nsl = B * H * p.split;
    return B * H * nch * P * N + nsl * (2 * L * N + 2 * L + nch);
}

__device__ static inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* PW values (one per row of the warp) summed over the warp's 32 lanes by a reduce-scatter
 * (PW - 1 + log2(32 / PW) shuffles instead of 5 PW): each lane ends with the sum of row
 * *row; the 32 / PW lanes of a row hold the same value, the first of them is the leader. */
template <int PW>
__device__ static inline float rows_sum(float y[PW], int lane, int *row, int *leader) {
    int base = 0, bit = 16;
#pragma unroll
    for (int half = PW / 2; half >= 1; half >>= 1, bit >>= 1) {
        const int upper = (lane & bit) != 0;
#pragma unroll
        for (int i = 0; i < half; i++) {
            const float send = upper ? y[i] : y[i + half], keep = upper ? y[i + half] : y[i];
            y[i] = keep + __shfl_xor_sync(0xffffffffu, send, bit);
        }
        if (upper) base += half;
    }
    float v = y[0];
#pragma unroll
    for (int b = 32 / PW / 2; b >= 1; b >>= 1) v += __shfl_xor_sync(0xffffffffu, v, b);
    *row = base;
    *leader = (lane & (32 / PW - 1)) == 0;
    return v;
}

/* the block's (sequence, head, slice, chunk), the warp's first row, the chunk's rows */
struct ssd_blk {
    int64_t b, h, sp, k, nch, sl, p0, prow, g, l0, l1;
};
__device__ static ssd_blk blk_of(const mct_ssd &a, int split, int pw) {
    ssd_blk q;
    q.nch = (a.L + SSD_Q - 1) / SSD_Q;
    q.k = blockIdx.x % q.nch;
    q.sl = blockIdx.x / q.nch; /* (b H + h) split + sp */
    q.sp = q.sl % split;
    q.h = (q.sl / split) % a.H;
    q.b = q.sl / split / a.H;
    q.prow = (threadIdx.x >> 5) * pw;
    q.p0 = q.sp * (int64_t)pw * SSD_WARPS + q.prow;
    q.g = q.h / (a.H / a.G);
    q.l0 = q.k * SSD_Q;
    q.l1 = q.l0 + SSD_Q < a.L ? q.l0 + SSD_Q : a.L;
    return q;
}
/* element (p, n) of state slot k of the block's (sequence, head) in an array of `slots`
 * states per head */
__device__ static inline int64_t state_at(const mct_ssd &a, const ssd_blk &q, int64_t slots, int64_t k, int64_t p, int64_t n) {
    return ((q.b * a.H + q.h) * slots + k) * a.P * a.N + p * a.N + n;
}

/* what a step reads: dt, this warp's rows of x and dy, the lane's B and C */
template <int NV>
struct step_in {
    float dt;
    const float *x, *dy;
    float Bv[NV], Cv[NV];
};
template <int NV>
__device__ static inline step_in<NV> load_step(const mct_ssd &a, const ssd_blk &q, int64_t r, int lane) {
    step_in<NV> s;
    const int64_t N = a.N, P = a.P, E = a.H * P;
    s.dt = a.dt[r * a.H + q.h];
    s.x = a.x + r * a.xs + q.h * P + q.p0, s.dy = a.dy ? a.dy + r * E + q.h * P + q.p0 : NULL;
    const float *Bp = a.Bm + r * a.bcs + q.g * N, *Cp = a.Cm + r * a.bcs + q.g * N;
#pragma unroll
    for (int j = 0; j < NV; j++) {
        const int64_t n = lane + 32 * j;
        s.Bv[j] = n < N ? Bp[n] : 0.0f, s.Cv[j] = n < N ? Cp[n] : 0.0f;
    }
    return s;
}

template <int NV, int PW>
__device__ static inline void load_state(float S[PW][NV], const float *src, const mct_ssd &a, const ssd_blk &q, int64_t slots,
                                         int64_t k, int lane) {
#pragma unroll
    for (int i = 0; i < PW; i++)
#pragma unroll
        for (int j = 0; j < NV; j++) {
            const int64_t n = lane + 32 * j;
            S[i][j] = n < a.N ? src[state_at(a, q, slots, k, q.p0 + i, n)] : 0.0f;
        }
}
template <int NV, int PW>
__device__ static inline void store_state(float *dst, const float S[PW][NV], const mct_ssd &a, const ssd_blk &q, int64_t slots,
                                          int64_t k, int lane) {
#pragma unroll
    for (int i = 0; i < PW; i++)
#pragma unroll
        for (int j = 0; j < NV; j++) {
            const int64_t n = lane + 32 * j;
            if (n < a.N) dst[state_at(a, q, slots, k, q.p0 + i, n)] = S[i][j];
        }
}

enum { RUN_END, RUN_Y, RUN_DC }; /* forward in a chunk: its end state from zero; y; dC and c */

template <int NV, int PW, int MODE>
__global__ static void __launch_bounds__(256) ssd_fwd_k(mct_ssd a, int split) {
    __shared__ float red[2][SSD_WARPS][NV * 32];
    __shared__ float cred[2][SSD_WARPS];
    const ssd_blk q = blk_of(a, split, PW);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, tid = threadIdx.x;
    const int64_t N = a.N, P = a.P, E = a.H * P, slots = q.nch + 1;
    const ssd_scratch s = scratch_of(a, split);
    float S[PW][NV];
    if (MODE == RUN_END) {
#pragma unroll
        for (int i = 0; i < PW; i++)
#pragma unroll
            for (int j = 0; j < NV; j++) S[i][j] = 0.0f;
    } else {
        load_state<NV, PW>(S, states_of(a), a, q, slots, q.k, lane);
    }
    const float A = a.A[q.h];
    float dts = 0.0f;
    for (int64_t l = q.l0; l < q.l1; l++) {
        const int64_t r = q.b * a.L + l;
        const int buf = (int)(l & 1);
        const step_in<NV> in = load_step<NV>(a, q, r, lane);
        const float dt = in.dt, at = mcu_exp(dt * A);
        dts += dt;
        float v[NV], ys[PW];
#pragma unroll
        for (int j = 0; j < NV; j++) v[j] = 0.0f;
#pragma unroll
        for (int i = 0; i < PW; i++) {
            const float xv = in.x[i], dyv = MODE == RUN_DC ? in.dy[i] : 0.0f;
            ys[i] = 0.0f;
#pragma unroll
            for (int j = 0; j < NV; j++) {
                S[i][j] = at * S[i][j] + dt * xv * in.Bv[j];
                if (MODE == RUN_Y) ys[i] += S[i][j] * in.Cv[j];
                if (MODE == RUN_DC) v[j] += S[i][j] * dyv;
            }
        }
        if (MODE == RUN_Y) {
            int row, leader;
            const float y = rows_sum<PW>(ys, lane, &row, &leader);
            if (leader) a.y[r * E + q.h * P + q.p0 + row] = y;
        }
        if (MODE == RUN_DC) {
            float c = 0.0f;
#pragma unroll
            for (int j = 0; j < NV; j++) {
                red[buf][w][lane + 32 * j] = v[j];
                c += v[j] * in.Cv[j];
            }
            c = warp_sum(c);
            if (lane == 0) cred[buf][w] = c;
            __syncthreads();
            if (tid < N) {
                float sum = 0.0f;
                for (int o = 0; o < SSD_WARPS; o++) sum += red[buf][o][tid];
                s.dCp[(q.sl * a.L + l) * N + tid] = sum;
            }
            if (tid == 0) {
                float sum = 0.0f;
                for (int o = 0; o < SSD_WARPS; o++) sum += cred[buf][o];
                s.cbuf[q.sl * a.L + l] = sum;
            }
        }
    }
    if (MODE == RUN_END) {
        store_state<NV, PW>(states_of(a), S, a, q, slots, q.k, lane);
        if (q.sp == 0 && tid == 0) dtsum_of(a)[(q.b * a.H + q.h) * q.nch + q.k] = dts;
    }
}

/* Per state element of each (sequence, head), the chunks in order: v holds each chunk's
 * own contribution and becomes what enters it (forward: states, slots = chunks + 1, the
 * last slot the final state; reverse: the gradient carries, slots = chunks). */
#define COMBINE_AHEAD 8
__global__ static void ssd_combine_k(mct_ssd a, float *v, int reverse) {
    const int64_t PN = a.P * a.N, i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= a.B * a.H * PN) return;
    const int64_t bh = i / PN, pn = i % PN, nch = (a.L + SSD_Q - 1) / SSD_Q, slots = reverse ? nch : nch + 1;
    const float A = a.A[bh % a.H];
    const float *dts = dtsum_of(a) + bh * nch;
    float h = 0.0f;
    for (int64_t t0 = 0; t0 < nch; t0 += COMBINE_AHEAD) { /* the loads do not wait for h */
        float own[COMBINE_AHEAD], ds[COMBINE_AHEAD];
#pragma unroll
        for (int u = 0; u < COMBINE_AHEAD; u++) {
            const int64_t t = t0 + u, k = reverse ? nch - 1 - t : t;
            own[u] = t < nch ? v[(bh * slots + k) * PN + pn] : 0.0f;
            ds[u] = t < nch ? dts[k] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < COMBINE_AHEAD; u++) {
            const int64_t t = t0 + u, k = reverse ? nch - 1 - t : t;
            if (t >= nch) break;
            v[(bh * slots + k) * PN + pn] = h;
            h = mcu_exp(A * ds[u]) * h + own[u];
        }
    }
    if (!reverse) v[(bh * slots + nch) * PN + pn] = h;
}

/* Reverse in a chunk. CARRY: from a zero gradient, what the chunk passes to the one
 * before (a_{l0} dS_{l0}). GRAD: from the carry entering it, every gradient. */
enum { REV_CARRY, REV_GRAD };

template <int NV, int PW, int MODE>
__global__ static void __launch_bounds__(256) ssd_rev_k(mct_ssd a, int split) {
    __shared__ float red[2][SSD_WARPS][NV * 32];
    __shared__ float sred[2][2][SSD_WARPS]; /* per warp: q_t, and the exact <dS, S> at the chunk's end */
    const ssd_blk q = blk_of(a, split, PW);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, tid = threadIdx.x;
    const int64_t N = a.N, L = a.L;
    const ssd_scratch s = scratch_of(a, split);
    const float A = a.A[q.h];
    float S[PW][NV]; /* dS */
    if (MODE == REV_CARRY) {
#pragma unroll
        for (int i = 0; i < PW; i++)
#pragma unroll
            for (int j = 0; j < NV; j++) S[i][j] = 0.0f;
    } else {
        load_state<NV, PW>(S, s.carry, a, q, q.nch, q.k, lane);
    }
    float an = 1.0f;                                      /* a_{t+1}: the carry is already a_{l1} dS_{l1} */
    float Pn = 0.0f, qn = 0.0f, dtn = 0.0f, dAacc = 0.0f; /* thread 0's scalars of step t + 1 */
    for (int64_t l = q.l1 - 1; l >= q.l0; l--) {
        const int64_t r = q.b * L + l;
        const int buf = (int)(l & 1);
        const step_in<NV> in = load_step<NV>(a, q, r, lane);
        const float dt = in.dt, at = mcu_exp(dt * A);
        if (MODE == REV_CARRY) {
#pragma unroll
            for (int i = 0; i < PW; i++)
#pragma unroll
                for (int j = 0; j < NV; j++) S[i][j] = an * S[i][j] + in.Cv[j] * in.dy[i];
        } else {
            float v[NV];
#pragma unroll
            for (int j = 0; j < NV; j++) v[j] = 0.0f;
            float dxs[PW];
#pragma unroll
            for (int i = 0; i < PW; i++) {
                const float xv = in.x[i], dyv = in.dy[i];
                dxs[i] = 0.0f;
#pragma unroll
                for (int j = 0; j < NV; j++) {
                    S[i][j] = an * S[i][j] + in.Cv[j] * dyv;
                    dxs[i] += S[i][j] * in.Bv[j];
                    v[j] += S[i][j] * xv;
                }
            }
            int row, leader;
            const float dxr = rows_sum<PW>(dxs, lane, &row, &leader);
            if (leader) a.dx[r * a.dxs + q.h * a.P + q.p0 + row] += dt * dxr;
            const float qw = warp_sum(leader ? in.x[row] * dxr : 0.0f);
            const int chunk_end = l == q.l1 - 1;
            float pd = 0.0f;
            if (chunk_end) { /* S_l = the state entering the next chunk (or the final one) */
                const float *st = states_of(a);
#pragma unroll
                for (int i = 0; i < PW; i++)
#pragma unroll
                    for (int j = 0; j < NV; j++) {
                        const int64_t n = lane + 32 * j;
                        if (n < N) pd += S[i][j] * st[state_at(a, q, q.nch + 1, q.k + 1, q.p0 + i, n)];
                    }
                pd = warp_sum(pd);
            }
#pragma unroll
            for (int j = 0; j < NV; j++) red[buf][w][lane + 32 * j] = v[j] * dt;
            if (lane == 0) sred[buf][0][w] = qw, sred[buf][1][w] = pd;
            __syncthreads();
            if (tid < N) {
                float sum = 0.0f;
                for (int o = 0; o < SSD_WARPS; o++) sum += red[buf][o][tid];
                s.dBp[(q.sl * L + l) * N + tid] = sum;
            }
            if (tid == 0) {
                float qs = 0.0f, ps = 0.0f;
                for (int o = 0; o < SSD_WARPS; o++) qs += sred[buf][0][o], ps += sred[buf][1][o];
                const float Pt = chunk_end ? ps : Pn + s.cbuf[q.sl * L + l] - dtn * qn;
                const float dl = Pt - dt * qs;
                s.ddtp[q.sl * L + l] = qs + A * dl;
                dAacc += dt * dl;
                Pn = Pt, qn = qs, dtn = dt;
            }
        }
        an = at;
    }
    if (MODE == REV_CARRY) {
#pragma unroll
        for (int i = 0; i < PW; i++)
#pragma unroll
            for (int j = 0; j < NV; j++) S[i][j] *= an;
        store_state<NV, PW>(s.carry, S, a, q, q.nch, q.k, lane);
    } else if (tid == 0) {
        s.dAp[q.sl * q.nch + q.k] = dAacc;
    }
}

/* dB / dC of group g = the sum over its heads and their slices; ddt over the slices. A
 * thread per (row, state of a group): index arithmetic in 32 bits where it fits (a 64-bit
 * division is ~100 instructions, and this kernel is otherwise a stream of loads). */
template <typename I>
__global__ static void ssd_reduce_k(mct_ssd a, int split) {
    const I T = (I)(a.B * a.L), N = (I)a.N, G = (I)a.G, H = (I)a.H, L = (I)a.L, hpg = H / G;
    const I i = (I)blockIdx.x * blockDim.x + threadIdx.x;
    const ssd_scratch s = scratch_of(a, split);
    if (i < T * G * N) {
        const I r = i / (G * N), gn = i - r * (G * N), g = gn / N, n = gn - g * N, b = r / L, l = r - b * L;
        float sb = 0.0f, sc = 0.0f;
        for (I h = g * hpg; h < (g + 1) * hpg; h++)
            for (int sp = 0; sp < split; sp++) {
                const int64_t o = ((((int64_t)b * H + h) * split + sp) * L + l) * N + n;
                sb += s.dBp[o], sc += s.dCp[o];
            }
        a.dB[(int64_t)r * a.bcs + g * N + n] = sb;
        a.dC[(int64_t)r * a.bcs + g * N + n] = sc;
    }
    if (i < T * H) {
        const I r = i / H, h = i - r * H, b = r / L, l = r - b * L;
        float sum = 0.0f;
        for (int sp = 0; sp < split; sp++) sum += s.ddtp[(((int64_t)b * H + h) * split + sp) * L + l];
        a.ddt[(int64_t)r * H + h] = sum;
    }
}
/* dA[h] = the sum over the sequences, slices and chunks: a block per head, in a fixed
 * order (each thread's strided run, then the threads' sums as a tree) */
__global__ static void ssd_reduce_dA_k(mct_ssd a, int split) {
    __shared__ float sh[256];
    const int64_t h = blockIdx.x, nch = (a.L + SSD_Q - 1) / SSD_Q, per = split * nch, n = a.B * per;
    const ssd_scratch s = scratch_of(a, split);
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += 256) {
        const int64_t b = i / per, rest = i % per;
        acc += s.dAp[(b * a.H + h) * per + rest];
    }
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int w = 128; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) a.dA[h] = sh[0];
}

typedef void (*ssd_kernel)(mct_ssd, int);

/* the kernel of a pass for the plan's (NV, PW) */
template <int NV, int PW>
static ssd_kernel pick_pw(int pass) {
    switch (pass) {
    case 0: return ssd_fwd_k<NV, PW, RUN_END>;
    case 1: return ssd_fwd_k<NV, PW, RUN_Y>;
    case 2: return ssd_fwd_k<NV, PW, RUN_DC>;
    case 3: return ssd_rev_k<NV, PW, REV_CARRY>;
    default: return ssd_rev_k<NV, PW, REV_GRAD>;
    }
}
template <int NV>
static ssd_kernel pick_nv(int pw, int pass) {
    switch (pw) {
    case 1: return pick_pw<NV, 1>(pass);
    case 2: return pick_pw<NV, 2>(pass);
    case 4: return pick_pw<NV, 4>(pass);
    case 8: return NV <= 4 ? pick_pw<NV, (NV <= 4 ? 8 : 1)>(pass) : NULL;
    case 16: return NV <= 2 ? pick_pw<NV, (NV <= 2 ? 16 : 1)>(pass) : NULL;
    default: return NV == 1 ? pick_pw<NV, (NV == 1 ? 32 : 1)>(pass) : NULL;
    }
}

static void launch(const mct_ssd *a, const ssd_plan *p, int pass, mcu_stream s) {
    ssd_kernel k = NULL;
    switch (p->nv) {
    case 1: k = pick_nv<1>(p->pw, pass); break;
    case 2: k = pick_nv<2>(p->pw, pass); break;
    case 4: k = pick_nv<4>(p->pw, pass); break;
    default: k = pick_nv<8>(p->pw, pass); break;
    }
    const unsigned grid = (unsigned)(a->B * a->H * p->split * n_chunks(a->L));
    if (k) k<<<grid, 256, 0, s>>>(*a, p->split);
}

static void combine(const mct_ssd *a, float *v, int reverse, mcu_stream s) {
    const int64_t n = a->B * a->H * a->P * a->N;
    ssd_combine_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(*a, v, reverse);
}

/* the tensor-core passes' buffers: the tape's, and the scratch laid out for one slice */
static mct_ssd_tc_bufs tc_bufs(const mct_ssd *a) {
    const ssd_scratch sc = scratch_of(*a, 1);
    const mct_ssd_tc_bufs o = {states_of(*a), dtsum_of(*a), sc.carry, sc.dBp, sc.dCp, sc.ddtp, sc.dAp};
    return o;
}
static void reduce(const mct_ssd *a, int split, mcu_stream s) {
    const int64_t T = a->B * a->L;
    int64_t n = T * a->G * a->N;
    if (T * a->H > n) n = T * a->H;
    if (n < (1ll << 31)) ssd_reduce_k<int32_t><<<(unsigned)((n + 255) / 256), 256, 0, s>>>(*a, split);
    else ssd_reduce_k<int64_t><<<(unsigned)((n + 255) / 256), 256, 0, s>>>(*a, split);
    ssd_reduce_dA_k<<<(unsigned)a->H, 256, 0, s>>>(*a, split);
}

extern "C" void mct_ssd_fwd(const mct_ssd *a, mcu_stream s) {
    if (a->B * a->L <= 0) return;
    if (a->tc) {
        const mct_ssd_tc_bufs o = tc_bufs(a);
        mct_ssd_tc_end(a, &o, s);
        combine(a, states_of(*a), 0, s);
        mct_ssd_tc_y(a, &o, s);
        return;
    }
    const ssd_plan p = plan_of(a->B, a->L, a->H, a->P, a->N);
    launch(a, &p, 0, s);
    combine(a, states_of(*a), 0, s);
    launch(a, &p, 1, s);
}

extern "C" void mct_ssd_bwd(const mct_ssd *a, mcu_stream s) {
    if (a->B * a->L <= 0) return;
    if (a->tc) { /* the scratch of split 1 fits in any plan's (split >= 1) */
        const mct_ssd_tc_bufs o = tc_bufs(a);
        mct_ssd_tc_carry(a, &o, s);
        combine(a, o.carry, 1, s);
        mct_ssd_tc_grad(a, &o, s);
        reduce(a, 1, s);
        return;
    }
    const ssd_plan p = plan_of(a->B, a->L, a->H, a->P, a->N);
    const ssd_scratch sc = scratch_of(*a, p.split);
    launch(a, &p, 3, s);
    combine(a, sc.carry, 1, s);
    launch(a, &p, 2, s);
    launch(a, &p, 4, s);
    reduce(a, p.split, s);
}
