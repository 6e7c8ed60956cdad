/* trainer.c — the training loop (see trainer.h). One step: zero the gradients, run
 * `accum` micro-batches of B random windows (each loss scaled by 1 / accum), clip the
 * global gradient norm, one AdamW update at the scheduled learning rate. Everything
 * that decides the next step — parameters, moments, step count, generator state — is
 * in the checkpoint, so a resumed run repeats the uninterrupted one exactly. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "io/file.h"
#include "train/checkpoint.h"
#include "train/train.h"
#include "train/trainer.h"
#include "train/train_gpu.h"

mc_train_config mc_train_default_config(void) {
    mc_train_config c;
    memset(&c, 0, sizeof c);
    c.init = mambac_init_default_params(MAMBAC_ARCH_MAMBA1);
    c.batch = 16, c.seq = 256, c.steps = 2000, c.warmup = 100, c.accum = 1, c.eval_every = 100, c.eval_windows = 0;
    c.lr = 3e-3f, c.min_lr = 3e-4f, c.weight_decay = 0.1f, c.clip = 1.0f, c.beta1 = 0.9f, c.beta2 = 0.95f;
    c.val_frac = 0.1, c.seed = 1337;
    return c;
}

void mc_train_small_init(mambac_init_params *init) {
    init->d_model = 128, init->n_layer = 4;
    if (init->arch == MAMBAC_ARCH_MAMBA2) init->d_state = 32, init->head_dim = 32, init->chunk_size = 64;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The hyperparameters that must stay fixed across a resume, as JSON. */
static cJSON *config_json(const mc_train_config *c, const mc_data *d) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "batch", (double)c->batch);
    cJSON_AddNumberToObject(j, "seq", (double)c->seq);
    cJSON_AddNumberToObject(j, "steps", (double)c->steps);
    cJSON_AddNumberToObject(j, "warmup", (double)c->warmup);
    cJSON_AddNumberToObject(j, "accum", (double)c->accum);
    cJSON_AddNumberToObject(j, "eval_every", (double)c->eval_every);
    cJSON_AddNumberToObject(j, "eval_windows", (double)c->eval_windows);
    cJSON_AddNumberToObject(j, "save_every", (double)c->save_every);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "min_lr", c->min_lr);
    cJSON_AddNumberToObject(j, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(j, "clip", c->clip);
    cJSON_AddNumberToObject(j, "beta1", c->beta1);
    cJSON_AddNumberToObject(j, "beta2", c->beta2);
    cJSON_AddNumberToObject(j, "val_frac", c->val_frac);
    char hex[24];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)c->seed);
    cJSON_AddStringToObject(j, "seed", hex);
    cJSON_AddStringToObject(j, "data", c->data);
    if (c->tokenizer) cJSON_AddStringToObject(j, "tokenizer", c->tokenizer);
    /* where the run trained, for `train --resume` without --device (not fixed: a run may move) */
    cJSON_AddStringToObject(j, "device", c->device ? c->device : "cpu");
    cJSON_AddStringToObject(j, "precision", c->precision ? c->precision : "f32");
    cJSON_AddNumberToObject(j, "data_tokens", (double)d->n);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)mc_data_fnv(d));
    cJSON_AddStringToObject(j, "data_fnv", hex);
    return j;
}

static double num(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* An integer field: def when absent; -1 when not an integer in [0, 2^53] (every field is
 * a count, and -1 is refused by check_config or the caller), so that no out-of-range
 * double is converted. */
static int64_t count(const cJSON *o, const char *k, int64_t def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) return def;
    const double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    return d >= 0 && d <= 9007199254740992.0 && d == (double)(int64_t)d ? (int64_t)d : -1;
}

static uint64_t hex_u64(const cJSON *o, const char *k) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return s ? strtoull(s, NULL, 16) : 0;
}

/* The run's settings from a checkpoint's saved config (steps, threads, time limit and
 * the callback stay as given). */
