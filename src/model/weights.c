/* weights.c — the tensor table: which tensors a Mamba / Mamba-2 checkpoint holds,
 * under which names (transformers and mamba_ssm spellings), with which shapes given
 * the config, and where each one lands in struct mambac_model. One table drives the
 * name lookup, the shape checks, the float32 conversions and the parameter count. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "io/file.h"
#include "model/model.h"

typedef enum {
    T_MATRIX,  /* used in its stored dtype (copied only when f32 and misaligned) */
    T_VECTOR,  /* converted to a float32 copy */
    T_NEG_EXP, /* A_log: stored as the float32 -exp(A_log) */
} tkind;

typedef struct tspec {
    char name[128];
    int ndim;
    int64_t shape[3];
    int required;
    tkind kind;
    mc_weight *w;        /* T_MATRIX */
    const float **f;     /* T_VECTOR, T_NEG_EXP */
    const mc_tensor_entry *e;
} tspec;

typedef struct table {
    tspec *v;
    size_t n, cap;
} table;

static tspec *add(table *t, int required, tkind kind, int ndim, int64_t d0, int64_t d1, int64_t d2,
                  const char *fmt, ...) MC_PRINTF(8, 9);
static tspec *add(table *t, int required, tkind kind, int ndim, int64_t d0, int64_t d1, int64_t d2,
                  const char *fmt, ...) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        tspec *v = realloc(t->v, cap * sizeof *v);
        if (!v) return NULL;
        t->v = v;
        t->cap = cap;
    }
    tspec *s = &t->v[t->n++];
    memset(s, 0, sizeof *s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->required = required;
    s->kind = kind;
    s->ndim = ndim;
    s->shape[0] = d0;
    s->shape[1] = d1;
    s->shape[2] = d2;
    return s;
}

#define MAT(req, r, c, dst, ...) do { tspec *s_ = add(&t, req, T_MATRIX, 2, r, c, 0, __VA_ARGS__); if (!s_) goto nomem; s_->w = (dst); } while (0)
#define VEC(req, n, dst, ...) do { tspec *s_ = add(&t, req, T_VECTOR, 1, n, 0, 0, __VA_ARGS__); if (!s_) goto nomem; s_->f = (dst); } while (0)

static void shape_str(char *buf, size_t n, const int64_t *shape, int ndim) {
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%lld%s", (long long)shape[i], i + 1 < ndim ? ", " : "");
    if (k < n) snprintf(buf + k, n - k, ")");
}

/* The per-layer tensors of one layer, with shapes from the config. */
static int layer_specs(table *tp, const mambac_model_info *c, int i, mc_layer *L) {
    table t = *tp;
    const int64_t D = c->d_model, E = c->d_inner, N = c->d_state, K = c->d_conv;
    const int64_t C = mc_conv_channels(c);
    const int64_t in_rows = c->arch == MAMBAC_ARCH_MAMBA1 ? 2 * E : 2 * E + 2 * c->n_groups * N + c->n_heads;
    const char *p = "backbone.layers";
    VEC(1, D, &L->norm, "%s.%d.norm.weight", p, i);
    tspec *s;
    if (c->arch == MAMBAC_ARCH_MAMBA1) {
        const int64_t R = c->dt_rank;
        MAT(1, in_rows, D, &L->in_proj, "%s.%d.mixer.in_proj.weight", p, i);
        MAT(1, R + 2 * N, E, &L->x_proj, "%s.%d.mixer.x_proj.weight", p, i);
        MAT(1, E, R, &L->dt_proj, "%s.%d.mixer.dt_proj.weight", p, i);
        VEC(1, E, &L->dt_bias, "%s.%d.mixer.dt_proj.bias", p, i);
        if (!(s = add(&t, 1, T_NEG_EXP, 2, E, N, 0, "%s.%d.mixer.A_log", p, i))) goto nomem;
        s->f = &L->A;
        VEC(1, E, &L->D, "%s.%d.mixer.D", p, i);
    } else {
        const int64_t H = c->n_heads;
        MAT(1, in_rows, D, &L->in_proj, "%s.%d.mixer.in_proj.weight", p, i);
        VEC(1, H, &L->dt_bias, "%s.%d.mixer.dt_bias", p, i);
        if (!(s = add(&t, 1, T_NEG_EXP, 1, H, 0, 0, "%s.%d.mixer.A_log", p, i))) goto nomem;
        s->f = &L->A;
        VEC(1, H, &L->D, "%s.%d.mixer.D", p, i);
        if (c->gated_norm) VEC(1, E, &L->gnorm, "%s.%d.mixer.norm.weight", p, i);
    }
    if (c->proj_bias) {
        VEC(1, in_rows, &L->in_proj_b, "%s.%d.mixer.in_proj.bias", p, i);
        VEC(1, D, &L->out_proj_b, "%s.%d.mixer.out_proj.bias", p, i);
    }
    if (!(s = add(&t, 1, T_VECTOR, 3, C, 1, K, "%s.%d.mixer.conv1d.weight", p, i))) goto nomem;
    s->f = &L->conv_w;
    if (c->conv_bias) VEC(1, C, &L->conv_b, "%s.%d.mixer.conv1d.bias", p, i);
    MAT(1, D, E, &L->out_proj, "%s.%d.mixer.out_proj.weight", p, i);
    *tp = t;
    return 1;
nomem:
    *tp = t;
    return 0;
}

