/* backend_cuda.c — the CUDA backend: the ops of backend.h on one NVIDIA GPU. Host C
 * over the CUDA runtime and cuBLAS; the kernels are in the .cu files beside it
 * (cuda_ops.h). The device, stream and cuBLAS handle live in the backend's objects,
 * never in globals.
 *
 * Weights: at load every matrix goes to device memory as float32 (precision "f32":
 * products by cuBLAS SGEMM, exact float32 like the CPU) or as bf16 (precision "bf16":
 * activations rounded to bf16 per product, tensor-core products with float32
 * accumulation). The embedding stays float32 for row lookups; small SSM parameters are
 * float32. q8_0 and q4_0 matrices stay quantized on the device (gemv.cu, dequant.cu): products of
 * a few rows read them as stored, longer ones dequantize tiles of rows (float32 or bf16
 * by the precision) into a scratch of the context for cuBLAS. Other quantized types
 * (q4_K, q5_0, q6_K) are dequantized at load. States are device memory, laid out as on the CPU, so
 * save / load / copy work across backends.
 *
 * A micro-batch: ids and the segment table (one entry per segment and layer) go up in
 * one copy each, every op is queued on the context's stream, and logits() copies the
 * chosen rows down and waits — the only synchronisation of a micro-batch. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cuda/cuda_ops.h"
#include "infer/state.h"
#include "model/model.h"
#include "model/repack_x16.h"

#define MAX_CONV_K 8
#define MAX_GRAPHS 32
#define BLAS_WORKSPACE (32u << 20)
#define WTILE_BYTES ((int64_t)32 << 20) /* a context's dequantized tile of a quantized matrix */

typedef mcu_matrix dev_matrix; /* float32 / bf16 values, or q8_0 / q4_0 kept quantized */

typedef struct dev_layer {
    float *norm, *in_b, *conv_w, *conv_b, *dt_bias, *A, *D, *gnorm, *out_b;
    dev_matrix in_proj, x_proj, dt_proj, out_proj;
} dev_layer;

typedef struct cuda_model {
    int device;
    int bf16;          /* products in bf16 (precision "bf16") */
    float *embed;      /* (V, D) float32 */
    dev_matrix lm_head;
    float *norm_f;
    dev_layer *layers;
    void **allocs;     /* everything cudaMalloc'd for the weights */
    size_t n_allocs, cap_allocs;
    size_t bytes;
    int has_quant; /* a matrix kept quantized: contexts then need a dequantization tile */
} cuda_model;

static mambac_status cuda_fail(mambac_error *err, cudaError_t e, const char *what) {
    return mc_fail(err, e == cudaErrorMemoryAllocation ? MAMBAC_ERR_NOMEM : MAMBAC_ERR_IO, "cuda: %s: %s", what,
                   cudaGetErrorString(e));
}

static void *dev_alloc(cuda_model *cm, size_t bytes, cudaError_t *e) {
    void *p = NULL;
    if (cm->n_allocs == cm->cap_allocs) {
        size_t cap = cm->cap_allocs ? 2 * cm->cap_allocs : 64;
        void **a = realloc(cm->allocs, cap * sizeof *a);
        if (!a) {
            *e = cudaErrorMemoryAllocation;
            return NULL;
        }
        cm->allocs = a, cm->cap_allocs = cap;
    }
    *e = cudaMalloc(&p, bytes ? bytes : 4);
    if (*e != cudaSuccess) return NULL;
    cm->allocs[cm->n_allocs++] = p;
    cm->bytes += bytes;
    return p;
}

/* A float32 vector of n to the device (NULL stays NULL). */
static int up_vec(cuda_model *cm, float **out, const float *host, int64_t n, cudaError_t *e) {
    *out = NULL;
    if (!host) return 1;
    float *d = dev_alloc(cm, (size_t)n * sizeof(float), e);
    if (!d || (*e = cudaMemcpy(d, host, (size_t)n * sizeof(float), cudaMemcpyHostToDevice)) != cudaSuccess) return 0;
    *out = d;
    return 1;
}

/* A matrix in any stored dtype and layout to the device as float32 (or bf16), a block of
 * rows at a time through a host buffer. */
static int up_matrix(cuda_model *cm, dev_matrix *out, const mc_weight *W, int as_bf16, cudaError_t *e) {
    memset(out, 0, sizeof *out);
    if (!W->data) return 1;
    const int64_t R = W->rows, K = W->cols, esz = as_bf16 ? 2 : 4, block = 256;
    unsigned char *d = dev_alloc(cm, (size_t)(R * K * esz), e);
    float *row = malloc((size_t)K * sizeof(float));
    unsigned char *buf = malloc((size_t)(block * K * esz));
    int ok = d && row && buf;
    if (!row || !buf) *e = cudaErrorMemoryAllocation;
    for (int64_t r0 = 0; ok && r0 < R; r0 += block) {
        const int64_t n = R - r0 < block ? R - r0 : block;
        for (int64_t r = 0; r < n; r++) {
            if (as_bf16) {
                mc_weight_row_f32(row, W, r0 + r);
                uint16_t *o = (uint16_t *)(void *)(buf + r * K * 2);
                for (int64_t k = 0; k < K; k++) o[k] = mc_f32_to_bf16(row[k]);
            } else {
                mc_weight_row_f32((float *)(void *)(buf + r * K * 4), W, r0 + r);
            }
        }
        ok = (*e = cudaMemcpy(d + r0 * K * esz, buf, (size_t)(n * K * esz), cudaMemcpyHostToDevice)) == cudaSuccess;
    }
    free(row);
    free(buf);
    if (ok) *out = (dev_matrix){.w = d, .type = as_bf16 ? MCU_W_BF16 : MCU_W_F32, .R = R, .K = K};
    return ok;
}

