#define _POSIX_C_SOURCE 200809L
/* test_tokenizer.c — tokenizer parity with HF tokenizers and the tokenizer's own
 * contracts:
 *   - every line of cases.jsonl (the shared fixture: GPT-NeoX-20B) and of
 *     extra_cases.jsonl (our edge cases, encoded by HF tokenizers with GPT-NeoX, GPT-2
 *     and a variant with add_prefix_space and pair-format merges; scripts/
 *     make_tokenizer_refs.py): ids equal, and decoding gives `decoded` byte for byte;
 *   - a 10 MB input: every fixture text joined by <|endoftext|> (which splits the text,
 *     so the ids must be the cases' ids joined by its id) and decoded back exactly;
 *   - any bytes round-trip: invalid UTF-8, NULs, random binary;
 *   - the byte-level tokenizer.json we write: id b is byte b, for all bytes;
 *   - malformed tokenizer.json files get an error naming what is wrong.
 * `test_tokenizer --write-bytelevel PATH` only writes the byte-level file (for the dev
 * script that checks HF tokenizers reads it). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "mambac.h"
#include "testutil.h"
#include "core/strset.h"
#include "tokenizer/unicode.h"

#include <utf8proc.h>

static const char *dir = MAMBAC_TEST_DATA "/tokenizer";

typedef struct named_tok {
    char *name; /* owned */
    mambac_tokenizer *tok;
} named_tok;
static named_tok toks[8];

static mambac_tokenizer *get_tok(const char *name) {
    int i = 0;
    for (; toks[i].name; i++)
        if (strcmp(toks[i].name, name) == 0) return toks[i].tok;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mambac_error err;
    toks[i].name = strdup(name);
    if (mambac_tokenizer_load(path, &toks[i].tok, &err) != MAMBAC_OK) {
        CHECK(0, "load %s: %s", name, err.msg);
        toks[i].tok = NULL;
    }
    return toks[i].tok;
}

static int same_ids(const int32_t *a, size_t na, const cJSON *want) {
    if ((size_t)cJSON_GetArraySize(want) != na) return 0;
    size_t k = 0;
    for (const cJSON *x = want->child; x; x = x->next, k++)
        if (a[k] != x->valueint) return 0;
    return 1;
}

/* The JSON string starting at q (after the opening quote), with the escapes
 * json.dumps writes (\uXXXX in the BMP, \n, \t, ...), into a new buffer. */
static char *unescape(const char *q, size_t *len) {
    char *o = malloc(strlen(q) + 1);
    size_t k = 0;
    for (; *q && *q != '"'; q++) {
        if (*q != '\\') {
            o[k++] = *q;
            continue;
        }
        q++;
        if (*q == 'u') {
            char hex[5] = {q[1], q[2], q[3], q[4], 0};
            unsigned v = (unsigned)strtoul(hex, NULL, 16);
            q += 4;
            if (v < 0x80) o[k++] = (char)v;
            else if (v < 0x800) o[k++] = (char)(0xc0 | v >> 6), o[k++] = (char)(0x80 | (v & 0x3f));
            else o[k++] = (char)(0xe0 | v >> 12), o[k++] = (char)(0x80 | (v >> 6 & 0x3f)), o[k++] = (char)(0x80 | (v & 0x3f));
        } else {
            o[k++] = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q == 'r' ? '\r' : *q == 'b' ? '\b' : *q == 'f' ? '\f' : *q;
        }
    }
    *len = k;
    return o;
}

