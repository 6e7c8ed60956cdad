/* train_ssd.cu — the Mamba-2 SSD of training (train_ops.h) in its recurrent form: the
 * forward from a zero state and the backward, the states recomputed rather than stored.
 *
 * A block of 8 warps holds a slice of one head's (P, N) state of one sequence: warp w
 * rows p0 + w PW + i (i < PW), lane the columns n = lane + 32 j (j < NV). The head's P
 * rows are split over `split` blocks so that small batches still fill the GPU.
 *
 * The backward is two passes over time per block. Forward: S_t, dC_t = S_t^T dy_t and
 * c_t = dy_t . y_t, and S at the end of every chunk of SSD_CHUNK steps. Reverse: dS_t =
 * C_t dy_t^T + a_{t+1} dS_{t+1}, then dx, dB and ddt. The decay's gradient needs
 * <dS_t, S_{t-1}>, which reverse time does not have; it is carried instead as P_t =
 * <dS_t, S_t>, which obeys P_t = P_{t+1} + c_t - dt_{t+1} q_{t+1} (q_t = x_t . dS_t B_t),
 * set exactly from the stored S at every chunk's end so that rounding cannot pile up
 * over a long sequence: dl_t = <dS_t, a_t S_{t-1}> = P_t - dt_t q_t. Each of these sums
 * is linear in the state's rows, so a block computes its slice's part and the parts
 * are added afterwards, in order (dB and dC over the heads of a group too). */
#include <math.h>

#include "cuda/train_ops.h"

#define SSD_CHUNK 64
#define SSD_WARPS 8

typedef struct ssd_plan {
    int nv, pw, split; /* values per lane (N <= 32 nv), rows per warp, blocks per head */
} ssd_plan;

static ssd_plan plan_of(int64_t B, int64_t H, int64_t P, int64_t N) {
    ssd_plan p;
    p.nv = N <= 32 ? 1 : N <= 64 ? 2 : N <= 128 ? 4 : 8;
    p.pw = 1;
    while (p.pw * 2 * p.nv <= 32 && p.pw * 2 * SSD_WARPS <= P && P % (p.pw * 2 * SSD_WARPS) == 0) p.pw *= 2;
    /* fewer rows per block while the blocks would not fill 132 SMs twice */
    while (p.pw > 1 && B * H * (P / (p.pw * SSD_WARPS)) < 264) p.pw /= 2;
    p.split = (int)(P / (p.pw * SSD_WARPS));
    return p;
}

extern "C" int mct_ssd_supported(int64_t P, int64_t N) { return P % SSD_WARPS == 0 && N >= 1 && N <= 256; }

typedef struct ssd_scratch {
    float *dBp, *dCp, *ddtp, *cbuf, *dAp, *ckpt;
} ssd_scratch;

__host__ __device__ static ssd_scratch scratch_at(float *base, int64_t nblk, int64_t L, int64_t N, int64_t rows) {
    ssd_scratch s;
    const int64_t nch = (L + SSD_CHUNK - 1) / SSD_CHUNK;
    s.dBp = base;
    s.dCp = s.dBp + nblk * L * N;
    s.ddtp = s.dCp + nblk * L * N;
    s.cbuf = s.ddtp + nblk * L;
    s.dAp = s.cbuf + nblk * L;
    s.ckpt = s.dAp + nblk;
    (void)nch, (void)rows;
    return s;
}

extern "C" int64_t mct_ssd_scratch(int64_t B, int64_t L, int64_t H, int64_t P, int64_t N) {
    const ssd_plan p = plan_of(B, H, P, N);
    const int64_t nblk = B * H * p.split, nch = (L + SSD_CHUNK - 1) / SSD_CHUNK;
    return nblk * (2 * L * N + 2 * L + 1) + nblk * nch * (P / p.split) * N;
}

__device__ static inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* the block's coordinates and the pointers of its head */
struct ssd_blk {
    int64_t b, h, sp, blk, p0, g;
};
__device__ static ssd_blk blk_of(const mct_ssd &a, int split, int pw) {
    ssd_blk k;
    k.blk = blockIdx.x;
    k.sp = k.blk % split;
    k.h = (k.blk / split) % a.H;
    k.b = k.blk / split / a.H;
    k.p0 = k.sp * (int64_t)pw * SSD_WARPS + (threadIdx.x >> 5) * pw;
    k.g = k.h / (a.H / a.G);
    return k;
}

