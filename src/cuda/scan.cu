/* scan.cu — the Mamba-1 selective scan, per segment, continuing from its state:
 *   dt = softplus(dt + dt_bias); s = exp(dt A) s + dt B x; y = (s . C + D x) silu(z)
 *
 * Long segments (prefill) run in chunks of MCU_CHUNK tokens at once (cuda_ops.h): pass 1
 * scans every chunk from a zero state, keeping its end state and sum of dt; pass 2 walks
 * the chunks in order, turning each end state into the state entering the next
 * (exp(A sum dt) is the decay across a chunk); pass 3 scans every chunk again from its
 * entering state, writing y. Twice the exponentials, T / MCU_CHUNK times the parallelism.
 *
 * Where that gives enough threads (chunked segments, many short segments) one thread
 * owns one channel with all its N <= 16 states in registers (the released checkpoints
 * have 16), so dt's softplus, x, z and the gate are computed once per channel and token
 * (pass 1 leaves the softplus in dt's place for pass 3),
 * and the B and C rows (the same for every channel) are read from shared memory. Otherwise (a few short segments, N > 16) a
 * group of LPC lanes (a power of two up to 32) per channel each hold SPL of the N states,
 * s . C summed across the group by shuffles: more threads for few tokens.
 *
 * A decode micro-batch (every segment one token; mcu_scan_args.step) runs the step kernel
 * instead: it only reads and writes each state once, so it is shaped for that traffic. */
#include <cuda_bf16.h>

#include "cuda/cuda_ops.h"
#include "cuda/fastmath.cuh"

/* dt before its softplus, of row r and channel c: given, or (dt_proj fused in) the dot of
 * the row's dt_rank inputs with dt_proj's row c, split over the channel's lpc lanes. */
__device__ static inline float dt_raw(const mcu_scan_args &a, int64_t r, int64_t c, int lane, int lpc) {
    if (!a.dt_w) return __ldg(a.dt + r * a.dt_stride + c);
    const int64_t Rk = a.dt_rank;
    const float *in = a.dt_in + r * a.dt_in_stride;
    float v = 0.0f;
    if (a.dt_w_bf16) {
        const __nv_bfloat16 *w = (const __nv_bfloat16 *)a.dt_w + c * Rk;
        for (int64_t k = lane; k < Rk; k += lpc) v += __bfloat162float(w[k]) * __ldg(in + k);
    } else {
        const float *w = (const float *)a.dt_w + c * Rk;
        for (int64_t k = lane; k < Rk; k += lpc) v += __ldg(w + k) * __ldg(in + k);
    }
    for (int o = lpc / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o, lpc);
    return v;
}

/* y of row r and channel c (and its bf16 copy when asked). */
__device__ static inline void put_y(const mcu_scan_args &a, int64_t r, int64_t c, float v) {
    a.y[r * a.y_stride + c] = v;
    if (a.y16) ((__nv_bfloat16 *)a.y16)[r * a.E + c] = __float2bfloat16_rn(v);
}

/* Pass 1 (end_only) or the output pass of a piece of a segment: tokens [t0, t1) from state
 * s0 (NULL: zero), final state to s1 (may be NULL), dt sum to dtsum (may be NULL). */
template <int SPL, bool END_ONLY>
__device__ static void scan_piece(const mcu_scan_args &a, int64_t c, bool live, int lane, int lpc, int64_t row0,
                                  int32_t t0, int32_t t1, const float *s0, float *s1, float *dtsum) {
    float s[SPL], A[SPL];
    for (int i = 0; i < SPL; i++) {
        const int64_t n = lane + (int64_t)i * lpc;
        s[i] = s0 && live && n < a.N ? s0[c * a.N + n] : 0.0f;
        A[i] = n < a.N ? a.A[c * a.N + n] * MCU_LOG2E : 0.0f;
    }
    const float Dc = a.D[c], bias = a.dt_bias[c];
    /* nothing the loop writes is read by it: the loads of later steps may run ahead */
    const float *__restrict__ xp = a.x, *__restrict__ zp = a.z;
    const float *__restrict__ Bp = a.B, *__restrict__ Cp = a.C;
    float dsum = 0.0f;
#pragma unroll 4
    for (int32_t t = t0; t < t1; t++) {
        const int64_t r = row0 + t;
        const float dt = mcu_softplus(dt_raw(a, r, c, lane, lpc) + bias);
        const float xv = __ldg(xp + r * a.x_stride + c);
        const float *B = Bp + r * a.bc_stride, *C = Cp + r * a.bc_stride;
        float acc = 0.0f;
        dsum += dt;
        for (int i = 0; i < SPL; i++) {
            const int64_t n = lane + (int64_t)i * lpc;
            if (n < a.N) {
                s[i] = mcu_ex2(dt * A[i]) * s[i] + dt * __ldg(B + n) * xv;
                if (!END_ONLY) acc += s[i] * __ldg(C + n);
            }
        }
        if (!END_ONLY) {
            for (int o = lpc / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o, lpc);
            if (live && lane == 0) put_y(a, r, c, (acc + Dc * xv) * mcu_silu(__ldg(zp + r * a.z_stride + c)));
        }
    }
    if (!live) return;
    if (s1)
        for (int i = 0; i < SPL; i++) {
            const int64_t n = lane + (int64_t)i * lpc;
            if (n < a.N) s1[c * a.N + n] = s[i];
        }
    if (dtsum && lane == 0) dtsum[c] = dsum;
}

