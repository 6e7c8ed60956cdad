/* ssd.cu — the Mamba-2 SSD, per segment, continuing from its state (H, P, N):
 *   s_t = exp(dt_t A_h) s_{t-1} + dt_t x_t ⊗ B_t;  y_t = s_t . C_t
 * Recurrent form: one warp per (segment, head, p), the N states of that row of the head's
 * state spread over the lanes (N / 32 each, up to 8: N <= 256), s . C summed by shuffles.
 * A short segment runs in one piece (one token: the decode step); a long one in chunks of
 * MCU_CHUNK tokens at once, in three passes as in scan.cu (the decay across a chunk is
 * exp(A_h sum dt), one number per head). */
#include "cuda/cuda_ops.h"

template <int SPL, bool END_ONLY>
__device__ static void ssd_piece(const mcu_ssd_args &a, int64_t h, int64_t p, int64_t grp, int lane, int64_t row0,
                                 int32_t t0, int32_t t1, const float *s0, float *s1, float *dtsum) {
    float s[SPL];
    for (int i = 0; i < SPL; i++) {
        const int64_t n = lane + 32 * i;
        s[i] = s0 && n < a.N ? s0[n] : 0.0f;
    }
    const float Ah = a.A[h];
    float dsum = 0.0f;
    for (int32_t t = t0; t < t1; t++) {
        const int64_t r = row0 + t;
        const float dt = a.dt[r * a.dt_stride + h], dA = expf(dt * Ah);
        const float xv = a.x[r * a.x_stride + h * a.P + p];
        const float *B = a.B + r * a.bc_stride + grp * a.N, *C = a.C + r * a.bc_stride + grp * a.N;
        float acc = 0.0f;
        dsum += dt;
        for (int i = 0; i < SPL; i++) {
            const int64_t n = lane + 32 * i;
            if (n < a.N) {
                s[i] = s[i] * dA + dt * xv * B[n];
                if (!END_ONLY) acc += s[i] * C[n];
            }
        }
        if (!END_ONLY) {
            for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
            if (lane == 0) a.y[r * a.y_stride + h * a.P + p] = acc;
        }
    }
    if (s1)
        for (int i = 0; i < SPL; i++) {
            const int64_t n = lane + 32 * i;
            if (n < a.N) s1[n] = s[i];
        }
    if (dtsum && lane == 0 && p == 0) *dtsum = dsum;
}

template <int SPL, bool END_ONLY>
__global__ static void ssd_k(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch) {
    const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= a.H * a.P) return; /* whole warps leave together */
    const int64_t h = warp / a.P, p = warp % a.P, grp = h / (a.H / a.G), PN = a.P * a.N;
    const mcu_seg g = seg[blockIdx.y];
    const int32_t j = (int32_t)blockIdx.z;
    float *S = g.ssm + (h * a.P + p) * a.N;
    if (g.chunk0 < 0) {
        if (END_ONLY || j > 0) return;
        ssd_piece<SPL, false>(a, h, p, grp, lane, g.row0, 0, g.n, S, S, nullptr);
        return;
    }
    const int32_t t0 = j * MCU_CHUNK;
    if (t0 >= g.n) return;
    const int32_t t1 = t0 + MCU_CHUNK < g.n ? t0 + MCU_CHUNK : g.n;
    float *cs = ch.state + (int64_t)(g.chunk0 + j) * a.H * PN + (h * a.P + p) * a.N;
    if (END_ONLY) ssd_piece<SPL, true>(a, h, p, grp, lane, g.row0, t0, t1, nullptr, cs, ch.dtsum + (int64_t)(g.chunk0 + j) * a.H + h);
    else ssd_piece<SPL, false>(a, h, p, grp, lane, g.row0, t0, t1, cs, nullptr, nullptr);
}

/* Pass 2: one thread per state element (h, p, n) of a chunked segment walks its chunks. */
__global__ static void ssd_combine_k(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch) {
    const int64_t HPN = a.H * a.P * a.N;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const mcu_seg g = seg[blockIdx.y];
    if (i >= HPN || g.chunk0 < 0) return;
    const int64_t h = i / (a.P * a.N);
    const float A = a.A[h];
    float s = g.ssm[i];
    const int32_t nch = (g.n + MCU_CHUNK - 1) / MCU_CHUNK;
    for (int32_t j = 0; j < nch; j++) {
        float *cs = ch.state + (int64_t)(g.chunk0 + j) * HPN + i;
        const float end = *cs;
        *cs = s;
        s = expf(A * ch.dtsum[(int64_t)(g.chunk0 + j) * a.H + h]) * s + end;
    }
    g.ssm[i] = s;
}

template <int SPL>
static void run(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s) {
    const unsigned bx = (unsigned)((a->H * a->P * 32 + 255) / 256);
    if (ch->max_chunks_per_seg > 0) {
        ssd_k<SPL, true><<<dim3(bx, (unsigned)n_seg, (unsigned)ch->max_chunks_per_seg), 256, 0, s>>>(*a, seg, *ch);
        ssd_combine_k<<<dim3((unsigned)((a->H * a->P * a->N + 255) / 256), (unsigned)n_seg), 256, 0, s>>>(*a, seg, *ch);
    }
    const unsigned depth = ch->max_chunks_per_seg > 0 ? (unsigned)ch->max_chunks_per_seg : 1;
    ssd_k<SPL, false><<<dim3(bx, (unsigned)n_seg, depth), 256, 0, s>>>(*a, seg, *ch);
}

extern "C" void mcu_ssd(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s) {
    if (n_seg <= 0) return;
    const int64_t spl = (a->N + 31) / 32;
    if (spl <= 1) run<1>(a, seg, n_seg, ch, s);
    else if (spl <= 2) run<2>(a, seg, n_seg, ch, s);
    else if (spl <= 4) run<4>(a, seg, n_seg, ch, s);
    else run<8>(a, seg, n_seg, ch, s);
}
