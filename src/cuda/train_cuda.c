/* train_cuda.c — training steps on the GPU (train/train_gpu.h): the host side of the
 * training kernels (train_ops.h) and cuBLAS, in the op order of train/model_train.c so
 * that the two can be read side by side. Every array of the CPU tape has its device
 * twin; the weight, gradient and moment arenas keep the host arena's layout, so a host
 * pointer into P->w names the same tensor on the device by its offset.
 *
 * One stream; the host waits once per step (for the loss) and once per update (for the
 * gradient norm, which decides the clipping factor). */
#include <cublas_v2.h>
#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "cuda/cuda_ops.h"
#include "cuda/train_ops.h"
#include "cuda/train_ssd_tc.h"
#include "train/train_gpu.h"

/* MAMBAC_TRAIN_PROFILE=1: the time of each kind of op, from events between the ops of
 * every step, printed when the trainer is freed (where to look before optimizing). */
enum { K_GEMM, K_HEAD, K_SCAN, K_NORM, K_CONV, K_ELT, K_RED, K_EMBED, K_COPY, K_OPT, K_COUNT };
static const char *const k_names[K_COUNT] = {"products (cuBLAS)", "lm head + cross-entropy", "scan / SSD", "norms",
                                             "conv", "elementwise", "column sums", "embedding", "copies", "AdamW + norm"};
#define PROF_MAX 8192
typedef struct prof {
    int on, n, steps, head;
    cudaEvent_t *ev;
    int *cat;
    double ms[K_COUNT];
    int ncu_step, fb_steps; /* MAMBAC_TRAIN_NCU_STEP=k: the profiler's range is step k (1-based) and its update */
} prof;

typedef struct glayer {
    float *h_in, *rstd, *xn, *proj, *convp, *act, *xdbl, *dtraw, *delta, *ys, *gated, *grstd, *yo;
    float *scan_keep; /* the scan's / SSD's chunk entering states */
    void *xn16, *act16, *yo16; /* with bf16 products: their inputs as written (xn and yo only so), read forward and backward */
} glayer;

struct mc_gtrain {
    int device;
    char name[320];
    cudaStream_t s;
    cublasHandle_t blas;
    const mc_params *P; /* layout; P->w is the host twin of w */
    mambac_model_info cfg;
    int64_t B, L, total, rows_chunk;
    float *w, *g, *m, *v;
    int bf16;          /* products from bf16 copies of their operands (precision "bf16") */
    int ssd_tc;        /* Mamba-2's chunks as bf16 products on tensor cores (precision "bf16") */
    void *w16;         /* the weight arena in bf16, refreshed after every update */
    void *a16, *b16;   /* a product's operands in bf16 */
    glayer *lay;
    float *h, *rstd_f, *hf, *A;
    void *hf16; /* with bf16 products: the final norm's output only so */
    float *dh, *dxn, *dproj, *dact, *dys, *dyo, *dxdbl, *ddelta, *logits, *dA_tmp, *dD_tmp;
    float *red;      /* column-reduction scratch */
    float *ssm;      /* scan / SSD scratch */
    double *loss_rows, *scalars, *sumsq;
    int32_t *ids, *tgt, *order, *tok, *start, *count; /* device */
    int32_t *h_tgt, *h_order, *h_tok, *h_start, *h_count, *h_bucket; /* host */
    void **allocs;
    size_t n_allocs, cap_allocs;
    prof pf;
};

static void mark(mc_gtrain *g, int cat) {
    prof *p = &g->pf;
    if (!p->on || p->n >= PROF_MAX) return;
    cudaEventRecord(p->ev[p->n], g->s);
    p->cat[p->n++] = p->head && cat == K_GEMM ? K_HEAD : cat;
}

/* after a synchronisation: the marks' intervals into their kinds */
static void prof_collect(mc_gtrain *g) {
    prof *p = &g->pf;
    for (int i = 1; i < p->n; i++) {
        float ms = 0;
        if (cudaEventElapsedTime(&ms, p->ev[i - 1], p->ev[i]) == cudaSuccess) p->ms[p->cat[i]] += ms;
    }
    p->n = 0;
}

static void prof_print(mc_gtrain *g) {
    prof *p = &g->pf;
    double total = 0;
    for (int k = 0; k < K_COUNT; k++) total += p->ms[k];
    if (!p->steps || total <= 0) return;
    fprintf(stderr, "GPU training profile, %s, %d steps (ms a step, share):\n", g->name, p->steps);
    for (int k = 0; k < K_COUNT; k++)
        if (p->ms[k] > 0)
            fprintf(stderr, "  %-24s %9.2f  %5.1f%%\n", k_names[k], p->ms[k] / p->steps, 100.0 * p->ms[k] / total);
    fprintf(stderr, "  %-24s %9.2f\n", "total", total / p->steps);
}

static mambac_status cu_fail(mambac_error *err, cudaError_t e, const char *what) {
    return mc_fail(err, e == cudaErrorMemoryAllocation ? MAMBAC_ERR_NOMEM : MAMBAC_ERR_IO, "cuda: %s: %s", what,
                   cudaGetErrorString(e));
}

