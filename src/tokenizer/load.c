/* load.c — reading an HF tokenizer.json (byte-level BPE: GPT-2, GPT-NeoX, and the
 * byte-level files mambac writes for byte models) into struct mambac_tokenizer.
 * Anything the encoder would not reproduce exactly (other models, normalizers,
 * pre-tokenizers, post-processors that add tokens) is refused by name. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/file.h"
#include "io/json.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#define MAX_TOKENIZER_BYTES (256u << 20)
#define MAX_IDS (1 << 24)

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int32_t mc_vocab_lookup(const struct mambac_tokenizer *t, const unsigned char *p, size_t n) {
    const mc_vocab_map *m = &t->vocab;
    for (size_t i = mc_hash_bytes(p, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slots[i];
        if (id < 0) return -1;
        if (t->tok_len[id] == n && memcmp(t->bytes + t->tok_off[id], p, n) == 0) return id;
    }
}

static void vocab_insert(struct mambac_tokenizer *t, int32_t id) {
    mc_vocab_map *m = &t->vocab;
    const unsigned char *p = t->bytes + t->tok_off[id];
    size_t n = t->tok_len[id];
    for (size_t i = mc_hash_bytes(p, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t o = m->slots[i];
        if (o < 0) { m->slots[i] = id; return; }
        if (t->tok_len[o] == n && memcmp(t->bytes + t->tok_off[o], p, n) == 0) return; /* first wins */
    }
}

static uint64_t mix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

int mc_merge_lookup(const mc_merge_map *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = mix64(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == UINT64_MAX) return 0;
        if (m->keys[i] == key) {
            *rank = (uint32_t)(m->vals[i] >> 32);
            *merged = (int32_t)(uint32_t)m->vals[i];
            return 1;
        }
    }
}

/* Inserts unless present (an earlier merge of the same pair keeps its lower rank). */
static void merge_insert(mc_merge_map *m, int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = mix64(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == key) return;
        if (m->keys[i] == UINT64_MAX) {
            m->keys[i] = key;
            m->vals[i] = (uint64_t)rank << 32 | (uint32_t)merged;
            return;
        }
    }
}

/* Decoded bytes of a token string (HF's ByteLevel decoder): the byte-level alphabet
 * mapped back to bytes when every character belongs to it, else the UTF-8 as is.
 * Writes into out (room for strlen(s) bytes); returns the length. */
static size_t token_bytes(const char *s, const int16_t *inv, unsigned char *out) {
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int l = mc_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int b = cp >= 0 && cp < 324 ? inv[cp] : -1;
        if (b < 0) {
            memcpy(out, s, n);
            return n;
        }
        out[k++] = (unsigned char)b;
        i += (size_t)l;
    }
    return k;
}

typedef struct loader {
    struct mambac_tokenizer *t;
    const char *path;
    mambac_error *err;
    int16_t inv[324]; /* byte-level code point -> byte */
    size_t bytes_cap;
    int lenient_merges; /* skip merges outside the vocab (GGUF vocabularies cut to the model's size) */
} loader;

/* Makes room for n more bytes in t->bytes. */
static mambac_status reserve(loader *L, size_t n) {
    struct mambac_tokenizer *t = L->t;
    if (t->bytes && t->bytes_len + n <= L->bytes_cap) return MAMBAC_OK; /* never NULL: an empty token still points somewhere */
    size_t c = L->bytes_cap ? L->bytes_cap : 1 << 16;
    while (c < t->bytes_len + n) c *= 2;
    unsigned char *b = realloc(t->bytes, c);
    if (!b) return mc_fail(L->err, MAMBAC_ERR_NOMEM, "out of memory");
    t->bytes = b;
    L->bytes_cap = c;
    return MAMBAC_OK;
}

/* Sets the decoded bytes of id from token string s. */
static mambac_status set_token(loader *L, int32_t id, const char *s) {
    struct mambac_tokenizer *t = L->t;
    mambac_status st = reserve(L, strlen(s));
    if (st != MAMBAC_OK) return st;
    t->tok_off[id] = (uint32_t)t->bytes_len;
    t->tok_len[id] = (uint32_t)token_bytes(s, L->inv, t->bytes + t->bytes_len);
    t->bytes_len += t->tok_len[id];
    return MAMBAC_OK;
}

