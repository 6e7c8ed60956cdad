/* threadpool.h — a fixed pool of threads for data-parallel loops. The calling thread
 * takes part, so a pool of n threads starts n - 1 workers. Work is split statically
 * into n contiguous ranges (aligned to a grain), so every output element is computed
 * by exactly one thread in the same order whatever the thread count: results do not
 * depend on -t. Workers spin briefly after a loop (decode runs hundreds of short loops
 * per token) and then sleep. One loop at a time per pool: a context owns its pool.
 * mc_pool_for_dynamic hands out chunks from a shared counter instead: threads that run
 * faster (the other core busy with someone else's work) take more chunks, and the caller
 * waits for the chunks, not for the workers (one that has not woken yet costs nothing).
 * Each chunk is still computed whole by one thread, so results stay independent of -t
 * where a chunk's result does not depend on which thread computes it. */
#ifndef MC_THREADPOOL_H
#define MC_THREADPOOL_H

#include <stdint.h>

typedef struct mc_pool mc_pool;

/* fn processes items [begin, end) as thread `thread` (0 = the caller). */
typedef void (*mc_range_fn)(void *arg, int64_t begin, int64_t end, int thread);

/* n_threads >= 1; returns NULL on failure. */
mc_pool *mc_pool_new(int n_threads);
void mc_pool_free(mc_pool *p);
int mc_pool_threads(const mc_pool *p);
/* Runs fn over [0, n) split into contiguous ranges whose starts are multiples of grain;
 * returns when all are done. A NULL pool runs fn(arg, 0, n, 0) inline. */
void mc_pool_for(mc_pool *p, int64_t n, int64_t grain, mc_range_fn fn, void *arg);
/* Runs fn over [0, n) in chunks [i * grain, min((i + 1) * grain, n)), each taken by
 * whichever thread asks next; returns when all are done. After a loop in which the
 * caller waited long on a worker (descheduled: another process took its core), the
 * following dynamic loops run on the caller alone for a few milliseconds (longer while
 * it persists; threadpool.c), so a busy machine costs a thread's share, not a scheduler
 * slice per loop. */
void mc_pool_for_dynamic(mc_pool *p, int64_t n, int64_t grain, mc_range_fn fn, void *arg);
/* Dynamic loops this pool has run on the caller alone (the back-off above). */
int64_t mc_pool_solo_loops(const mc_pool *p);

/* Number of CPUs this process may use. */
int mc_cpu_count(void);
/* The threads to run for a request (0 = all): at most mc_cpu_count(), since more stall
 * every statically split loop on a descheduled thread (a cliff, not a slope), unless
 * MAMBAC_OVERSUBSCRIBE=1 (tests of the splits on small machines). */
int mc_threads_for(int requested);

#endif
