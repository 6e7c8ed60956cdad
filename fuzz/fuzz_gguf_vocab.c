/* fuzz_gguf_vocab.c — libFuzzer target for the tokenizer rebuilt from GGUF metadata, with
 * vocabularies of any size: the input is not a GGUF file (a binary format the fuzzer rarely
 * gets past) but what the vocabulary says — byte 0 flags, then tokens separated by '\n'
 * (up to 200 000) — serialized here as a well-formed GGUF of no tensors: tokens, token
 * types (flag 1: drawn from the bytes, else all normal), merges (flag 2: each token with
 * the next). An accepted tokenizer then encodes and decodes a fixed text and the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;
static void put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) abort();
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->n, p, n), b->n += n;
}
static void u32(buf *b, uint32_t v) { put(b, &v, 4); } /* little-endian hosts */
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void str(buf *b, const void *s, size_t n) { u64(b, n), put(b, s, n); }
static void key(buf *b, const char *k, uint32_t type) { str(b, k, strlen(k)), u32(b, type); }
enum { T_INT32 = 5, T_STRING = 8, T_ARRAY = 9 };

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size < 1) return 0;
    const unsigned flags = data[0];
    const unsigned char *text = data + 1;
    const size_t tl = size - 1;
    size_t n = 1;
    for (size_t i = 0; i < tl; i++) n += text[i] == '\n';
    if (n > 200000) return 0;
    size_t *off = malloc((n + 1) * sizeof *off);
    off[0] = 0;
    for (size_t i = 0, k = 1; i < tl; i++)
        if (text[i] == '\n') off[k++] = i + 1;
    off[n] = tl + 1;
    buf b = {0};
    u32(&b, 0x46554747u), u32(&b, 3), u64(&b, 0), u64(&b, flags & 2 ? 4 : 3);
    key(&b, "tokenizer.ggml.model", T_STRING), str(&b, "gpt2", 4);
    key(&b, "tokenizer.ggml.tokens", T_ARRAY), u32(&b, T_STRING), u64(&b, n);
    for (size_t i = 0; i < n; i++) str(&b, text + off[i], off[i + 1] - off[i] - 1);
    key(&b, "tokenizer.ggml.token_type", T_ARRAY), u32(&b, T_INT32), u64(&b, n);
    for (size_t i = 0; i < n; i++) {
        const size_t l = off[i + 1] - off[i] - 1;
        u32(&b, flags & 1 && l ? (uint32_t)(text[off[i]] % 7) : 1u);
    }
    if (flags & 2) {
        key(&b, "tokenizer.ggml.merges", T_ARRAY), u32(&b, T_STRING), u64(&b, n ? n - 1 : 0);
        for (size_t i = 0; i + 1 < n; i++) {
            const size_t la = off[i + 1] - off[i] - 1, lb = off[i + 2] - off[i + 1] - 1;
            u64(&b, la + 1 + lb), put(&b, text + off[i], la), put(&b, " ", 1), put(&b, text + off[i + 1], lb);
        }
    }
    while (b.n % 32) put(&b, "", 1);
    mambac_tokenizer *t = NULL;
    mambac_error err;
    if (mc_tokenizer_from_gguf_bytes(b.p, b.n, "fuzz.gguf", &t, &err) == MAMBAC_OK) {
        static const char fixed[] = "Hello world, <|endoftext|> d\xc3\xa9j\xc3\xa0 vu \xe2\x80\x94 123\n";
        const char *inputs[2] = {fixed, (const char *)text};
        const size_t lens[2] = {sizeof fixed - 1, tl < 512 ? tl : 512};
        for (int k = 0; k < 2; k++) {
            int32_t *ids = NULL;
            size_t ni = 0;
            char *back = NULL;
            size_t bl = 0;
            if (mambac_tokenize(t, inputs[k], lens[k], &ids, &ni, &err) == MAMBAC_OK) {
                if (mambac_detokenize(t, ids, ni, &back, &bl, &err) == MAMBAC_OK) mambac_free(back);
                mambac_free(ids);
            }
        }
        mambac_tokenizer_free(t);
    }
    free(b.p);
    free(off);
    return 0;
}
