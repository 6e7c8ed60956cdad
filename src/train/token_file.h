/* token_file.h — tokenized training data on disk (`mambac prepare-data` writes it, the
 * trainer maps it): a 64-byte header, then the training tokens, then the validation tokens,
 * 2 or 4 bytes each, little endian; documents joined, each after the end-of-text token
 * when the tokenizer has one. Held-out documents are whole (split by document). Layout in
 * docs/TRAINING.md. */
#ifndef MC_TOKEN_FILE_H
#define MC_TOKEN_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "io/file.h"
#include "mambac.h"

#define MC_TOKENS_MAGIC "MCTOKENS"
#define MC_TOKENS_HEADER 64

typedef struct mc_token_file {
    mc_file map;
    int width;             /* bytes a token: 2 or 4 */
    int32_t vocab, eot;    /* ids are < vocab; eot -1: documents not separated */
    int64_t n_train, n_val, train_docs, val_docs;
    uint64_t tokenizer_fnv; /* FNV-1a of the tokenizer.json bytes; 0: bytes are tokens */
    const unsigned char *tokens;
} mc_token_file;

/* Whether a file's first bytes are a token file's. */
int mc_is_token_file(const unsigned char *p, size_t n);
/* Maps and checks a token file: header fields, size, every id below vocab. */
mambac_status mc_token_file_open(const char *path, mc_token_file *t, mambac_error *err);
void mc_token_file_close(mc_token_file *t);
static inline int32_t mc_token_at(const mc_token_file *t, int64_t i) {
    const unsigned char *p = t->tokens + i * t->width;
    return t->width == 2 ? (int32_t)(p[0] | p[1] << 8) : (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* Writing one: documents in any order, each to the training or the validation part; the
 * file appears (atomically) at finish. */
typedef struct mc_token_writer {
    mc_atomic_file out;
    FILE *val; /* the validation tokens until finish appends them */
    int width;
    int32_t vocab, eot;
    int64_t n_train, n_val, train_docs, val_docs;
    uint64_t tokenizer_fnv;
} mc_token_writer;

mambac_status mc_token_writer_open(mc_token_writer *w, const char *path, int32_t vocab, int32_t eot, uint64_t tokenizer_fnv,
                                   mambac_error *err);
mambac_status mc_token_writer_add(mc_token_writer *w, const int32_t *ids, size_t n, int val, mambac_error *err);
mambac_status mc_token_writer_finish(mc_token_writer *w, mambac_error *err);
void mc_token_writer_abort(mc_token_writer *w);

#endif
