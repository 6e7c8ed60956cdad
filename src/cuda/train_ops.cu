/* train_ops.cu — the training kernels other than the scans (train_ops.h): norms, the
 * conv, elementwise activations and their derivatives, the embedding gradient, the
 * cross-entropy, gradient norms and AdamW. Accurate special functions (expf, log1pf):
 * the float32 path is checked against the CPU's gradients. */
#include <cuda_bf16.h>
#include <math.h>

#include "cuda/train_ops.h"

#define ROWS_PER_PART 256 /* rows summed by one partial of a column reduction */

static unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

/* i = r n + k: 32-bit division where the values allow (a 64-bit one is ~100 instructions) */
__device__ static inline void split_rc(int64_t i, int64_t n, int64_t *r, int64_t *k) {
    if (i <= 0xffffffffll && n <= 0xffffffffll) {
        const unsigned q = (unsigned)i / (unsigned)n;
        *r = q, *k = (int64_t)((unsigned)i - q * (unsigned)n);
    } else {
        *r = i / n, *k = i % n;
    }
}

__device__ static inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ static inline float siluf_(float x) { return x * sigmoidf_(x); }
__device__ static inline float dsiluf_(float x) {
    const float s = sigmoidf_(x);
    return s * (1.0f + x * (1.0f - s));
}
__device__ static inline float softplusf_(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* ---- column reductions in a fixed order ----------------------------------------- */

/* part[chunk][col] = sum over the chunk's rows of f(row, col) */
template <class F>
__global__ static void colsum_part_k(float *part, int64_t T, int64_t n, F f) {
    const int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= n) return;
    const int64_t r0 = (int64_t)blockIdx.y * ROWS_PER_PART;
    const int64_t r1 = r0 + ROWS_PER_PART < T ? r0 + ROWS_PER_PART : T;
    float acc = 0.0f;
    for (int64_t r = r0; r < r1; r++) acc += f(r, col);
    part[blockIdx.y * n + col] = acc;
}

/* dst[i] (+)= the sum over k < parts of src[k * stride + i], k in order; unrolled so that
 * the loads are in flight together */
__global__ static void sum_parts_k(float *dst, const float *src, int64_t parts, int64_t stride, int64_t n, int accumulate) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float acc = 0.0f;
#pragma unroll 8
    for (int64_t k = 0; k < parts; k++) acc += src[k * stride + i];
    dst[i] = accumulate ? dst[i] + acc : acc;
}
/* the same for groups of parts at once: group g's sum lands on its first part (which
 * only this thread reads) */
__global__ static void sum_groups_k(float *src, int64_t parts, int64_t group, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, g = blockIdx.y;
    if (i >= n) return;
    const int64_t k0 = g * group, k1 = k0 + group < parts ? k0 + group : parts;
    float acc = 0.0f;
#pragma unroll 8
    for (int64_t k = k0; k < k1; k++) acc += src[k * n + i];
    src[k0 * n + i] = acc;
}

/* Few columns and many parts leave most of the GPU idle in one pass: then groups of
 * SUM_GROUP parts are summed first (in place), and the groups' sums after. */
#define SUM_GROUP 16
extern "C" void mct_sum_parts(float *dst, float *src, int64_t parts, int64_t n, int accumulate, mcu_stream s) {
    if (n <= 0) return;
    if (parts >= 4 * SUM_GROUP && n < (1 << 18)) {
        const int64_t groups = (parts + SUM_GROUP - 1) / SUM_GROUP;
        sum_groups_k<<<dim3(blocks_for(n, 256), (unsigned)groups), 256, 0, s>>>(src, parts, SUM_GROUP, n);
        sum_parts_k<<<blocks_for(n, 256), 256, 0, s>>>(dst, src, groups, SUM_GROUP * n, n, accumulate);
    } else {
        sum_parts_k<<<blocks_for(n, 256), 256, 0, s>>>(dst, src, parts, n, n, accumulate);
    }
}