static void *dalloc(mc_gtrain *g, int64_t bytes, mambac_status *st, mambac_error *err) {
    if (*st != MAMBAC_OK) return NULL;
    if (g->n_allocs == g->cap_allocs) {
        const size_t cap = g->cap_allocs ? 2 * g->cap_allocs : 256;
        void **a = realloc(g->allocs, cap * sizeof *a);
        if (!a) {
            *st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
            return NULL;
        }
        g->allocs = a, g->cap_allocs = cap;
    }
    void *p = NULL;
    const cudaError_t e = cudaMalloc(&p, (size_t)(bytes > 0 ? bytes : 4));
    if (e != cudaSuccess) {
        char what[96];
        snprintf(what, sizeof what, "allocating %lld MiB for training", (long long)(bytes >> 20));
        *st = cu_fail(err, e, what);
        return NULL;
    }
    g->allocs[g->n_allocs++] = p;
    return p;
}
#define FALLOC(n) ((float *)dalloc(g, (int64_t)(n) * 4, &st, err))

/* the device twin of a host pointer into the weight arena, in arena `base` */
static float *twin(const mc_gtrain *g, float *base, const float *host) { return host ? base + (host - g->P->w) : NULL; }
static float *W(const mc_gtrain *g, const float *host) { return twin(g, g->w, host); }
static float *G(const mc_gtrain *g, const float *host) { return twin(g, g->g, host); }

static int parse_device(const char *device, int *index) {
    if (!device || strncmp(device, "cuda", 4) != 0) return 0;
    if (device[4] == 0) return *index = 0, 1;
    if (device[4] != ':') return 0;
    char *end;
    const long v = strtol(device + 5, &end, 10);
    if (end == device + 5 || *end || v < 0 || v > 1024) return 0;
    *index = (int)v;
    return 1;
}

static int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

void mc_gtrain_free(mc_gtrain *g) {
    if (!g) return;
    if (g->s) cudaStreamSynchronize(g->s);
    if (g->pf.on) {
        prof_print(g);
        for (int i = 0; i < PROF_MAX; i++) cudaEventDestroy(g->pf.ev[i]);
    }
    free(g->pf.ev);
    free(g->pf.cat);
    for (size_t i = 0; i < g->n_allocs; i++) cudaFree(g->allocs[i]);
    if (g->blas) cublasDestroy(g->blas);
    if (g->s) cudaStreamDestroy(g->s);
    free(g->allocs);
    free(g->lay);
    free(g->h_tgt);
    free(g->h_order);
    free(g->h_tok);
    free(g->h_start);
    free(g->h_count);
    free(g->h_bucket);
    free(g);
}

/* the device index of a name, or an error: unknown name, no device, or not that many */
static mambac_status open_index(const char *device, int *dev, mambac_error *err) {
    if (!parse_device(device, dev))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "unknown training device '%s' (cpu, cuda or cuda:N)", device ? device : "");
    int n_dev = 0;
    const cudaError_t e = cudaGetDeviceCount(&n_dev);
    if (e != cudaSuccess || n_dev == 0)
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "no CUDA device for training (%s)",
                       e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    if (*dev >= n_dev) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "cuda:%d: this machine has %d CUDA device(s)", *dev, n_dev);
    return MAMBAC_OK;
}

mambac_status mc_gtrain_probe(const char *device, mambac_error *err) {
    int dev = 0;
    return open_index(device, &dev, err);
}

