/* cmd_eval.c — `mambac eval`: zero-shot tasks scored as lm-evaluation-harness scores
 * them (mambac_loglikelihood: its tokenization and log-probabilities; a context evaluated
 * once, its choices from copies of the state). Three kinds of task:
 *   choice:  one context, several continuations ("Question: ...\nAnswer:" + " " + choice);
 *            acc (the most likely choice is the gold one) and acc_norm (likelihood divided
 *            by the choice's length in characters, lm-eval's length normalisation);
 *   partial: several contexts, one continuation (WinoGrande: the option fills the blank);
 *            acc;
 *   loglik:  one context, one continuation (LAMBADA: the last word); acc (every token of
 *            it greedy) and perplexity (exp of minus the mean log-likelihood).
 * Standard errors as lm-eval computes them for means: the sample standard deviation over
 * sqrt(n). The built-in tasks read the files of a data folder (--data); any JSONL file in
 * the documented format is a task too (--task jsonl:PATH; docs/EVALUATION.md). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eval_rolling.h"
#include "eval_tasks.h"

typedef struct metrics {
    double acc, acc_se, acc_norm, acc_norm_se, ppl;
    int n;
    rolling_result roll; /* the perplexity task */
} metrics;

/* mean and lm-eval's standard error (sample standard deviation / sqrt(n)) of 0/1 values */
static void mean_se(const unsigned char *x, int n, double *mean, double *se) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    const double m = s / n;
    double v = 0;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *se = n > 1 ? sqrt(v / (n - 1)) / sqrt((double)n) : 0.0;
}

/* A double as Python's repr writes it (the shortest digits that read back the same): lm-eval
 * logs its log-likelihoods as str(float). */
static void py_repr(double v, char *buf, size_t n) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", n - strlen(buf) - 1); /* a float, not an int */
}

/* One item as lm-eval's --log_samples writes it (doc_id, doc, target, arguments, resps,
 * filtered_resps, filter, metrics and the per-item values; its hashes are left out), plus
 * the task's name: one file holds every task's items. */
static void write_sample(FILE *f, const task *t, int i, const mambac_loglik *ll, int n, int hit, int hit_norm) {
    const item *it = &t->items[i];
    cJSON *o = cJSON_CreateObject(), *args = cJSON_CreateObject(), *resps = cJSON_CreateArray(), *fr = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "task", t->name);
    cJSON_AddNumberToObject(o, "doc_id", i);
    cJSON *doc = cJSON_Parse(it->doc);
    cJSON_AddItemToObject(o, "doc", doc ? doc : cJSON_CreateNull());
    char buf[64];
    if (t->kind == K_LOGLIK) cJSON_AddStringToObject(o, "target", it->cont[0]);
    else snprintf(buf, sizeof buf, "%d", it->gold), cJSON_AddStringToObject(o, "target", buf);
    for (int k = 0; k < n; k++) {
        cJSON *g = cJSON_CreateObject(), *pair = cJSON_CreateArray();
        cJSON_AddStringToObject(g, "arg_0", it->ctx[t->kind == K_PARTIAL ? k : 0]);
        cJSON_AddStringToObject(g, "arg_1", it->cont[t->kind == K_PARTIAL ? 0 : k]);
        snprintf(buf, sizeof buf, "gen_args_%d", k);
        cJSON_AddItemToObject(args, buf, g);
        py_repr(ll[k].logprob, buf, sizeof buf);
        cJSON_AddItemToArray(pair, cJSON_CreateString(buf));
        cJSON_AddItemToArray(pair, cJSON_CreateString(ll[k].greedy ? "True" : "False"));
        cJSON *wrapped = cJSON_CreateArray();
        cJSON_AddItemToArray(wrapped, cJSON_Duplicate(pair, 1));
        cJSON_AddItemToArray(resps, wrapped);
        cJSON_AddItemToArray(fr, pair);
    }
    cJSON_AddItemToObject(o, "arguments", args);
    cJSON_AddItemToObject(o, "resps", resps);
    cJSON_AddItemToObject(o, "filtered_resps", fr);
    cJSON_AddStringToObject(o, "filter", "none");
    cJSON *names = cJSON_AddArrayToObject(o, "metrics");
    if (t->kind == K_LOGLIK) {
        cJSON_AddItemToArray(names, cJSON_CreateString("perplexity"));
        cJSON_AddItemToArray(names, cJSON_CreateString("acc"));
        cJSON_AddNumberToObject(o, "perplexity", ll[0].logprob);
        cJSON_AddNumberToObject(o, "acc", ll[0].greedy ? 1.0 : 0.0);
    } else {
        cJSON_AddItemToArray(names, cJSON_CreateString("acc"));
        if (t->norm) cJSON_AddItemToArray(names, cJSON_CreateString("acc_norm"));
        cJSON_AddNumberToObject(o, "acc", hit ? 1.0 : 0.0);
        if (t->norm) cJSON_AddNumberToObject(o, "acc_norm", hit_norm ? 1.0 : 0.0);
    }
    char *line = cJSON_PrintUnformatted(o);
    if (line) fprintf(f, "%s\n", line);
    free(line);
    cJSON_Delete(o);
}

