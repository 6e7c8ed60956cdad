/* scheduler.h — the server's one evaluation loop: requests (jobs) wait in a bounded
 * queue, up to `parallel` of them run at once, and every step feeds all running ones
 * together through one mambac_eval_batch call (continuous batching: a job joins or
 * leaves at any step; long prompts go in pieces between decode steps, so one long
 * prompt does not stall the others' tokens). Prompts start from the longest cached
 * prefix (state_cache.h). The HTTP threads submit jobs and read what each produces
 * (events) under the job's lock; the scheduler's thread alone touches the model. */
#ifndef MAMBAC_SERVE_SCHEDULER_H
#define MAMBAC_SERVE_SCHEDULER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mambac.h"
#include "serve/api.h"

/* One generated token as the client sees it: the text it released (may be empty) and,
 * when asked, its log-probabilities. */
typedef struct srv_event {
    char *text;
    size_t len;
    srv_token_lp lp;
} srv_event;

typedef enum { SRV_JOB_QUEUED, SRV_JOB_RUNNING, SRV_JOB_DONE } srv_job_phase;

typedef struct srv_job {
    /* set by the submitter, read-only afterwards */
    int32_t *ids;          /* the prompt's tokens (owned) */
    size_t n_ids;
    mambac_sampler_params sp;
    int seed_given;        /* else a fresh seed when the job starts */
    int64_t max_tokens;
    int ignore_eos, want_lp, top_lp, cache_prompt;
    char *stop[SRV_MAX_STOP]; /* n_stop strings (owned) */
    size_t n_stop;
    atomic_int cancelled;  /* the client went away: the scheduler drops the job */

    pthread_mutex_t mu;    /* guards everything below */
    pthread_cond_t cv;     /* signalled on every event and at the end */
    srv_job_phase phase;
    srv_event *ev;
    size_t n_ev, cap_ev;
    const char *finish;    /* "stop" / "length" once done */
    int failed;            /* done with an error: status and message */
    int status;
    char error[512];
    int64_t n_cached, n_generated;
    double t_submit, t_first, t_done; /* seconds (CLOCK_MONOTONIC) */
    int refs;              /* submitter + scheduler */
} srv_job;

/* A job for ids[0..n) (copied) with the request's settings; refs 1 (the submitter's). */
srv_job *srv_job_new(const int32_t *ids, size_t n, const srv_request *req);
/* Drops one reference; the last frees the job. */
void srv_job_release(srv_job *j);

typedef struct srv_sched_params {
    int32_t parallel;      /* jobs running at once */
    int32_t queue;         /* jobs waiting at most beyond those */
    size_t cache_bytes;    /* the prefix cache's budget (0: off) */
    int32_t prefill_piece; /* prompt tokens fed a step, over all prefilling jobs */
    const char *state_dir; /* the cache read from here at the start and written at the end, or NULL */
} srv_sched_params;

typedef struct srv_sched srv_sched;

/* Starts the scheduler's thread on ctx (which it then owns until freed). */
srv_sched *srv_sched_new(const mambac_model *model, mambac_context *ctx, const mambac_tokenizer *tok,
                         const srv_sched_params *p, mambac_error *err);
/* Queues a job (taking a reference): 0, or -1 when the queue is full (503) or the
 * scheduler is draining. */
int srv_sched_submit(srv_sched *s, srv_job *j);
/* Stops taking jobs, finishes every accepted one, then stops the thread and frees. */
void srv_sched_drain_free(srv_sched *s);

/* Counters for /metrics (read under the scheduler's lock). */
#define SRV_HIST_BUCKETS 12
typedef struct srv_histogram {
    double le[SRV_HIST_BUCKETS]; /* upper bounds; +Inf implied */
    uint64_t count[SRV_HIST_BUCKETS + 1];
    double sum;
    uint64_t n;
} srv_histogram;
typedef struct srv_sched_stats {
    uint64_t jobs_done, jobs_failed, jobs_cancelled, jobs_rejected;
    uint64_t prompt_tokens, cached_tokens, generated_tokens, steps, batch_rows;
    int32_t running, queued, parallel;
    size_t cache_entries, cache_bytes;
    uint64_t cache_hits, cache_misses, cache_evictions;
    srv_histogram ttft, latency, batch;
} srv_sched_stats;
void srv_sched_get_stats(srv_sched *s, srv_sched_stats *out);

#endif
