/* forward.c — evaluation contexts and the forward pass:
 *   h = embed(ids); per layer h += mixer(rmsnorm(h)); logits = rmsnorm_f(h) @ lm_head^T
 * Tokens go through in pieces of at most max_ubatch ("ubatches"). A piece of one token
 * takes the recurrent path (conv step, state update); longer pieces take the parallel
 * path (conv over time, selective scan / chunked SSD). Matmuls are split over weight
 * rows, the scan over channels and the SSD over heads, across the context's threads.
 * All scratch memory is allocated once per context: nothing is allocated per token. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "infer/state.h"
#include "model/model.h"

struct mambac_context {
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
    float *ssd;      /* Mamba-2 chunk scratch: L*L + 2L per thread */
    int64_t ssd_stride;
    float *gemm;     /* per-thread packed weight panels: MC_GEMM_SCRATCH(max K) each */
    int64_t gemm_stride;
    float *amx;      /* AMX kernels: the activations of one product split into bf16 parts, shared */
    mc_pool *pool;
    const mc_kernels *kernels;
};

mambac_context_params mambac_context_default_params(void) {
    return (mambac_context_params){.max_ubatch = 512, .n_threads = 0, .isa = NULL};
}

/* The SSD's chunk length in prefill. The chunked form is exact for any length (only
 * rounding differs), so it need not be the checkpoint's chunk_size (256 for the
 * released models): shorter chunks do fewer multiply-adds in the (l, l) products;
 * 64 measured fastest on mamba2-130m (docs/PERFORMANCE.md). */
static int64_t ssd_chunk(const mambac_model_info *c) { return c->chunk_size < 64 ? c->chunk_size : 64; }

mambac_status mambac_context_new(const mambac_model *model, const mambac_context_params *params,
                                 mambac_context **out, mambac_error *err) {
    *out = NULL;
    mambac_context_params p = params ? *params : mambac_context_default_params();
    if (p.max_ubatch < 1 || p.max_ubatch > (1 << 20))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "max_ubatch must be in [1, 1048576], got %d", p.max_ubatch);
    if (p.n_threads < 0 || p.n_threads > 1024)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "n_threads must be in [0, 1024], got %d", p.n_threads);
    const mc_kernels *kernels = p.isa ? mc_kernels_named(p.isa) : mc_kernels_best();
    if (!kernels) return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "kernel set '%s' is unknown or not supported by this CPU", p.isa);
    const int nt = p.n_threads ? p.n_threads : mc_cpu_count();
    const mambac_model_info *c = &model->info;
    const int64_t U = p.max_ubatch, D = c->d_model, E = c->d_inner, N = c->d_state;
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
    struct mambac_context *ctx = calloc(1, sizeof *ctx);
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

const char *mambac_context_isa(const mambac_context *ctx) { return ctx->kernels->name; }
int32_t mambac_context_threads(const mambac_context *ctx) { return mc_pool_threads(ctx->pool); }

/* ---- parallel pieces -------------------------------------------------------------- */

/* A chunk for mc_pool_for_dynamic: a quarter of a thread's share of n items, a multiple
 * of `unit`. */
static int64_t share(const mambac_context *ctx, int64_t n, int64_t unit) {
    const int64_t g = n / (4 * mc_pool_threads(ctx->pool)) / unit * unit;
    return g < unit ? unit : g;
}

/* The causal conv, split over channels (each has its own window). */
typedef struct conv_job {
    float *x;
    int64_t T, stride, K, C;
    const float *w, *b;
    float *window;
    const mc_kernels *k;
} conv_job;

