/* ops_ref.c — reference kernels, see ops.h. Written for clarity: loops mirror the
 * formulas; float32 everywhere except the RMSNorm sum of squares (double, so the norm
 * of wide rows does not depend on summation order). */
#include <string.h>

#include "core/dtype.h"
#include "cpu/ops.h"
#include "model/repack_x16.h"

void mc_rmsnorm(float *out, const float *x, const float *w, int64_t T, int64_t n, float eps) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * n;
        float *o = out + t * n;
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(ss / (double)n + eps));
        for (int64_t i = 0; i < n; i++) o[i] = xr[i] * inv * w[i];
    }
}

void mc_bcdt_rms(float *xdbl, int64_t T, int64_t stride, int64_t R, int64_t N, float eps, float *rstd) {
    const int64_t off[3] = {0, R, R + N}, len[3] = {R, N, N};
    for (int64_t t = 0; t < T; t++)
        for (int p = 0; p < 3; p++) {
            float *v = xdbl + t * stride + off[p];
            double ss = 0;
            for (int64_t i = 0; i < len[p]; i++) ss += (double)v[i] * v[i];
            const float inv = (float)(1.0 / sqrt(ss / (double)len[p] + eps));
            for (int64_t i = 0; i < len[p]; i++) v[i] *= inv;
            if (rstd) rstd[t * 3 + p] = inv;
        }
}

/* y = x r with r = 1 / sqrt(mean(x^2) + eps): dx = r (g - y mean(g y)) */
void mc_bcdt_rms_bwd(float *g, int64_t gs, const float *y, int64_t ys, const float *rstd, int64_t T, int64_t R, int64_t N) {
    const int64_t off[3] = {0, R, R + N}, len[3] = {R, N, N};
    for (int64_t t = 0; t < T; t++)
        for (int p = 0; p < 3; p++) {
            float *gv = g + t * gs + off[p];
            const float *yv = y + t * ys + off[p];
            double dot = 0;
            for (int64_t i = 0; i < len[p]; i++) dot += (double)gv[i] * yv[i];
            const float m = (float)(dot / (double)len[p]), r = rstd[t * 3 + p];
            for (int64_t i = 0; i < len[p]; i++) gv[i] = r * (gv[i] - yv[i] * m);
        }
}

/* Row r of W as float32: a pointer into W itself when stored as aligned f32, else
 * widened (or copied) into scratch. */
static const float *weight_row(const mc_weight *W, int64_t r, float *scratch) {
    const char *p = (const char *)W->data + (size_t)r * mc_dtype_row_bytes(W->dtype, W->cols);
    if (W->dtype == MAMBAC_DTYPE_F32 && (uintptr_t)p % 4 == 0) return (const float *)p;
    mc_weight_row_f32(scratch, W, r);
    return scratch;
}

void mc_matmul(float *out, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
               const float *bias, float *row_scratch) {
    const int64_t n = W->cols, m = W->rows;
    for (int64_t r = 0; r < m; r++) {
        const float *w = weight_row(W, r, row_scratch);
        const float b = bias ? bias[r] : 0.0f;
        for (int64_t t = 0; t < T; t++) {
            const float *xr = x + t * x_stride;
            float acc = 0.0f;
            for (int64_t i = 0; i < n; i++) acc += w[i] * xr[i];
            out[t * m + r] = acc + b;
        }
    }
}

void mc_embed_row(float *out, const mc_weight *emb, int32_t id) { mc_weight_row_f32(out, emb, id); }

void mc_conv1d_prefill(float *x, int64_t T, int64_t stride, int64_t C, int64_t K, const float *w,
                       const float *b, float *window) {
    for (int64_t c = 0; c < C; c++) {
        const float *wc = w + c * K;
        float *hist = window + c * (K - 1); /* oldest first; becomes the new window */
        for (int64_t t = 0; t < T; t++) {
            float in = x[t * stride + c];
            float acc = b ? b[c] : 0.0f;
            for (int64_t k = 0; k < K - 1; k++) acc += wc[k] * hist[k];
            acc += wc[K - 1] * in;
            if (K > 1) {
                memmove(hist, hist + 1, (size_t)(K - 2) * sizeof(float));
                hist[K - 2] = in;
            }
            x[t * stride + c] = mc_silu(acc);
        }
    }
}

void mc_conv1d_step(float *x, int64_t C, int64_t K, const float *w, const float *b, float *window) {
    for (int64_t c = 0; c < C; c++) {
        float *win = window + c * (K - 1);
        const float *wc = w + c * K;
        float acc = (b ? b[c] : 0.0f) + wc[K - 1] * x[c];
        for (int64_t k = 0; k < K - 1; k++) acc += wc[k] * win[k];
        if (K > 1) {
            memmove(win, win + 1, (size_t)(K - 2) * sizeof(float));
            win[K - 2] = x[c];
        }
        x[c] = mc_silu(acc);
    }
}

void mc_selective_scan(const mc_scan_args *a) {
    const int64_t N = a->N;
    /* Channels are independent: the outer loop is the one to split across threads. */
    for (int64_t c = 0; c < a->E; c++) {
        float *s = a->state + c * N;
        const float *Ac = a->A + c * N;
        for (int64_t t = 0; t < a->T; t++) {
            const float dt = mc_softplus(a->dt[t * a->dt_stride + c] + a->dt_bias[c]);
            const float xv = a->x[t * a->x_stride + c];
            const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
            float acc = 0.0f;
            for (int64_t n = 0; n < N; n++) {
                s[n] = expf(dt * Ac[n]) * s[n] + dt * B[n] * xv;
                acc += s[n] * C[n];
            }
            const float y = acc + a->D[c] * xv;
            a->y[t * a->y_stride + c] = y * mc_silu(a->z[t * a->z_stride + c]);
        }
    }
}

