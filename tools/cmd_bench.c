/* cmd_bench.c — `mambac bench`: prefill and decode speed of a model, llama-bench style.
 * Each repeat: a fresh state, a prompt of -p random ids evaluated at once (prefill),
 * then -n tokens decoded one at a time with the recurrent step, each chosen by argmax
 * (so the lm_head runs every step, as in generation). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void mean_std(const double *v, int n, double *mean, double *std) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *std = n > 1 ? sqrt(q / (n - 1)) : 0;
}

int cmd_bench(cli_args *a) {
    const char *model = NULL, *p_s = NULL, *n_s = NULL, *t_s = NULL, *r_s = NULL;
    int json = 0;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_flag(a, "--json")) json = 1;
        else if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "-p", "--prompt", &p_s, &bad) ||
                 cli_opt(a, "-n", "--n-gen", &n_s, &bad) || cli_opt(a, "-t", "--threads", &t_s, &bad) ||
                 cli_opt(a, "-r", "--repeats", &r_s, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    long long P = 512, N = 128, threads = 0, R = 3;
    if ((p_s && !cli_parse_int(p_s, 0, 1 << 24, &P)) || (n_s && !cli_parse_int(n_s, 0, 1 << 24, &N)) ||
        (t_s && !cli_parse_int(t_s, 1, 1024, &threads)) || (r_s && !cli_parse_int(r_s, 1, 1000, &R)))
        return cli_usage_error(a->cmd, "-p, -n >= 0; -t in [1, 1024]; -r in [1, 1000]");
    mambac_model *m;
    if (cli_load_model(model, &m) != CLI_OK) return CLI_ERR;
    const mambac_model_info *c = mambac_model_get_info(m);
    mambac_context_params cp = mambac_context_default_params();
    cp.n_threads = (int32_t)threads;
    cp.max_ubatch = P > 0 && P < 512 ? (int32_t)P : 512;
    mambac_context *ctx = NULL;
    mambac_state *st = NULL;
    mambac_error err;
    int32_t *ids = malloc((size_t)(P + 1) * sizeof *ids);
    float *logits = malloc((size_t)c->n_vocab_rows * sizeof(float));
    double *pp = calloc((size_t)R, sizeof *pp), *tg = calloc((size_t)R, sizeof *tg);
    int rc = CLI_OK;
    if (!ids || !logits || !pp || !tg || mambac_context_new(m, &cp, &ctx, &err) != MAMBAC_OK ||
        mambac_state_new(m, &st, &err) != MAMBAC_OK) {
        rc = cli_error("%s", ids && logits && pp && tg ? err.msg : "out of memory");
        goto done;
    }
    uint64_t rng = 42;
    for (long long i = 0; i < P; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((rng >> 33) % (uint64_t)c->vocab_size);
    }
    const char *name = model ? model : "default";
    const char *slash = strrchr(name, '/');
    if (slash && slash[1]) name = slash + 1;
    if (!json)
        printf("| model | arch | dtype | isa | threads | params | size | test | t/s |\n|---|---|---|---|---|---|---|---|---|\n");
    for (long long r = 0; r < R; r++) {
        mambac_state_reset(st);
        double t0 = cli_now();
        if (P > 0 && mambac_eval(ctx, st, ids, (size_t)P, MAMBAC_LOGITS_LAST, logits, &err) != MAMBAC_OK) {
            rc = cli_error("%s", err.msg);
            goto done;
        }
        double t1 = cli_now();
        int32_t next = P > 0 ? mambac_argmax(logits, c->vocab_size) : 0;
        for (long long k = 0; k < N; k++) {
            if (mambac_eval(ctx, st, &next, 1, MAMBAC_LOGITS_LAST, logits, &err) != MAMBAC_OK) {
                rc = cli_error("%s", err.msg);
                goto done;
            }
            next = mambac_argmax(logits, c->vocab_size);
        }
        double t2 = cli_now();
        pp[r] = P > 0 ? P / (t1 - t0) : 0;
        tg[r] = N > 0 ? N / (t2 - t1) : 0;
        if (json)
            printf("{\"model\": \"%s\", \"arch\": \"%s\", \"dtype\": \"%s\", \"isa\": \"%s\", \"threads\": %d, \"n_params\": %lld, "
                   "\"weight_bytes\": %lld, \"state_bytes\": %zu, \"prefill_tokens\": %lld, \"prefill_tok_s\": %.2f, "
                   "\"decode_tokens\": %lld, \"decode_tok_s\": %.2f}\n",
                   name, mambac_arch_name(c->arch), mambac_dtype_name(c->dtype), mambac_context_isa(ctx), mambac_context_threads(ctx),
                   (long long)c->n_params, (long long)c->weight_bytes, mambac_state_size_bytes(m), P, pp[r], N, tg[r]);
        fflush(stdout);
    }
    if (!json) {
        double mean, sd;
        const char *fmt = "| %s | %s | %s | %s | %d | %.1fM | %.1f MiB | %s%lld | %.2f ± %.2f |\n";
        mean_std(pp, (int)R, &mean, &sd);
        if (P > 0)
            printf(fmt, name, mambac_arch_name(c->arch), mambac_dtype_name(c->dtype), mambac_context_isa(ctx), mambac_context_threads(ctx),
                   c->n_params / 1e6, c->weight_bytes / 1048576.0, "pp", P, mean, sd);
        mean_std(tg, (int)R, &mean, &sd);
        if (N > 0)
            printf(fmt, name, mambac_arch_name(c->arch), mambac_dtype_name(c->dtype), mambac_context_isa(ctx), mambac_context_threads(ctx),
                   c->n_params / 1e6, c->weight_bytes / 1048576.0, "tg", N, mean, sd);
    }
done:
    free(ids), free(logits), free(pp), free(tg);
    mambac_state_free(st);
    mambac_context_free(ctx);
    mambac_model_free(m);
    return rc;
}
