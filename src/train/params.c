/* params.c — the trainable float32 parameters of a model, named as transformers names
 * them, in one arena (and a gradient arena of the same layout). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "model/model.h"
#include "model/repack_x16.h"
#include "train/train.h"

typedef struct builder {
    mc_params *P;
    int64_t off;
    int pass; /* 0: count, 1: fill */
} builder;

/* Declares a tensor; in the fill pass returns its slot in the arena. */
static float *decl(builder *b, int decay, int ndim, int64_t d0, int64_t d1, int64_t d2, const char *fmt, ...) {
    const int64_t n = d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
    mc_params *P = b->P;
    float *w = NULL;
    if (b->pass == 1) {
        mc_param *p = &P->v[P->n++];
        memset(p, 0, sizeof *p);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->name, sizeof p->name, fmt, ap);
        va_end(ap);
        p->ndim = ndim;
        p->shape[0] = d0, p->shape[1] = d1, p->shape[2] = d2;
        p->n = n;
        p->w = w = P->w + b->off;
        p->g = P->g + b->off;
        p->decay = decay;
    } else {
        P->n++;
    }
    b->off += (n + 15) / 16 * 16; /* 64-byte aligned tensors */
    return w;
}

static void copy_weight(float *dst, const mc_weight *w) {
    if (dst)
        for (int64_t r = 0; r < w->rows; r++) mc_weight_row_f32(dst + r * w->cols, w, r);
}

static void copy_vec(float *dst, const float *src, int64_t n) {
    if (dst && src) memcpy(dst, src, (size_t)n * sizeof(float));
}

/* Declares (and in the fill pass copies) every tensor of the model. */
static mambac_status build(builder *b, const struct mambac_model *m, mambac_error *err) {
    const mambac_model_info *c = &m->info;
    mc_params *P = b->P;
    const int64_t D = c->d_model, E = c->d_inner, N = c->d_state, K = c->d_conv, C = P->C, R = P->R, H = c->n_heads;
    const int m1 = c->arch == MAMBAC_ARCH_MAMBA1;
    const char *pre = "backbone.layers";
    float *w = decl(b, 1, 2, c->n_vocab_rows, D, 0, "backbone.embeddings.weight");
    copy_weight(w, &m->embed);
    if (b->pass) P->emb = w;
    for (int i = 0; i < c->n_layer; i++) {
        const mc_layer *S = &m->layers[i];
        mc_tlayer *T = b->pass ? &P->L[i] : NULL;
        mc_tlayer t = {0};
        t.norm = decl(b, 0, 1, D, 0, 0, "%s.%d.norm.weight", pre, i);
        copy_vec(t.norm, S->norm, D);
        t.in_w = decl(b, 1, 2, P->in_rows, D, 0, "%s.%d.mixer.in_proj.weight", pre, i);
        copy_weight(t.in_w, &S->in_proj);
        if (c->proj_bias) {
            t.in_b = decl(b, 0, 1, P->in_rows, 0, 0, "%s.%d.mixer.in_proj.bias", pre, i);
            copy_vec(t.in_b, S->in_proj_b, P->in_rows);
        }
        t.conv_w = decl(b, 1, 3, C, 1, K, "%s.%d.mixer.conv1d.weight", pre, i);
        copy_vec(t.conv_w, S->conv_w, C * K);
        if (c->conv_bias) {
            t.conv_b = decl(b, 0, 1, C, 0, 0, "%s.%d.mixer.conv1d.bias", pre, i);
            copy_vec(t.conv_b, S->conv_b, C);
        }
        if (m1) {
            t.x_w = decl(b, 1, 2, R + 2 * N, E, 0, "%s.%d.mixer.x_proj.weight", pre, i);
            copy_weight(t.x_w, &S->x_proj);
            t.dt_w = decl(b, 1, 2, E, R, 0, "%s.%d.mixer.dt_proj.weight", pre, i);
            copy_weight(t.dt_w, &S->dt_proj);
            t.dt_b = decl(b, 0, 1, E, 0, 0, "%s.%d.mixer.dt_proj.bias", pre, i);
            copy_vec(t.dt_b, S->dt_bias, E);
            t.A_log = decl(b, 0, 2, E, N, 0, "%s.%d.mixer.A_log", pre, i);
        } else {
            t.dt_b = decl(b, 0, 1, H, 0, 0, "%s.%d.mixer.dt_bias", pre, i);
            copy_vec(t.dt_b, S->dt_bias, H);
            t.A_log = decl(b, 0, 1, H, 0, 0, "%s.%d.mixer.A_log", pre, i);
        }
        const int64_t nA = m1 ? E * N : H;
        if (t.A_log) {
            /* A_log as stored (exp then log would lose bits); GGUF stores A = -exp(A_log). */
            char name[96];
            snprintf(name, sizeof name, "%s.%d.mixer.A_log", pre, i);
            const mc_tensor_entry *e = mc_tensor_list_find(&m->tensors, name);
            mambac_dtype dt;
            if (!m->a_is_neg_exp && e && mc_elem_to_dtype(e->elem, &dt)) {
                mc_convert_to_f32(t.A_log, e->data, dt, (size_t)nA);
            } else {
                for (int64_t k = 0; k < nA; k++) t.A_log[k] = logf(-S->A[k]);
            }
        }
        t.D = decl(b, 0, 1, m1 ? E : H, 0, 0, "%s.%d.mixer.D", pre, i);
        copy_vec(t.D, S->D, m1 ? E : H);
        if (!m1 && c->gated_norm) {
            t.gnorm = decl(b, 0, 1, E, 0, 0, "%s.%d.mixer.norm.weight", pre, i);
            copy_vec(t.gnorm, S->gnorm, E);
        }
        t.out_w = decl(b, 1, 2, D, E, 0, "%s.%d.mixer.out_proj.weight", pre, i);
        copy_weight(t.out_w, &S->out_proj);
        if (c->proj_bias) {
            t.out_b = decl(b, 0, 1, D, 0, 0, "%s.%d.mixer.out_proj.bias", pre, i);
            copy_vec(t.out_b, S->out_proj_b, D);
        }
        if (T) *T = t;
    }
    w = decl(b, 0, 1, D, 0, 0, "backbone.norm_f.weight");
    copy_vec(w, m->norm_f, D);
    if (b->pass) P->norm_f = w;
    if (m->lm_head.data != m->embed.data) {
        w = decl(b, 1, 2, c->n_vocab_rows, D, 0, "lm_head.weight");
        copy_weight(w, &m->lm_head);
        if (b->pass) P->lm_head = w;
    }
    (void)err;
    return MAMBAC_OK;
}