/* Items scored per batch call: as many as fit STATE_BUDGET of sequence states (a context's
 * and a copy per choice each), at most GROUP_MAX. */
#define STATE_BUDGET ((size_t)512 << 20)
#define GROUP_MAX 64

/* The log-likelihoods of items [i0, i1) in one mambac_loglikelihood_batch call (a partial
 * item: one request per context): ll[(i - i0) * 64 + k]. */
static int score_group(cli_session *s, mambac_tokenizer *tok, const task *t, int i0, int i1, mambac_loglik *ll) {
    size_t n_req = 0, n_len = 0;
    for (int i = i0; i < i1; i++) {
        n_req += t->kind == K_PARTIAL ? (size_t)t->items[i].n_ctx : 1;
        n_len += t->kind == K_PARTIAL ? (size_t)t->items[i].n_ctx : (size_t)t->items[i].n_cont;
    }
    mambac_ll_request *reqs = calloc(n_req, sizeof *reqs);
    size_t *lens = calloc(n_len, sizeof *lens), r = 0, l = 0;
    if (!reqs || !lens) return free(reqs), free(lens), cli_error("out of memory");
    for (int i = i0; i < i1; i++) {
        const item *it = &t->items[i];
        mambac_loglik *o = ll + (size_t)(i - i0) * 64;
        if (t->kind == K_PARTIAL) {
            for (int k = 0; k < it->n_ctx; k++, r++, l++) {
                lens[l] = strlen(it->cont[0]);
                reqs[r] = (mambac_ll_request){it->ctx[k], strlen(it->ctx[k]), (const char *const *)it->cont, &lens[l], 1, o + k};
            }
        } else {
            for (int k = 0; k < it->n_cont; k++) lens[l + k] = strlen(it->cont[k]);
            reqs[r++] = (mambac_ll_request){it->ctx[0], strlen(it->ctx[0]), (const char *const *)it->cont, &lens[l],
                                            (size_t)it->n_cont, o};
            l += (size_t)it->n_cont;
        }
    }
    mambac_error err;
    const int rc = mambac_loglikelihood_batch(s->ctx, tok, reqs, n_req, &err) == MAMBAC_OK
                       ? CLI_OK
                       : cli_error("%s items %d-%d: %s", t->name, i0 + 1, i1, err.msg);
    free(reqs), free(lens);
    return rc;
}