static void conv_range(void *arg, int64_t c0, int64_t c1, int thread) {
    (void)thread;
    const conv_job *j = arg;
    j->k->conv_prefill(j->x + c0, j->T, j->stride, c1 - c0, j->K, j->w + c0 * j->K, j->b ? j->b + c0 : NULL,
                       j->window + c0 * (j->K - 1));
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

static gemm_job job(const mambac_context *ctx, float *out, const float *x, int64_t x_stride, int64_t T,
                    const mc_weight *W, const float *bias) {
    return (gemm_job){ctx->kernels->gemm, out, x, x_stride, T, W, bias, ctx->gemm, ctx->gemm_stride, ctx->amx, NULL, 0};
}

/* Whether a product of T tokens runs as ranges of rows handed out as threads ask (decode:
 * memory-bound; chunks go to whichever core is not held up). Work on those rows' outputs
 * can then ride in the same loop (the conv below, Mamba-1's dt_proj in the scan). */
static int rows_dynamic(const mambac_context *ctx, const mc_weight *W, int64_t T) {
    return T < 4 && !(ctx->amx && mc_amx_split_bytes(W, T) > 0);
}

/* out (T, W.rows) = x (T rows of x_stride) @ W^T + bias, split over rows; then, unless
 * conv is NULL, the causal conv over output columns [conv0, conv0 + conv->C) — in decode
 * inside the row ranges (no serial pass, no extra barrier). On AMX the activations are
 * split into bf16 parts once (over 16-token groups), then items of 32 rows are handed
 * out as threads ask for them (a core slowed by other work takes fewer). */
static void matmul_conv(mambac_context *ctx, float *out, const float *x, int64_t x_stride, int64_t T,
                        const mc_weight *W, const float *bias, const conv_job *conv, int64_t conv0) {
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
        mc_pool_for(ctx->pool, W->rows, MC_GEMM_PANEL, gemm_range, &j);
    }
    if (conv) mc_pool_for_dynamic(ctx->pool, conv->C, share(ctx, conv->C, 64), conv_range, (void *)conv);
}

static void matmul(mambac_context *ctx, float *out, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                   const float *bias) {
    matmul_conv(ctx, out, x, x_stride, T, W, bias, NULL, 0);
}

typedef struct scan_job {
    mc_scan_args a;
    void (*scan)(const struct mc_scan_args *a);
    const gemm_job *dt_proj; /* decode: dt of the range's channels computed first; else NULL */
} scan_job;

static void scan_range(void *arg, int64_t c0, int64_t c1, int thread) {
    const scan_job *j = arg;
    if (j->dt_proj) gemm_range((void *)j->dt_proj, c0, c1, thread);
    mc_scan_args a = j->a; /* the same scan on channels [c0, c1) */
    a.E = c1 - c0;
    a.x += c0, a.z += c0, a.dt += c0, a.y += c0;
    a.A += c0 * a.N, a.D += c0, a.dt_bias += c0, a.state += c0 * a.N;
    j->scan(&a);
}

typedef struct ssd_job {
    mc_ssd_args a;
    float *scratch;
    int64_t scratch_stride;
    void (*ssd)(const struct mc_ssd_args *a);
    void (*ssd_step)(const struct mc_ssd_args *a);
} ssd_job;

static void ssd_range(void *arg, int64_t h0, int64_t h1, int thread) {
    const ssd_job *j = arg;
    mc_ssd_args a = j->a;
    a.h0 = h0, a.h1 = h1;
    a.scratch = j->scratch + thread * j->scratch_stride;
    if (a.T == 1) j->ssd_step(&a);
    else j->ssd(&a);
}

/* Mamba-2 after the SSD, token by token: y += D x, then the gated norm with z. */
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

void mambac_context_free(mambac_context *ctx) {
    if (!ctx) return;
    mc_pool_free(ctx->pool);
    free(ctx->arena);
    free(ctx);
}

static void residual_add(float *h, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[i] += x[i];
}

/* in_proj, then the causal conv over its output columns [c0, c0 + C) (window: the
 * layer's conv state). */
static void in_proj_conv(mambac_context *ctx, const mc_layer *L, float *window, int64_t T, int64_t c0, int64_t C) {
    const mambac_model_info *c = &ctx->model->info;
    const conv_job cj = {ctx->proj + c0, T, L->in_proj.rows, c->d_conv, C, L->conv_w, L->conv_b, window, ctx->kernels};
    matmul_conv(ctx, ctx->proj, ctx->xn, c->d_model, T, &L->in_proj, L->in_proj_b, &cj, c0);
}

