/* loglik.c — mambac_loglikelihood: lm-evaluation-harness's loglikelihood requests of one
 * context, scored the way its HF backend scores them, and the recurrent model's shortcut:
 * the context is evaluated once and every continuation runs from a copy of its state.
 *
 * Tokens as lm-eval makes them (HFLM._encode_pair): trailing whitespace of the context
 * moves to the front of each continuation; the context is encoded alone; a continuation's
 * tokens are those of encode(context + continuation) past the context's token count; an
 * empty context is the end-of-text token alone. The model is fed the context's tokens,
 * then the continuation's: exactly what lm-eval feeds. A batch of requests runs in two
 * mambac_eval_batch calls (the products reading each weight once for all of them): the
 * contexts, each from a fresh state, then every continuation from its own copy of its
 * context's state. Log-probabilities are log-softmax
 * over the config's vocabulary (the logits transformers returns), in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "infer/context.h"

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* log softmax(row)[id] and whether id is the row's argmax (first on ties), over V values */
static double logprob_of(const float *row, int32_t V, int32_t id, int *is_max) {
    double mx = row[0];
    int32_t arg = 0;
    for (int32_t v = 1; v < V; v++)
        if (row[v] > mx) mx = row[v], arg = v;
    double se = 0;
    for (int32_t v = 0; v < V; v++) se += exp((double)row[v] - mx);
    *is_max = arg == id;
    return (double)row[id] - mx - log(se);
}

static mambac_status encode(mambac_tokenizer *tok, const char *a, size_t na, const char *b, size_t nb, int32_t **ids,
                            size_t *n, mambac_error *err) {
    char *s = malloc(na + nb + 1);
    if (!s) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    memcpy(s, a, na), memcpy(s + na, b, nb), s[na + nb] = 0;
    mambac_status st = mambac_tokenize(tok, s, na + nb, ids, n, err);
    free(s);
    return st;
}

/* A request's context tokens (index j) and each continuation's (flat index q over all of
 * the batch's continuations: its encoding of context + it, and where its own tokens start). */
typedef struct cont_toks {
    int32_t *ids;
    size_t skip, len;
    size_t req;
} cont_toks;

static mambac_status context_tokens(mambac_tokenizer *tok, const mambac_model_info *info, const mambac_ll_request *r,
                                    int32_t **ids, size_t *n, mambac_error *err) {
    if (r->context_len == 0) {
        const int32_t eos = info->eos_token_id;
        if (eos < 0 || eos >= info->n_vocab_rows)
            return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "an empty context needs the model's end-of-text token (the config has none)");
        if (!(*ids = malloc(sizeof **ids))) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
        (*ids)[0] = eos, *n = 1;
        return MAMBAC_OK;
    }
    size_t keep = r->context_len;
    while (keep > 0 && is_space((unsigned char)r->context[keep - 1])) keep--;
    mambac_status st = encode(tok, r->context, keep, "", 0, ids, n, err);
    if (st == MAMBAC_OK && *n == 0) /* only whitespace: lm-eval encodes it as the continuation's start */
        st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "a context of only whitespace has no tokens to condition on");
    return st;
}

