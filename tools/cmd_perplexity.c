/* cmd_perplexity.c — `mambac perplexity`: mean next-token loss of a text file in
 * non-overlapping windows of --ctx tokens (each from a fresh state), as perplexity,
 * nats per token and bits per byte. --from / --to select a byte range of the file
 * (e.g. the validation split). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_perplexity(cli_args *a) {
    const char *model = NULL, *file = NULL, *tok_path = NULL, *ctx_s = NULL, *threads_s = NULL, *from_s = NULL, *to_s = NULL;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "-f", "--file", &file, &bad) ||
            cli_opt(a, "--tokenizer", NULL, &tok_path, &bad) || cli_opt(a, "--ctx", NULL, &ctx_s, &bad) ||
            cli_opt(a, "-t", "--threads", &threads_s, &bad) || cli_opt(a, "--from", NULL, &from_s, &bad) ||
            cli_opt(a, "--to", NULL, &to_s, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (!file) return cli_usage_error(a->cmd, "-f FILE is required");
    long long ctx = 256, from = 0, to = -1;
    int32_t threads = 0;
    if (ctx_s && !cli_parse_int(ctx_s, 2, 1 << 20, &ctx)) return cli_usage_error(a->cmd, "--ctx must be >= 2");
    if (from_s && !cli_parse_int(from_s, 0, INT64_MAX, &from)) return cli_usage_error(a->cmd, "--from must be >= 0");
    if (to_s && !cli_parse_int(to_s, 0, INT64_MAX, &to)) return cli_usage_error(a->cmd, "--to must be >= 0");
    if (threads_s && !cli_parse_threads(threads_s, &threads)) return cli_usage_error(a->cmd, "-t must be >= 1");
    char *text;
    size_t len;
    if (cli_read_input(file, &text, &len) != CLI_OK) return CLI_ERR;
    if (to < 0 || (size_t)to > len) to = (long long)len;
    if (from > to) from = to;
    cli_session s;
    if (cli_session_open(&s, model, (int32_t)ctx, threads, NULL) != CLI_OK) {
        free(text);
        return CLI_ERR;
    }
    mambac_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    float *logits = NULL;
    mambac_error err;
    int rc = CLI_ERR;
    if (cli_load_tokenizer(tok_path, s.info, &tok) != CLI_OK) goto done;
    if (mambac_tokenize(tok, text + from, (size_t)(to - from), &ids, &n, &err) != MAMBAC_OK) {
        cli_error("%s", err.msg);
        goto done;
    }
    if (n < 2) {
        cli_error("%s: fewer than 2 tokens to score", file);
        goto done;
    }
    const int64_t V = s.info->n_vocab_rows;
    logits = malloc((size_t)(ctx * V) * sizeof(float));
    if (!logits) {
        cli_error("out of memory");
        goto done;
    }
    double nll = 0;
    int64_t scored = 0;
    const double t0 = cli_now();
    for (size_t w = 0; w + 1 < n; w += (size_t)ctx) {
        const size_t m = n - w < (size_t)ctx ? n - w : (size_t)ctx;
        if (m < 2) break;
        mambac_state_reset(s.state);
        if (mambac_eval(s.ctx, s.state, ids + w, m, MAMBAC_LOGITS_ALL, logits, &err) != MAMBAC_OK) {
            cli_error("%s", err.msg);
            goto done;
        }
        for (size_t i = 0; i + 1 < m; i++) {
            const float *row = logits + i * V;
            double mx = row[0], se = 0;
            for (int64_t v = 1; v < s.info->vocab_size; v++) mx = row[v] > mx ? row[v] : mx;
            for (int64_t v = 0; v < s.info->vocab_size; v++) se += exp(row[v] - mx);
            nll += mx + log(se) - row[ids[w + i + 1]];
            scored++;
        }
    }
    const double mean = nll / (double)scored;
    printf("tokens scored: %lld (windows of %lld)\nnats/token: %.5f\nperplexity: %.4f\nbits/byte: %.5f\n", (long long)scored,
           ctx, mean, exp(mean), nll / log(2.0) / (double)(to - from));
    fprintf(stderr, "%.1f s, %.0f tok/s\n", cli_now() - t0, (double)n / (cli_now() - t0));
    rc = CLI_OK;
done:
    free(logits);
    free(ids);
    mambac_tokenizer_free(tok);
    cli_session_close(&s);
    free(text);
    return rc;
}