static int64_t parts_for(int64_t T) { return (T + ROWS_PER_PART - 1) / ROWS_PER_PART; }

extern "C" int64_t mct_colsum_scratch(int64_t T, int64_t n) { return parts_for(T) * n; }

/* dst (+)= the column sums of f over T rows and n columns */
template <class F>
static void colsum_f(float *dst, int64_t T, int64_t n, int accumulate, float *scratch, mcu_stream s, F f) {
    if (T <= 0 || n <= 0) return;
    const int64_t parts = parts_for(T);
    colsum_part_k<<<dim3(blocks_for(n, 128), (unsigned)parts), 128, 0, s>>>(scratch, T, n, f);
    mct_sum_parts(dst, scratch, parts, n, accumulate, s);
}

struct strided_f {
    const float *src;
    int64_t stride;
    __device__ float operator()(int64_t r, int64_t k) const { return src[r * stride + k]; }
};

extern "C" void mct_colsum(float *dst, const float *src, int64_t stride, int64_t T, int64_t n, int accumulate, float *scratch,
                           mcu_stream s) {
    colsum_f(dst, T, n, accumulate, scratch, s, strided_f{src, stride});
}

/* ---- RMSNorm -------------------------------------------------------------------- */

/* block-wide sum of one double per thread (blockDim.x == 256) */
__device__ static double block_sum_d(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    double t = 0;
    for (int i = 0; i < 8; i++) t += sh[i];
    return t;
}

__global__ static void rmsnorm_fwd_k(float *out, __nv_bfloat16 *out16, float *rstd, const float *x, const float *w, int64_t n,
                                     int64_t groups, float eps) {
    __shared__ double sh[8];
    const int64_t r = blockIdx.x;
    const float *xr = x + r * n, *wr = w + (r % groups) * n;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < n; i += 256) ss += (double)xr[i] * xr[i];
    ss = block_sum_d(ss, sh);
    const float rs = (float)(1.0 / sqrt(ss / (double)n + eps));
    if (threadIdx.x == 0) rstd[r] = rs;
    for (int64_t i = threadIdx.x; i < n; i += 256) {
        const float v = xr[i] * rs * wr[i];
        if (out) out[r * n + i] = v;
        if (out16) out16[r * n + i] = __float2bfloat16(v);
    }
}

extern "C" void mct_rmsnorm_fwd(float *out, void *out16, float *rstd, const float *x, const float *w, int64_t T, int64_t n,
                                int64_t groups, float eps, mcu_stream s) {
    if (T > 0) rmsnorm_fwd_k<<<(unsigned)T, 256, 0, s>>>(out, (__nv_bfloat16 *)out16, rstd, x, w, n, groups, eps);
}

__global__ static void rmsnorm_bwd_k(float *dx, const float *dout, const float *x, const float *rstd, const float *w, int64_t n,
                                     int64_t groups, int accumulate) {
    __shared__ double sh[8];
    const int64_t r = blockIdx.x;
    const float *xr = x + r * n, *dy = dout + r * n, *wr = w + (r % groups) * n;
    const float rs = rstd[r];
    double dot = 0;
    for (int64_t i = threadIdx.x; i < n; i += 256) dot += (double)dy[i] * wr[i] * xr[i];
    dot = block_sum_d(dot, sh);
    const float k = (float)(dot / (double)n) * rs * rs * rs;
    float *o = dx + r * n;
    for (int64_t i = threadIdx.x; i < n; i += 256) {
        const float v = rs * dy[i] * wr[i] - xr[i] * k;
        o[i] = accumulate ? o[i] + v : v;
    }
}

/* dw over rows of groups * n: column K of row R is element (R groups + K / n, K % n) */
struct rms_dw_f {
    const float *dy, *x, *rstd;
    int64_t n, width;
    __device__ float operator()(int64_t R, int64_t K) const {
        const int64_t i = R * width + K;
        return dy[i] * x[i] * rstd[R * (width / n) + K / n];
    }
};

