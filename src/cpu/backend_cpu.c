/* backend_cpu.c — the CPU backend: the ops of backend.h on the kernels of kernels.h and
 * a thread pool. Matrix products are split over weight rows, the conv over channels, the
 * Mamba-1 scan over channels and the SSD over heads; each range runs every segment of
 * the micro-batch on its own state. Decode fusions (a micro-batch of under 4 rows): the
 * conv step runs inside in_proj's row ranges and Mamba-1's dt_proj inside the scan's
 * channel ranges. On AMX, prefill products run in two phases (activations split into
 * bf16 parts once, then items of 32 rows handed out). Weight preparation: q4_0 / q8_0
 * matrices repacked 16 rows at a time where the decode kernels read that layout.
 * All scratch memory is allocated once per context. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "infer/state.h"
#include "model/model.h"
#include "model/repack_x16.h"

/* ---- weight preparation ---------------------------------------------------------- */

/* W into the layout the decode kernel reads best (repack_x16.h) when it is q4_0 or q8_0; the
 * file's pages it came from are given back, so resident memory stays one copy. */
static int repack_one(struct mambac_model *m, mc_weight *W) {
    if (!W->data || !mc_x16_eligible(W)) return 1;
    const void *src = W->data;
    void *buf = mc_x16_repack(W);
    if (!buf) return 0;
    m->repacked[m->n_repacked++] = buf;
    for (size_t f = 0; f < m->nfiles; f++)
        mc_file_forget(&m->files[f], src, mc_dtype_row_bytes(W->dtype, W->cols) * (size_t)W->rows);
    return 1;
}

/* Every q4_0 / q8_0 matrix repacked (an lm_head that is the embedding itself, with it).
 * 0 when out of memory. */
static int repack_quant(struct mambac_model *m) {
    const int head_is_embed = m->lm_head.data == m->embed.data;
    m->repacked = calloc(2 + 4 * (size_t)m->info.n_layer, sizeof(void *));
    if (!m->repacked) return 0;
    if (!repack_one(m, &m->embed) || (!head_is_embed && !repack_one(m, &m->lm_head))) return 0;
    for (int i = 0; i < m->info.n_layer; i++) {
        mc_layer *L = &m->layers[i];
        if (!repack_one(m, &L->in_proj) || !repack_one(m, &L->x_proj) || !repack_one(m, &L->dt_proj) ||
            !repack_one(m, &L->out_proj))
            return 0;
    }
    if (head_is_embed) m->lm_head = m->embed;
    return 1;
}

static mambac_status cpu_model_init(struct mambac_model *m, const char *device, const mambac_model_params *p,
                                    mambac_error *err) {
    if (device) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "backend 'cpu' takes no device, got 'cpu:%s'", device);
    const int repack = p->repack < 0 ? mc_kernels_want_x16() : p->repack;
    if (repack && !repack_quant(m)) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory repacking weights");
    return MAMBAC_OK;
}

static void cpu_model_free(struct mambac_model *m) {
    for (size_t i = 0; i < m->n_repacked; i++) free(m->repacked[i]);
    free(m->repacked);
    m->repacked = NULL;
    m->n_repacked = 0;
}

/* ---- states: host memory ----------------------------------------------------------- */

static float *cpu_state_alloc(const struct mambac_model *m, size_t n) {
    (void)m;
    return calloc(n ? n : 1, sizeof(float));
}
static void cpu_state_free(const struct mambac_model *m, float *d) { (void)m, free(d); }
static void cpu_state_zero(const struct mambac_model *m, float *d, size_t n) { (void)m, memset(d, 0, n * sizeof *d); }
static void cpu_state_copy(const struct mambac_model *m, float *dst, const float *src, size_t n) {
    (void)m;
    memcpy(dst, src, n * sizeof *dst);
}

/* ---- contexts ----------------------------------------------------------------------- */