/* Runs every line of a cases file; returns the number of lines. */
static int run_cases(const char *file, const char *default_tok) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *text = read_text(path);
    CHECK(text != NULL, "read %s", path);
    if (!text) return 0;
    int lines = 0, bad_ids = 0, bad_dec = 0;
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *c = cJSON_Parse(line);
        if (!c) continue;
        lines++;
        const char *tn = cJSON_GetStringValue(cJSON_GetObjectItem(c, "tokenizer"));
        mambac_tokenizer *tok = get_tok(tn ? tn : default_tok);
        const cJSON *t = cJSON_GetObjectItem(c, "text"), *ids = cJSON_GetObjectItem(c, "ids"),
                    *dec = cJSON_GetObjectItem(c, "decoded");
        /* cJSON strings stop at a NUL: texts with \u0000 are unescaped from the raw line. */
        const char *tstr = t->valuestring;
        size_t tlen = strlen(tstr);
        char *own = NULL, *own_dec = NULL, *raw = strstr(line, "\"text\": \""), *rawd = strstr(line, "\"decoded\": \"");
        int has_nul = raw && strstr(raw, "\\u0000") != NULL;
        size_t dlen_want = strlen(dec->valuestring);
        const char *dstr = dec->valuestring;
        if (has_nul && rawd) {
            own = unescape(raw + 9, &tlen);
            own_dec = unescape(rawd + 12, &dlen_want);
            tstr = own, dstr = own_dec;
        }
        int32_t *got;
        size_t n;
        mambac_error err;
        if (tok && mambac_tokenize(tok, tstr, tlen, &got, &n, &err) == MAMBAC_OK) {
            if (!same_ids(got, n, ids)) {
                bad_ids++;
                if (bad_ids <= 5) printf("ids differ (%s): %.80s\n", tn ? tn : default_tok, t->valuestring);
            }
            char *d;
            size_t dl;
            if (mambac_detokenize(tok, (int32_t *)got, n, &d, &dl, &err) == MAMBAC_OK) {
                if (dl != dlen_want || memcmp(d, dstr, dl) != 0) {
                    bad_dec++;
                    if (bad_dec <= 5) printf("decode differs: %.80s\n", tstr);
                }
                mambac_free(d);
            }
            mambac_free(got);
        }
        free(own), free(own_dec);
        cJSON_Delete(c);
    }
    CHECK(lines > 0, "%s has cases", file);
    CHECK(bad_ids == 0, "%s: ids differ from HF tokenizers in %d of %d cases", file, bad_ids, lines);
    CHECK(bad_dec == 0, "%s: decoding differs in %d of %d cases", file, bad_dec, lines);
    printf("%s: %d cases\n", file, lines);
    free(text);
    return lines;
}

/* 10 MB: the fixture texts joined by <|endoftext|>, repeated. */
static void test_big_input(void) {
    mambac_tokenizer *tok = get_tok("gpt-neox-20b-tokenizer.json");
    char path[1024];
    snprintf(path, sizeof path, "%s/cases.jsonl", dir);
    char *text = read_text(path);
    if (!tok || !text) return;
    size_t cap = 11u << 20, len = 0, nwant = 0, wcap = 4u << 20;
    char *big = malloc(cap);
    int32_t *want = malloc(wcap * sizeof *want);
    int32_t eot = mambac_tokenizer_find(tok, "<|endoftext|>");
    CHECK(eot == 0, "<|endoftext|> is id 0");
    while (len < (10u << 20)) {
        for (char *line = text, *nl; line && *line && len < (10u << 20); line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            cJSON *c = nl ? cJSON_ParseWithLength(line, (size_t)(nl - line)) : cJSON_Parse(line);
            if (!c) continue;
            const char *t = cJSON_GetObjectItem(c, "text")->valuestring;
            /* The fixture's NFC case must be joined in its normalized form to be stable. */
            const char *d = cJSON_GetObjectItem(c, "decoded")->valuestring;
            size_t l = strlen(d);
            (void)t;
            if (len + l + 13 < cap && nwant + (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(c, "ids")) + 1 < wcap) {
                memcpy(big + len, d, l);
                len += l;
                memcpy(big + len, "<|endoftext|>", 13);
                len += 13;
                for (cJSON *x = cJSON_GetObjectItem(c, "ids")->child; x; x = x->next) want[nwant++] = x->valueint;
                want[nwant++] = eot;
            }
            cJSON_Delete(c);
        }
    }
    int32_t *got;
    size_t n;
    mambac_error err;
    CHECK(mambac_tokenize(tok, big, len, &got, &n, &err) == MAMBAC_OK, "tokenize 10 MB");
    CHECK(n == nwant && memcmp(got, want, n * sizeof *got) == 0, "10 MB: ids are the cases' ids joined (%zu vs %zu)", n, nwant);
    char *dec;
    size_t dl;
    CHECK(mambac_detokenize(tok, got, n, &dec, &dl, &err) == MAMBAC_OK && dl == len && memcmp(dec, big, len) == 0,
          "10 MB decodes back exactly");
    printf("10 MB input: %zu bytes, %zu tokens\n", len, n);
    mambac_free(dec);
    mambac_free(got);
    free(big), free(want), free(text);
}

