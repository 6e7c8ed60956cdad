/* loglik.c — mambac_loglikelihood: lm-evaluation-harness's loglikelihood requests of one
 * context, scored the way its HF backend scores them, and the recurrent model's shortcut:
 * the context is evaluated once and every continuation runs from a copy of its state.
 *
 * Tokens as lm-eval makes them (HFLM._encode_pair): trailing whitespace of the context
 * moves to the front of each continuation; the context is encoded alone; a continuation's
 * tokens are those of encode(context + continuation) past the context's token count; an
 * empty context is the end-of-text token alone. The model is fed the context's tokens,
 * then the continuation's: exactly what lm-eval feeds. The continuations run together
 * (mambac_eval_batch: each from its own copy of the context's state, the products reading
 * each weight once for all of them). Log-probabilities are log-softmax
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

mambac_status mambac_loglikelihood(mambac_context *ctx, mambac_tokenizer *tok, const char *context, size_t context_len,
                                   const char *const *conts, const size_t *cont_lens, size_t n_conts, mambac_loglik *out,
                                   mambac_error *err) {
    if (!ctx || !tok || (!context && context_len) || (n_conts && (!conts || !cont_lens || !out)))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "mambac_loglikelihood: NULL argument");
    const mambac_model *model = mc_context_model(ctx);
    const mambac_model_info *info = mambac_model_get_info(model);
    const int32_t V = info->vocab_size, R = info->n_vocab_rows;
    size_t keep = context_len;
    while (keep > 0 && is_space((unsigned char)context[keep - 1])) keep--;
    int32_t *cids = NULL, eos = info->eos_token_id;
    size_t nc = 0;
    mambac_state *s0 = NULL, **sts = calloc(n_conts ? n_conts : 1, sizeof *sts);
    int32_t **toks = calloc(n_conts ? n_conts : 1, sizeof *toks); /* each continuation's encoding of context + it */
    size_t *skip = calloc(n_conts ? n_conts : 1, sizeof *skip), *len = calloc(n_conts ? n_conts : 1, sizeof *len);
    mambac_seq *seqs = calloc(n_conts ? n_conts : 1, sizeof *seqs);
    float *last = malloc((size_t)R * sizeof *last), *rows = NULL;
    mambac_status st = last && sts && toks && skip && len && seqs ? MAMBAC_OK : mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    if (st == MAMBAC_OK && context_len == 0) {
        if (eos < 0 || eos >= R)
            st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "an empty context needs the model's end-of-text token (the config has none)");
        else if (!(cids = malloc(sizeof *cids))) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
        else cids[0] = eos, nc = 1;
    } else if (st == MAMBAC_OK) {
        st = encode(tok, context, keep, "", 0, &cids, &nc, err);
        if (st == MAMBAC_OK && nc == 0) /* only whitespace: lm-eval encodes it as the continuation's start */
            st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "a context of only whitespace has no tokens to condition on");
    }
    /* every continuation's tokens: those past the context's in the encoding of both */
    size_t total_rows = 0, n_seq = 0;
    for (size_t i = 0; st == MAMBAC_OK && i < n_conts; i++) {
        size_t nw = 0;
        st = context_len ? encode(tok, context, context_len, conts[i], cont_lens[i], &toks[i], &nw, err)
                         : encode(tok, conts[i], cont_lens[i], "", 0, &toks[i], &nw, err);
        if (st != MAMBAC_OK) break;
        skip[i] = context_len ? (nc < nw ? nc : nw) : 0, len[i] = nw - skip[i];
        for (size_t k = 0; k < len[i]; k++)
            if (toks[i][skip[i] + k] < 0 || toks[i][skip[i] + k] >= V) {
                st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "token %d of continuation %zu is outside the model's vocabulary",
                             toks[i][skip[i] + k], i);
                break;
            }
        if (len[i] > 1) total_rows += len[i] - 1;
    }
    if (st == MAMBAC_OK) st = mambac_state_new(model, &s0, err);
    if (st == MAMBAC_OK) st = mambac_eval(ctx, s0, cids, nc, MAMBAC_LOGITS_LAST, last, err);
    if (st == MAMBAC_OK && total_rows && !(rows = malloc(total_rows * (size_t)R * sizeof *rows)))
        st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    /* the continuations of more than one token, together from copies of the context's state */
    for (size_t i = 0, row = 0; st == MAMBAC_OK && i < n_conts; i++) {
        if (len[i] < 2) continue;
        st = mambac_state_new(model, &sts[i], err);
        if (st == MAMBAC_OK) st = mambac_state_copy(sts[i], s0, err);
        seqs[n_seq++] = (mambac_seq){sts[i], toks[i] + skip[i], len[i] - 1, MAMBAC_LOGITS_ALL, rows + row * (size_t)R, NULL};
        row += len[i] - 1;
    }
    if (st == MAMBAC_OK && n_seq) st = mambac_eval_batch(ctx, seqs, n_seq, err);
    for (size_t i = 0, row = 0; st == MAMBAC_OK && i < n_conts; i++) {
        const int32_t *c = toks[i] + skip[i];
        out[i] = (mambac_loglik){0.0, (int32_t)len[i], 1};
        if (len[i] == 0) continue;
        int is_max;
        out[i].logprob = logprob_of(last, V, c[0], &is_max);
        out[i].greedy = is_max;
        for (size_t k = 1; k < len[i]; k++, row++) {
            out[i].logprob += logprob_of(rows + row * (size_t)R, V, c[k], &is_max);
            out[i].greedy &= is_max;
        }
    }
    for (size_t i = 0; i < n_conts && sts; i++) mambac_state_free(sts[i]);
    for (size_t i = 0; i < n_conts && toks; i++) free(toks[i]);
    free(sts), free(toks), free(skip), free(len), free(seqs);
    mambac_state_free(s0);
    free(cids), free(last), free(rows);
    return st;
}
