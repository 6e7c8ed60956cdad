/* token_file.c — the tokenized-data file (token_file.h): reading it mapped, with every field
 * and id checked (the file is untrusted), and writing it atomically. */
#include "train/token_file.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint32_t get_u32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int mc_is_token_file(const unsigned char *p, size_t n) { return n >= 8 && memcmp(p, MC_TOKENS_MAGIC, 8) == 0; }

mambac_status mc_token_file_open(const char *path, mc_token_file *t, mambac_error *err) {
    memset(t, 0, sizeof *t);
    mambac_status st = mc_file_map(path, &t->map, err);
    if (st != MAMBAC_OK) return st;
    const unsigned char *h = t->map.data;
    const size_t size = t->map.size;
    if (size < MC_TOKENS_HEADER || !mc_is_token_file(h, size)) st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: not a token file", path);
    else if (get_u32(h + 8) != 1) st = mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: token file version %u (this build reads 1)", path, get_u32(h + 8));
    if (st != MAMBAC_OK) return mc_token_file_close(t), st;
    const uint32_t width = get_u32(h + 12), vocab = get_u32(h + 16), eot = get_u32(h + 20);
    const uint64_t n_train = get_u64(h + 24), n_val = get_u64(h + 32), td = get_u64(h + 40), vd = get_u64(h + 48);
    const uint64_t body = size - MC_TOKENS_HEADER;
    if (width != 2 && width != 4) st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: %u bytes a token (2 or 4)", path, width);
    else if (vocab < 1 || vocab > INT32_MAX || (width == 2 && vocab > 65536))
        st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: vocabulary %u does not fit %u-byte tokens", path, vocab, width);
    else if (eot != UINT32_MAX && eot >= vocab) st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: end-of-text id %u beyond the vocabulary", path, eot);
    else if (n_train > body / width || n_val > body / width - n_train || (n_train + n_val) * width != body)
        st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: %llu + %llu tokens do not match the file's %llu bytes", path,
                     (unsigned long long)n_train, (unsigned long long)n_val, (unsigned long long)size);
    else if (td > n_train || vd > n_val) st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: more documents than tokens", path);
    if (st != MAMBAC_OK) return mc_token_file_close(t), st;
    t->width = (int)width, t->vocab = (int32_t)vocab, t->eot = eot == UINT32_MAX ? -1 : (int32_t)eot;
    t->n_train = (int64_t)n_train, t->n_val = (int64_t)n_val, t->train_docs = (int64_t)td, t->val_docs = (int64_t)vd;
    t->tokenizer_fnv = get_u64(h + 56);
    t->tokens = h + MC_TOKENS_HEADER;
    const int64_t n = t->n_train + t->n_val;
    for (int64_t i = 0; i < n; i++) /* unsigned: a 4-byte id of 2^31 or more reads as a negative int32 */
        if ((uint32_t)mc_token_at(t, i) >= (uint32_t)t->vocab) {
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: token %lld is id %u, beyond the vocabulary of %d", path, (long long)i,
                         (uint32_t)mc_token_at(t, i), t->vocab);
            mc_token_file_close(t);
            return st;
        }
    return MAMBAC_OK;
}

void mc_token_file_close(mc_token_file *t) {
    mc_file_unmap(&t->map);
    memset(t, 0, sizeof *t);
}

static void header(const mc_token_writer *w, unsigned char *h) {
    memset(h, 0, MC_TOKENS_HEADER);
    memcpy(h, MC_TOKENS_MAGIC, 8);
    put_u32(h + 8, 1);
    put_u32(h + 12, (uint32_t)w->width);
    put_u32(h + 16, (uint32_t)w->vocab);
    put_u32(h + 20, w->eot < 0 ? UINT32_MAX : (uint32_t)w->eot);
    put_u64(h + 24, (uint64_t)w->n_train);
    put_u64(h + 32, (uint64_t)w->n_val);
    put_u64(h + 40, (uint64_t)w->train_docs);
    put_u64(h + 48, (uint64_t)w->val_docs);
    put_u64(h + 56, w->tokenizer_fnv);
}

mambac_status mc_token_writer_open(mc_token_writer *w, const char *path, int32_t vocab, int32_t eot, uint64_t tokenizer_fnv,
                                   mambac_error *err) {
    memset(w, 0, sizeof *w);
    if (vocab < 1) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s: an empty vocabulary", path);
    w->width = vocab <= 65536 ? 2 : 4, w->vocab = vocab, w->eot = eot, w->tokenizer_fnv = tokenizer_fnv;
    mambac_status st = mc_atomic_open(&w->out, path, err);
    if (st != MAMBAC_OK) return st;
    unsigned char h[MC_TOKENS_HEADER];
    header(w, h); /* rewritten with the counts at finish */
    if ((st = mc_atomic_write(&w->out, h, sizeof h, err)) != MAMBAC_OK) return mc_token_writer_abort(w), st;
    if (!(w->val = tmpfile())) return mc_token_writer_abort(w), mc_fail(err, MAMBAC_ERR_IO, "%s: no temporary file", path);
    return MAMBAC_OK;
}

mambac_status mc_token_writer_add(mc_token_writer *w, const int32_t *ids, size_t n, int val, mambac_error *err) {
    unsigned char buf[4096];
    size_t k = 0;
    const int sep = w->eot >= 0;
    for (size_t i = 0; i < n + (size_t)sep; i++) {
        const int32_t id = sep && i == 0 ? w->eot : ids[i - (size_t)sep]; /* the separator before the document */
        if (id < 0 || id >= w->vocab) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "token id %d beyond the vocabulary", id);
        for (int b = 0; b < w->width; b++) buf[k++] = (unsigned char)((uint32_t)id >> (8 * b));
        if (k == sizeof buf || i + 1 == n + (size_t)sep) {
            mambac_status st = MAMBAC_OK;
            if (val) st = fwrite(buf, 1, k, w->val) == k ? MAMBAC_OK : mc_fail(err, MAMBAC_ERR_IO, "cannot write the validation part");
            else st = mc_atomic_write(&w->out, buf, k, err);
            if (st != MAMBAC_OK) return st;
            k = 0;
        }
    }
    if (val) w->n_val += (int64_t)n + sep, w->val_docs++;
    else w->n_train += (int64_t)n + sep, w->train_docs++;
    return MAMBAC_OK;
}

mambac_status mc_token_writer_finish(mc_token_writer *w, mambac_error *err) {
    mambac_status st = MAMBAC_OK;
    unsigned char buf[1 << 16];
    rewind(w->val);
    for (size_t r; st == MAMBAC_OK && (r = fread(buf, 1, sizeof buf, w->val)) > 0;) st = mc_atomic_write(&w->out, buf, r, err);
    if (st == MAMBAC_OK && ferror(w->val)) st = mc_fail(err, MAMBAC_ERR_IO, "cannot read the validation part back");
    unsigned char h[MC_TOKENS_HEADER];
    header(w, h);
    if (st == MAMBAC_OK && (fflush(w->out.fp) != 0 || fseek(w->out.fp, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->out.fp) != sizeof h))
        st = mc_fail(err, MAMBAC_ERR_IO, "%s: cannot write the header", w->out.final_path);
    if (st == MAMBAC_OK) st = mc_atomic_commit(&w->out, err);
    fclose(w->val);
    w->val = NULL;
    if (st != MAMBAC_OK) mc_atomic_abort(&w->out);
    return st;
}

void mc_token_writer_abort(mc_token_writer *w) {
    if (w->val) fclose(w->val);
    w->val = NULL;
    mc_atomic_abort(&w->out);
}