extern "C" void mct_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *rstd, const float *w,
                                int64_t T, int64_t n, int64_t groups, int accumulate, float *scratch, mcu_stream s) {
    if (T <= 0) return;
    rmsnorm_bwd_k<<<(unsigned)T, 256, 0, s>>>(dx, dout, x, rstd, w, n, groups, accumulate);
    colsum_f(dw, T / groups, groups * n, 1, scratch, s, rms_dw_f{dout, x, rstd, n, groups * n});
}

/* ---- elementwise ------------------------------------------------------------------ */

__global__ static void add_k(float *y, const float *a, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += a[i];
}
extern "C" void mct_add(float *y, const float *a, int64_t n, mcu_stream s) {
    if (n > 0) add_k<<<blocks_for(n, 256), 256, 0, s>>>(y, a, n);
}

/* The elementwise kernels of strided operands: EW_U elements a thread, 256 apart, their
 * loads issued before any result is computed (one element a thread leaves each load's
 * latency exposed), the row and column of each by 32-bit division where it fits. */
#define EW_U 4
static unsigned ew_blocks(int64_t n) { return blocks_for(n, 256 * EW_U); }
#define EW_FOR(u, i, n) \
    _Pragma("unroll") for (int u = 0; u < EW_U; u++) \
        if (const int64_t i = (int64_t)blockIdx.x * 256 * EW_U + u * 256 + threadIdx.x; i < (n))

__global__ static void softplus_k(float *y, const float *x, int64_t xs, const float *b, int64_t T, int64_t n, float lo,
                                  float hi) {
    float v[EW_U];
    EW_FOR(u, i, T * n) {
        int64_t r, k;
        split_rc(i, n, &r, &k);
        v[u] = x[r * xs + k] + (b ? b[k] : 0.0f);
    }
    EW_FOR(u, i, T * n) {
        const float sp = softplusf_(v[u]);
        y[i] = sp < lo ? lo : sp > hi ? hi : sp;
    }
}
extern "C" void mct_softplus(float *y, const float *x, int64_t xs, const float *b, int64_t T, int64_t n, float lo, float hi,
                             mcu_stream s) {
    if (T * n > 0) softplus_k<<<ew_blocks(T * n), 256, 0, s>>>(y, x, xs, b, T, n, lo, hi);
}

__global__ static void softplus_bwd_k(float *g, int64_t gs, const float *dd, const float *x, int64_t xs, const float *b,
                                      const float *y, int64_t T, int64_t n, float lo, float hi) {
    float v[EW_U], dv[EW_U], yv[EW_U];
    EW_FOR(u, i, T * n) {
        int64_t r, k;
        split_rc(i, n, &r, &k);
        v[u] = x[r * xs + k] + (b ? b[k] : 0.0f);
        dv[u] = dd[i];
        yv[u] = y ? y[i] : 0.0f;
    }
    EW_FOR(u, i, T * n) {
        int64_t r, k;
        split_rc(i, n, &r, &k);
        float d = dv[u] * (v[u] > 20.0f ? 1.0f : sigmoidf_(v[u]));
        if (y && ((yv[u] <= lo && lo > 0) || yv[u] >= hi)) d = 0.0f;
        g[r * gs + k] = d;
    }
}
extern "C" void mct_softplus_bwd(float *g, int64_t gs, const float *dd, const float *x, int64_t xs, const float *b,
                                 const float *y, int64_t T, int64_t n, float lo, float hi, mcu_stream s) {
    if (T * n > 0) softplus_bwd_k<<<ew_blocks(T * n), 256, 0, s>>>(g, gs, dd, x, xs, b, y, T, n, lo, hi);
}

__global__ static void gate_k(float *y, const float *a, const float *z, int64_t zs, int64_t T, int64_t n) {
    float av[EW_U], zv[EW_U];
    EW_FOR(u, i, T * n) {
        int64_t r, k;
        split_rc(i, n, &r, &k);
        av[u] = a[i], zv[u] = z[r * zs + k];
    }
    EW_FOR(u, i, T * n) y[i] = av[u] * siluf_(zv[u]);
}
extern "C" void mct_gate(float *y, const float *a, const float *z, int64_t zs, int64_t T, int64_t n, mcu_stream s) {
    if (T * n > 0) gate_k<<<ew_blocks(T * n), 256, 0, s>>>(y, a, z, zs, T, n);
}