mambac_status mc_gtrain_new(const mc_params *P, const char *device, const char *precision, int64_t B, int64_t L,
                            mc_gtrain **out, mambac_error *err) {
    *out = NULL;
    const int tf32 = precision && strcmp(precision, "tf32") == 0, bf16 = precision && strcmp(precision, "bf16") == 0;
    if (precision && !tf32 && !bf16 && strcmp(precision, "f32") != 0)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "unknown training precision '%s' (f32, tf32 or bf16)", precision);
    const mambac_model_info *c = &P->cfg;
    const int m1 = c->arch == MAMBAC_ARCH_MAMBA1;
    int dev = 0;
    const mambac_status ds = open_index(device, &dev, err);
    if (ds != MAMBAC_OK) return ds;
    cudaError_t e;
    const int64_t D = c->d_model, E = c->d_inner, N = c->d_state, C = P->C, R = P->R, H = c->n_heads, Pd = c->head_dim;
    const int64_t Gn = c->n_groups, V = c->n_vocab_rows, in = P->in_rows, nl = c->n_layer, K = c->d_conv, T = B * L;
    if (c->bcdt_rms) return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "GPU training of FalconMamba (norms on dt / B / C) is not there yet");
    if (m1 && !mct_scan_supported(E, N))
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "GPU training of Mamba-1 needs d_inner a multiple of 32 and d_state <= 16");
    if (!m1 && !mct_ssd_supported(Pd, N))
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "GPU training of Mamba-2 needs head_dim a multiple of 8 and d_state <= 256");
    if (!m1 && c->gated_norm && c->norm_before_gate)
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "training supports norm_before_gate = false only");
    if (K < 1 || K > 8) return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "GPU training supports d_conv up to 8 (this model: %lld)", (long long)K);
    mc_gtrain *g = calloc(1, sizeof *g);
    if (!g) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    g->device = dev, g->P = P, g->cfg = *c, g->B = B, g->L = L, g->total = P->total;
    mambac_status st = MAMBAC_OK;
    struct cudaDeviceProp prop;
    if ((e = cudaSetDevice(dev)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&g->s, cudaStreamNonBlocking)) != cudaSuccess)
        st = cu_fail(err, e, "opening the device");
    if (st == MAMBAC_OK) snprintf(g->name, sizeof g->name, "cuda:%d (%s)", dev, prop.name);
    if (st == MAMBAC_OK && (cublasCreate(&g->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(g->blas, g->s) != CUBLAS_STATUS_SUCCESS))
        st = mc_fail(err, MAMBAC_ERR_IO, "cuda: cannot create a cuBLAS handle");
    if (st == MAMBAC_OK && cublasSetMathMode(g->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS)
        st = mc_fail(err, MAMBAC_ERR_IO, "cuda: cannot set the cuBLAS math mode");
    const char *pe = getenv("MAMBAC_TRAIN_PROFILE");
    if (st == MAMBAC_OK && pe && *pe && strcmp(pe, "0") != 0) {
        g->pf.ev = calloc(PROF_MAX, sizeof *g->pf.ev), g->pf.cat = calloc(PROF_MAX, sizeof *g->pf.cat);
        for (int i = 0; g->pf.ev && g->pf.cat && i < PROF_MAX; i++) cudaEventCreate(&g->pf.ev[i]);
        g->pf.on = g->pf.ev && g->pf.cat;
    }
    const char *nc = getenv("MAMBAC_TRAIN_NCU_STEP"); /* for `ncu --profile-from-start off` (scripts/profile_cuda_train.sh) */
    g->pf.ncu_step = nc ? atoi(nc) : 0;
    g->w = FALLOC(P->total), g->g = FALLOC(P->total), g->m = FALLOC(P->total), g->v = FALLOC(P->total);
    g->lay = calloc((size_t)nl, sizeof *g->lay);
    if (st == MAMBAC_OK && !g->lay) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; st == MAMBAC_OK && i < nl; i++) {
        glayer *y = &g->lay[i];
        y->h_in = FALLOC(T * D), y->rstd = FALLOC(T), y->xn = FALLOC(T * D), y->proj = FALLOC(T * in);
        y->convp = FALLOC(T * C), y->act = FALLOC(T * C), y->ys = FALLOC(T * E), y->yo = FALLOC(T * E);
        if (m1) y->xdbl = FALLOC(T * (R + 2 * N)), y->dtraw = FALLOC(T * E), y->delta = FALLOC(T * E);
        if (m1) y->scan_keep = FALLOC(mct_scan_tape(B, L, E, N));
        else y->delta = FALLOC(T * H), y->gated = FALLOC(T * E), y->grstd = FALLOC(T * Gn);
        if (!m1) y->scan_keep = FALLOC(mct_ssd_tape(B, L, H, Pd, N));
        if (bf16) {
            y->xn16 = dalloc(g, T * D * 2, &st, err), y->yo16 = dalloc(g, T * E * 2, &st, err);
            if (m1) y->act16 = dalloc(g, T * C * 2, &st, err);
        }
    }
    const int64_t Acount = m1 ? E * N : H;
    g->h = FALLOC(T * D), g->rstd_f = FALLOC(T), g->hf = FALLOC(T * D), g->A = FALLOC(Acount * nl);
    if (bf16) g->hf16 = dalloc(g, T * D * 2, &st, err);
    g->dh = FALLOC(T * D), g->dxn = FALLOC(T * D), g->dproj = FALLOC(T * in), g->dact = FALLOC(T * C);
    g->dys = FALLOC(T * E), g->dyo = FALLOC(T * E), g->dxdbl = FALLOC(T * (m1 ? R + 2 * N : 1));
    g->ddelta = FALLOC(T * (m1 ? E : H)), g->dA_tmp = FALLOC(Acount), g->dD_tmp = FALLOC(E);
    g->rows_chunk = (64ll << 20) / V;
    if (g->rows_chunk < 1) g->rows_chunk = 1;
    if (g->rows_chunk > T) g->rows_chunk = T;
    g->logits = FALLOC(g->rows_chunk * V);
    g->bf16 = bf16;
    g->ssd_tc = bf16 && !m1 && mct_ssd_tc_fits(Pd, N);
    if (bf16) {
        const int64_t widest_k = max_i64(max_i64(max_i64(in, D), max_i64(E, C)), R + 2 * N);
        const int64_t cap = max_i64(g->rows_chunk * V, T * widest_k);
        g->w16 = dalloc(g, P->total * 2, &st, err), g->a16 = dalloc(g, cap * 2, &st, err), g->b16 = dalloc(g, cap * 2, &st, err);
    }
    const int64_t widest = max_i64(max_i64(C * (K + 1), in), max_i64(D, E));
    g->red = FALLOC(max_i64(mct_colsum_scratch(T, widest) + widest, mct_conv_scratch(B, L, C)));
    int64_t ssm = 0;
    for (int64_t b = 1; b <= B; b++)
        ssm = max_i64(ssm, m1 ? mct_scan_scratch(b, L, E, N) : mct_ssd_scratch(b, L, H, Pd, N));
    g->ssm = FALLOC(ssm);
    g->loss_rows = dalloc(g, T * 8, &st, err), g->scalars = dalloc(g, 8 * 8, &st, err);
    g->sumsq = dalloc(g, mct_sumsq_scratch() * 8, &st, err);
    g->ids = dalloc(g, T * 4, &st, err), g->tgt = dalloc(g, T * 4, &st, err), g->order = dalloc(g, T * 4, &st, err);
    g->tok = dalloc(g, T * 4, &st, err), g->start = dalloc(g, T * 4, &st, err), g->count = dalloc(g, T * 4, &st, err);
    g->h_tgt = malloc((size_t)T * 4), g->h_order = malloc((size_t)T * 4), g->h_tok = malloc((size_t)T * 4);
    g->h_start = malloc((size_t)T * 4), g->h_count = malloc((size_t)T * 4), g->h_bucket = malloc((size_t)(V + 1) * 4);
    if (st == MAMBAC_OK && (!g->h_tgt || !g->h_order || !g->h_tok || !g->h_start || !g->h_count || !g->h_bucket))
        st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    if (st == MAMBAC_OK && ((e = cudaMemcpyAsync(g->w, P->w, (size_t)P->total * 4, cudaMemcpyHostToDevice, g->s)) != cudaSuccess ||
                            (e = cudaMemsetAsync(g->m, 0, (size_t)P->total * 4, g->s)) != cudaSuccess ||
                            (e = cudaMemsetAsync(g->v, 0, (size_t)P->total * 4, g->s)) != cudaSuccess ||
                            (e = cudaStreamSynchronize(g->s)) != cudaSuccess))
        st = cu_fail(err, e, "uploading the weights");
    if (st == MAMBAC_OK && bf16) mcu_to_bf16(g->w16, g->w, P->total, 1, P->total, g->s);
    if (st != MAMBAC_OK) {
        mc_gtrain_free(g);
        return st;
    }
    *out = g;
    return MAMBAC_OK;
}