static void roundtrip(mambac_tokenizer *tok, const char *bytes, size_t n, const char *label) {
    int32_t *ids;
    size_t k;
    char *d;
    size_t dl;
    mambac_error err;
    CHECK(mambac_tokenize(tok, bytes, n, &ids, &k, &err) == MAMBAC_OK, "%s: tokenize", label);
    CHECK(mambac_detokenize(tok, ids, k, &d, &dl, &err) == MAMBAC_OK && dl == n && memcmp(d, bytes, n) == 0,
          "%s: bytes round-trip", label);
    mambac_free(ids);
    mambac_free(d);
}

/* Ids of a byte string, or NULL. */
static int32_t *ids_of(mambac_tokenizer *tok, const char *s, size_t n, size_t *k) {
    int32_t *ids;
    mambac_error err;
    return mambac_tokenize(tok, s, n, &ids, k, &err) == MAMBAC_OK ? ids : NULL;
}

static void test_any_bytes(void) {
    /* GPT-2 has a token for every byte: anything round-trips. GPT-NeoX lacks the 13
     * bytes that never occur in UTF-8 (C0, C1, F5..FF): those become U+FFFD. */
    const char *names[] = {"gpt2-tokenizer.json", "gpt-neox-20b-tokenizer.json"};
    mambac_tokenizer *neox = get_tok(names[1]);
    if (neox) {
        static const char present[] = "bad \xc3 trunc \xe2\x82 \xed\xa0\x80 surrogate \xf4\x90\x80\x80 big \xe0\x80\xaf over";
        roundtrip(neox, present, sizeof present - 1, "NeoX: invalid UTF-8 of bytes it has");
        size_t a, b;
        int32_t *x = ids_of(neox, "a\xff\xc0z", 4, &a), *y = ids_of(neox, "a\xef\xbf\xbd\xef\xbf\xbdz", 8, &b);
        CHECK(x && y && a == b && memcmp(x, y, a * sizeof *x) == 0, "NeoX: bytes without a token encode as U+FFFD");
        mambac_free(x), mambac_free(y);
    }
    for (int k = 0; k < 2; k++) {
        mambac_tokenizer *tok = get_tok(names[k]);
        if (!tok) continue;
        static const char invalid[] = "bad \xff\xfe utf8 \xc3 trunc \xe2\x82 \xed\xa0\x80 surrogate \xf4\x90\x80\x80 big \xc0\xaf over";
        if (k == 0) roundtrip(tok, invalid, sizeof invalid - 1, "GPT-2: invalid UTF-8");
        roundtrip(tok, "a\0b\0\0c", 6, "NUL bytes");
        if (k == 0) {
            unsigned char rnd[4096];
            uint64_t r = 99;
            for (size_t i = 0; i < sizeof rnd; i++) r = r * 6364136223846793005ull + 1, rnd[i] = (unsigned char)(r >> 56);
            roundtrip(tok, (const char *)rnd, sizeof rnd, "GPT-2: random bytes");
        }
        /* Combining sequences are NFC'd, so only an NFC-stable text round-trips exactly;
         * a long run of one letter exercises the heap path of BPE. */
        char *word = malloc(1 << 20);
        memset(word, 'q', 1 << 20);
        roundtrip(tok, word, 1 << 20, "1 MB word");
        free(word);
    }
}