static mambac_status check_components(loader *L, const cJSON *root) {
    struct mambac_tokenizer *t = L->t;
    const char *path = L->path;
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm)) {
        const char *type = mc_json_get_str(norm, "type");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(norm, "normalizers");
        if (type && strcmp(type, "Sequence") == 0 && cJSON_IsArray(seq) && cJSON_GetArraySize(seq) == 1)
            type = mc_json_get_str(seq->child, "type");
        if (!type || strcmp(type, "NFC") != 0)
            return mc_fail(L->err, MAMBAC_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported (only NFC or none)", path,
                           type ? type : "?");
        t->nfc = 1;
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const char *ptype = pre ? mc_json_get_str(pre, "type") : NULL;
    if (ptype && strcmp(ptype, "Sequence") == 0) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
        pre = cJSON_IsArray(seq) && cJSON_GetArraySize(seq) == 1 ? seq->child : NULL;
        ptype = pre ? mc_json_get_str(pre, "type") : NULL;
    }
    if (!ptype || strcmp(ptype, "ByteLevel") != 0)
        return mc_fail(L->err, MAMBAC_ERR_UNSUPPORTED, "%s: pre_tokenizer '%s' is not supported (only ByteLevel)", path,
                       ptype ? ptype : "none");
    t->use_regex = 1;
    if (mc_json_get_bool(pre, "add_prefix_space", &t->add_prefix_space) < 0 ||
        mc_json_get_bool(pre, "use_regex", &t->use_regex) < 0)
        return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: pre_tokenizer flags must be true or false", path);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const char *dtype = dec && !cJSON_IsNull(dec) ? mc_json_get_str(dec, "type") : "ByteLevel";
    if (!dtype || strcmp(dtype, "ByteLevel") != 0)
        return mc_fail(L->err, MAMBAC_ERR_UNSUPPORTED, "%s: decoder '%s' is not supported (only ByteLevel)", path,
                       dtype ? dtype : "?");
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    const char *post_type = post && !cJSON_IsNull(post) ? mc_json_get_str(post, "type") : "ByteLevel";
    if (!post_type || strcmp(post_type, "ByteLevel") != 0)
        return mc_fail(L->err, MAMBAC_ERR_UNSUPPORTED,
                       "%s: post_processor '%s' is not supported (it would add tokens mambac does not add)", path,
                       post_type ? post_type : "?");
    return MAMBAC_OK;
}