static mambac_status sync(mc_gtrain *g, const char *what, mambac_error *err) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaStreamSynchronize(g->s);
    return e == cudaSuccess ? MAMBAC_OK : cu_fail(err, e, what);
}

mambac_status mc_gtrain_set_moments(mc_gtrain *g, const mc_adamw *o, mambac_error *err) {
    cudaMemcpyAsync(g->m, o->m, (size_t)g->total * 4, cudaMemcpyHostToDevice, g->s);
    cudaMemcpyAsync(g->v, o->v, (size_t)g->total * 4, cudaMemcpyHostToDevice, g->s);
    return sync(g, "uploading the optimizer state", err);
}

mambac_status mc_gtrain_download(mc_gtrain *g, mc_params *P, mc_adamw *o, mambac_error *err) {
    cudaMemcpyAsync(P->w, g->w, (size_t)g->total * 4, cudaMemcpyDeviceToHost, g->s);
    if (o && o->m) cudaMemcpyAsync(o->m, g->m, (size_t)g->total * 4, cudaMemcpyDeviceToHost, g->s);
    if (o && o->v) cudaMemcpyAsync(o->v, g->v, (size_t)g->total * 4, cudaMemcpyDeviceToHost, g->s);
    return sync(g, "downloading the weights", err);
}

mambac_status mc_gtrain_grads(mc_gtrain *g, float *dst, mambac_error *err) {
    cudaMemcpyAsync(dst, g->g, (size_t)g->total * 4, cudaMemcpyDeviceToHost, g->s);
    return sync(g, "downloading the gradients", err);
}

mambac_status mc_gtrain_zero_grad(mc_gtrain *g, mambac_error *err) {
    cudaMemsetAsync(g->g, 0, (size_t)g->total * 4, g->s);
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? MAMBAC_OK : cu_fail(err, e, "clearing the gradients");
}

/* ---- products (row-major through column-major cuBLAS) ---------------------------- */