__global__ static void gate_bwd_k(float *da, float *dz, int64_t dzs, const float *g, const float *a, const float *z,
                                  int64_t zs, int64_t T, int64_t n) {
    float gv[EW_U], av[EW_U], zv[EW_U];
    EW_FOR(u, i, T * n) {
        int64_t r, k;
        split_rc(i, n, &r, &k);
        zv[u] = z[r * zs + k], gv[u] = g[i], av[u] = a[i];
    }
    EW_FOR(u, i, T * n) {
        int64_t r, k;
        split_rc(i, n, &r, &k);
        dz[r * dzs + k] = gv[u] * av[u] * dsiluf_(zv[u]);
        da[i] = gv[u] * siluf_(zv[u]);
    }
}
extern "C" void mct_gate_bwd(float *da, float *dz, int64_t dzs, const float *g, const float *a, const float *z, int64_t zs,
                             int64_t T, int64_t n, mcu_stream s) {
    if (T * n > 0) gate_bwd_k<<<ew_blocks(T * n), 256, 0, s>>>(da, dz, dzs, g, a, z, zs, T, n);
}

__global__ static void dskip_k(float *ys, const float *x, int64_t xs, const float *D, int64_t T, int64_t E, int64_t P) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * E) return;
    int64_t r, e;
    split_rc(i, E, &r, &e);
    ys[i] += D[e / P] * x[r * xs + e];
}
extern "C" void mct_dskip(float *ys, const float *x, int64_t xs, const float *D, int64_t T, int64_t E, int64_t P,
                          mcu_stream s) {
    if (T * E > 0) dskip_k<<<blocks_for(T * E, 256), 256, 0, s>>>(ys, x, xs, D, T, E, P);
}

__global__ static void dskip_dx_k(float *dx, int64_t dxs, const float *dys, const float *D, int64_t T, int64_t E, int64_t P) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * E) return;
    int64_t r, e;
    split_rc(i, E, &r, &e);
    dx[r * dxs + e] = dys[i] * D[e / P];
}
struct prod_f {
    const float *a, *b;
    int64_t as, bs;
    __device__ float operator()(int64_t r, int64_t k) const { return a[r * as + k] * b[r * bs + k]; }
};
/* dD[h] += the sum of the head's P channel sums */
__global__ static void head_sum_k(float *dD, const float *e_sums, int64_t H, int64_t P) {
    const int64_t h = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    float acc = 0.0f;
    for (int64_t p = 0; p < P; p++) acc += e_sums[h * P + p];
    dD[h] += acc;
}
extern "C" void mct_dskip_bwd(float *dx, int64_t dxs, float *dD, const float *dys, const float *x, int64_t xs, const float *D,
                              int64_t T, int64_t E, int64_t P, float *scratch, mcu_stream s) {
    if (T * E <= 0) return;
    if (dx) dskip_dx_k<<<blocks_for(T * E, 256), 256, 0, s>>>(dx, dxs, dys, D, T, E, P);
    float *e_sums = scratch + mct_colsum_scratch(T, E);
    colsum_f(e_sums, T, E, 0, scratch, s, prod_f{dys, x, E, xs});
    head_sum_k<<<blocks_for(E / P, 128), 128, 0, s>>>(dD, e_sums, E / P, P);
}

/* ---- causal conv -------------------------------------------------------------------- *
 * A thread per (sequence, channel, run of CONV_RUN rows) walks its rows with the window of
 * taps in registers, so every input, output and gradient is read or written once. Taps
 * are counted KM = 4 or 8 wide, the weights zero-padded on the left (a K-tap conv is the
 * KM-tap conv whose first KM - K taps are zero). */
