/* ssd.cu — the Mamba-2 SSD, per segment, continuing from its state (H, P, N):
 *   s_t = exp(dt_t A_h) s_{t-1} + dt_t x_t ⊗ B_t;  y_t = s_t . C_t
 * Short segments (the decode step, short pieces) run whole in the recurrent form: a warp
 * per few rows (h, p) of a head's state, the N states of a row spread over the lanes
 * (N / 32 each, up to 8: N <= 256), s . C summed by shuffles. Long ones run in chunks of
 * MCU_CHUNK tokens at once, in three passes as in scan.cu (the decay across a chunk is
 * exp(A_h sum dt), one number per head): the chunks as matrix products, below in float32
 * or on tensor cores in ssd_tc.cu (precision bf16), or where P suits neither in the
 * recurrent form chunk by chunk. */
#include "cuda/cuda_ops.h"
#include "cuda/fastmath.cuh"

#include <cuda_runtime.h>


template <int SPL, bool END_ONLY>
__device__ static void ssd_piece(const mcu_ssd_args &a, int64_t h, int64_t p, int64_t grp, int lane, int64_t row0,
                                 int32_t t0, int32_t t1, const float *s0, float *s1, float *dtsum) {
    float s[SPL];
    for (int i = 0; i < SPL; i++) {
        const int64_t n = lane + 32 * i;
        s[i] = s0 && n < a.N ? s0[n] : 0.0f;
    }
    const float Ah = a.A[h];
    const float *__restrict__ dtp = a.dt, *__restrict__ xp = a.x, *__restrict__ Bp = a.B, *__restrict__ Cp = a.C;
    float dsum = 0.0f;
#pragma unroll 4
    for (int32_t t = t0; t < t1; t++) {
        const int64_t r = row0 + t;
        const float dt = __ldg(dtp + r * a.dt_stride + h), dA = mcu_exp(dt * Ah);
        const float xv = __ldg(xp + r * a.x_stride + h * a.P + p);
        const float *B = Bp + r * a.bc_stride + grp * a.N, *C = Cp + r * a.bc_stride + grp * a.N;
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

/* The recurrent passes over chunk blockIdx.z of chunked segment blockIdx.y (where the
 * matrix forms do not apply): END_ONLY pass 1, else pass 3. */
template <int SPL, bool END_ONLY>
__global__ static void ssd_k(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch) {
    const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= a.H * a.P) return; /* whole warps leave together */
    const int64_t h = warp / a.P, p = warp % a.P, grp = h / (a.H / a.G), PN = a.P * a.N;
    const int32_t j = (int32_t)blockIdx.z;
    const mcu_seg g = seg[blockIdx.y];
    const int32_t t0 = j * MCU_CHUNK;
    if (g.chunk0 < 0 || t0 >= g.n) return;
    const int32_t t1 = t0 + MCU_CHUNK < g.n ? t0 + MCU_CHUNK : g.n;
    float *cs = ch.state + (int64_t)(g.chunk0 + j) * a.H * PN + (h * a.P + p) * a.N;
    if (END_ONLY)
        ssd_piece<SPL, true>(a, h, p, grp, lane, g.row0, t0, t1, nullptr, cs, ch.dtsum + (int64_t)(g.chunk0 + j) * a.H + h);
    else
        ssd_piece<SPL, false>(a, h, p, grp, lane, g.row0, t0, t1, cs, nullptr, nullptr);
}

/* Short segments (decode steps, short pieces) whole, from and to their states: one warp
 * per R consecutive rows (h, p .. p + R - 1) of a head for segment blockIdx.y, the N states
 * of each row spread over the lanes. R rows a warp put R state rows' loads in flight at once:
 * the step reads and writes every state once and is bound by how much of that is in flight. */
template <int SPL, int R>
__global__ static void __launch_bounds__(256) ssd_short_k(mcu_ssd_args a, const mcu_seg *seg) {
    const mcu_seg g = seg[blockIdx.y];
    if (g.chunk0 >= 0) return;
    const int64_t row0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32 * R; /* h * P + p */
    const int lane = threadIdx.x % 32;
    if (row0 >= a.H * a.P) return; /* whole warps leave together */
    const int64_t h = row0 / a.P, grp = h / (a.H / a.G), N = a.N;
    float *S = g.ssm + row0 * N;
    float s[R][SPL];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int i = 0; i < SPL; i++) s[r][i] = lane + 32 * i < N ? S[r * N + lane + 32 * i] : 0.0f;
    const float A2 = a.A[h] * MCU_LOG2E;
    for (int32_t t = 0; t < g.n; t++) {
        const int64_t rr = (int64_t)g.row0 + t;
        float dt;
        if (a.dt_raw) {
            const float v = mcu_softplus(__ldg(a.dt_raw + rr * a.dt_raw_stride + h) + a.dt_bias[h]);
            dt = v < a.dt_lo ? a.dt_lo : v > a.dt_hi ? a.dt_hi : v;
        } else {
            dt = __ldg(a.dt + rr * a.dt_stride + h);
        }
        const float dA = mcu_ex2(dt * A2);
        const float *B = a.B + rr * a.bc_stride + grp * N, *C = a.C + rr * a.bc_stride + grp * N;
        float Bv[SPL], Cv[SPL], dx[R], acc[R];
#pragma unroll
        for (int i = 0; i < SPL; i++) {
            const bool in = lane + 32 * i < N;
            Bv[i] = in ? __ldg(B + lane + 32 * i) : 0.0f;
            Cv[i] = in ? __ldg(C + lane + 32 * i) : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < R; r++) {
            dx[r] = dt * __ldg(a.x + rr * a.x_stride + row0 + r);
            acc[r] = 0.0f;
#pragma unroll
            for (int i = 0; i < SPL; i++) {
                s[r][i] = s[r][i] * dA + dx[r] * Bv[i];
                acc[r] += s[r][i] * Cv[i];
            }
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
#pragma unroll
            for (int r = 0; r < R; r++) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], o);
        if (lane == 0)
#pragma unroll
            for (int r = 0; r < R; r++) a.y[rr * a.y_stride + row0 + r] = acc[r];
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int i = 0; i < SPL; i++)
            if (lane + 32 * i < N) S[r * N + lane + 32 * i] = s[r][i];
}

