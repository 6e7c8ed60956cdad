/* scan.cu — the Mamba-1 selective scan, per segment, continuing from its state:
 *   dt = softplus(dt + dt_bias); s = exp(dt A) s + dt B x; y = (s . C + D x) silu(z)
 * A group of LPC lanes (a power of two up to 32) per channel, each lane holding SPL of
 * the channel's N states in registers; s . C is summed across the group by shuffles.
 * The lanes of one channel read the same x, dt, z and consecutive B, C: every access is
 * a broadcast or coalesced.
 *
 * A short segment runs in one piece (one token: the decode step). A long one runs in
 * chunks of MCU_CHUNK tokens at once (cuda_ops.h): pass 1 scans every chunk from a zero
 * state, keeping its end state and sum of dt; pass 2 walks the chunks in order, turning
 * each end state into the state entering the next (exp(A sum dt) is the decay across a
 * chunk); pass 3 scans every chunk again from its entering state, writing y. Twice the
 * arithmetic, T / MCU_CHUNK times the parallelism. */
#include "cuda/cuda_ops.h"

#define LOG2E 1.4426950408889634f

/* exp(x) as exp2(x log2 e): one special-function op (~2 ulp) instead of expf's range
 * reduction; the scan runs T * E * N of them. A is scaled by log2 e once per thread. */
__device__ static inline float silu(float x) { return x / (1.0f + exp2f(-x * LOG2E)); }
__device__ static inline float softplus(float x) {
    return x > 20.0f ? x : x < -15.0f ? exp2f(x * LOG2E) : __logf(1.0f + exp2f(x * LOG2E));
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
        A[i] = n < a.N ? a.A[c * a.N + n] * LOG2E : 0.0f;
    }
    const float Dc = a.D[c], bias = a.dt_bias[c];
    /* nothing the loop writes is read by it: the loads of later steps may run ahead */
    const float *__restrict__ dtp = a.dt, *__restrict__ xp = a.x, *__restrict__ zp = a.z;
    const float *__restrict__ Bp = a.B, *__restrict__ Cp = a.C;
    float *__restrict__ yp = a.y;
    float dsum = 0.0f;
#pragma unroll 4
    for (int32_t t = t0; t < t1; t++) {
        const int64_t r = row0 + t;
        const float dt = softplus(__ldg(dtp + r * a.dt_stride + c) + bias);
        const float xv = __ldg(xp + r * a.x_stride + c);
        const float *B = Bp + r * a.bc_stride, *C = Cp + r * a.bc_stride;
        float acc = 0.0f;
        dsum += dt;
        for (int i = 0; i < SPL; i++) {
            const int64_t n = lane + (int64_t)i * lpc;
            if (n < a.N) {
                s[i] = exp2f(dt * A[i]) * s[i] + dt * __ldg(B + n) * xv;
                if (!END_ONLY) acc += s[i] * __ldg(C + n);
            }
        }
        if (!END_ONLY) {
            for (int o = lpc / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o, lpc);
            if (live && lane == 0) yp[r * a.y_stride + c] = (acc + Dc * xv) * silu(__ldg(zp + r * a.z_stride + c));
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

/* Pass 2: one thread per state element of a chunked segment walks its chunks in order. */
__global__ static void scan_combine_k(mcu_scan_args a, const mcu_seg *seg, mcu_chunks ch) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; /* c * N + n */
    const mcu_seg g = seg[blockIdx.y];
    if (i >= a.E * a.N || g.chunk0 < 0) return;
    const int64_t c = i / a.N, EN = a.E * a.N;
    const float A = a.A[i];
    float s = g.ssm[i];
    const int32_t nch = (g.n + MCU_CHUNK - 1) / MCU_CHUNK;
    for (int32_t j = 0; j < nch; j++) {
        float *cs = ch.state + (int64_t)(g.chunk0 + j) * EN + i;
        const float end = *cs;
        *cs = s;
        s = exp2f(A * LOG2E * ch.dtsum[(int64_t)(g.chunk0 + j) * a.E + c]) * s + end;
    }
    g.ssm[i] = s;
}

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

extern "C" void mcu_selective_scan(const mcu_scan_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch,
                                   mcu_stream s) {
    if (n_seg <= 0) return;
    int lpc = 1;
    while (lpc < a->N && lpc < 32) lpc *= 2;
    const int64_t spl = (a->N + lpc - 1) / lpc;
    if (spl <= 1) run<1>(a, seg, n_seg, ch, lpc, s);
    else if (spl <= 2) run<2>(a, seg, n_seg, ch, lpc, s);
    else if (spl <= 4) run<4>(a, seg, n_seg, ch, lpc, s);
    else run<8>(a, seg, n_seg, ch, lpc, s);
}