typedef struct cpu_ctx {
    const struct mambac_model *model;
    int64_t U;       /* max_ubatch */
    float *arena;
    float *h;        /* (U, D) residual stream */
    float *xn;       /* (U, D) normalized input */
    float *proj;     /* (U, in_proj rows) */
    float *xdbl;     /* Mamba-1: (U, R + 2N) */
    float *dt;       /* Mamba-1: (U, E); Mamba-2: (U, H) */
    float *y;        /* (U, E) */
    float *out;      /* (U, D) */
    float *ssd;      /* Mamba-2 chunk scratch per thread */
    int64_t ssd_stride;
    float *gemm;     /* per-thread packed weight panels: MC_GEMM_SCRATCH(max K) each */
    int64_t gemm_stride;
    float *amx;      /* AMX kernels: the activations of one product split into bf16 parts, shared */
    float *lbuf;     /* logits of rows from several sequences, before they are copied out (lazy) */
    int64_t lbuf_rows;
    mc_pool *pool;
    const mc_kernels *kernels;
} cpu_ctx;

/* The SSD's chunk length in prefill. The chunked form is exact for any length (only
 * rounding differs), so it need not be the checkpoint's chunk_size (256 for the
 * released models): shorter chunks do fewer multiply-adds in the (l, l) products;
 * 64 measured fastest on mamba2-130m (docs/PERFORMANCE.md). */
static int64_t ssd_chunk(const mambac_model_info *c) { return c->chunk_size < 64 ? c->chunk_size : 64; }

static mambac_status cpu_ctx_new(const struct mambac_model *model, const mambac_context_params *p, void **out,
                                 mambac_error *err) {
    const char *isa;
    const mc_kernels *kernels = mc_kernels_select(p->isa, &isa);
    if (!kernels)
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "kernel set '%s'%s is unknown or not supported by this CPU (see mambac --version)",
                       isa, p->isa ? "" : " (MAMBAC_ISA)");
    const int nt = mc_threads_for(p->n_threads);
    const mambac_model_info *c = &model->info;
    const int64_t U = p->max_ubatch, D = c->d_model, E = c->d_inner, N = c->d_state;
    const int64_t in_rows = model->layers[0].in_proj.rows;
    const int64_t xdbl = c->arch == MAMBAC_ARCH_MAMBA1 ? c->dt_rank + 2 * N : 0;
    const int64_t dtw = c->arch == MAMBAC_ARCH_MAMBA1 ? E : c->n_heads;
    const int64_t L = c->arch == MAMBAC_ARCH_MAMBA2 ? ssd_chunk(c) : 0;
    const int64_t ssd = c->arch == MAMBAC_ARCH_MAMBA2 ? (mc_ssd_scratch_floats(L, N, c->head_dim) + 15) / 16 * 16 : 0;
    const int64_t gemm = (MC_GEMM_SCRATCH(D > E ? D : E) + 15) / 16 * 16;
    /* the widest product input: x_proj / out_proj read E columns, in_proj D, dt_proj R */
    const mc_weight widest = {MAMBAC_DTYPE_F32, NULL, 1, D > E ? D : E, 0};
    const int64_t amx = kernels->amx ? (mc_amx_split_bytes(&widest, U) + 3) / 4 : 0;
    const int64_t sizes[] = {U * D, U * D, U * in_rows, U * xdbl, U * dtw, U * E, U * D, ssd * nt, gemm * nt, amx};
    int64_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += (sizes[i] + 15) / 16 * 16; /* 64-byte aligned pieces */
    cpu_ctx *ctx = calloc(1, sizeof *ctx);
    float *arena = ctx ? aligned_alloc(64, (size_t)(total > 0 ? total : 16) * sizeof(float)) : NULL;
    mc_pool *pool = arena && nt > 1 ? mc_pool_new(nt) : NULL;
    if (!arena || (nt > 1 && !pool)) {
        free(ctx);
        free(arena);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory allocating %lld bytes of scratch and %d threads", (long long)total * 4, nt);
    }
    ctx->model = model;
    ctx->U = U;
    ctx->arena = arena;
    ctx->pool = pool;
    ctx->kernels = kernels;
    ctx->ssd_stride = ssd;
    ctx->gemm_stride = gemm;
    float **slots[] = {&ctx->h, &ctx->xn, &ctx->proj, &ctx->xdbl, &ctx->dt, &ctx->y, &ctx->out, &ctx->ssd, &ctx->gemm, &ctx->amx};
    float *q = arena;
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        *slots[i] = q;
        q += (sizes[i] + 15) / 16 * 16;
    }
    if (!amx) ctx->amx = NULL; /* not an AMX kernel set, or max_ubatch below its 32 tokens */
    *out = ctx;
    return MAMBAC_OK;
}