#define CONV_KMAX 8
#define CONV_RUN 32
#define CONV_GROUP 8 /* rows whose loads are issued at once */

template <int KM>
__device__ static void conv_taps(float wv[KM], const float *w, int64_t c, int64_t K) {
#pragma unroll
    for (int k = 0; k < KM; k++) wv[k] = k >= KM - K ? w[c * K + k - (KM - K)] : 0.0f;
}

/* convp (T, C) = conv(in) + b, act = silu(convp) */
template <int KM>
__global__ static void conv_silu_fwd_k(float *convp, float *act, __nv_bfloat16 *act16, const float *in, int64_t ins,
                                       const float *w, const float *b, int64_t L, int64_t C, int64_t K) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, q = blockIdx.z, l0 = (int64_t)blockIdx.y * CONV_RUN;
    if (c >= C) return;
    float wv[KM], win[KM];
    conv_taps<KM>(wv, w, c, K);
    const float bias = b ? b[c] : 0.0f;
    const float *src = in + q * L * ins + c;
#pragma unroll
    for (int k = 0; k < KM - 1; k++) {
        const int64_t l = l0 - (KM - 1) + k;
        win[k + 1] = l >= 0 ? src[l * ins] : 0.0f;
    }
    const int64_t l1 = l0 + CONV_RUN < L ? l0 + CONV_RUN : L;
    for (int64_t base = l0; base < l1; base += CONV_GROUP) {
        float xin[CONV_GROUP]; /* the group's loads in flight together */
#pragma unroll
        for (int u = 0; u < CONV_GROUP; u++) xin[u] = base + u < l1 ? src[(base + u) * ins] : 0.0f;
#pragma unroll
        for (int u = 0; u < CONV_GROUP; u++) {
            const int64_t l = base + u;
            if (l >= l1) break;
#pragma unroll
            for (int k = 0; k < KM - 1; k++) win[k] = win[k + 1];
            win[KM - 1] = xin[u];
            float acc = bias;
#pragma unroll
            for (int k = 0; k < KM; k++) acc += wv[k] * win[k];
            const int64_t o = (q * L + l) * C + c;
            const float v = siluf_(acc);
            convp[o] = acc;
            act[o] = v;
            if (act16) act16[o] = __float2bfloat16(v);
        }
    }
}
extern "C" void mct_conv_silu_fwd(float *convp, float *act, void *act16, const float *in, int64_t ins, const float *w,
                                  const float *b, int64_t B, int64_t L, int64_t C, int64_t K, mcu_stream s) {
    if (B * L * C <= 0) return;
    const dim3 grid(blocks_for(C, 128), (unsigned)((L + CONV_RUN - 1) / CONV_RUN), (unsigned)B);
    __nv_bfloat16 *a16 = (__nv_bfloat16 *)act16;
    if (K <= 4) conv_silu_fwd_k<4><<<grid, 128, 0, s>>>(convp, act, a16, in, ins, w, b, L, C, K);
    else conv_silu_fwd_k<CONV_KMAX><<<grid, 128, 0, s>>>(convp, act, a16, in, ins, w, b, L, C, K);
}

/* With dout = dact silu'(convp): din (rows dins apart) = the transposed conv of dout, and
 * part[run][c][k] = the run's sum of dout x (tap k's input; k == KM: one, for db). The
 * thread's window holds dout of rows l .. l + KM - 1 and the input of l - KM + 1 .. l. */
template <int KM>
__global__ static void conv_silu_bwd_k(float *din, int64_t dins, float *part, const float *dact, const float *convp,
                                       const float *in, int64_t ins, const float *w, int64_t L, int64_t C, int64_t K) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, q = blockIdx.z, l0 = (int64_t)blockIdx.y * CONV_RUN;
    if (c >= C) return;
    float wv[KM], dw[KM + 1], gw[KM], iw[KM];
    conv_taps<KM>(wv, w, c, K);
    const float *src = in + q * L * ins + c, *ga = dact + q * L * C + c, *cp = convp + q * L * C + c;
