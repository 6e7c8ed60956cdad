/* bpe.c — byte-pair encoding of one pre-tokenized piece: start from one symbol per
 * byte, repeatedly merge the adjacent pair of lowest rank (leftmost on ties), exactly
 * as HF tokenizers does. Short pieces scan for the best pair (cheap for the usual
 * word); long ones use a heap so a 10 MB "word" stays O(n log n). Results of pieces up
 * to 256 bytes are cached: natural text repeats its words. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

#define CACHE_SLOTS (1u << 16)
#define CACHE_MAX_USED (CACHE_SLOTS / 2)
#define CACHE_MAX_PIECE 256
#define SHORT_PIECE 64

int mc_ids_push(mc_ids *o, int32_t id) {
    if (o->n == o->cap) {
        size_t c = o->cap ? o->cap * 2 : 256;
        int32_t *v = realloc(o->v, c * sizeof *v);
        if (!v) return 0;
        o->v = v;
        o->cap = c;
    }
    o->v[o->n++] = id;
    return 1;
}

/* ---- cache ---------------------------------------------------------------------- */

void mc_bpe_cache_free(mc_bpe_cache *c) {
    free(c->hashes), free(c->key_off), free(c->key_len), free(c->ids_off), free(c->ids_len);
    free(c->keys), free(c->ids);
    memset(c, 0, sizeof *c);
}

static int cache_init(mc_bpe_cache *c) {
    c->mask = CACHE_SLOTS - 1;
    c->hashes = calloc(CACHE_SLOTS, sizeof *c->hashes);
    c->key_off = malloc(CACHE_SLOTS * sizeof *c->key_off);
    c->key_len = malloc(CACHE_SLOTS * sizeof *c->key_len);
    c->ids_off = malloc(CACHE_SLOTS * sizeof *c->ids_off);
    c->ids_len = malloc(CACHE_SLOTS * sizeof *c->ids_len);
    c->keys_cap = CACHE_MAX_USED * 16;
    c->ids_cap = CACHE_MAX_USED * 4;
    c->keys = malloc(c->keys_cap);
    c->ids = malloc(c->ids_cap * sizeof *c->ids);
    if (c->hashes && c->key_off && c->key_len && c->ids_off && c->ids_len && c->keys && c->ids) return 1;
    mc_bpe_cache_free(c);
    return 0;
}

static int cache_get(const mc_bpe_cache *c, uint64_t h, const unsigned char *p, size_t n, mc_ids *out) {
    if (!c->hashes) return 0;
    for (size_t i = h & c->mask; c->hashes[i]; i = (i + 1) & c->mask) {
        if (c->hashes[i] == h && c->key_len[i] == n && memcmp(c->keys + c->key_off[i], p, n) == 0) {
            for (uint32_t k = 0; k < c->ids_len[i]; k++)
                if (!mc_ids_push(out, c->ids[c->ids_off[i] + k])) return -1;
            return 1;
        }
    }
    return 0;
}

static void cache_put(mc_bpe_cache *c, uint64_t h, const unsigned char *p, size_t n, const int32_t *ids, size_t k) {
    if (!c->hashes && !cache_init(c)) return; /* no cache: still correct, just slower */
    if (c->used >= CACHE_MAX_USED || c->keys_used + n > c->keys_cap || c->ids_used + k > c->ids_cap) {
        memset(c->hashes, 0, CACHE_SLOTS * sizeof *c->hashes); /* full: start over */
        c->used = c->keys_used = c->ids_used = 0;
    }
    size_t i = h & c->mask;
    while (c->hashes[i]) i = (i + 1) & c->mask;
    c->hashes[i] = h;
    c->key_off[i] = (uint32_t)c->keys_used, c->key_len[i] = (uint32_t)n;
    c->ids_off[i] = (uint32_t)c->ids_used, c->ids_len[i] = (uint32_t)k;
    memcpy(c->keys + c->keys_used, p, n);
    memcpy(c->ids + c->ids_used, ids, k * sizeof *ids);
    c->keys_used += n;
    c->ids_used += k;
    c->used++;
}

/* ---- merging -------------------------------------------------------------------- */

/* Symbols of a piece as a doubly linked list over the original byte positions. */
typedef struct syms {
    int32_t *id, *prev, *next;
} syms;

static void merge_at(syms *s, int32_t pos, int32_t merged) {
    int32_t r = s->next[pos];
    s->id[pos] = merged;
    s->next[pos] = s->next[r];
    if (s->next[r] >= 0) s->prev[s->next[r]] = pos;
    s->id[r] = -1; /* dead */
}

