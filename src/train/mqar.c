/* mqar.c — see mqar.h. */
#include "train/mqar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/trainer.h"

mambac_status mc_mqar_check(const mc_mqar *m, mambac_error *err) {
    if (m->seq < 4 || m->seq > (1 << 20) || m->seq % 2 != 0)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "MQAR: the sequence length must be even, 4 to 2^20 (got %d)", m->seq);
    if (m->vocab <= m->seq || m->vocab > (1 << 24))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "MQAR: the vocabulary (%d) must be larger than the sequence (%d), at most 2^24",
                       m->vocab, m->seq);
    if (m->kv < 1 || 4 * (int64_t)m->kv > m->seq || m->kv >= m->vocab / 2)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "MQAR: %d key-value pairs do not fit (at most a quarter of the sequence, %d)",
                       m->kv, m->seq / 4);
    if (!(m->power_a > 0 && m->power_a <= 1)) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "MQAR: power_a must be in (0, 1]");
    return MAMBAC_OK;
}

static double uniform(uint64_t *rng) { return ((double)(mc_rng_next(rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static int32_t below(uint64_t *rng, int32_t n) { return (int32_t)(mc_rng_next(rng) % (uint64_t)n); }

/* k distinct values of [lo, hi) into out, uniformly (rejection against a bitmap). */
static void distinct(uint64_t *rng, int32_t lo, int32_t hi, int32_t k, int32_t *out, uint64_t *bits) {
    const int32_t n = hi - lo;
    memset(bits, 0, (size_t)(n + 63) / 64 * 8);
    for (int32_t i = 0; i < k;) {
        const int32_t v = below(rng, n);
        if (bits[v >> 6] >> (v & 63) & 1) continue;
        bits[v >> 6] |= 1ull << (v & 63);
        out[i++] = lo + v;
    }
}

typedef struct keyed {
    double key;
    int32_t gap;
} keyed;
static int by_key_desc(const void *a, const void *b) {
    const double x = ((const keyed *)a)->key, y = ((const keyed *)b)->key;
    return x < y ? 1 : x > y ? -1 : 0;
}

void mc_mqar_example(const mc_mqar *m, uint64_t seed, int64_t index, int32_t *ids, int32_t *targets) {
    const int32_t V = m->vocab, L = m->seq, K = m->kv, ctx = 2 * K, space = (L - ctx) / 2;
    uint64_t rng = seed ^ ((uint64_t)index * 0xd1342543de82ef95ull + 0x2545f4914f6cdd1dull);
    mc_rng_next(&rng);
    int32_t *keys = malloc((size_t)K * 2 * sizeof(int32_t)), *vals = keys + K;
    uint64_t *bits = malloc((size_t)(V / 2 + 64) / 64 * 8 + 8);
    keyed *g = malloc((size_t)space * sizeof *g);
    if (!keys || !bits || !g) { /* tiny allocations; leave a harmless all-filler example */
        for (int32_t r = 0; r < L; r++) ids[r] = 0, targets[r] = -1;
        free(keys), free(bits), free(g);
        return;
    }
    distinct(&rng, 1, V / 2, K, keys, bits);
    distinct(&rng, V / 2, V, K, vals, bits);
    /* K gaps without replacement, weights i^(a-1): the K largest of log(u) / w
     * (Efraimidis-Spirakis), the law of drawing one at a time and renormalizing */
    for (int32_t i = 0; i < space; i++) {
        const double w = pow((double)(i + 1), m->power_a - 1.0);
        g[i].key = log(uniform(&rng)) / w, g[i].gap = i;
    }
    qsort(g, (size_t)space, sizeof *g, by_key_desc);
    for (int32_t r = 0; r < L; r++) ids[r] = 0, targets[r] = -1;
    for (int32_t j = 0; j < K; j++) ids[2 * j] = keys[j], ids[2 * j + 1] = vals[j];
    for (int32_t j = 0; j < K; j++) {
        const int32_t at = ctx + 2 * g[j].gap;
        ids[at] = keys[j];
        targets[at] = vals[j];
    }
    /* the rest of the query region: random tokens (Zoology's random_non_queries) */
    for (int32_t r = ctx; r < L; r++)
        if (ids[r] == 0) ids[r] = below(&rng, V);
    free(keys), free(bits), free(g);
}