static void config_from_json(mc_train_config *c, const cJSON *j) {
    c->batch = count(j, "batch", c->batch);
    c->seq = count(j, "seq", c->seq);
    c->warmup = count(j, "warmup", c->warmup);
    c->accum = count(j, "accum", c->accum);
    c->eval_every = count(j, "eval_every", c->eval_every);
    c->eval_windows = count(j, "eval_windows", c->eval_windows);
    c->save_every = count(j, "save_every", c->save_every);
    c->lr = (float)num(j, "lr", c->lr);
    c->min_lr = (float)num(j, "min_lr", c->min_lr);
    c->weight_decay = (float)num(j, "weight_decay", c->weight_decay);
    c->clip = (float)num(j, "clip", c->clip);
    c->beta1 = (float)num(j, "beta1", c->beta1);
    c->beta2 = (float)num(j, "beta2", c->beta2);
    c->val_frac = num(j, "val_frac", c->val_frac);
    c->seed = hex_u64(j, "seed");
    /* copies: the saved config is replaced in the state before the run ends */
    const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "data"));
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "tokenizer"));
    c->data = d ? strdup(d) : NULL;
    c->tokenizer = t ? strdup(t) : NULL;
}

mambac_status mc_train_check_config(const mc_train_config *c, mambac_error *err) {
    if (c->batch < 1 || c->seq < 2 || c->steps < 1 || c->accum < 1 || c->eval_every < 1 || c->warmup < 0 ||
        c->eval_windows < 0 || c->save_every < 0)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG,
                       "batch, steps, accum and eval interval must be >= 1, sequence length >= 2, warmup >= 0");
    if (!(c->lr > 0) || !(c->min_lr >= 0) || c->min_lr > c->lr || !(c->weight_decay >= 0) || !(c->clip >= 0) ||
        !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "learning rates, weight decay, clip or betas out of range");
    if (!(c->val_frac > 0 && c->val_frac < 1)) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "validation fraction must be in (0, 1)");
    if (c->batch > (1 << 24) / c->seq) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "batch * sequence length too large");
    if (c->steps > (INT64_C(1) << 40)) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "steps out of range");
    const int gpu = c->device && strcmp(c->device, "cpu") != 0;
    if (c->device && gpu && strncmp(c->device, "cuda", 4) != 0)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "unknown training device '%s' (cpu, cuda or cuda:N)", c->device);
    if (c->precision && strcmp(c->precision, "f32") != 0 && strcmp(c->precision, "tf32") != 0 && strcmp(c->precision, "bf16") != 0)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "unknown training precision '%s' (f32, tf32 or bf16)", c->precision);
    if (c->precision && strcmp(c->precision, "f32") != 0 && !gpu)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "precision %s is for a GPU: the CPU trains in float32", c->precision);
    return MAMBAC_OK;
}

mambac_status mc_train_resume_from(const cJSON *state, const char *dir, mc_train_config *cfg, mc_train_resume_point *pg,
                                   mambac_error *err) {
    const cJSON *saved = cJSON_GetObjectItemCaseSensitive(state, "config");
    const int64_t steps = cfg->steps;
    config_from_json(cfg, saved);
    cfg->steps = steps > 0 ? steps : count(saved, "steps", 1);
    pg->step = count(state, "step", 0);
    pg->tokens = count(state, "tokens", 0);
    pg->elapsed_s = num(state, "elapsed_s", 0);
    pg->rng = hex_u64(state, "rng");
    if (!cfg->data) return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: train_state.json names no data", dir);
    if (pg->step < 0 || pg->step > (INT64_C(1) << 40) || pg->tokens < 0 || !(pg->elapsed_s >= 0 && pg->elapsed_s < 1e12))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: train_state.json: step, tokens or elapsed_s out of range", dir);
    return MAMBAC_OK;
}

/* Copies a small file (config.json, tokenizer.json) atomically. */
static mambac_status copy_file(const char *src, const char *dst, mambac_error *err) {
    char *text = NULL;
    size_t len;
    mambac_status st = mc_file_read_all(src, 256u << 20, &text, &len, err);
    mc_atomic_file af;
    if (st == MAMBAC_OK && (st = mc_atomic_open(&af, dst, err)) == MAMBAC_OK) {
        st = mc_atomic_write(&af, text, len, err);
        if (st == MAMBAC_OK) st = mc_atomic_commit(&af, err);
        else mc_atomic_abort(&af);
    }
    free(text);
    return st;
}

