/* cmd_mqar.c — `mambac mqar`: train a new model on multi-query associative recall
 * (train/mqar.h) from fresh examples every step, then score it on held-out examples
 * (accuracy: the share of asked positions whose greedy prediction is the value); or
 * score an existing model (--eval). On the CPU, or with -d cuda the training steps on
 * the GPU (and the scoring on the CUDA backend). The model folder is a normal one
 * (config.json + model.safetensors) with mqar.json beside it. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/error.h"
#include "io/file.h"
#include "train/mqar.h"
#include "train/train.h"
#include "train/train_gpu.h"
#include "train/trainer.h"

#define EVAL_SEED_OFFSET 0x5eed0000000ull /* held-out examples: another stream than training's */

/* Accuracy of a model on n examples of the task (stream seed). */
static int score(const char *model_path, const mc_mqar *m, uint64_t seed, int64_t n, int32_t threads, double *acc) {
    cli_session s;
    if (cli_session_open(&s, model_path, mambac_context_default_params().max_ubatch, threads, NULL) != CLI_OK) return CLI_ERR;
    const int64_t L = m->seq, V = s.info->n_vocab_rows;
    int32_t *ids = malloc((size_t)L * 2 * sizeof(int32_t)), *tg = ids ? ids + L : NULL;
    float *lg = malloc((size_t)(L * V) * sizeof(float));
    int rc = CLI_OK;
    int64_t hit = 0, asked = 0;
    if (!ids || !lg) rc = cli_error("out of memory");
    if (rc == CLI_OK && V < m->vocab) rc = cli_error("the model's vocabulary (%lld) is smaller than the task's (%d)", (long long)V, m->vocab);
    for (int64_t i = 0; rc == CLI_OK && i < n; i++) {
        mc_mqar_example(m, seed, i, ids, tg);
        mambac_error err;
        mambac_state_reset(s.state);
        if (mambac_eval(s.ctx, s.state, ids, (size_t)L, MAMBAC_LOGITS_ALL, lg, &err) != MAMBAC_OK) {
            rc = cli_error("%s", err.msg);
            break;
        }
        for (int64_t r = 0; r < L; r++) {
            if (tg[r] < 0) continue;
            asked++;
            hit += mambac_argmax(lg + r * V, (int32_t)V) == tg[r];
        }
    }
    *acc = asked ? (double)hit / (double)asked : 0.0;
    free(ids);
    free(lg);
    cli_session_close(&s);
    return rc;
}

static cJSON *task_json(const mc_mqar *m, int64_t examples, uint64_t seed) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "task", "mqar");
    cJSON_AddNumberToObject(t, "vocab_size", m->vocab);
    cJSON_AddNumberToObject(t, "seq_len", m->seq);
    cJSON_AddNumberToObject(t, "num_kv_pairs", m->kv);
    cJSON_AddNumberToObject(t, "power_a", m->power_a);
    cJSON_AddNumberToObject(t, "eval_examples", (double)examples);
    cJSON_AddNumberToObject(t, "seed", (double)seed);
    return t;
}

typedef struct run {
    mc_mqar task;
    mambac_init_params init;
    int64_t steps, batch, warmup, eval_examples;
    float lr, min_lr, wd, clip;
    uint64_t seed;
    int32_t threads;
    const char *out, *precision;
} run;

/* A failed run's folder goes away (the files a new run writes, then the folder). */
static void remove_run(const char *dir) {
    static const char *const files[] = {"config.json", "model.safetensors", "mqar.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = mc_path_join(dir, files[i]);
        if (p) unlink(p);
        free(p);
    }
    rmdir(dir);
}