/* The bf16 twin of a device weight pointer (precision bf16). */
static void *w16_of(const mc_gtrain *g, const float *Wt) { return (uint16_t *)g->w16 + (Wt - g->w); }
static void gemm16(mc_gtrain *g, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, const void *A,
                   int64_t lda, const void *Bm, int64_t ldb, float beta, float *C, int64_t ldc) {
    const float one = 1.0f;
    cublasGemmEx(g->blas, ta, tb, (int)m, (int)n, (int)k, &one, A, CUDA_R_16BF, (int)lda, Bm, CUDA_R_16BF, (int)ldb, &beta, C,
                 CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

/* out (T, R; rows ldo apart) (+)= x (T, K; rows xs apart) W^T (+ bias); W (R, K); with
 * accumulate the product is added to out. With bf16 products x16, when given, is x in
 * bf16 (rows K apart) and x is not read. */
static void mm_to(mc_gtrain *g, float *out, int64_t ldo, const float *x, const void *x16, int64_t xs, int64_t T, const float *Wt,
                  int64_t R, int64_t K, const float *bias, int accumulate) {
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    if (g->bf16) {
        if (!x16) mcu_to_bf16(g->a16, x, xs, T, K, g->s);
        gemm16(g, CUBLAS_OP_T, CUBLAS_OP_N, R, T, K, w16_of(g, Wt), K, x16 ? x16 : g->a16, K, beta, out, ldo);
    } else {
        cublasSgemm(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)R, (int)T, (int)K, &one, Wt, (int)K, x, (int)xs, &beta, out,
                    (int)ldo);
    }
    if (bias) mcu_add_bias(out, ldo, bias, T, R, g->s);
    mark(g, K_GEMM);
}
static void mm(mc_gtrain *g, float *out, int64_t ldo, const float *x, int64_t xs, int64_t T, const float *Wt, int64_t R,
               int64_t K, const float *bias) {
    mm_to(g, out, ldo, x, NULL, xs, T, Wt, R, K, bias, 0);
}
/* The backward of out = x W^T: dW (R, K) += dy (T, R)^T x (T, K; rows xs apart) and dx
 * (T, K; rows dxs apart) = dy W. With bf16 products dy is converted once for both (or
 * given already in bf16 as dy16, rows R apart). */
static void mm_bwd_to(mc_gtrain *g, float *dx, int64_t dxs, int dx_acc, float *dW, const float *dy, const void *dy16, int64_t T,
                      const float *x, const void *x16, int64_t xs, const float *Wt, int64_t R, int64_t K) {
    const float one = 1.0f, zero = dx_acc ? 1.0f : 0.0f;
    if (g->bf16) {
        if (!dy16) mcu_to_bf16(g->b16, dy, R, T, R, g->s);
        if (!x16) mcu_to_bf16(g->a16, x, xs, T, K, g->s);
        const void *d16 = dy16 ? dy16 : g->b16;
        gemm16(g, CUBLAS_OP_N, CUBLAS_OP_T, K, R, T, x16 ? x16 : g->a16, K, d16, R, 1.0f, dW, K);
        gemm16(g, CUBLAS_OP_N, CUBLAS_OP_N, K, T, R, w16_of(g, Wt), K, d16, R, zero, dx, dxs);
    } else {
        cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)K, (int)R, (int)T, &one, x, (int)xs, dy, (int)R, &one, dW, (int)K);
        cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)K, (int)T, (int)R, &one, Wt, (int)K, dy, (int)R, &zero, dx, (int)dxs);
    }
    mark(g, K_GEMM);
}
static void mm_bwd(mc_gtrain *g, float *dx, int64_t dxs, float *dW, const float *dy, const void *dy16, int64_t T, const float *x,
                   int64_t xs, const float *Wt, int64_t R, int64_t K) {
    mm_bwd_to(g, dx, dxs, 0, dW, dy, dy16, T, x, NULL, xs, Wt, R, K);
}

/* ---- forward ------------------------------------------------------------------------ */

static void layer_fwd(mc_gtrain *g, int i, int64_t nb) {
    const mambac_model_info *cf = &g->cfg;
    const mc_params *P = g->P;
    const mc_tlayer *Wl = &P->L[i];
    glayer *y = &g->lay[i];
    const int m1 = cf->arch == MAMBAC_ARCH_MAMBA1;
    const int64_t L = g->L, T = nb * L, D = cf->d_model, E = cf->d_inner, N = cf->d_state, C = P->C, R = P->R;
    const int64_t H = cf->n_heads, in = P->in_rows, Gn = cf->n_groups, K = cf->d_conv;
    cudaMemcpyAsync(y->h_in, g->h, (size_t)(T * D) * 4, cudaMemcpyDeviceToDevice, g->s);
    mark(g, K_COPY);
    mct_rmsnorm_fwd(g->bf16 ? NULL : y->xn, y->xn16, y->rstd, g->h, W(g, Wl->norm), T, D, 1, cf->norm_eps, g->s);
    mark(g, K_NORM);
    mm_to(g, y->proj, in, y->xn, y->xn16, D, T, W(g, Wl->in_w), in, D, W(g, Wl->in_b), 0);
    float *A = g->A + i * (m1 ? E * N : H);
    mct_neg_exp(A, W(g, Wl->A_log), m1 ? E * N : H, g->s);
    mark(g, K_ELT);
    mct_conv_silu_fwd(y->convp, y->act, y->act16, y->proj + (m1 ? 0 : E), in, W(g, Wl->conv_w), W(g, Wl->conv_b), nb, L, C, K, g->s);
    mark(g, K_CONV);
    if (m1) {
        mm_to(g, y->xdbl, R + 2 * N, y->act, y->act16, C, T, W(g, Wl->x_w), R + 2 * N, E, NULL, 0);
        mm(g, y->dtraw, E, y->xdbl, R + 2 * N, T, W(g, Wl->dt_w), E, R, NULL); /* the bias goes in with the softplus */
        mct_softplus(y->delta, y->dtraw, E, W(g, Wl->dt_b), T, E, -INFINITY, INFINITY, g->s);
        mark(g, K_ELT);
        mct_scan a = {.B = nb, .L = L, .E = E, .N = N, .x = y->act, .xs = C, .delta = y->delta, .Bm = y->xdbl + R,
                      .Cm = y->xdbl + R + N, .bcs = R + 2 * N, .A = A, .D = W(g, Wl->D), .ys = y->ys,
                      .z = y->proj + E, .zs = in, .yo = g->bf16 ? NULL : y->yo, .yo16 = y->yo16, .keep = y->scan_keep};
        mct_scan_fwd(&a, g->s); /* the gate too */
        mark(g, K_SCAN);
    } else {
        mct_softplus(y->delta, y->proj + E + C, in, W(g, Wl->dt_b), T, H, cf->dt_min_limit, cf->dt_max_limit, g->s);
        mark(g, K_ELT);
        mct_ssd a = {.B = nb, .L = L, .H = H, .P = cf->head_dim, .N = N, .G = Gn, .x = y->act, .xs = C, .Bm = y->act + E,
                     .Cm = y->act + E + Gn * N, .bcs = C, .dt = y->delta, .A = A, .y = y->ys,
                     .keep = y->scan_keep, .tc = g->ssd_tc, .D = g->ssd_tc ? W(g, Wl->D) : NULL};
        mct_ssd_fwd(&a, g->s); /* with the tensor-core form the D skip too */
        mark(g, K_SCAN);
        if (!g->ssd_tc) mct_dskip(y->ys, y->act, C, W(g, Wl->D), T, E, cf->head_dim, g->s);
        mark(g, K_ELT);
        mct_gate(y->gated, y->ys, y->proj, in, T, E, g->s);
        mark(g, K_ELT);
        if (Wl->gnorm)
            mct_rmsnorm_fwd(g->bf16 ? NULL : y->yo, y->yo16, y->grstd, y->gated, W(g, Wl->gnorm), T * Gn, E / Gn, Gn, cf->norm_eps, g->s);
        else if (g->bf16) mcu_to_bf16(y->yo16, y->gated, E, T, E, g->s);
        else cudaMemcpyAsync(y->yo, y->gated, (size_t)(T * E) * 4, cudaMemcpyDeviceToDevice, g->s);
        mark(g, K_NORM);
    }
    mm_to(g, g->h, D, y->yo, y->yo16, E, T, W(g, Wl->out_w), D, E, NULL, 1); /* the residual stream += out_proj */
    if (Wl->out_b) mcu_add_bias(g->h, D, W(g, Wl->out_b), T, D, g->s);
    mark(g, K_ELT);
}