/* A q8_0 / q4_0 matrix to the device as it is stored, its blocks split into quants and
 * scales (cuda_ops.h mcu_matrix), a block of rows at a time. */
static int up_quant(cuda_model *cm, dev_matrix *out, const mc_weight *W, cudaError_t *e) {
    memset(out, 0, sizeof *out);
    const int q4 = W->dtype == MAMBAC_DTYPE_Q4_0;
    const int64_t R = W->rows, K = W->cols, nb = K / 32, qb = q4 ? 16 : 32, block = 256;
    const size_t row_bytes = mc_dtype_row_bytes(W->dtype, K), q_row = (size_t)(nb * qb), d_row = (size_t)nb * 2;
    unsigned char *dq = dev_alloc(cm, (size_t)R * q_row, e), *dd = dq ? dev_alloc(cm, (size_t)R * d_row, e) : NULL;
    unsigned char *tmp = malloc(row_bytes), *bq = malloc((size_t)block * q_row), *bd = malloc((size_t)block * d_row);
    int ok = dd && tmp && bq && bd;
    if (!tmp || !bq || !bd) *e = cudaErrorMemoryAllocation;
    for (int64_t r0 = 0; ok && r0 < R; r0 += block) {
        const int64_t n = R - r0 < block ? R - r0 : block;
        for (int64_t r = 0; r < n; r++) {
            const uint8_t *src = mc_weight_row_bytes(W, r0 + r, tmp);
            for (int64_t b = 0; b < nb; b++) {
                memcpy(bd + (size_t)r * d_row + 2 * b, src + b * (2 + qb), 2);
                memcpy(bq + (size_t)r * q_row + b * qb, src + b * (2 + qb) + 2, (size_t)qb);
            }
        }
        ok = (*e = cudaMemcpy(dq + r0 * q_row, bq, (size_t)n * q_row, cudaMemcpyHostToDevice)) == cudaSuccess &&
             (*e = cudaMemcpy(dd + r0 * d_row, bd, (size_t)n * d_row, cudaMemcpyHostToDevice)) == cudaSuccess;
    }
    free(tmp), free(bq), free(bd);
    if (ok) {
        *out = (dev_matrix){.w = dq, .d = dd, .type = q4 ? MCU_W_Q4_0 : MCU_W_Q8_0, .R = R, .K = K};
        cm->has_quant = 1;
    }
    return ok;
}

static int kept_quantized(const mc_weight *W) {
    return (W->dtype == MAMBAC_DTYPE_Q8_0 || W->dtype == MAMBAC_DTYPE_Q4_0) && W->cols % 32 == 0 &&
           W->cols * 4 <= WTILE_BYTES;
}

/* A product's matrix to the device: kept quantized, or as float32 / bf16. */
static int up_weight(cuda_model *cm, dev_matrix *out, const mc_weight *W, int as_bf16, cudaError_t *e) {
    if (W->data && kept_quantized(W)) return up_quant(cm, out, W, e);
    return up_matrix(cm, out, W, as_bf16, e);
}

static void cuda_model_free(struct mambac_model *m) {
    cuda_model *cm = m->bmodel;
    if (!cm) return;
    cudaSetDevice(cm->device);
    for (size_t i = 0; i < cm->n_allocs; i++) cudaFree(cm->allocs[i]);
    free(cm->allocs);
    free(cm->layers);
    free(cm);
    m->bmodel = NULL;
}