static mambac_status read_model(loader *L, const cJSON *model, const cJSON *added) {
    struct mambac_tokenizer *t = L->t;
    const char *path = L->path;
    const char *type = mc_json_get_str(model, "type");
    if (!type || strcmp(type, "BPE") != 0)
        return mc_fail(L->err, MAMBAC_ERR_UNSUPPORTED, "%s: tokenizer model '%s' is not supported (only BPE)", path,
                       type ? type : "?");
    static const char *unsupported[] = {"dropout", "continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(model, unsupported[i]);
        if (it && !cJSON_IsNull(it) && !(cJSON_IsString(it) && !*it->valuestring)) /* "" = off (GPT-2's file) */
            return mc_fail(L->err, MAMBAC_ERR_UNSUPPORTED, "%s: BPE option '%s' is not supported", path, unsupported[i]);
    }
    int byte_fallback = 0;
    mc_json_get_bool(model, "byte_fallback", &byte_fallback);
    if (byte_fallback) return mc_fail(L->err, MAMBAC_ERR_UNSUPPORTED, "%s: BPE byte_fallback is not supported", path);
    mc_json_get_bool(model, "ignore_merges", &t->ignore_merges);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: model.vocab is missing or not an object", path);
    if (!cJSON_IsArray(merges)) return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: model.merges is missing or not an array", path);

    /* Ids: the largest over vocab and added tokens. */
    long long max_id = -1;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= MAX_IDS || v->valuedouble != (int)v->valuedouble)
            return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: vocab entry '%.60s' has an invalid id", path, v->string);
        if (v->valueint > max_id) max_id = v->valueint;
    }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        long long id;
        if (mc_json_get_int(a, "id", &id) != 1 || id < 0 || id >= MAX_IDS || !mc_json_get_str(a, "content"))
            return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: added_tokens entry without a valid id and content", path);
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: empty vocabulary", path);
    t->n_ids = (int32_t)max_id + 1;
    t->tok_off = calloc((size_t)t->n_ids, sizeof *t->tok_off);
    t->tok_len = malloc((size_t)t->n_ids * sizeof *t->tok_len);
    t->is_special = calloc((size_t)t->n_ids, 1);
    size_t nv = (size_t)cJSON_GetArraySize(vocab), vcap = pow2_at_least(nv * 2 + 2);
    t->vocab.slots = malloc(vcap * sizeof *t->vocab.slots);
    t->vocab.mask = vcap - 1;
    if (!t->tok_off || !t->tok_len || !t->is_special || !t->vocab.slots) return mc_fail(L->err, MAMBAC_ERR_NOMEM, "out of memory");
    memset(t->tok_len, 0xff, (size_t)t->n_ids * sizeof *t->tok_len);
    memset(t->vocab.slots, 0xff, vcap * sizeof *t->vocab.slots);
    mambac_status st;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        if (t->tok_len[v->valueint] != UINT32_MAX)
            return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: vocab id %d is used twice ('%.60s')", path, v->valueint, v->string);
        if ((st = set_token(L, v->valueint, v->string)) != MAMBAC_OK) return st;
        vocab_insert(t, v->valueint);
    }
    /* Bytes without a token (GPT-NeoX has none for C0, C1, F5..FF, which never occur in
     * valid UTF-8) are replaced by U+FFFD when encoding; that one must be encodable. */
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = mc_vocab_lookup(t, &c, 1);
        t->missing_bytes += t->byte_id[b] < 0;
    }
    if (t->missing_bytes && (t->byte_id[0xef] < 0 || t->byte_id[0xbf] < 0 || t->byte_id[0xbd] < 0 || t->missing_bytes > 128))
        return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: vocab lacks byte-level tokens for %d of the 256 bytes", path,
                       t->missing_bytes);

    size_t nm = (size_t)cJSON_GetArraySize(merges), mcap = pow2_at_least(nm * 2 + 2);
    t->merges.keys = malloc(mcap * sizeof *t->merges.keys);
    t->merges.vals = malloc(mcap * sizeof *t->merges.vals);
    t->merges.mask = mcap - 1;
    if (!t->merges.keys || !t->merges.vals) return mc_fail(L->err, MAMBAC_ERR_NOMEM, "out of memory");
    memset(t->merges.keys, 0xff, mcap * sizeof *t->merges.keys);
    uint32_t rank = 0;
    unsigned char *buf = malloc(1 << 16);
    if (!buf) return mc_fail(L->err, MAMBAC_ERR_NOMEM, "out of memory");
    st = MAMBAC_OK;
    for (const cJSON *m = merges->child; m && st == MAMBAC_OK; m = m->next, rank++) {
        char pair[2][1024];
        if (cJSON_IsString(m)) { /* "a b" */
            const char *sp = strchr(m->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' ') || (size_t)(sp - m->valuestring) >= sizeof pair[0] || strlen(sp + 1) >= sizeof pair[1]) {
                st = mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: merge %u ('%.60s') is not two tokens", path, rank, m->valuestring);
                break;
            }
            memcpy(pair[0], m->valuestring, (size_t)(sp - m->valuestring));
            pair[0][sp - m->valuestring] = 0;
            strcpy(pair[1], sp + 1);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next) && strlen(m->child->valuestring) < 1024 &&
                   strlen(m->child->next->valuestring) < 1024) { /* ["a", "b"] */
            strcpy(pair[0], m->child->valuestring);
            strcpy(pair[1], m->child->next->valuestring);
        } else {
            st = mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: merge %u is not a pair of tokens", path, rank);
            break;
        }
        int32_t ids[2];
        size_t la = token_bytes(pair[0], L->inv, buf);
        ids[0] = mc_vocab_lookup(t, buf, la);
        size_t lb = token_bytes(pair[1], L->inv, buf + la);
        ids[1] = mc_vocab_lookup(t, buf + la, lb);
        if (L->lenient_merges && (ids[0] < 0 || ids[1] < 0 || mc_vocab_lookup(t, buf, la + lb) < 0)) continue;
        for (int k = 0; k < 2 && st == MAMBAC_OK; k++)
            if (ids[k] < 0)
                st = mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: merge %u names unknown token '%.60s'", path, rank, pair[k]);
        int32_t merged = st == MAMBAC_OK ? mc_vocab_lookup(t, buf, la + lb) : -1;
        if (st == MAMBAC_OK && merged < 0)
            st = mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: merge %u ('%.60s' + '%.60s') makes a token that is not in the vocab",
                         path, rank, pair[0], pair[1]);
        if (st == MAMBAC_OK) merge_insert(&t->merges, ids[0], ids[1], rank, merged);
    }
    free(buf);
    return st;
}

