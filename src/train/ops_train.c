/* ops_train.c — see ops_train.h. The backward formulas, per op:
 *  rmsnorm  y = x r w, r = (mean x^2 + eps)^-1/2:
 *           dw += dy x r;  dx = r (dy w) - x r^3 mean(dy w x)
 *  conv     y_t = b + sum_k w_k x_{t-K+1+k}:
 *           dw_k += sum_t dy_t x_{t-K+1+k};  db += sum_t dy_t;  dx_s = sum_k dy_{s+K-1-k} w_k
 *  scan     h_t = a_t h_{t-1} + d_t B_t x_t, a_t = exp(d_t A), y_t = h_t . C_t + D x_t:
 *           with g_t = dL/dh_t = dy_t C_t + a_{t+1} g_{t+1} (reverse time),
 *           dC_t += dy_t h_t;  dd_t += sum_n g (h_{t-1} a A + B x);  dA += g h_{t-1} a d;
 *           dB_t += g d x;  dx_t += sum_n g d B + D dy_t;  dD += dy_t x_t
 *  ssd      the same recurrence with a (P, N) state per head and one decay per head. */
#include "train/ops_train.h"

#include <stdlib.h>
#include <string.h>

void mc_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t n, float eps) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * n;
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        const float r = (float)(1.0 / sqrt(ss / (double)n + eps));
        rstd[t] = r;
        for (int64_t i = 0; i < n; i++) out[t * n + i] = xr[i] * r * w[i];
    }
}

void mc_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *rstd, const float *w, int64_t T,
                    int64_t n, int accumulate) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * n, *dy = dout + t * n;
        const float r = rstd[t];
        double dot = 0;
        for (int64_t i = 0; i < n; i++) {
            dot += (double)dy[i] * w[i] * xr[i];
            dw[i] += dy[i] * xr[i] * r;
        }
        const float k = (float)(dot / (double)n) * r * r * r;
        float *o = dx + t * n;
        for (int64_t i = 0; i < n; i++) {
            const float v = r * dy[i] * w[i] - xr[i] * k;
            o[i] = accumulate ? o[i] + v : v;
        }
    }
}

/* Both conv loops run over channels innermost (contiguous rows), with the taps
 * transposed to (K, channels) so the compiler can vectorize them. */
void mc_conv_fwd(float *out, const float *in, int64_t in_stride, const float *w, const float *b, int64_t B, int64_t L,
                 int64_t C, int64_t K, int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    float *wt = malloc((size_t)(K * nc) * sizeof(float));
    if (!wt) return;
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < nc; c++) wt[k * nc + c] = w[(c0 + c) * K + k];
    for (int64_t s = 0; s < B; s++)
        for (int64_t l = 0; l < L; l++) {
            float *o = out + (s * L + l) * C + c0;
            for (int64_t c = 0; c < nc; c++) o[c] = b ? b[c0 + c] : 0.0f;
            for (int64_t k = 0; k < K; k++) {
                const int64_t src = l - (K - 1) + k;
                if (src < 0) continue;
                const float *x = in + (s * L + src) * in_stride + c0, *wk = wt + k * nc;
                for (int64_t c = 0; c < nc; c++) o[c] += wk[c] * x[c];
            }
        }
    free(wt);
}

void mc_conv_bwd(float *din, int64_t din_stride, float *dw, float *db, const float *dout, const float *in, int64_t in_stride,
                 const float *w, int64_t B, int64_t L, int64_t C, int64_t K, int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    float *wt = malloc((size_t)(2 * K * nc) * sizeof(float)), *dwt = wt ? wt + K * nc : NULL;
    if (!wt) return;
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < nc; c++) wt[k * nc + c] = w[(c0 + c) * K + k], dwt[k * nc + c] = 0.0f;
    for (int64_t s = 0; s < B; s++)
        for (int64_t l = 0; l < L; l++) {
            const float *g = dout + (s * L + l) * C + c0;
            if (db)
                for (int64_t c = 0; c < nc; c++) db[c0 + c] += g[c];
            float *o = din + (s * L + l) * din_stride + c0;
            for (int64_t c = 0; c < nc; c++) o[c] = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                const int64_t src = l - (K - 1) + k, dst = l + (K - 1) - k;
                if (src >= 0) { /* this output read x[src] through tap k */
                    const float *x = in + (s * L + src) * in_stride + c0;
                    float *d = dwt + k * nc;
                    for (int64_t c = 0; c < nc; c++) d[c] += g[c] * x[c];
                }
                if (dst < L) { /* x[l] reaches output dst through tap k */
                    const float *gd = dout + (s * L + dst) * C + c0, *wk = wt + k * nc;
                    for (int64_t c = 0; c < nc; c++) o[c] += gd[c] * wk[c];
                }
            }
        }
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < nc; c++) dw[(c0 + c) * K + k] += dwt[k * nc + c];
    free(wt);
}

void mc_scan_fwd(const mc_scan_train *a, int64_t e0, int64_t e1) {
    const int64_t N = a->N;
    float *h = a->work;
    for (int64_t e = e0; e < e1; e++) {
        const float *Ae = a->A + e * N;
        for (int64_t n = 0; n < N; n++) h[n] = 0.0f;
        for (int64_t t = 0; t < a->L; t++) {
            const float d = a->delta[t * a->E + e], x = a->x[t * a->x_stride + e];
            const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
            float y = 0.0f;
            for (int64_t n = 0; n < N; n++) {
                h[n] = expf(d * Ae[n]) * h[n] + d * B[n] * x;
                y += h[n] * C[n];
            }
            a->ys[t * a->E + e] = y + a->D[e] * x;
        }
    }
}

