/* mqar.h — multi-query associative recall (MQAR), the synthetic recall task of the Zoology
 * benchmark (Arora et al. 2023) that the Mamba-2 paper trains on: a sequence opens with K
 * key-value pairs (keys from the lower half of the vocabulary, values from the upper, all
 * distinct), then the K keys come back in random order at power-law distributed gaps
 * among random filler tokens; at each returning key the model must predict its value.
 * Zoology's generator (multiquery_ar) with its defaults (power_a 0.01, random
 * non-queries), reproduced from its definition with our own seeded generator: examples
 * are drawn from the same distribution, not the same bits as Zoology's numpy draws. */
#ifndef MC_MQAR_H
#define MC_MQAR_H

#include <stdint.h>

#include "mambac.h"

typedef struct mc_mqar {
    int32_t vocab, seq, kv; /* vocabulary V, sequence length L, key-value pairs K */
    double power_a;         /* the gaps' power law: P(gap = i - 1) ~ i^(a - 1), i = 1..(L - 2K) / 2 */
} mc_mqar;

/* Zoology's constraints: L even, V > L, 4 K <= L, K < V / 2, L <= 2^20. */
mambac_status mc_mqar_check(const mc_mqar *m, mambac_error *err);
/* Example `index` of the stream `seed`: ids (L) and targets (L; the value to predict after
 * ids[r], -1 where nothing is asked: K positions have a target). Deterministic. */
void mc_mqar_example(const mc_mqar *m, uint64_t seed, int64_t index, int32_t *ids, int32_t *targets);

#endif
