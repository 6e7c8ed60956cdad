/* model_train.c — the training forward pass (keeping the tape) and the backward pass
 * for both architectures, over a batch of B sequences of L tokens.
 *
 * Kept per layer (T = B L rows): the layer input, its rstd, the normalized input, the
 * in_proj output, the conv output before and after SiLU, Mamba-1's x_proj output, dt
 * before and after softplus, the scan / SSD output (with D x, before the gate), and the
 * out_proj input (plus Mamba-2's gated value and group rstd). The scan and SSD states
 * are not kept: the backward pass recomputes them per sequence and channel / head
 * (L N or L P N floats per thread), which costs one more scan and saves T E N floats
 * per layer (docs/TRAINING.md has the measurement). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "cpu/ops.h"
#include "train/act.h"
#include "train/ops_train.h"
#include "train/train.h"

typedef struct tlayer {
    float *h_in, *rstd, *xn, *proj, *convp, *act, *xdbl, *dtraw, *delta, *ys, *gated, *grstd, *yo;
    float *bcr; /* FalconMamba: 1 / rms of dt_r, B and C per row (T, 3) */
} tlayer;

struct mc_tape {
    int64_t B, L, T, rows_chunk;
    float *arena;
    int64_t floats;
    tlayer *lay;
    float *h, *rstd_f, *hf, *A;      /* residual stream, final norm, A per layer */
    /* backward work */
    float *dh, *dxn, *dproj, *dact, *dys, *dyo, *dxdbl, *ddelta, *dhf, *logits;
    float *thread_work;              /* per thread: scan / SSD recompute (+ SSD forward scratch) */
    int64_t work_stride;
    float *seq_acc;                  /* per sequence: dA and dD partial sums, reduced in order */
    int64_t acc_stride;
    int nt;
};

static int64_t al(int64_t n) { return (n + 15) / 16 * 16; }

mambac_status mc_tape_new(const mc_params *P, int64_t B, int64_t L, int n_threads, mc_tape **out, mambac_error *err) {
    const mambac_model_info *c = &P->cfg;
    const int m1 = c->arch == MAMBAC_ARCH_MAMBA1;
    const int64_t T = B * L, D = c->d_model, E = c->d_inner, N = c->d_state, C = P->C, R = P->R, H = c->n_heads;
    const int64_t G = c->n_groups, V = c->n_vocab_rows, in = P->in_rows, nl = c->n_layer;
    if (N > 512) return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "training supports d_state up to 512");
    if (!m1 && c->gated_norm && c->norm_before_gate)
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "training supports norm_before_gate = false only");
    mc_tape *t = calloc(1, sizeof *t);
    if (!t) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    t->B = B, t->L = L, t->T = T;
    t->rows_chunk = 256;
    t->nt = n_threads;
    const int64_t per_layer = al(T * D) * 2 + al(T) + al(T * in) + al(T * C) * 2 + al(T * E) * 2 +
                              (m1 ? al(T * (R + 2 * N)) + al(T * E) * 2 : al(T * H) + al(T * E) + al(T * G)) +
                              (c->bcdt_rms ? al(T * 3) : 0);
    const int64_t Acount = m1 ? E * N : H;
    const int64_t scan_work = m1 ? 2 * L * al(N) : (L + 2) * (c->head_dim) * N;
    const int64_t ssd_fwd = m1 ? 0 : mc_ssd_scratch_floats(c->chunk_size, N, c->head_dim) + (int64_t)H * c->head_dim * N;
    /* per thread: recompute buffer, SSD forward scratch + state; per sequence: dA, dD */
    t->work_stride = al(scan_work) + al(ssd_fwd);
    t->acc_stride = al(Acount) + al(m1 ? E : H);
    const int64_t global = al(T * D) * 3 + al(T) + al(Acount) * nl + al(T * D) * 2 + al(T * in) + al(T * C) + al(T * E) * 2 +
                           al(T * (m1 ? R + 2 * N : 1)) + al(T * (m1 ? E : H)) + al(t->rows_chunk * V);
    t->floats = per_layer * nl + global + t->work_stride * t->nt + t->acc_stride * B;
    t->arena = aligned_alloc(64, (size_t)t->floats * sizeof(float));
    t->lay = calloc((size_t)nl, sizeof *t->lay);
    if (!t->arena || !t->lay) {
        const long long mib = (long long)(t->floats * 4 >> 20);
        mc_tape_free(t);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory for the training tape (%lld MiB)", mib);
    }
    memset(t->arena, 0, (size_t)t->floats * sizeof(float)); /* the per-thread accumulators start at 0 */
    float *p = t->arena;