/* grid (channel blocks, segments, chunks). END_ONLY: pass 1 over chunked segments; else a
 * whole short segment (chunk 0) or the output pass over chunk z of a long one. */
/* Segments blockIdx.y, + gridDim.y, ...: a block takes several one-token segments in decode
 * (their loads overlap instead of each block waiting on one). */
template <int SPL, bool END_ONLY>
__global__ static void scan_k(mcu_scan_args a, const mcu_seg *seg, int64_t n_seg, int lpc, mcu_chunks ch) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t c0 = tid / lpc;
    const int lane = (int)(tid % lpc);
    const bool live = c0 < a.E; /* every lane takes part in the shuffles */
    const int64_t c = live ? c0 : a.E - 1;
    const int32_t j = (int32_t)blockIdx.z;
    for (int64_t si = blockIdx.y; si < n_seg; si += gridDim.y) {
        const mcu_seg g = seg[si];
        if (g.chunk0 < 0) {
            if (!END_ONLY && j == 0) scan_piece<SPL, false>(a, c, live, lane, lpc, g.row0, 0, g.n, g.ssm, g.ssm, nullptr);
            continue;
        }
        const int32_t t0 = j * MCU_CHUNK;
        if (t0 >= g.n) continue;
        const int32_t t1 = t0 + MCU_CHUNK < g.n ? t0 + MCU_CHUNK : g.n;
        float *cs = ch.state + (int64_t)(g.chunk0 + j) * a.E * a.N;
        if (END_ONLY)
            scan_piece<SPL, true>(a, c, live, lane, lpc, g.row0, t0, t1, nullptr, cs, ch.dtsum + (int64_t)(g.chunk0 + j) * a.E);
        else
            scan_piece<SPL, false>(a, c, live, lane, lpc, g.row0, t0, t1, cs, nullptr, nullptr);
    }
}

/* One thread per channel, NS >= N states in registers (those past N stay zero: their A,
 * B and C are zero); the block's rows of B and C in shared memory. Block (x, y, z): 128
 * channels of segment y; a short segment whole (z = 0, from and to its state), or chunk z
 * of a chunked one: END_ONLY (pass 1) from zero to the chunk's end state and dt sum, else
 * (pass 3) from the chunk's entering state, writing y. */
#define CHUNK_THREADS 128

/* The (channels, N) rows of the block's channels, contiguous in global memory, moved through
 * shared memory (rows of NS + 1 floats: conflict-free by channel) so that the global side
 * is coalesced: each thread's own N floats are 64 bytes apart from its neighbour's. */
template <int NS>
__device__ static void rows_in(float (*sh)[NS + 1], const float *g, int64_t nc, int64_t N) {
    const int n = (int)N, total = (int)(nc * N); /* at most CHUNK_THREADS * 32 */
#pragma unroll 4
    for (int i = threadIdx.x; i < total; i += CHUNK_THREADS) sh[i / n][i % n] = g[i];
}
template <int NS>
__device__ static void rows_out(float *g, float (*sh)[NS + 1], int64_t nc, int64_t N) {
    const int n = (int)N, total = (int)(nc * N);
    for (int i = threadIdx.x; i < total; i += CHUNK_THREADS) g[i] = sh[i / n][i % n];
}