static mambac_status cuda_model_init(struct mambac_model *m, const char *device, const mambac_model_params *p,
                                     mambac_error *err) {
    long dev = 0;
    if (device) {
        char *end;
        dev = strtol(device, &end, 10);
        if (!*device || *end || dev < 0 || dev > 1024)
            return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "backend 'cuda:%s': the device must be a number", device);
    }
    int bf16 = 0;
    if (p->precision && strcmp(p->precision, "bf16") == 0) bf16 = 1;
    else if (p->precision && strcmp(p->precision, "f32") != 0)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "precision '%s' is not one of f32, bf16", p->precision);
    const mambac_model_info *c = &m->info;
    if (c->d_conv > MAX_CONV_K)
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "cuda: conv width %d is above %d", c->d_conv, MAX_CONV_K);
    if (c->d_state > 256) return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "cuda: d_state %d is above 256", c->d_state);
    if (c->bcdt_rms)
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "cuda: FalconMamba (norms on dt / B / C) runs on the CPU backend only so far");
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return cuda_fail(err, e, "no usable GPU (is the NVIDIA driver loaded?)");
    if (dev >= count) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "cuda: device %ld asked for, %d present", dev, count);
    if ((e = cudaSetDevice((int)dev)) != cudaSuccess) return cuda_fail(err, e, "cannot use the device");
    cuda_model *cm = calloc(1, sizeof *cm);
    if (!cm) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    cm->device = (int)dev;
    cm->bf16 = bf16;
    m->bmodel = cm;
    cm->layers = calloc((size_t)c->n_layer, sizeof *cm->layers);
    if (!cm->layers) {
        cuda_model_free(m);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    }
    const int64_t D = c->d_model, E = c->d_inner, N = c->d_state, C = mc_conv_channels(c), K = c->d_conv;
    const int m1 = c->arch == MAMBAC_ARCH_MAMBA1;
    const int64_t nh = m1 ? E : c->n_heads; /* dt_bias, D: per channel (Mamba-1) or head */
    int ok = 1;
    dev_matrix emb32 = {0};
    ok = up_matrix(cm, &emb32, &m->embed, 0, &e) && up_vec(cm, &cm->norm_f, m->norm_f, D, &e);
    cm->embed = (float *)(uintptr_t)emb32.w;
    if (ok) {
        if (!bf16 && m->lm_head.data == m->embed.data && !kept_quantized(&m->lm_head)) cm->lm_head = emb32;
        else ok = up_weight(cm, &cm->lm_head, &m->lm_head, bf16, &e);
    }
    for (int l = 0; ok && l < c->n_layer; l++) {
        const mc_layer *L = &m->layers[l];
        dev_layer *G = &cm->layers[l];
        ok = up_vec(cm, &G->norm, L->norm, D, &e) && up_weight(cm, &G->in_proj, &L->in_proj, bf16, &e) &&
             up_vec(cm, &G->in_b, L->in_proj_b, L->in_proj.rows, &e) && up_vec(cm, &G->conv_w, L->conv_w, C * K, &e) &&
             up_vec(cm, &G->conv_b, L->conv_b, C, &e) && up_vec(cm, &G->dt_bias, L->dt_bias, nh, &e) &&
             up_vec(cm, &G->A, L->A, m1 ? E * N : nh, &e) && up_vec(cm, &G->D, L->D, nh, &e) &&
             up_vec(cm, &G->gnorm, L->gnorm, E, &e) && up_weight(cm, &G->out_proj, &L->out_proj, bf16, &e) &&
             up_vec(cm, &G->out_b, L->out_proj_b, D, &e);
        if (ok && m1) ok = up_weight(cm, &G->x_proj, &L->x_proj, bf16, &e) && up_weight(cm, &G->dt_proj, &L->dt_proj, bf16, &e);
    }
    if (!ok) {
        cuda_model_free(m);
        return cuda_fail(err, e, "uploading the weights");
    }
    return MAMBAC_OK;
}

/* ---- states: device memory ------------------------------------------------------------ */

static float *cuda_state_alloc(const struct mambac_model *m, size_t n) {
    const cuda_model *cm = m->bmodel;
    float *d = NULL;
    cudaSetDevice(cm->device);
    if (cudaMalloc((void **)&d, (n ? n : 1) * sizeof(float)) != cudaSuccess) return NULL;
    if (cudaMemset(d, 0, (n ? n : 1) * sizeof(float)) != cudaSuccess) {
        cudaFree(d);
        return NULL;
    }
    return d;
}
static void cuda_state_free(const struct mambac_model *m, float *d) {
    cudaSetDevice(((const cuda_model *)m->bmodel)->device);
    cudaFree(d);
}
static void cuda_state_zero(const struct mambac_model *m, float *d, size_t n) {
    cudaSetDevice(((const cuda_model *)m->bmodel)->device);
    cudaMemset(d, 0, n * sizeof(float));
}
static void cuda_state_read(const struct mambac_model *m, float *host, const float *d, size_t n) {
    cudaSetDevice(((const cuda_model *)m->bmodel)->device);
    cudaMemcpy(host, d, n * sizeof(float), cudaMemcpyDeviceToHost);
}
static void cuda_state_write(const struct mambac_model *m, float *d, const float *host, size_t n) {
    cudaSetDevice(((const cuda_model *)m->bmodel)->device);
    cudaMemcpy(d, host, n * sizeof(float), cudaMemcpyHostToDevice);
}
static void cuda_state_copy(const struct mambac_model *m, float *dst, const float *src, size_t n) {
    cudaSetDevice(((const cuda_model *)m->bmodel)->device);
    cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice);
}

/* ---- contexts ----------------------------------------------------------------------------- */

