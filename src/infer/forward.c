/* forward.c — evaluation contexts and the backend-neutral forward pass:
 *   h = embed(ids); per layer h += mixer(rmsnorm(h)); logits = rmsnorm_f(h) @ lm_head^T
 * mambac_eval_batch packs the rows of its sequences into micro-batches of at most
 * max_ubatch rows (a long prompt is cut into pieces that carry its state) and runs each
 * through the model's backend (backend/backend.h), op by op in layer order. How an op runs
 * (threads, fusions, devices) is the backend's business. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/error.h"
#include "infer/context.h"
#include "infer/state.h"
#include "model/model.h"

struct mambac_context {
    const struct mambac_model *model;
    const mc_backend *be;
    void *b;              /* the backend's context */
    int64_t U;            /* max_ubatch */
    int32_t *ids;         /* (U) the micro-batch being run */
    mc_segment *seg;      /* (U) */
    mc_logit_row *rows;   /* (U) */
};

mambac_context_params mambac_context_default_params(void) {
    return (mambac_context_params){.max_ubatch = 512, .n_threads = 0, .isa = NULL};
}

mambac_status mambac_context_new(const mambac_model *model, const mambac_context_params *params,
                                 mambac_context **out, mambac_error *err) {
    *out = NULL;
    mambac_context_params p = params ? *params : mambac_context_default_params();
    if (p.max_ubatch < 1 || p.max_ubatch > (1 << 20))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "max_ubatch must be in [1, 1048576], got %d", p.max_ubatch);
    if (p.n_threads < 0 || p.n_threads > 1024)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "n_threads must be in [0, 1024], got %d", p.n_threads);
    if (!model->be) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "model has no backend (not loaded by mambac_model_load)");
    struct mambac_context *ctx = calloc(1, sizeof *ctx);
    const size_t U = (size_t)p.max_ubatch;
    if (ctx) {
        ctx->ids = malloc(U * sizeof *ctx->ids);
        ctx->seg = malloc(U * sizeof *ctx->seg);
        ctx->rows = malloc(U * sizeof *ctx->rows);
    }
    if (!ctx || !ctx->ids || !ctx->seg || !ctx->rows) {
        mambac_context_free(ctx);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory allocating a context");
    }
    ctx->model = model;
    ctx->be = model->be;
    ctx->U = p.max_ubatch;
    mambac_status st = ctx->be->ctx_new(model, &p, &ctx->b, err);
    if (st != MAMBAC_OK) {
        mambac_context_free(ctx);
        return st;
    }
    *out = ctx;
    return MAMBAC_OK;
}

void mambac_context_free(mambac_context *ctx) {
    if (!ctx) return;
    if (ctx->b) ctx->be->ctx_free(ctx->b);
    free(ctx->ids);
    free(ctx->seg);
    free(ctx->rows);
    free(ctx);
}

const char *mambac_context_isa(const mambac_context *ctx) { return ctx->be->ctx_kernels(ctx->b); }
int32_t mambac_context_threads(const mambac_context *ctx) { return ctx->be->ctx_threads(ctx->b); }

/* One micro-batch through every layer; the logits of the chosen rows to host. */
static mambac_status run_ubatch(mambac_context *ctx, const mc_ubatch *ub, int64_t n_rows_out, mambac_error *err) {
    const mc_backend *be = ctx->be;
    const mambac_model_info *c = &ctx->model->info;
    be->embed(ctx->b, ub);
    for (int l = 0; l < c->n_layer; l++) {
        be->norm(ctx->b, ub, l);
        be->in_proj_conv(ctx->b, ub, l);
        if (c->arch == MAMBAC_ARCH_MAMBA1) be->mamba1_ssm(ctx->b, ub, l);
        else be->mamba2_ssm(ctx->b, ub, l);
        be->out_proj_residual(ctx->b, ub, l);
    }
    return be->logits(ctx->b, ub, ctx->rows, n_rows_out, err);
}

/* One sequence's arguments: its state (this model's shape and backend, not already in the
 * batch), tokens, ids in range, logits mode and buffers. */