template <int NV, int PW>
__global__ static void __launch_bounds__(256) ssd_fwd_k(mct_ssd a, int split) {
    const ssd_blk k = blk_of(a, split, PW);
    const int lane = threadIdx.x & 31;
    const int64_t N = a.N, P = a.P, E = a.H * P;
    float S[PW][NV];
#pragma unroll
    for (int i = 0; i < PW; i++)
#pragma unroll
        for (int j = 0; j < NV; j++) S[i][j] = 0.0f;
    const float A = a.A[k.h];
    for (int64_t l = 0; l < a.L; l++) {
        const int64_t r = k.b * a.L + l;
        const float dt = a.dt[r * a.H + k.h], at = expf(dt * A);
        const float *x = a.x + r * a.xs + k.h * P + k.p0;
        const float *Bp = a.Bm + r * a.bcs + k.g * N, *Cp = a.Cm + r * a.bcs + k.g * N;
        float Bv[NV], Cv[NV];
#pragma unroll
        for (int j = 0; j < NV; j++) {
            const int64_t n = lane + 32 * j;
            Bv[j] = n < N ? Bp[n] : 0.0f, Cv[j] = n < N ? Cp[n] : 0.0f;
        }
        float mine = 0.0f;
#pragma unroll
        for (int i = 0; i < PW; i++) {
            const float xv = x[i];
            float y = 0.0f;
#pragma unroll
            for (int j = 0; j < NV; j++) {
                S[i][j] = at * S[i][j] + dt * xv * Bv[j];
                y += S[i][j] * Cv[j];
            }
            y = warp_sum(y);
            if (lane == i) mine = y;
        }
        if (lane < PW) a.y[r * E + k.h * P + k.p0 + lane] = mine;
    }
}

/* what a step of the backward reads: dt, this warp's rows of x and dy, the lane's B and C */
template <int NV>
struct step_in {
    float dt;
    const float *x, *dy;
    float Bv[NV], Cv[NV];
};
template <int NV>
__device__ static inline step_in<NV> load_step(const mct_ssd &a, const ssd_blk &k, int64_t r, int lane) {
    step_in<NV> s;
    const int64_t N = a.N, P = a.P, E = a.H * P;
    s.dt = a.dt[r * a.H + k.h];
    s.x = a.x + r * a.xs + k.h * P + k.p0, s.dy = a.dy + r * E + k.h * P + k.p0;
    const float *Bp = a.Bm + r * a.bcs + k.g * N, *Cp = a.Cm + r * a.bcs + k.g * N;
#pragma unroll
    for (int j = 0; j < NV; j++) {
        const int64_t n = lane + 32 * j;
        s.Bv[j] = n < N ? Bp[n] : 0.0f, s.Cv[j] = n < N ? Cp[n] : 0.0f;
    }
    return s;
}