void mc_scan_bwd(const mc_scan_train *a, int64_t e0, int64_t e1) {
    const int64_t N = a->N, L = a->L;
    float *hs = a->work, *as = a->work + L * N; /* h_t and a_t for every t of this channel */
    float g[512];                               /* dL/dh, N <= 512 (checked by the caller) */
    for (int64_t e = e0; e < e1; e++) {
        const float *Ae = a->A + e * N;
        for (int64_t t = 0; t < L; t++) { /* recompute the states */
            const float d = a->delta[t * a->E + e], x = a->x[t * a->x_stride + e];
            const float *B = a->B + t * a->bc_stride;
            const float *hp = t ? hs + (t - 1) * N : NULL;
            for (int64_t n = 0; n < N; n++) {
                const float at = expf(d * Ae[n]);
                as[t * N + n] = at;
                hs[t * N + n] = at * (hp ? hp[n] : 0.0f) + d * B[n] * x;
            }
        }
        for (int64_t n = 0; n < N; n++) g[n] = 0.0f;
        float dD = 0.0f;
        for (int64_t t = L - 1; t >= 0; t--) {
            const float d = a->delta[t * a->E + e], x = a->x[t * a->x_stride + e], dy = a->dys[t * a->E + e];
            const float *B = a->B + t * a->bc_stride, *C = a->C + t * a->bc_stride;
            float *dB = a->dB + t * a->bc_stride, *dC = a->dC + t * a->bc_stride;
            const float *h = hs + t * N, *hp = t ? hs + (t - 1) * N : NULL, *at = as + t * N;
            float dd = 0.0f, dx = dy * a->D[e];
            dD += dy * x;
            for (int64_t n = 0; n < N; n++) {
                const float gn = g[n] + dy * C[n];
                dC[n] += dy * h[n];
                const float da = hp ? gn * hp[n] : 0.0f;
                dd += da * at[n] * Ae[n] + gn * B[n] * x;
                a->dA[e * N + n] += da * at[n] * d;
                dB[n] += gn * d * x;
                dx += gn * d * B[n];
                g[n] = gn * at[n];
            }
            a->dx[t * a->E + e] = dx;
            a->ddelta[t * a->E + e] = dd;
        }
        a->dD[e] += dD;
    }
}

void mc_ssd_bwd(const mc_ssd_train *a, int64_t g) {
    const int64_t P = a->P, N = a->N, L = a->L, hpg = a->H / a->G, PN = P * N;
    float *S = a->work, *G = a->work + L * PN; /* states S_t (L, P, N); G = dL/dS_t (P, N) */
    float *dS = G + PN;                        /* carried gradient a_{t+1} G_{t+1} */
    for (int64_t h = g * hpg; h < (g + 1) * hpg; h++) {
        const float A = a->A[h];
        for (int64_t t = 0; t < L; t++) { /* recompute the states */
            const float dt = a->dt[t * a->dt_stride + h], at = expf(dt * A);
            const float *x = a->x + t * a->x_stride + h * P, *B = a->B + t * a->bc_stride + g * N;
            float *St = S + t * PN;
            const float *Sp = t ? St - PN : NULL;
            for (int64_t p = 0; p < P; p++)
                for (int64_t n = 0; n < N; n++) St[p * N + n] = at * (Sp ? Sp[p * N + n] : 0.0f) + dt * x[p] * B[n];
        }
        memset(dS, 0, (size_t)PN * sizeof(float));
        float dA = 0.0f;
        for (int64_t t = L - 1; t >= 0; t--) {
            const float dt = a->dt[t * a->dt_stride + h], at = expf(dt * A);
            const float *x = a->x + t * a->x_stride + h * P, *B = a->B + t * a->bc_stride + g * N;
            const float *C = a->C + t * a->bc_stride + g * N, *dy = a->dy + t * a->dy_stride + h * P;
            float *dx = a->dx + t * a->dx_stride + h * P, *dB = a->dB + t * a->bc_stride + g * N;
            float *dC = a->dC + t * a->bc_stride + g * N;
            const float *St = S + t * PN, *Sp = t ? St - PN : NULL;
            double da = 0, ddt = 0;
            for (int64_t p = 0; p < P; p++) {
                float dxp = 0.0f;
                for (int64_t n = 0; n < N; n++) {
                    const float gv = dS[p * N + n] + dy[p] * C[n];
                    G[p * N + n] = gv;
                    dC[n] += dy[p] * St[p * N + n];
                    if (Sp) da += (double)gv * Sp[p * N + n];
                    ddt += (double)gv * x[p] * B[n];
                    dxp += gv * B[n];
                    dB[n] += gv * dt * x[p];
                }
                dx[p] += dt * dxp;
            }
            a->ddt[t * a->dt_stride + h] += (float)(da * at * A + ddt);
            dA += (float)(da * at * dt);
            for (int64_t i = 0; i < PN; i++) dS[i] = at * G[i];
        }
        a->dA[h] += dA;
    }
}
