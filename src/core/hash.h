/* hash.h — the byte-string hash of the open-addressing tables (vocabularies, string sets,
 * tensor names): FNV-1a-like, seeded with the length, never 0. */
#ifndef MC_HASH_H
#define MC_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t mc_hash_bytes(const unsigned char *p, size_t n);

#endif