typedef struct cuda_ctx {
    const struct mambac_model *model;
    const cuda_model *cm;
    cudaStream_t stream;
    cublasHandle_t blas;
    int64_t U, lrows;
    float *h, *xn, *proj, *xdbl, *dt, *y, *logits; /* device scratch */
    void *act16;                                   /* bf16 copy of a product's input */
    void *wtile;                                   /* a quantized matrix's dequantized rows (or NULL) */
    mcu_chunks chunks;                             /* long segments' chunk states (cuda_ops.h) */
    float *conv_hist;                              /* long segments' conv chunk histories */
    int64_t max_cchunks;
    int32_t *d_ids, *d_rows;
    uint64_t *d_tok;                               /* argmax keys (cuda_ops.h mcu_argmax) */
    mcu_seg *d_seg;                                /* (n_layer, U) */
    int32_t *h_ids, *h_rows;                       /* pinned host staging */
    uint64_t *h_tok;
    mcu_seg *h_seg;
    void *mem;                                     /* one device allocation for all of the above */
    void *blas_ws;                                 /* cuBLAS workspace (no allocation inside a capture) */
    cudaError_t err;
    cublasStatus_t berr;
    /* Decode micro-batches run as CUDA graphs, one per row count, captured the first time
     * (the ops queue nothing while a graph replays): launch overhead paid once a step. */
    int use_graphs, capturing, replaying, graph_used;
    int64_t graph_rows;
    cudaGraphExec_t graph;                         /* the one being replayed */
    struct { int64_t rows; cudaGraphExec_t exec; } graphs[MAX_GRAPHS];
    int n_graphs, next_graph;
} cuda_ctx;

static void cuda_ctx_free(void *p) {
    cuda_ctx *x = p;
    cudaSetDevice(x->cm->device);
    for (int i = 0; i < x->n_graphs; i++) cudaGraphExecDestroy(x->graphs[i].exec);
    if (x->blas) cublasDestroy(x->blas);
    cudaFree(x->blas_ws);
    cudaFree(x->wtile);
    if (x->stream) cudaStreamDestroy(x->stream);
    cudaFree(x->mem);
    cudaFreeHost(x->h_ids);
    cudaFreeHost(x->h_rows);
    cudaFreeHost(x->h_tok);
    cudaFreeHost(x->h_seg);
    free(x);
}

static mambac_status cuda_ctx_new(const struct mambac_model *m, const mambac_context_params *p, void **out,
                                  mambac_error *err) {
    const cuda_model *cm = m->bmodel;
    const mambac_model_info *c = &m->info;
    cudaSetDevice(cm->device);
    cuda_ctx *x = calloc(1, sizeof *x);
    if (!x) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    x->model = m, x->cm = cm;
    const int64_t U = p->max_ubatch, D = c->d_model, E = c->d_inner, N = c->d_state;
    const int64_t W = m->layers[0].in_proj.rows, X = c->arch == MAMBAC_ARCH_MAMBA1 ? c->dt_rank + 2 * N : 0;
    const int64_t dtw = c->arch == MAMBAC_ARCH_MAMBA1 ? E : c->n_heads, V = c->n_vocab_rows;
    const int64_t widest = D > E ? D : E;
    x->U = U;
    x->lrows = U < 256 ? U : 256;
    const int64_t nch = mcu_chunks_max(U);
    const int64_t sizes[] = {U * D, U * D, U * W, U * X, U * dtw, U * E, x->lrows * V, (U * widest + 1) / 2,
                             nch * E * N, nch * E, mcu_conv_chunks_max(U) * (c->d_conv - 1) * mc_conv_channels(c),
                             U, U, 2 * U, (int64_t)(c->n_layer * U * sizeof(mcu_seg) / 4)};
    int64_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += (sizes[i] + 63) / 64 * 64;
    cudaError_t e = cudaMalloc(&x->mem, (size_t)total * 4);
    if (e == cudaSuccess) e = cudaMalloc(&x->blas_ws, BLAS_WORKSPACE);
    if (e == cudaSuccess && cm->has_quant) e = cudaMalloc(&x->wtile, (size_t)WTILE_BYTES);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaMallocHost((void **)&x->h_ids, (size_t)U * 4);
    if (e == cudaSuccess) e = cudaMallocHost((void **)&x->h_rows, (size_t)U * 4);
    if (e == cudaSuccess) e = cudaMallocHost((void **)&x->h_tok, (size_t)U * sizeof(uint64_t));
    if (e == cudaSuccess) e = cudaMallocHost((void **)&x->h_seg, (size_t)(c->n_layer * U) * sizeof(mcu_seg));
    if (e != cudaSuccess) {
        cuda_ctx_free(x);
        return cuda_fail(err, e, "allocating a context");
    }
    if (cublasCreate(&x->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(x->blas, x->stream) != CUBLAS_STATUS_SUCCESS ||
        cublasSetWorkspace(x->blas, x->blas_ws, BLAS_WORKSPACE) != CUBLAS_STATUS_SUCCESS) {
        cuda_ctx_free(x);
        return mc_fail(err, MAMBAC_ERR_IO, "cuda: cannot create a cuBLAS handle");
    }
    void **slots[] = {(void **)&x->h, (void **)&x->xn, (void **)&x->proj, (void **)&x->xdbl, (void **)&x->dt,
                      (void **)&x->y, (void **)&x->logits, &x->act16, (void **)&x->chunks.state,
                      (void **)&x->chunks.dtsum, (void **)&x->conv_hist, (void **)&x->d_ids, (void **)&x->d_rows, (void **)&x->d_tok,
                      (void **)&x->d_seg};
    float *q = x->mem;
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        *slots[i] = q;
        q += (sizes[i] + 63) / 64 * 64;
    }
    const char *g = getenv("MAMBAC_CUDA_GRAPHS"); /* "0": every op launched one by one (for comparisons) */
    x->use_graphs = !(g && strcmp(g, "0") == 0);
    *out = x;
    return MAMBAC_OK;
}