static void cpu_ctx_free(void *p) {
    cpu_ctx *ctx = p;
    mc_pool_free(ctx->pool);
    free(ctx->arena);
    free(ctx->lbuf);
    free(ctx);
}

static const char *cpu_ctx_kernels(const void *p) { return ((const cpu_ctx *)p)->kernels->name; }
static int32_t cpu_ctx_threads(const void *p) { return mc_pool_threads(((const cpu_ctx *)p)->pool); }

/* ---- parallel pieces -------------------------------------------------------------- */

/* A chunk for mc_pool_for_dynamic: a quarter of a thread's share of n items, a multiple
 * of `unit`. */
static int64_t share(const cpu_ctx *ctx, int64_t n, int64_t unit) {
    const int64_t g = n / (4 * mc_pool_threads(ctx->pool)) / unit * unit;
    return g < unit ? unit : g;
}

/* The causal conv of layer l over channels [c0, c1) of every segment (each channel has
 * its own window in each segment's state). x: the first conv channel of row 0. */
typedef struct conv_job {
    float *x;
    int64_t stride, K, C;
    const float *w, *b;
    const mc_ubatch *ub;
    int layer;
    const mc_kernels *k;
} conv_job;

static void conv_range(void *arg, int64_t c0, int64_t c1, int thread) {
    (void)thread;
    const conv_job *j = arg;
    for (int64_t s = 0; s < j->ub->n_seg; s++) {
        const mc_segment *g = &j->ub->seg[s];
        float *window = mc_state_conv(g->state, j->layer);
        j->k->conv_prefill(j->x + g->row0 * j->stride + c0, g->n, j->stride, c1 - c0, j->K, j->w + c0 * j->K,
                           j->b ? j->b + c0 : NULL, window + c0 * (j->K - 1));
    }
}

typedef struct gemm_job {
    mc_gemm_fn fn;
    float *out;
    const float *x;
    int64_t x_stride, T;
    const mc_weight *W;
    const float *bias;
    float *scratch;
    int64_t scratch_stride;
    void *planes; /* AMX: the split activations */
    /* decode: the conv step on output rows [conv0, conv0 + conv->C) as soon as a range of
     * them is done (no serial pass, no extra barrier); NULL otherwise */
    const conv_job *conv;
    int64_t conv0;
} gemm_job;

static void gemm_range(void *arg, int64_t r0, int64_t r1, int thread) {
    const gemm_job *j = arg;
    j->fn(j->out, j->W->rows, j->x, j->x_stride, j->T, j->W, r0, r1, j->bias, j->scratch + thread * j->scratch_stride);
    if (!j->conv) return;
    const int64_t c0 = r0 > j->conv0 ? r0 - j->conv0 : 0, c1 = r1 - j->conv0 < j->conv->C ? r1 - j->conv0 : j->conv->C;
    if (c1 > c0) conv_range((void *)j->conv, c0, c1, thread);
}

static void amx_split_range(void *arg, int64_t g0, int64_t g1, int thread) {
    (void)thread;
    const gemm_job *j = arg;
    mc_amx_split(j->planes, j->W, j->x, j->x_stride, j->T, g0, g1);
}