#pragma unroll
    for (int k = 0; k <= KM; k++) dw[k] = 0.0f;
#pragma unroll
    for (int k = 0; k < KM - 1; k++) {
        const int64_t lg = l0 + k, li = l0 - (KM - 1) + k;
        gw[k + 1] = lg < L ? ga[lg * C] * dsiluf_(cp[lg * C]) : 0.0f;
        iw[k + 1] = li >= 0 ? src[li * ins] : 0.0f;
    }
    const int64_t l1 = l0 + CONV_RUN < L ? l0 + CONV_RUN : L;
    for (int64_t base = l0; base < l1; base += CONV_GROUP) {
        float gi[CONV_GROUP], ci[CONV_GROUP], xi[CONV_GROUP]; /* the group's loads in flight together */
#pragma unroll
        for (int u = 0; u < CONV_GROUP; u++) {
            const int64_t l = base + u, lg = l + KM - 1;
            gi[u] = l < l1 && lg < L ? ga[lg * C] : 0.0f;
            ci[u] = l < l1 && lg < L ? cp[lg * C] : 0.0f;
            xi[u] = l < l1 ? src[l * ins] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < CONV_GROUP; u++) {
            const int64_t l = base + u;
            if (l >= l1) break;
#pragma unroll
            for (int k = 0; k < KM - 1; k++) gw[k] = gw[k + 1], iw[k] = iw[k + 1];
            gw[KM - 1] = gi[u] * dsiluf_(ci[u]); /* 0 past the sequence's end */
            iw[KM - 1] = xi[u];
            float acc = 0.0f; /* din[l] = sum_k dout[l + KM - 1 - k] w[k] */
#pragma unroll
            for (int k = 0; k < KM; k++) acc += gw[KM - 1 - k] * wv[k];
            din[(q * L + l) * dins + c] = acc;
#pragma unroll
            for (int k = 0; k < KM; k++) dw[k] += gw[0] * iw[k];
            dw[KM] += gw[0];
        }
    }
    float *o = part + ((int64_t)blockIdx.z * gridDim.y + blockIdx.y) * C * (KM + 1) + c * (KM + 1);
#pragma unroll
    for (int k = 0; k <= KM; k++) o[k] = dw[k];
}
__global__ static void conv_dw_scatter_k(float *dw, float *db, const float *sums, int64_t C, int64_t K, int km) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int64_t k = 0; k < K; k++) dw[c * K + k] += sums[c * (km + 1) + k + (km - K)];
    if (db) db[c] += sums[c * (km + 1) + km];
}
extern "C" int64_t mct_conv_scratch(int64_t B, int64_t L, int64_t C) {
    return 2 * B * ((L + CONV_RUN - 1) / CONV_RUN) * C * (CONV_KMAX + 1);
}
extern "C" void mct_conv_silu_bwd(float *din, int64_t dins, float *dw, float *db, const float *dact, const float *convp,
                                  const float *in, int64_t ins, const float *w, int64_t B, int64_t L, int64_t C, int64_t K,
                                  float *scratch, mcu_stream s) {
    if (B * L * C <= 0) return;
    const int64_t runs = (L + CONV_RUN - 1) / CONV_RUN, parts = B * runs;
    const int km = K <= 4 ? 4 : CONV_KMAX;
    float *sums = scratch + parts * C * (km + 1);
    const dim3 grid(blocks_for(C, 128), (unsigned)runs, (unsigned)B);
    if (km == 4) conv_silu_bwd_k<4><<<grid, 128, 0, s>>>(din, dins, scratch, dact, convp, in, ins, w, L, C, K);
    else conv_silu_bwd_k<CONV_KMAX><<<grid, 128, 0, s>>>(din, dins, scratch, dact, convp, in, ins, w, L, C, K);
    mct_sum_parts(sums, scratch, parts, C * (km + 1), 0, s);
    conv_dw_scatter_k<<<blocks_for(C, 128), 128, 0, s>>>(dw, db, sums, C, K, km);
}