static const char *cuda_ctx_kernels(const void *p) { return ((const cuda_ctx *)p)->cm->bf16 ? "cuda-bf16" : "cuda-f32"; }
static int32_t cuda_ctx_threads(const void *p) { (void)p; return 1; }

/* Records the first launch error of the micro-batch. */
static void check_launch(cuda_ctx *x) {
    cudaError_t e = cudaGetLastError();
    if (x->err == cudaSuccess) x->err = e;
}

/* out (T rows of ldo) = x (T rows of xs; K used) A^T, + beta * out, by cuBLAS: A (n, K)
 * float32 or bf16 (bf16: in16 the input already in bf16). */
static void blas_product(cuda_ctx *x, float *out, int64_t ldo, const float *in, int64_t xs, const void *in16, int64_t T,
                         const void *A, int64_t n, int64_t K, float beta) {
    const float one = 1.0f;
    cublasStatus_t s;
    if (x->cm->bf16)
        s = cublasGemmEx(x->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)T, (int)K, &one, A, CUDA_R_16BF, (int)K, in16,
                         CUDA_R_16BF, (int)K, &beta, out, CUDA_R_32F, (int)ldo, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    else
        s = cublasSgemm(x->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)T, (int)K, &one, (const float *)A, (int)K, in,
                        (int)xs, &beta, out, (int)ldo);
    if (x->berr == CUBLAS_STATUS_SUCCESS) x->berr = s;
}

/* out (T rows of ldo) = x (T rows of xs; W.K used) W^T, + beta * out. in16: the same
 * input already rounded to bf16 by its producer, (T, W.K) packed, or NULL. */
static void gemm_ex(cuda_ctx *x, float *out, int64_t ldo, const float *in, int64_t xs, const void *in16, int64_t T,
                    const dev_matrix *W, float beta) {
    const int64_t R = W->R, K = W->K;
    if (T <= MCU_GEMV_MAX_T) { /* decode: read each weight once, as stored, no rounding of x */
        mcu_gemv(out, ldo, in, xs, T, W, beta, NULL, 0.0f, 0, x->stream);
        check_launch(x);
        return;
    }
    if (x->cm->bf16 && !in16) {
        mcu_to_bf16(x->act16, in, xs, T, K, x->stream);
        check_launch(x);
        in16 = x->act16;
    }
    if (W->type == MCU_W_F32 || W->type == MCU_W_BF16) {
        blas_product(x, out, ldo, in, xs, in16, T, W->w, R, K, beta);
        return;
    }
    /* quantized: tiles of rows dequantized, each multiplied into its columns of out */
    const int64_t esz = x->cm->bf16 ? 2 : 4, tile = WTILE_BYTES / (K * esz);
    for (int64_t r0 = 0; r0 < R; r0 += tile) {
        const int64_t n = R - r0 < tile ? R - r0 : tile;
        mcu_dequant(x->wtile, x->cm->bf16, W, r0, n, x->stream);
        check_launch(x);
        blas_product(x, out + r0, ldo, in, xs, in16, T, x->wtile, n, K, beta);
    }
}
static void gemm(cuda_ctx *x, float *out, int64_t ldo, const float *in, int64_t xs, int64_t T, const dev_matrix *W,
                 float beta) {
    gemm_ex(x, out, ldo, in, xs, NULL, T, W, beta);
}

/* Whether a product of T rows takes bf16 inputs: its producer then writes them (act16). */
static int bf16_input(const cuda_ctx *x, int64_t T) { return x->cm->bf16 && T > MCU_GEMV_MAX_T; }

static const mcu_seg *layer_segs(const cuda_ctx *x, const mc_ubatch *ub, int l) { return x->d_seg + (int64_t)l * ub->n_seg; }

/* Starts a micro-batch: the ids and the segment table of every layer go up. A decode
 * micro-batch replays its graph (the other ops then queue nothing), or is captured into
 * one. */
