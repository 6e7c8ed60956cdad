/* optim.c — AdamW (decoupled weight decay, bias-corrected moments), global-norm
 * gradient clipping and the learning-rate schedule. Serial loops in a fixed order:
 * the same inputs give the same parameters bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/train.h"

mambac_status mc_adamw_init(mc_adamw *o, const mc_params *P, mambac_error *err) {
    memset(o, 0, sizeof *o);
    o->beta1 = 0.9f, o->beta2 = 0.95f, o->eps = 1e-8f, o->weight_decay = 0.1f;
    o->total = P->total;
    o->m = calloc((size_t)P->total, sizeof(float));
    o->v = calloc((size_t)P->total, sizeof(float));
    if (!o->m || !o->v) {
        mc_adamw_free(o);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory for the optimizer state");
    }
    return MAMBAC_OK;
}

void mc_adamw_free(mc_adamw *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

double mc_clip_grad(mc_params *P, double max_norm) {
    double ss = 0;
    for (size_t i = 0; i < P->n; i++)
        for (int64_t k = 0; k < P->v[i].n; k++) ss += (double)P->v[i].g[k] * P->v[i].g[k];
    const double norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        const float f = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < P->n; i++)
            for (int64_t k = 0; k < P->v[i].n; k++) P->v[i].g[k] *= f;
    }
    return norm;
}

void mc_adamw_update(mc_adamw *o, mc_params *P, float lr) {
    o->step++;
    const double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    const float a = (float)(lr / bc1), rb2 = (float)(1.0 / sqrt(bc2));
    for (size_t i = 0; i < P->n; i++) {
        const mc_param *p = &P->v[i];
        const int64_t off = p->w - P->w;
        float *m = o->m + off, *v = o->v + off;
        const float decay = p->decay ? 1.0f - lr * o->weight_decay : 1.0f;
        for (int64_t k = 0; k < p->n; k++) {
            const float g = p->g[k];
            m[k] = o->beta1 * m[k] + (1.0f - o->beta1) * g;
            v[k] = o->beta2 * v[k] + (1.0f - o->beta2) * g * g;
            p->w[k] = p->w[k] * decay - a * m[k] / (sqrtf(v[k]) * rb2 + o->eps);
        }
    }
}

float mc_lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min) {
    if (warmup > 0 && step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    const double progress = (double)(step - warmup) / (double)(total - warmup > 0 ? total - warmup : 1);
    return lr_min + (lr_max - lr_min) * 0.5f * (float)(1.0 + cos(M_PI * progress));
}