static int32_t trie_child(const mc_trie_node *v, int32_t node, unsigned char b) {
    int32_t c = v[node].first_child;
    while (c >= 0 && v[c].byte != b) c = v[c].next_sibling;
    return c;
}

/* The automaton (tokenizer.h mc_trie_node) over the reversed contents of the added tokens
 * with normalized == want: the trie, then fail and out links breadth first. */
static mambac_status build_trie(loader *L, int want_normalized, mc_trie_node **out, size_t *nout) {
    struct mambac_tokenizer *t = L->t;
    size_t cap = 1, n = 1;
    for (size_t i = 0; i < t->n_added; i++) cap += t->added[i].len;
    mc_trie_node *v = malloc(cap * sizeof *v);
    int32_t *queue = malloc(cap * sizeof *queue);
    if (!v || !queue) {
        free(v), free(queue);
        return mc_fail(L->err, MAMBAC_ERR_NOMEM, "out of memory");
    }
    v[0] = (mc_trie_node){-1, -1, -1, 0, -1, 0};
    for (size_t i = 0; i < t->n_added; i++) {
        const mc_added_token *a = &t->added[i];
        if (a->normalized != want_normalized || a->len == 0) continue;
        int32_t node = 0;
        for (uint32_t k = 0; k < a->len; k++) {
            const unsigned char b = t->bytes[a->off + a->len - 1 - k];
            int32_t c = trie_child(v, node, b);
            if (c < 0) {
                c = (int32_t)n++;
                v[c] = (mc_trie_node){-1, v[node].first_child, -1, 0, -1, b};
                v[node].first_child = c;
            }
            node = c;
        }
        if (v[node].token < 0) v[node].token = (int32_t)i; /* the first of equal contents */
    }
    size_t head = 0, tail = 0;
    for (int32_t c = v[0].first_child; c >= 0; c = v[c].next_sibling) v[c].fail = 0, queue[tail++] = c;
    while (head < tail) {
        const int32_t u = queue[head++];
        v[u].out = v[u].token >= 0 ? u : v[v[u].fail].out;
        for (int32_t c = v[u].first_child; c >= 0; c = v[c].next_sibling) {
            int32_t f = v[u].fail, g;
            while ((g = trie_child(v, f, v[c].byte)) < 0 && f != 0) f = v[f].fail;
            v[c].fail = g >= 0 ? g : 0;
            queue[tail++] = c;
        }
    }
    free(queue);
    *out = v;
    *nout = n;
    return MAMBAC_OK;
}

static mambac_status read_added(loader *L, const cJSON *added) {
    struct mambac_tokenizer *t = L->t;
    size_t n = added ? (size_t)cJSON_GetArraySize(added) : 0;
    t->added = calloc(n + 1, sizeof *t->added);
    if (!t->added) return mc_fail(L->err, MAMBAC_ERR_NOMEM, "out of memory");
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        mc_added_token *x = &t->added[t->n_added++];
        long long id;
        mc_json_get_int(a, "id", &id);
        x->id = (int32_t)id;
        int flags[5] = {0, 1, 0, 0, 0};
        static const char *names[5] = {"special", "normalized", "lstrip", "rstrip", "single_word"};
        for (int k = 0; k < 5; k++)
            if (mc_json_get_bool(a, names[k], &flags[k]) < 0)
                return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: added token %d: '%s' must be true or false", L->path, x->id, names[k]);
        x->special = (uint8_t)flags[0], x->normalized = (uint8_t)flags[1], x->lstrip = (uint8_t)flags[2];
        x->rstrip = (uint8_t)flags[3], x->single_word = (uint8_t)flags[4];
        const char *content = mc_json_get_str(a, "content");
        if (!*content) return mc_fail(L->err, MAMBAC_ERR_FORMAT, "%s: added token %d has empty content", L->path, x->id);
        /* The id decodes like any token (HF runs added tokens through the decoder too). */
        mambac_status st = set_token(L, x->id, content);
        if (st != MAMBAC_OK) return st;
        t->is_special[x->id] = x->special;
        /* Matching uses the content's own UTF-8, stored after the decoded bytes. */
        size_t cl = strlen(content);
        if ((st = reserve(L, cl)) != MAMBAC_OK) return st;
        memcpy(t->bytes + t->bytes_len, content, cl);
        x->off = (uint32_t)t->bytes_len;
        x->len = (uint32_t)cl;
        t->bytes_len += cl;
    }
    mambac_status st = build_trie(L, 0, &t->trie_raw, &t->n_trie_raw);
    return st == MAMBAC_OK ? build_trie(L, 1, &t->trie_norm, &t->n_trie_norm) : st;
}