/* Pass 2: each thread walks the chunks of W consecutive state elements (h, p, n) of a
 * chunked segment (W = 4 where a head's P N floats are a multiple of 4: one 16-byte load
 * each, or four loads where a pointer is not 16-byte aligned), AHEAD chunks' end states
 * and dt sums loaded before any is used: the pass reads and writes every chunk's state
 * once and is bound by how much of that is in flight. */
#define COMBINE_AHEAD 8
template <int W>
__global__ static void ssd_combine_k(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch, int32_t clen) {
    const int64_t HPN = a.H * a.P * a.N;
    const int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * W;
    const mcu_seg g = seg[blockIdx.y];
    if (i >= HPN || g.chunk0 < 0) return;
    const int64_t h = i / (a.P * a.N);
    const float A = a.A[h] * MCU_LOG2E;
    float *cs = ch.state + (int64_t)g.chunk0 * HPN + i;
    const bool vec = W == 4 && (uintptr_t)cs % 16 == 0 && (uintptr_t)(g.ssm + i) % 16 == 0 && HPN % 4 == 0;
    float s[W];
#pragma unroll
    for (int w = 0; w < W; w++) s[w] = g.ssm[i + w];
    const int32_t nch = (g.n + clen - 1) / clen;
    const float *ds = ch.dtsum + (int64_t)g.chunk0 * a.H + h;
    for (int32_t j0 = 0; j0 < nch; j0 += COMBINE_AHEAD) {
        float end[COMBINE_AHEAD][W], dsum[COMBINE_AHEAD];
#pragma unroll
        for (int k = 0; k < COMBINE_AHEAD; k++)
            if (j0 + k < nch) {
                const float *p = cs + (int64_t)(j0 + k) * HPN;
                if (vec) {
                    const float4 v = *(const float4 *)p;
                    end[k][0] = v.x, end[k][1 % W] = v.y, end[k][2 % W] = v.z, end[k][3 % W] = v.w;
                } else {
#pragma unroll
                    for (int w = 0; w < W; w++) end[k][w] = p[w];
                }
                dsum[k] = ds[(int64_t)(j0 + k) * a.H];
            }
#pragma unroll
        for (int k = 0; k < COMBINE_AHEAD; k++)
            if (j0 + k < nch) {
                float *p = cs + (int64_t)(j0 + k) * HPN;
                if (vec) {
                    *(float4 *)p = make_float4(s[0], s[1 % W], s[2 % W], s[3 % W]);
                } else {
#pragma unroll
                    for (int w = 0; w < W; w++) p[w] = s[w];
                }
                const float d = mcu_ex2(A * dsum[k]);
#pragma unroll
                for (int w = 0; w < W; w++) s[w] = d * s[w] + end[k][w];
            }
    }
#pragma unroll
    for (int w = 0; w < W; w++) g.ssm[i + w] = s[w];
}

