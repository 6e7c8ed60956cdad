/* state.c — creating, copying, saving and loading sequence states.
 *
 * File format (little-endian): "MAMBACST", u32 version (2), then the shape it was
 * made for — u32 arch, n_layer, d_model, d_inner, d_state, d_conv, n_heads, n_groups —
 * u64 n_tokens, u64 n_floats, u64 the model's fingerprint (model.h), the floats, and a
 * u32 FNV-1a checksum of the floats. A file whose shape or fingerprint differs from the
 * model's is refused. Version 1 files (no fingerprint) are still read. */
#include "infer/state.h"

#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/error.h"
#include "io/file.h"

#define STATE_MAGIC "MAMBACST"
#define STATE_VERSION 2u
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
    s->data = model->be->state_alloc(model, s->n_floats);
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
    if (s->data) s->model->be->state_free(s->model, s->data);
    free(s);
}

void mambac_state_reset(mambac_state *s) {
    s->model->be->state_zero(s->model, s->data, s->n_floats);
    s->n_tokens = 0;
}

/* The floats of a state in host memory: the state's own on a host backend, else a copy
 * in *tmp (the caller frees it). NULL when out of memory. */
static const float *host_floats(const mambac_state *s, float **tmp) {
    *tmp = NULL;
    const mc_backend *be = s->model->be;
    if (be->host_states) return s->data;
    *tmp = malloc((s->n_floats ? s->n_floats : 1) * sizeof(float));
    if (*tmp) be->state_read(s->model, *tmp, s->data, s->n_floats);
    return *tmp;
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
    const mc_backend *be = dst->model->be;
    if (be == src->model->be && dst->model->bmodel == src->model->bmodel) {
        be->state_copy(dst->model, dst->data, src->data, src->n_floats);
    } else { /* across backends or devices: through host memory */
        float *tmp;
        const float *h = host_floats(src, &tmp);
        if (!h) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory copying a state");
        be->state_write(dst->model, dst->data, h, src->n_floats);
        free(tmp);
    }
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

#define HEADER_V1 (8 + 4 * STATE_HEADER_U32 + 16)
#define HEADER_BYTES (HEADER_V1 + 8) /* version 2: + the fingerprint */

size_t mambac_state_file_bytes(const mambac_model *model) {
    return HEADER_BYTES + mambac_state_size_bytes(model) + 4;
}

static void make_header(const mambac_state *s, unsigned char head[HEADER_BYTES]) {
    uint32_t f[STATE_HEADER_U32];
    shape_fields(&s->model->info, f);
    memcpy(head, STATE_MAGIC, 8);
    for (int i = 0; i < STATE_HEADER_U32; i++) put_u32(head + 8 + 4 * i, f[i]);
    put_u64(head + 8 + 4 * STATE_HEADER_U32, (uint64_t)s->n_tokens);
    put_u64(head + 16 + 4 * STATE_HEADER_U32, (uint64_t)s->n_floats);
    put_u64(head + HEADER_V1, s->model->fingerprint);
}

mambac_status mambac_state_save(const mambac_state *s, const char *path, mambac_error *err) {
    unsigned char head[HEADER_BYTES], tail[4];
    float *tmp;
    const float *h = host_floats(s, &tmp);
    if (!h) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory saving a state");
    make_header(s, head);
    put_u32(tail, fnv1a(h, s->n_floats * sizeof(float))); /* floats are stored as in memory (x86/ARM: LE) */
    mc_atomic_file af;
    mambac_status st = mc_atomic_open(&af, path, err);
    if (st == MAMBAC_OK) {
        if ((st = mc_atomic_write(&af, head, sizeof head, err)) == MAMBAC_OK &&
            (st = mc_atomic_write(&af, h, s->n_floats * sizeof(float), err)) == MAMBAC_OK &&
            (st = mc_atomic_write(&af, tail, 4, err)) == MAMBAC_OK)
            st = mc_atomic_commit(&af, err);
        else
            mc_atomic_abort(&af);
    }
    free(tmp);
    return st;
}

mambac_status mambac_state_to_bytes(const mambac_state *s, void *buf, size_t size, mambac_error *err) {
    const size_t need = mambac_state_file_bytes(s->model), payload = s->n_floats * sizeof(float);
    if (!buf || size < need) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "state needs %zu bytes, buffer has %zu", need, size);
    unsigned char *b = buf;
    make_header(s, b);
    s->model->be->state_read(s->model, (float *)(void *)(b + HEADER_BYTES), s->data, s->n_floats); /* a byte copy */
    put_u32(b + HEADER_BYTES + payload, fnv1a(b + HEADER_BYTES, payload));
    return MAMBAC_OK;
}

/* Checks the bytes of a state file (`what` names them in messages) and loads them. */
static mambac_status load_bytes(mambac_state *s, const unsigned char *d, size_t size, const char *what, mambac_error *err) {
    const size_t payload = s->n_floats * sizeof(float);
    uint32_t want[STATE_HEADER_U32];
    shape_fields(&s->model->info, want);
    if (size < HEADER_V1 || memcmp(d, STATE_MAGIC, 8) != 0)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: not a mambac state file", what);
    const uint32_t version = (uint32_t)get_le(d + 8, 4);
    if (version != 1 && version != STATE_VERSION)
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: state file version %u not supported", what, (unsigned)version);
    const size_t head = version == 1 ? HEADER_V1 : HEADER_BYTES;
    for (int i = 1; i < STATE_HEADER_U32; i++)
        if (get_le(d + 8 + 4 * i, 4) != want[i])
            return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s: state was saved for a model of a different shape", what);
    if (get_le(d + 16 + 4 * STATE_HEADER_U32, 8) != s->n_floats || size != head + payload + 4)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: truncated or wrong-sized state file", what);
    if (version >= 2 && get_le(d + HEADER_V1, 8) != s->model->fingerprint)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "%s: state was saved by another model of the same shape", what);
    if (get_le(d + head + payload, 4) != fnv1a(d + head, payload))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: state file checksum mismatch (corrupt)", what);
    const uint64_t n_tokens = get_le(d + 8 + 4 * STATE_HEADER_U32, 8);
    if (n_tokens > (UINT64_C(1) << 62)) /* outside the checksum; counts must stay far from overflow */
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: state file's token count %llu is out of range", what,
                       (unsigned long long)n_tokens);
    const mc_backend *be = s->model->be;
    if (be->host_states) {
        memcpy(s->data, d + head, payload);
    } else {
        float *tmp = malloc(payload ? payload : 1);
        if (!tmp) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory loading a state");
        memcpy(tmp, d + head, payload);
        be->state_write(s->model, s->data, tmp, s->n_floats);
        free(tmp);
    }
    s->n_tokens = (int64_t)n_tokens;
    return MAMBAC_OK;
}

mambac_status mambac_state_from_bytes(mambac_state *s, const void *buf, size_t size, mambac_error *err) {
    if (!buf) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "state bytes are NULL");
    return load_bytes(s, buf, size, "state bytes", err);
}

mambac_status mambac_state_load(mambac_state *s, const char *path, mambac_error *err) {
    mc_file f;
    mambac_status st = mc_file_map(path, &f, err);
    if (st != MAMBAC_OK) return st;
    st = load_bytes(s, f.data, f.size, path, err);
    mc_file_unmap(&f);
    return st;
}
