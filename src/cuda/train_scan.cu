/* train_scan.cu — the Mamba-1 selective scan of training (train_ops.h): forward from a zero
 * state, and its backward with the states recomputed rather than stored.
 *
 * One thread per (sequence, channel), its N <= 16 states in registers; a warp is 32
 * consecutive channels of one sequence. The backward runs the sequence forward once
 * (keeping the state every SCAN_CHUNK steps, and dC), then walks the chunks from the last:
 * each chunk's states are recomputed into the thread's local memory and the chunk is run
 * in reverse time. The per-channel contributions to dB and dC (shared by all channels)
 * are summed over the warp by a reduce-scatter (16 shuffles for 16 values) into one
 * partial per warp and step; a second kernel adds the warps' partials in order. */
#include <math.h>

#include "cuda/train_ops.h"

#define SCAN_NMAX 16
#define SCAN_CHUNK 16

static int64_t n_chunks(int64_t L) { return (L + SCAN_CHUNK - 1) / SCAN_CHUNK; }

extern "C" int mct_scan_supported(int64_t E, int64_t N) { return E % 32 == 0 && N >= 1 && N <= SCAN_NMAX; }

/* scratch: checkpoints (B, chunks, N, E); dB and dC warp partials (B, E / 32, L, N) each;
 * dA (B, E, N); dD (B, E) */
extern "C" int64_t mct_scan_scratch(int64_t B, int64_t L, int64_t E, int64_t N) {
    return B * n_chunks(L) * N * E + 2 * B * (E / 32) * L * N + B * E * N + B * E;
}

__global__ static void scan_fwd_k(mct_scan a) {
    const int64_t e = (int64_t)blockIdx.x * 32 + threadIdx.x, b = blockIdx.y, E = a.E, N = a.N;
    float Ae[SCAN_NMAX], h[SCAN_NMAX];
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) Ae[n] = n < N ? a.A[e * N + n] : 0.0f, h[n] = 0.0f;
    const float Dv = a.D[e];
    for (int64_t l = 0; l < a.L; l++) {
        const int64_t r = b * a.L + l;
        const float d = a.delta[r * E + e], xv = a.x[r * a.xs + e];
        const float *Bp = a.Bm + r * a.bcs, *Cp = a.Cm + r * a.bcs;
        float y = 0.0f;
#pragma unroll
        for (int n = 0; n < SCAN_NMAX; n++)
            if (n < N) {
                h[n] = expf(d * Ae[n]) * h[n] + d * Bp[n] * xv;
                y += h[n] * Cp[n];
            }
        a.ys[r * E + e] = y + Dv * xv;
    }
}

/* v[0..15] summed over the warp: lane ends with the sum for n = rs_index(lane) in v[0]
 * (lanes 2k and 2k + 1 hold the same n). */
__device__ static inline float reduce_scatter16(float v[SCAN_NMAX]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int half = 8, bit = 16; half >= 1; half >>= 1, bit >>= 1) {
        const int upper = (lane & bit) != 0;
#pragma unroll
        for (int i = 0; i < half; i++) {
            const float send = upper ? v[i] : v[i + half], keep = upper ? v[i + half] : v[i];
            v[i] = keep + __shfl_xor_sync(0xffffffffu, send, bit);
        }
    }
    return v[0] + __shfl_xor_sync(0xffffffffu, v[0], 1);
}
__device__ static inline int rs_index(int lane) {
    return ((lane >> 4) & 1) * 8 + ((lane >> 3) & 1) * 4 + ((lane >> 2) & 1) * 2 + ((lane >> 1) & 1);
}

struct scan_scratch {
    float *ckpt, *dBp, *dCp, *dA, *dD;
};
__host__ __device__ static scan_scratch scratch_of(const mct_scan &a) {
    scan_scratch s;
    const int64_t nch = (a.L + SCAN_CHUNK - 1) / SCAN_CHUNK, part = a.B * (a.E / 32) * a.L * a.N;
    s.ckpt = a.scratch;
    s.dBp = s.ckpt + a.B * nch * a.N * a.E;
    s.dCp = s.dBp + part;
    s.dA = s.dCp + part;
    s.dD = s.dA + a.B * a.E * a.N;
    return s;
}