static void amx_item_range(void *arg, int64_t i0, int64_t i1, int thread) {
    const gemm_job *j = arg;
    for (int64_t i = i0; i < i1; i++)
        mc_amx_item(j->out, j->W->rows, j->planes, j->W, j->T, i, j->bias, j->scratch + thread * j->scratch_stride);
}

static gemm_job job(const cpu_ctx *ctx, float *out, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                    const float *bias) {
    return (gemm_job){ctx->kernels->gemm, out, x, x_stride, T, W, bias, ctx->gemm, ctx->gemm_stride, ctx->amx, NULL, 0};
}

/* Whether a product of T rows runs as ranges of rows handed out as threads ask (decode:
 * memory-bound; chunks go to whichever core is not held up). Work on those rows' outputs
 * can then ride in the same loop (the conv below, Mamba-1's dt_proj in the scan). */
static int rows_dynamic(const cpu_ctx *ctx, const mc_weight *W, int64_t T) {
    return T < 4 && !(ctx->amx && mc_amx_split_bytes(W, T) > 0);
}

/* out (T, W.rows) = x (T rows of x_stride) @ W^T + bias, split over rows handed out as
 * threads ask for them (a core slowed by other work takes fewer); then, unless conv is
 * NULL, the causal conv over output columns [conv0, conv0 + conv->C) — in decode inside
 * the row ranges (no serial pass, no extra barrier). On AMX the activations are split
 * into bf16 parts once (over 16-token groups), then items of 32 rows are handed out. */
static void matmul_conv(cpu_ctx *ctx, float *out, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                        const float *bias, const conv_job *conv, int64_t conv0) {
    gemm_job j = job(ctx, out, x, x_stride, T, W, bias);
    if (rows_dynamic(ctx, W, T)) {
        j.conv = conv, j.conv0 = conv0;
        mc_pool_for_dynamic(ctx->pool, W->rows, share(ctx, W->rows, MC_GEMM_PANEL), gemm_range, &j);
        return;
    }
    if (ctx->amx && mc_amx_split_bytes(W, T) > 0) {
        mc_pool_for(ctx->pool, (T + 31) / 32 * 2, 2, amx_split_range, &j);
        mc_pool_for_dynamic(ctx->pool, mc_amx_items(W, T), 1, amx_item_range, &j);
    } else {
        mc_pool_for_dynamic(ctx->pool, W->rows, share(ctx, W->rows, MC_GEMM_PANEL), gemm_range, &j);
    }
    if (conv) mc_pool_for_dynamic(ctx->pool, conv->C, share(ctx, conv->C, 64), conv_range, (void *)conv);
}

static void matmul(cpu_ctx *ctx, float *out, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                   const float *bias) {
    matmul_conv(ctx, out, x, x_stride, T, W, bias, NULL, 0);
}

/* The Mamba-1 scan over channels [c0, c1) of every segment. */
typedef struct scan_job {
    mc_scan_args a; /* rows of the whole micro-batch; T and state are set per segment */
    const mc_ubatch *ub;
    int layer;
    void (*scan)(const struct mc_scan_args *a);
    const gemm_job *dt_proj; /* decode: dt of the range's channels computed first; else NULL */
} scan_job;

static void scan_range(void *arg, int64_t c0, int64_t c1, int thread) {
    const scan_job *j = arg;
    if (j->dt_proj) gemm_range((void *)j->dt_proj, c0, c1, thread);
    for (int64_t s = 0; s < j->ub->n_seg; s++) {
        const mc_segment *g = &j->ub->seg[s];
        mc_scan_args a = j->a; /* the same scan on channels [c0, c1) of the segment's rows */
        a.T = g->n, a.E = c1 - c0;
        a.x += g->row0 * a.x_stride + c0, a.z += g->row0 * a.z_stride + c0;
        a.dt += g->row0 * a.dt_stride + c0, a.y += g->row0 * a.y_stride + c0;
        a.B += g->row0 * a.bc_stride, a.C += g->row0 * a.bc_stride;
        a.A += c0 * a.N, a.D += c0, a.dt_bias += c0;
        a.state = mc_state_ssm(g->state, j->layer) + c0 * a.N;
        j->scan(&a);
    }
}