/* Where the steps run: the CPU (tctx + tapes) or a GPU (gt). */
typedef struct engine {
    mc_tctx c;
    mc_tape *tape, *vtape;
    mc_gtrain *gt;
} engine;

/* One forward (+ backward) of nb sequences; the loss into *loss. Fails on the GPU only. */
static mambac_status run_step(engine *en, mc_params *P, const int32_t *ids, int64_t nb, int backward, float scale,
                              double *loss, mambac_error *err) {
    if (en->gt) return mc_gtrain_step(en->gt, ids, nb, backward, scale, loss, err);
    *loss = mc_train_step(&en->c, P, backward ? en->tape : en->vtape, ids, backward, scale);
    return MAMBAC_OK;
}

/* Mean validation loss over the first `windows` fixed windows (all when 0). */
static mambac_status validate(engine *en, mc_params *P, int64_t vb, const mc_data *d, int64_t L, int64_t windows, int32_t *ids,
                              double *val, mambac_error *err) {
    int64_t nw = mc_data_val_windows(d, L);
    if (windows > 0 && windows < nw) nw = windows;
    const int64_t groups = nw / vb;
    double sum = 0;
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t b = 0; b < vb; b++) mc_data_val_window(d, g * vb + b, L, ids + b * L);
        double l;
        const mambac_status st = run_step(en, P, ids, vb, 0, 1.0f, &l, err);
        if (st != MAMBAC_OK) return st;
        sum += l;
    }
    *val = groups ? sum / (double)groups : NAN;
    return MAMBAC_OK;
}

/* A checkpoint of the run: the GPU's weights and moments come back to the host first. */
static mambac_status save(const char *out, engine *en, mc_params *P, mc_adamw *opt, cJSON *state, mambac_error *err) {
    if (en->gt) {
        const mambac_status st = mc_gtrain_download(en->gt, P, opt, err);
        if (st != MAMBAC_OK) return st;
    }
    return mc_ckpt_save(out, P, opt, state, err);
}

/* Keeps the log's header and its rows up to `step` (a resumed run rewrites the rest). */
static FILE *open_log(const char *out, int64_t step, int resume) {
    char *p = mc_path_join(out, "log.csv");
    if (!p) return NULL;
    char *kept = NULL;
    size_t len = 0;
    if (resume) {
        mambac_error e;
        char *text = NULL;
        if (mc_file_read_all(p, 1u << 30, &text, &len, &e) == MAMBAC_OK) {
            kept = calloc(len + 1, 1);
            size_t k = 0;
            for (char *line = strtok(text, "\n"); line && kept; line = strtok(NULL, "\n")) {
                long long s;
                if (sscanf(line, "%lld,", &s) == 1 && s > step) continue;
                k += (size_t)sprintf(kept + k, "%s\n", line);
            }
            free(text);
        }
    }
    FILE *f = fopen(p, "w");
    free(p);
    if (!f) {
        free(kept);
        return NULL;
    }
    if (kept && *kept) fputs(kept, f);
    else fputs("step,tokens,train_loss,val_loss,lr,grad_norm,tok_per_s,elapsed_s\n", f);
    free(kept);
    fflush(f);
    return f;
}

/* The fields of train_state.json that change every save. */
static void set_progress(cJSON *state, int64_t step, int64_t tokens, uint64_t rng, double elapsed, double val) {
    static const char *keys[] = {"format", "step", "tokens", "rng", "elapsed_s"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) cJSON_DeleteItemFromObject(state, keys[i]);
    char hex[24];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)rng);
    cJSON_AddStringToObject(state, "format", "mambac-train-state-1");
    cJSON_AddNumberToObject(state, "step", (double)step);
    cJSON_AddNumberToObject(state, "tokens", (double)tokens);
    cJSON_AddStringToObject(state, "rng", hex);
    cJSON_AddNumberToObject(state, "elapsed_s", elapsed);
    if (!isnan(val)) {
        cJSON_DeleteItemFromObject(state, "val_loss");
        cJSON_AddNumberToObject(state, "val_loss", val);
    }
}