static void merge_scan(const struct mambac_tokenizer *t, syms *s) {
    for (;;) {
        uint32_t best = UINT32_MAX, rank;
        int32_t best_pos = -1, best_id = -1, merged;
        for (int32_t i = 0; i >= 0 && s->next[i] >= 0; i = s->next[i])
            if (mc_merge_lookup(&t->merges, s->id[i], s->id[s->next[i]], &rank, &merged) && rank < best)
                best = rank, best_pos = i, best_id = merged;
        if (best_pos < 0) return;
        merge_at(s, best_pos, best_id);
    }
}

/* A candidate merge: its rank and the position of its left symbol. Ranks are unique per
 * merge rule, so an entry is current exactly when the pair at pos still has that rank (a
 * side merged away since leaves another pair, or none, there). 8 bytes: a huge word's
 * heap is the largest allocation of an encode. */
typedef struct hitem {
    uint32_t rank;
    int32_t pos;
} hitem;

static int hless(hitem a, hitem b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void hpush(hitem *h, size_t *n, hitem x) {
    size_t i = (*n)++;
    while (i > 0 && hless(x, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

static hitem hpop(hitem *h, size_t *n) {
    hitem top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && hless(h[c + 1], h[c])) c++;
        if (!hless(h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
    return top;
}

/* The merge of the pair starting at pos, if there is one. */
static int pair_at(const struct mambac_tokenizer *t, const syms *s, int32_t pos, uint32_t *rank, int32_t *merged) {
    return pos >= 0 && s->next[pos] >= 0 && mc_merge_lookup(&t->merges, s->id[pos], s->id[s->next[pos]], rank, merged);
}

static void push_pair(const struct mambac_tokenizer *t, const syms *s, hitem *h, size_t *n, int32_t pos) {
    uint32_t rank;
    int32_t merged;
    if (pair_at(t, s, pos, &rank, &merged)) hpush(h, n, (hitem){rank, pos});
}

/* Heap of candidate pairs; stale entries are skipped when they surface. */
static int merge_heap(const struct mambac_tokenizer *t, syms *s, size_t n) {
    hitem *h = malloc(2 * n * sizeof *h + sizeof *h); /* n - 1 pairs, then each merge adds at most 2 and removes 1 */
    if (!h) return 0;
    size_t hn = 0;
    for (int32_t i = 0; i >= 0; i = s->next[i]) push_pair(t, s, h, &hn, i);
    while (hn) {
        const hitem x = hpop(h, &hn);
        uint32_t rank;
        int32_t merged;
        if (!pair_at(t, s, x.pos, &rank, &merged) || rank != x.rank) continue;
        merge_at(s, x.pos, merged);
        push_pair(t, s, h, &hn, s->prev[x.pos]);
        push_pair(t, s, h, &hn, x.pos);
    }
    free(h);
    return 1;
}

int mc_bpe_piece(const mc_encoder *e, const unsigned char *p, size_t n, mc_ids *out) {
    const struct mambac_tokenizer *t = e->t;
    if (n == 0) return 1;
    if (n == 1) return mc_ids_push(out, t->byte_id[p[0]]);
    uint64_t h = 0;
    if (n <= CACHE_MAX_PIECE) {
        h = mc_hash_bytes(p, n);
        int got = cache_get(e->cache, h, p, n, out);
        if (got) return got > 0;
    }
    if (t->ignore_merges) {
        int32_t whole = mc_vocab_lookup(t, p, n);
        if (whole >= 0) return mc_ids_push(out, whole);
    }
    int32_t small[3 * SHORT_PIECE];
    int32_t *buf = n <= SHORT_PIECE ? small : malloc(3 * n * sizeof *buf);
    if (!buf) return 0;
    syms s = {buf, buf + n, buf + 2 * n};
    for (size_t i = 0; i < n; i++) {
        s.id[i] = t->byte_id[p[i]];
        s.prev[i] = (int32_t)i - 1;
        s.next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    int ok = 1;
    if (n <= SHORT_PIECE) merge_scan(t, &s);
    else ok = merge_heap(t, &s, n);
    size_t first = out->n;
    for (int32_t i = 0; ok && i >= 0; i = s.next[i]) ok = mc_ids_push(out, s.id[i]);
    if (ok && n <= CACHE_MAX_PIECE) cache_put(e->cache, h, p, n, out->v + first, out->n - first);
    if (buf != small) free(buf);
    return ok;
}