mambac_status mc_params_from_model(const mambac_model *model, mc_params *P, mambac_error *err) {
    const struct mambac_model *m = model;
    const mambac_model_info *c = &m->info;
    memset(P, 0, sizeof *P);
    P->cfg = *c;
    P->in_rows = m->layers[0].in_proj.rows;
    P->C = mc_conv_channels(c);
    P->R = c->arch == MAMBAC_ARCH_MAMBA1 ? c->dt_rank : 0;
    builder b = {P, 0, 0};
    build(&b, m, err);
    P->total = b.off;
    P->v = calloc(P->n, sizeof *P->v);
    P->L = calloc((size_t)c->n_layer, sizeof *P->L);
    P->w = aligned_alloc(64, (size_t)P->total * sizeof(float));
    P->g = aligned_alloc(64, (size_t)P->total * sizeof(float));
    if (!P->v || !P->L || !P->w || !P->g) {
        mc_params_free(P);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory for %lld parameters", (long long)P->total);
    }
    memset(P->w, 0, (size_t)P->total * sizeof(float));
    memset(P->g, 0, (size_t)P->total * sizeof(float));
    P->n = 0;
    b = (builder){P, 0, 1};
    return build(&b, m, err);
}

void mc_params_free(mc_params *P) {
    free(P->v);
    free(P->L);
    free(P->w);
    free(P->g);
    memset(P, 0, sizeof *P);
}

const mc_param *mc_params_find(const mc_params *P, const char *name) {
    for (size_t i = 0; i < P->n; i++)
        if (strcmp(P->v[i].name, name) == 0) return &P->v[i];
    return NULL;
}
