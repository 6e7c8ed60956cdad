/* test_eval.c — mambac_loglikelihood (lm-eval's loglikelihood requests, a context's state
 * shared by its continuations) against a second computation: the request's tokens built
 * step by step as lm-eval's HF backend builds them (tokens of the whole text past the
 * context's, the context's trailing whitespace moved, an empty context as end-of-text), then
 * scored from one fresh evaluation of all of them. The tokenizer is byte-level BPE with three
 * merges ("Ġ a", "a n", "Ġa n") so that a boundary between context and continuation can
 * merge away (ids < 512: the mamba1-tiny fixture's vocabulary).
 * (scripts/check_eval_reference.py checks `mambac eval` against an independent Python
 * implementation with Hugging Face's tokenizer; docs/EVALUATION.md has its last result.) */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mambac.h"
#include "testutil.h"

static mambac_tokenizer *small_bpe(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/../../models/default/tokenizer.json", MAMBAC_TEST_DATA);
    FILE *f = fopen(path, "rb");
    static char buf[1 << 20];
    const size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    cJSON *root = cJSON_Parse(buf), *model = cJSON_GetObjectItem(root, "model");
    cJSON *vocab = cJSON_GetObjectItem(model, "vocab"), *merges = cJSON_GetObjectItem(model, "merges");
    if (!vocab || !merges) return NULL;
    cJSON_AddNumberToObject(vocab, "\xc4\xa0" "a", 256); /* "Ġa" */
    cJSON_AddNumberToObject(vocab, "an", 257);
    cJSON_AddNumberToObject(vocab, "\xc4\xa0" "an", 258);
    cJSON_AddItemToArray(merges, cJSON_CreateString("\xc4\xa0 a"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("a n"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("\xc4\xa0" "a n"));
    char *text = cJSON_PrintUnformatted(root);
    char *out = path_in(dir, "tokenizer.json");
    write_file(out, text, strlen(text));
    mambac_tokenizer *tok = NULL;
    mambac_error err;
    CHECK(mambac_tokenizer_load(out, &tok, &err) == MAMBAC_OK, "load the small BPE: %s", err.msg);
    free(text), free(out);
    cJSON_Delete(root);
    return tok;
}

static size_t encode(mambac_tokenizer *tok, const char *s, int32_t **ids) {
    size_t n = 0;
    mambac_error err;
    if (mambac_tokenize(tok, s, strlen(s), ids, &n, &err) != MAMBAC_OK) return 0;
    return n;
}

/* lm-eval's request for (context, continuation), scored from one fresh evaluation */
static double reference(mambac_context *ctx, mambac_model *m, mambac_tokenizer *tok, const char *context, const char *cont,
                        int32_t *n_cont, int *greedy) {
    char c[512], k[512];
    snprintf(c, sizeof c, "%s", context), snprintf(k, sizeof k, "%s", cont);
    int32_t *ids = NULL, *whole = NULL;
    size_t nc, nw;
    if (!*c) {
        ids = malloc(sizeof *ids), ids[0] = mambac_model_get_info(m)->eos_token_id, nc = 1;
        nw = encode(tok, k, &whole);
    } else {
        size_t l = strlen(c), sp = 0;
        while (sp < l && c[l - 1 - sp] == ' ') sp++;
        if (sp) { /* the spaces move to the continuation */
            memmove(k + sp, k, strlen(k) + 1);
            memset(k, ' ', sp);
            c[l - sp] = 0;
        }
        char both[1024];
        snprintf(both, sizeof both, "%s%s", c, k);
        nc = encode(tok, c, &ids);
        int32_t *w = NULL;
        const size_t n = encode(tok, both, &w);
        nw = n > nc ? n - nc : 0;
        whole = malloc((nw + 1) * sizeof *whole);
        memcpy(whole, w + (n > nc ? nc : n), nw * sizeof *whole);
        mambac_free(w);
    }
    const int32_t V = mambac_model_get_info(m)->vocab_size, R = mambac_model_get_info(m)->n_vocab_rows;
    int32_t *all = malloc((nc + nw) * sizeof *all);
    memcpy(all, ids, nc * sizeof *all), memcpy(all + nc, whole, nw * sizeof *all);
    float *lg = malloc((nc + nw) * (size_t)R * sizeof *lg);
    mambac_state *st;
    mambac_error err;
    mambac_state_new(m, &st, &err);
    CHECK(mambac_eval(ctx, st, all, nc + nw, MAMBAC_LOGITS_ALL, lg, &err) == MAMBAC_OK, "reference eval: %s", err.msg);
    double total = 0;
    *greedy = 1;
    for (size_t i = 0; i < nw; i++) {
        const float *row = lg + (nc - 1 + i) * (size_t)R;
        double mx = row[0], se = 0;
        int32_t arg = 0;
        for (int32_t v = 1; v < V; v++)
            if (row[v] > mx) mx = row[v], arg = v;
        for (int32_t v = 0; v < V; v++) se += exp(row[v] - mx);
        total += row[whole[i]] - mx - log(se);
        *greedy &= arg == whole[i];
    }
    *n_cont = (int32_t)nw;
    mambac_state_free(st);
    free(lg), free(all), free(whole);
    if (*c) mambac_free(ids);
    else free(ids);
    return total;
}

static void check_request(mambac_context *ctx, mambac_model *m, mambac_tokenizer *tok, const char *context,
                          const char *const *conts, size_t n, const int32_t *want_tokens) {
    mambac_loglik got[8];
    size_t lens[8];
    for (size_t i = 0; i < n; i++) lens[i] = strlen(conts[i]);
    mambac_error err;
    CHECK(mambac_loglikelihood(ctx, tok, context, strlen(context), conts, lens, n, got, &err) == MAMBAC_OK, "'%s': %s",
          context, err.msg);
    for (size_t i = 0; i < n; i++) {
        int32_t nt;
        int greedy;
        const double want = reference(ctx, m, tok, context, conts[i], &nt, &greedy);
        CHECK(got[i].n_tokens == nt, "'%s' + '%s': %d continuation tokens, lm-eval's rule gives %d", context, conts[i],
              got[i].n_tokens, nt);
        if (want_tokens) CHECK(nt == want_tokens[i], "'%s' + '%s': %d tokens, expected %d", context, conts[i], nt, want_tokens[i]);
        CHECK(fabs(got[i].logprob - want) <= 1e-5 * (1 + fabs(want)), "'%s' + '%s': log-likelihood %.9f, fresh %.9f", context,
              conts[i], got[i].logprob, want);
        CHECK(got[i].greedy == greedy, "'%s' + '%s': greedy %d, fresh %d", context, conts[i], got[i].greedy, greedy);
    }
}

int main(void) {
    char *tmp = make_temp_dir(), model[600];
    snprintf(model, sizeof model, "%s/models/mamba1-tiny/hf", MAMBAC_TEST_DATA);
    mambac_model *m = NULL;
    mambac_context *ctx = NULL;
    mambac_error err;
    CHECK(mambac_model_load(model, &m, &err) == MAMBAC_OK, "load: %s", err.msg);
    mambac_context_params cp = mambac_context_default_params();
    cp.n_threads = 1;
    CHECK(m && mambac_context_new(m, &cp, &ctx, &err) == MAMBAC_OK, "context: %s", err.msg);
    mambac_tokenizer *tok = small_bpe(tmp);
    if (!m || !ctx || !tok) return check_summary();
    int32_t *ids = NULL;
    CHECK(encode(tok, " an", &ids) == 1 && ids[0] == 258, "the small BPE merges ' an' into one token");
    mambac_free(ids);
    /* choices of several tokens, from one context state */
    const char *choices[] = {" sat on the mat", " ran", " a", "!"};
    check_request(ctx, m, tok, "The cat", choices, 4, NULL);
    /* the context's trailing space moves to the continuation: "x " + "an" is "x" + " an" */
    const char *an[] = {"an"};
    const int32_t one[] = {1}, none[] = {0};
    check_request(ctx, m, tok, "x ", an, 1, one);
    /* the boundary merges away: "x a" + "n" encodes as x + " an", past the context's two
     * tokens nothing is left (lm-eval scores it as 0) */
    const char *n_[] = {"n"};
    check_request(ctx, m, tok, "x a", n_, 1, none);
    mambac_loglik z;
    size_t zl = 1;
    CHECK(mambac_loglikelihood(ctx, tok, "x a", 3, n_, &zl, 1, &z, &err) == MAMBAC_OK && z.logprob == 0.0 && z.greedy == 1,
          "an empty continuation scores 0, greedy");
    /* an empty context is the end-of-text token */
    const char *e[] = {" an", " cat"};
    check_request(ctx, m, tok, "", e, 2, NULL);
    /* a batch of requests (contexts of different lengths, an empty one, a moved space, one
     * continuation merging away) gives what each request gives alone */
    const char *b0[] = {" sat", " ran on the mat"}, *b1[] = {"an"}, *b2[] = {" an", " cat"}, *b3[] = {"n"};
    const size_t l0[] = {4, 15}, l1[] = {2}, l2[] = {3, 4}, l3[] = {1};
    mambac_loglik g0[2], g1[1], g2[2], g3[1], w;
    const mambac_ll_request reqs[] = {{"The cat", 7, b0, l0, 2, g0}, {"x ", 2, b1, l1, 1, g1}, {"", 0, b2, l2, 2, g2},
                                      {"x a", 3, b3, l3, 1, g3}};
    CHECK(mambac_loglikelihood_batch(ctx, tok, reqs, 4, &err) == MAMBAC_OK, "a batch of four requests: %s", err.msg);
    for (int j = 0; j < 4; j++)
        for (size_t i = 0; i < reqs[j].n_conts; i++) {
            CHECK(mambac_loglikelihood(ctx, tok, reqs[j].context, reqs[j].context_len, reqs[j].conts + i, reqs[j].cont_lens + i,
                                       1, &w, &err) == MAMBAC_OK,
                  "alone: %s", err.msg);
            const mambac_loglik *gb = &reqs[j].out[i];
            CHECK(gb->n_tokens == w.n_tokens && gb->greedy == w.greedy && fabs(gb->logprob - w.logprob) <= 1e-5 * (1 + fabs(w.logprob)),
                  "request %d continuation %zu: batched %.9f (%d tokens), alone %.9f (%d)", j, i, gb->logprob, gb->n_tokens,
                  w.logprob, w.n_tokens);
        }
    /* errors: NULL arguments */
    CHECK(mambac_loglikelihood(ctx, tok, "x", 1, NULL, NULL, 1, &z, &err) == MAMBAC_ERR_INVALID_ARG, "NULL continuations refused");
    mambac_tokenizer_free(tok);
    mambac_context_free(ctx);
    mambac_model_free(m);
    remove_temp_dir(tmp);
    free(tmp);
    return check_summary();
}