template <int NS, bool END_ONLY>
__global__ static void __launch_bounds__(CHUNK_THREADS) scan_chunk_k(mcu_scan_args a, const mcu_seg *seg, mcu_chunks ch) {
    __shared__ __align__(16) float Bs[MCU_CHUNK][NS];
    __shared__ __align__(16) float Cs[END_ONLY ? 1 : MCU_CHUNK][NS];
    __shared__ float rows[CHUNK_THREADS][NS + 1];                   /* A; the state out of pass 1 */
    __shared__ float srows[END_ONLY ? 1 : CHUNK_THREADS][NS + 1];  /* the state in and out */
    const mcu_seg g = seg[blockIdx.y];
    const int32_t j = (int32_t)blockIdx.z, t0 = j * MCU_CHUNK;
    const bool whole = g.chunk0 < 0; /* then g.n <= MCU_CHUNK */
    if (whole ? END_ONLY || j > 0 : t0 >= g.n) return; /* the whole block leaves */
    const int l = g.n - t0 < MCU_CHUNK ? g.n - t0 : MCU_CHUNK;
    const int64_t r0 = (int64_t)g.row0 + t0, N = a.N, c0 = (int64_t)blockIdx.x * CHUNK_THREADS;
    const int64_t nc = a.E - c0 < CHUNK_THREADS ? a.E - c0 : CHUNK_THREADS, c = c0 + threadIdx.x;
    const bool live = threadIdx.x < nc;
    for (int i = threadIdx.x; i < l * NS; i += CHUNK_THREADS) {
        const int t = i / NS, n = i % NS;
        Bs[t][n] = n < N ? a.B[(r0 + t) * a.bc_stride + n] : 0.0f;
        if (!END_ONLY) Cs[t][n] = n < N ? a.C[(r0 + t) * a.bc_stride + n] : 0.0f;
    }
    float *st = whole ? g.ssm + c0 * N : ch.state + (int64_t)(g.chunk0 + j) * a.E * N + c0 * N; /* the block's rows */
    float s[NS], A2[NS];
    rows_in<NS>(rows, a.A + c0 * N, nc, N);
    if (!END_ONLY) rows_in<NS>(srows, st, nc, N);
    __syncthreads();
#pragma unroll
    for (int n = 0; n < NS; n++) {
        A2[n] = live && n < N ? rows[threadIdx.x][n] * MCU_LOG2E : 0.0f;
        s[n] = !END_ONLY && live && n < N ? srows[threadIdx.x][n] : 0.0f;
    }
    float dsum = 0.0f;
    if (live) {
        const float Dc = a.D[c], bias = a.dt_bias[c];
        /* pass 1 leaves dt's softplus in place for pass 3 (one softplus per token and channel) */
        float *__restrict__ dtp = a.dt + r0 * a.dt_stride + c;
        const float *__restrict__ xp = a.x + r0 * a.x_stride + c, *__restrict__ zp = a.z + r0 * a.z_stride + c;
#pragma unroll 2
        for (int t = 0; t < l; t++) {
            float dt;
            if (END_ONLY || whole) {
                dt = mcu_softplus(dtp[t * a.dt_stride] + bias);
                if (END_ONLY) dtp[t * a.dt_stride] = dt;
            } else {
                dt = dtp[t * a.dt_stride];
            }
            const float xv = __ldg(xp + t * a.x_stride);
            const float dx = dt * xv;
            dsum += dt;
            float acc = 0.0f;
#pragma unroll
            for (int n = 0; n < NS; n++) {
                s[n] = mcu_ex2(dt * A2[n]) * s[n] + dx * Bs[t][n];
                if (!END_ONLY) acc += s[n] * Cs[t][n];
            }
            if (!END_ONLY) put_y(a, r0 + t, c, (acc + Dc * xv) * mcu_silu(__ldg(zp + t * a.z_stride)));
        }
    }
    if (END_ONLY || whole) {
        float(*out)[NS + 1] = END_ONLY ? rows : srows;
        __syncthreads(); /* every thread is done reading them */
#pragma unroll
        for (int n = 0; n < NS; n++)
            if (n < N) out[threadIdx.x][n] = s[n];
        __syncthreads();
        rows_out<NS>(st, out, nc, N);
    }
    if (END_ONLY && live) ch.dtsum[(int64_t)(g.chunk0 + j) * a.E + c] = dsum;
}

/* Pass 2: one thread per state element of a chunked segment walks its chunks in order;
 * the end states and dt sums of 8 chunks are loaded before any is used (they do not
 * depend on the walk), so the walk waits on memory once per 8 chunks, not per chunk. */