/* Mamba-1 mixer over T tokens of ctx->xn; result in ctx->out (T, D). */
static void mamba1_mixer(mambac_context *ctx, const mc_layer *L, struct mambac_state *st, int layer, int64_t T) {
    const mambac_model_info *c = &ctx->model->info;
    const int64_t E = c->d_inner, N = c->d_state, R = c->dt_rank, W = 2 * E, X = R + 2 * N;
    in_proj_conv(ctx, L, mc_state_conv(st, layer), T, 0, E); /* [x | z], conv over x */
    matmul(ctx, ctx->xdbl, ctx->proj, W, T, &L->x_proj, NULL); /* [dt_r | B | C] */
    /* dt = dt_proj(dt_r), its bias added in the scan; in decode per channel range with
     * the scan (one barrier less a layer) */
    const gemm_job dj = job(ctx, ctx->dt, ctx->xdbl, X, T, &L->dt_proj, NULL);
    const int fuse_dt = rows_dynamic(ctx, &L->dt_proj, T);
    if (!fuse_dt) matmul(ctx, ctx->dt, ctx->xdbl, X, T, &L->dt_proj, NULL);
    mc_scan_args a = {
        .T = T, .E = E, .N = N,
        .x = ctx->proj, .x_stride = W, .z = ctx->proj + E, .z_stride = W,
        .dt = ctx->dt, .dt_stride = E,
        .B = ctx->xdbl + R, .C = ctx->xdbl + R + N, .bc_stride = X,
        .A = L->A, .D = L->D, .dt_bias = L->dt_bias,
        .y = ctx->y, .y_stride = E, .state = mc_state_ssm(st, layer),
    };
    scan_job sj = {a, ctx->kernels->scan, fuse_dt ? &dj : NULL};
    mc_pool_for_dynamic(ctx->pool, E, share(ctx, E, 16), scan_range, &sj);
    matmul(ctx, ctx->out, ctx->y, E, T, &L->out_proj, L->out_proj_b);
}

/* Mamba-2 mixer over T tokens of ctx->xn; result in ctx->out (T, D). */
static void mamba2_mixer(mambac_context *ctx, const mc_layer *L, struct mambac_state *st, int layer, int64_t T) {
    const mambac_model_info *c = &ctx->model->info;
    const int64_t E = c->d_inner, N = c->d_state, G = c->n_groups, H = c->n_heads, P = c->head_dim;
    const int64_t W = L->in_proj.rows, Cch = E + 2 * G * N;
    in_proj_conv(ctx, L, mc_state_conv(st, layer), T, E, Cch); /* [z | x B C | dt], conv over x B C */
    float *xbc = ctx->proj + E, *dt_raw = ctx->proj + E + Cch;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            float v = mc_softplus(dt_raw[t * W + h] + L->dt_bias[h]);
            v = v < c->dt_min_limit ? c->dt_min_limit : v > c->dt_max_limit ? c->dt_max_limit : v;
            ctx->dt[t * H + h] = v;
        }
    ssd_job j = {
        .a = {.T = T, .H = H, .P = P, .N = N, .G = G, .L = ssd_chunk(c),
              .x = xbc, .x_stride = W, .B = xbc + E, .C = xbc + E + G * N, .bc_stride = W,
              .dt = ctx->dt, .dt_stride = H, .A = L->A,
              .y = ctx->y, .y_stride = E, .state = mc_state_ssm(st, layer)},
        .scratch = ctx->ssd, .scratch_stride = ctx->ssd_stride, .ssd = ctx->kernels->ssd, .ssd_step = ctx->kernels->ssd_step,
    };
    /* the chunked SSD computes C B^T once per group for the heads of its range: one range
     * per thread keeps that to once per thread; the step has no per-group work */
    if (T == 1) mc_pool_for_dynamic(ctx->pool, H, share(ctx, H, 1), ssd_range, &j);
    else mc_pool_for(ctx->pool, H, 1, ssd_range, &j);
    gate_job gj = {ctx->y, xbc, ctx->proj, L->D, L->gnorm, E, W, P, G, c, ctx->kernels};
    mc_pool_for(ctx->pool, T, 4, gate_range, &gj);
    matmul(ctx, ctx->out, ctx->y, E, T, &L->out_proj, L->out_proj_b);
}

