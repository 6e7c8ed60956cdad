/* strset.c — see strset.h. */
#include "core/strset.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

int mc_strset_init(mc_strset *set, size_t expected) {
    memset(set, 0, sizeof *set);
    size_t cap = 16;
    while (cap < 2 * expected + 2) cap *= 2;
    set->s = calloc(cap, sizeof *set->s);
    set->len = calloc(cap, sizeof *set->len);
    if (!set->s || !set->len) {
        mc_strset_free(set);
        return 0;
    }
    set->mask = cap - 1;
    return 1;
}

void mc_strset_free(mc_strset *set) {
    free(set->s);
    free(set->len);
    memset(set, 0, sizeof *set);
}

int mc_strset_add(mc_strset *set, const void *s, size_t len) {
    if (2 * (set->n + 1) > set->mask + 1) return 1; /* full beyond its sizing: treat as new (never a false duplicate) */
    for (size_t i = mc_hash_bytes(s, len) & set->mask;; i = (i + 1) & set->mask) {
        set->probes++;
        if (!set->s[i]) {
            set->s[i] = s, set->len[i] = len, set->n++;
            return 1;
        }
        if (set->len[i] == len && memcmp(set->s[i], s, len) == 0) return 0;
    }
}