/* ---- backward ----------------------------------------------------------------------- */

static void layer_bwd(mc_gtrain *g, int i, int64_t nb) {
    const mambac_model_info *cf = &g->cfg;
    const mc_params *P = g->P;
    const mc_tlayer *Wl = &P->L[i];
    glayer *y = &g->lay[i];
    const int m1 = cf->arch == MAMBAC_ARCH_MAMBA1;
    const int64_t L = g->L, T = nb * L, D = cf->d_model, E = cf->d_inner, N = cf->d_state, C = P->C, R = P->R;
    const int64_t H = cf->n_heads, in = P->in_rows, Gn = cf->n_groups, K = cf->d_conv, Pd = cf->head_dim;
    float *A = g->A + i * (m1 ? E * N : H);
    mm_bwd_to(g, g->dyo, E, 0, G(g, Wl->out_w), g->dh, NULL, T, y->yo, y->yo16, E, W(g, Wl->out_w), D, E);
    if (Wl->out_b) mct_colsum(G(g, Wl->out_b), g->dh, D, T, D, 1, g->red, g->s);
    mark(g, K_RED);
    if (m1) {
        mct_gate_bwd(g->dys, g->dproj + E, in, g->dyo, y->ys, y->proj + E, in, T, E, g->s);
        mark(g, K_ELT);
        mct_scan a = {.B = nb, .L = L, .E = E, .N = N, .x = y->act, .xs = C, .delta = y->delta, .Bm = y->xdbl + R,
                      .Cm = y->xdbl + R + N, .bcs = R + 2 * N, .A = A, .D = W(g, Wl->D), .keep = y->scan_keep, .dys = g->dys, .dx = g->dact,
                      .ddelta = g->ddelta, .dB = g->dxdbl + R, .dC = g->dxdbl + R + N, .dA = g->dA_tmp, .dD = g->dD_tmp,
                      .scratch = g->ssm};
        mct_scan_bwd(&a, g->s);
        mark(g, K_SCAN);
        mct_dalog(G(g, Wl->A_log), g->dA_tmp, A, E * N, g->s);
        mct_add(G(g, Wl->D), g->dD_tmp, E, g->s);
        mark(g, K_ELT);
        mct_softplus_bwd(g->ddelta, E, g->ddelta, y->dtraw, E, W(g, Wl->dt_b), NULL, T, E, -INFINITY, INFINITY, g->s);
        mark(g, K_ELT);
        mct_colsum(G(g, Wl->dt_b), g->ddelta, E, T, E, 1, g->red, g->s);
        mark(g, K_RED);
        mm_bwd(g, g->dxdbl, R + 2 * N, G(g, Wl->dt_w), g->ddelta, NULL, T, y->xdbl, R + 2 * N, W(g, Wl->dt_w), E, R);
        mm_bwd_to(g, g->dact, E, 1, G(g, Wl->x_w), g->dxdbl, NULL, T, y->act, y->act16, C, W(g, Wl->x_w), R + 2 * N, E);
    } else {
        if (Wl->gnorm)
            mct_rmsnorm_bwd(g->dys, G(g, Wl->gnorm), g->dyo, y->gated, y->grstd, W(g, Wl->gnorm), T * Gn, E / Gn, Gn, 0, g->red,
                            g->s);
        else cudaMemcpyAsync(g->dys, g->dyo, (size_t)(T * E) * 4, cudaMemcpyDeviceToDevice, g->s);
        mark(g, K_NORM);
        mct_gate_bwd(g->dys, g->dproj, in, g->dys, y->ys, y->proj, in, T, E, g->s);
        mark(g, K_ELT);
        mct_dskip_bwd(g->ssd_tc ? NULL : g->dact, C, G(g, Wl->D), g->dys, y->act, C, W(g, Wl->D), T, E, Pd, g->red, g->s);
        mark(g, K_ELT);
        mct_ssd a = {.B = nb, .L = L, .H = H, .P = Pd, .N = N, .G = Gn, .x = y->act, .xs = C, .Bm = y->act + E,
                     .Cm = y->act + E + Gn * N, .bcs = C, .dt = y->delta, .A = A, .keep = y->scan_keep, .dy = g->dys, .dx = g->dact, .dxs = C,
                     .dB = g->dact + E, .dC = g->dact + E + Gn * N, .ddt = g->ddelta, .dA = g->dA_tmp, .scratch = g->ssm,
                     .tc = g->ssd_tc, .D = g->ssd_tc ? W(g, Wl->D) : NULL};
        mct_ssd_bwd(&a, g->s); /* with the tensor-core form dx = D dy + the SSD's part */
        mark(g, K_SCAN);
        mct_dalog(G(g, Wl->A_log), g->dA_tmp, A, H, g->s);
        mark(g, K_ELT);
        mct_softplus_bwd(g->dproj + E + C, in, g->ddelta, y->proj + E + C, in, W(g, Wl->dt_b), y->delta, T, H, cf->dt_min_limit,
                         cf->dt_max_limit, g->s);
        mark(g, K_ELT);
        mct_colsum(G(g, Wl->dt_b), g->dproj + E + C, in, T, H, 1, g->red, g->s);
        mark(g, K_RED);
    }
    const int64_t off = m1 ? 0 : E;
    mct_conv_silu_bwd(g->dproj + off, in, G(g, Wl->conv_w), G(g, Wl->conv_b), g->dact, y->convp, y->proj + off, in,
                      W(g, Wl->conv_w), nb, L, C, K, g->red, g->s);
    mark(g, K_CONV);
    if (Wl->in_b) mct_colsum(G(g, Wl->in_b), g->dproj, in, T, in, 1, g->red, g->s);
    mark(g, K_RED);
    mm_bwd_to(g, g->dxn, D, 0, G(g, Wl->in_w), g->dproj, NULL, T, y->xn, y->xn16, D, W(g, Wl->in_w), in, D);
    mct_rmsnorm_bwd(g->dh, G(g, Wl->norm), g->dxn, y->h_in, y->rstd, W(g, Wl->norm), T, D, 1, 1, g->red, g->s);
    mark(g, K_NORM);
}