static void test_bytelevel(const char *tmp) {
    char *p = path_in(tmp, "bytes.json");
    mambac_error err;
    CHECK(mambac_tokenizer_write_bytelevel(p, &err) == MAMBAC_OK, "write byte-level: %s", err.msg);
    mambac_tokenizer *tok = NULL;
    CHECK(mambac_tokenizer_load(p, &tok, &err) == MAMBAC_OK, "load byte-level: %s", err.msg);
    if (tok) {
        CHECK(mambac_tokenizer_n_vocab(tok) == 256, "256 ids");
        char all[512];
        for (int i = 0; i < 512; i++) all[i] = (char)(i < 256 ? i : 511 - i); /* every byte, then again */
        int32_t *ids;
        size_t n;
        CHECK(mambac_tokenize(tok, all, sizeof all, &ids, &n, &err) == MAMBAC_OK, "tokenize");
        int ok = n == sizeof all;
        for (size_t i = 0; ok && i < n; i++) ok = ids[i] == (unsigned char)all[i];
        CHECK(ok, "byte-level: id b is byte b");
        mambac_free(ids);
        mambac_tokenizer_free(tok);
    }
    free(p);
}

/* A byte-level tokenizer (id b is byte b) with `n` added tokens (ids 256 + i; normalized
 * as flagged), written to tmp and loaded. */
static mambac_tokenizer *with_added(const char *tmp, const char *const *contents, const int *normalized, int n) {
    char *p = path_in(tmp, "added.json");
    mambac_error err;
    mambac_tokenizer *tok = NULL;
    if (mambac_tokenizer_write_bytelevel(p, &err) == MAMBAC_OK) {
        char *text = read_text(p);
        cJSON *root = text ? cJSON_Parse(text) : NULL;
        cJSON *added = root ? cJSON_GetObjectItem(root, "added_tokens") : NULL;
        for (int i = 0; added && i < n; i++) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", 256 + i);
            cJSON_AddStringToObject(a, "content", contents[i]);
            cJSON_AddBoolToObject(a, "single_word", 0);
            cJSON_AddBoolToObject(a, "lstrip", 0);
            cJSON_AddBoolToObject(a, "rstrip", 0);
            cJSON_AddBoolToObject(a, "normalized", normalized[i]);
            cJSON_AddBoolToObject(a, "special", !normalized[i]);
            cJSON_AddItemToArray(added, a);
        }
        char *out = root ? cJSON_PrintUnformatted(root) : NULL;
        if (out) write_file(p, out, strlen(out));
        if (!out || mambac_tokenizer_load(p, &tok, &err) != MAMBAC_OK) CHECK(0, "added-token tokenizer: %s", err.msg);
        free(out), free(text);
        cJSON_Delete(root);
    }
    free(p);
    return tok;
}

/* Leftmost-longest splitting as the definition reads, for ASCII text: at each position the
 * longest token of the wanted kind starting there, else the byte (a normalized-token pass
 * over each stretch between raw tokens). Quadratic, for small cases. */
static size_t naive_split(const char *s, size_t n, const char *const *contents, const int *normalized, int nt, int pass,
                          int32_t *out) {
    size_t k = 0, seg = 0;
    for (size_t i = 0; i <= n;) {
        int best = -1;
        size_t blen = 0;
        for (int t = 0; i < n && t < nt; t++) {
            const size_t l = strlen(contents[t]);
            if (normalized[t] == pass && l > blen && l <= n - i && memcmp(s + i, contents[t], l) == 0) best = t, blen = l;
        }
        if (best < 0 && i < n) {
            i++;
            continue;
        }
        if (pass == 0) k += naive_split(s + seg, i - seg, contents, normalized, nt, 1, out + k);
        else
            for (size_t j = seg; j < i; j++) out[k++] = (unsigned char)s[j];
        if (best < 0) break;
        out[k++] = 256 + best;
        seg = i = i + blen;
    }
    return k;
}

/* Added tokens that overlap, nest and share prefixes and suffixes, raw and normalized,
 * against the definition on random texts; then a 32 KB token against 128 KB of text that
 * repeats its prefix (time linear in the text: the reversed automaton of tokenizer.h). */