/* The training loop: fresh examples every step, AdamW, the trainer's schedule. */
static int train(const run *r, double *last_loss, double *seconds) {
    mambac_error err;
    const int64_t B = r->batch, L = r->task.seq;
    if (mambac_model_write_init(&r->init, r->out, &err) != MAMBAC_OK) return cli_error("%s", err.msg);
    mambac_model *m = NULL;
    mc_params P = {0};
    if (mambac_model_load(r->out, &m, &err) != MAMBAC_OK || mc_params_from_model(m, &P, &err) != MAMBAC_OK) {
        mambac_model_free(m);
        return cli_error("%s", err.msg);
    }
    mambac_model_free(m);
    const int gpu = cli_device && strcmp(cli_device, "cpu") != 0;
    mc_tctx c = {0};
    mc_tape *tape = NULL;
    mc_gtrain *g = NULL;
    mc_adamw opt = {0};
    mambac_status st = MAMBAC_OK;
    if (gpu) {
        st = mc_gtrain_new(&P, cli_device, r->precision, B, L, &g, &err);
    } else {
        int64_t max_k, tcap;
        mc_train_sizes(&P, B, L, &max_k, &tcap);
        st = mc_tctx_init(&c, r->threads, NULL, max_k, tcap, &err);
        if (st == MAMBAC_OK) st = mc_tape_new(&P, B, L, c.pool ? mc_pool_threads(c.pool) : 1, &tape, &err);
    }
    if (st == MAMBAC_OK) st = mc_adamw_init(&opt, &P, &err);
    opt.weight_decay = r->wd;
    int32_t *ids = malloc((size_t)(2 * B * L) * sizeof(int32_t)), *tg = ids ? ids + B * L : NULL;
    if (st == MAMBAC_OK && !ids) st = mc_fail(&err, MAMBAC_ERR_NOMEM, "out of memory");
    const double t0 = cli_now();
    double loss = NAN;
    for (int64_t step = 0; st == MAMBAC_OK && step < r->steps; step++) {
        for (int64_t b = 0; b < B; b++) mc_mqar_example(&r->task, r->seed, step * B + b, ids + b * L, tg + b * L);
        const float lr = mc_lr_schedule(step, r->warmup, r->steps, r->lr, r->min_lr);
        double gn;
        if (g) {
            st = mc_gtrain_zero_grad(g, &err);
            if (st == MAMBAC_OK) st = mc_gtrain_step_targets(g, ids, tg, B, 1, 1.0f, &loss, &err);
            if (st == MAMBAC_OK) st = mc_gtrain_update(g, &opt, r->clip, lr, &gn, &err);
        } else {
            memset(P.g, 0, (size_t)P.total * sizeof(float));
            loss = mc_train_step_targets(&c, &P, tape, ids, tg, 1, 1.0f);
            gn = mc_clip_grad(&P, r->clip);
            mc_adamw_update(&opt, &P, lr);
        }
        if (st == MAMBAC_OK && !isfinite(loss)) st = mc_fail(&err, MAMBAC_ERR_INVALID_ARG, "the loss became %g at step %lld", loss, (long long)step);
        if (st == MAMBAC_OK && ((step + 1) % 100 == 0 || step + 1 == r->steps))
            fprintf(stderr, "step %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s\n", (long long)(step + 1), (long long)r->steps, loss,
                    lr, (double)((step + 1) * B * L) / (cli_now() - t0 + 1e-9));
    }
    *seconds = cli_now() - t0;
    *last_loss = loss;
    if (st == MAMBAC_OK && g) st = mc_gtrain_download(g, &P, NULL, &err);
    char *wp = mc_path_join(r->out, "model.safetensors");
    if (st == MAMBAC_OK && !wp) st = mc_fail(&err, MAMBAC_ERR_NOMEM, "out of memory");
    if (st == MAMBAC_OK) st = mc_params_write(&P, wp, 0, NULL, NULL, &err);
    free(wp);
    free(ids);
    mc_adamw_free(&opt);
    mc_gtrain_free(g);
    mc_tape_free(tape);
    mc_tctx_free(&c);
    mc_params_free(&P);
    return st == MAMBAC_OK ? CLI_OK : cli_error("%s", err.msg);
}

