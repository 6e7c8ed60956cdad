/* eval_rolling.c — `mambac eval --task perplexity --data PATH`: lm-evaluation-harness's
 * loglikelihood_rolling over documents (a text file, or every .txt file of a folder, each
 * one document). lm-eval's windows (get_rolling_token_windows with context_len 1, then
 * make_disjoint_window): disjoint windows of ctx tokens, the first predicted after the
 * end-of-text token, every later one after the token before it, each from a fresh state,
 * except that a shorter last window sees the ctx tokens before the document's end;
 * ctx 0 instead runs a document whole through the state (every token sees all before it:
 * what a recurrent model can do and lm-eval's windows cannot). Metrics as lm-eval's
 * wikitext task: word_perplexity exp(-LL / words), byte_perplexity exp(-LL / bytes),
 * bits_per_byte -LL / bytes / ln 2, plus token perplexity; words are the pieces of
 * re.split(r"\s+", doc). --curve writes the mean loss by how many tokens the prediction had
 * seen in its window (buckets [2^k, 2^(k+1))) as CSV: with ctx 0, how loss falls with the
 * length of the context. */
#define _POSIX_C_SOURCE 200809L
#include "eval_rolling.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIECE 256 /* tokens evaluated at once (their logits: PIECE x vocabulary floats) */
#define BUCKETS 40

static double words_of(const char *s, size_t n) {
    /* len(re.split(r"\s+", doc)): the whitespace runs plus one */
    double w = 1;
    for (size_t i = 0; i < n;) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v') {
            w++;
            while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v')) i++;
        } else {
            i++;
        }
    }
    return w;
}

/* log-softmax(row)[id] over V values, in double */
static double logprob(const float *row, int32_t V, int32_t id) {
    double mx = row[0], se = 0;
    for (int32_t v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
    for (int32_t v = 0; v < V; v++) se += exp((double)row[v] - mx);
    return (double)row[id] - mx - log(se);
}

/* Feeds in[0..n) from the state and adds log p(want[i] | in[..i]) for every i >= skip, and
 * each loss to the curve's bucket of i + 1 (the tokens the prediction had seen). */
static int score(cli_session *s, const int32_t *in, const int32_t *want, size_t n, size_t skip, float *lg, double *ll,
                 double *bucket_sum, double *bucket_n) {
    const int32_t V = s->info->vocab_size, R = s->info->n_vocab_rows;
    mambac_error err;
    for (size_t b = 0; b < n; b += PIECE) {
        const size_t m = n - b < PIECE ? n - b : PIECE;
        if (mambac_eval(s->ctx, s->state, in + b, m, MAMBAC_LOGITS_ALL, lg, &err) != MAMBAC_OK) return cli_error("%s", err.msg);
        for (size_t i = b < skip ? skip - b : 0; i < m; i++) {
            const double l = logprob(lg + i * (size_t)R, V, want[b + i]);
            *ll += l;
            const int64_t pos = (int64_t)(b + i) + 1;
            int k = 0;
            while (k + 1 < BUCKETS && (pos >> (k + 1)) > 0) k++;
            bucket_sum[k] -= l, bucket_n[k] += 1;
        }
    }
    return CLI_OK;
}

int eval_rolling(cli_session *s, mambac_tokenizer *tok, const char *path, long long ctx, long long limit,
                 const char *curve, rolling_result *out) {
    char **docs = NULL;
    int n_docs = 0;
    if (cli_list_documents(path, &docs, &n_docs, NULL) != CLI_OK) return CLI_ERR;
    if (limit > 0 && n_docs > limit) n_docs = (int)limit;
    const int32_t eos = s->info->eos_token_id;
    float *lg = malloc((size_t)PIECE * (size_t)s->info->n_vocab_rows * sizeof *lg);
    double bucket_sum[BUCKETS] = {0}, bucket_n[BUCKETS] = {0};
    int rc = lg ? CLI_OK : cli_error("out of memory");
    if (rc == CLI_OK && (eos < 0 || eos >= s->info->n_vocab_rows))
        rc = cli_error("the model's config has no end-of-text token to start a window with");
    memset(out, 0, sizeof *out);
    const double t0 = cli_now();
    for (int d = 0; rc == CLI_OK && d < n_docs; d++) {
        char *text = NULL;
        size_t len;
        int32_t *ids = NULL;
        size_t n = 0;
        mambac_error err;
        if (cli_read_input(docs[d], &text, &len) != CLI_OK) rc = CLI_ERR;
        else if (mambac_tokenize(tok, text, len, &ids, &n, &err) != MAMBAC_OK) rc = cli_error("%s: %s", docs[d], err.msg);
        int32_t *in = rc == CLI_OK ? malloc((n + 1) * sizeof *in) : NULL;
        if (rc == CLI_OK && !in) rc = cli_error("out of memory");
        if (rc == CLI_OK && n > 0) {
            in[0] = eos;
            memcpy(in + 1, ids, n * sizeof *in); /* in[i] predicts ids[i] */
            double ll = 0;
            const size_t L = ctx > 0 ? (size_t)ctx : n;
            for (size_t w = 0; rc == CLI_OK && w < n; w += L) {
                /* window: predict ids[w, w + m) after in[w]; a last, shorter one is lm-eval's
                 * last window of L tokens, scored only where nothing was scored before */
                const size_t m = n - w < L ? n - w : L, start = w > 0 && m < L ? n - L : w;
                mambac_state_reset(s->state);
                rc = score(s, in + start, ids + start, w + m - start, w - start, lg, &ll, bucket_sum, bucket_n);
            }
            out->ll += ll;
            out->tokens += (double)n;
            out->bytes += (double)len;
            out->words += words_of(text, len);
        }
        out->docs++;
        if (rc == CLI_OK && isatty(2))
            fprintf(stderr, "\rperplexity: %d/%d documents, %.0f tok/s   ", d + 1, n_docs, out->tokens / (cli_now() - t0 + 1e-9));
        free(in), free(text);
        mambac_free(ids);
    }
    if (isatty(2)) fprintf(stderr, "\n");
    if (rc == CLI_OK && out->tokens == 0) rc = cli_error("%s: no tokens to score", path);
    if (rc == CLI_OK && curve) { /* a temporary name, then renamed */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", curve, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        int ok = f && fprintf(f, "positions_from,positions_to,tokens,mean_nats\n") > 0;
        for (int k = 0; ok && k < BUCKETS; k++)
            if (bucket_n[k] > 0)
                ok = fprintf(f, "%lld,%lld,%.0f,%.6f\n", 1LL << k, (2LL << k) - 1, bucket_n[k], bucket_sum[k] / bucket_n[k]) > 0;
        if (f && fclose(f) != 0) ok = 0;
        if (!ok || rename(tmp, curve) != 0) {
            unlink(tmp);
            rc = cli_error("%s: cannot write", curve);
        }
    }
    for (int d = 0; d < n_docs; d++) free(docs[d]);
    free(docs);
    free(lg);
    return rc;
}