static void cuda_embed(void *p, const mc_ubatch *ub) {
    cuda_ctx *x = p;
    const mambac_model_info *c = &x->model->info;
    cudaSetDevice(x->cm->device);
    x->err = cudaSuccess, x->berr = CUBLAS_STATUS_SUCCESS;
    x->capturing = x->replaying = 0;
    cudaStreamSynchronize(x->stream); /* the staging buffers may still feed the last batch's copies */
    memcpy(x->h_ids, ub->ids, (size_t)ub->n_rows * sizeof(int32_t));
    int32_t chunks = 0, cchunks = 0; /* segments longer than a chunk: their chunks' places in the scratch */
    x->chunks.max_chunks_per_seg = x->max_cchunks = 0;
    for (int64_t i = 0; i < ub->n_seg; i++) {
        const mc_segment *g = &ub->seg[i];
        const int32_t nch = g->n > MCU_CHUNK ? (int32_t)((g->n + MCU_CHUNK - 1) / MCU_CHUNK) : 0;
        const int32_t ncc = g->n > MCU_CONV_CHUNK ? (int32_t)((g->n + MCU_CONV_CHUNK - 1) / MCU_CONV_CHUNK) : 0;
        for (int l = 0; l < c->n_layer; l++)
            x->h_seg[l * ub->n_seg + i] = (mcu_seg){(int32_t)g->row0, (int32_t)g->n, mc_state_conv(g->state, l),
                                                    mc_state_ssm(g->state, l), nch ? chunks : -1, ncc ? cchunks : -1};
        chunks += nch, cchunks += ncc;
        if (nch > x->chunks.max_chunks_per_seg) x->chunks.max_chunks_per_seg = nch;
        if (ncc > x->max_cchunks) x->max_cchunks = ncc;
    }
    if (x->use_graphs && ub->decode && ub->n_rows <= x->lrows) {
        x->graph_rows = ub->n_rows;
        for (int i = 0; i < x->n_graphs && !x->replaying; i++)
            if (x->graphs[i].rows == ub->n_rows) x->replaying = 1, x->graph = x->graphs[i].exec;
        if (x->replaying) return;
        cudaError_t e = cudaStreamBeginCapture(x->stream, cudaStreamCaptureModeThreadLocal);
        if (e == cudaSuccess) x->capturing = 1;
        else x->use_graphs = 0;
    }
    cudaMemcpyAsync(x->d_ids, x->h_ids, (size_t)ub->n_rows * sizeof(int32_t), cudaMemcpyHostToDevice, x->stream);
    cudaMemcpyAsync(x->d_seg, x->h_seg, (size_t)(c->n_layer * ub->n_seg) * sizeof(mcu_seg), cudaMemcpyHostToDevice,
                    x->stream);
    mcu_embed(x->h, x->cm->embed, x->d_ids, ub->n_rows, c->d_model, x->stream);
    check_launch(x);
}

/* A few rows (decode): the norm is fused into in_proj's product instead (norm_fused). */
static int norm_fused(int64_t T) { return T <= MCU_GEMV_MAX_T; }

static void cuda_norm(void *p, const mc_ubatch *ub, int l) {
    cuda_ctx *x = p;
    if (x->replaying || norm_fused(ub->n_rows)) return;
    const mambac_model_info *c = &x->model->info;
    const int b16 = bf16_input(x, ub->n_rows);
    mcu_rmsnorm(b16 ? x->act16 : (void *)x->xn, b16, x->h, NULL, x->cm->layers[l].norm, ub->n_rows, c->d_model,
                c->norm_eps, x->stream);
    check_launch(x);
}

static void cuda_in_proj_conv(void *p, const mc_ubatch *ub, int l) {
    cuda_ctx *x = p;
    if (x->replaying) return;
    const mambac_model_info *c = &x->model->info;
    const dev_layer *L = &x->cm->layers[l];
    const int64_t T = ub->n_rows, W = L->in_proj.R, c0 = c->arch == MAMBAC_ARCH_MAMBA1 ? 0 : c->d_inner;
    const int b16 = bf16_input(x, T);
    if (norm_fused(T)) {
        mcu_gemv(x->proj, W, x->h, c->d_model, T, &L->in_proj, 0.0f, L->norm, c->norm_eps, 0, x->stream);
        check_launch(x);
    } else {
        gemm_ex(x, x->proj, W, x->xn, c->d_model, b16 ? x->act16 : NULL, T, &L->in_proj, 0.0f);
    }
    if (L->in_b) mcu_add_bias(x->proj, W, L->in_b, T, W, x->stream);
    /* Mamba-1: the conv's outputs are x_proj's input */
    mcu_conv(x->proj + c0, W, mc_conv_channels(c), c->d_conv, L->conv_w, L->conv_b, layer_segs(x, ub, l), ub->n_seg,
             x->max_cchunks, x->conv_hist, b16 && c0 == 0 ? x->act16 : NULL, x->stream);
    check_launch(x);
}

static void cuda_mamba1_ssm(void *p, const mc_ubatch *ub, int l) {
    cuda_ctx *x = p;
    if (x->replaying) return;
    const mambac_model_info *c = &x->model->info;
    const dev_layer *L = &x->cm->layers[l];
    const int64_t T = ub->n_rows, E = c->d_inner, N = c->d_state, R = c->dt_rank, W = 2 * E, X = R + 2 * N;
    gemm_ex(x, x->xdbl, X, x->proj, W, bf16_input(x, T) ? x->act16 : NULL, T, &L->x_proj, 0.0f);
    /* a few rows: dt_proj inside the scan (its rows read once per channel, as the product would) */
    const int dt_fused = T <= MCU_GEMV_MAX_T && (L->dt_proj.type == MCU_W_F32 || L->dt_proj.type == MCU_W_BF16);
    if (!dt_fused) gemm(x, x->dt, E, x->xdbl, X, T, &L->dt_proj, 0.0f);
    const mcu_scan_args a = {
        .E = E, .N = N,
        .x = x->proj, .x_stride = W, .z = x->proj + E, .z_stride = W,
        .dt = x->dt, .dt_stride = E,
        .B = x->xdbl + R, .C = x->xdbl + R + N, .bc_stride = X,
        .A = L->A, .D = L->D, .dt_bias = L->dt_bias,
        .y = x->y, .y_stride = E,
        .dt_w = dt_fused ? L->dt_proj.w : NULL, .dt_w_bf16 = L->dt_proj.type == MCU_W_BF16, .dt_rank = R,
        .dt_in = x->xdbl, .dt_in_stride = X, .step = ub->decode,
        .y16 = bf16_input(x, T) ? x->act16 : NULL, /* out_proj's input */
    };
    mcu_selective_scan(&a, layer_segs(x, ub, l), ub->n_seg, &x->chunks, x->stream);
    check_launch(x);
}