static mambac_status check_seq(const mambac_context *ctx, const mambac_seq *q, size_t i, size_t n, mambac_error *err) {
    const struct mambac_model *m = ctx->model;
    const int32_t vocab = m->info.vocab_size;
    if (!q->state) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "sequence %zu has no state", i);
    if (q->state->n_floats * sizeof(float) != mambac_state_size_bytes(m) || q->state->model->be != m->be ||
        q->state->model->bmodel != m->bmodel)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "state belongs to a model of a different shape or backend");
    if (q->state->in_batch) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "sequence %zu: its state appears twice in the batch", i);
    if (q->n_tokens == 0) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "no tokens to evaluate (empty prompt)");
    if (!q->ids) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "sequence %zu: ids is NULL", i);
    if (q->mode != MAMBAC_LOGITS_NONE && q->mode != MAMBAC_LOGITS_LAST && q->mode != MAMBAC_LOGITS_ALL &&
        q->mode != MAMBAC_LOGITS_GREEDY)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "sequence %zu: unknown logits mode %d", i, (int)q->mode);
    if (q->mode == MAMBAC_LOGITS_GREEDY && !q->token)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "sequence %zu: GREEDY without a token pointer", i);
    if ((q->mode == MAMBAC_LOGITS_LAST || q->mode == MAMBAC_LOGITS_ALL) && !q->logits)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "logits buffer is NULL");
    for (size_t k = 0; k < q->n_tokens; k++)
        if (q->ids[k] < 0 || q->ids[k] >= vocab)
            return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "token id %d at position %zu%s is out of range (vocabulary has %d tokens)",
                           q->ids[k], k, n > 1 ? " of a sequence" : "", vocab);
    return MAMBAC_OK;
}

/* Every argument checked before anything runs, so an error leaves every state as it was.
 * A state twice in one batch is refused: states are marked while checked, and stay marked
 * until the batch is done. */
static mambac_status check_batch(const mambac_context *ctx, const mambac_seq *seqs, size_t n, mambac_error *err) {
    for (size_t i = 0; i < n; i++) {
        mambac_status st = check_seq(ctx, &seqs[i], i, n, err);
        if (st != MAMBAC_OK) {
            for (size_t k = 0; k < i; k++) seqs[k].state->in_batch = 0;
            return st;
        }
        seqs[i].state->in_batch = 1;
    }
    return MAMBAC_OK;
}

mambac_status mambac_eval_batch(mambac_context *ctx, const mambac_seq *seqs, size_t n_seqs, mambac_error *err) {
    if (n_seqs == 0) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "no sequences to evaluate");
    if (!seqs) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "sequences array is NULL");
    mambac_status st = check_batch(ctx, seqs, n_seqs, err);
    if (st != MAMBAC_OK) return st;
    const int64_t V = ctx->model->info.n_vocab_rows;
    size_t i = 0, done = 0; /* next sequence, tokens of it already fed */
    while (i < n_seqs && st == MAMBAC_OK) {
        int64_t rows = 0, n_seg = 0, n_out = 0;
        int decode = 1;
        while (i < n_seqs && rows < ctx->U) {
            const mambac_seq *q = &seqs[i];
            const size_t left = q->n_tokens - done;
            const int64_t k = (int64_t)left < ctx->U - rows ? (int64_t)left : ctx->U - rows;
            ctx->seg[n_seg++] = (mc_segment){q->state, rows, k};
            memcpy(ctx->ids + rows, q->ids + done, (size_t)k * sizeof *ctx->ids);
            if (q->mode == MAMBAC_LOGITS_ALL)
                for (int64_t t = 0; t < k; t++)
                    ctx->rows[n_out++] = (mc_logit_row){rows + t, q->logits + (done + (size_t)t) * (size_t)V, NULL};
            else if (q->mode == MAMBAC_LOGITS_LAST && done + (size_t)k == q->n_tokens)
                ctx->rows[n_out++] = (mc_logit_row){rows + k - 1, q->logits, NULL};
            else if (q->mode == MAMBAC_LOGITS_GREEDY && done + (size_t)k == q->n_tokens)
                ctx->rows[n_out++] = (mc_logit_row){rows + k - 1, NULL, q->token};
            decode &= k == 1;
            rows += k;
            done += (size_t)k;
            if (done == q->n_tokens) i++, done = 0;
        }
        const mc_ubatch ub = {ctx->ids, rows, ctx->seg, n_seg, decode};
        st = run_ubatch(ctx, &ub, n_out, err);
    }
    for (size_t k = 0; k < n_seqs; k++) {
        seqs[k].state->in_batch = 0;
        if (st == MAMBAC_OK) seqs[k].state->n_tokens += (int64_t)seqs[k].n_tokens;
    }
    return st;
}

mambac_status mambac_eval(mambac_context *ctx, mambac_state *st, const int32_t *ids, size_t n_tokens,
                          mambac_logits_mode mode, float *logits, mambac_error *err) {
    if (mode == MAMBAC_LOGITS_GREEDY) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "GREEDY needs mambac_eval_batch");
    const mambac_seq q = {st, ids, n_tokens, mode, logits, NULL};
    return mambac_eval_batch(ctx, &q, 1, err);
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

const mambac_model *mc_context_model(const mambac_context *ctx) { return ctx->model; }
