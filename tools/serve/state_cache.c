/* state_cache.c — the prefix cache (state_cache.h): a list of entries in recency order,
 * searched linearly (a few hundred entries at most for the budgets people give; each
 * comparison stops at the first differing token). */
#include "serve/state_cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    int32_t *ids;
    size_t n;
    mambac_state *state;
    float *logits; /* or NULL */
    size_t bytes;
    uint64_t used; /* recency tick */
} entry;

struct srv_cache {
    const mambac_model *model;
    size_t budget, bytes, state_bytes, logit_bytes;
    entry *e;
    size_t n, cap;
    uint64_t tick, hits, misses, evictions;
};

srv_cache *srv_cache_new(const mambac_model *model, size_t budget) {
    srv_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->model = model, c->budget = budget;
    c->state_bytes = mambac_state_size_bytes(model);
    c->logit_bytes = (size_t)mambac_model_get_info(model)->n_vocab_rows * sizeof(float);
    return c;
}

static void drop(srv_cache *c, size_t i) {
    entry *x = &c->e[i];
    c->bytes -= x->bytes;
    free(x->ids), free(x->logits);
    mambac_state_free(x->state);
    c->e[i] = c->e[--c->n];
}

void srv_cache_free(srv_cache *c) {
    if (!c) return;
    while (c->n) drop(c, c->n - 1);
    free(c->e);
    free(c);
}

size_t srv_cache_lookup(srv_cache *c, const int32_t *ids, size_t n, mambac_state *dst, float *logits) {
    size_t best = 0, best_i = 0;
    for (size_t i = 0; i < c->n; i++) {
        const entry *x = &c->e[i];
        if (x->n <= best || x->n > n || (x->n == n && !x->logits)) continue;
        if (memcmp(x->ids, ids, x->n * sizeof *ids) == 0) best = x->n, best_i = i;
    }
    if (!best || mambac_state_copy(dst, c->e[best_i].state, NULL) != MAMBAC_OK) {
        c->misses++;
        return 0;
    }
    entry *x = &c->e[best_i];
    if (best == n) memcpy(logits, x->logits, c->logit_bytes);
    x->used = ++c->tick;
    c->hits++;
    return best;
}

void srv_cache_store(srv_cache *c, const int32_t *ids, size_t n, const mambac_state *src, const float *logits) {
    const size_t bytes = c->state_bytes + n * sizeof *ids + (logits ? c->logit_bytes : 0);
    if (!n || bytes > c->budget) return;
    for (size_t i = 0; i < c->n; i++) /* the same prefix again: refreshed */
        if (c->e[i].n == n && memcmp(c->e[i].ids, ids, n * sizeof *ids) == 0) {
            if (logits && !c->e[i].logits) break; /* replaced by the one with logits */
            c->e[i].used = ++c->tick;
            return;
        }
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].n == n && memcmp(c->e[i].ids, ids, n * sizeof *ids) == 0) {
            drop(c, i);
            break;
        }
    while (c->n && c->bytes + bytes > c->budget) { /* least recently used first */
        size_t lru = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[lru].used) lru = i;
        drop(c, lru);
        c->evictions++;
    }
    if (c->n == c->cap) {
        const size_t cap = c->cap ? 2 * c->cap : 16;
        entry *e = realloc(c->e, cap * sizeof *e);
        if (!e) return;
        c->e = e, c->cap = cap;
    }
    entry x = {.n = n, .bytes = bytes, .used = ++c->tick};
    x.ids = malloc(n * sizeof *ids);
    x.logits = logits ? malloc(c->logit_bytes) : NULL;
    if (!x.ids || (logits && !x.logits) || mambac_state_new(c->model, &x.state, NULL) != MAMBAC_OK ||
        mambac_state_copy(x.state, src, NULL) != MAMBAC_OK) {
        free(x.ids), free(x.logits);
        if (x.state) mambac_state_free(x.state);
        return;
    }
    memcpy(x.ids, ids, n * sizeof *ids);
    if (logits) memcpy(x.logits, logits, c->logit_bytes);
    c->e[c->n++] = x;
    c->bytes += bytes;
}

srv_cache_stats srv_cache_get_stats(const srv_cache *c) {
    return (srv_cache_stats){c->n, c->bytes, c->budget, c->hits, c->misses, c->evictions};
}
