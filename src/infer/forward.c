/* forward.c — evaluation contexts and the forward pass:
 *   h = embed(ids); per layer h += mixer(rmsnorm(h)); logits = rmsnorm_f(h) @ lm_head^T
 * Tokens go through in pieces of at most max_ubatch ("ubatches"). A piece of one token
 * takes the recurrent path (conv step, state update); longer pieces take the parallel
 * path (conv over time, selective scan / chunked SSD). All scratch memory is allocated
 * once per context: nothing is allocated per token. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
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
    float *row;      /* widened weight row: max matrix cols */
    float *ssd;      /* Mamba-2 chunk scratch: L*L + 2L */
};

mambac_context_params mambac_context_default_params(void) {
    return (mambac_context_params){.max_ubatch = 512};
}

mambac_status mambac_context_new(const mambac_model *model, const mambac_context_params *params,
                                 mambac_context **out, mambac_error *err) {
    *out = NULL;
    mambac_context_params p = params ? *params : mambac_context_default_params();
    if (p.max_ubatch < 1 || p.max_ubatch > (1 << 20))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "max_ubatch must be in [1, 1048576], got %d", p.max_ubatch);
    const mambac_model_info *c = &model->info;
    const int64_t U = p.max_ubatch, D = c->d_model, E = c->d_inner, N = c->d_state;
    const int64_t in_rows = model->layers[0].in_proj.rows;
    const int64_t xdbl = c->arch == MAMBAC_ARCH_MAMBA1 ? c->dt_rank + 2 * N : 0;
    const int64_t dtw = c->arch == MAMBAC_ARCH_MAMBA1 ? E : c->n_heads;
    const int64_t L = c->arch == MAMBAC_ARCH_MAMBA2 ? c->chunk_size : 0;
    const int64_t row = (D > E ? D : E);
    const int64_t sizes[] = {U * D, U * D, U * in_rows, U * xdbl, U * dtw, U * E, U * D, row, L * L + 2 * L};
    int64_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i] + 16; /* 64-byte aligned pieces */
    struct mambac_context *ctx = calloc(1, sizeof *ctx);
    /* aligned_alloc wants a size that is a multiple of the alignment: total is (16 floats each). */
    total = (total + 15) / 16 * 16;
    float *arena = ctx ? aligned_alloc(64, (size_t)total * sizeof(float)) : NULL;
    if (!arena) {
        free(ctx);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory allocating %lld bytes of scratch", (long long)total * 4);
    }
    ctx->model = model;
    ctx->U = U;
    ctx->arena = arena;
    float **slots[] = {&ctx->h, &ctx->xn, &ctx->proj, &ctx->xdbl, &ctx->dt, &ctx->y, &ctx->out, &ctx->row, &ctx->ssd};
    float *q = arena;
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        *slots[i] = q;
        q += (sizes[i] + 15) / 16 * 16;
    }
    *out = ctx;
    return MAMBAC_OK;
}

void mambac_context_free(mambac_context *ctx) {
    if (!ctx) return;
    free(ctx->arena);
    free(ctx);
}

static void residual_add(float *h, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[i] += x[i];
}

/* Mamba-1 mixer over T tokens of ctx->xn; result in ctx->out (T, D). */
static void mamba1_mixer(mambac_context *ctx, const mc_layer *L, struct mambac_state *st, int layer, int64_t T) {
    const mambac_model_info *c = &ctx->model->info;
    const int64_t E = c->d_inner, N = c->d_state, R = c->dt_rank, W = 2 * E, X = R + 2 * N;
    mc_matmul(ctx->proj, ctx->xn, c->d_model, T, &L->in_proj, L->in_proj_b, ctx->row); /* [x | z] */
    if (T == 1)
        mc_conv1d_step(ctx->proj, E, c->d_conv, L->conv_w, L->conv_b, mc_state_conv(st, layer));
    else
        mc_conv1d_prefill(ctx->proj, T, W, E, c->d_conv, L->conv_w, L->conv_b, mc_state_conv(st, layer));
    mc_matmul(ctx->xdbl, ctx->proj, W, T, &L->x_proj, NULL, ctx->row);  /* [dt_r | B | C] */
    mc_matmul(ctx->dt, ctx->xdbl, X, T, &L->dt_proj, NULL, ctx->row);   /* bias added in the scan */
    mc_scan_args a = {
        .T = T, .E = E, .N = N,
        .x = ctx->proj, .x_stride = W, .z = ctx->proj + E, .z_stride = W,
        .dt = ctx->dt, .dt_stride = E,
        .B = ctx->xdbl + R, .C = ctx->xdbl + R + N, .bc_stride = X,
        .A = L->A, .D = L->D, .dt_bias = L->dt_bias,
        .y = ctx->y, .y_stride = E, .state = mc_state_ssm(st, layer),
    };
    mc_selective_scan(&a);
    mc_matmul(ctx->out, ctx->y, E, T, &L->out_proj, L->out_proj_b, ctx->row);
}

/* Mamba-2 mixer over T tokens of ctx->xn; result in ctx->out (T, D). */
static void mamba2_mixer(mambac_context *ctx, const mc_layer *L, struct mambac_state *st, int layer, int64_t T) {
    const mambac_model_info *c = &ctx->model->info;
    const int64_t E = c->d_inner, N = c->d_state, G = c->n_groups, H = c->n_heads, P = c->head_dim;
    const int64_t W = L->in_proj.rows, Cch = E + 2 * G * N;
    mc_matmul(ctx->proj, ctx->xn, c->d_model, T, &L->in_proj, L->in_proj_b, ctx->row); /* [z | x B C | dt] */
    float *xbc = ctx->proj + E, *dt_raw = ctx->proj + E + Cch;
    if (T == 1)
        mc_conv1d_step(xbc, Cch, c->d_conv, L->conv_w, L->conv_b, mc_state_conv(st, layer));
    else
        mc_conv1d_prefill(xbc, T, W, Cch, c->d_conv, L->conv_w, L->conv_b, mc_state_conv(st, layer));
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            float v = mc_softplus(dt_raw[t * W + h] + L->dt_bias[h]);
            v = v < c->dt_min_limit ? c->dt_min_limit : v > c->dt_max_limit ? c->dt_max_limit : v;
            ctx->dt[t * H + h] = v;
        }
    mc_ssd_args a = {
        .T = T, .H = H, .P = P, .N = N, .G = G, .L = c->chunk_size,
        .x = xbc, .x_stride = W, .B = xbc + E, .C = xbc + E + G * N, .bc_stride = W,
        .dt = ctx->dt, .dt_stride = H, .A = L->A,
        .y = ctx->y, .y_stride = E, .state = mc_state_ssm(st, layer), .scratch = ctx->ssd,
    };
    if (T == 1)
        mc_ssd_step(&a);
    else
        mc_ssd_chunked(&a);
    for (int64_t t = 0; t < T; t++) {
        float *y = ctx->y + t * E;
        const float *x = xbc + t * W;
        for (int64_t i = 0; i < E; i++) y[i] += L->D[i / P] * x[i];
        mc_gated_rmsnorm(y, ctx->proj + t * W, L->gnorm, E, G, c->norm_before_gate, c->norm_eps);
    }
    mc_matmul(ctx->out, ctx->y, E, T, &L->out_proj, L->out_proj_b, ctx->row);
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
    mc_matmul(logits, ctx->xn, D, n, &m->lm_head, NULL, ctx->row);
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

int32_t mambac_argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}