static int run_task(cli_session *s, mambac_tokenizer *tok, const task *t, metrics *out, FILE *samples) {
    unsigned char *hit = calloc((size_t)t->n, 1), *hit_norm = calloc((size_t)t->n, 1);
    mambac_loglik *lls = malloc((size_t)GROUP_MAX * 64 * sizeof *lls);
    double sum_ll = 0;
    int rc = hit && hit_norm && lls ? CLI_OK : cli_error("out of memory");
    const double t0 = cli_now();
    const int tty = isatty(2);
    int widest = 1; /* states an item needs at once */
    for (int i = 0; i < t->n; i++) {
        const int w = t->items[i].n_ctx * (t->items[i].n_cont + 1);
        widest = w > widest ? w : widest;
    }
    const size_t per_item = mambac_state_size_bytes(s->model) * (size_t)widest;
    const int group = per_item * GROUP_MAX <= STATE_BUDGET ? GROUP_MAX : per_item >= STATE_BUDGET ? 1 : (int)(STATE_BUDGET / per_item);
    for (int g0 = 0; rc == CLI_OK && g0 < t->n; g0 += group) {
        const int g1 = g0 + group < t->n ? g0 + group : t->n;
        if ((rc = score_group(s, tok, t, g0, g1, lls)) != CLI_OK) break;
        for (int i = g0; i < g1; i++) {
            const item *it = &t->items[i];
            const mambac_loglik *ll = lls + (size_t)(i - g0) * 64;
            const int n = t->kind == K_PARTIAL ? it->n_ctx : it->n_cont;
            double score[64];
            int best = 0, best_norm = 0;
            for (int k = 0; k < n; k++) score[k] = ll[k].logprob;
            for (int k = 1; k < n; k++) { /* the first of equal scores, as numpy's argmax */
                if (score[k] > score[best]) best = k;
                if (t->kind == K_CHOICE && score[k] / it->chars[k] > score[best_norm] / it->chars[best_norm]) best_norm = k;
            }
            if (t->kind == K_LOGLIK) {
                hit[i] = ll[0].greedy != 0;
                sum_ll += ll[0].logprob;
            } else {
                hit[i] = best == it->gold;
                hit_norm[i] = best_norm == it->gold;
            }
            if (samples) write_sample(samples, t, i, ll, n, hit[i], hit_norm[i]);
        }
        if (tty) {
            const double dt = cli_now() - t0, rate = g1 / (dt > 0 ? dt : 1e-9);
            fprintf(stderr, "\r%s: %d/%d items, %.1f items/s, %.0f s left   ", t->name, g1, t->n, rate, (t->n - g1) / rate);
        }
    }
    if (tty) fprintf(stderr, "\n");
    if (rc == CLI_OK) {
        memset(out, 0, sizeof *out);
        out->n = t->n;
        mean_se(hit, t->n, &out->acc, &out->acc_se);
        if (t->kind == K_CHOICE) mean_se(hit_norm, t->n, &out->acc_norm, &out->acc_norm_se);
        if (t->kind == K_LOGLIK) out->ppl = exp(-sum_ll / t->n);
    }
    free(hit), free(hit_norm), free(lls);
    return rc;
}

static void add_metric(cJSON *o, const char *name, double v, const char *se_kind, double se) {
    char k[96];
    snprintf(k, sizeof k, "%s,none", name);
    cJSON_AddNumberToObject(o, k, v);
    snprintf(k, sizeof k, "%s_stderr,none", name);
    if (se_kind) cJSON_AddStringToObject(o, k, se_kind); /* lm-eval's "N/A" (or a bootstrap it runs) */
    else cJSON_AddNumberToObject(o, k, se);
}

/* results.json in lm-eval's shape (results with "metric,filter" keys, n-shot, n-samples,
 * higher_is_better, config), written to a temporary name and renamed (no partial file) */
