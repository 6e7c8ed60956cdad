/* threadpool.c — see threadpool.h. */
#define _GNU_SOURCE
#include "core/threadpool.h"
#include "mambac.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Spin (with pause) about a millisecond before sleeping: decode runs a loop every few
 * tens of microseconds, and a sleeping worker costs a futex wake-up per loop. */
#define SPIN_ROUNDS 30000

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
    atomic_uint_fast64_t generation; /* bumped once per loop */
    atomic_int pending;              /* workers still running the current loop */
    atomic_int sleepers;             /* workers waiting on the condition variable */
    int stop;
    mc_range_fn fn;
    void *arg;
    int64_t n_items, grain;
    int dynamic;                  /* chunks from `next` instead of fixed shares */
    atomic_int_fast64_t next;     /* the next chunk of a dynamic loop */
};

typedef struct worker_arg {
    mc_pool *p;
    int index;
} worker_arg;

static void run_share(mc_pool *p, int t) {
    if (p->dynamic) {
        for (;;) {
            const int64_t b = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed) * p->grain;
            if (b >= p->n_items) return;
            p->fn(p->arg, b, b + p->grain < p->n_items ? b + p->grain : p->n_items, t);
        }
    }
    /* Contiguous ranges of whole grains, as even as possible. */
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
        run_share(p, t);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
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
    atomic_fetch_add(&p->generation, 1);
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
    if (!p || p->n == 1 || n <= grain) {
        if (!dynamic) fn(arg, 0, n, 0);
        else
            for (int64_t b = 0; b < n; b += grain) fn(arg, b, b + grain < n ? b + grain : n, 0);
        return;
    }
    p->fn = fn, p->arg = arg, p->n_items = n, p->grain = grain, p->dynamic = dynamic;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1); /* seq_cst: ordered before reading sleepers */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_share(p, 0);
    for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < SPIN_ROUNDS) cpu_relax();
        else sched_yield();
    }
}

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