static mambac_status check_entry(const tspec *s, const mc_tensor_entry *e, mambac_error *err) {
    mambac_dtype dt;
    if (!mc_elem_to_dtype(e->elem, &dt))
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (expected F32, F16 or BF16)", e->file,
                       e->name, mc_elem_name(e->elem));
    int same = e->ndim == s->ndim;
    for (int d = 0; same && d < s->ndim; d++) same = e->shape[d] == s->shape[d];
    if (!same) {
        char want[96], got[96];
        shape_str(want, sizeof want, s->shape, s->ndim);
        shape_str(got, sizeof got, e->shape, e->ndim);
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has shape %s but the config implies %s", e->file, e->name,
                       got, want);
    }
    return MAMBAC_OK;
}

static int64_t numel_of(const tspec *s) {
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
    return n;
}

/* Resolves the embedding name (either spelling) and fixes the number of vocab rows. */
static mambac_status bind_embedding(struct mambac_model *m, const mc_tensor_entry **out, mambac_error *err) {
    mambac_model_info *c = &m->info;
    const mc_tensor_entry *e = mc_tensor_list_find(&m->tensors, "backbone.embeddings.weight");
    const mc_tensor_entry *e2 = mc_tensor_list_find(&m->tensors, "backbone.embedding.weight");
    if (e && e2) return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: both backbone.embeddings.weight and backbone.embedding.weight present", e->file);
    if (!e) e = e2;
    if (!e)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: missing tensor 'backbone.embeddings.weight' (or 'backbone.embedding.weight')",
                       m->dir);
    if (e->ndim != 2 || e->shape[1] != c->d_model)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' must be (vocab, %d)", e->file, e->name, c->d_model);
    if (c->n_vocab_rows) { /* mamba_ssm: the config fixes the padded row count */
        if (e->shape[0] != c->n_vocab_rows)
            return mc_fail(err, MAMBAC_ERR_FORMAT,
                           "%s: tensor '%s' has %lld rows but vocab_size %d padded to pad_vocab_size_multiple gives %d",
                           e->file, e->name, (long long)e->shape[0], c->vocab_size, c->n_vocab_rows);
    } else {
        if (e->shape[0] < c->vocab_size || e->shape[0] > (1 << 24))
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has %lld rows, fewer than vocab_size %d", e->file,
                           e->name, (long long)e->shape[0], c->vocab_size);
        c->n_vocab_rows = (int32_t)e->shape[0];
    }
    *out = e;
    return MAMBAC_OK;
}

