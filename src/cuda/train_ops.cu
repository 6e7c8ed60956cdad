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

__global__ static void sum_parts_k(float *dst, const float *src, int64_t parts, int64_t n, int accumulate) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float acc = 0.0f;
    for (int64_t k = 0; k < parts; k++) acc += src[k * n + i];
    dst[i] = accumulate ? dst[i] + acc : acc;
}

extern "C" void mct_sum_parts(float *dst, const float *src, int64_t parts, int64_t n, int accumulate, mcu_stream s) {
    if (n > 0) sum_parts_k<<<blocks_for(n, 256), 256, 0, s>>>(dst, src, parts, n, accumulate);
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

__global__ static void rmsnorm_fwd_k(float *out, float *rstd, const float *x, const float *w, int64_t n, int64_t groups,
                                     float eps) {
    __shared__ double sh[8];
    const int64_t r = blockIdx.x;
    const float *xr = x + r * n, *wr = w + (r % groups) * n;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < n; i += 256) ss += (double)xr[i] * xr[i];
    ss = block_sum_d(ss, sh);
    const float rs = (float)(1.0 / sqrt(ss / (double)n + eps));
    if (threadIdx.x == 0) rstd[r] = rs;
    for (int64_t i = threadIdx.x; i < n; i += 256) out[r * n + i] = xr[i] * rs * wr[i];
}

extern "C" void mct_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t n, int64_t groups,
                                float eps, mcu_stream s) {
    if (T > 0) rmsnorm_fwd_k<<<(unsigned)T, 256, 0, s>>>(out, rstd, x, w, n, groups, eps);
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

__global__ static void silu_k(float *y, const float *x, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = siluf_(x[i]);
}
extern "C" void mct_silu(float *y, const float *x, int64_t n, mcu_stream s) {
    if (n > 0) silu_k<<<blocks_for(n, 256), 256, 0, s>>>(y, x, n);
}

__global__ static void dsilu_mul_k(float *g, const float *x, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) g[i] *= dsiluf_(x[i]);
}
extern "C" void mct_dsilu_mul(float *g, const float *x, int64_t n, mcu_stream s) {
    if (n > 0) dsilu_mul_k<<<blocks_for(n, 256), 256, 0, s>>>(g, x, n);
}

__global__ static void add_k(float *y, const float *a, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += a[i];
}
extern "C" void mct_add(float *y, const float *a, int64_t n, mcu_stream s) {
    if (n > 0) add_k<<<blocks_for(n, 256), 256, 0, s>>>(y, a, n);
}

__global__ static void softplus_k(float *y, const float *x, int64_t xs, const float *b, int64_t T, int64_t n, float lo,
                                  float hi) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * n) return;
    int64_t r, k;
    split_rc(i, n, &r, &k);
    const float v = softplusf_(x[r * xs + k] + (b ? b[k] : 0.0f));
    y[i] = v < lo ? lo : v > hi ? hi : v;
}
extern "C" void mct_softplus(float *y, const float *x, int64_t xs, const float *b, int64_t T, int64_t n, float lo, float hi,
                             mcu_stream s) {
    if (T * n > 0) softplus_k<<<blocks_for(T * n, 256), 256, 0, s>>>(y, x, xs, b, T, n, lo, hi);
}

__global__ static void softplus_bwd_k(float *g, int64_t gs, const float *dd, const float *x, int64_t xs, const float *b,
                                      const float *y, int64_t T, int64_t n, float lo, float hi) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * n) return;
    int64_t r, k;
    split_rc(i, n, &r, &k);
    const float v = x[r * xs + k] + (b ? b[k] : 0.0f);
    float d = dd[i] * (v > 20.0f ? 1.0f : sigmoidf_(v));
    if (y && ((y[i] <= lo && lo > 0) || y[i] >= hi)) d = 0.0f;
    g[r * gs + k] = d;
}
extern "C" void mct_softplus_bwd(float *g, int64_t gs, const float *dd, const float *x, int64_t xs, const float *b,
                                 const float *y, int64_t T, int64_t n, float lo, float hi, mcu_stream s) {
    if (T * n > 0) softplus_bwd_k<<<blocks_for(T * n, 256), 256, 0, s>>>(g, gs, dd, x, xs, b, y, T, n, lo, hi);
}

