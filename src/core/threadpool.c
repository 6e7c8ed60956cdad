/* threadpool.c — see threadpool.h. */
#define _GNU_SOURCE
#include "core/threadpool.h"
#include "mambac.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Spin (with pause) about a millisecond before sleeping: decode runs a loop every few
 * tens of microseconds, and a sleeping worker costs a futex wake-up per loop. */
#define SPIN_ROUNDS 30000

/* A dynamic loop whose caller, its own chunks done, waited more than STRAGGLE_NS and more
 * than 4x its own time for a worker's chunk had that worker descheduled (its core taken by
 * another process): the pool then runs its dynamic loops on the caller alone for a
 * back-off, doubled at each straggle (up to BACKOFF_MAX_NS) and halved after every
 * CLEAN_LOOPS loops without one. Waiting on a preempted thread costs a scheduler slice
 * (milliseconds), and decode runs hundreds of loops a token: under lasting contention the
 * pool probes with its workers once per back-off, and otherwise runs alone. */
#define STRAGGLE_NS 1000000
#define BACKOFF_MIN_NS 5000000
#define BACKOFF_MAX_NS 100000000
#define CLEAN_LOOPS 1000

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

struct mc_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint_fast64_t generation; /* bumped once per loop: (count << 1) | dynamic */
    atomic_int pending;              /* workers still running the current static loop */
    atomic_int sleepers;             /* workers waiting on the condition variable */
    int stop;
    mc_range_fn fn;
    void *arg;
    int64_t n_items, grain;
    /* A dynamic loop's chunks are claimed from `ticket` = (loop tag << 32) | next chunk;
     * a worker that woke for an earlier loop fails its compare-and-swap, so the loop's
     * fields are read only by threads holding one of its chunks, and the caller waits for
     * the chunks (`done`), not for the workers: one that never woke costs nothing. */
    atomic_uint_fast64_t ticket;
    atomic_int_fast64_t done;
    atomic_int_fast64_t n_chunks; /* atomic: a late worker may read it while the next loop sets it */
    int64_t solo_until, backoff;  /* straggler back-off (above), in now_ns time */
    int64_t clean;                /* dynamic loops since the last straggle or halving */
    int64_t solo_loops;           /* dynamic loops run on the caller alone (mc_pool_solo_loops) */
};

typedef struct worker_arg {
    mc_pool *p;
    int index;
} worker_arg;

#define TICKET_CLOSED 0xffffffffu

/* Runs the chunks of dynamic loop `tag` this thread can claim, until none is left. */
static void run_chunks(mc_pool *p, uint32_t tag, int t) {
    uint64_t cur = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        const uint32_t k = (uint32_t)cur;
        /* n_chunks may belong to a later loop here; the CAS below fails then (the tag moved
         * on, or the caller closed this loop before writing the next one's fields) */
        const int64_t n_chunks = atomic_load_explicit(&p->n_chunks, memory_order_relaxed);
        if ((uint32_t)(cur >> 32) != tag || k == TICKET_CLOSED || (int64_t)k >= n_chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &cur, cur + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        const int64_t b = (int64_t)k * p->grain;
        p->fn(p->arg, b, b + p->grain < p->n_items ? b + p->grain : p->n_items, t);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
        cur = atomic_load_explicit(&p->ticket, memory_order_acquire);
    }
}

/* A static loop's share of thread t: contiguous ranges of whole grains, as even as possible. */
static void run_share(mc_pool *p, int t) {
    int64_t grains = (p->n_items + p->grain - 1) / p->grain;
    int64_t g0 = grains * t / p->n, g1 = grains * (t + 1) / p->n;
    int64_t b = g0 * p->grain, e = g1 * p->grain < p->n_items ? g1 * p->grain : p->n_items;
    if (b < e) p->fn(p->arg, b, e, t);
}

static void *worker(void *varg) {
    worker_arg *wa = varg;
    mc_pool *p = wa->p;
    int t = wa->index;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen && spins < SPIN_ROUNDS) {
            cpu_relax();
            spins++;
        }
        if (g == seen) {
            /* Announce the sleep before checking the generation again: a loop started
             * after this sees sleepers > 0 and broadcasts under the mutex. */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->generation)) == seen && !p->stop) pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (p->stop) return NULL;
        seen = g;
        if (g & 1) {
            run_chunks(p, (uint32_t)(g >> 1), t);
        } else {
            run_share(p, t);
            atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
        }
    }
}

