/* state.c — creating, copying, saving and loading sequence states.
 *
 * File format (little-endian): "MAMBACST", u32 version (1), then the shape it was
 * made for — u32 arch, n_layer, d_model, d_inner, d_state, d_conv, n_heads, n_groups —
 * u64 n_tokens, u64 n_floats, the floats, and a u32 FNV-1a checksum of the floats.
 * A file whose shape differs from the model's is refused. */
#include "infer/state.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/file.h"

#define STATE_MAGIC "MAMBACST"
#define STATE_VERSION 1u
#define STATE_HEADER_U32 9 /* version + 8 shape fields */

size_t mambac_state_size_bytes(const mambac_model *model) {
    const mambac_model_info *c = &model->info;
    size_t per_layer = (size_t)(mc_conv_channels(c) * (c->d_conv - 1) + mc_ssm_state_floats(c));
    return per_layer * (size_t)c->n_layer * sizeof(float);
}

mambac_status mambac_state_new(const mambac_model *model, mambac_state **out, mambac_error *err) {
    *out = NULL;
    struct mambac_state *s = calloc(1, sizeof *s);
    if (!s) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory allocating a state");
    const mambac_model_info *c = &model->info;
    s->model = model;
    s->conv_floats = (size_t)(mc_conv_channels(c) * (c->d_conv - 1));
    s->ssm_floats = (size_t)mc_ssm_state_floats(c);
    s->n_floats = mambac_state_size_bytes(model) / sizeof(float);
    s->data = calloc(s->n_floats ? s->n_floats : 1, sizeof(float));
    if (!s->data) {
        free(s);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory allocating a state of %zu bytes",
                       mambac_state_size_bytes(model));
    }
    *out = s;
    return MAMBAC_OK;
}

void mambac_state_free(mambac_state *s) {
    if (!s) return;
    free(s->data);
    free(s);
}

void mambac_state_reset(mambac_state *s) {
    memset(s->data, 0, s->n_floats * sizeof(float));
    s->n_tokens = 0;
}

int64_t mambac_state_n_tokens(const mambac_state *s) { return s->n_tokens; }

static void shape_fields(const mambac_model_info *c, uint32_t f[STATE_HEADER_U32]) {
    uint32_t v[STATE_HEADER_U32] = {STATE_VERSION,       (uint32_t)c->arch,    (uint32_t)c->n_layer,
                                    (uint32_t)c->d_model, (uint32_t)c->d_inner, (uint32_t)c->d_state,
                                    (uint32_t)c->d_conv,  (uint32_t)c->n_heads, (uint32_t)c->n_groups};
    memcpy(f, v, sizeof v);
}

mambac_status mambac_state_copy(mambac_state *dst, const mambac_state *src, mambac_error *err) {
    uint32_t a[STATE_HEADER_U32], b[STATE_HEADER_U32];
    shape_fields(&dst->model->info, a);
    shape_fields(&src->model->info, b);
    if (memcmp(a, b, sizeof a) != 0 || dst->n_floats != src->n_floats)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "state copy between models of different shapes");
    memcpy(dst->data, src->data, src->n_floats * sizeof(float));
    dst->n_tokens = src->n_tokens;
    return MAMBAC_OK;
}

static uint32_t fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
    return h;
}

static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

#define HEADER_BYTES (8 + 4 * STATE_HEADER_U32 + 16)

mambac_status mambac_state_save(const mambac_state *s, const char *path, mambac_error *err) {
    unsigned char head[HEADER_BYTES], tail[4];
    uint32_t f[STATE_HEADER_U32];
    shape_fields(&s->model->info, f);
    memcpy(head, STATE_MAGIC, 8);
    for (int i = 0; i < STATE_HEADER_U32; i++) put_u32(head + 8 + 4 * i, f[i]);
    put_u64(head + 8 + 4 * STATE_HEADER_U32, (uint64_t)s->n_tokens);
    put_u64(head + 16 + 4 * STATE_HEADER_U32, (uint64_t)s->n_floats);
    put_u32(tail, fnv1a(s->data, s->n_floats * sizeof(float))); /* floats are stored as in memory (x86/ARM: LE) */
    mc_atomic_file af;
    mambac_status st = mc_atomic_open(&af, path, err);
    if (st != MAMBAC_OK) return st;
    if ((st = mc_atomic_write(&af, head, sizeof head, err)) == MAMBAC_OK &&
        (st = mc_atomic_write(&af, s->data, s->n_floats * sizeof(float), err)) == MAMBAC_OK &&
        (st = mc_atomic_write(&af, tail, 4, err)) == MAMBAC_OK)
        return mc_atomic_commit(&af, err);
    mc_atomic_abort(&af);
    return st;
}

mambac_status mambac_state_load(mambac_state *s, const char *path, mambac_error *err) {
    mc_file f;
    mambac_status st = mc_file_map(path, &f, err);
    if (st != MAMBAC_OK) return st;
    size_t payload = s->n_floats * sizeof(float);
    uint32_t want[STATE_HEADER_U32];
    shape_fields(&s->model->info, want);
    if (f.size < HEADER_BYTES || memcmp(f.data, STATE_MAGIC, 8) != 0) {
        st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: not a mambac state file", path);
    } else if (get_le(f.data + 8, 4) != STATE_VERSION) {
        st = mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: state file version %u not supported", path, (unsigned)get_le(f.data + 8, 4));
    } else {
        for (int i = 1; i < STATE_HEADER_U32 && st == MAMBAC_OK; i++)
            if (get_le(f.data + 8 + 4 * i, 4) != want[i])
                st = mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s: state was saved for a model of a different shape", path);
        if (st == MAMBAC_OK && (get_le(f.data + 16 + 4 * STATE_HEADER_U32, 8) != s->n_floats || f.size != HEADER_BYTES + payload + 4))
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: truncated or wrong-sized state file", path);
        if (st == MAMBAC_OK && get_le(f.data + HEADER_BYTES + payload, 4) != fnv1a(f.data + HEADER_BYTES, payload))
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: state file checksum mismatch (corrupt)", path);
    }
    if (st == MAMBAC_OK) {
        memcpy(s->data, f.data + HEADER_BYTES, payload);
        s->n_tokens = (int64_t)get_le(f.data + 8 + 4 * STATE_HEADER_U32, 8);
    }
    mc_file_unmap(&f);
    return st;
}