__global__ static void gate_k(float *y, const float *a, const float *z, int64_t zs, int64_t T, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * n) return;
    int64_t r, k;
    split_rc(i, n, &r, &k);
    y[i] = a[i] * siluf_(z[r * zs + k]);
}
extern "C" void mct_gate(float *y, const float *a, const float *z, int64_t zs, int64_t T, int64_t n, mcu_stream s) {
    if (T * n > 0) gate_k<<<blocks_for(T * n, 256), 256, 0, s>>>(y, a, z, zs, T, n);
}

__global__ static void gate_bwd_k(float *da, float *dz, int64_t dzs, const float *g, const float *a, const float *z,
                                  int64_t zs, int64_t T, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * n) return;
    int64_t r, k;
    split_rc(i, n, &r, &k);
    const float zv = z[r * zs + k], gv = g[i], av = a[i];
    dz[r * dzs + k] = gv * av * dsiluf_(zv);
    da[i] = gv * siluf_(zv);
}
extern "C" void mct_gate_bwd(float *da, float *dz, int64_t dzs, const float *g, const float *a, const float *z, int64_t zs,
                             int64_t T, int64_t n, mcu_stream s) {
    if (T * n > 0) gate_bwd_k<<<blocks_for(T * n, 256), 256, 0, s>>>(da, dz, dzs, g, a, z, zs, T, n);
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
    dskip_dx_k<<<blocks_for(T * E, 256), 256, 0, s>>>(dx, dxs, dys, D, T, E, P);
    float *e_sums = scratch + mct_colsum_scratch(T, E);
    colsum_f(e_sums, T, E, 0, scratch, s, prod_f{dys, x, E, xs});
    head_sum_k<<<blocks_for(E / P, 128), 128, 0, s>>>(dD, e_sums, E / P, P);
}

/* ---- causal conv -------------------------------------------------------------------- */

__global__ static void conv_fwd_k(float *out, const float *in, int64_t ins, const float *w, const float *b, int64_t T,
                                  int64_t L, int64_t C, int64_t K) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * C) return;
    int64_t r, c, q, l;
    split_rc(i, C, &r, &c);
    split_rc(r, L, &q, &l);
    float acc = b ? b[c] : 0.0f;
    for (int64_t k = 0; k < K; k++) {
        const int64_t src = l - (K - 1) + k;
        if (src >= 0) acc += w[c * K + k] * in[(r - l + src) * ins + c];
    }
    out[i] = acc;
}
extern "C" void mct_conv_fwd(float *out, const float *in, int64_t ins, const float *w, const float *b, int64_t B, int64_t L,
                             int64_t C, int64_t K, mcu_stream s) {
    const int64_t n = B * L * C;
    if (n > 0) conv_fwd_k<<<blocks_for(n, 256), 256, 0, s>>>(out, in, ins, w, b, B * L, L, C, K);
}

__global__ static void conv_dx_k(float *din, int64_t dins, const float *dout, const float *w, int64_t T, int64_t L, int64_t C,
                                 int64_t K) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * C) return;
    int64_t r, c, q, l;
    split_rc(i, C, &r, &c);
    split_rc(r, L, &q, &l);
    float acc = 0.0f;
    for (int64_t k = 0; k < K; k++) {
        const int64_t dst = l + (K - 1) - k;
        if (dst < L) acc += dout[(r - l + dst) * C + c] * w[c * K + k];
    }
    din[r * dins + c] = acc;
}
#define CONV_KMAX 8
/* part[chunk][c][k] = sum over the chunk's rows of dout x (k < K: tap k's input; k == K:
 * one, for db): a thread per channel and chunk of rows, every tap at once */
__global__ static void conv_dw_part_k(float *part, const float *dout, const float *in, int64_t ins, int64_t T, int64_t L,
                                      int64_t C, int64_t K) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int64_t r0 = (int64_t)blockIdx.y * ROWS_PER_PART, r1 = r0 + ROWS_PER_PART < T ? r0 + ROWS_PER_PART : T;
    float acc[CONV_KMAX + 1];
