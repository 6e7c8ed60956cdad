/* scheduler.c — the evaluation loop (scheduler.h). One thread: admit queued jobs into
 * free slots (each slot a state of its own, started from the prefix cache), build one
 * batch of every running slot's tokens (a decode step's one token, or the next piece of
 * a prompt within the step's prefill budget), evaluate it, then sample each slot whose
 * logits are ready and hand the token's text to its job. Sampling and stop strings work
 * as mambac_generate does (same sampler, same text stream), so a greedy request gives
 * what `mambac generate` gives for the same prompt. */
#define _POSIX_C_SOURCE 200809L
#include "serve/scheduler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infer/text_stream.h"
#include "serve/state_cache.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- jobs ----------------------------------------------------------------------- */

srv_job *srv_job_new(const int32_t *ids, size_t n, const srv_request *req) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->ids = malloc((n ? n : 1) * sizeof *ids);
    if (!j->ids) {
        free(j);
        return NULL;
    }
    memcpy(j->ids, ids, n * sizeof *ids);
    j->n_ids = n;
    j->sp = req->sp, j->seed_given = req->seed_given, j->max_tokens = req->max_tokens, j->ignore_eos = req->ignore_eos;
    j->want_lp = req->logprobs, j->top_lp = req->top_logprobs, j->cache_prompt = req->cache_prompt;
    for (size_t i = 0; i < req->n_stop; i++)
        if ((j->stop[j->n_stop] = strdup(req->stop[i]))) j->n_stop++;
    atomic_init(&j->cancelled, 0);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->t_submit = now();
    return j;
}

void srv_job_release(srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    const int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) return;
    for (size_t i = 0; i < j->n_ev; i++) free(j->ev[i].text);
    for (size_t i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->ev), free(j->ids);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* ---- the scheduler ---------------------------------------------------------------- */

enum { SLOT_FREE, SLOT_PREFILL, SLOT_READY, SLOT_DECODE };

typedef struct slot {
    int phase;
    srv_job *job;
    mambac_state *state;
    mambac_sampler *smp;
    mc_text_stream ts;
    int32_t *fed; /* the tokens the state holds: the prompt, then generated ones */
    size_t n_fed, cap_fed;
    size_t pos;   /* prompt tokens in the state */
    int32_t next; /* DECODE: the sampled token to feed */
    float *logits;
    int have_logits; /* logits hold the row after the last fed token (else only gtok) */
    int greedy;      /* decode steps ask the backend for the argmax alone (MAMBAC_LOGITS_GREEDY) */
    int32_t gtok;
    size_t k;     /* tokens fed in the current step */
} slot;

struct srv_sched {
    const mambac_model *model;
    const mambac_model_info *info;
    mambac_context *ctx;
    const mambac_tokenizer *tok;
    srv_sched_params p;
    int32_t n_vocab, eos;
    srv_cache *cache;
    slot *slots;
    mambac_seq *seqs;
    int32_t *seq_slot;
    uint64_t seed_counter;

    pthread_t thread;
    pthread_mutex_t mu; /* guards the queue, draining and the stats */
    pthread_cond_t cv;
    srv_job **queue;
    int32_t q_head, q_len;
    int draining;
    srv_sched_stats st;
};

static void hist_init(srv_histogram *h, const double *le) {
    memset(h, 0, sizeof *h);
    memcpy(h->le, le, sizeof h->le);
}
static void hist_add(srv_histogram *h, double v) {
    int b = 0;
    while (b < SRV_HIST_BUCKETS && v > h->le[b]) b++;
    h->count[b]++, h->sum += v, h->n++;
}

static int slot_grow_fed(slot *sl, size_t need) {
    if (need <= sl->cap_fed) return 1;
    size_t cap = sl->cap_fed ? sl->cap_fed : 256;
    while (cap < need) cap *= 2;
    int32_t *f = realloc(sl->fed, cap * sizeof *f);
    if (!f) return 0;
    sl->fed = f, sl->cap_fed = cap;
    return 1;
}

