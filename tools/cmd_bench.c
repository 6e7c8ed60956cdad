/* cmd_bench.c — `mambac bench`: prefill and decode speed of a model, llama-bench style.
 * Each repeat: fresh states for -b sequences, a prompt of -p random ids each, all
 * evaluated in one batched call (prefill), then -n decode steps of every sequence
 * together, each token chosen by argmax (so the lm_head runs every step, as in
 * generation) where the model runs (MAMBAC_LOGITS_GREEDY: a GPU sends back ids). Rates are aggregate: tokens of all sequences per second. One untimed
 * round comes first. */
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

typedef struct bench_run {
    mambac_context *ctx;
    mambac_state **st;
    mambac_seq *q;
    int32_t *ids, *next; /* (B, P) prompts; (B) tokens of the step */
    long long B, P, N;
} bench_run;

/* One repeat: prefill of every prompt together, then N decode steps together. */
static int bench_once(bench_run *b, double *pp, double *tg, mambac_error *err) {
    for (long long s = 0; s < b->B; s++) mambac_state_reset(b->st[s]);
    for (long long s = 0; s < b->B; s++) {
        b->next[s] = 0;
        b->q[s] = (mambac_seq){b->st[s], b->ids + s * b->P, (size_t)b->P, MAMBAC_LOGITS_GREEDY, NULL, &b->next[s]};
    }
    double t0 = cli_now();
    if (b->P > 0 && mambac_eval_batch(b->ctx, b->q, (size_t)b->B, err) != MAMBAC_OK) return 0;
    double t1 = cli_now();
    for (long long s = 0; s < b->B; s++) b->q[s].ids = &b->next[s], b->q[s].n_tokens = 1;
    for (long long k = 0; k < b->N; k++) /* each next token the argmax of the last logits, where the model runs */
        if (mambac_eval_batch(b->ctx, b->q, (size_t)b->B, err) != MAMBAC_OK) return 0;
    double t2 = cli_now();
    *pp = b->P > 0 ? b->B * b->P / (t1 - t0) : 0;
    *tg = b->N > 0 ? b->B * b->N / (t2 - t1) : 0;
    return 1;
}

