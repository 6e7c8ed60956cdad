/* strset.h — a set of byte strings (open addressing on mc_hash_bytes), for duplicate
 * checks that must stay linear in the number of strings: the strings are not copied (they
 * must outlive the set). */
#ifndef MC_STRSET_H
#define MC_STRSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct mc_strset {
    const unsigned char **s;
    size_t *len;
    size_t mask, n;
    uint64_t probes; /* slots looked at, over every insert: the work done (tests check it is linear) */
} mc_strset;

/* Room for `expected` strings (the table never fills past half). 0 when out of memory. */
int mc_strset_init(mc_strset *set, size_t expected);
void mc_strset_free(mc_strset *set);
/* Adds the string unless present; returns 1 when added, 0 when already there. */
int mc_strset_add(mc_strset *set, const void *s, size_t len);

#endif