/* One piece of T <= U tokens. logits: NULL, or (T, V) (all) / (1, V) (last). */
static void eval_piece(mambac_context *ctx, struct mambac_state *st, const int32_t *ids, int64_t T,
                       int all_logits, float *logits) {
    const struct mambac_model *m = ctx->model;
    const mambac_model_info *c = &m->info;
    const int64_t D = c->d_model;
    for (int64_t t = 0; t < T; t++) mc_embed_row(ctx->h + t * D, &m->embed, ids[t]);
    for (int l = 0; l < c->n_layer; l++) {
        const mc_layer *L = &m->layers[l];
        mc_rmsnorm(ctx->xn, ctx->h, L->norm, T, D, c->norm_eps);
        if (c->arch == MAMBAC_ARCH_MAMBA1)
            mamba1_mixer(ctx, L, st, l, T);
        else
            mamba2_mixer(ctx, L, st, l, T);
        residual_add(ctx->h, ctx->out, T * D);
    }
    if (!logits) return;
    const int64_t first = all_logits ? 0 : T - 1, n = T - first;
    mc_rmsnorm(ctx->xn, ctx->h + first * D, m->norm_f, n, D, c->norm_eps);
    matmul(ctx, logits, ctx->xn, D, n, &m->lm_head, NULL);
}

mambac_status mambac_eval(mambac_context *ctx, mambac_state *st, const int32_t *ids, size_t n_tokens,
                          mambac_logits_mode mode, float *logits, mambac_error *err) {
    const mambac_model_info *c = &ctx->model->info;
    if (st->n_floats * sizeof(float) != mambac_state_size_bytes(ctx->model))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "state belongs to a model of a different shape");
    if (n_tokens == 0) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "no tokens to evaluate (empty prompt)");
    if (mode != MAMBAC_LOGITS_NONE && !logits) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "logits buffer is NULL");
    for (size_t i = 0; i < n_tokens; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "token id %d at position %zu is out of range (vocabulary has %d tokens)",
                           ids[i], i, c->vocab_size);
    const int64_t V = c->n_vocab_rows;
    for (size_t done = 0; done < n_tokens;) {
        int64_t T = (int64_t)(n_tokens - done) < ctx->U ? (int64_t)(n_tokens - done) : ctx->U;
        int last_piece = done + (size_t)T == n_tokens;
        float *lg = mode == MAMBAC_LOGITS_ALL ? logits + (size_t)done * (size_t)V
                    : mode == MAMBAC_LOGITS_LAST && last_piece ? logits : NULL;
        eval_piece(ctx, st, ids + done, T, mode == MAMBAC_LOGITS_ALL, lg);
        done += (size_t)T;
    }
    st->n_tokens += (int64_t)n_tokens;
    return MAMBAC_OK;
}

/* The largest value first (eight independent maxima: the one-pass form carried a
 * dependency on logits[best] through all 50k values, ~1% of a decode token), then its
 * first index. NaNs are never chosen; all NaN gives 0. */
int32_t mambac_argmax(const float *logits, int32_t n) {
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) m[k] = logits[i + k] > m[k] ? logits[i + k] : m[k];
    for (; i < n; i++) m[0] = logits[i] > m[0] ? logits[i] : m[0];
    for (int k = 1; k < 8; k++) m[0] = m[k] > m[0] ? m[k] : m[0];
    for (i = 0; i < n; i++)
        if (logits[i] == m[0]) return i;
    return 0;
}
