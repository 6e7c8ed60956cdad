/* encode.c — text → ids and ids → bytes, following HF tokenizers' pipeline:
 *   1. split the raw text on added tokens whose `normalized` is false (leftmost-longest);
 *   2. NFC the pieces in between, then split them on the normalized added tokens;
 *   3. the GPT-2 pattern  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      cuts what remains into pieces (hand-written below, same leftmost-first semantics);
 *   4. byte-level BPE per piece.
 * Invalid UTF-8 is accepted: such bytes are left as they are by NFC and count as
 * "other" characters for the split, and byte-level BPE encodes any byte. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

/* ---- added tokens --------------------------------------------------------------- */

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}
static int is_space_byte(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13); }

/* longest[i] = the index in t->added of the longest added token that starts at s[i]
 * (and ends within s), or -1: the reversed automaton (tokenizer.h) run from the end. */
static void longest_from(const mc_trie_node *v, const unsigned char *s, size_t n, int32_t *longest) {
    int32_t node = 0;
    for (size_t i = n; i-- > 0;) {
        int32_t c;
        for (;;) {
            c = v[node].first_child;
            while (c >= 0 && v[c].byte != s[i]) c = v[c].next_sibling;
            if (c >= 0 || node == 0) break;
            node = v[node].fail;
        }
        node = c >= 0 ? c : 0;
        longest[i] = v[node].out >= 0 ? v[v[node].out].token : -1;
    }
}

typedef mambac_status (*segment_fn)(const mc_encoder *e, const unsigned char *s, size_t n, mc_ids *out);

/* Splits s on the automaton's tokens: ids for the tokens, `rest` for what lies between.
 * Leftmost-longest: at each position the longest token starting there (a single_word one
 * that touches a word character is passed over, and the scan moves on by one byte). */
static mambac_status split_added(const mc_encoder *e, const mc_trie_node *trie, const unsigned char *s, size_t n,
                                 segment_fn rest, mc_ids *out) {
    const struct mambac_tokenizer *t = e->t;
    if (trie[0].first_child < 0 || n == 0) return rest(e, s, n, out);
    int32_t *longest = malloc(n * sizeof *longest);
    if (!longest) return MAMBAC_ERR_NOMEM;
    longest_from(trie, s, n, longest);
    mambac_status st = MAMBAC_OK;
    size_t seg = 0; /* start of the text not yet handed on */
    for (size_t i = 0; i < n && st == MAMBAC_OK;) {
        const mc_added_token *a = longest[i] >= 0 ? &t->added[longest[i]] : NULL;
        const size_t end = a ? i + a->len : i;
        if (a && a->single_word && ((i > 0 && is_word_byte(s[i - 1])) || (end < n && is_word_byte(s[end])))) a = NULL;
        if (!a) {
            i++;
            continue;
        }
        size_t from = i, to = end;
        if (a->lstrip)
            while (from > seg && is_space_byte(s[from - 1])) from--;
        if (a->rstrip)
            while (to < n && is_space_byte(s[to])) to++;
        if (from > seg) st = rest(e, s + seg, from - seg, out);
        if (st == MAMBAC_OK && !mc_ids_push(out, a->id)) st = MAMBAC_ERR_NOMEM;
        seg = i = to;
    }
    free(longest);
    if (st != MAMBAC_OK) return st;
    return seg < n ? rest(e, s + seg, n - seg, out) : MAMBAC_OK;
}

/* ---- the GPT-2 split ---------------------------------------------------------------- */

static int class_at(const unsigned char *s, size_t n, size_t i, int *len) {
    int32_t cp;
    if (s[i] < 0x80) {
        *len = 1;
        return mc_char_class(s[i]);
    }
    *len = mc_utf8_decode(s + i, n - i, &cp);
    return mc_char_class(cp);
}

/* End of the run of characters of class `cls` starting at i. */
static size_t run_end(const unsigned char *s, size_t n, size_t i, int cls) {
    while (i < n) {
        int l;
        if (class_at(s, n, i, &l) != cls) break;
        i += (size_t)l;
    }
    return i;
}