#define TAKE(n) (p += al(n), p - al(n))
    for (int64_t i = 0; i < nl; i++) {
        tlayer *y = &t->lay[i];
        y->h_in = TAKE(T * D), y->rstd = TAKE(T), y->xn = TAKE(T * D), y->proj = TAKE(T * in);
        y->convp = TAKE(T * C), y->act = TAKE(T * C), y->ys = TAKE(T * E), y->yo = TAKE(T * E);
        if (m1) y->xdbl = TAKE(T * (R + 2 * N)), y->dtraw = TAKE(T * E), y->delta = TAKE(T * E);
        else y->delta = TAKE(T * H), y->gated = TAKE(T * E), y->grstd = TAKE(T * G);
        if (c->bcdt_rms) y->bcr = TAKE(T * 3);
    }
    t->h = TAKE(T * D), t->rstd_f = TAKE(T), t->hf = TAKE(T * D), t->A = TAKE(Acount * nl);
    t->dh = TAKE(T * D), t->dxn = TAKE(T * D), t->dproj = TAKE(T * in), t->dact = TAKE(T * C);
    t->dys = TAKE(T * E), t->dyo = TAKE(T * E), t->dxdbl = TAKE(T * (m1 ? R + 2 * N : 1));
    t->ddelta = TAKE(T * (m1 ? E : H)), t->logits = TAKE(t->rows_chunk * V);
    t->dhf = t->dxn; /* the final norm's output gradient reuses the dxn buffer */
    t->thread_work = p;
    t->seq_acc = p + t->work_stride * t->nt;
#undef TAKE
    *out = t;
    return MAMBAC_OK;
}

void mc_train_sizes(const mc_params *P, int64_t B, int64_t L, int64_t *max_k, int64_t *tcap) {
    const mambac_model_info *c = &P->cfg;
    const int64_t T = B * L, D = c->d_model, E = c->d_inner, V = c->n_vocab_rows, in = P->in_rows;
    const int64_t xr = P->R + 2 * c->d_state, chunk = T < 256 ? T : 256;
    const int64_t dims[] = {D, E, in, V, T, xr, P->C};
    int64_t k = 1, w = 1;
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) k = dims[i] > k ? dims[i] : k;
    /* transposed weights (R K), transposed activations (T x width), products (R K) */
    const int64_t cand[] = {V * D, in * D, D * E, xr * E, E * P->R, T * in, T * P->C, T * E, T * D, T * xr, chunk * V};
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) w = cand[i] > w ? cand[i] : w;
    *max_k = k;
    *tcap = w;
}

void mc_tape_free(mc_tape *t) {
    if (!t) return;
    free(t->arena);
    free(t->lay);
    free(t);
}

/* ---- parallel loops -------------------------------------------------------------- */

typedef struct job {
    const mc_params *P;
    mc_tape *t;
    int layer, backward;
    const mc_tlayer *W;
    const mc_kernels *k;
    int simd; /* the SIMD forms of the scan and activations (MC_SIMD_, from the kernel set) */
} job;

static float *work_of(const mc_tape *t, int thread) { return t->thread_work + thread * t->work_stride; }