/* An exclusive lock on the run's folder for as long as the run goes (flock on the folder
 * itself: released when the process ends, however it ends), so that two trainers never
 * write one checkpoint. Returns the descriptor, or -1 with err set. */
static int lock_folder(const char *dir, mambac_error *err) {
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        mc_fail(err, MAMBAC_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        mc_fail(err, MAMBAC_ERR_IO, "%s: another process is training in this folder", dir);
        close(fd);
        return -1;
    }
    return fd;
}

mambac_status mc_train_run(const mc_train_config *cfg_in, mambac_error *err) {
    mc_train_config cfg = *cfg_in;
    mambac_status st = MAMBAC_OK;
    cJSON *state = NULL;
    const char *out = cfg.resume ? cfg.resume : cfg.out;
    int64_t step = 0, tokens = 0;
    uint64_t rng = 0;
    double elapsed0 = 0;
    if (!out) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "no output folder given");
    int lock = -1;
    if (cfg.resume) {
        if ((lock = lock_folder(cfg.resume, err)) < 0) return MAMBAC_ERR_IO;
        if ((st = mc_ckpt_read_state(cfg.resume, &state, err)) != MAMBAC_OK) {
            close(lock);
            return st;
        }
        mc_train_resume_point pg;
        st = mc_train_resume_from(state, cfg.resume, &cfg, &pg, err);
        step = pg.step, tokens = pg.tokens, elapsed0 = pg.elapsed_s, rng = pg.rng;
    } else {
        struct stat sb;
        if (stat(out, &sb) == 0)
            return mc_fail(err, MAMBAC_ERR_IO, "%s already exists: choose a new output folder, or --resume it", out);
        rng = cfg.seed;
    }
    if (st == MAMBAC_OK) st = mc_train_check_config(&cfg, err);
    /* the GPU is there before anything is written */
    if (st == MAMBAC_OK && cfg.device && strcmp(cfg.device, "cpu") != 0) st = mc_gtrain_probe(cfg.device, err);
    mc_data data = {0};
    if (st == MAMBAC_OK) st = mc_data_load(&data, cfg.data, cfg.tokenizer, cfg.val_frac, cfg.seq, err);
    if (st == MAMBAC_OK && cfg.resume) {
        const cJSON *saved = cJSON_GetObjectItemCaseSensitive(state, "config");
        char hex[24];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)mc_data_fnv(&data));
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(saved, "data_fnv"));
        if (!want || strcmp(want, hex) != 0)
            st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s: the data (%s) differs from the data this checkpoint was trained on",
                         cfg.resume, cfg.data);
    }
    /* The model: new (written as step 0), fine-tuned from a folder, or resumed. */
    if (st == MAMBAC_OK && !cfg.resume && !cfg.init_from) {
        cfg.init.vocab_size = data.vocab;
        st = mambac_model_write_init(&cfg.init, out, err);
    } else if (st == MAMBAC_OK && cfg.init_from) {
        char *src = mc_path_join(cfg.init_from, "config.json"), *dst = NULL;
        if (mkdir(out, 0755) != 0) st = mc_fail(err, MAMBAC_ERR_IO, "%s: cannot create: %s", out, strerror(errno));
        if (st == MAMBAC_OK && src && (dst = mc_path_join(out, "config.json"))) st = copy_file(src, dst, err);
        free(src);
        free(dst);
    }
    if (st == MAMBAC_OK && !cfg.resume && (lock = lock_folder(out, err)) < 0) st = MAMBAC_ERR_IO;
    mambac_model *m = NULL;
    if (st == MAMBAC_OK) st = mambac_model_load(cfg.init_from && !cfg.resume ? cfg.init_from : out, &m, err);
    const mambac_model_info *info = m ? mambac_model_get_info(m) : NULL;
    if (st == MAMBAC_OK && cfg.resume && cfg.have_arch_flags &&
        (info->arch != cfg.init.arch || info->d_model != cfg.init.d_model || info->n_layer != cfg.init.n_layer ||
         info->d_state != cfg.init.d_state))
        st = mc_fail(err, MAMBAC_ERR_INVALID_ARG,
                     "the architecture flags (%s, d_model %d, %d layers, d_state %d) do not match the checkpoint in %s (%s, %d, %d, %d)",
                     mambac_arch_name(cfg.init.arch), cfg.init.d_model, cfg.init.n_layer, cfg.init.d_state, out,
                     mambac_arch_name(info->arch), info->d_model, info->n_layer, info->d_state);
    if (st == MAMBAC_OK && data.vocab > info->n_vocab_rows)
        st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "the data's vocabulary (%d) is larger than the model's (%d rows)", data.vocab,
                     info->n_vocab_rows);
    for (int64_t i = 0; st == MAMBAC_OK && i < data.n; i++)
        if (mc_data_id(&data, i) >= info->n_vocab_rows)
            st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "token id %d beyond the model's vocabulary", mc_data_id(&data, i));
    /* tokenizer.json beside the weights, so generate finds it */
    if (st == MAMBAC_OK && !cfg.resume) {
        char *tp = mc_path_join(out, "tokenizer.json");
        st = !tp ? mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory")
             : cfg.tokenizer ? copy_file(cfg.tokenizer, tp, err) : mambac_tokenizer_write_bytelevel(tp, err);
        free(tp);
    }
    mc_params P = {0};
    engine en = {0};
    mc_adamw opt = {0};
    const int gpu = cfg.device && strcmp(cfg.device, "cpu") != 0;
    const int nt = mc_threads_for(cfg.threads);
    const int64_t B = cfg.batch, L = cfg.seq;
    const int64_t vb = mc_data_val_windows(&data, L) < B ? mc_data_val_windows(&data, L) : B;
    if (st == MAMBAC_OK) st = mc_params_from_model(m, &P, err);
    mambac_model_free(m);
    m = NULL;
    int64_t max_k, tcap;
    if (st == MAMBAC_OK && !gpu) {
        mc_train_sizes(&P, B, L, &max_k, &tcap);
        st = mc_tctx_init(&en.c, nt, NULL, max_k, tcap, err);
        if (st == MAMBAC_OK) st = mc_tape_new(&P, B, L, nt, &en.tape, err);
        if (st == MAMBAC_OK && vb >= 1) st = mc_tape_new(&P, vb, L, nt, &en.vtape, err);
    }
    if (st == MAMBAC_OK) st = mc_adamw_init(&opt, &P, err);
    if (st == MAMBAC_OK) {
        opt.beta1 = cfg.beta1, opt.beta2 = cfg.beta2, opt.weight_decay = cfg.weight_decay, opt.step = step;
        if (cfg.resume) st = mc_ckpt_load_optimizer(out, &P, &opt, err);
    }
    if (st == MAMBAC_OK && gpu) st = mc_gtrain_new(&P, cfg.device, cfg.precision, B, L, &en.gt, err);
    if (st == MAMBAC_OK && gpu) st = mc_gtrain_set_moments(en.gt, &opt, err);
    const int have_val = vb >= 1;
    int32_t *ids = st == MAMBAC_OK ? malloc((size_t)(B * L) * sizeof *ids) : NULL;
    if (st == MAMBAC_OK && !ids) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    FILE *log = st == MAMBAC_OK ? open_log(out, step, cfg.resume != NULL) : NULL;
    if (st == MAMBAC_OK && !log) st = mc_fail(err, MAMBAC_ERR_IO, "%s: cannot write log.csv", out);
    if (st == MAMBAC_OK && !state) state = cJSON_CreateObject();
    if (st == MAMBAC_OK) {
        cJSON_DeleteItemFromObject(state, "config");
        cJSON_AddItemToObject(state, "config", config_json(&cfg, &data));
    }
    /* a new run is a whole checkpoint (step 0) before its first step: an interrupted run
     * can always be resumed, and its folder never holds weights without their state */
    if (st == MAMBAC_OK && !cfg.resume) {
        set_progress(state, step, tokens, rng, 0, NAN);
        st = save(out, &en, &P, &opt, state, err);
    }
    int64_t saved = step; /* the step of the checkpoint on disk */
    const double t_start = now();
    const int64_t step0 = step;
    double last_t = t_start;
    int64_t last_tokens = tokens;
    while (st == MAMBAC_OK && step < cfg.steps && (cfg.stop_at <= 0 || step < cfg.stop_at) && !(cfg.stop && *cfg.stop)) {
        if (cfg.time_limit > 0 && now() - t_start >= cfg.time_limit) break;
        const float lr = mc_lr_schedule(step, cfg.warmup, cfg.steps, cfg.lr, cfg.min_lr);
        double loss = 0, gnorm = 0;
        if (en.gt) st = mc_gtrain_zero_grad(en.gt, err);
        else memset(P.g, 0, (size_t)P.total * sizeof(float));
        for (int64_t a = 0; st == MAMBAC_OK && a < cfg.accum; a++) {
            mc_data_train_batch(&data, &rng, B, L, ids);
            double l = 0;
            st = run_step(&en, &P, ids, B, 1, 1.0f / (float)cfg.accum, &l, err);
            loss += l / (double)cfg.accum;
        }
        if (st != MAMBAC_OK) break;
        if (en.gt) {
            if ((st = mc_gtrain_update(en.gt, &opt, cfg.clip, lr, &gnorm, err)) != MAMBAC_OK) break;
        } else {
            gnorm = mc_clip_grad(&P, cfg.clip);
            mc_adamw_update(&opt, &P, lr);
        }
        step++;
        tokens += cfg.accum * B * L;
        if (!isfinite(loss)) {
            st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "the loss became %g at step %lld (lower the learning rate?)", loss,
                         (long long)step);
            break;
        }
        const int last = step == cfg.steps || step == cfg.stop_at || (cfg.time_limit > 0 && now() - t_start >= cfg.time_limit) ||
                         (cfg.stop && *cfg.stop);
        /* training speed excludes the evaluation time */
        const double t_train = now();
        const double tok_s = (double)(tokens - last_tokens) / (t_train - last_t > 1e-9 ? t_train - last_t : 1e-9);
        double val = NAN;
        if (have_val && (step % cfg.eval_every == 0 || last) &&
            (st = validate(&en, &P, vb, &data, L, cfg.eval_windows, ids, &val, err)) != MAMBAC_OK)
            break;
        const double t = now(), elapsed = elapsed0 + (t - t_start);
        last_t = t, last_tokens = tokens;
        const int64_t done = step - step0;
        mc_train_progress pr = {step, cfg.steps, tokens, loss, val, lr, gnorm, tok_s, elapsed,
                                (double)(cfg.steps - step) * (t - t_start) / (double)(done > 0 ? done : 1)};
        char vbuf[32] = "";
        if (!isnan(val)) snprintf(vbuf, sizeof vbuf, "%.6f", val);
        fprintf(log, "%lld,%lld,%.6f,%s,%.6g,%.4f,%.1f,%.2f\n", (long long)step, (long long)tokens, loss, vbuf, lr, gnorm,
                tok_s, elapsed);
        fflush(log);
        if (cfg.progress) cfg.progress(&pr, cfg.user);
        if (last || (cfg.save_every > 0 && step % cfg.save_every == 0)) {
            set_progress(state, step, tokens, rng, elapsed, val);
            st = save(out, &en, &P, &opt, state, err);
            saved = step;
        }
    }
    if (st == MAMBAC_OK && saved != step) { /* stopped between steps: the last one is saved too */
        set_progress(state, step, tokens, rng, elapsed0 + (now() - t_start), NAN);
        st = save(out, &en, &P, &opt, state, err);
    }
    if (log) fclose(log);
    free(ids);
    mc_adamw_free(&opt);
    mc_gtrain_free(en.gt);
    mc_tape_free(en.tape);
    mc_tape_free(en.vtape);
    mc_tctx_free(&en.c);
    mc_params_free(&P);
    mambac_model_free(m);
    mc_data_free(&data);
    cJSON_Delete(state);
    if (cfg.resume) { /* config_from_json's copies */
        free((char *)cfg.data);
        free((char *)cfg.tokenizer);
    }
    if (lock >= 0) close(lock);
    return st;
}