int cmd_mqar(cli_args *a) {
    run r = {.task = {.vocab = 8192, .seq = 256, .kv = 16, .power_a = 0.01}, .steps = 2000, .batch = 64, .warmup = 100,
             .eval_examples = 1000, .lr = 1e-3f, .min_lr = 1e-4f, .wd = 0.1f, .clip = 1.0f, .seed = 1};
    const char *arch = "mamba2", *model = NULL, *threads = NULL, *jout = NULL;
    const char *v_vocab = NULL, *v_seq = NULL, *v_kv = NULL, *v_steps = NULL, *v_batch = NULL, *v_warm = NULL, *v_ev = NULL;
    const char *v_lr = NULL, *v_wd = NULL, *v_seed = NULL, *v_dm = NULL, *v_nl = NULL, *v_ds = NULL, *v_hd = NULL, *v_ch = NULL;
    int eval_only = 0;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_flag(a, "--eval")) {
            eval_only = 1;
            continue;
        }
        if (cli_opt(a, "-o", "--output", &r.out, &bad) || cli_opt(a, "-m", "--model", &model, &bad) ||
            cli_opt(a, "--arch", NULL, &arch, &bad) || cli_opt(a, "--vocab", NULL, &v_vocab, &bad) ||
            cli_opt(a, "--seq", NULL, &v_seq, &bad) || cli_opt(a, "--kv", NULL, &v_kv, &bad) ||
            cli_opt(a, "--steps", NULL, &v_steps, &bad) || cli_opt(a, "--batch", NULL, &v_batch, &bad) ||
            cli_opt(a, "--warmup", NULL, &v_warm, &bad) || cli_opt(a, "--eval-examples", NULL, &v_ev, &bad) ||
            cli_opt(a, "--lr", NULL, &v_lr, &bad) || cli_opt(a, "--wd", NULL, &v_wd, &bad) ||
            cli_opt(a, "--seed", NULL, &v_seed, &bad) || cli_opt(a, "--d-model", NULL, &v_dm, &bad) ||
            cli_opt(a, "--layers", NULL, &v_nl, &bad) || cli_opt(a, "--d-state", NULL, &v_ds, &bad) ||
            cli_opt(a, "--headdim", NULL, &v_hd, &bad) || cli_opt(a, "--chunk", NULL, &v_ch, &bad) ||
            cli_opt(a, "-t", "--threads", &threads, &bad) || cli_opt(a, "--precision", NULL, &r.precision, &bad) ||
            cli_opt(a, "--json", NULL, &jout, &bad)) {
            if (bad) return CLI_USAGE;
            continue;
        }
        return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
    }
    if (strcmp(arch, "mamba") != 0 && strcmp(arch, "mamba2") != 0) return cli_usage_error(a->cmd, "--arch must be mamba or mamba2");
    r.init = mambac_init_default_params(strcmp(arch, "mamba") == 0 ? MAMBAC_ARCH_MAMBA1 : MAMBAC_ARCH_MAMBA2);
    r.init.d_model = 64, r.init.n_layer = 2;
    if (r.init.arch == MAMBAC_ARCH_MAMBA2) r.init.head_dim = 16, r.init.d_state = 64, r.init.chunk_size = 64;
    else r.init.d_state = 16;
    struct { const char *v, *name; long long lo, hi; int64_t *i64; int32_t *i32; } ints[] = {
        {v_vocab, "--vocab", 8, 1 << 24, NULL, &r.task.vocab}, {v_seq, "--seq", 4, 1 << 20, NULL, &r.task.seq},
        {v_kv, "--kv", 1, 1 << 18, NULL, &r.task.kv},           {v_steps, "--steps", 1, INT32_MAX, &r.steps, NULL},
        {v_batch, "--batch", 1, 1 << 16, &r.batch, NULL},       {v_warm, "--warmup", 0, INT32_MAX, &r.warmup, NULL},
        {v_ev, "--eval-examples", 1, INT32_MAX, &r.eval_examples, NULL}, {v_dm, "--d-model", 8, 65536, NULL, &r.init.d_model},
        {v_nl, "--layers", 1, 4096, NULL, &r.init.n_layer},     {v_ds, "--d-state", 1, 4096, NULL, &r.init.d_state},
        {v_hd, "--headdim", 1, 4096, NULL, &r.init.head_dim},   {v_ch, "--chunk", 1, 1 << 20, NULL, &r.init.chunk_size},
    };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        long long v;
        if (!ints[k].v) continue;
        if (!cli_parse_int(ints[k].v, ints[k].lo, ints[k].hi, &v))
            return cli_usage_error(a->cmd, "%s needs an integer in [%lld, %lld]", ints[k].name, ints[k].lo, ints[k].hi);
        if (ints[k].i64) *ints[k].i64 = v;
        else *ints[k].i32 = (int32_t)v;
    }
    double d;
    if (v_lr && (!cli_parse_float(v_lr, &d) || !(d > 0))) return cli_usage_error(a->cmd, "--lr must be > 0");
    if (v_lr) r.lr = (float)d, r.min_lr = (float)d / 10;
    if (v_wd && (!cli_parse_float(v_wd, &d) || !(d >= 0))) return cli_usage_error(a->cmd, "--wd must be >= 0");
    if (v_wd) r.wd = (float)d;
    if (v_seed) {
        long long s;
        if (!cli_parse_int(v_seed, 0, INT64_MAX, &s)) return cli_usage_error(a->cmd, "--seed must be >= 0");
        r.seed = (uint64_t)s;
    }
    r.init.seed = r.seed;
    if (threads && !cli_parse_threads(threads, &r.threads)) return cli_usage_error(a->cmd, "-t must be >= 1");
    if (eval_only ? (!model || r.out) : (!r.out || model))
        return cli_usage_error(a->cmd, eval_only ? "--eval scores -m MODEL (no -o)" : "-o DIR (a new folder) is required; --eval -m MODEL scores one");
    mambac_error err;
    if (mc_mqar_check(&r.task, &err) != MAMBAC_OK) return cli_usage_error(a->cmd, "%s", err.msg);
    r.init.vocab_size = r.task.vocab;
    double loss = NAN, secs = 0, acc = 0;
    if (!eval_only) {
        struct stat sb;
        if (stat(r.out, &sb) == 0) return cli_error("%s already exists: choose a new folder", r.out);
        if (cli_device && strcmp(cli_device, "cpu") != 0 && mc_gtrain_probe(cli_device, &err) != MAMBAC_OK) return cli_error("%s", err.msg);
        const int rc = train(&r, &loss, &secs);
        if (rc != CLI_OK) {
            remove_run(r.out);
            return rc;
        }
    }
    const char *path = eval_only ? model : r.out;
    int rc = score(path, &r.task, r.seed + EVAL_SEED_OFFSET, r.eval_examples, r.threads, &acc);
    if (rc != CLI_OK) return rc;
    printf("mqar: vocab %d, seq %d, kv %d: accuracy %.4f on %lld held-out examples", r.task.vocab, r.task.seq, r.task.kv, acc,
           (long long)r.eval_examples);
    if (!eval_only) printf(" (%lld steps of %lld, final loss %.4f, %.1f s)", (long long)r.steps, (long long)r.batch, loss, secs);
    printf("\n");
    cJSON *j = task_json(&r.task, r.eval_examples, r.seed);
    cJSON_AddNumberToObject(j, "accuracy", acc);
    if (!eval_only) {
        cJSON_AddStringToObject(j, "arch", arch);
        cJSON_AddNumberToObject(j, "d_model", r.init.d_model);
        cJSON_AddNumberToObject(j, "n_layer", r.init.n_layer);
        cJSON_AddNumberToObject(j, "d_state", r.init.d_state);
        cJSON_AddNumberToObject(j, "steps", (double)r.steps);
        cJSON_AddNumberToObject(j, "batch", (double)r.batch);
        cJSON_AddNumberToObject(j, "lr", r.lr);
        cJSON_AddNumberToObject(j, "final_loss", loss);
        cJSON_AddNumberToObject(j, "train_seconds", secs);
        cJSON_AddStringToObject(j, "device", cli_device ? cli_device : "cpu");
    }
    if (eval_only && !jout) { /* the folder's mqar.json stays the training's record */
        cJSON_Delete(j);
        return CLI_OK;
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char *jp = jout ? NULL : mc_path_join(r.out ? r.out : model, "mqar.json");
    const char *dest = jout ? jout : jp;
    mc_atomic_file af;
    if (!text || !dest) rc = cli_error("out of memory");
    else if (mc_atomic_open(&af, dest, &err) != MAMBAC_OK) rc = cli_error("%s", err.msg);
    else if (mc_atomic_write(&af, text, strlen(text), &err) != MAMBAC_OK || mc_atomic_commit(&af, &err) != MAMBAC_OK) {
        mc_atomic_abort(&af);
        rc = cli_error("%s", err.msg);
    }
    free(text);
    free(jp);
    return rc;
}
