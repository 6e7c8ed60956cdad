/* data.c — training text as token ids: raw bytes (byte-level models, vocab 256) or the
 * ids of a tokenizer.json, the first (1 - val_frac) of the ids training and the rest
 * validating (nanoGPT's split); or a token file (token_file.h), mapped, split by document. Training batches are windows at random offsets drawn
 * from a seeded generator whose state is part of the checkpoint; validation uses
 * fixed, non-overlapping windows. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/file.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

/* A token file: its split, its tokenizer checked against the one given. */
static mambac_status load_tokens(mc_data *d, const char *path, const char *tokenizer, int64_t L, mambac_error *err) {
    mambac_status st = mc_token_file_open(path, &d->tf, err);
    if (st != MAMBAC_OK) return st;
    uint64_t h = 0;
    if (d->tf.tokenizer_fnv && !tokenizer)
        st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s was made with a tokenizer: give that tokenizer.json as --tokenizer", path);
    else if (!d->tf.tokenizer_fnv && tokenizer)
        st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s holds bytes as tokens: no --tokenizer", path);
    else if (tokenizer && (st = mc_file_fnv(tokenizer, &h, err)) == MAMBAC_OK && h != d->tf.tokenizer_fnv)
        st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s was made with another tokenizer than %s", path, tokenizer);
    d->n = d->tf.n_train + d->tf.n_val, d->n_train = d->tf.n_train, d->vocab = d->tf.vocab;
    if (st == MAMBAC_OK && (d->n_train < L + 1 || d->tf.n_val < L))
        st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s: %lld training and %lld validation tokens are too few for windows of %lld", path,
                     (long long)d->n_train, (long long)d->tf.n_val, (long long)L);
    if (st != MAMBAC_OK) mc_data_free(d);
    return st;
}

mambac_status mc_data_load(mc_data *d, const char *path, const char *tokenizer, double val_frac, int64_t L,
                           mambac_error *err) {
    memset(d, 0, sizeof *d);
    mc_file f;
    mambac_status st = mc_file_map(path, &f, err);
    if (st != MAMBAC_OK) return st;
    if (mc_is_token_file(f.data, f.size)) {
        mc_file_unmap(&f);
        return load_tokens(d, path, tokenizer, L, err);
    }
    if (f.size == 0) {
        mc_file_unmap(&f);
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s: the training data is empty", path);
    }
    if (!tokenizer) {
        d->ids = malloc(f.size * sizeof *d->ids);
        if (!d->ids) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
        for (size_t i = 0; d->ids && i < f.size; i++) d->ids[i] = f.data[i];
        d->n = (int64_t)f.size;
        d->vocab = 256;
    } else {
        mambac_tokenizer *tok;
        st = mambac_tokenizer_load(tokenizer, &tok, err);
        size_t n = 0;
        if (st == MAMBAC_OK) {
            st = mambac_tokenize(tok, (const char *)f.data, f.size, &d->ids, &n, err);
            d->vocab = mambac_tokenizer_n_vocab(tok);
            mambac_tokenizer_free(tok);
        }
        d->n = (int64_t)n;
    }
    mc_file_unmap(&f);
    if (st != MAMBAC_OK) {
        mc_data_free(d);
        return st;
    }
    d->n_train = (int64_t)((double)d->n * (1.0 - val_frac));
    if (d->n_train < L + 1 || d->n - d->n_train < L)
        st = mc_fail(err, MAMBAC_ERR_INVALID_ARG,
                     "%s: %lld tokens are too few for windows of %lld (need %lld for training and %lld for validation)", path,
                     (long long)d->n, (long long)L, (long long)L + 1, (long long)L);
    if (st != MAMBAC_OK) mc_data_free(d);
    return st;
}

void mc_data_free(mc_data *d) {
    free(d->ids);
    if (d->tf.tokens) mc_token_file_close(&d->tf);
    memset(d, 0, sizeof *d);
}

uint64_t mc_data_fnv(const mc_data *d) {
    uint64_t h = 0xcbf29ce484222325ull;
    /* a text file's ids as int32 bytes (what checkpoints have always stored); a token file's
     * tokens as stored */
    const unsigned char *p = d->ids ? (const unsigned char *)d->ids : d->tf.tokens;
    const size_t n = (size_t)d->n * (d->ids ? 4 : (size_t)d->tf.width);
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* splitmix64: small, seedable, its whole state is one integer. */
uint64_t mc_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void mc_data_train_batch(const mc_data *d, uint64_t *rng, int64_t B, int64_t L, int32_t *out) {
    for (int64_t b = 0; b < B; b++) {
        const int64_t off = (int64_t)(mc_rng_next(rng) % (uint64_t)(d->n_train - L + 1));
        for (int64_t i = 0; i < L; i++) out[b * L + i] = mc_data_id(d, off + i);
    }
}

int64_t mc_data_val_windows(const mc_data *d, int64_t L) { return (d->n - d->n_train) / L; }

void mc_data_val_window(const mc_data *d, int64_t i, int64_t L, int32_t *out) {
    for (int64_t k = 0; k < L; k++) out[k] = mc_data_id(d, d->n_train + i * L + k);
}