/* The rows of ids grouped by token (stable), for the embedding's gradient. */
static int64_t group_by_token(mc_gtrain *g, const int32_t *ids, int64_t T) {
    const int64_t V = g->cfg.n_vocab_rows;
    int32_t *bucket = g->h_bucket;
    memset(bucket, 0, (size_t)(V + 1) * 4);
    for (int64_t r = 0; r < T; r++) bucket[ids[r] + 1]++;
    int64_t n_tok = 0;
    for (int64_t v = 0; v < V; v++) {
        if (bucket[v + 1]) {
            g->h_tok[n_tok] = (int32_t)v, g->h_count[n_tok] = bucket[v + 1], g->h_start[n_tok] = bucket[v];
            n_tok++;
        }
        bucket[v + 1] += bucket[v];
    }
    for (int64_t r = 0; r < T; r++) g->h_order[bucket[ids[r]]++] = (int32_t)r;
    return n_tok;
}

mambac_status mc_gtrain_step(mc_gtrain *g, const int32_t *ids, int64_t nb, int backward, float scale, double *loss,
                             mambac_error *err) {
    return mc_gtrain_step_targets(g, ids, NULL, nb, backward, scale, loss, err);
}

mambac_status mc_gtrain_step_targets(mc_gtrain *g, const int32_t *ids, const int32_t *targets, int64_t nb, int backward,
                                     float scale, double *loss, mambac_error *err) {
    const mambac_model_info *cf = &g->cfg;
    const mc_params *P = g->P;
    const int64_t L = g->L, T = nb * L, D = cf->d_model, V = cf->n_vocab_rows;
    if (nb < 1 || nb > g->B) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "GPU training step: %lld sequences (at most %lld)",
                                            (long long)nb, (long long)g->B);
    for (int64_t r = 0; r < T; r++) {
        if (ids[r] < 0 || ids[r] >= V) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "token id %d out of range", ids[r]);
        g->h_tgt[r] = targets ? targets[r] : r % L == L - 1 ? -1 : ids[r + 1];
        if (g->h_tgt[r] >= V) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "target id %d out of range", g->h_tgt[r]);
    }
    cudaMemcpyAsync(g->ids, ids, (size_t)T * 4, cudaMemcpyHostToDevice, g->s);
    cudaMemcpyAsync(g->tgt, g->h_tgt, (size_t)T * 4, cudaMemcpyHostToDevice, g->s);
    int64_t n_tok = 0;
    if (backward) {
        n_tok = group_by_token(g, ids, T);
        cudaMemcpyAsync(g->order, g->h_order, (size_t)T * 4, cudaMemcpyHostToDevice, g->s);
        cudaMemcpyAsync(g->tok, g->h_tok, (size_t)n_tok * 4, cudaMemcpyHostToDevice, g->s);
        cudaMemcpyAsync(g->start, g->h_start, (size_t)n_tok * 4, cudaMemcpyHostToDevice, g->s);
        cudaMemcpyAsync(g->count, g->h_count, (size_t)n_tok * 4, cudaMemcpyHostToDevice, g->s);
    }
    if (backward && ++g->pf.fb_steps == g->pf.ncu_step) cudaProfilerStart();
    mark(g, K_COPY);
    mcu_embed(g->h, W(g, P->emb), g->ids, T, D, g->s);
    mark(g, K_EMBED);
    for (int i = 0; i < cf->n_layer; i++) layer_fwd(g, i, nb);
    mct_rmsnorm_fwd(g->bf16 ? NULL : g->hf, g->hf16, g->rstd_f, g->h, W(g, P->norm_f), T, D, 1, cf->norm_eps, g->s);
    mark(g, K_NORM);
    g->pf.head = 1;
    const float *Wout = P->lm_head ? P->lm_head : P->emb;
    const int64_t counted = mc_train_count_targets(targets, nb, L);
    const double inv = counted > 0 ? 1.0 / (double)counted : 0.0;
    float *dhf = g->dxn; /* the final norm's output gradient reuses dxn, as on the CPU */
    for (int64_t r0 = 0; r0 < T; r0 += g->rows_chunk) {
        const int64_t n = r0 + g->rows_chunk < T ? g->rows_chunk : T - r0;
        const void *hf16 = g->hf16 ? (const uint16_t *)g->hf16 + r0 * D : NULL;
        mm_to(g, g->logits, V, g->hf + r0 * D, hf16, D, n, W(g, Wout), V, D, NULL, 0);
        /* with bf16 products the logits' gradient is written in bf16 for its two products */
        void *dl16 = g->bf16 && backward ? g->b16 : NULL;
        mct_xent(g->logits, dl16, g->loss_rows + r0, g->tgt + r0, n, V, backward, (float)(scale * inv), g->s);
        mark(g, K_HEAD);
        if (backward) mm_bwd_to(g, dhf + r0 * D, D, 0, G(g, Wout), g->logits, dl16, n, g->hf + r0 * D, hf16, D, W(g, Wout), V, D);
    }
    g->pf.head = 0;
    mct_sum_d(g->scalars, g->loss_rows, T, inv, g->s);
    mark(g, K_HEAD);
    if (backward) {
        mct_rmsnorm_bwd(g->dh, G(g, P->norm_f), dhf, g->h, g->rstd_f, W(g, P->norm_f), T, D, 1, 0, g->red, g->s);
        mark(g, K_NORM);
        for (int i = cf->n_layer - 1; i >= 0; i--) layer_bwd(g, i, nb);
        mct_embed_bwd(G(g, P->emb), g->dh, D, g->order, g->tok, g->start, g->count, n_tok, g->s);
        mark(g, K_EMBED);
    }
    double l = 0;
    cudaMemcpyAsync(&l, g->scalars, 8, cudaMemcpyDeviceToHost, g->s);
    const mambac_status st = sync(g, "training step", err);
    if (g->pf.on) {
        prof_collect(g);
        g->pf.steps += backward;
    }
    *loss = l;
    return st;
}