template <int NV, int PW>
__global__ static void __launch_bounds__(256) ssd_bwd_k(mct_ssd a, int split) {
    __shared__ float red[2][SSD_WARPS][NV * 32];
    __shared__ float sred[2][2][SSD_WARPS]; /* per warp: c_t or q_t, and the checkpoint dot */
    const ssd_blk k = blk_of(a, split, PW);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, tid = threadIdx.x;
    const int64_t N = a.N, P = a.P, L = a.L, rows = (int64_t)PW * SSD_WARPS;
    const int64_t nblk = a.B * a.H * split, nch = (L + SSD_CHUNK - 1) / SSD_CHUNK;
    const ssd_scratch s = scratch_at(a.scratch, nblk, L, N, rows);
    float *dBp = s.dBp + k.blk * L * N, *dCp = s.dCp + k.blk * L * N, *ddtp = s.ddtp + k.blk * L;
    float *cbuf = s.cbuf + k.blk * L, *ckpt = s.ckpt + k.blk * nch * rows * N;
    const int64_t prow = k.p0 - k.sp * rows; /* this warp's first row within the block's slice */
    const float A = a.A[k.h];
    float S[PW][NV];
#pragma unroll
    for (int i = 0; i < PW; i++)
#pragma unroll
        for (int j = 0; j < NV; j++) S[i][j] = 0.0f;
    /* forward */
    for (int64_t l = 0; l < L; l++) {
        const int64_t r = k.b * L + l;
        const int buf = (int)(l & 1);
        const step_in<NV> in = load_step<NV>(a, k, r, lane);
        const float dt = in.dt, at = expf(dt * A), *x = in.x, *dy = in.dy, *Bv = in.Bv, *Cv = in.Cv;
        float v[NV];
#pragma unroll
        for (int j = 0; j < NV; j++) v[j] = 0.0f;
#pragma unroll
        for (int i = 0; i < PW; i++) {
            const float xv = x[i], dyv = dy[i];
#pragma unroll
            for (int j = 0; j < NV; j++) {
                S[i][j] = at * S[i][j] + dt * xv * Bv[j];
                v[j] += S[i][j] * dyv;
            }
        }
        float c = 0.0f;
#pragma unroll
        for (int j = 0; j < NV; j++) {
            red[buf][w][lane + 32 * j] = v[j];
            c += v[j] * Cv[j];
        }
        c = warp_sum(c);
        if (lane == 0) sred[buf][0][w] = c;
        if (l % SSD_CHUNK == SSD_CHUNK - 1 || l == L - 1) {
            float *ck = ckpt + (l / SSD_CHUNK) * rows * N;
#pragma unroll
            for (int i = 0; i < PW; i++)
#pragma unroll
                for (int j = 0; j < NV; j++) {
                    const int64_t n = lane + 32 * j;
                    if (n < N) ck[(prow + i) * N + n] = S[i][j];
                }
        }
        __syncthreads();
        if (tid < N) {
            float sum = 0.0f;
            for (int q = 0; q < SSD_WARPS; q++) sum += red[buf][q][tid];
            dCp[l * N + tid] = sum;
        }
        if (tid == 0) {
            float sum = 0.0f;
            for (int q = 0; q < SSD_WARPS; q++) sum += sred[buf][0][q];
            cbuf[l] = sum;
        }
    }
    /* reverse */
#pragma unroll
    for (int i = 0; i < PW; i++)
#pragma unroll
        for (int j = 0; j < NV; j++) S[i][j] = 0.0f; /* now dS */
    float an = 0.0f;                                 /* a_{t+1} */
    float Pn = 0.0f, qn = 0.0f, dtn = 0.0f, dAacc = 0.0f; /* thread 0's scalars of step t + 1 */
    for (int64_t l = L - 1; l >= 0; l--) {
        const int64_t r = k.b * L + l;
        const int buf = (int)(l & 1);
        const int chunk_end = l % SSD_CHUNK == SSD_CHUNK - 1 || l == L - 1;
        const step_in<NV> in = load_step<NV>(a, k, r, lane);
        const float dt = in.dt, at = expf(dt * A), *x = in.x, *dy = in.dy, *Bv = in.Bv, *Cv = in.Cv;
        float v[NV];
#pragma unroll
        for (int j = 0; j < NV; j++) v[j] = 0.0f;
        float q = 0.0f, mine = 0.0f;
#pragma unroll
        for (int i = 0; i < PW; i++) {
            const float xv = x[i], dyv = dy[i];
            float dxr = 0.0f;
#pragma unroll
            for (int j = 0; j < NV; j++) {
                S[i][j] = an * S[i][j] + Cv[j] * dyv;
                dxr += S[i][j] * Bv[j];
                v[j] += S[i][j] * xv;
            }
            dxr = warp_sum(dxr);
            q += xv * dxr;
            if (lane == i) mine = dxr;
        }
        if (lane < PW) a.dx[r * a.dxs + k.h * P + k.p0 + lane] += dt * mine;
        float pd = 0.0f;
        if (chunk_end) {
            const float *ck = ckpt + (l / SSD_CHUNK) * rows * N;
#pragma unroll
            for (int i = 0; i < PW; i++)
#pragma unroll
                for (int j = 0; j < NV; j++) {
                    const int64_t n = lane + 32 * j;
                    if (n < N) pd += S[i][j] * ck[(prow + i) * N + n];
                }
            pd = warp_sum(pd);
        }
#pragma unroll
        for (int j = 0; j < NV; j++) red[buf][w][lane + 32 * j] = v[j] * dt;
        if (lane == 0) sred[buf][0][w] = q, sred[buf][1][w] = pd;
        __syncthreads();
        if (tid < N) {
            float sum = 0.0f;
            for (int qq = 0; qq < SSD_WARPS; qq++) sum += red[buf][qq][tid];
            dBp[l * N + tid] = sum;
        }
        if (tid == 0) {
            float qs = 0.0f, ps = 0.0f;
            for (int qq = 0; qq < SSD_WARPS; qq++) qs += sred[buf][0][qq], ps += sred[buf][1][qq];
            const float Pt = chunk_end ? ps : Pn + cbuf[l] - dtn * qn;
            const float dl = Pt - dt * qs;
            ddtp[l] = qs + A * dl;
            dAacc += dt * dl;
            Pn = Pt, qn = qs, dtn = dt;
        }
        an = at;
    }
    if (tid == 0) s.dAp[k.blk] = dAacc;
}