extern "C" void mcu_ssd_combine(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch,
                                int32_t clen, mcu_stream s) {
    const int64_t HPN = a->H * a->P * a->N;
    if ((a->P * a->N) % 4 == 0)
        ssd_combine_k<4><<<dim3((unsigned)((HPN / 4 + 255) / 256), (unsigned)n_seg), 256, 0, s>>>(*a, seg, *ch, clen);
    else
        ssd_combine_k<1><<<dim3((unsigned)((HPN + 255) / 256), (unsigned)n_seg), 256, 0, s>>>(*a, seg, *ch, clen);
}

/* ---- the chunked SSD as matrix products (P a multiple of 16, at most 128) ------------
 * One block per (chunk, head), 256 threads as a 16 x 16 grid. Within a chunk of l <= 64
 * tokens, with cum_t = sum_{s<=t} dt_s A_h:
 *   end state (pass 1):  S_end[p, n] = sum_s exp(cum_last - cum_s) dt_s x[s, p] B[s, n]
 *   outputs  (pass 3):   y[t, p] = exp(cum_t) (C S_in^T)[t, p] + sum_{s<=t} M[t, s] x[s, p],
 *                        M[t, s] = (C B^T)[t, s] exp(cum_t - cum_s) dt_s
 * the products tiled over N by 32 through shared memory, float32 throughout. */
#define MT 64  /* rows of a chunk: MCU_CHUNK */
#define NT 32  /* N per tile */

/* dt and cum of the chunk's rows into shared memory (rows past l: dt 0, cum flat). */
__device__ static void chunk_cum(const mcu_ssd_args &a, int64_t h, int64_t r0, int l, float *dts, float *cum) {
    const int t = threadIdx.x;
    if (t < MT) dts[t] = t < l ? a.dt[(r0 + t) * a.dt_stride + h] : 0.0f;
    __syncthreads();
    if (t == 0) {
        float run = 0.0f;
        for (int i = 0; i < MT; i++) run += dts[i] * a.A[h], cum[i] = run;
    }
    __syncthreads();
}

/* Where chunk z of segment y starts, or false when the block has nothing to do. */
__device__ static bool chunk_of(const mcu_seg &g, int32_t j, int64_t *r0, int *l) {
    if (g.chunk0 < 0) return false;
    const int32_t t0 = j * MCU_CHUNK;
    if (t0 >= g.n) return false;
    *r0 = (int64_t)g.row0 + t0;
    *l = g.n - t0 < MCU_CHUNK ? g.n - t0 : MCU_CHUNK;
    return true;
}