static void test_added_tokens(const char *tmp) {
    static const char *const contents[] = {"a", "ab", "aab", "bab", "abab", "bb", "aaaa", "ba", "cab", "bca", "abc"};
    static const int normalized[] = {0, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0};
    const int nt = (int)(sizeof contents / sizeof contents[0]);
    mambac_tokenizer *tok = with_added(tmp, contents, normalized, nt);
    if (!tok) return;
    uint32_t x = 99;
    int bad = 0;
    for (int c = 0; c < 400; c++) {
        char text[64];
        x = x * 1664525u + 1013904223u;
        const size_t n = 1 + (x >> 8) % 60;
        for (size_t i = 0; i < n; i++) x = x * 1664525u + 1013904223u, text[i] = "abcd"[(x >> 13) % (c % 2 ? 3 : 4)];
        int32_t want[128], *got;
        const size_t nw = naive_split(text, n, contents, normalized, nt, 0, want);
        size_t ng;
        mambac_error err;
        if (mambac_tokenize(tok, text, n, &got, &ng, &err) != MAMBAC_OK) {
            CHECK(0, "tokenize: %s", err.msg);
            break;
        }
        if (ng != nw || memcmp(got, want, ng * sizeof *got) != 0) {
            if (bad++ < 3) CHECK(0, "added tokens: '%.*s' splits as %zu ids, the definition %zu", (int)n, text, ng, nw);
        }
        mambac_free(got);
    }
    CHECK(bad == 0, "added tokens: 400 random texts split as the definition (%d differ)", bad);
    mambac_tokenizer_free(tok);

    enum { LONG = 32768, TEXT = 131072 };
    char *big = malloc(LONG + 2), *text = malloc(TEXT + 1);
    memset(big, 'a', LONG), big[LONG] = 'b', big[LONG + 1] = 0;
    memset(text, 'a', TEXT), text[TEXT] = 'b';
    const char *const longc[] = {big};
    const int raw[] = {0};
    tok = with_added(tmp, longc, raw, 1);
    int32_t *got;
    size_t ng;
    mambac_error err;
    if (tok) {
        int ok = mambac_tokenize(tok, text, TEXT, &got, &ng, &err) == MAMBAC_OK;
        CHECK(ok && ng == TEXT, "128 KB of its prefix: bytes");
        if (ok) mambac_free(got);
        ok = mambac_tokenize(tok, text, TEXT + 1, &got, &ng, &err) == MAMBAC_OK;
        CHECK(ok && ng == TEXT - LONG + 1 && got[ng - 1] == 256 && got[0] == 'a', "the 32 KB token at the end of 128 KB: found once");
        if (ok) mambac_free(got);
        mambac_tokenizer_free(tok);
    }
    free(big), free(text);
}

static void expect_bad(const char *tmp, const char *json, const char *substr, mambac_status want) {
    char *p = path_in(tmp, "bad.json");
    write_file(p, json, strlen(json));
    mambac_tokenizer *tok = NULL;
    mambac_error err = {{0}};
    mambac_status st = mambac_tokenizer_load(p, &tok, &err);
    CHECK(st == want && !tok, "%s: status %s (%s)", substr, mambac_status_str(st), err.msg);
    CHECK(strstr(err.msg, substr) != NULL, "message '%s' lacks '%s'", err.msg, substr);
    free(p);
}