#define COMBINE_AHEAD 8
__global__ static void scan_combine_k(mcu_scan_args a, const mcu_seg *seg, mcu_chunks ch) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; /* c * N + n */
    const mcu_seg g = seg[blockIdx.y];
    if (i >= a.E * a.N || g.chunk0 < 0) return;
    const int64_t c = i / a.N, EN = a.E * a.N;
    const float A = a.A[i] * MCU_LOG2E;
    float s = g.ssm[i];
    const int32_t nch = (g.n + MCU_CHUNK - 1) / MCU_CHUNK;
    float *cs = ch.state + (int64_t)g.chunk0 * EN + i;
    const float *ds = ch.dtsum + (int64_t)g.chunk0 * a.E + c;
    for (int32_t j0 = 0; j0 < nch; j0 += COMBINE_AHEAD) {
        float end[COMBINE_AHEAD], dsum[COMBINE_AHEAD];
#pragma unroll
        for (int k = 0; k < COMBINE_AHEAD; k++)
            if (j0 + k < nch) end[k] = cs[(int64_t)(j0 + k) * EN], dsum[k] = ds[(int64_t)(j0 + k) * a.E];
#pragma unroll
        for (int k = 0; k < COMBINE_AHEAD; k++)
            if (j0 + k < nch) {
                cs[(int64_t)(j0 + k) * EN] = s;
                s = mcu_ex2(A * dsum[k]) * s + end[k];
            }
    }
    g.ssm[i] = s;
}

/* The decode step (every segment one token): LPC lanes per (segment, channel), each
 * holding 4 consecutive states, so that a warp's state loads and stores are whole 16-byte
 * pieces of consecutive memory (the state is read and written once: this kernel is bound
 * by that traffic). Lanes past N / 4 hold zeros. VEC: 16-byte loads (N a multiple of 4 and
 * the pointers aligned, checked per thread; else 4 scalar loads). */
__device__ static inline void load4(float v[4], const float *p, int n, int N, bool vec) {
    if (vec && n + 4 <= N) {
        const float4 q = *(const float4 *)p;
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
        return;
    }
    for (int i = 0; i < 4; i++) v[i] = n + i < N ? p[i] : 0.0f;
}
__device__ static inline bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

#define STEP_THREADS 256
template <int LPC>
__global__ static void __launch_bounds__(STEP_THREADS) scan_step_k(mcu_scan_args a, const mcu_seg *seg, int64_t n_seg) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, per_seg = a.E * LPC;
    const int64_t si0 = tid / per_seg;
    const bool live = si0 < n_seg; /* every lane takes part in the shuffles */
    const int64_t si = live ? si0 : n_seg - 1, rest = tid % per_seg, c = rest / LPC;
    const int lane = (int)(rest % LPC), n0 = 4 * lane, N = (int)a.N;
    const mcu_seg g = seg[si];
    const int64_t r = g.row0;
    float *st = g.ssm + c * a.N + n0;
    const float *Ap = a.A + c * a.N + n0, *Bp = a.B + r * a.bc_stride + n0, *Cp = a.C + r * a.bc_stride + n0;
    const bool vec = aligned16(st) && aligned16(Ap) && aligned16(Bp) && aligned16(Cp);
    float s[4], A[4], B[4], C[4];
    load4(s, st, n0, N, vec);
    load4(A, Ap, n0, N, vec);
    load4(B, Bp, n0, N, vec);
    load4(C, Cp, n0, N, vec);
    const float xv = __ldg(a.x + r * a.x_stride + c), zv = __ldg(a.z + r * a.z_stride + c);
    const float dt = mcu_softplus(dt_raw(a, r, c, lane, LPC) + a.dt_bias[c]), dx = dt * xv;
    float acc = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        s[i] = mcu_ex2(dt * A[i] * MCU_LOG2E) * s[i] + dx * B[i];
        acc += s[i] * C[i];
    }
    for (int o = LPC / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o, LPC);
    if (!live || n0 >= N) return;
    if (vec && n0 + 4 <= N) {
        *(float4 *)st = make_float4(s[0], s[1], s[2], s[3]);
    } else {
        for (int i = 0; i < 4; i++)
            if (n0 + i < N) st[i] = s[i];
    }
    if (lane == 0) put_y(a, r, c, (acc + a.D[c] * xv) * mcu_silu(zv));
}

template <int LPC>
static void run_step(const mcu_scan_args *a, const mcu_seg *seg, int64_t n_seg, mcu_stream s) {
    const int64_t threads = n_seg * a->E * LPC;
    scan_step_k<LPC><<<(unsigned)((threads + STEP_THREADS - 1) / STEP_THREADS), STEP_THREADS, 0, s>>>(*a, seg, n_seg);
}