template <int P>
__global__ static void ssd_end_mm(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch) {
    __shared__ float dts[MT], cum[MT], xw[MT][P], bs[MT][NT];
    const mcu_seg g = seg[blockIdx.y];
    const int64_t h = blockIdx.x, grp = h / (a.H / a.G);
    int64_t r0;
    int l;
    if (!chunk_of(g, (int32_t)blockIdx.z, &r0, &l)) return;
    chunk_cum(a, h, r0, l, dts, cum);
    const int tid = threadIdx.x;
    for (int i = tid; i < MT * P; i += 256) {
        const int s = i / P, p = i % P;
        xw[s][p] = s < l ? a.x[(r0 + s) * a.x_stride + h * P + p] * mcu_exp(cum[l - 1] - cum[s]) * dts[s] : 0.0f;
    }
    float *S = ch.state + (int64_t)(g.chunk0 + blockIdx.z) * a.H * P * a.N + h * P * a.N;
    const int n_l = tid % NT, p0 = tid / NT; /* p = p0 + 8 k */
    for (int64_t n0 = 0; n0 < a.N; n0 += NT) {
        __syncthreads();
        for (int i = tid; i < MT * NT; i += 256) {
            const int s = i / NT, n = i % NT;
            bs[s][n] = s < l && n0 + n < a.N ? a.B[(r0 + s) * a.bc_stride + grp * a.N + n0 + n] : 0.0f;
        }
        __syncthreads();
        float acc[P / 8];
        for (int k = 0; k < P / 8; k++) acc[k] = 0.0f;
        for (int s = 0; s < l; s++) {
            const float b = bs[s][n_l];
            for (int k = 0; k < P / 8; k++) acc[k] += xw[s][p0 + 8 * k] * b;
        }
        if (n0 + n_l < a.N)
            for (int k = 0; k < P / 8; k++) S[(int64_t)(p0 + 8 * k) * a.N + n0 + n_l] = acc[k];
    }
    if (tid == 0) {
        float d = 0.0f;
        for (int i = 0; i < l; i++) d += dts[i];
        ch.dtsum[(int64_t)(g.chunk0 + blockIdx.z) * a.H + h] = d;
    }
}

template <int P>
__global__ static void ssd_out_mm(mcu_ssd_args a, const mcu_seg *seg, mcu_chunks ch) {
    extern __shared__ float sm[];
    __shared__ float dts[MT], cum[MT];
    const mcu_seg g = seg[blockIdx.y];
    const int64_t h = blockIdx.x, grp = h / (a.H / a.G);
    int64_t r0;
    int l;
    if (!chunk_of(g, (int32_t)blockIdx.z, &r0, &l)) return;
    chunk_cum(a, h, r0, l, dts, cum);
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const float *S = ch.state + (int64_t)(g.chunk0 + blockIdx.z) * a.H * P * a.N + h * P * a.N; /* S_in (P, N) */
    /* phase 1: CB (t, s) and CS (t, p) over tiles of N */
    float (*cs)[NT + 1] = (float (*)[NT + 1])sm;            /* C tile (MT, NT) */
    float (*bs)[NT + 1] = (float (*)[NT + 1])(sm + MT * (NT + 1));
    float (*ss)[NT + 1] = (float (*)[NT + 1])(sm + 2 * MT * (NT + 1)); /* S tile (P, NT) */
    float cb[4][4], csv[4][P / 16];
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 4; k++) cb[i][k] = 0.0f;
        for (int k = 0; k < P / 16; k++) csv[i][k] = 0.0f;
    }
    for (int64_t n0 = 0; n0 < a.N; n0 += NT) {
        __syncthreads();
        for (int i = tid; i < MT * NT; i += 256) {
            const int t = i / NT, n = i % NT;
            const bool in = t < l && n0 + n < a.N;
            const int64_t off = (r0 + t) * a.bc_stride + grp * a.N + n0 + n;
            cs[t][n] = in ? a.C[off] : 0.0f;
            bs[t][n] = in ? a.B[off] : 0.0f;
        }
        for (int i = tid; i < P * NT; i += 256) {
            const int p = i / NT, n = i % NT;
            ss[p][n] = n0 + n < a.N ? S[(int64_t)p * a.N + n0 + n] : 0.0f;
        }
        __syncthreads();
        for (int n = 0; n < NT; n++) {
            float cv[4], bv[4], sv[P / 16];
            for (int i = 0; i < 4; i++) cv[i] = cs[ty * 4 + i][n], bv[i] = bs[tx * 4 + i][n];
            for (int k = 0; k < P / 16; k++) sv[k] = ss[tx + 16 * k][n];
            for (int i = 0; i < 4; i++) {
                for (int k = 0; k < 4; k++) cb[i][k] += cv[i] * bv[k];
                for (int k = 0; k < P / 16; k++) csv[i][k] += cv[i] * sv[k];
            }
        }
    }
    __syncthreads();
    /* phase 2: M = CB o decay o dt, then y = exp(cum) CS + M X */
    float (*ms)[MT + 1] = (float (*)[MT + 1])sm;           /* (MT, MT) */
    float (*xs)[P] = (float (*)[P])(sm + MT * (MT + 1));   /* (MT, P) */
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++) {
            const int t = ty * 4 + i, s2 = tx * 4 + k;
            ms[t][s2] = s2 <= t && t < l ? cb[i][k] * mcu_exp(cum[t] - cum[s2]) * dts[s2] : 0.0f;
        }
    for (int i = tid; i < MT * P; i += 256) {
        const int s2 = i / P, p = i % P;
        xs[s2][p] = s2 < l ? a.x[(r0 + s2) * a.x_stride + h * P + p] : 0.0f;
    }
    __syncthreads();
    for (int i = 0; i < 4; i++) {
        const int t = ty * 4 + i;
        if (t >= l) continue;
        const float e = mcu_exp(cum[t]);
        float acc[P / 16];
        for (int k = 0; k < P / 16; k++) acc[k] = e * csv[i][k];
        for (int s2 = 0; s2 <= t; s2++) {
            const float mv = ms[t][s2];
            for (int k = 0; k < P / 16; k++) acc[k] += mv * xs[s2][tx + 16 * k];
        }
        for (int k = 0; k < P / 16; k++) a.y[(r0 + t) * a.y_stride + h * P + tx + 16 * k] = acc[k];
    }
}