/* Appends an event to the job (text copied) and wakes its reader. */
static int emit(srv_job *j, const char *text, size_t len, const srv_token_lp *lp) {
    srv_event e = {.len = len};
    if (lp) e.lp = *lp;
    else e.lp.id = -1;
    e.text = malloc(len + 1);
    if (!e.text) return 0;
    memcpy(e.text, text, len), e.text[len] = 0;
    pthread_mutex_lock(&j->mu);
    int ok = 1;
    if (j->n_ev == j->cap_ev) {
        const size_t cap = j->cap_ev ? 2 * j->cap_ev : 64;
        srv_event *ev = realloc(j->ev, cap * sizeof *ev);
        if (ev) j->ev = ev, j->cap_ev = cap;
        else ok = 0;
    }
    if (ok) {
        j->ev[j->n_ev++] = e;
        if (!j->t_first) j->t_first = now();
        pthread_cond_broadcast(&j->cv);
    } else {
        free(e.text);
    }
    pthread_mutex_unlock(&j->mu);
    return ok;
}

/* The job ends (finish "stop" / "length"; or failed with status and message; or
 * cancelled): its reader is woken, the slot freed. */
static void finish(srv_sched *s, slot *sl, const char *reason, int status, const char *error) {
    srv_job *j = sl->job;
    const int cancelled = atomic_load(&j->cancelled);
    if (!error && !cancelled) { /* what the text stream held back (nothing after a stop string) */
        const size_t k = sl->ts.buf ? mc_text_stream_ready(&sl->ts, 1) : 0;
        if (k) emit(j, sl->ts.buf, k, NULL);
        if (j->cache_prompt && s->cache && sl->n_fed)
            srv_cache_store(s->cache, sl->fed, sl->n_fed, sl->state, sl->have_logits ? sl->logits : NULL);
    }
    pthread_mutex_lock(&j->mu);
    j->phase = SRV_JOB_DONE;
    j->finish = reason;
    j->t_done = now();
    if (error) {
        j->failed = 1, j->status = status;
        snprintf(j->error, sizeof j->error, "%s", error);
    }
    pthread_cond_broadcast(&j->cv);
    const double ttft = j->t_first ? j->t_first - j->t_submit : -1, total = j->t_done - j->t_submit;
    const int64_t gen = j->n_generated;
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&s->mu);
    if (error) s->st.jobs_failed++;
    else if (cancelled) s->st.jobs_cancelled++;
    else s->st.jobs_done++;
    s->st.generated_tokens += (uint64_t)gen;
    if (ttft >= 0) hist_add(&s->st.ttft, ttft);
    hist_add(&s->st.latency, total);
    s->st.running--;
    pthread_mutex_unlock(&s->mu);
    mc_text_stream_free(&sl->ts);
    mambac_sampler_free(sl->smp);
    sl->smp = NULL;
    sl->phase = SLOT_FREE;
    sl->job = NULL;
    srv_job_release(j);
}

static uint64_t fresh_seed(srv_sched *s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^ (++s->seed_counter * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 27);
}

/* A prompt's state is also kept CHECKPOINT_BACK tokens before its end: the next turn of a
 * chat re-tokenizes the history, and the prompt's last tokens can merge with the answer
 * that follows them (a template's "\n" and an answer starting with "\n" become one token),
 * so the state at the prompt's end is then no prefix of the next prompt; the one a few
 * tokens earlier still is. 0: no checkpoint for this job. */
#define CHECKPOINT_BACK 8
static size_t checkpoint_of(const srv_sched *s, const srv_job *j) {
    return j->cache_prompt && s->cache && j->n_ids > CHECKPOINT_BACK ? j->n_ids - CHECKPOINT_BACK : 0;
}

/* A queued job takes a free slot: its sampler, its text stream, and its state from the
 * longest cached prefix of its prompt (or from the start). */