void mc_ssd_chunked(const mc_ssd_args *a) {
    const int64_t P = a->P, N = a->N, L = a->L, heads_per_group = a->H / a->G;
    const int64_t h0 = a->h0, h1 = a->h1 ? a->h1 : a->H;
    float *CB = a->scratch;        /* (L, L): C_t . B_s within the chunk, one group */
    float *cum = CB + L * L;       /* (L): cumulative dt*A of one head */
    float *tail = cum + L;         /* (L): exp(cum_last - cum_s) * dt_s */
    for (int64_t c0 = 0; c0 < a->T; c0 += L) {
        const int64_t l = a->T - c0 < L ? a->T - c0 : L;
        for (int64_t g = h0 / heads_per_group; g < a->G && g * heads_per_group < h1; g++) {
            for (int64_t t = 0; t < l; t++) {
                const float *Ct = a->C + (c0 + t) * a->bc_stride + g * N;
                for (int64_t s = 0; s <= t; s++) {
                    const float *Bs = a->B + (c0 + s) * a->bc_stride + g * N;
                    float acc = 0.0f;
                    for (int64_t n = 0; n < N; n++) acc += Ct[n] * Bs[n];
                    CB[t * L + s] = acc;
                }
            }
            const int64_t hb = g * heads_per_group > h0 ? g * heads_per_group : h0;
            const int64_t he = (g + 1) * heads_per_group < h1 ? (g + 1) * heads_per_group : h1;
            for (int64_t h = hb; h < he; h++) {
                float run = 0.0f;
                for (int64_t t = 0; t < l; t++) {
                    run += a->dt[(c0 + t) * a->dt_stride + h] * a->A[h];
                    cum[t] = run;
                }
                float *S = a->state + h * P * N; /* (P, N) */
                /* Outputs: the state entering the chunk, decayed, plus the chunk's own
                 * causal (C B^T ∘ decay) contribution. */
                for (int64_t t = 0; t < l; t++) {
                    const float *Ct = a->C + (c0 + t) * a->bc_stride + g * N;
                    float *yt = a->y + (c0 + t) * a->y_stride + h * P;
                    const float enter = expf(cum[t]);
                    for (int64_t p = 0; p < P; p++) {
                        float acc = 0.0f;
                        for (int64_t n = 0; n < N; n++) acc += S[p * N + n] * Ct[n];
                        yt[p] = enter * acc;
                    }
                    for (int64_t s = 0; s <= t; s++) {
                        const float wts = CB[t * L + s] * expf(cum[t] - cum[s]) * a->dt[(c0 + s) * a->dt_stride + h];
                        const float *xs = a->x + (c0 + s) * a->x_stride + h * P;
                        for (int64_t p = 0; p < P; p++) yt[p] += wts * xs[p];
                    }
                }
                /* State leaving the chunk. */
                const float decay = expf(cum[l - 1]);
                for (int64_t s = 0; s < l; s++)
                    tail[s] = expf(cum[l - 1] - cum[s]) * a->dt[(c0 + s) * a->dt_stride + h];
                for (int64_t p = 0; p < P; p++) {
                    float *Sp = S + p * N;
                    for (int64_t n = 0; n < N; n++) Sp[n] *= decay;
                    for (int64_t s = 0; s < l; s++) {
                        const float coef = tail[s] * a->x[(c0 + s) * a->x_stride + h * P + p];
                        const float *Bs = a->B + (c0 + s) * a->bc_stride + g * N;
                        for (int64_t n = 0; n < N; n++) Sp[n] += coef * Bs[n];
                    }
                }
            }
        }
    }
}

void mc_ssd_step(const mc_ssd_args *a) {
    const int64_t P = a->P, N = a->N, heads_per_group = a->H / a->G;
    for (int64_t h = a->h0; h < (a->h1 ? a->h1 : a->H); h++) {
        const int64_t g = h / heads_per_group;
        const float dt = a->dt[h], dA = expf(dt * a->A[h]);
        const float *B = a->B + g * N, *C = a->C + g * N;
        float *S = a->state + h * P * N;
        for (int64_t p = 0; p < P; p++) {
            const float xv = a->x[h * P + p];
            float acc = 0.0f;
            for (int64_t n = 0; n < N; n++) {
                S[p * N + n] = S[p * N + n] * dA + dt * xv * B[n];
                acc += S[p * N + n] * C[n];
            }
            a->y[h * P + p] = acc;
        }
    }
}

void mc_gated_rmsnorm(float *y, const float *z, const float *w, int64_t E, int64_t G, int norm_before_gate,
                      float eps) {
    if (!w) {
        for (int64_t i = 0; i < E; i++) y[i] *= mc_silu(z[i]);
        return;
    }
    if (!norm_before_gate)
        for (int64_t i = 0; i < E; i++) y[i] *= mc_silu(z[i]);
    const int64_t gs = E / G;
    for (int64_t g = 0; g < G; g++) mc_rmsnorm(y + g * gs, y + g * gs, w + g * gs, 1, gs, eps);
    if (norm_before_gate)
        for (int64_t i = 0; i < E; i++) y[i] *= mc_silu(z[i]);
}