static void test_malformed(const char *tmp) {
#define PRE "\"pre_tokenizer\":{\"type\":\"ByteLevel\"},"
    expect_bad(tmp, "{\"model\": {\"type\": \"BPE\", ", "not valid JSON", MAMBAC_ERR_FORMAT);
    expect_bad(tmp, "{" PRE "\"model\":{\"type\":\"BPE\",\"merges\":[]}}", "model.vocab is missing", MAMBAC_ERR_FORMAT);
    expect_bad(tmp, "{" PRE "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}", "model.merges is missing", MAMBAC_ERR_FORMAT);
    expect_bad(tmp, "{" PRE "\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", "tokenizer model 'Unigram' is not supported", MAMBAC_ERR_UNSUPPORTED);
    expect_bad(tmp, "{" PRE "\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "tokenizer model 'WordPiece' is not supported", MAMBAC_ERR_UNSUPPORTED);
    expect_bad(tmp, "{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\"}}", "pre_tokenizer 'Whitespace' is not supported",
               MAMBAC_ERR_UNSUPPORTED);
    expect_bad(tmp, "{\"normalizer\":{\"type\":\"Lowercase\"}," PRE "\"model\":{\"type\":\"BPE\"}}", "normalizer 'Lowercase'", MAMBAC_ERR_UNSUPPORTED);
    expect_bad(tmp, "{\"post_processor\":{\"type\":\"TemplateProcessing\"}," PRE "\"model\":{\"type\":\"BPE\"}}", "post_processor 'TemplateProcessing'",
               MAMBAC_ERR_UNSUPPORTED);
    expect_bad(tmp, "{" PRE "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}}", "vocab entry 'a' has an invalid id", MAMBAC_ERR_FORMAT);
    expect_bad(tmp, "{" PRE "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}", "vocab id 0 is used twice", MAMBAC_ERR_FORMAT);
    expect_bad(tmp, "{" PRE "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}", "vocab lacks byte-level tokens for 255 of the 256 bytes", MAMBAC_ERR_FORMAT);
    /* A full byte vocabulary, then merges naming unknown tokens / unknown results. */
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model"), *vocab = cJSON_CreateObject();
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddStringToObject(model, "type", "BPE");
    char *p = path_in(tmp, "b.json");
    mambac_error err;
    mambac_tokenizer_write_bytelevel(p, &err);
    char *bl = read_text(p);
    cJSON *blj = cJSON_Parse(bl);
    cJSON_Delete(vocab);
    cJSON_AddItemToObject(model, "vocab", cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetObjectItem(blj, "model"), "vocab"), 1));
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateString("a zz"));
    char *j1 = cJSON_PrintUnformatted(root);
    expect_bad(tmp, j1, "merge 0 names unknown token 'zz'", MAMBAC_ERR_FORMAT);
    cJSON_ReplaceItemInArray(merges, 0, cJSON_CreateString("a b"));
    char *j2 = cJSON_PrintUnformatted(root);
    expect_bad(tmp, j2, "merge 0 ('a' + 'b') makes a token that is not in the vocab", MAMBAC_ERR_FORMAT);
    cJSON_ReplaceItemInArray(merges, 0, cJSON_CreateString("abc"));
    char *j3 = cJSON_PrintUnformatted(root);
    expect_bad(tmp, j3, "merge 0 ('abc') is not two tokens", MAMBAC_ERR_FORMAT);
    free(j1), free(j2), free(j3), free(bl), free(p);
    cJSON_Delete(blj);
    cJSON_Delete(root);
    mambac_tokenizer *tok;
    CHECK(mambac_tokenizer_load("/nonexistent/tokenizer.json", &tok, &err) == MAMBAC_ERR_IO && strstr(err.msg, "cannot open"),
          "missing file: %s", err.msg);
}

/* The duplicate check behind GGUF vocabularies: every string found, no false duplicate,
 * and the work (slots probed) linear in the number of strings — 4x the strings cost at
 * most 5x the probes, and under 3 probes a string (the table stays at most half full).
 * (It was a list walk per token: llama.cpp's GPT-2 vocabulary took 6.5 s to load, now
 * 0.35 s.) */
static uint64_t strset_probes(size_t n, int *ok) {
    char (*buf)[32] = malloc(n * sizeof *buf);
    mc_strset set;
    *ok = buf && mc_strset_init(&set, n);
    if (!*ok) return 0;
    for (size_t i = 0; i < n; i++) snprintf(buf[i], sizeof buf[i], "tok%zu", i);
    for (size_t i = 0; i < n; i++) *ok &= mc_strset_add(&set, buf[i], strlen(buf[i])) == 1;
    for (size_t i = 0; i < n; i += 7) *ok &= mc_strset_add(&set, buf[i], strlen(buf[i])) == 0; /* duplicates */
    *ok &= set.n == n;
    const uint64_t probes = set.probes;
    mc_strset_free(&set);
    free(buf);
    return probes;
}

static void test_strset(void) {
    int ok1, ok2;
    const uint64_t a = strset_probes(4096, &ok1), b = strset_probes(16384, &ok2);
    CHECK(ok1 && ok2, "strset: every string added once, duplicates found");
    CHECK(b <= 5 * a, "strset: 4x the strings, %llu vs %llu probes (at most 5x)", (unsigned long long)b, (unsigned long long)a);
    CHECK(b < 3 * (16384 + 16384 / 7 + 1), "strset: %llu probes for %d adds", (unsigned long long)b, 16384 + 16384 / 7 + 1);
}

