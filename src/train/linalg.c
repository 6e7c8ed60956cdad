/* linalg.c — the three matrix products of training, all through the inference GEMM
 * kernel (out = x W^T, packed panels, split over output rows by the thread pool):
 *   forward   y  = x W^T                      directly
 *   input     dx = dy W        = dy (W^T)^T   with W transposed once per call
 *   weight    dW += dy^T x     = dy^T (x^T)^T with dy and x transposed
 * The transposes cost O(T (R + K)) against the products' O(T R K). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/train.h"

mambac_status mc_tctx_init(mc_tctx *c, int threads, const char *isa, int64_t max_k, int64_t tcap, mambac_error *err) {
    memset(c, 0, sizeof *c);
    const char *asked;
    c->k = mc_kernels_select(isa, &asked);
    if (!c->k) return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "kernel set '%s' is unknown or not supported by this CPU", asked);
    /* Training's products are float32 x float32 over thousands of tokens: the AMX kernel
     * splits both into three bf16 parts and re-splits the weights for every pass of 128-256
     * tokens, which measured slower than AVX-512 here (d_model 512: 1447 vs 2256 tok/s). */
    if (c->k->amx) c->k = mc_kernels_named("avx512");
    c->pool = mc_pool_new(mc_threads_for(threads));
    c->gemm_stride = (MC_GEMM_SCRATCH_FLOAT(max_k) + 15) / 16 * 16;
    c->tcap = tcap = (tcap + 15) / 16 * 16; /* aligned_alloc sizes are multiples of the alignment */
    const int nt = c->pool ? mc_pool_threads(c->pool) : 1;
    c->gemm = aligned_alloc(64, (size_t)(c->gemm_stride * nt) * sizeof(float));
    c->ta = aligned_alloc(64, (size_t)tcap * sizeof(float));
    c->tb = aligned_alloc(64, (size_t)tcap * sizeof(float));
    c->tc = aligned_alloc(64, (size_t)tcap * sizeof(float));
    if (!c->pool || !c->gemm || !c->ta || !c->tb || !c->tc) {
        mc_tctx_free(c);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory for training buffers");
    }
    return MAMBAC_OK;
}

void mc_tctx_free(mc_tctx *c) {
    mc_pool_free(c->pool);
    free(c->gemm);
    free(c->ta);
    free(c->tb);
    free(c->tc);
    memset(c, 0, sizeof *c);
}

typedef struct gemm_job {
    const mc_tctx *c;
    float *out;
    int64_t out_stride;
    const float *x;
    int64_t x_stride, T;
    mc_weight W;
    const float *bias;
} gemm_job;

static void gemm_range(void *arg, int64_t r0, int64_t r1, int thread) {
    const gemm_job *j = arg;
    j->c->k->gemm(j->out, j->out_stride, j->x, j->x_stride, j->T, &j->W, r0, r1, j->bias,
                  j->c->gemm + thread * j->c->gemm_stride);
}

static void gemm(const mc_tctx *c, float *out, int64_t out_stride, const float *x, int64_t x_stride, int64_t T,
                 const float *W, int64_t R, int64_t K, const float *bias) {
    gemm_job j = {c, out, out_stride, x, x_stride, T, {MAMBAC_DTYPE_F32, W, R, K, 0}, bias};
    mc_pool_for(c->pool, R, MC_GEMM_PANEL, gemm_range, &j);
}

typedef struct tr_job {
    float *dst;
    const float *src;
    int64_t rows, cols, src_stride;
} tr_job;

/* dst (cols, rows) = src (rows, cols)^T, in 32 x 32 tiles, split over source columns. */
static void transpose_range(void *arg, int64_t c0, int64_t c1, int thread) {
    const tr_job *j = arg;
    (void)thread;
    for (int64_t cb = c0; cb < c1; cb += 32)
        for (int64_t rb = 0; rb < j->rows; rb += 32)
            for (int64_t cc = cb; cc < cb + 32 && cc < c1; cc++)
                for (int64_t r = rb; r < rb + 32 && r < j->rows; r++) j->dst[cc * j->rows + r] = j->src[r * j->src_stride + cc];
}

static void transpose(const mc_tctx *c, float *dst, const float *src, int64_t rows, int64_t cols, int64_t src_stride) {
    tr_job j = {dst, src, rows, cols, src_stride};
    mc_pool_for(c->pool, cols, 32, transpose_range, &j);
}

void mc_mm(mc_tctx *c, float *out, const float *x, int64_t x_stride, int64_t T, const float *W, int64_t R, int64_t K,
           const float *bias) {
    gemm(c, out, R, x, x_stride, T, W, R, K, bias);
}

void mc_mm_dx(mc_tctx *c, float *dx, int64_t dx_stride, const float *dy, int64_t T, const float *W, int64_t R, int64_t K) {
    transpose(c, c->ta, W, R, K, K); /* (K, R) */
    gemm(c, dx, dx_stride, dy, R, T, c->ta, K, R, NULL);
}

typedef struct add_job {
    float *dst;
    const float *src;
} add_job;

static void add_range(void *arg, int64_t a, int64_t b, int thread) {
    const add_job *j = arg;
    (void)thread;
    for (int64_t i = a; i < b; i++) j->dst[i] += j->src[i];
}

void mc_mm_dw(mc_tctx *c, float *dW, const float *dy, int64_t T, const float *x, int64_t x_stride, int64_t R, int64_t K) {
    transpose(c, c->ta, dy, T, R, R);        /* dy^T (R, T) */
    transpose(c, c->tb, x, T, K, x_stride);  /* x^T (K, T) */
    gemm(c, c->tc, K, c->ta, T, R, c->tb, K, T, NULL); /* (R, K) */
    add_job j = {dW, c->tc};
    mc_pool_for(c->pool, R * K, 256, add_range, &j);
}
