/* cmd_train.c — `mambac train`: train a new model (or fine-tune / resume one) on a
 * text file. One progress line that updates in place on a terminal (a line per
 * evaluation otherwise); the curve goes to OUT/log.csv. Ctrl-C (SIGINT) or SIGTERM
 * finishes the step, saves a checkpoint and exits; a second one aborts at once. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "io/file.h"
#include "train/trainer.h"

static void fmt_time(char *b, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    if (s > 3.6e9) s = 3.6e9; /* a million hours: the hours fit an int */
    if (s >= 3600) snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

/* The device and precision a checkpoint was trained with (train_state.json's config), so
 * that a GPU run resumed without --device stays on the GPU. Left empty when the file is
 * absent or unreadable (the trainer then reports what is wrong) or names no device (older
 * states). */
static void saved_place(const char *dir, char device[32], char precision[8]) {
    char *p = mc_path_join(dir, "train_state.json"), *text = NULL;
    size_t len;
    mambac_error err;
    cJSON *root = NULL;
    if (p && mc_file_read_all(p, 1u << 20, &text, &len, &err) == MAMBAC_OK) root = cJSON_ParseWithLength(text, len);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "device"));
    const char *q = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "precision"));
    if (d && (strcmp(d, "cpu") == 0 || strncmp(d, "cuda", 4) == 0) && strlen(d) < 32) snprintf(device, 32, "%s", d);
    if (device[0] && q && (!strcmp(q, "f32") || !strcmp(q, "tf32") || !strcmp(q, "bf16"))) snprintf(precision, 8, "%s", q);
    cJSON_Delete(root);
    free(text);
    free(p);
}

typedef struct view {
    int tty, open; /* open: the in-place line is not ended yet */
    double last_val;
} view;

static void progress(const mc_train_progress *p, void *user) {
    view *v = user;
    if (!isnan(p->val_loss)) v->last_val = p->val_loss;
    char eta[32], el[32], val[32] = "-";
    fmt_time(eta, sizeof eta, p->eta);
    fmt_time(el, sizeof el, p->elapsed);
    if (!isnan(v->last_val)) snprintf(val, sizeof val, "%.4f", v->last_val);
    if (v->tty) {
        fprintf(stderr, "\rstep %lld/%lld | train %.4f | val %s | lr %.2e | %.0f tok/s | %s elapsed, ETA %s   ",
                (long long)p->step, (long long)p->steps, p->train_loss, val, p->lr, p->tok_s, el, eta);
        v->open = 1;
    } else if (!isnan(p->val_loss) || p->step == p->steps) {
        fprintf(stderr, "step %lld/%lld | train %.4f | val %s | lr %.2e | %.0f tok/s | %s elapsed, ETA %s\n",
                (long long)p->step, (long long)p->steps, p->train_loss, val, p->lr, p->tok_s, el, eta);
    }
    fflush(stderr);
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
    (void)sig;
    stop_requested = 1;
    static const char msg[] = "\nmambac train: stopping after this step and saving (again to abort)\n";
    ssize_t w = write(2, msg, sizeof msg - 1); /* async-signal-safe */
    (void)w;
}