static void start(srv_sched *s, slot *sl, srv_job *j) {
    sl->job = j, sl->n_fed = 0, sl->pos = 0;
    pthread_mutex_lock(&j->mu);
    j->phase = SRV_JOB_RUNNING;
    pthread_mutex_unlock(&j->mu);
    mambac_sampler_params sp = j->sp;
    if (!j->seed_given) sp.seed = fresh_seed(s);
    mambac_error err;
    mc_text_stream_init(&sl->ts, (const char *const *)j->stop, j->n_stop);
    sl->phase = SLOT_PREFILL;
    if (mambac_sampler_new(&sp, s->n_vocab, &sl->smp, &err) != MAMBAC_OK) {
        finish(s, sl, NULL, 400, err.msg);
        return;
    }
    for (size_t i = 0; i < j->n_ids; i++) mambac_sampler_accept(sl->smp, j->ids[i]);
    if (!slot_grow_fed(sl, j->n_ids + 1)) {
        finish(s, sl, NULL, 500, "out of memory");
        return;
    }
    size_t hit = 0;
    if (j->cache_prompt && s->cache) hit = srv_cache_lookup(s->cache, j->ids, j->n_ids, sl->state, sl->logits);
    if (!hit) mambac_state_reset(sl->state);
    memcpy(sl->fed, j->ids, hit * sizeof *j->ids);
    sl->n_fed = sl->pos = hit;
    j->n_cached = (int64_t)hit;
    if (hit == j->n_ids) sl->phase = SLOT_READY, sl->have_logits = 1;
    /* greedy with nothing that needs the whole row: the backend's argmax (on a GPU one id
     * comes back instead of a row of logits); the same choice as the sampler's when the
     * sampled vocabulary is the model's */
    sl->greedy = sp.temp == 0.0f && !j->want_lp && sp.repeat_penalty == 1.0f && s->n_vocab == s->info->vocab_size;
    pthread_mutex_lock(&s->mu);
    s->st.prompt_tokens += j->n_ids, s->st.cached_tokens += hit;
    pthread_mutex_unlock(&s->mu);
}

/* log-softmax statistics of one row over the sampled vocabulary: the token's and the
 * top alternatives' log-probabilities. */
static void token_logprobs(const float *l, int32_t n, int32_t tok, int top, srv_token_lp *out) {
    float m = l[0];
    for (int32_t i = 1; i < n; i++) m = l[i] > m ? l[i] : m;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += exp((double)l[i] - m);
    const double lse = m + log(sum);
    out->id = tok, out->logprob = (float)(l[tok] - lse), out->n_top = 0;
    for (int32_t i = 0; i < n && top > 0; i++) { /* insertion into the sorted best `top` */
        int k = out->n_top;
        if (k == top && l[i] <= l[out->top_id[k - 1]]) continue;
        if (k < top) out->n_top++;
        else k--;
        while (k > 0 && l[out->top_id[k - 1]] < l[i]) out->top_id[k] = out->top_id[k - 1], k--;
        out->top_id[k] = i;
    }
    for (int k = 0; k < out->n_top; k++) out->top_lp[k] = (float)(l[out->top_id[k]] - lse);
}

/* A slot whose logits are ready: sample, hand the text on, decide whether it goes on. */
static void sample(srv_sched *s, slot *sl) {
    srv_job *j = sl->job;
    if (j->n_generated >= j->max_tokens) {
        finish(s, sl, "length", 0, NULL);
        return;
    }
    for (int32_t i = 0; sl->have_logits && i < s->n_vocab; i++)
        if (!isfinite(sl->logits[i])) {
            finish(s, sl, NULL, 500, "the model gave non-finite logits: its weights or state are corrupt");
            return;
        }
    const int32_t next = sl->have_logits ? mambac_sampler_sample(sl->smp, sl->logits) : sl->gtok;
    if (next == s->eos && !j->ignore_eos) {
        finish(s, sl, "stop", 0, NULL);
        return;
    }
    mambac_sampler_accept(sl->smp, next);
    srv_token_lp lp;
    if (j->want_lp) token_logprobs(sl->logits, s->n_vocab, next, j->top_lp, &lp);
    size_t bl = 0;
    const char *b = s->tok ? mambac_token_bytes(s->tok, next, &bl) : NULL;
    if (b && !mc_text_stream_push(&sl->ts, b, bl)) {
        finish(s, sl, NULL, 500, "out of memory");
        return;
    }
    const size_t k = sl->ts.buf ? mc_text_stream_ready(&sl->ts, 0) : 0;
    pthread_mutex_lock(&j->mu);
    j->n_generated++;
    pthread_mutex_unlock(&j->mu);
    if (!emit(j, sl->ts.buf ? sl->ts.buf : "", k, j->want_lp ? &lp : NULL)) {
        finish(s, sl, NULL, 500, "out of memory");
        return;
    }
    if (k) mc_text_stream_consume(&sl->ts, k);
    if (sl->ts.stopped) finish(s, sl, "stop", 0, NULL);
    else if (j->n_generated >= j->max_tokens) finish(s, sl, "length", 0, NULL);
    else sl->next = next, sl->phase = SLOT_DECODE;
}