#pragma unroll
    for (int k = 0; k <= CONV_KMAX; k++) acc[k] = 0.0f;
    for (int64_t r = r0, l = r0 % L; r < r1; r++, l = l + 1 == L ? 0 : l + 1) {
        const float g = dout[r * C + c];
        acc[CONV_KMAX] += g;
#pragma unroll
        for (int k = 0; k < CONV_KMAX; k++) {
            const int64_t src = l - (K - 1) + k;
            if (k < K && src >= 0) acc[k] += g * in[(r - l + src) * ins + c];
        }
    }
    float *o = part + (int64_t)blockIdx.y * C * (K + 1) + c * (K + 1);
    for (int64_t k = 0; k < K; k++) o[k] = acc[k];
    o[K] = acc[CONV_KMAX];
}
__global__ static void conv_dw_scatter_k(float *dw, float *db, const float *sums, int64_t C, int64_t K) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int64_t k = 0; k < K; k++) dw[c * K + k] += sums[c * (K + 1) + k];
    if (db) db[c] += sums[c * (K + 1) + K];
}
extern "C" void mct_conv_bwd(float *din, int64_t dins, float *dw, float *db, const float *dout, const float *in, int64_t ins,
                             const float *w, int64_t B, int64_t L, int64_t C, int64_t K, float *scratch, mcu_stream s) {
    const int64_t T = B * L;
    if (T * C <= 0) return;
    conv_dx_k<<<blocks_for(T * C, 256), 256, 0, s>>>(din, dins, dout, w, T, L, C, K);
    const int64_t parts = parts_for(T);
    float *sums = scratch + mct_colsum_scratch(T, C * (K + 1));
    conv_dw_part_k<<<dim3(blocks_for(C, 128), (unsigned)parts), 128, 0, s>>>(scratch, dout, in, ins, T, L, C, K);
    mct_sum_parts(sums, scratch, parts, C * (K + 1), 0, s);
    conv_dw_scatter_k<<<blocks_for(C, 128), 128, 0, s>>>(dw, db, sums, C, K);
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
        for (int32_t i = 0; i < cnt; i++) acc += dh[(int64_t)rows[i] * D + d];
        g[d] += acc;
    }
}
extern "C" void mct_embed_bwd(float *demb, const float *dh, int64_t D, const int32_t *order, const int32_t *tok,
                              const int32_t *start, const int32_t *count, int64_t n_tok, mcu_stream s) {
    if (n_tok > 0) embed_bwd_k<<<(unsigned)n_tok, 256, 0, s>>>(demb, dh, D, order, tok, start, count);
}

/* One block a row: each thread's running max and sum of exp over its columns (one pass
 * over the row), the block's max, then the sum in double of the threads' sums rescaled to
 * it; the gradient in a second pass. */
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
    for (int64_t v = threadIdx.x; v < V; v += 256) {
        const float x = row[v];
        if (x > m) sef = sef * expf(m - x) + 1.0f, m = x;
        else sef += expf(x - m);
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
    for (int64_t v = threadIdx.x; v < V; v += 256) {
        const float gv = expf(row[v] - lsef) * f - (v == tg ? f : 0.0f);
        if (g16) g16[r * V + v] = __float2bfloat16(gv);
        else row[v] = gv;
    }
}
extern "C" void mct_xent(float *logits, void *grad16, double *loss, const int32_t *target, int64_t n, int64_t V, int backward,
                         float f, mcu_stream s) {
    if (n > 0) xent_k<<<(unsigned)n, 256, 0, s>>>(logits, (__nv_bfloat16 *)grad16, loss, target, V, backward, f);
}

__global__ static void sum_d_k(double *out, const double *x, int64_t n, double scale) {
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += x[i];
    *out = acc * scale;
}
extern "C" void mct_sum_d(double *out, const double *x, int64_t n, double scale, mcu_stream s) {
    sum_d_k<<<1, 1, 0, s>>>(out, x, n, scale);
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
    sum_d_k<<<1, 1, 0, s>>>(out, scratch, SUMSQ_BLOCKS, 1.0);
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