/* SA_RESETHAND: the handler runs once, a second signal takes the default action. */
static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cmd_train(cli_args *a) {
    mc_train_config c = mc_train_default_config();
    const char *arch = NULL, *threads = NULL;
    struct { const char *name; int64_t *i; float *f; double *d; int32_t *i32; int arch_flag; } num[] = {
        {"--batch", &c.batch, 0, 0, 0, 0},          {"--seq", &c.seq, 0, 0, 0, 0},
        {"--steps", &c.steps, 0, 0, 0, 0},          {"--warmup", &c.warmup, 0, 0, 0, 0},
        {"--accum", &c.accum, 0, 0, 0, 0},          {"--eval-every", &c.eval_every, 0, 0, 0, 0},
        {"--eval-windows", &c.eval_windows, 0, 0, 0, 0}, {"--save-every", &c.save_every, 0, 0, 0, 0},
        {"--lr", 0, &c.lr, 0, 0, 0},                {"--min-lr", 0, &c.min_lr, 0, 0, 0},
        {"--wd", 0, &c.weight_decay, 0, 0, 0},      {"--clip", 0, &c.clip, 0, 0, 0},
        {"--beta1", 0, &c.beta1, 0, 0, 0},          {"--beta2", 0, &c.beta2, 0, 0, 0},
        {"--val-frac", 0, 0, &c.val_frac, 0, 0},    {"--time-limit", 0, 0, &c.time_limit, 0, 0},
        {"--d-model", 0, 0, 0, &c.init.d_model, 1}, {"--layers", 0, 0, 0, &c.init.n_layer, 1},
        {"--d-state", 0, 0, 0, &c.init.d_state, 1}, {"--expand", 0, 0, 0, &c.init.expand, 1},
        {"--d-conv", 0, 0, 0, &c.init.d_conv, 1},   {"--dt-rank", 0, 0, 0, &c.init.dt_rank, 1},
        {"--headdim", 0, 0, 0, &c.init.head_dim, 1}, {"--groups", 0, 0, 0, &c.init.n_groups, 1},
        {"--chunk", 0, 0, 0, &c.init.chunk_size, 1}, {"--stop-at", &c.stop_at, 0, 0, 0, 0},
    };
    const char *vals[sizeof num / sizeof num[0]] = {0};
    const char *seed = NULL;
    c.steps = 0; /* 0: the default, or the checkpoint's on --resume */
    for (; a->i < a->argc; a->i++) {
        int bad = 0, hit = 0;
        for (size_t k = 0; k < sizeof num / sizeof num[0] && !hit; k++) hit = cli_opt(a, num[k].name, NULL, &vals[k], &bad);
        if (hit || cli_opt(a, "--data", NULL, &c.data, &bad) || cli_opt(a, "--tokenizer", NULL, &c.tokenizer, &bad) ||
            cli_opt(a, "-o", "--output", &c.out, &bad) || cli_opt(a, "--resume", NULL, &c.resume, &bad) ||
            cli_opt(a, "--init-from", NULL, &c.init_from, &bad) || cli_opt(a, "--arch", NULL, &arch, &bad) ||
            cli_opt(a, "--seed", NULL, &seed, &bad) || cli_opt(a, "-t", "--threads", &threads, &bad) ||
            cli_opt(a, "-d", "--device", &c.device, &bad) || cli_opt(a, "--precision", NULL, &c.precision, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (arch) {
        if (strcmp(arch, "mamba") != 0 && strcmp(arch, "mamba2") != 0) return cli_usage_error(a->cmd, "--arch must be mamba or mamba2");
        const mambac_init_params d = mambac_init_default_params(strcmp(arch, "mamba") == 0 ? MAMBAC_ARCH_MAMBA1 : MAMBAC_ARCH_MAMBA2);
        c.init = d;
        c.have_arch_flags = 1;
    }
    /* small defaults for a model trained from scratch on a CPU */
    if (!c.resume && !c.init_from) mc_train_small_init(&c.init);
    for (size_t k = 0; k < sizeof num / sizeof num[0]; k++) {
        if (!vals[k]) continue;
        long long iv;
        double dv;
        if (num[k].i || num[k].i32) {
            if (!cli_parse_int(vals[k], 0, INT32_MAX, &iv)) return cli_usage_error(a->cmd, "%s needs a non-negative integer", num[k].name);
            if (num[k].i) *num[k].i = iv;
            else *num[k].i32 = (int32_t)iv;
        } else {
            if (!cli_parse_float(vals[k], &dv)) return cli_usage_error(a->cmd, "%s needs a number", num[k].name);
            if (num[k].f) *num[k].f = (float)dv;
            else *num[k].d = dv;
        }
        if (num[k].arch_flag) c.have_arch_flags = 1;
    }
    if (seed) {
        long long s;
        if (!cli_parse_int(seed, 0, INT64_MAX, &s)) return cli_usage_error(a->cmd, "--seed must be >= 0");
        c.seed = (uint64_t)s;
        c.init.seed = (uint64_t)s;
    }
    if (threads) {
        int32_t t;
        if (!cli_parse_threads(threads, &t)) return cli_usage_error(a->cmd, "-t must be >= 1");
        c.threads = t;
    }
    static char saved_device[32], saved_precision[8]; /* a resumed run's place, unless given */
    if (c.resume && !c.device) {
        saved_place(c.resume, saved_device, saved_precision);
        if (saved_device[0]) c.device = saved_device;
        if (!c.precision && saved_precision[0]) c.precision = saved_precision;
        if (saved_device[0] && strcmp(saved_device, "cpu") != 0)
            fprintf(stderr, "resuming on %s (%s), where the run trained; --device cpu moves it\n", saved_device,
                    c.precision ? c.precision : "f32");
    }
    if (c.device && strcmp(c.device, "cpu") != 0 && strncmp(c.device, "cuda", 4) != 0)
        return cli_usage_error(a->cmd, "--device must be cpu, cuda or cuda:N");
    if (c.precision && strcmp(c.precision, "f32") != 0 && strcmp(c.precision, "tf32") != 0 && strcmp(c.precision, "bf16") != 0)
        return cli_usage_error(a->cmd, "--precision must be f32, tf32 or bf16");
    if (c.precision && strcmp(c.precision, "f32") != 0 && (!c.device || strcmp(c.device, "cpu") == 0))
        return cli_usage_error(a->cmd, "--precision tf32 / bf16 is for --device cuda (the CPU trains in float32)");
    if (c.resume && (c.out || c.init_from || c.data))
        return cli_usage_error(a->cmd, "--resume DIR continues in DIR with its data: no -o, --init-from or --data");
    if (!c.resume && (!c.data || !c.out)) return cli_usage_error(a->cmd, "--data FILE and -o DIR are required (or --resume DIR)");
    if (c.init_from && c.have_arch_flags)
        return cli_usage_error(a->cmd, "--init-from takes the architecture from the model: no architecture flags");
    if (!c.resume && c.steps == 0) c.steps = mc_train_default_config().steps;
    view v = {isatty(2), 0, NAN};
    c.progress = progress;
    c.user = &v;
    c.stop = &stop_requested;
    catch_stop_signals();
    mambac_error err;
    const mambac_status st = mc_train_run(&c, &err);
    if (v.open) fputc('\n', stderr);
    if (st != MAMBAC_OK) return cli_error("%s", err.msg);
    fprintf(stderr, "%s %s (log.csv has the curve)%s\n", stop_requested ? "stopped; saved" : "saved", c.resume ? c.resume : c.out,
            stop_requested ? ": continue with --resume" : "");
    return CLI_OK;
}
