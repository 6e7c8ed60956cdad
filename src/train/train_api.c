/* train_api.c — the public training entry point (mambac_train), a thin mapping onto the
 * training loop's own configuration (trainer.c), which `mambac train` also fills. */
#include <signal.h>
#include <string.h>

#include "core/error.h"
#include "train/trainer.h"

mambac_train_params mambac_train_default_params(mambac_arch arch) {
    const mc_train_config c = mc_train_default_config();
    mambac_train_params p;
    memset(&p, 0, sizeof p);
    p.init = mambac_init_default_params(arch == MAMBAC_ARCH_MAMBA2 ? MAMBAC_ARCH_MAMBA2 : MAMBAC_ARCH_MAMBA1);
    mc_train_small_init(&p.init);
    p.batch = c.batch, p.seq = c.seq, p.steps = 0 /* the default, or the checkpoint's */, p.warmup = c.warmup, p.accum = c.accum;
    p.eval_every = c.eval_every, p.eval_windows = c.eval_windows, p.save_every = c.save_every, p.stop_at = c.stop_at;
    p.lr = c.lr, p.min_lr = c.min_lr, p.weight_decay = c.weight_decay, p.clip = c.clip, p.beta1 = c.beta1, p.beta2 = c.beta2;
    p.val_frac = c.val_frac, p.time_limit = c.time_limit, p.seed = c.seed, p.threads = c.threads;
    p.init.seed = c.seed;
    return p;
}

typedef struct relay {
    mambac_train_progress_fn fn;
    void *user;
    volatile sig_atomic_t stop;
} relay;

static void relay_progress(const mc_train_progress *pr, void *user) {
    relay *r = user;
    if (r->fn(r->user, pr)) r->stop = 1;
}

mambac_status mambac_train(const mambac_train_params *p, mambac_train_progress_fn progress, void *user, mambac_error *err) {
    if (!p) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "mambac_train: no parameters");
    mc_train_config c = mc_train_default_config();
    c.init = p->init, c.have_arch_flags = p->init_set != 0;
    c.init_from = p->init_from, c.resume = p->resume, c.data = p->data, c.tokenizer = p->tokenizer, c.out = p->out;
    c.batch = p->batch, c.seq = p->seq, c.steps = p->steps, c.warmup = p->warmup, c.accum = p->accum;
    c.eval_every = p->eval_every, c.eval_windows = p->eval_windows, c.save_every = p->save_every, c.stop_at = p->stop_at;
    c.lr = p->lr, c.min_lr = p->min_lr, c.weight_decay = p->weight_decay, c.clip = p->clip, c.beta1 = p->beta1, c.beta2 = p->beta2;
    c.val_frac = p->val_frac, c.time_limit = p->time_limit, c.seed = p->seed, c.threads = p->threads;
    c.device = p->device, c.precision = p->precision;
    if (c.resume && (c.out || c.init_from || c.data))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "resume continues in its folder with its data: no out, init_from or data");
    if (!c.resume && (!c.data || !c.out)) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "data and out are required (or resume)");
    if (c.init_from && c.have_arch_flags)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "init_from takes the architecture from the model: init_set must be 0");
    if (!c.resume && c.steps == 0) c.steps = mc_train_default_config().steps;
    relay r = {progress, user, 0};
    if (progress) c.progress = relay_progress, c.user = &r;
    c.stop = &r.stop;
    return mc_train_run(&c, err);
}