static int write_results(const char *path, const cli_session *s, const char *model, const task *tasks, const metrics *m,
                         int n, long long limit, double seconds) {
    cJSON *root = cJSON_CreateObject(), *res = cJSON_AddObjectToObject(root, "results");
    cJSON *shots = cJSON_AddObjectToObject(root, "n-shot"), *hib = cJSON_AddObjectToObject(root, "higher_is_better");
    cJSON *ns = cJSON_AddObjectToObject(root, "n-samples");
    for (int i = 0; i < n; i++) {
        const task *t = &tasks[i];
        cJSON *o = cJSON_AddObjectToObject(res, t->name), *h = cJSON_AddObjectToObject(hib, t->name);
        cJSON *c = cJSON_AddObjectToObject(ns, t->name);
        cJSON_AddStringToObject(o, "alias", t->name);
        cJSON_AddNumberToObject(shots, t->name, 0);
        if (t->kind == K_ROLLING) {
            const rolling_result *r = &m[i].roll;
            add_metric(o, "word_perplexity", exp(-r->ll / r->words), "N/A", 0);
            add_metric(o, "byte_perplexity", exp(-r->ll / r->bytes), "N/A", 0);
            add_metric(o, "bits_per_byte", -r->ll / r->bytes / log(2.0), "N/A", 0);
            add_metric(o, "token_perplexity", exp(-r->ll / r->tokens), "N/A", 0);
            cJSON_AddNumberToObject(o, "tokens", r->tokens);
            cJSON_AddFalseToObject(h, "word_perplexity"), cJSON_AddFalseToObject(h, "byte_perplexity");
            cJSON_AddFalseToObject(h, "bits_per_byte"), cJSON_AddFalseToObject(h, "token_perplexity");
            cJSON_AddNumberToObject(c, "original", r->docs), cJSON_AddNumberToObject(c, "effective", r->docs);
            continue;
        }
        if (t->kind == K_LOGLIK) add_metric(o, "perplexity", m[i].ppl, "N/A", 0), cJSON_AddFalseToObject(h, "perplexity");
        add_metric(o, "acc", m[i].acc, NULL, m[i].acc_se);
        cJSON_AddTrueToObject(h, "acc");
        if (t->kind == K_CHOICE && t->norm) add_metric(o, "acc_norm", m[i].acc_norm, NULL, m[i].acc_norm_se), cJSON_AddTrueToObject(h, "acc_norm");
        cJSON_AddNumberToObject(c, "original", t->n_file), cJSON_AddNumberToObject(c, "effective", t->n);
    }
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    cJSON_AddStringToObject(cfg, "model", "mambac");
    cJSON_AddStringToObject(cfg, "model_args", s->info->path);
    cJSON_AddStringToObject(cfg, "device", mambac_model_backend(s->model));
    cJSON_AddNumberToObject(cfg, "threads", mambac_context_threads(s->ctx));
    if (limit > 0) cJSON_AddNumberToObject(cfg, "limit", (double)limit);
    else cJSON_AddNullToObject(cfg, "limit");
    cJSON_AddStringToObject(root, "model_name", model ? model : s->info->path);
    cJSON_AddStringToObject(root, "mambac_version", mambac_version());
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", seconds);
    cJSON_AddStringToObject(root, "total_evaluation_time_seconds", secs);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return cli_error("out of memory");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        const int e = errno;
        unlink(tmp);
        return cli_error("%s: cannot write: %s", path, strerror(e));
    }
    return CLI_OK;
}