/* One step: every running slot's tokens in one batch, then sampling. */
static void step(srv_sched *s) {
    size_t n = 0;
    int decoding = 0;
    for (int32_t i = 0; i < s->p.parallel; i++) decoding |= s->slots[i].phase == SLOT_DECODE;
    /* prompt tokens this step: a piece between decode steps, more when nobody waits on one */
    int64_t budget = decoding ? s->p.prefill_piece : 16 * (int64_t)s->p.prefill_piece;
    for (int32_t i = 0; i < s->p.parallel; i++) {
        slot *sl = &s->slots[i];
        if (sl->phase == SLOT_FREE) continue;
        if (atomic_load(&sl->job->cancelled)) {
            finish(s, sl, NULL, 0, NULL);
            continue;
        }
        mambac_seq q = {.state = sl->state, .mode = MAMBAC_LOGITS_LAST, .logits = sl->logits};
        if (sl->phase == SLOT_PREFILL && budget > 0) {
            const size_t ck = checkpoint_of(s, sl->job), end = sl->pos < ck ? ck : sl->job->n_ids;
            const size_t left = end - sl->pos; /* a piece ends at the checkpoint */
            sl->k = left < (size_t)budget ? left : (size_t)budget;
            budget -= (int64_t)sl->k;
            q.ids = sl->job->ids + sl->pos, q.n_tokens = sl->k;
            if (sl->pos + sl->k < sl->job->n_ids) q.mode = MAMBAC_LOGITS_NONE, q.logits = NULL;
        } else if (sl->phase == SLOT_DECODE) {
            sl->k = 1;
            q.ids = &sl->next, q.n_tokens = 1;
            if (sl->greedy) q.mode = MAMBAC_LOGITS_GREEDY, q.logits = NULL, q.token = &sl->gtok;
        } else {
            continue;
        }
        s->seqs[n] = q, s->seq_slot[n++] = i;
    }
    if (n) {
        mambac_error err;
        const mambac_status st = mambac_eval_batch(s->ctx, s->seqs, n, &err);
        pthread_mutex_lock(&s->mu);
        s->st.steps++, s->st.batch_rows += n;
        hist_add(&s->st.batch, (double)n);
        pthread_mutex_unlock(&s->mu);
        for (size_t q = 0; q < n; q++) {
            slot *sl = &s->slots[s->seq_slot[q]];
            if (st != MAMBAC_OK) {
                finish(s, sl, NULL, 500, err.msg);
                continue;
            }
            if (!slot_grow_fed(sl, sl->n_fed + sl->k)) {
                finish(s, sl, NULL, 500, "out of memory");
                continue;
            }
            memcpy(sl->fed + sl->n_fed, s->seqs[q].ids, sl->k * sizeof(int32_t));
            sl->n_fed += sl->k;
            sl->have_logits = s->seqs[q].mode == MAMBAC_LOGITS_LAST;
            if (sl->phase == SLOT_DECODE) {
                sl->phase = SLOT_READY;
            } else {
                sl->pos += sl->k;
                if (sl->pos == sl->job->n_ids) {
                    sl->phase = SLOT_READY;
                    if (sl->job->cache_prompt && s->cache) srv_cache_store(s->cache, sl->fed, sl->n_fed, sl->state, sl->logits);
                } else if (sl->pos == checkpoint_of(s, sl->job)) {
                    srv_cache_store(s->cache, sl->fed, sl->n_fed, sl->state, NULL);
                }
            }
        }
    }
    for (int32_t i = 0; i < s->p.parallel; i++)
        if (s->slots[i].phase == SLOT_READY) sample(s, &s->slots[i]);
    if (s->cache) { /* the cache is this thread's: its counters are published under the lock */
        const srv_cache_stats c = srv_cache_get_stats(s->cache);
        pthread_mutex_lock(&s->mu);
        s->st.cache_entries = c.entries, s->st.cache_bytes = c.bytes;
        s->st.cache_hits = c.hits, s->st.cache_misses = c.misses, s->st.cache_evictions = c.evictions;
        pthread_mutex_unlock(&s->mu);
    }
}

static int any_running(const srv_sched *s) {
    for (int32_t i = 0; i < s->p.parallel; i++)
        if (s->slots[i].phase != SLOT_FREE) return 1;
    return 0;
}

