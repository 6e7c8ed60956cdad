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
 * the documented format is a task too (--task jsonl:PATH; docs/EVAL.md). */
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

typedef enum { K_CHOICE, K_PARTIAL, K_LOGLIK, K_ROLLING } task_kind;

typedef struct task_def {
    const char *name, *file;
    task_kind kind;
    const char *suffix; /* appended to a choice task's query (lm-eval's doc_to_text) */
} task_def;

/* lm-eval's prompts for these (its task YAMLs, v0.4); the data are ../shared/data/eval's
 * files, whose layout --data follows. */
static const task_def TASKS[] = {
    {"lambada_openai", "lambada/lambada_test.jsonl", K_LOGLIK, NULL},
    {"piqa", "piqa/valid.jsonl", K_CHOICE, NULL},
    {"arc_easy", "mosaic_icl/arc_easy.jsonl", K_CHOICE, "\nAnswer:"},
    {"arc_challenge", "mosaic_icl/arc_challenge.jsonl", K_CHOICE, "\nAnswer:"},
    {"openbookqa", "mosaic_icl/openbook_qa.jsonl", K_CHOICE, ""},
    {"winogrande", "mosaic_icl/winogrande.jsonl", K_PARTIAL, NULL},
    {"wsc273", "mosaic_icl/winograd_wsc.jsonl", K_PARTIAL, NULL},
};
#define N_TASKS (sizeof TASKS / sizeof TASKS[0])

/* One item: n_ctx contexts and n_cont continuations (choice: 1 x n; partial: n x 1;
 * loglik: 1 x 1), the gold index, and each choice's length in characters. */
typedef struct item {
    char **ctx, **cont;
    int n_ctx, n_cont, gold;
    double *chars;
} item;

typedef struct task {
    char name[256];
    task_kind kind;
    item *items;
    int n;
} task;

static void free_task(task *t) {
    for (int i = 0; i < t->n; i++) {
        item *it = &t->items[i];
        for (int k = 0; k < it->n_ctx; k++) free(it->ctx[k]);
        for (int k = 0; k < it->n_cont; k++) free(it->cont[k]);
        free(it->ctx), free(it->cont), free(it->chars);
    }
    free(t->items);
}

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) memcpy(s, a, na), memcpy(s + na, b, nb + 1);
    return s;
}