/* The SSD over heads [h0, h1) of every segment: the step for one-token segments. */
typedef struct ssd_job {
    mc_ssd_args a;
    const mc_ubatch *ub;
    int layer;
    float *scratch;
    int64_t scratch_stride;
    void (*ssd)(const struct mc_ssd_args *a);
    void (*ssd_step)(const struct mc_ssd_args *a);
} ssd_job;

static void ssd_range(void *arg, int64_t h0, int64_t h1, int thread) {
    const ssd_job *j = arg;
    for (int64_t s = 0; s < j->ub->n_seg; s++) {
        const mc_segment *g = &j->ub->seg[s];
        mc_ssd_args a = j->a;
        a.T = g->n, a.h0 = h0, a.h1 = h1;
        a.x += g->row0 * a.x_stride, a.B += g->row0 * a.bc_stride, a.C += g->row0 * a.bc_stride;
        a.dt += g->row0 * a.dt_stride, a.y += g->row0 * a.y_stride;
        a.state = mc_state_ssm(g->state, j->layer);
        a.scratch = j->scratch + thread * j->scratch_stride;
        if (a.T == 1) j->ssd_step(&a);
        else j->ssd(&a);
    }
}

/* Mamba-2 after the SSD, row by row: y += D x, then the gated norm with z. */
typedef struct gate_job {
    float *y;
    const float *x, *z, *D, *gnorm;
    int64_t E, W, P, G;
    const mambac_model_info *c;
    const mc_kernels *k;
} gate_job;

static void gate_range(void *arg, int64_t t0, int64_t t1, int thread) {
    (void)thread;
    const gate_job *j = arg;
    for (int64_t t = t0; t < t1; t++) {
        float *y = j->y + t * j->E;
        const float *x = j->x + t * j->W;
        for (int64_t h = 0; h < j->E / j->P; h++)
            for (int64_t p = h * j->P; p < (h + 1) * j->P; p++) y[p] += j->D[h] * x[p];
        j->k->gated_norm(y, j->z + t * j->W, j->gnorm, j->E, j->G, j->c->norm_before_gate, j->c->norm_eps);
    }
}

/* ---- the ops ------------------------------------------------------------------------ */

static void cpu_embed(void *p, const mc_ubatch *ub) {
    cpu_ctx *ctx = p;
    const int64_t D = ctx->model->info.d_model;
    for (int64_t t = 0; t < ub->n_rows; t++) mc_embed_row(ctx->h + t * D, &ctx->model->embed, ub->ids[t]);
}

static void cpu_norm(void *p, const mc_ubatch *ub, int l) {
    cpu_ctx *ctx = p;
    const mambac_model_info *c = &ctx->model->info;
    mc_rmsnorm(ctx->xn, ctx->h, ctx->model->layers[l].norm, ub->n_rows, c->d_model, c->norm_eps);
}

/* in_proj, then the causal conv over its output columns [c0, c0 + C): Mamba-1 x, Mamba-2
 * x B C. */
static void cpu_in_proj_conv(void *p, const mc_ubatch *ub, int l) {
    cpu_ctx *ctx = p;
    const mambac_model_info *c = &ctx->model->info;
    const mc_layer *L = &ctx->model->layers[l];
    const int64_t c0 = c->arch == MAMBAC_ARCH_MAMBA1 ? 0 : c->d_inner, C = mc_conv_channels(c);
    const conv_job cj = {ctx->proj + c0, L->in_proj.rows, c->d_conv, C, L->conv_w, L->conv_b, ub, l, ctx->kernels};
    matmul_conv(ctx, ctx->proj, ctx->xn, c->d_model, ub->n_rows, &L->in_proj, L->in_proj_b, &cj, c0);
}

/* proj = [x | z] (conv done), then [dt_r | B | C] = x_proj(x), dt = dt_proj(dt_r) (bias
 * added in the scan), the scan with D and the z gate into y. */
