/* tokenizer.h — the loaded tokenizer (HF tokenizer.json, byte-level BPE).
 *
 * Every id has its decoded bytes (the byte-level alphabet undone; added tokens as
 * their content). Encoding = split on added tokens → NFC → GPT-2 pre-tokenizer split →
 * BPE per piece (merges by rank, a bounded cache of recent pieces). */
#ifndef MC_TOKENIZER_H
#define MC_TOKENIZER_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/hash.h"
#include "mambac.h"

typedef struct mc_added_token {
    int32_t id;
    uint32_t off, len; /* content bytes in tok->bytes */
    uint8_t special, normalized, lstrip, rstrip, single_word;
} mc_added_token;

/* An Aho-Corasick automaton over the added tokens' contents *reversed*: run over a text
 * from its end, the state at byte i names, through `out`, the longest added token that
 * starts at i (encode.c), so leftmost-longest splitting takes time linear in the text
 * (a forward trie walked from every position takes text length x longest token). */
typedef struct mc_trie_node {
    int32_t first_child, next_sibling;
    int32_t token;     /* index into added[] whose reversed content ends here, or -1 */
    int32_t fail;      /* the longest proper suffix of this node's string that is a node */
    int32_t out;       /* the first node on the fail chain (this one first) with a token, or -1 */
    unsigned char byte;
} mc_trie_node;

/* Open-addressing hash tables (power-of-two sizes, linear probing). */
typedef struct mc_vocab_map {  /* token bytes -> id (model vocab only) */
    int32_t *slots;            /* id or -1 */
    size_t mask;
} mc_vocab_map;

typedef struct mc_merge_map {  /* (left id, right id) -> (rank, merged id) */
    uint64_t *keys;            /* left << 32 | right, or UINT64_MAX */
    uint64_t *vals;            /* rank << 32 | merged id */
    size_t mask;
} mc_merge_map;

typedef struct mc_bpe_cache {  /* piece bytes -> ids; cleared when full */
    uint64_t *hashes;          /* 0 = empty */
    uint32_t *key_off, *key_len, *ids_off, *ids_len;
    size_t mask, used;
    unsigned char *keys; size_t keys_used, keys_cap;
    int32_t *ids; size_t ids_used, ids_cap;
} mc_bpe_cache;

struct mambac_tokenizer {
    int32_t n_ids;              /* 1 + largest id */
    unsigned char *bytes;       /* decoded bytes of every id, then added-token contents */
    size_t bytes_len;
    uint32_t *tok_off, *tok_len;/* per id; tok_len = UINT32_MAX for an unused id */
    uint8_t *is_special;        /* per id */
    int32_t byte_id[256];       /* id of each single byte, -1 when the vocab has none */
    int missing_bytes;          /* bytes without an id: encoded as U+FFFD */
    mc_vocab_map vocab;
    mc_merge_map merges;
    int ignore_merges;
    mc_added_token *added;
    size_t n_added;
    mc_trie_node *trie_raw, *trie_norm; /* non-normalized / normalized added tokens */
    size_t n_trie_raw, n_trie_norm;
    int nfc;
    int add_prefix_space;
    int use_regex;
    mc_bpe_cache cache;         /* the handle's cache of recent pieces: one mambac_tokenize
                                 * at a time uses it (cache_busy), others a cache of their own */
    atomic_int cache_busy;
};

/* Parses tokenizer.json text; `name` labels messages (load.c; also the fuzz entry). */
/* As mc_tokenizer_from_json; lenient_merges skips merges whose tokens or result are
 * not in the vocab instead of refusing the file (llama.cpp cuts GGUF vocabularies to
 * the model's row count but keeps every merge). */
mambac_status mc_tokenizer_from_json_ex(const char *text, size_t len, const char *name, int lenient_merges,
                                        mambac_tokenizer **out, mambac_error *err);
/* From a GGUF file's metadata (gguf_vocab.c). */
mambac_status mc_tokenizer_from_gguf(const char *path, mambac_tokenizer **out, mambac_error *err);
mambac_status mc_tokenizer_from_gguf_bytes(const void *data, size_t size, const char *path, mambac_tokenizer **out,
                                           mambac_error *err);
mambac_status mc_tokenizer_from_json(const char *text, size_t len, const char *name, mambac_tokenizer **out,
                                     mambac_error *err);

/* Loader internals shared with the encoder (load.c). */
int32_t mc_vocab_lookup(const struct mambac_tokenizer *t, const unsigned char *p, size_t n);
int mc_merge_lookup(const mc_merge_map *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged);

/* BPE of one pre-tokenized piece, appending ids (bpe.c). */
typedef struct mc_ids {
    int32_t *v;
    size_t n, cap;
} mc_ids;
int mc_ids_push(mc_ids *o, int32_t id);
/* One encode call: the immutable tokenizer and the cache this call may write. */
typedef struct mc_encoder {
    const struct mambac_tokenizer *t;
    mc_bpe_cache *cache;
} mc_encoder;
int mc_bpe_piece(const mc_encoder *e, const unsigned char *p, size_t n, mc_ids *out);
void mc_bpe_cache_free(mc_bpe_cache *c);

#endif