/* Lanes per channel (N > 32, or few channels): chunked segments' passes 1 and 2 when
 * present, then one launch for the short segments whole and the chunks' outputs. */
template <int SPL>
static void run(const mcu_scan_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, int lpc, mcu_stream s) {
    const int64_t threads = a->E * lpc;
    const unsigned bx = (unsigned)((threads + 127) / 128);
    if (ch->max_chunks_per_seg > 0) {
        scan_k<SPL, true><<<dim3(bx, (unsigned)n_seg, (unsigned)ch->max_chunks_per_seg), 128, 0, s>>>(*a, seg, n_seg, lpc, *ch);
        scan_combine_k<<<dim3((unsigned)((a->E * a->N + 127) / 128), (unsigned)n_seg), 128, 0, s>>>(*a, seg, *ch);
    }
    const unsigned depth = ch->max_chunks_per_seg > 0 ? (unsigned)ch->max_chunks_per_seg : 1;
    /* no chunks (decode, short pieces): up to 8 segments a block */
    const unsigned gy = depth == 1 && n_seg > 16 ? (unsigned)((n_seg + 7) / 8) : (unsigned)n_seg;
    scan_k<SPL, false><<<dim3(bx, gy, depth), 128, 0, s>>>(*a, seg, n_seg, lpc, *ch);
}

/* Every segment with one thread per channel: the three passes over chunked segments,
 * short ones whole in the last. */
template <int NS>
static void run_per_channel(const mcu_scan_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch,
                            mcu_stream s) {
    const unsigned bx = (unsigned)((a->E + CHUNK_THREADS - 1) / CHUNK_THREADS);
    const unsigned depth = ch->max_chunks_per_seg > 0 ? (unsigned)ch->max_chunks_per_seg : 1;
    if (ch->max_chunks_per_seg > 0) {
        scan_chunk_k<NS, true><<<dim3(bx, (unsigned)n_seg, depth), CHUNK_THREADS, 0, s>>>(*a, seg, *ch);
        scan_combine_k<<<dim3((unsigned)((a->E * a->N + 127) / 128), (unsigned)n_seg), 128, 0, s>>>(*a, seg, *ch);
    }
    scan_chunk_k<NS, false><<<dim3(bx, (unsigned)n_seg, depth), CHUNK_THREADS, 0, s>>>(*a, seg, *ch);
}

/* One thread per channel wherever it gives enough threads to fill the GPU (long segments,
 * many sequences); lanes per channel for the few channels of a small decode batch, for
 * N > 16, and with dt_proj fused in. */
#define PER_CHANNEL_MIN_THREADS 65536
extern "C" void mcu_selective_scan(const mcu_scan_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch,
                                   mcu_stream s) {
    if (n_seg <= 0) return;
    if (a->step && ch->max_chunks_per_seg == 0 && a->N <= 4 * 32) {
        if (a->N <= 4) run_step<1>(a, seg, n_seg, s);
        else if (a->N <= 8) run_step<2>(a, seg, n_seg, s);
        else if (a->N <= 16) run_step<4>(a, seg, n_seg, s);
        else if (a->N <= 32) run_step<8>(a, seg, n_seg, s);
        else if (a->N <= 64) run_step<16>(a, seg, n_seg, s);
        else run_step<32>(a, seg, n_seg, s);
        return;
    }
    if (a->N <= 16 && !a->dt_w && (ch->max_chunks_per_seg > 0 || n_seg * a->E >= PER_CHANNEL_MIN_THREADS)) {
        if (a->N <= 4) run_per_channel<4>(a, seg, n_seg, ch, s);
        else if (a->N <= 8) run_per_channel<8>(a, seg, n_seg, ch, s);
        else run_per_channel<16>(a, seg, n_seg, ch, s);
        return;
    }
    int lpc = 1;
    while (lpc < a->N && lpc < 32) lpc *= 2;
    const int64_t spl = (a->N + lpc - 1) / lpc;
    if (spl <= 1) run<1>(a, seg, n_seg, ch, lpc, s);
    else if (spl <= 2) run<2>(a, seg, n_seg, ch, lpc, s);
    else if (spl <= 4) run<4>(a, seg, n_seg, ch, lpc, s);
    else run<8>(a, seg, n_seg, ch, lpc, s);
}