mambac_status mc_gtrain_update(mc_gtrain *g, mc_adamw *o, double clip, float lr, double *grad_norm, mambac_error *err) {
    mark(g, K_COPY);
    mct_sumsq(g->scalars + 1, g->g, g->total, g->sumsq, g->s);
    double ss = 0;
    cudaMemcpyAsync(&ss, g->scalars + 1, 8, cudaMemcpyDeviceToHost, g->s);
    mambac_status st = sync(g, "gradient norm", err);
    if (st != MAMBAC_OK) return st;
    const double norm = sqrt(ss);
    const float f = clip > 0 && norm > clip ? (float)(clip / (norm + 1e-6)) : 1.0f;
    o->step++;
    const double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    const float a = (float)(lr / bc1), rb2 = (float)(1.0 / sqrt(bc2));
    const mc_params *P = g->P;
    for (size_t i = 0; i < P->n; i++) {
        const mc_param *p = &P->v[i];
        const int64_t off = p->w - P->w;
        const float decay = p->decay ? 1.0f - lr * o->weight_decay : 1.0f;
        mct_adamw(g->w + off, g->m + off, g->v + off, g->g + off, p->n, f, o->beta1, o->beta2, o->eps, a, rb2, decay, g->s);
    }
    if (g->bf16) mcu_to_bf16(g->w16, g->w, g->total, 1, g->total, g->s);
    *grad_norm = norm;
    mark(g, K_OPT);
    if (g->pf.fb_steps == g->pf.ncu_step) cudaProfilerStop();
    if (g->pf.on) {
        cudaStreamSynchronize(g->s);
        prof_collect(g);
    }
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? MAMBAC_OK : cu_fail(err, e, "AdamW update");
}