/* Mamba-1 scan, forward or backward, per sequence [s0, s1). */
static void scan_seq(void *arg, int64_t s0, int64_t s1, int thread) {
    const job *j = arg;
    const mc_params *P = j->P;
    mc_tape *t = j->t;
    const tlayer *y = &t->lay[j->layer];
    const int64_t L = t->L, E = P->cfg.d_inner, N = P->cfg.d_state, R = P->R, xs = R + 2 * N;
    float *w = work_of(t, thread);
    for (int64_t s = s0; s < s1; s++) {
        const int64_t r = s * L;
        mc_scan_train a = {.L = L, .E = E, .N = N, .x_stride = P->C, .bc_stride = xs,
                           .x = y->act + r * P->C, .delta = y->delta + r * E, .B = y->xdbl + r * xs + R,
                           .C = y->xdbl + r * xs + R + N, .A = t->A + j->layer * E * N, .D = j->W->D,
                           .ys = y->ys + r * E, .dys = t->dys + r * E, .dx = t->dact + r * E, .ddelta = t->ddelta + r * E,
                           .dB = t->dxdbl + r * xs + R, .dC = t->dxdbl + r * xs + R + N,
                           .dA = t->seq_acc + s * t->acc_stride, .dD = t->seq_acc + s * t->acc_stride + al(E * N), .work = w};
#if defined(__x86_64__)
        if (j->simd == MC_SIMD_AVX512) {
            if (j->backward) mc_scan_bwd_avx512(&a, 0, E);
            else mc_scan_fwd_avx512(&a, 0, E);
            continue;
        }
        if (j->simd == MC_SIMD_AVX2) {
            if (j->backward) mc_scan_bwd_avx2(&a, 0, E);
            else mc_scan_fwd_avx2(&a, 0, E);
            continue;
        }
#endif
        if (j->backward) mc_scan_bwd(&a, 0, E);
        else mc_scan_fwd(&a, 0, E);
    }
}

/* Mamba-2 SSD forward (the inference kernel, zero state) or backward, per sequence. */
static void ssd_seq(void *arg, int64_t s0, int64_t s1, int thread) {
    const job *j = arg;
    const mc_params *P = j->P;
    const mambac_model_info *c = &P->cfg;
    mc_tape *t = j->t;
    const tlayer *y = &t->lay[j->layer];
    const int64_t L = t->L, E = c->d_inner, N = c->d_state, H = c->n_heads, Pd = c->head_dim, G = c->n_groups, C = P->C;
    float *w = work_of(t, thread);
    const int64_t scan_work = (L + 2) * Pd * N;
    float *ssd_scratch = w + al(scan_work), *state = ssd_scratch + mc_ssd_scratch_floats(c->chunk_size, N, Pd);
    const float *A = t->A + j->layer * H;
    for (int64_t s = s0; s < s1; s++) {
        const int64_t r = s * L;
        if (!j->backward) {
            memset(state, 0, (size_t)(H * Pd * N) * sizeof(float));
            mc_ssd_args a = {.T = L, .H = H, .P = Pd, .N = N, .G = G, .L = c->chunk_size, .x = y->act + r * C, .x_stride = C,
                             .B = y->act + r * C + E, .C = y->act + r * C + E + G * N, .bc_stride = C,
                             .dt = y->delta + r * H, .dt_stride = H, .A = A, .y = y->ys + r * E, .y_stride = E,
                             .state = state, .scratch = ssd_scratch};
            j->k->ssd(&a);
            continue;
        }
        mc_ssd_train a = {.L = L, .H = H, .P = Pd, .N = N, .G = G, .x = y->act + r * C, .x_stride = C,
                          .B = y->act + r * C + E, .C = y->act + r * C + E + G * N, .bc_stride = C,
                          .dt = y->delta + r * H, .dt_stride = H, .A = A, .dy = t->dys + r * E, .dy_stride = E,
                          .dx = t->dact + r * C, .dx_stride = C, .dB = t->dact + r * C + E, .dC = t->dact + r * C + E + G * N,
                          .ddt = t->ddelta + r * H, .dA = t->seq_acc + s * t->acc_stride, .work = w};
        for (int64_t g = 0; g < G; g++) {
#if defined(__x86_64__)
            if (j->simd >= MC_SIMD_AVX2 && N <= 256) {
                mc_ssd_bwd_avx2(&a, g);
                continue;
            }
#endif
            mc_ssd_bwd(&a, g);
        }
    }
}