mambac_status mc_tokenizer_from_json(const char *text, size_t len, const char *name, mambac_tokenizer **out,
                                     mambac_error *err) {
    return mc_tokenizer_from_json_ex(text, len, name, 0, out, err);
}

mambac_status mc_tokenizer_from_json_ex(const char *text, size_t len, const char *name, int lenient_merges,
                                        mambac_tokenizer **out, mambac_error *err) {
    *out = NULL;
    struct mambac_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    cJSON *root = mc_json_parse(text, len, name, err);
    mambac_status st = root ? MAMBAC_OK : MAMBAC_ERR_FORMAT;
    loader L = {.t = t, .path = name, .err = err, .lenient_merges = lenient_merges};
    for (int c = 0; c < 324; c++) L.inv[c] = -1;
    for (int b = 0; b < 256; b++) L.inv[mc_byte_to_cp((unsigned char)b)] = (int16_t)b;
    if (st == MAMBAC_OK && !cJSON_IsObject(root)) st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: not a JSON object", name);
    const cJSON *model = st == MAMBAC_OK ? cJSON_GetObjectItemCaseSensitive(root, "model") : NULL;
    const cJSON *added = st == MAMBAC_OK ? cJSON_GetObjectItemCaseSensitive(root, "added_tokens") : NULL;
    if (st == MAMBAC_OK && !cJSON_IsObject(model)) st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: no 'model' object", name);
    if (st == MAMBAC_OK && added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: 'added_tokens' is not an array", name);
    if (added && !cJSON_IsArray(added)) added = NULL;
    if (st == MAMBAC_OK) st = check_components(&L, root);
    if (st == MAMBAC_OK) st = read_model(&L, model, added);
    if (st == MAMBAC_OK) st = read_added(&L, added);
    cJSON_Delete(root);
    if (st != MAMBAC_OK) {
        mambac_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MAMBAC_OK;
}

mambac_status mambac_tokenizer_load(const char *path, mambac_tokenizer **out, mambac_error *err) {
    *out = NULL;
    struct stat sb;
    const int is_dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (!is_dir && mc_is_gguf_file(path)) return mc_tokenizer_from_gguf(path, out, err);
    char *file = is_dir ? mc_path_join(path, "tokenizer.json") : strdup(path);
    if (!file) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    mambac_status st = mc_file_read_all(file, MAX_TOKENIZER_BYTES, &text, &len, err);
    if (st == MAMBAC_OK) st = mc_tokenizer_from_json(text, len, file, out, err);
    free(text);
    free(file);
    return st;
}

void mambac_tokenizer_free(mambac_tokenizer *t) {
    if (!t) return;
    free(t->bytes), free(t->tok_off), free(t->tok_len), free(t->is_special);
    free(t->vocab.slots), free(t->merges.keys), free(t->merges.vals);
    free(t->added), free(t->trie_raw), free(t->trie_norm);
    mc_bpe_cache_free(&t->cache);
    free(t);
}

int32_t mambac_tokenizer_n_vocab(const mambac_tokenizer *t) { return t->n_ids; }

const char *mambac_token_bytes(const mambac_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_ids || t->tok_len[id] == UINT32_MAX) return NULL;
    *len = t->tok_len[id];
    return (const char *)t->bytes + t->tok_off[id];
}

int mambac_token_is_special(const mambac_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_ids && t->is_special[id];
}

int32_t mambac_tokenizer_find(const mambac_tokenizer *t, const char *text) {
    size_t n = strlen(text);
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->bytes + t->added[i].off, text, n) == 0) return t->added[i].id;
    return mc_vocab_lookup(t, (const unsigned char *)text, n);
}