mambac_status mc_model_bind(struct mambac_model *m, mambac_error *err) {
    mambac_model_info *c = &m->info;
    table t = {0};
    mambac_status st = MAMBAC_OK;
    unsigned char *used = calloc(m->tensors.n + 1, 1);
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!used || !m->layers) goto nomem;

    const mc_tensor_entry *emb = NULL;
    if ((st = bind_embedding(m, &emb, err)) != MAMBAC_OK) goto done;
    const int64_t V = c->n_vocab_rows, D = c->d_model;
    MAT(1, V, D, &m->embed, "%s", emb->name);
    VEC(1, D, &m->norm_f, "backbone.norm_f.weight");
    MAT(!c->tied_embeddings, V, D, &m->lm_head, "lm_head.weight");
    for (int i = 0; i < c->n_layer; i++)
        if (!layer_specs(&t, c, i, &m->layers[i])) goto nomem;

    /* Pass 1: find, check, size the arena. */
    size_t arena_floats = 0;
    for (size_t i = 0; i < t.n; i++) {
        tspec *s = &t.v[i];
        s->e = mc_tensor_list_find(&m->tensors, s->name);
        if (!s->e) {
            if (!s->required) continue;
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: missing tensor '%s'", m->dir, s->name);
            goto done;
        }
        if ((st = check_entry(s, s->e, err)) != MAMBAC_OK) goto done;
        used[s->e - m->tensors.v] = 1;
        int aligned_f32 = s->e->elem == MC_ELEM_F32 && ((uintptr_t)s->e->data % 4) == 0;
        if (s->kind != T_MATRIX || (s->e->elem == MC_ELEM_F32 && !aligned_f32)) arena_floats += (size_t)numel_of(s);
    }
    for (size_t i = 0; i < m->tensors.n; i++)
        if (!used[i]) {
            st = mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: unexpected tensor '%s' (not part of a %s model with this config)",
                         m->tensors.v[i].file, m->tensors.v[i].name, mambac_arch_name(c->arch));
            goto done;
        }

    /* Pass 2: fill. */
    m->arena = malloc((arena_floats ? arena_floats : 1) * sizeof(float));
    if (!m->arena) goto nomem;
    float *a = m->arena;
    int64_t n_params = 0, bytes = 0;
    for (size_t i = 0; i < t.n; i++) {
        tspec *s = &t.v[i];
        if (!s->e) continue;
        mambac_dtype dt;
        mc_elem_to_dtype(s->e->elem, &dt);
        int64_t n = numel_of(s);
        int shared_head = s->w == &m->lm_head && (c->tied_embeddings || s->e->data == m->embed.data);
        if (!shared_head) {
            n_params += n;
            bytes += (int64_t)s->e->nbytes;
        }
        if (s->kind == T_MATRIX) {
            *s->w = (mc_weight){dt, s->e->data, s->shape[0], s->shape[1], 0};
            if (dt == MAMBAC_DTYPE_F32 && ((uintptr_t)s->e->data % 4) != 0) {
                memcpy(a, s->e->data, (size_t)n * 4);
                s->w->data = a;
                a += n;
            }
        } else {
            mc_convert_to_f32(a, s->e->data, dt, (size_t)n);
            if (s->kind == T_NEG_EXP && !m->a_is_neg_exp)
                for (int64_t k = 0; k < n; k++) a[k] = -expf(a[k]);
            *s->f = a;
            a += n;
        }
    }
    if (c->tied_embeddings || !m->lm_head.data) m->lm_head = m->embed;
    /* The state (and the scratch sized like it) follows from the config alone: refuse a
     * config that asks for more state than the file has parameters (a released
     * checkpoint's state is about 2% of its weights), so a small file cannot make every
     * sequence allocate gigabytes. */
    const int64_t state = (int64_t)c->n_layer * (mc_conv_channels(c) * (c->d_conv - 1) + mc_ssm_state_floats(c));
    if (state > n_params && state > (1 << 22)) {
        st = mc_fail(err, MAMBAC_ERR_FORMAT,
                     "%s: the config asks for %lld floats of state a sequence (d_inner %d x d_state %d, %d layers) "
                     "but the file holds %lld parameters: refused",
                     m->path, (long long)state, c->d_inner, c->d_state, c->n_layer, (long long)n_params);
        goto done;
    }
    /* So does the scratch of a micro-batch: max_ubatch floats for every row a token passes
     * through (the products' outputs, the residual stream). A released checkpoint's
     * widths are about 1 / 20 000 of its parameters; refuse widths beyond 1 / 64 (a file
     * of d_model 2 and d_inner 32 768 would ask 33x its size for each context). */
    const int m1 = c->arch == MAMBAC_ARCH_MAMBA1;
    const int64_t width = 3 * (int64_t)c->d_model + m->layers[0].in_proj.rows + 2 * (int64_t)c->d_inner +
                          (m1 ? c->dt_rank + 2 * (int64_t)c->d_state : c->n_heads);
    if (width > (1 << 14) && width > n_params / 64) {
        st = mc_fail(err, MAMBAC_ERR_FORMAT,
                     "%s: the config's widths (d_model %d, d_inner %d, in_proj rows %lld) ask for %lld floats of "
                     "scratch a token but the file holds %lld parameters: refused",
                     m->path, c->d_model, c->d_inner, (long long)m->layers[0].in_proj.rows, (long long)width,
                     (long long)n_params);
        goto done;
    }
    c->n_params = n_params;
    c->weight_bytes = bytes;
    /* The fingerprint states are saved with: FNV-1a over the float32 norms, D and dt_bias
     * (kept float32 by every format mambac reads or writes, so a model's safetensors and
     * GGUF copies agree; A is left out: GGUF stores -exp(A_log) rounded by its writer). */
    uint64_t h = 0xcbf29ce484222325ull;
    const int64_t per = m1 ? c->d_inner : c->n_heads;
    for (int l = 0; l <= c->n_layer; l++) {
        const float *v[3] = {l < c->n_layer ? m->layers[l].norm : m->norm_f, l < c->n_layer ? m->layers[l].D : NULL,
                             l < c->n_layer ? m->layers[l].dt_bias : NULL};
        const int64_t n[3] = {c->d_model, per, per};
        for (int k = 0; k < 3; k++) {
            const unsigned char *b = (const unsigned char *)v[k];
            for (int64_t i = 0; b && i < n[k] * 4; i++) h = (h ^ b[i]) * 0x100000001b3ull;
        }
    }
    m->fingerprint = h;
    c->dtype = m->layers[0].in_proj.dtype;
done:
    free(t.v);
    free(used);
    return st;
nomem:
    st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory binding weights");
    goto done;
}