template <int P>
static size_t out_mm_smem(void) {
    const size_t p1 = (size_t)(2 * MT + P) * (NT + 1), p2 = (size_t)MT * (MT + 1) + (size_t)MT * P;
    return (p1 > p2 ? p1 : p2) * sizeof(float);
}

/* The chunked passes in matrix form; false when P does not suit them. */
static bool run_mm(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s) {
    const dim3 grid((unsigned)a->H, (unsigned)n_seg, (unsigned)ch->max_chunks_per_seg);
    switch (a->P) {
#define CASE(PP)                                                                                                 \
    case PP: {                                                                                                   \
        cudaFuncSetAttribute(ssd_out_mm<PP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)out_mm_smem<PP>()); \
        ssd_end_mm<PP><<<grid, 256, 0, s>>>(*a, seg, *ch);                                                       \
        mcu_ssd_combine(a, seg, n_seg, ch, MCU_CHUNK, s);                                                        \
        ssd_out_mm<PP><<<grid, 256, out_mm_smem<PP>(), s>>>(*a, seg, *ch);                                       \
        return true;                                                                                             \
    }
    CASE(16)
    CASE(32)
    CASE(64)
    CASE(128)
#undef CASE
    default: return false;
    }
}

template <int SPL>
static void run(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s) {
    if (ch->max_chunks_per_seg > 0) {
        const bool done = (a->tc && mcu_ssd_tc(a, seg, n_seg, ch, s)) || run_mm(a, seg, n_seg, ch, s);
        if (!done) { /* the recurrent form, chunk by chunk */
            const dim3 grid((unsigned)((a->H * a->P * 32 + 255) / 256), (unsigned)n_seg, (unsigned)ch->max_chunks_per_seg);
            ssd_k<SPL, true><<<grid, 256, 0, s>>>(*a, seg, *ch);
            mcu_ssd_combine(a, seg, n_seg, ch, MCU_CHUNK, s);
            ssd_k<SPL, false><<<grid, 256, 0, s>>>(*a, seg, *ch);
        }
    }
    const int64_t HP = a->H * a->P;
    if (a->P % 4 == 0)
        ssd_short_k<SPL, 4><<<dim3((unsigned)((HP / 4 * 32 + 255) / 256), (unsigned)n_seg), 256, 0, s>>>(*a, seg);
    else
        ssd_short_k<SPL, 1><<<dim3((unsigned)((HP * 32 + 255) / 256), (unsigned)n_seg), 256, 0, s>>>(*a, seg);
}

extern "C" void mcu_ssd(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s) {
    if (n_seg <= 0) return;
    const int64_t spl = (a->N + 31) / 32;
    if (spl <= 1) run<1>(a, seg, n_seg, ch, s);
    else if (spl <= 2) run<2>(a, seg, n_seg, ch, s);
    else if (spl <= 4) run<4>(a, seg, n_seg, ch, s);
    else run<8>(a, seg, n_seg, ch, s);
}