static mambac_status split_pattern(const mc_encoder *e, const unsigned char *s, size_t n, mc_ids *out) {
    if (!e->t->use_regex) return mc_bpe_piece(e, s, n, out) ? MAMBAC_OK : MAMBAC_ERR_NOMEM;
    for (size_t i = 0; i < n;) {
        size_t end;
        if (s[i] == '\'' && i + 1 < n) {
            unsigned char a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
            if (a == 's' || a == 't' || a == 'm' || a == 'd') end = i + 2;
            else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) end = i + 3;
            else end = 0;
            if (end) {
                if (!mc_bpe_piece(e, s + i, end - i, out)) return MAMBAC_ERR_NOMEM;
                i = end;
                continue;
            }
        }
        int l;
        int cls = class_at(s, n, i, &l);
        size_t body = i;
        if (s[i] == ' ' && i + 1 < n) { /* ' ?X+': a space joins the run that follows it */
            int l2, c2 = class_at(s, n, i + 1, &l2);
            if (c2 != MC_CC_SPACE) cls = c2, body = i + 1;
        }
        if (cls != MC_CC_SPACE) {
            end = run_end(s, n, body, cls);
        } else {
            /* \s+(?!\S) then \s+: a whitespace run leaves its last character to the
             * next piece when a non-space follows, unless the run is one character. */
            size_t j = i, last = i;
            while (j < n) {
                int lj;
                if (class_at(s, n, j, &lj) != MC_CC_SPACE) break;
                last = j;
                j += (size_t)lj;
            }
            end = j == n || last == i ? j : last;
        }
        if (!mc_bpe_piece(e, s + i, end - i, out)) return MAMBAC_ERR_NOMEM;
        i = end;
    }
    return MAMBAC_OK;
}

/* What the pre-tokenizer sees: one split between added tokens. ByteLevel's
 * add_prefix_space puts a space before each non-empty split not starting with one. */
static mambac_status pretokenized(const mc_encoder *e, const unsigned char *s, size_t n, mc_ids *out) {
    if (!e->t->add_prefix_space || n == 0 || s[0] == ' ') return split_pattern(e, s, n, out);
    unsigned char *p = malloc(n + 1);
    if (!p) return MAMBAC_ERR_NOMEM;
    p[0] = ' ';
    memcpy(p + 1, s, n);
    mambac_status st = split_pattern(e, p, n + 1, out);
    free(p);
    return st;
}

/* A segment between raw added tokens: NFC, then the normalized added tokens, then the
 * pre-tokenizer on what lies between them. */
static mambac_status normalized_segment(const mc_encoder *e, const unsigned char *s, size_t n, mc_ids *out) {
    const struct mambac_tokenizer *t = e->t;
    unsigned char *norm = NULL;
    size_t nn = n;
    if (t->nfc) {
        norm = mc_nfc(s, n, &nn);
        if (!norm) return MAMBAC_ERR_NOMEM;
        s = norm;
    }
    mambac_status st = split_added(e, t->trie_norm, s, nn, pretokenized, out);
    free(norm);
    return st;
}

mambac_status mambac_tokenize(mambac_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n_ids,
                              mambac_error *err) {
    *ids = NULL;
    *n_ids = 0;
    mc_ids out = {0};
    unsigned char *subst = NULL;
    if (t->missing_bytes) { /* bytes the vocabulary cannot express become U+FFFD */
        size_t bad = 0;
        for (size_t i = 0; i < len; i++) bad += t->byte_id[(unsigned char)text[i]] < 0;
        if (bad) {
            subst = malloc(len + 2 * bad + 1);
            if (!subst) return mc_fail(err, MAMBAC_ERR_NOMEM, "tokenize: out of memory");
            size_t k = 0;
            for (size_t i = 0; i < len; i++) {
                if (t->byte_id[(unsigned char)text[i]] >= 0) subst[k++] = (unsigned char)text[i];
                else subst[k++] = 0xef, subst[k++] = 0xbf, subst[k++] = 0xbd;
            }
            text = (const char *)subst;
            len = k;
        }
    }
    /* the handle's cache when no other call holds it, else one of this call's own */
    int expected = 0;
    const int shared = atomic_compare_exchange_strong(&t->cache_busy, &expected, 1);
    mc_bpe_cache own = {0};
    const mc_encoder e = {t, shared ? &t->cache : &own};
    mambac_status st = split_added(&e, t->trie_raw, (const unsigned char *)text, len, normalized_segment, &out);
    if (shared) atomic_store(&t->cache_busy, 0);
    else mc_bpe_cache_free(&own);
    free(subst);
    if (st != MAMBAC_OK) {
        free(out.v);
        return mc_fail(err, st, "tokenize: out of memory");
    }
    *ids = out.v;
    *n_ids = out.n;
    return MAMBAC_OK;
}

mambac_status mambac_detokenize(const mambac_tokenizer *t, const int32_t *ids, size_t n, char **out, size_t *len,
                                mambac_error *err) {
    *out = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        if (!mambac_token_bytes(t, ids[i], &l))
            return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "token id %d at position %zu is not in the tokenizer (%d ids)", ids[i],
                           i, t->n_ids);
        total += l;
    }
    char *buf = malloc(total + 1);
    if (!buf) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *b = mambac_token_bytes(t, ids[i], &l);
        memcpy(buf + k, b, l);
        k += l;
    }
    buf[k] = 0;
    *out = buf;
    *len = k;
    return MAMBAC_OK;
}

size_t mambac_utf8_complete_prefix(const char *s, size_t n) { return mc_utf8_complete_prefix((const unsigned char *)s, n); }

void mambac_free(void *p) { free(p); }