/* NFC: the same bytes as utf8proc_map (STABLE | COMPOSE) on random mixes of starters,
 * precomposed letters, Hangul jamo and syllables, combining marks of several classes; and
 * a run of alternating marks (U+0301 class 230, U+0316 class 220: every pair out of
 * order) ordered in n log n — 4x the run costs at most 5x the comparisons. (utf8proc's
 * own ordering swaps neighbours: 58 s for a 320 KB prompt of such pairs.) */
static int nfc_matches_utf8proc(const unsigned char *s, size_t n) {
    size_t m = 0;
    unsigned char *got = mc_nfc(s, n, &m);
    utf8proc_uint8_t *want = NULL;
    const utf8proc_ssize_t r = utf8proc_map(s, (utf8proc_ssize_t)n, &want, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    const int ok = got && r >= 0 && (size_t)r == m && memcmp(got, want, m) == 0;
    free(got);
    free(want);
    return ok;
}

static size_t alternating_marks(size_t pairs, unsigned char **out, size_t *n) {
    unsigned char *s = malloc(1 + 4 * pairs);
    size_t k = 0;
    s[k++] = 'e';
    for (size_t i = 0; i < pairs; i++) s[k++] = 0xcc, s[k++] = 0x81, s[k++] = 0xcc, s[k++] = 0x96; /* U+0301 U+0316 */
    size_t work = 0, m = 0;
    unsigned char *r = mc_nfc_counted(s, k, &m, &work);
    free(r);
    *out = s, *n = k;
    return work;
}

static void test_nfc(void) {
    static const char *pieces[] = {"a", "e", "\xcc\x81", "\xcc\x96", "\xcd\x85", "\xcc\xa7", "\xc3\xa9", "\xe1\x84\x80",
                                   "\xe1\x85\xa1", "\xe1\x86\xa8", "\xea\xb0\x80", "\xe2\x84\xab", " ", "\xe0\xa4\xbc"};
    const size_t np = sizeof pieces / sizeof pieces[0];
    uint32_t x = 99;
    int bad = 0;
    for (int t = 0; t < 2000; t++) {
        unsigned char buf[256];
        size_t n = 0;
        const int len = 1 + t % 40;
        for (int i = 0; i < len; i++) {
            x = x * 1664525u + 1013904223u;
            const char *p = pieces[(x >> 8) % np];
            memcpy(buf + n, p, strlen(p));
            n += strlen(p);
        }
        bad += !nfc_matches_utf8proc(buf, n);
    }
    CHECK(bad == 0, "nfc: %d of 2000 random strings differ from utf8proc", bad);
    unsigned char *s1, *s2;
    size_t n1, n2;
    const size_t w1 = alternating_marks(4096, &s1, &n1), w2 = alternating_marks(16384, &s2, &n2);
    CHECK(nfc_matches_utf8proc(s1, n1), "nfc: a run of 8192 alternating marks as utf8proc orders it");
    CHECK(w1 > 0 && w2 <= 5 * w1, "nfc: 4x the marks, %zu vs %zu comparisons (at most 5x)", w2, w1);
    free(s1);
    free(s2);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-bytelevel") == 0) {
        mambac_error err;
        return mambac_tokenizer_write_bytelevel(argv[2], &err) == MAMBAC_OK ? 0 : 1;
    }
    test_strset();
    test_nfc();
    char *tmp = make_temp_dir();
    run_cases("cases.jsonl", "gpt-neox-20b-tokenizer.json");
    run_cases("extra_cases.jsonl", NULL);
    test_big_input();
    test_any_bytes();
    test_bytelevel(tmp);
    test_added_tokens(tmp);
    test_malformed(tmp);
    for (int i = 0; toks[i].name; i++) {
        mambac_tokenizer_free(toks[i].tok);
        free(toks[i].name);
    }
    CHECK(remove_temp_dir(tmp), "cleanup");
    free(tmp);
    return check_summary();
}