static void cpu_mamba1_ssm(void *p, const mc_ubatch *ub, int l) {
    cpu_ctx *ctx = p;
    const mambac_model_info *c = &ctx->model->info;
    const mc_layer *L = &ctx->model->layers[l];
    const int64_t T = ub->n_rows, E = c->d_inner, N = c->d_state, R = c->dt_rank, W = 2 * E, X = R + 2 * N;
    matmul(ctx, ctx->xdbl, ctx->proj, W, T, &L->x_proj, NULL);
    if (c->bcdt_rms) mc_bcdt_rms(ctx->xdbl, T, X, R, N, c->mixer_rms_eps, NULL); /* FalconMamba */
    /* in decode dt_proj runs per channel range with the scan (one barrier less a layer) */
    const gemm_job dj = job(ctx, ctx->dt, ctx->xdbl, X, T, &L->dt_proj, NULL);
    const int fuse_dt = rows_dynamic(ctx, &L->dt_proj, T);
    if (!fuse_dt) matmul(ctx, ctx->dt, ctx->xdbl, X, T, &L->dt_proj, NULL);
    mc_scan_args a = {
        .E = E, .N = N,
        .x = ctx->proj, .x_stride = W, .z = ctx->proj + E, .z_stride = W,
        .dt = ctx->dt, .dt_stride = E,
        .B = ctx->xdbl + R, .C = ctx->xdbl + R + N, .bc_stride = X,
        .A = L->A, .D = L->D, .dt_bias = L->dt_bias,
        .y = ctx->y, .y_stride = E,
    };
    scan_job sj = {a, ub, l, ctx->kernels->scan, fuse_dt ? &dj : NULL};
    mc_pool_for_dynamic(ctx->pool, E, share(ctx, E, 16), scan_range, &sj);
}

/* proj = [z | x B C (conv done) | dt]: dt = clamp(softplus(dt + dt_bias)), the SSD, y += D x,
 * the gated norm with z into y. */
static void cpu_mamba2_ssm(void *p, const mc_ubatch *ub, int l) {
    cpu_ctx *ctx = p;
    const mambac_model_info *c = &ctx->model->info;
    const mc_layer *L = &ctx->model->layers[l];
    const int64_t T = ub->n_rows, E = c->d_inner, N = c->d_state, G = c->n_groups, H = c->n_heads, P = c->head_dim;
    const int64_t W = L->in_proj.rows, Cch = E + 2 * G * N;
    float *xbc = ctx->proj + E, *dt_raw = ctx->proj + E + Cch;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            float v = mc_softplus(dt_raw[t * W + h] + L->dt_bias[h]);
            v = v < c->dt_min_limit ? c->dt_min_limit : v > c->dt_max_limit ? c->dt_max_limit : v;
            ctx->dt[t * H + h] = v;
        }
    ssd_job j = {
        .a = {.H = H, .P = P, .N = N, .G = G, .L = ssd_chunk(c),
              .x = xbc, .x_stride = W, .B = xbc + E, .C = xbc + E + G * N, .bc_stride = W,
              .dt = ctx->dt, .dt_stride = H, .A = L->A, .y = ctx->y, .y_stride = E},
        .ub = ub, .layer = l,
        .scratch = ctx->ssd, .scratch_stride = ctx->ssd_stride, .ssd = ctx->kernels->ssd, .ssd_step = ctx->kernels->ssd_step,
    };
    /* the chunked SSD computes C B^T once per group for the heads of its range: one range
     * per thread keeps that to once per thread; the step has no per-group work */
    if (ub->decode) mc_pool_for_dynamic(ctx->pool, H, share(ctx, H, 1), ssd_range, &j);
    else mc_pool_for(ctx->pool, H, 1, ssd_range, &j);
    gate_job gj = {ctx->y, xbc, ctx->proj, L->D, L->gnorm, E, W, P, G, c, ctx->kernels};
    mc_pool_for(ctx->pool, T, 4, gate_range, &gj);
}

