/* cmd_generate.c — `mambac generate`: prefill the prompt, then decode one token at
 * a time with the recurrent step, printing the new ids comma-separated on one line.
 * Padded vocabulary rows are never chosen (the sampler sees only vocab_size ids). */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

typedef struct gen_opts {
    const char *model, *ids, *state_in, *state_out;
    long long n;
    mambac_sampler_params sp;
} gen_opts;

static int parse(cli_args *a, gen_opts *o) {
    o->n = 16;
    o->sp = mambac_sampler_default_params();
    for (; a->i < a->argc; a->i++) {
        const char *v = NULL;
        int bad = 0;
        double f;
        long long k;
        if (cli_flag(a, "--print-ids")) continue; /* ids are the only output until the tokenizer lands */
        if (cli_opt(a, "-m", "--model", &o->model, &bad) || cli_opt(a, "--prompt-ids", NULL, &o->ids, &bad) ||
            cli_opt(a, "--state-in", NULL, &o->state_in, &bad) || cli_opt(a, "--state-out", NULL, &o->state_out, &bad)) {
            if (bad) return CLI_USAGE;
        } else if (cli_opt(a, "-n", "--n-predict", &v, &bad)) {
            if (bad || !cli_parse_int(v, 0, 1LL << 40, &o->n)) return bad ? CLI_USAGE : cli_usage_error(a->cmd, "-n must be >= 0");
        } else if (cli_opt(a, "--temp", NULL, &v, &bad)) {
            if (bad || !cli_parse_float(v, &f) || !(f >= 0)) return bad ? CLI_USAGE : cli_usage_error(a->cmd, "--temp must be >= 0");
            o->sp.temp = (float)f;
        } else if (cli_opt(a, "--top-k", NULL, &v, &bad)) {
            if (bad || !cli_parse_int(v, 0, 1 << 30, &k)) return bad ? CLI_USAGE : cli_usage_error(a->cmd, "--top-k must be >= 0");
            o->sp.top_k = (int32_t)k;
        } else if (cli_opt(a, "--top-p", NULL, &v, &bad)) {
            if (bad || !cli_parse_float(v, &f)) return bad ? CLI_USAGE : cli_usage_error(a->cmd, "--top-p must be a number");
            o->sp.top_p = (float)f;
        } else if (cli_opt(a, "--min-p", NULL, &v, &bad)) {
            if (bad || !cli_parse_float(v, &f)) return bad ? CLI_USAGE : cli_usage_error(a->cmd, "--min-p must be a number");
            o->sp.min_p = (float)f;
        } else if (cli_opt(a, "--repeat-penalty", NULL, &v, &bad)) {
            if (bad || !cli_parse_float(v, &f)) return bad ? CLI_USAGE : cli_usage_error(a->cmd, "--repeat-penalty must be a number");
            o->sp.repeat_penalty = (float)f;
        } else if (cli_opt(a, "--repeat-last-n", NULL, &v, &bad)) {
            if (bad || !cli_parse_int(v, 0, 1 << 20, &k)) return bad ? CLI_USAGE : cli_usage_error(a->cmd, "--repeat-last-n must be >= 0");
            o->sp.repeat_last_n = (int32_t)k;
        } else if (cli_opt(a, "--seed", NULL, &v, &bad)) {
            if (bad || !cli_parse_int(v, 0, INT64_MAX, &k)) return bad ? CLI_USAGE : cli_usage_error(a->cmd, "--seed must be >= 0");
            o->sp.seed = (uint64_t)k;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (!o->ids) return cli_usage_error(a->cmd, "--prompt-ids is required (text prompts come with the tokenizer)");
    return CLI_OK;
}

int cmd_generate(cli_args *a) {
    gen_opts o = {0};
    int rc = parse(a, &o);
    if (rc != CLI_OK) return rc;
    int32_t *ids;
    size_t T;
    char msg[128];
    if (!cli_parse_ids(o.ids, &ids, &T, msg, sizeof msg)) return cli_error("%s", msg);
    cli_session s;
    if (cli_session_open(&s, o.model, 512, o.state_in) != CLI_OK) {
        free(ids);
        return CLI_ERR;
    }
    mambac_error err;
    mambac_sampler *smp = NULL;
    float *logits = malloc((size_t)s.info->n_vocab_rows * sizeof(float));
    mambac_status st = logits ? mambac_sampler_new(&o.sp, s.info->vocab_size, &smp, &err) : MAMBAC_ERR_NOMEM;
    if (!logits) snprintf(err.msg, sizeof err.msg, "out of memory");
    for (size_t i = 0; st == MAMBAC_OK && i < T; i++) mambac_sampler_accept(smp, ids[i]);
    if (st == MAMBAC_OK) st = mambac_eval(s.ctx, s.state, ids, T, MAMBAC_LOGITS_LAST, logits, &err);
    for (long long k = 0; st == MAMBAC_OK && k < o.n; k++) {
        int32_t next = mambac_sampler_sample(smp, logits);
        mambac_sampler_accept(smp, next);
        printf("%s%d", k ? "," : "", next);
        fflush(stdout);
        if (k + 1 < o.n || o.state_out) st = mambac_eval(s.ctx, s.state, &next, 1, MAMBAC_LOGITS_LAST, logits, &err);
    }
    if (st == MAMBAC_OK) {
        printf("\n");
        rc = cli_session_save(&s, o.state_out);
    } else {
        rc = cli_error("%s", err.msg);
    }
    mambac_sampler_free(smp);
    free(logits);
    free(ids);
    cli_session_close(&s);
    return rc;
}
