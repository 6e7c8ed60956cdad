/* sampler.c — choosing the next token from logits.
 *
 * Order (as transformers' logits processors): repetition penalty, temperature,
 * top-k, top-p, min-p, then a draw from the renormalized distribution. temp == 0 is
 * greedy. Only ids below n_vocab (the real vocabulary) are ever candidates, so padded
 * embedding rows are never sampled. Deterministic for a given seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "mambac.h"

typedef struct cand {
    int32_t id;
    float logit;
    float p;
} cand;

struct mambac_sampler {
    mambac_sampler_params p;
    int32_t n_vocab;
    cand *cands;     /* n_vocab */
    int32_t *recent; /* ring of the last repeat_last_n accepted ids */
    int32_t n_recent, recent_pos;
    uint64_t rng;
};

mambac_sampler_params mambac_sampler_default_params(void) {
    return (mambac_sampler_params){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                   .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0};
}

mambac_status mambac_sampler_new(const mambac_sampler_params *params, int32_t n_vocab, mambac_sampler **out,
                                 mambac_error *err) {
    *out = NULL;
    const mambac_sampler_params *p = params;
    if (n_vocab < 1) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "sampler: vocabulary must not be empty");
    if (!(p->temp >= 0) || p->top_k < 0 || !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repeat_penalty > 0) || p->repeat_last_n < 0)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG,
                       "sampler: need temp >= 0, top_k >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, repeat_penalty > 0");
    struct mambac_sampler *s = calloc(1, sizeof *s);
    if (!s) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    s->recent = malloc(((size_t)p->repeat_last_n + 1) * sizeof *s->recent);
    if (!s->cands || !s->recent) {
        mambac_sampler_free(s);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    }
    s->rng = p->seed ^ 0x9e3779b97f4a7c15ull;
    *out = s;
    return MAMBAC_OK;
}

void mambac_sampler_free(mambac_sampler *s) {
    if (!s) return;
    free(s->cands);
    free(s->recent);
    free(s);
}

void mambac_sampler_accept(mambac_sampler *s, int32_t id) {
    if (s->p.repeat_last_n == 0) return;
    s->recent[s->recent_pos] = id;
    s->recent_pos = (s->recent_pos + 1) % s->p.repeat_last_n;
    if (s->n_recent < s->p.repeat_last_n) s->n_recent++;
}

/* splitmix64 → a double in [0, 1) */
static double next_uniform(struct mambac_sampler *s) {
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int by_logit_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id); /* stable for equal logits */
}

static int is_recent(const struct mambac_sampler *s, int32_t id) {
    for (int32_t i = 0; i < s->n_recent; i++)
        if (s->recent[i] == id) return 1;
    return 0;
}

int32_t mambac_sampler_sample(mambac_sampler *s, const float *logits) {
    const int32_t V = s->n_vocab;
    cand *c = s->cands;
    for (int32_t i = 0; i < V; i++) {
        float l = logits[i];
        if (s->p.repeat_penalty != 1.0f && is_recent(s, i)) l = l > 0 ? l / s->p.repeat_penalty : l * s->p.repeat_penalty;
        c[i] = (cand){i, l, 0};
    }
    if (s->p.temp == 0.0f) {
        int32_t best = 0;
        for (int32_t i = 1; i < V; i++)
            if (c[i].logit > c[best].logit) best = i;
        return best;
    }
    for (int32_t i = 0; i < V; i++) c[i].logit /= s->p.temp;
    qsort(c, (size_t)V, sizeof *c, by_logit_desc);
    int32_t n = V;
    if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += (c[i].p = (float)exp((double)c[i].logit - c[0].logit));
    for (int32_t i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
    if (s->p.top_p < 1.0f) { /* smallest prefix whose mass reaches top_p */
        double cum = 0;
        for (int32_t i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= s->p.top_p) { n = i + 1; break; }
        }
    }
    if (s->p.min_p > 0.0f) {
        const float floor_p = s->p.min_p * c[0].p;
        int32_t k = 1;
        while (k < n && c[k].p >= floor_p) k++;
        n = k;
    }
    sum = 0;
    for (int32_t i = 0; i < n; i++) sum += c[i].p;
    double r = next_uniform(s) * sum, acc = 0;
    for (int32_t i = 0; i < n; i++) {
        acc += c[i].p;
        if (r < acc) return c[i].id;
    }
    return c[n - 1].id;
}
