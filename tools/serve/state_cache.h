/* state_cache.h — the server's prefix cache: the state of a sequence after a token prefix
 * (a prompt, or a finished turn: prompt + answer), with the logits after its last token,
 * in a memory-bounded LRU. A request whose prompt extends a cached prefix starts from a
 * copy of that state and evaluates only the rest; one equal to a cached prefix evaluates
 * nothing. Used by the scheduler's thread only (no locking); states live wherever the
 * model's backend keeps them. */
#ifndef MAMBAC_SERVE_STATE_CACHE_H
#define MAMBAC_SERVE_STATE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "mambac.h"

typedef struct srv_cache srv_cache;

/* budget: bytes of states, keys and logits kept at most (0: caching off). */
srv_cache *srv_cache_new(const mambac_model *model, size_t budget);
void srv_cache_free(srv_cache *c);

/* The longest entry whose key is a prefix of ids[0..n) (the whole of it only when the
 * entry has logits): its state copied into dst, its logits (n_vocab_rows floats) into
 * logits when the whole prompt matched. Returns the tokens matched (0: none). */
size_t srv_cache_lookup(srv_cache *c, const int32_t *ids, size_t n, mambac_state *dst, float *logits);

/* Keeps a copy of src as the state after ids[0..n) (logits: after its last token, or
 * NULL), evicting the least recently used entries to stay within the budget. An entry
 * larger than the budget is not kept. */
void srv_cache_store(srv_cache *c, const int32_t *ids, size_t n, const mambac_state *src, const float *logits);

/* Persistence (`--state-dir`): every entry written to dir as its own file (NAME.mcsc, the
 * name a hash of its tokens; each written to a temporary name, then renamed), files of
 * entries no longer cached removed; and read back, oldest first, skipping (with a line on
 * stderr) any file that is not an entry of this model. Returns the entries written / read. */
size_t srv_cache_save_dir(srv_cache *c, const char *dir);
size_t srv_cache_load_dir(srv_cache *c, const char *dir);

typedef struct srv_cache_stats {
    size_t entries, bytes, budget;
    uint64_t hits, misses, evictions;
} srv_cache_stats;
srv_cache_stats srv_cache_get_stats(const srv_cache *c);

#endif