static void cpu_out_proj_residual(void *p, const mc_ubatch *ub, int l) {
    cpu_ctx *ctx = p;
    const mambac_model_info *c = &ctx->model->info;
    const mc_layer *L = &ctx->model->layers[l];
    const int64_t n = ub->n_rows * c->d_model;
    matmul(ctx, ctx->out, ctx->y, c->d_inner, ub->n_rows, &L->out_proj, L->out_proj_b);
    for (int64_t i = 0; i < n; i++) ctx->h[i] += ctx->out[i];
}

/* Rows of consecutive positions with consecutive destinations (one sequence's logits) go
 * straight into the caller's buffer; rows of several sequences are computed together into
 * a scratch buffer (the lm_head read once for all), then copied out. */
#define LOGIT_GROUP 64
static mambac_status cpu_logits(void *p, const mc_ubatch *ub, const mc_logit_row *rows, int64_t n, mambac_error *err) {
    cpu_ctx *ctx = p;
    const struct mambac_model *m = ctx->model;
    const mambac_model_info *c = &m->info;
    const int64_t D = c->d_model, V = c->n_vocab_rows;
    (void)ub;
    if (n == 0) return MAMBAC_OK;
    int contiguous = rows[0].dst != NULL;
    for (int64_t i = 1; i < n && contiguous; i++)
        contiguous = rows[i].row == rows[0].row + i && rows[i].dst == rows[0].dst + i * V;
    if (contiguous) {
        mc_rmsnorm(ctx->xn, ctx->h + rows[0].row * D, m->norm_f, n, D, c->norm_eps);
        matmul(ctx, rows[0].dst, ctx->xn, D, n, &m->lm_head, NULL);
        return MAMBAC_OK;
    }
    if (!ctx->lbuf) {
        ctx->lbuf_rows = ctx->U < LOGIT_GROUP ? ctx->U : LOGIT_GROUP;
        ctx->lbuf = malloc((size_t)(ctx->lbuf_rows * V) * sizeof(float));
        if (!ctx->lbuf) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory for %lld rows of logits", (long long)ctx->lbuf_rows);
    }
    for (int64_t i0 = 0; i0 < n; i0 += ctx->lbuf_rows) {
        const int64_t k = n - i0 < ctx->lbuf_rows ? n - i0 : ctx->lbuf_rows;
        for (int64_t i = 0; i < k; i++)
            mc_rmsnorm(ctx->xn + i * D, ctx->h + rows[i0 + i].row * D, m->norm_f, 1, D, c->norm_eps);
        matmul(ctx, ctx->lbuf, ctx->xn, D, k, &m->lm_head, NULL);
        for (int64_t i = 0; i < k; i++) {
            const mc_logit_row *r = &rows[i0 + i];
            if (r->dst) memcpy(r->dst, ctx->lbuf + i * V, (size_t)V * sizeof(float));
            else *r->token = mambac_argmax(ctx->lbuf + i * V, c->vocab_size);
        }
    }
    return MAMBAC_OK;
}

const mc_backend mc_backend_cpu = {
    .name = "cpu",
    .host_states = 1,
    .model_init = cpu_model_init,
    .model_free = cpu_model_free,
    .state_alloc = cpu_state_alloc,
    .state_free = cpu_state_free,
    .state_zero = cpu_state_zero,
    .state_read = cpu_state_copy,
    .state_write = cpu_state_copy,
    .state_copy = cpu_state_copy,
    .ctx_new = cpu_ctx_new,
    .ctx_free = cpu_ctx_free,
    .ctx_kernels = cpu_ctx_kernels,
    .ctx_threads = cpu_ctx_threads,
    .embed = cpu_embed,
    .norm = cpu_norm,
    .in_proj_conv = cpu_in_proj_conv,
    .mamba1_ssm = cpu_mamba1_ssm,
    .mamba2_ssm = cpu_mamba2_ssm,
    .out_proj_residual = cpu_out_proj_residual,
    .logits = cpu_logits,
};