/* ---- embedding, cross-entropy ---------------------------------------------------------- */

__global__ static void embed_bwd_k(float *demb, const float *dh, int64_t D, const int32_t *order, const int32_t *tok,
                                   const int32_t *start, const int32_t *count) {
    const int64_t u = blockIdx.x;
    const int32_t *rows = order + start[u];
    const int32_t cnt = count[u];
    float *g = demb + (int64_t)tok[u] * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
#pragma unroll 8
        for (int32_t i = 0; i < cnt; i++) acc += dh[(int64_t)rows[i] * D + d];
        g[d] += acc;
    }
}
extern "C" void mct_embed_bwd(float *demb, const float *dh, int64_t D, const int32_t *order, const int32_t *tok,
                              const int32_t *start, const int32_t *count, int64_t n_tok, mcu_stream s) {
    if (n_tok > 0) embed_bwd_k<<<(unsigned)n_tok, 256, 0, s>>>(demb, dh, D, order, tok, start, count);
}

/* One block a row: each thread's running max and sum of exp over its columns (one pass
 * over the row, XENT_U loads in flight at once: a group's max first, then its terms),
 * the block's max, then the sum in double of the threads' sums rescaled to it; the
 * gradient in a second pass. */
#define XENT_U 8
template <bool FAST>
__device__ static inline float xexp(float x) { return FAST ? __expf(x) : expf(x); }
/* FAST (bf16 gradients): exp as one special-function op, its error far below bf16's */
template <bool FAST>
__global__ static void xent_k(float *logits, __nv_bfloat16 *g16, double *loss, const int32_t *target, int64_t V, int backward,
                              float f) {
    __shared__ double sh[8];
    __shared__ float shm[8];
    const int64_t r = blockIdx.x;
    float *row = logits + r * V;
    const int32_t tg = target[r];
    if (tg < 0) {
        if (threadIdx.x == 0) loss[r] = 0;
        for (int64_t v = threadIdx.x; backward && v < V; v += 256) {
            if (g16) g16[r * V + v] = __float2bfloat16(0.0f);
            else row[v] = 0.0f;
        }
        return;
    }
    float m = -INFINITY, sef = 0.0f; /* a thread's few hundred terms of at most 1 each: float suffices */
    for (int64_t v0 = threadIdx.x; v0 < V; v0 += 256 * XENT_U) {
        float x[XENT_U], gm = -INFINITY;
#pragma unroll
        for (int u = 0; u < XENT_U; u++) {
            const int64_t v = v0 + u * 256;
            x[u] = v < V ? row[v] : -INFINITY;
            gm = fmaxf(gm, x[u]);
        }
        if (gm > m) sef *= xexp<FAST>(m - gm), m = gm; /* m = -inf at first: sef is 0 then */
#pragma unroll
        for (int u = 0; u < XENT_U; u++) sef += x[u] == -INFINITY ? 0.0f : xexp<FAST>(x[u] - m);
    }
    float mx = m;
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if ((threadIdx.x & 31) == 0) shm[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = shm[0];
    for (int i = 1; i < 8; i++) mx = fmaxf(mx, shm[i]);
    const double se = block_sum_d(m == -INFINITY ? 0.0f : sef * expf(m - mx), sh);
    const double lse = mx + log(se);
    const float tv = row[tg];
    __syncthreads(); /* every thread has read row[tg] before it changes */
    if (threadIdx.x == 0) loss[r] = lse - tv;
    if (!backward) return;
    const float lsef = (float)lse;
    for (int64_t v0 = threadIdx.x; v0 < V; v0 += 256 * XENT_U) {
        float x[XENT_U];
#pragma unroll
        for (int u = 0; u < XENT_U; u++) x[u] = v0 + u * 256 < V ? row[v0 + u * 256] : 0.0f;
#pragma unroll
        for (int u = 0; u < XENT_U; u++) {
            const int64_t v = v0 + u * 256;
            if (v >= V) break;
            const float gv = xexp<FAST>(x[u] - lsef) * f - (v == tg ? f : 0.0f);
            if (g16) g16[r * V + v] = __float2bfloat16(gv);
            else row[v] = gv;
        }
    }
}
extern "C" void mct_xent(float *logits, void *grad16, double *loss, const int32_t *target, int64_t n, int64_t V, int backward,
                         float f, mcu_stream s) {
    if (n <= 0) return;
    if (grad16) xent_k<true><<<(unsigned)n, 256, 0, s>>>(logits, (__nv_bfloat16 *)grad16, loss, target, V, backward, f);
    else xent_k<false><<<(unsigned)n, 256, 0, s>>>(logits, NULL, loss, target, V, backward, f);
}

/* *out = scale x the sum of x[0 .. n), by one block in a fixed order */
__global__ static void sum_d_k(double *out, const double *x, int64_t n, double scale) {
    __shared__ double sh[8];
    double acc = 0;
    for (int64_t i = threadIdx.x; i < n; i += 256) acc += x[i];
    acc = block_sum_d(acc, sh);
    if (threadIdx.x == 0) *out = acc * scale;
}
extern "C" void mct_sum_d(double *out, const double *x, int64_t n, double scale, mcu_stream s) {
    sum_d_k<<<1, 256, 0, s>>>(out, x, n, scale);
}

/* ---- gradient norm, AdamW ------------------------------------------------------------ */

#define SUMSQ_BLOCKS 1024
extern "C" int64_t mct_sumsq_scratch(void) { return SUMSQ_BLOCKS; }

__global__ static void sumsq_part_k(double *part, const float *x, int64_t n) {
    __shared__ double sh[8];
    double acc = 0;
    for (int64_t i = (int64_t)blockIdx.x * 256 + threadIdx.x; i < n; i += (int64_t)SUMSQ_BLOCKS * 256)
        acc += (double)x[i] * x[i];
    acc = block_sum_d(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}
extern "C" void mct_sumsq(double *out, const float *x, int64_t n, double *scratch, mcu_stream s) {
    sumsq_part_k<<<SUMSQ_BLOCKS, 256, 0, s>>>(scratch, x, n);
    sum_d_k<<<1, 256, 0, s>>>(out, scratch, SUMSQ_BLOCKS, 1.0);
}

__global__ static void adamw_k(float *w, float *m, float *v, const float *g, int64_t n, float gscale, float beta1, float beta2,
                               float eps, float a, float rb2, float decay) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float gv = g[i] * gscale;
    const float mv = beta1 * m[i] + (1.0f - beta1) * gv;
    const float vv = beta2 * v[i] + (1.0f - beta2) * gv * gv;
    m[i] = mv, v[i] = vv;
    w[i] = w[i] * decay - a * mv / (sqrtf(vv) * rb2 + eps);
}
extern "C" void mct_adamw(float *w, float *m, float *v, const float *g, int64_t n, float gscale, float beta1, float beta2,
                          float eps, float a, float rb2, float decay, mcu_stream s) {
    if (n > 0) adamw_k<<<blocks_for(n, 256), 256, 0, s>>>(w, m, v, g, n, gscale, beta1, beta2, eps, a, rb2, decay);
}

__global__ static void dalog_k(float *dA_log, const float *dA, const float *A, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dA_log[i] += dA[i] * A[i];
}
extern "C" void mct_dalog(float *dA_log, const float *dA, const float *A, int64_t n, mcu_stream s) {
    if (n > 0) dalog_k<<<blocks_for(n, 256), 256, 0, s>>>(dA_log, dA, A, n);
}

__global__ static void neg_exp_k(float *A, const float *A_log, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) A[i] = -expf(A_log[i]);
}
extern "C" void mct_neg_exp(float *A, const float *A_log, int64_t n, mcu_stream s) {
    if (n > 0) neg_exp_k<<<blocks_for(n, 256), 256, 0, s>>>(A, A_log, n);
}