mambac_status mambac_loglikelihood_batch(mambac_context *ctx, mambac_tokenizer *tok, const mambac_ll_request *reqs,
                                         size_t n_reqs, mambac_error *err) {
    if (!ctx || !tok || (n_reqs && !reqs)) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "mambac_loglikelihood: NULL argument");
    size_t n_cont = 0;
    for (size_t j = 0; j < n_reqs; j++) {
        const mambac_ll_request *r = &reqs[j];
        if ((!r->context && r->context_len) || (r->n_conts && (!r->conts || !r->cont_lens || !r->out)))
            return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "mambac_loglikelihood: NULL argument in request %zu", j);
        n_cont += r->n_conts;
    }
    const mambac_model *model = mc_context_model(ctx);
    const mambac_model_info *info = mambac_model_get_info(model);
    const int32_t V = info->vocab_size, R = info->n_vocab_rows;
    const size_t nr = n_reqs ? n_reqs : 1, nq = n_cont ? n_cont : 1;
    int32_t **cids = calloc(nr, sizeof *cids);
    size_t *nc = calloc(nr, sizeof *nc);
    mambac_state **s0 = calloc(nr, sizeof *s0), **sts = calloc(nq, sizeof *sts);
    cont_toks *ct = calloc(nq, sizeof *ct);
    mambac_seq *seqs = calloc(nr > nq ? nr : nq, sizeof *seqs);
    float *last = malloc(nr * (size_t)R * sizeof *last), *rows = NULL;
    mambac_status st = cids && nc && s0 && sts && ct && seqs && last ? MAMBAC_OK : mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    /* every request's context tokens, every continuation's: those past the context's in the
     * encoding of both (all of it for an empty context) */
    size_t total_rows = 0, q = 0;
    for (size_t j = 0; st == MAMBAC_OK && j < n_reqs; j++) {
        const mambac_ll_request *r = &reqs[j];
        st = context_tokens(tok, info, r, &cids[j], &nc[j], err);
        for (size_t i = 0; st == MAMBAC_OK && i < r->n_conts; i++, q++) {
            size_t nw = 0;
            st = r->context_len ? encode(tok, r->context, r->context_len, r->conts[i], r->cont_lens[i], &ct[q].ids, &nw, err)
                                : encode(tok, r->conts[i], r->cont_lens[i], "", 0, &ct[q].ids, &nw, err);
            if (st != MAMBAC_OK) break;
            ct[q].req = j;
            ct[q].skip = r->context_len ? (nc[j] < nw ? nc[j] : nw) : 0, ct[q].len = nw - ct[q].skip;
            for (size_t k = 0; k < ct[q].len; k++)
                if (ct[q].ids[ct[q].skip + k] < 0 || ct[q].ids[ct[q].skip + k] >= V) {
                    st = mc_fail(err, MAMBAC_ERR_INVALID_ARG,
                                 "token %d of continuation %zu of request %zu is outside the model's vocabulary",
                                 ct[q].ids[ct[q].skip + k], i, j);
                    break;
                }
            if (ct[q].len > 1) total_rows += ct[q].len - 1;
        }
    }
    /* the contexts together, each from a fresh state */
    for (size_t j = 0; st == MAMBAC_OK && j < n_reqs; j++) {
        st = mambac_state_new(model, &s0[j], err);
        seqs[j] = (mambac_seq){s0[j], cids[j], nc[j], MAMBAC_LOGITS_LAST, last + j * (size_t)R, NULL};
    }
    if (st == MAMBAC_OK && n_reqs) st = mambac_eval_batch(ctx, seqs, n_reqs, err);
    if (st == MAMBAC_OK && total_rows && !(rows = malloc(total_rows * (size_t)R * sizeof *rows)))
        st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    /* the continuations of more than one token together, from copies of their context's state */
    size_t n_seq = 0;
    for (size_t k = 0, row = 0; st == MAMBAC_OK && k < n_cont; k++) {
        if (ct[k].len < 2) continue;
        st = mambac_state_new(model, &sts[k], err);
        if (st == MAMBAC_OK) st = mambac_state_copy(sts[k], s0[ct[k].req], err);
        seqs[n_seq++] = (mambac_seq){sts[k], ct[k].ids + ct[k].skip, ct[k].len - 1, MAMBAC_LOGITS_ALL, rows + row * (size_t)R, NULL};
        row += ct[k].len - 1;
    }
    if (st == MAMBAC_OK && n_seq) st = mambac_eval_batch(ctx, seqs, n_seq, err);
    q = 0;
    for (size_t j = 0, row = 0; st == MAMBAC_OK && j < n_reqs; j++)
        for (size_t i = 0; i < reqs[j].n_conts; i++, q++) {
            const int32_t *c = ct[q].ids + ct[q].skip;
            mambac_loglik *o = &reqs[j].out[i];
            *o = (mambac_loglik){0.0, (int32_t)ct[q].len, 1};
            if (ct[q].len == 0) continue;
            int is_max;
            o->logprob = logprob_of(last + j * (size_t)R, V, c[0], &is_max);
            o->greedy = is_max;
            for (size_t k = 1; k < ct[q].len; k++, row++) {
                o->logprob += logprob_of(rows + row * (size_t)R, V, c[k], &is_max);
                o->greedy &= is_max;
            }
        }
    for (size_t j = 0; j < n_reqs; j++) {
        if (s0) mambac_state_free(s0[j]);
        if (cids) free(cids[j]);
    }
    for (size_t k = 0; k < n_cont; k++) {
        if (sts) mambac_state_free(sts[k]);
        if (ct) free(ct[k].ids);
    }
    free(cids), free(nc), free(s0), free(sts), free(ct), free(seqs), free(last), free(rows);
    return st;
}

mambac_status mambac_loglikelihood(mambac_context *ctx, mambac_tokenizer *tok, const char *context, size_t context_len,
                                   const char *const *conts, const size_t *cont_lens, size_t n_conts, mambac_loglik *out,
                                   mambac_error *err) {
    const mambac_ll_request r = {context, context_len, conts, cont_lens, n_conts, out};
    return mambac_loglikelihood_batch(ctx, tok, &r, 1, err);
}