static void *run(void *arg) {
    srv_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        for (int32_t i = 0; i < s->p.parallel && s->q_len; i++) {
            if (s->slots[i].phase != SLOT_FREE) continue;
            srv_job *j = s->queue[s->q_head];
            s->q_head = (s->q_head + 1) % s->p.queue, s->q_len--;
            s->st.queued--, s->st.running++;
            pthread_mutex_unlock(&s->mu);
            start(s, &s->slots[i], j);
            pthread_mutex_lock(&s->mu);
        }
        if (!any_running(s)) {
            if (s->draining && !s->q_len) break;
            if (!s->q_len) pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        step(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void sched_free(srv_sched *s) {
    for (int32_t i = 0; s->slots && i < s->p.parallel; i++) {
        if (s->slots[i].state) mambac_state_free(s->slots[i].state);
        free(s->slots[i].logits), free(s->slots[i].fed);
    }
    srv_cache_free(s->cache);
    free(s->slots), free(s->seqs), free(s->seq_slot), free(s->queue);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

srv_sched *srv_sched_new(const mambac_model *model, mambac_context *ctx, const mambac_tokenizer *tok,
                         const srv_sched_params *p, mambac_error *err) {
    srv_sched *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->model = model, s->info = mambac_model_get_info(model), s->ctx = ctx, s->tok = tok, s->p = *p;
    if (s->p.parallel < 1) s->p.parallel = 1;
    if (s->p.queue < 1) s->p.queue = 1;
    if (s->p.prefill_piece < 1) s->p.prefill_piece = 512;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->n_vocab = s->info->vocab_size;
    if (tok && mambac_tokenizer_n_vocab(tok) < s->n_vocab) s->n_vocab = mambac_tokenizer_n_vocab(tok);
    s->eos = s->info->eos_token_id;
    if (s->eos < 0 && tok) s->eos = mambac_tokenizer_find(tok, "<|endoftext|>");
    s->slots = calloc((size_t)s->p.parallel, sizeof *s->slots);
    s->seqs = calloc((size_t)s->p.parallel, sizeof *s->seqs);
    s->seq_slot = calloc((size_t)s->p.parallel, sizeof *s->seq_slot);
    s->queue = calloc((size_t)s->p.queue, sizeof *s->queue);
    if (p->cache_bytes) s->cache = srv_cache_new(model, p->cache_bytes);
    int ok = s->slots && s->seqs && s->seq_slot && s->queue && (!p->cache_bytes || s->cache);
    for (int32_t i = 0; ok && i < s->p.parallel; i++) {
        s->slots[i].logits = malloc((size_t)s->info->n_vocab_rows * sizeof(float));
        ok = s->slots[i].logits && mambac_state_new(model, &s->slots[i].state, err) == MAMBAC_OK;
    }
    static const double ttft_le[SRV_HIST_BUCKETS] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double lat_le[SRV_HIST_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    static const double batch_le[SRV_HIST_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
    hist_init(&s->st.ttft, ttft_le), hist_init(&s->st.latency, lat_le), hist_init(&s->st.batch, batch_le);
    if (ok && s->cache && p->state_dir)
        fprintf(stderr, "mambac serve: %zu cached states read from %s\n", srv_cache_load_dir(s->cache, p->state_dir),
                p->state_dir);
    s->st.parallel = s->p.parallel;
    if (!ok || pthread_create(&s->thread, NULL, run, s) != 0) {
        if (err && ok) snprintf(err->msg, sizeof err->msg, "cannot start the scheduler thread");
        else if (err && !err->msg[0]) snprintf(err->msg, sizeof err->msg, "out of memory");
        sched_free(s);
        return NULL;
    }
    return s;
}

int srv_sched_submit(srv_sched *s, srv_job *j) {
    pthread_mutex_lock(&s->mu);
    if (s->draining || s->q_len == s->p.queue) {
        s->st.jobs_rejected++;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
    s->queue[(s->q_head + s->q_len++) % s->p.queue] = j;
    s->st.queued++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void srv_sched_drain_free(srv_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    if (s->cache && s->p.state_dir)
        fprintf(stderr, "mambac serve: %zu cached states written to %s\n", srv_cache_save_dir(s->cache, s->p.state_dir),
                s->p.state_dir);
    sched_free(s);
}

void srv_sched_get_stats(srv_sched *s, srv_sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}