/* dB / dC of group g = the sum over its heads and their slices; ddt over the slices */
__global__ static void ssd_reduce_k(mct_ssd a, int split) {
    const int64_t T = a.B * a.L, N = a.N, G = a.G, hpg = a.H / G;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nblk = a.B * a.H * split;
    const ssd_scratch s = scratch_at(a.scratch, nblk, a.L, N, 0);
    if (i < T * G * N) {
        const int64_t r = i / (G * N), gn = i % (G * N), g = gn / N, n = gn % N, b = r / a.L, l = r % a.L;
        float sb = 0.0f, sc = 0.0f;
        for (int64_t h = g * hpg; h < (g + 1) * hpg; h++)
            for (int sp = 0; sp < split; sp++) {
                const int64_t blk = (b * a.H + h) * split + sp, o = (blk * a.L + l) * N + n;
                sb += s.dBp[o], sc += s.dCp[o];
            }
        a.dB[r * a.bcs + g * N + n] = sb;
        a.dC[r * a.bcs + g * N + n] = sc;
    }
    if (i < T * a.H) {
        const int64_t r = i / a.H, h = i % a.H, b = r / a.L, l = r % a.L;
        float sum = 0.0f;
        for (int sp = 0; sp < split; sp++) sum += s.ddtp[((b * a.H + h) * split + sp) * a.L + l];
        a.ddt[r * a.H + h] = sum;
    }
    if (i < a.H) {
        float sum = 0.0f;
        for (int64_t b = 0; b < a.B; b++)
            for (int sp = 0; sp < split; sp++) sum += s.dAp[(b * a.H + i) * split + sp];
        a.dA[i] = sum;
    }
}

#define SSD_CASE(NV, PW)                                                                                                   \
    if (p.nv == NV && p.pw == PW) {                                                                                        \
        if (bwd) ssd_bwd_k<NV, PW><<<grid, 256, 0, s>>>(*a, p.split);                                                      \
        else ssd_fwd_k<NV, PW><<<grid, 256, 0, s>>>(*a, p.split);                                                          \
        return;                                                                                                            \
    }

static void launch(const mct_ssd *a, int bwd, mcu_stream s) {
    const ssd_plan p = plan_of(a->B, a->H, a->P, a->N);
    const unsigned grid = (unsigned)(a->B * a->H * p.split);
    SSD_CASE(1, 1) SSD_CASE(1, 2) SSD_CASE(1, 4) SSD_CASE(1, 8) SSD_CASE(1, 16) SSD_CASE(1, 32)
    SSD_CASE(2, 1) SSD_CASE(2, 2) SSD_CASE(2, 4) SSD_CASE(2, 8) SSD_CASE(2, 16)
    SSD_CASE(4, 1) SSD_CASE(4, 2) SSD_CASE(4, 4) SSD_CASE(4, 8)
    SSD_CASE(8, 1) SSD_CASE(8, 2) SSD_CASE(8, 4)
}

extern "C" void mct_ssd_fwd(const mct_ssd *a, mcu_stream s) {
    if (a->B * a->L > 0) launch(a, 0, s);
}

extern "C" void mct_ssd_bwd(const mct_ssd *a, mcu_stream s) {
    const int64_t T = a->B * a->L;
    if (T <= 0) return;
    launch(a, 1, s);
    const ssd_plan p = plan_of(a->B, a->H, a->P, a->N);
    int64_t n = T * a->G * a->N;
    if (T * a->H > n) n = T * a->H;
    ssd_reduce_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(*a, p.split);
}