__global__ static void scan_bwd_k(mct_scan a) {
    const int lane = threadIdx.x & 31;
    const int64_t e = (int64_t)blockIdx.x * 32 + lane, w = blockIdx.x, b = blockIdx.y, E = a.E, N = a.N, L = a.L;
    const int64_t nw = E / 32, nch = (L + SCAN_CHUNK - 1) / SCAN_CHUNK;
    const scan_scratch s = scratch_of(a);
    const int rn = rs_index(lane);
    const int writer = (lane & 1) == 0 && rn < N;
    float Ae[SCAN_NMAX], h[SCAN_NMAX], v[SCAN_NMAX];
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) Ae[n] = n < N ? a.A[e * N + n] : 0.0f, h[n] = 0.0f;
    /* forward: checkpoints at each chunk's end, dC_t = h_t dy_t summed over channels */
    for (int64_t l = 0; l < L; l++) {
        const int64_t r = b * L + l;
        const float d = a.delta[r * E + e], xv = a.x[r * a.xs + e], dy = a.dys[r * E + e];
        const float *Bp = a.Bm + r * a.bcs;
#pragma unroll
        for (int n = 0; n < SCAN_NMAX; n++) {
            if (n < N) h[n] = expf(d * Ae[n]) * h[n] + d * Bp[n] * xv;
            v[n] = n < N ? dy * h[n] : 0.0f;
        }
        const float dc = reduce_scatter16(v);
        if (writer) s.dCp[((b * nw + w) * L + l) * N + rn] = dc;
        if (l % SCAN_CHUNK == SCAN_CHUNK - 1 || l == L - 1) {
            const int64_t k = l / SCAN_CHUNK;
#pragma unroll
            for (int n = 0; n < SCAN_NMAX; n++)
                if (n < N) s.ckpt[((b * nch + k) * N + n) * E + e] = h[n];
        }
    }
    /* reverse, a chunk at a time */
    float hl[(SCAN_CHUNK + 1) * SCAN_NMAX]; /* the chunk's entering state, then its states */
    float g[SCAN_NMAX], dA[SCAN_NMAX];
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++) g[n] = 0.0f, dA[n] = 0.0f;
    float dD = 0.0f;
    const float Dv = a.D[e];
    for (int64_t k = nch - 1; k >= 0; k--) {
        const int64_t l0 = k * SCAN_CHUNK, l1 = l0 + SCAN_CHUNK < L ? l0 + SCAN_CHUNK : L;
#pragma unroll
        for (int n = 0; n < SCAN_NMAX; n++) hl[n] = k > 0 && n < N ? s.ckpt[((b * nch + k - 1) * N + n) * E + e] : 0.0f;
        for (int64_t l = l0; l < l1; l++) {
            const int64_t r = b * L + l, j = l - l0;
            const float d = a.delta[r * E + e], xv = a.x[r * a.xs + e];
            const float *Bp = a.Bm + r * a.bcs;
#pragma unroll
            for (int n = 0; n < SCAN_NMAX; n++)
                hl[(j + 1) * SCAN_NMAX + n] = n < N ? expf(d * Ae[n]) * hl[j * SCAN_NMAX + n] + d * Bp[n] * xv : 0.0f;
        }
        for (int64_t l = l1 - 1; l >= l0; l--) {
            const int64_t r = b * L + l, j = l - l0;
            const float d = a.delta[r * E + e], xv = a.x[r * a.xs + e], dy = a.dys[r * E + e];
            const float *Bp = a.Bm + r * a.bcs, *Cp = a.Cm + r * a.bcs;
            float dd = 0.0f, dx = dy * Dv;
            dD += dy * xv;
#pragma unroll
            for (int n = 0; n < SCAN_NMAX; n++) {
                if (n < N) {
                    const float gn = g[n] + dy * Cp[n];
                    const float at = expf(d * Ae[n]);
                    const float da = l > 0 ? gn * hl[j * SCAN_NMAX + n] : 0.0f;
                    dd += da * at * Ae[n] + gn * Bp[n] * xv;
                    dA[n] += da * at * d;
                    v[n] = gn * d * xv;
                    dx += gn * d * Bp[n];
                    g[n] = gn * at;
                } else {
                    v[n] = 0.0f;
                }
            }
            a.dx[r * E + e] = dx;
            a.ddelta[r * E + e] = dd;
            const float db = reduce_scatter16(v);
            if (writer) s.dBp[((b * nw + w) * L + l) * N + rn] = db;
        }
    }
#pragma unroll
    for (int n = 0; n < SCAN_NMAX; n++)
        if (n < N) s.dA[(b * E + e) * N + n] = dA[n];
    s.dD[b * E + e] = dD;
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

extern "C" void mct_scan_fwd(const mct_scan *a, mcu_stream s) {
    if (a->B * a->L <= 0) return;
    scan_fwd_k<<<dim3((unsigned)(a->E / 32), (unsigned)a->B), 32, 0, s>>>(*a);
}

extern "C" void mct_scan_bwd(const mct_scan *a, mcu_stream s) {
    const int64_t T = a->B * a->L;
    if (T <= 0) return;
    scan_bwd_k<<<dim3((unsigned)(a->E / 32), (unsigned)a->B), 32, 0, s>>>(*a);
    scan_bc_reduce_k<<<(unsigned)((T * a->N + 255) / 256), 256, 0, s>>>(*a);
    const scan_scratch sc = scratch_of(*a);
    mct_sum_parts(a->dA, sc.dA, a->B, a->E * a->N, 0, s);
    mct_sum_parts(a->dD, sc.dD, a->B, a->E, 0, s);
}