static void cuda_mamba2_ssm(void *p, const mc_ubatch *ub, int l) {
    cuda_ctx *x = p;
    if (x->replaying) return;
    const mambac_model_info *c = &x->model->info;
    const dev_layer *L = &x->cm->layers[l];
    const int64_t T = ub->n_rows, E = c->d_inner, N = c->d_state, G = c->n_groups, H = c->n_heads, P = c->head_dim;
    const int64_t W = L->in_proj.R, Cch = E + 2 * G * N;
    float *xbc = x->proj + E;
    /* no chunked segment: dt's softplus where the SSD step uses it */
    const int dt_fused = x->chunks.max_chunks_per_seg == 0;
    if (!dt_fused) mcu_dt_softplus(x->dt, x->proj + E + Cch, W, L->dt_bias, T, H, c->dt_min_limit, c->dt_max_limit, x->stream);
    const mcu_ssd_args a = {.H = H, .P = P, .N = N, .G = G, .tc = x->cm->bf16,
                            .x = xbc, .x_stride = W, .B = xbc + E, .C = xbc + E + G * N, .bc_stride = W,
                            .dt = x->dt, .dt_stride = H, .A = L->A, .y = x->y, .y_stride = E,
                            .dt_raw = dt_fused ? x->proj + E + Cch : NULL, .dt_raw_stride = W, .dt_bias = L->dt_bias,
                            .dt_lo = c->dt_min_limit, .dt_hi = c->dt_max_limit};
    mcu_ssd(&a, layer_segs(x, ub, l), ub->n_seg, &x->chunks, x->stream);
    mcu_gate(x->y, bf16_input(x, T) ? x->act16 : NULL, xbc, x->proj, W, L->D, L->gnorm, T, E, P, G,
             c->norm_before_gate, c->norm_eps, x->stream);
    check_launch(x);
}

static void cuda_out_proj_residual(void *p, const mc_ubatch *ub, int l) {
    cuda_ctx *x = p;
    if (x->replaying) return;
    const mambac_model_info *c = &x->model->info;
    const dev_layer *L = &x->cm->layers[l];
    /* h += y out_proj^T; the SSM op left y in bf16 too where the product takes it */
    gemm_ex(x, x->h, c->d_model, x->y, c->d_inner, bf16_input(x, ub->n_rows) ? x->act16 : NULL, ub->n_rows, &L->out_proj,
            1.0f);
    if (L->out_b) mcu_add_bias(x->h, c->d_model, L->out_b, ub->n_rows, c->d_model, x->stream);
    check_launch(x);
}

/* Rows of x->logits (at `first`, consecutive) to their host destinations: runs of
 * consecutive destinations in one copy. */
static void copy_rows_out(cuda_ctx *x, const mc_logit_row *rows, int64_t k, int64_t V, int by_row) {
    for (int64_t i = 0; i < k;) {
        if (!rows[i].dst) { /* a token: comes down with the others (scatter_tokens) */
            i++;
            continue;
        }
        int64_t j = i + 1;
        const int64_t src = by_row ? rows[i].row : i;
        while (j < k && rows[j].dst == rows[i].dst + (j - i) * V && (!by_row || rows[j].row == rows[i].row + (j - i))) j++;
        cudaError_t e = cudaMemcpyAsync(rows[i].dst, x->logits + src * V, (size_t)((j - i) * V) * sizeof(float),
                                        cudaMemcpyDeviceToHost, x->stream);
        if (x->err == cudaSuccess) x->err = e;
        i = j;
    }
}

/* The argmax ids computed on the device (h_tok, row by row of `rows`) to their places. */
static void scatter_tokens(const cuda_ctx *x, const mc_logit_row *rows, int64_t n, int by_row) {
    for (int64_t i = 0; i < n; i++)
        if (!rows[i].dst) *rows[i].token = mcu_argmax_index(x->h_tok[by_row ? rows[i].row : i]);
}

static int any_tokens(const mc_logit_row *rows, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!rows[i].dst) return 1;
    return 0;
}

/* A decode graph computes the logits of every row (the lm_head is read once either way);
 * only the rows asked for are copied out. */