mc_pool *mc_pool_new(int n_threads) {
    if (n_threads < 1) return NULL;
    mc_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (*wa = (worker_arg){p, i}, pthread_create(&p->threads[i], NULL, worker, wa)) != 0) {
            free(wa);
            p->n = i; /* the ones started so far are joined by free */
            mc_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void mc_pool_free(mc_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    atomic_fetch_add(&p->generation, 2);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p);
}

int mc_pool_threads(const mc_pool *p) { return p ? p->n : 1; }

static void pool_run(mc_pool *p, int64_t n, int64_t grain, int dynamic, mc_range_fn fn, void *arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int solo = p && dynamic && p->solo_until && now_ns() < p->solo_until;
    if (solo) p->solo_loops++;
    if (!p || p->n == 1 || n <= grain || solo) {
        if (!dynamic) fn(arg, 0, n, 0);
        else
            for (int64_t b = 0; b < n; b += grain) fn(arg, b, b + grain < n ? b + grain : n, 0);
        return;
    }
    p->fn = fn, p->arg = arg, p->n_items = n, p->grain = grain;
    const uint64_t g = (atomic_load_explicit(&p->generation, memory_order_relaxed) | 1) + 1 + (dynamic ? 1 : 0);
    const uint32_t tag = (uint32_t)(g >> 1);
    if (dynamic) {
        atomic_store_explicit(&p->n_chunks, (n + grain - 1) / grain, memory_order_relaxed);
        atomic_store_explicit(&p->done, 0, memory_order_relaxed);
        atomic_store_explicit(&p->ticket, (uint64_t)tag << 32, memory_order_release);
    } else {
        atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    }
    atomic_store(&p->generation, g); /* seq_cst: ordered before reading sleepers */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    const int64_t t0 = dynamic ? now_ns() : 0;
    if (dynamic) run_chunks(p, tag, 0);
    else run_share(p, 0);
    const int64_t t1 = dynamic ? now_ns() : 0;
    const int64_t n_chunks = dynamic ? atomic_load_explicit(&p->n_chunks, memory_order_relaxed) : 0;
    for (int spins = 0; dynamic ? atomic_load_explicit(&p->done, memory_order_acquire) < n_chunks
                                : atomic_load_explicit(&p->pending, memory_order_acquire) > 0;
         spins++) {
        if (spins < SPIN_ROUNDS) cpu_relax();
        else sched_yield();
    }
    if (dynamic) {
        /* no claim of this loop after this: its fields are rewritten by the next */
        atomic_store_explicit(&p->ticket, ((uint64_t)tag << 32) | TICKET_CLOSED, memory_order_release);
        const int64_t t2 = now_ns(), wait = t2 - t1;
        if (wait > STRAGGLE_NS && wait > 4 * (t1 - t0)) {
            p->backoff = p->backoff ? (2 * p->backoff < BACKOFF_MAX_NS ? 2 * p->backoff : BACKOFF_MAX_NS) : BACKOFF_MIN_NS;
            p->solo_until = t2 + p->backoff;
            p->clean = 0;
        } else if (++p->clean >= CLEAN_LOOPS) {
            p->backoff = p->backoff / 2 < BACKOFF_MIN_NS ? 0 : p->backoff / 2;
            p->clean = 0;
        }
    }
}

int64_t mc_pool_solo_loops(const mc_pool *p) { return p ? p->solo_loops : 0; }

void mc_pool_for(mc_pool *p, int64_t n, int64_t grain, mc_range_fn fn, void *arg) { pool_run(p, n, grain, 0, fn, arg); }

void mc_pool_for_dynamic(mc_pool *p, int64_t n, int64_t grain, mc_range_fn fn, void *arg) {
    pool_run(p, n, grain, 1, fn, arg);
}

int mc_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
    return 1;
}

int mc_threads_for(int requested) {
    const int cpus = mc_cpu_count();
    if (requested <= 0) return cpus;
    const char *over = getenv("MAMBAC_OVERSUBSCRIBE");
    return requested > cpus && !(over && strcmp(over, "1") == 0) ? cpus : requested;
}

int32_t mambac_threads_usable(int32_t requested) { return (int32_t)mc_threads_for((int)requested); }