typedef struct conv_job {
    const mc_params *P;
    mc_tape *t;
    const tlayer *y;
    const mc_tlayer *W, *dW;
    int64_t in_off;
    int backward;
} conv_job;

static void conv_range(void *arg, int64_t c0, int64_t c1, int thread) {
    const conv_job *j = arg;
    const mc_tape *t = j->t;
    const int64_t C = j->P->C, K = j->P->cfg.d_conv, in = j->P->in_rows;
    (void)thread;
    if (!j->backward)
        mc_conv_fwd(j->y->convp, j->y->proj + j->in_off, in, j->W->conv_w, j->W->conv_b, t->B, t->L, C, K, c0, c1);
    else
        mc_conv_bwd(t->dproj + j->in_off, in, j->dW->conv_w, j->dW->conv_b, t->dact, j->y->proj + j->in_off, in, j->W->conv_w,
                    t->B, t->L, C, K, c0, c1);
}

/* ---- forward ------------------------------------------------------------------- */

static void layer_fwd(mc_tctx *c, const mc_params *P, mc_tape *t, int i) {
    const mambac_model_info *cf = &P->cfg;
    const mc_tlayer *W = &P->L[i];
    tlayer *y = &t->lay[i];
    const int m1 = cf->arch == MAMBAC_ARCH_MAMBA1;
    const int64_t T = t->T, D = cf->d_model, E = cf->d_inner, N = cf->d_state, C = P->C, R = P->R, H = cf->n_heads;
    const int64_t in = P->in_rows, G = cf->n_groups;
    memcpy(y->h_in, t->h, (size_t)(T * D) * sizeof(float));
    mc_rmsnorm_fwd(y->xn, y->rstd, t->h, W->norm, T, D, cf->norm_eps);
    mc_mm(c, y->proj, y->xn, D, T, W->in_w, in, D, W->in_b);
    /* A = -exp(A_log) for this step */
    float *A = t->A + i * (m1 ? E * N : H);
    for (int64_t k = 0; k < (m1 ? E * N : H); k++) A[k] = -expf(W->A_log[k]);
    conv_job cj = {P, t, y, W, NULL, m1 ? 0 : E, 0};
    mc_pool_for(c->pool, C, 8, conv_range, &cj);
    job j = {P, t, i, 0, W, c->k, mc_train_simd(c->k)};
    const int simd = j.simd;
    mc_act_silu(y->act, y->convp, T * C, simd);
    if (m1) {
        mc_mm(c, y->xdbl, y->act, C, T, W->x_w, R + 2 * N, E, NULL);
        if (cf->bcdt_rms) mc_bcdt_rms(y->xdbl, T, R + 2 * N, R, N, cf->mixer_rms_eps, y->bcr); /* FalconMamba */
        mc_mm(c, y->dtraw, y->xdbl, R + 2 * N, T, W->dt_w, E, R, W->dt_b);
        mc_act_softplus(y->delta, y->dtraw, NULL, T * E, simd);
        mc_pool_for(c->pool, t->B, 1, scan_seq, &j);
        for (int64_t r = 0; r < T; r++) mc_act_gate(y->yo + r * E, y->ys + r * E, y->proj + r * in + E, E, simd);
    } else {
        const int limited = cf->dt_min_limit > 0 || isfinite(cf->dt_max_limit);
        for (int64_t r = 0; r < T; r++) {
            float *d = y->delta + r * H;
            mc_act_softplus(d, y->proj + r * in + E + C, W->dt_b, H, simd);
            for (int64_t h = 0; limited && h < H; h++)
                d[h] = d[h] < cf->dt_min_limit ? cf->dt_min_limit : d[h] > cf->dt_max_limit ? cf->dt_max_limit : d[h];
        }
        mc_pool_for(c->pool, t->B, 1, ssd_seq, &j);
        const int64_t P_ = cf->head_dim, gs = E / G;
        for (int64_t r = 0; r < T; r++) {
            float *ys = y->ys + r * E, *g = y->gated + r * E;
            const float *x = y->act + r * C, *z = y->proj + r * in;
            for (int64_t e = 0; e < E; e++) ys[e] += W->D[e / P_] * x[e];
            mc_act_gate(g, ys, z, E, simd);
            if (W->gnorm) {
                for (int64_t q = 0; q < G; q++)
                    mc_rmsnorm_fwd(y->yo + r * E + q * gs, y->grstd + r * G + q, g + q * gs, W->gnorm + q * gs, 1, gs,
                                   cf->norm_eps);
            } else {
                memcpy(y->yo + r * E, g, (size_t)E * sizeof(float));
            }
        }
    }
    /* h += out_proj(yo) */
    mc_mm(c, t->dyo, y->yo, E, T, W->out_w, D, E, W->out_b); /* dyo as a temporary */
    for (int64_t k = 0; k < T * D; k++) t->h[k] += t->dyo[k];
}