static void graph_logits(cuda_ctx *x, const mc_logit_row *rows, int64_t n) {
    const mambac_model_info *c = &x->model->info;
    const int64_t D = c->d_model, V = c->n_vocab_rows;
    if (x->capturing) {
        if (norm_fused(x->graph_rows)) {
            mcu_gemv(x->logits, V, x->h, D, x->graph_rows, &x->cm->lm_head, 0.0f, x->cm->norm_f, c->norm_eps, 0, x->stream);
        } else {
            mcu_rmsnorm(x->xn, 0, x->h, NULL, x->cm->norm_f, x->graph_rows, D, c->norm_eps, x->stream);
            check_launch(x);
            gemm(x, x->logits, V, x->xn, D, x->graph_rows, &x->cm->lm_head, 0.0f);
        }
        check_launch(x);
        mcu_argmax(x->d_tok, x->logits, V, x->graph_rows, c->vocab_size, x->stream);
        check_launch(x);
        cudaMemcpyAsync(x->h_tok, x->d_tok, (size_t)x->graph_rows * sizeof(uint64_t), cudaMemcpyDeviceToHost, x->stream);
        cudaGraph_t g = NULL;
        cudaError_t e = cudaStreamEndCapture(x->stream, &g);
        cudaGraphExec_t exec = NULL;
        if (e == cudaSuccess && x->err == cudaSuccess && x->berr == CUBLAS_STATUS_SUCCESS)
            e = cudaGraphInstantiate(&exec, g, 0);
        if (g) cudaGraphDestroy(g);
        x->capturing = 0;
        if (e != cudaSuccess || !exec) {
            if (x->err == cudaSuccess) x->err = e != cudaSuccess ? e : cudaErrorStreamCaptureInvalidated;
            x->use_graphs = 0; /* this context runs ops one by one from now on */
            return;
        }
        int slot;
        if (x->n_graphs < MAX_GRAPHS) {
            slot = x->n_graphs++;
        } else { /* the oldest goes */
            slot = x->next_graph++ % MAX_GRAPHS;
            cudaGraphExecDestroy(x->graphs[slot].exec);
        }
        x->graphs[slot].rows = x->graph_rows, x->graphs[slot].exec = exec;
        x->graph = exec;
    }
    cudaError_t e = cudaGraphLaunch(x->graph, x->stream);
    if (x->err == cudaSuccess) x->err = e;
    copy_rows_out(x, rows, n, V, 1);
}

static mambac_status cuda_logits(void *p, const mc_ubatch *ub, const mc_logit_row *rows, int64_t n, mambac_error *err) {
    cuda_ctx *x = p;
    const mambac_model_info *c = &x->model->info;
    const int64_t D = c->d_model, V = c->n_vocab_rows;
    (void)ub;
    x->graph_used = x->capturing || x->replaying;
    if (x->graph_used) {
        graph_logits(x, rows, n);
    } else {
        for (int64_t i0 = 0; i0 < n; i0 += x->lrows) {
            const int64_t k = n - i0 < x->lrows ? n - i0 : x->lrows;
            cudaStreamSynchronize(x->stream); /* h_rows may still feed the last group's copy */
            for (int64_t i = 0; i < k; i++) x->h_rows[i] = (int32_t)rows[i0 + i].row;
            cudaMemcpyAsync(x->d_rows, x->h_rows, (size_t)k * sizeof(int32_t), cudaMemcpyHostToDevice, x->stream);
            const int b16 = bf16_input(x, k);
            mcu_rmsnorm(b16 ? x->act16 : (void *)x->xn, b16, x->h, x->d_rows, x->cm->norm_f, k, D, c->norm_eps, x->stream);
            check_launch(x);
            gemm_ex(x, x->logits, V, x->xn, D, b16 ? x->act16 : NULL, k, &x->cm->lm_head, 0.0f);
            if (any_tokens(rows + i0, k)) {
                mcu_argmax(x->d_tok, x->logits, V, k, c->vocab_size, x->stream);
                check_launch(x);
                cudaMemcpyAsync(x->h_tok + i0, x->d_tok, (size_t)k * sizeof(uint64_t), cudaMemcpyDeviceToHost, x->stream);
            }
            copy_rows_out(x, rows + i0, k, V, 0);
        }
    }
    cudaError_t e = cudaStreamSynchronize(x->stream);
    if (x->err == cudaSuccess) x->err = e;
    if (x->err == cudaSuccess) scatter_tokens(x, rows, n, x->graph_used);
    if (x->err != cudaSuccess) return cuda_fail(err, x->err, "evaluating a micro-batch");
    if (x->berr != CUBLAS_STATUS_SUCCESS) return mc_fail(err, MAMBAC_ERR_IO, "cuda: cuBLAS product failed (status %d)", (int)x->berr);
    return MAMBAC_OK;
}

const mc_backend mc_backend_cuda = {
    .name = "cuda",
    .host_states = 0,
    .model_init = cuda_model_init,
    .model_free = cuda_model_free,
    .state_alloc = cuda_state_alloc,
    .state_free = cuda_state_free,
    .state_zero = cuda_state_zero,
    .state_read = cuda_state_read,
    .state_write = cuda_state_write,
    .state_copy = cuda_state_copy,
    .ctx_new = cuda_ctx_new,
    .ctx_free = cuda_ctx_free,
    .ctx_kernels = cuda_ctx_kernels,
    .ctx_threads = cuda_ctx_threads,
    .embed = cuda_embed,
    .norm = cuda_norm,
    .in_proj_conv = cuda_in_proj_conv,
    .mamba1_ssm = cuda_mamba1_ssm,
    .mamba2_ssm = cuda_mamba2_ssm,
    .out_proj_residual = cuda_out_proj_residual,
    .logits = cuda_logits,
};