int cmd_eval(cli_args *a) {
    const char *model = NULL, *task_s = NULL, *data = NULL, *tok_path = NULL, *threads_s = NULL, *limit_s = NULL, *out_s = NULL,
               *samples_s = NULL, *ctx_s = NULL, *curve_s = NULL;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "--task", NULL, &task_s, &bad) ||
            cli_opt(a, "--data", NULL, &data, &bad) || cli_opt(a, "--tokenizer", NULL, &tok_path, &bad) ||
            cli_opt(a, "-t", "--threads", &threads_s, &bad) || cli_opt(a, "--limit", NULL, &limit_s, &bad) ||
            cli_opt(a, "-o", "--output", &out_s, &bad) || cli_opt(a, "--log-samples", "--samples", &samples_s, &bad) ||
            cli_opt(a, "--ctx", NULL, &ctx_s, &bad) || cli_opt(a, "--curve", NULL, &curve_s, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (!task_s) return cli_usage_error(a->cmd, "--task NAME[,NAME...] is required");
    long long limit = 0, ctx = 2048; /* lm-eval's max_length for its HF backend */
    if (ctx_s && !cli_parse_int(ctx_s, 0, 1LL << 40, &ctx)) return cli_usage_error(a->cmd, "--ctx must be >= 0");
    int32_t threads = 0;
    if (limit_s && !cli_parse_int(limit_s, 1, 1 << 30, &limit)) return cli_usage_error(a->cmd, "--limit must be >= 1");
    if (threads_s && !cli_parse_threads(threads_s, &threads)) return cli_usage_error(a->cmd, "-t must be >= 1");
    /* the tasks named, each read before the model is loaded (a typo costs nothing) */
    task tasks[32];
    metrics m[32];
    int n_tasks = 0, rc = CLI_OK;
    char *names = strdup(task_s);
    for (char *save = NULL, *name = names ? strtok_r(names, ",", &save) : NULL; rc == CLI_OK && name;
         name = strtok_r(NULL, ",", &save)) {
        if (n_tasks == 32) {
            rc = cli_usage_error(a->cmd, "at most 32 tasks at once");
            break;
        }
        int twice = 0;
        for (int k = 0; k < n_tasks; k++) twice |= strcmp(tasks[k].name, name) == 0;
        if (twice) { /* results are keyed by task */
            rc = cli_usage_error(a->cmd, "task '%s' named twice", name);
            break;
        }
        task *t = &tasks[n_tasks];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", name);
        const task_def *def = eval_task_find(name);
        char path[4096];
        if (strcmp(name, "perplexity") == 0) {
            if (!data) {
                rc = cli_usage_error(a->cmd, "task 'perplexity' scores the text file or folder of .txt files given as --data");
                break;
            }
            t->kind = K_ROLLING;
            n_tasks++;
            continue;
        }
        if (strncmp(name, "jsonl:", 6) == 0) {
            snprintf(path, sizeof path, "%s", name + 6);
        } else if (!def) {
            rc = cli_usage_error(a->cmd, "unknown task '%s' (built in: %s; or jsonl:FILE)", name, eval_task_names());
            break;
        } else if (!data) {
            rc = cli_usage_error(a->cmd, "task '%s' reads %s under --data DIR", name, def->file);
            break;
        } else {
            snprintf(path, sizeof path, "%s/%s", data, def->file);
        }
        n_tasks++;
        if (eval_task_load(path, def, limit, t) != CLI_OK) rc = CLI_ERR;
        else if (def && def->kind != t->kind) rc = cli_error("%s: its items are not of the task's kind", path);
    }
    free(names);
    cli_session s = {0};
    mambac_tokenizer *tok = NULL;
    if (rc == CLI_OK && cli_session_open(&s, model, 512, threads, NULL) != CLI_OK) rc = CLI_ERR;
    if (rc == CLI_OK && cli_load_tokenizer(tok_path, s.info, &tok) != CLI_OK) rc = CLI_ERR;
    char samples_tmp[4200];
    FILE *samples = NULL;
    if (rc == CLI_OK && samples_s) {
        snprintf(samples_tmp, sizeof samples_tmp, "%s.tmp.%ld", samples_s, (long)getpid());
        if (!(samples = fopen(samples_tmp, "wb"))) rc = cli_error("%s: cannot write: %s", samples_tmp, strerror(errno));
    }
    const double t_start = cli_now();
    for (int i = 0; rc == CLI_OK && i < n_tasks; i++)
        rc = tasks[i].kind == K_ROLLING ? eval_rolling(&s, tok, data, ctx, limit, curve_s, &m[i].roll)
                                        : run_task(&s, tok, &tasks[i], &m[i], samples);
    if (samples) { /* complete, or not at all */
        const int ok = fclose(samples) == 0 && rc == CLI_OK && rename(samples_tmp, samples_s) == 0;
        if (!ok) unlink(samples_tmp);
        if (!ok && rc == CLI_OK) rc = cli_error("%s: cannot write: %s", samples_s, strerror(errno));
    }
    if (rc == CLI_OK) {
        printf("| task | n | metric | value | stderr |\n|---|---|---|---|---|\n");
        for (int i = 0; i < n_tasks; i++) {
            if (tasks[i].kind == K_ROLLING) {
                const rolling_result *r = &m[i].roll;
                printf("| perplexity | %d | word_perplexity | %.4f | |\n", r->docs, exp(-r->ll / r->words));
                printf("| perplexity | %d | byte_perplexity | %.4f | |\n", r->docs, exp(-r->ll / r->bytes));
                printf("| perplexity | %d | bits_per_byte | %.4f | |\n", r->docs, -r->ll / r->bytes / log(2.0));
                printf("| perplexity | %d | token_perplexity | %.4f | |\n", r->docs, exp(-r->ll / r->tokens));
                continue;
            }
            printf("| %s | %d | acc | %.4f | %.4f |\n", tasks[i].name, m[i].n, m[i].acc, m[i].acc_se);
            if (tasks[i].kind == K_CHOICE && tasks[i].norm)
                printf("| %s | %d | acc_norm | %.4f | %.4f |\n", tasks[i].name, m[i].n, m[i].acc_norm, m[i].acc_norm_se);
            if (tasks[i].kind == K_LOGLIK) printf("| %s | %d | perplexity | %.4f | |\n", tasks[i].name, m[i].n, m[i].ppl);
        }
        if (out_s) rc = write_results(out_s, &s, model, tasks, m, n_tasks, limit, cli_now() - t_start);
    }
    for (int i = 0; i < n_tasks; i++) eval_task_free(&tasks[i]);
    mambac_tokenizer_free(tok);
    cli_session_close(&s);
    return rc;
}