static double utf8_chars(const char *s) {
    double n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static const char *str_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The item of one JSON line, by the fields it has; piqa's gold comes from its label file. */
static int parse_item(const cJSON *o, const task_def *def, int piqa_label, item *it, task_kind *kind, const char **why) {
    memset(it, 0, sizeof *it);
    const cJSON *gold = cJSON_GetObjectItemCaseSensitive(o, "gold");
    if (cJSON_IsNumber(gold) && !(gold->valuedouble >= 0 && gold->valuedouble < 64)) /* before any int conversion */
        return *why = "'gold' is not the index of a choice", 0;
    const char *q = str_field(o, "query"), *goal = str_field(o, "goal"), *text = str_field(o, "text");
    const char *cont = str_field(o, "continuation"), *context = str_field(o, "context");
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    const cJSON *ctxs = cJSON_GetObjectItemCaseSensitive(o, "context_options");
    const char *sol[2] = {str_field(o, "sol1"), str_field(o, "sol2")};
    int ok = 1;
    if (goal && sol[0] && sol[1]) { /* PIQA: "Question: {goal}\nAnswer:" */
        *kind = K_CHOICE;
        it->n_ctx = 1, it->n_cont = 2, it->gold = piqa_label;
        it->ctx = calloc(1, sizeof *it->ctx), it->cont = calloc(2, sizeof *it->cont), it->chars = calloc(2, sizeof *it->chars);
        if (!it->ctx || !it->cont || !it->chars) return *why = "out of memory", 0;
        char *a = join("Question: ", goal);
        it->ctx[0] = a ? join(a, "\nAnswer:") : NULL;
        free(a);
        for (int k = 0; k < 2; k++) it->cont[k] = join(" ", sol[k]), it->chars[k] = utf8_chars(sol[k]), ok &= it->cont[k] != NULL;
        ok &= it->ctx[0] != NULL;
    } else if (q && cJSON_IsArray(choices) && cJSON_IsNumber(gold)) {
        *kind = K_CHOICE;
        const int n = cJSON_GetArraySize(choices);
        if (n < 1 || n > 64) return *why = "'choices' must hold 1 to 64 strings", 0;
        it->n_ctx = 1, it->n_cont = n, it->gold = (int)gold->valuedouble;
        const char *delim = str_field(o, "delimiter") ? str_field(o, "delimiter") : " ";
        it->ctx = calloc(1, sizeof *it->ctx), it->cont = calloc((size_t)n, sizeof *it->cont);
        it->chars = calloc((size_t)n, sizeof *it->chars);
        if (!it->ctx || !it->cont || !it->chars) return *why = "out of memory", 0;
        it->ctx[0] = join(q, def && def->suffix ? def->suffix : "");
        ok &= it->ctx[0] != NULL;
        for (int k = 0; k < n; k++) {
            const cJSON *c = cJSON_GetArrayItem(choices, k);
            if (!cJSON_IsString(c)) return *why = "'choices' must hold strings", 0;
            it->cont[k] = join(delim, c->valuestring), it->chars[k] = utf8_chars(c->valuestring);
            ok &= it->cont[k] != NULL;
        }
    } else if (cJSON_IsArray(ctxs) && cont && cJSON_IsNumber(gold)) { /* partial scoring */
        *kind = K_PARTIAL;
        const int n = cJSON_GetArraySize(ctxs);
        if (n < 1 || n > 64) return *why = "'context_options' must hold 1 to 64 strings", 0;
        it->n_ctx = n, it->n_cont = 1, it->gold = (int)gold->valuedouble;
        it->ctx = calloc((size_t)n, sizeof *it->ctx), it->cont = calloc(1, sizeof *it->cont);
        if (!it->ctx || !it->cont) return *why = "out of memory", 0;
        for (int k = 0; k < n; k++) {
            const cJSON *c = cJSON_GetArrayItem(ctxs, k);
            if (!cJSON_IsString(c)) return *why = "'context_options' must hold strings", 0;
            ok &= (it->ctx[k] = strdup(c->valuestring)) != NULL;
        }
        ok &= (it->cont[0] = join(" ", cont)) != NULL;
    } else if (text || (context && cont)) { /* LAMBADA: the last word after the rest */
        *kind = K_LOGLIK;
        it->n_ctx = it->n_cont = 1;
        it->ctx = calloc(1, sizeof *it->ctx), it->cont = calloc(1, sizeof *it->cont);
        if (!it->ctx || !it->cont) return *why = "out of memory", 0;
        if (text) {
            const char *sp = strrchr(text, ' ');
            const size_t cut = sp ? (size_t)(sp - text) : 0;
            it->ctx[0] = strndup(text, cut);
            it->cont[0] = sp ? strdup(sp) : join(" ", text);
        } else {
            it->ctx[0] = strdup(context), it->cont[0] = strdup(cont);
        }
        ok &= it->ctx[0] && it->cont[0];
    } else {
        return *why = "neither a choice item (query, choices, gold), a partial one (context_options, continuation, gold), "
                      "nor a loglikelihood one (text, or context and continuation)",
               0;
    }
    if (!ok) return *why = "out of memory", 0;
    if (*kind != K_LOGLIK && (it->gold < 0 || it->gold >= (it->n_ctx > it->n_cont ? it->n_ctx : it->n_cont)))
        return *why = "'gold' is not the index of a choice", 0;
    return 1;
}

/* Reads a task's items (at most limit; 0: all). Every line must parse and agree on the kind. */
static int load_task(const char *path, const task_def *def, long long limit, task *t) {
    char *text = NULL, *labels = NULL;
    size_t len, llen = 0;
    if (cli_read_input(path, &text, &len) != CLI_OK) return CLI_ERR;
    if (def && strcmp(def->name, "piqa") == 0) {
        char lp[4096];
        const char *slash = strrchr(path, '/');
        snprintf(lp, sizeof lp, "%.*s/valid-labels.lst", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (cli_read_input(lp, &labels, &llen) != CLI_OK) return free(text), CLI_ERR;
    }
    int rc = CLI_OK, cap = 0, line_no = 0;
    char *lab = labels;
    for (char *line = text; rc == CLI_OK && line && *line && (limit <= 0 || t->n < limit); line_no++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        const char *why = NULL;
        cJSON *o = *line ? cJSON_Parse(line) : NULL;
        if (*line && !cJSON_IsObject(o)) why = "not a JSON object";
        int label = 0;
        if (!why && *line && labels) {
            if (!lab || !*lab || (*lab != '0' && *lab != '1')) why = "no label in valid-labels.lst";
            else label = *lab - '0', lab = strchr(lab, '\n'), lab = lab ? lab + 1 : NULL;
        }
        if (!why && *line) {
            if (t->n == cap) {
                item *ni = realloc(t->items, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *ni);
                if (!ni) why = "out of memory";
                else t->items = ni;
            }
            task_kind k = K_CHOICE;
            if (!why) {
                const int ok = parse_item(o, def, label, &t->items[t->n], &k, &why);
                t->n++; /* freed with the task, built or half-built */
                if (ok && t->n > 1 && k != t->kind) why = "items of different kinds in one task";
                else if (ok) t->kind = k;
                else if (!why) why = "bad item";
            }
        }
        cJSON_Delete(o);
        if (why) rc = cli_error("%s: line %d: %s", path, line_no + 1, why);
        line = nl ? nl + 1 : NULL;
    }
    if (rc == CLI_OK && t->n == 0) rc = cli_error("%s: no items", path);
    free(text), free(labels);
    return rc;
}

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

/* One item's scores as a JSON line (--samples). */
static void write_sample(FILE *f, const task *t, int i, const double *score, int n, int greedy, int hit, int hit_norm) {
    fprintf(f, "{\"task\": \"%s\", \"item\": %d, \"logprobs\": [", t->name, i);
    for (int k = 0; k < n; k++) fprintf(f, "%s%.17g", k ? ", " : "", score[k]);
    if (t->kind == K_LOGLIK) fprintf(f, "], \"greedy\": %d}\n", greedy);
    else if (t->kind == K_CHOICE) fprintf(f, "], \"gold\": %d, \"acc\": %d, \"acc_norm\": %d}\n", t->items[i].gold, hit, hit_norm);
    else fprintf(f, "], \"gold\": %d, \"acc\": %d}\n", t->items[i].gold, hit);
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
            if (samples) write_sample(samples, t, i, score, n, hit[i], hit[i], hit_norm[i]);
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

/* results.json, written to a temporary name and renamed (no partial file under the name) */
static int write_results(const char *path, const char *model, const task *tasks, const metrics *m, int n) {
    cJSON *root = cJSON_CreateObject(), *res = cJSON_AddObjectToObject(root, "results");
    cJSON_AddStringToObject(root, "model", model ? model : "(default)");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_AddObjectToObject(res, tasks[i].name);
        if (tasks[i].kind == K_ROLLING) {
            const rolling_result *r = &m[i].roll;
            cJSON_AddNumberToObject(o, "word_perplexity", exp(-r->ll / r->words));
            cJSON_AddNumberToObject(o, "byte_perplexity", exp(-r->ll / r->bytes));
            cJSON_AddNumberToObject(o, "bits_per_byte", -r->ll / r->bytes / log(2.0));
            cJSON_AddNumberToObject(o, "token_perplexity", exp(-r->ll / r->tokens));
            cJSON_AddNumberToObject(o, "tokens", r->tokens);
            cJSON_AddNumberToObject(o, "n", r->docs);
            continue;
        }
        cJSON_AddNumberToObject(o, "acc", m[i].acc);
        cJSON_AddNumberToObject(o, "acc_stderr", m[i].acc_se);
        if (tasks[i].kind == K_CHOICE) {
            cJSON_AddNumberToObject(o, "acc_norm", m[i].acc_norm);
            cJSON_AddNumberToObject(o, "acc_norm_stderr", m[i].acc_norm_se);
        }
        if (tasks[i].kind == K_LOGLIK) cJSON_AddNumberToObject(o, "perplexity", m[i].ppl);
        cJSON_AddNumberToObject(o, "n", m[i].n);
    }
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
            cli_opt(a, "-o", "--output", &out_s, &bad) || cli_opt(a, "--samples", NULL, &samples_s, &bad) ||
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
        const task_def *def = NULL;
        for (size_t k = 0; k < N_TASKS; k++)
            if (strcmp(TASKS[k].name, name) == 0) def = &TASKS[k];
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
            rc = cli_usage_error(a->cmd, "unknown task '%s' (built in: lambada_openai, piqa, arc_easy, arc_challenge, "
                                         "openbookqa, winogrande, wsc273; or jsonl:FILE)", name);
            break;
        } else if (!data) {
            rc = cli_usage_error(a->cmd, "task '%s' reads %s under --data DIR", name, def->file);
            break;
        } else {
            snprintf(path, sizeof path, "%s/%s", data, def->file);
        }
        n_tasks++;
        if (load_task(path, def, limit, t) != CLI_OK) rc = CLI_ERR;
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
            if (tasks[i].kind == K_CHOICE)
                printf("| %s | %d | acc_norm | %.4f | %.4f |\n", tasks[i].name, m[i].n, m[i].acc_norm, m[i].acc_norm_se);
            if (tasks[i].kind == K_LOGLIK) printf("| %s | %d | perplexity | %.4f | |\n", tasks[i].name, m[i].n, m[i].ppl);
        }
        if (out_s) rc = write_results(out_s, model, tasks, m, n_tasks);
    }
    for (int i = 0; i < n_tasks; i++) free_task(&tasks[i]);
    mambac_tokenizer_free(tok);
    cli_session_close(&s);
    return rc;
}
