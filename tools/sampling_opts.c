/* sampling_opts.c — the sampling options generate and chat share (-n, --temp, --top-k,
 * --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed): parsed, range-checked
 * before a model loads (usage errors exit 2 naming the flag), and a random seed when none
 * is given (printed, so a run can be repeated). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void cli_sampling_init(cli_sampling *o, long long n) {
    o->sp = mambac_sampler_default_params();
    o->n = n;
    o->seed_given = 0;
}

/* A seed for a run without --seed (or with --seed -1): from the kernel's entropy, else
 * the clock and the process id. */
static uint64_t random_seed(void) {
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&v, sizeof v, 1, f) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
    }
    if (f) fclose(f);
    return v >> 1; /* printable as a non-negative --seed */
}

int cli_sampling_opt(cli_args *a, cli_sampling *o, int *bad, int *matched) {
    const char *v = NULL;
    double f = 0;
    long long k = 0;
    *matched = 1;
    if (cli_opt(a, "-n", "--n-predict", &v, bad)) {
        if (*bad) return CLI_USAGE;
        if (!cli_parse_int(v, 0, 1LL << 40, &o->n)) return cli_usage_error(a->cmd, "-n must be >= 0");
    } else if (cli_opt(a, "--temp", NULL, &v, bad)) {
        if (*bad) return CLI_USAGE;
        if ((!cli_parse_float(v, &f) || !(f >= 0))) return cli_usage_error(a->cmd, "--temp must be >= 0");
        o->sp.temp = (float)f;
    } else if (cli_opt(a, "--top-k", NULL, &v, bad)) {
        if (*bad) return CLI_USAGE;
        if (!cli_parse_int(v, 0, 1 << 30, &k)) return cli_usage_error(a->cmd, "--top-k must be >= 0");
        o->sp.top_k = (int32_t)k;
    } else if (cli_opt(a, "--top-p", NULL, &v, bad)) {
        if (*bad) return CLI_USAGE;
        if (!cli_parse_float(v, &f)) return cli_usage_error(a->cmd, "--top-p must be a number");
        o->sp.top_p = (float)f;
    } else if (cli_opt(a, "--min-p", NULL, &v, bad)) {
        if (*bad) return CLI_USAGE;
        if (!cli_parse_float(v, &f)) return cli_usage_error(a->cmd, "--min-p must be a number");
        o->sp.min_p = (float)f;
    } else if (cli_opt(a, "--repeat-penalty", NULL, &v, bad)) {
        if (*bad) return CLI_USAGE;
        if (!cli_parse_float(v, &f)) return cli_usage_error(a->cmd, "--repeat-penalty must be a number");
        o->sp.repeat_penalty = (float)f;
    } else if (cli_opt(a, "--repeat-last-n", NULL, &v, bad)) {
        if (*bad) return CLI_USAGE;
        if (!cli_parse_int(v, 0, 1 << 20, &k)) return cli_usage_error(a->cmd, "--repeat-last-n must be >= 0");
        o->sp.repeat_last_n = (int32_t)k;
    } else if (cli_opt(a, "--seed", NULL, &v, bad)) {
        if (*bad) return CLI_USAGE;
        if (!cli_parse_int(v, -1, INT64_MAX, &k)) return cli_usage_error(a->cmd, "--seed must be >= 0 (or -1: random)");
        o->seed_given = k >= 0;
        o->sp.seed = k >= 0 ? (uint64_t)k : 0;
    } else {
        *matched = 0;
    }
    return *bad ? CLI_USAGE : CLI_OK;
}

int cli_sampling_check(const cli_args *a, const cli_sampling *o) {
    const mambac_sampler_params *p = &o->sp;
    if (!isfinite(p->temp)) return cli_usage_error(a->cmd, "--temp must be a finite number >= 0");
    if (!(p->top_p > 0 && p->top_p <= 1)) return cli_usage_error(a->cmd, "--top-p must be in (0, 1]");
    if (!(p->min_p >= 0 && p->min_p <= 1)) return cli_usage_error(a->cmd, "--min-p must be in [0, 1]");
    if (!(p->repeat_penalty > 0 && isfinite(p->repeat_penalty))) return cli_usage_error(a->cmd, "--repeat-penalty must be > 0");
    return CLI_OK;
}

void cli_sampling_seed(const cli_sampling *o, mambac_sampler_params *sp) {
    if (o->seed_given) return;
    sp->seed = random_seed();
    if (sp->temp > 0) fprintf(stderr, "mambac: seed %llu\n", (unsigned long long)sp->seed);
}