int cmd_bench(cli_args *a) {
    const char *model = NULL, *p_s = NULL, *n_s = NULL, *t_s = NULL, *r_s = NULL, *b_s = NULL, *u_s = NULL;
    int json = 0;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_flag(a, "--json")) json = 1;
        else if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "-p", "--prompt", &p_s, &bad) ||
                 cli_opt(a, "-n", "--n-gen", &n_s, &bad) || cli_opt(a, "-t", "--threads", &t_s, &bad) ||
                 cli_opt(a, "-r", "--repeats", &r_s, &bad) || cli_opt(a, "-b", "--batch", &b_s, &bad) ||
                 cli_opt(a, "-u", "--ubatch", &u_s, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    long long P = 512, N = 128, threads = 0, R = 3, B = 1, U = 0;
    if ((p_s && !cli_parse_int(p_s, 0, 1 << 24, &P)) || (n_s && !cli_parse_int(n_s, 0, 1 << 24, &N)) ||
        (t_s && !cli_parse_int(t_s, 1, 1024, &threads)) || (r_s && !cli_parse_int(r_s, 1, 1000, &R)) ||
        (b_s && !cli_parse_int(b_s, 1, 4096, &B)) || (u_s && !cli_parse_int(u_s, 1, 1 << 20, &U)))
        return cli_usage_error(a->cmd, "-p, -n >= 0; -t in [1, 1024]; -r in [1, 1000]; -b in [1, 4096]; -u in [1, 1048576]");
    if (P == 0 && N == 0) return cli_usage_error(a->cmd, "nothing to measure: -p and -n are both 0");
    if (P * B > (1ll << 26)) return cli_usage_error(a->cmd, "-p times -b must be at most 67108864 tokens");
    mambac_model *m;
    if (cli_load_model(model, &m) != CLI_OK) return CLI_ERR;
    const mambac_model_info *c = mambac_model_get_info(m);
    mambac_context_params cp = mambac_context_default_params();
    cp.n_threads = (int32_t)threads;
    /* a prompt piece of up to 512 rows; every decode step of the batch in one piece */
    cp.max_ubatch = (int32_t)(U ? U : P * B > 0 && P * B < 512 ? P * B : 512);
    if (cp.max_ubatch < B) cp.max_ubatch = (int32_t)B;
    bench_run b = {.B = B, .P = P, .N = N};
    mambac_error err;
    b.st = calloc((size_t)B, sizeof *b.st);
    b.q = calloc((size_t)B, sizeof *b.q);
    b.ids = malloc((size_t)(P * B + 1) * sizeof *b.ids);
    b.next = malloc((size_t)B * sizeof *b.next);
    double *pp = calloc((size_t)R, sizeof *pp), *tg = calloc((size_t)R, sizeof *tg);
    int rc = CLI_OK;
    if (!b.st || !b.q || !b.ids || !b.next || !pp || !tg) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (mambac_context_new(m, &cp, &b.ctx, &err) != MAMBAC_OK) {
        rc = cli_error("%s", err.msg);
        goto done;
    }
    for (long long s = 0; s < B; s++)
        if (mambac_state_new(m, &b.st[s], &err) != MAMBAC_OK) {
            rc = cli_error("%s", err.msg);
            goto done;
        }
    uint64_t rng = 42;
    for (long long i = 0; i < P * B; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        b.ids[i] = (int32_t)((rng >> 33) % (uint64_t)c->vocab_size);
    }
    const char *name = model ? model : "default";
    const char *slash = strrchr(name, '/');
    if (slash && slash[1]) name = slash + 1;
    const char *isa = mambac_context_isa(b.ctx);
    if (!json)
        printf("| model | arch | dtype | isa | threads | batch | params | size | test | t/s |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n");
    double warm_pp, warm_tg; /* one untimed round: lazy initialisation (GPU libraries, page faults) stays out */
    if (!bench_once(&b, &warm_pp, &warm_tg, &err)) {
        rc = cli_error("%s", err.msg);
        goto done;
    }
    for (long long r = 0; r < R; r++) {
        if (!bench_once(&b, &pp[r], &tg[r], &err)) {
            rc = cli_error("%s", err.msg);
            goto done;
        }
        if (json)
            printf("{\"model\": \"%s\", \"arch\": \"%s\", \"dtype\": \"%s\", \"backend\": \"%s\", \"isa\": \"%s\", "
                   "\"threads\": %d, \"batch\": %lld, \"n_params\": %lld, \"weight_bytes\": %lld, \"state_bytes\": %zu, "
                   "\"prefill_tokens\": %lld, \"prefill_tok_s\": %.2f, \"decode_tokens\": %lld, \"decode_tok_s\": %.2f}\n",
                   name, mambac_arch_name(c->arch), mambac_dtype_name(c->dtype), mambac_model_backend(m), isa,
                   mambac_context_threads(b.ctx), B, (long long)c->n_params, (long long)c->weight_bytes,
                   mambac_state_size_bytes(m), P, pp[r], N, tg[r]);
        fflush(stdout);
    }
    if (!json) {
        double mean, sd;
        const char *fmt = "| %s | %s | %s | %s | %d | %lld | %.1fM | %.1f MiB | %s%lld | %.2f ± %.2f |\n";
        mean_std(pp, (int)R, &mean, &sd);
        if (P > 0)
            printf(fmt, name, mambac_arch_name(c->arch), mambac_dtype_name(c->dtype), isa, mambac_context_threads(b.ctx), B,
                   c->n_params / 1e6, c->weight_bytes / 1048576.0, "pp", P, mean, sd);
        mean_std(tg, (int)R, &mean, &sd);
        if (N > 0)
            printf(fmt, name, mambac_arch_name(c->arch), mambac_dtype_name(c->dtype), isa, mambac_context_threads(b.ctx), B,
                   c->n_params / 1e6, c->weight_bytes / 1048576.0, "tg", N, mean, sd);
    }
done:
    for (long long s = 0; b.st && s < B; s++) mambac_state_free(b.st[s]);
    free(b.st), free(b.q), free(b.ids), free(b.next), free(pp), free(tg);
    mambac_context_free(b.ctx);
    mambac_model_free(m);
    return rc;
}