/* Cross-entropy over rows [r0, r1) (chunk), with its backward into dhf and the head. */
static double head_chunk(mc_tctx *c, mc_params *P, mc_tape *t, const int32_t *ids, const int32_t *targets, double inv,
                         int64_t r0, int64_t r1, int backward, float scale) {
    const mambac_model_info *cf = &P->cfg;
    const int64_t D = cf->d_model, V = cf->n_vocab_rows, n = r1 - r0, L = t->L;
    const float *Wout = P->lm_head ? P->lm_head : P->emb;
    float *lg = t->logits;
    mc_mm(c, lg, t->hf + r0 * D, D, n, Wout, V, D, NULL);
    double loss = 0;
    for (int64_t k = 0; k < n; k++) {
        const int64_t r = r0 + k, l = r % L;
        float *row = lg + k * V;
        const int32_t target = targets ? targets[r] : l == L - 1 ? -1 : ids[r + 1];
        if (target < 0) { /* nothing to predict here (the last position of a sequence) */
            if (backward) memset(row, 0, (size_t)V * sizeof(float));
            continue;
        }
        float mx = row[0];
        for (int64_t v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        double se = 0;
        for (int64_t v = 0; v < V; v++) se += exp((double)(row[v] - mx));
        const double lse = mx + log(se);
        loss += lse - row[target];
        if (backward) {
            const float f = (float)(scale * inv);
            for (int64_t v = 0; v < V; v++) row[v] = (float)(exp((double)row[v] - lse)) * f;
            row[target] -= f;
        }
    }
    if (backward) {
        mc_mm_dx(c, t->dhf + r0 * D, D, lg, n, Wout, V, D);
        mc_mm_dw(c, mc_grad_of(P, Wout), lg, n, t->hf + r0 * D, D, V, D);
    }
    return loss * inv;
}

/* ---- backward ------------------------------------------------------------------ */

static void colsum_add(float *dst, const float *src, int64_t T, int64_t n, int64_t stride) {
    for (int64_t r = 0; r < T; r++)
        for (int64_t k = 0; k < n; k++) dst[k] += src[r * stride + k];
}

/* Sums the per-sequence dA / dD partial sums into the gradients, in sequence order
 * (so the result does not depend on the thread count), and clears them. */
static void reduce_seq_acc(mc_tape *t, float *dA_log, const float *A, float *dD, int64_t nA, int64_t nD) {
    for (int64_t s = 0; s < t->B; s++) {
        float *w = t->seq_acc + s * t->acc_stride, *wd = w + al(nA);
        for (int64_t k = 0; k < nA; k++) {
            dA_log[k] += w[k] * A[k]; /* A = -exp(A_log): dA_log = dA * A */
            w[k] = 0.0f;
        }
        for (int64_t k = 0; dD && k < nD; k++) {
            dD[k] += wd[k];
            wd[k] = 0.0f;
        }
    }
}

static void layer_bwd(mc_tctx *c, mc_params *P, mc_tape *t, int i) {
    const mambac_model_info *cf = &P->cfg;
    const mc_tlayer *W = &P->L[i];
    mc_tlayer dW;
    const float **src = (const float **)W;
    float **dst = (float **)&dW;
    for (size_t k = 0; k < sizeof dW / sizeof(float *); k++) dst[k] = mc_grad_of(P, src[k]);
    tlayer *y = &t->lay[i];
    const int m1 = cf->arch == MAMBAC_ARCH_MAMBA1;
    const int64_t T = t->T, D = cf->d_model, E = cf->d_inner, N = cf->d_state, C = P->C, R = P->R, H = cf->n_heads;
    const int64_t in = P->in_rows, G = cf->n_groups;
    /* out_proj */
    mc_mm_dx(c, t->dyo, E, t->dh, T, W->out_w, D, E);
    mc_mm_dw(c, dW.out_w, t->dh, T, y->yo, E, D, E);
    if (dW.out_b) colsum_add(dW.out_b, t->dh, T, D, D);
    job j = {P, t, i, 1, W, c->k, mc_train_simd(c->k)};
    const int simd = j.simd;
    float *A = t->A + i * (m1 ? E * N : H);
    if (m1) {
        for (int64_t r = 0; r < T; r++)
            mc_act_gate_bwd(t->dys + r * E, t->dproj + r * in + E, t->dyo + r * E, y->ys + r * E, y->proj + r * in + E, E, simd);
        memset(t->dxdbl, 0, (size_t)(T * (R + 2 * N)) * sizeof(float));
        mc_pool_for(c->pool, t->B, 1, scan_seq, &j); /* dact (as dx), ddelta, dB, dC, dA, dD */
        reduce_seq_acc(t, dW.A_log, A, dW.D, E * N, E);
        mc_act_dsoftplus_mul(t->ddelta, y->dtraw, NULL, T * E, simd);
        colsum_add(dW.dt_b, t->ddelta, T, E, E);
        mc_mm_dw(c, dW.dt_w, t->ddelta, T, y->xdbl, R + 2 * N, E, R);
        mc_mm_dx(c, t->dxdbl, R + 2 * N, t->ddelta, T, W->dt_w, E, R);
        if (cf->bcdt_rms) mc_bcdt_rms_bwd(t->dxdbl, R + 2 * N, y->xdbl, R + 2 * N, y->bcr, T, R, N);
        mc_mm_dw(c, dW.x_w, t->dxdbl, T, y->act, C, R + 2 * N, E);
        mc_mm_dx(c, t->dys, E, t->dxdbl, T, W->x_w, R + 2 * N, E); /* dys free now: x_proj's dx */
        for (int64_t k = 0; k < T * E; k++) t->dact[k] += t->dys[k];
        mc_act_dsilu_mul(t->dact, y->convp, T * E, simd);
    } else {
        const int64_t Pd = cf->head_dim, gs = E / G;
        /* gated norm and gate */
        for (int64_t r = 0; r < T; r++) {
            const float *g = y->gated + r * E, *dyo = t->dyo + r * E, *z = y->proj + r * in, *ys = y->ys + r * E;
            float *dg = t->dys + r * E; /* dgated, then dys in place */
            if (W->gnorm) {
                for (int64_t q = 0; q < G; q++)
                    mc_rmsnorm_bwd(dg + q * gs, dW.gnorm + q * gs, dyo + q * gs, g + q * gs, y->grstd + r * G + q,
                                   W->gnorm + q * gs, 1, gs, 0);
            } else {
                memcpy(dg, dyo, (size_t)E * sizeof(float));
            }
            mc_act_gate_bwd(dg, t->dproj + r * in, dg, ys, z, E, simd);
        }
        /* ys = ssd(x) + D x */
        memset(t->dact, 0, (size_t)(T * C) * sizeof(float));
        memset(t->ddelta, 0, (size_t)(T * H) * sizeof(float));
        for (int64_t r = 0; r < T; r++)
            for (int64_t e = 0; e < E; e++) {
                dW.D[e / Pd] += t->dys[r * E + e] * y->act[r * C + e];
                t->dact[r * C + e] = t->dys[r * E + e] * W->D[e / Pd];
            }
        mc_pool_for(c->pool, t->B, 1, ssd_seq, &j);
        reduce_seq_acc(t, dW.A_log, A, NULL, H, 0);
        /* dt = clamp(softplus(dt_raw + dt_bias)) */
        for (int64_t r = 0; r < T; r++) {
            float *g = t->dproj + r * in + E + C;
            memcpy(g, t->ddelta + r * H, (size_t)H * sizeof(float));
            mc_act_dsoftplus_mul(g, y->proj + r * in + E + C, W->dt_b, H, simd);
            for (int64_t h = 0; h < H; h++) {
                const float d = y->delta[r * H + h];
                if ((d <= cf->dt_min_limit && cf->dt_min_limit > 0) || d >= cf->dt_max_limit) g[h] = 0.0f; /* clamped */
                dW.dt_b[h] += g[h];
            }
        }
        mc_act_dsilu_mul(t->dact, y->convp, T * C, simd);
    }
    conv_job cj = {P, t, y, W, &dW, m1 ? 0 : E, 1};
    mc_pool_for(c->pool, C, 8, conv_range, &cj);
    mc_mm_dw(c, dW.in_w, t->dproj, T, y->xn, D, in, D);
    if (dW.in_b) colsum_add(dW.in_b, t->dproj, T, in, in);
    mc_mm_dx(c, t->dxn, D, t->dproj, T, W->in_w, in, D);
    mc_rmsnorm_bwd(t->dh, dW.norm, t->dxn, y->h_in, y->rstd, W->norm, T, D, 1);
}

double mc_train_step(mc_tctx *c, mc_params *P, mc_tape *t, const int32_t *ids, int backward, float scale) {
    return mc_train_step_targets(c, P, t, ids, NULL, backward, scale);
}

int64_t mc_train_count_targets(const int32_t *targets, int64_t B, int64_t L) {
    if (!targets) return B * (L - 1);
    int64_t n = 0;
    for (int64_t r = 0; r < B * L; r++) n += targets[r] >= 0;
    return n;
}

double mc_train_step_targets(mc_tctx *c, mc_params *P, mc_tape *t, const int32_t *ids, const int32_t *targets, int backward,
                             float scale) {
    const mambac_model_info *cf = &P->cfg;
    const int64_t T = t->T, D = cf->d_model;
    const int64_t counted = mc_train_count_targets(targets, t->B, t->L);
    const double inv = counted > 0 ? 1.0 / (double)counted : 0.0;
    for (int64_t r = 0; r < T; r++) memcpy(t->h + r * D, P->emb + (int64_t)ids[r] * D, (size_t)D * sizeof(float));
    for (int i = 0; i < cf->n_layer; i++) layer_fwd(c, P, t, i);
    mc_rmsnorm_fwd(t->hf, t->rstd_f, t->h, P->norm_f, T, D, cf->norm_eps);
    double loss = 0;
    for (int64_t r0 = 0; r0 < T; r0 += t->rows_chunk) {
        const int64_t r1 = r0 + t->rows_chunk < T ? r0 + t->rows_chunk : T;
        loss += head_chunk(c, P, t, ids, targets, inv, r0, r1, backward, scale);
    }
    if (!backward) return loss;
    /* final norm: t->h still holds its input */
    mc_rmsnorm_bwd(t->dh, mc_grad_of(P, P->norm_f), t->dhf, t->h, t->rstd_f, P->norm_f, T, D, 0);
    for (int i = cf->n_layer - 1; i >= 0; i--) layer_bwd(c, P, t, i);
    float *demb = mc_grad_of(P, P->emb);
    for (int64_t r = 0; r < T; r++) {
        float *g = demb + (int64_t)ids[r] * D;
        for (int64_t k = 0; k < D; k++) g[k] += t->dh[r * D + k];
    }
    return loss;
}
