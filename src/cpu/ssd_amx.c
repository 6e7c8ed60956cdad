/* ssd_amx.c — Mamba-2's chunked SSD with its four matrix products on AMX tiles: the
 * algebra of ssd_chunked_impl.h (and of mc_ssd_chunked, the reference), the products
 * done as gemm_amx.c does them, both operands split into three exact bf16 parts and six
 * part products summed in float32 (the dropped ones are below 2^-23 of each product).
 * Per chunk of l <= L tokens and group g (C, B: l x N), then per head h (X: l x P, state
 * S: P x N):
 *   CB   (l, l) = C B^T                         once per group
 *   y    (l, P) = exp(cum_t) * C S^T + M X       M = CB * exp(cum_t - cum_s) * dt_s, s <= t
 *   S    (P, N) = exp(cum_l) S + (X * tail)^T B  tail_s = exp(cum_l - cum_s) dt_s
 * A product out[i][j] = sum_k u[i][k] v[j][k] takes u as the B operand (pair layout,
 * mc_amx_split_x: rows with k along them) and v as the A operand (row-major parts,
 * mc_amx_pack_rows), so every operand is given "with k along its rows": C and B as they
 * are, S as it is, M as it is, X and B transposed once (X^T, B^T), X * tail transposed.
 * The SSD was a quarter of Mamba-2 prefill on the AVX-512 GEMM (small 64 x 64 x 128
 * products at a quarter of the FMA peak). */
#if defined(__x86_64__)
#include <math.h>
#include <string.h>

#include "cpu/amx_tiles.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"

#define R32(n) (((n) + 31) / 32 * 32)

/* Floats of scratch mc_ssd_amx needs (see the layout in mc_ssd_amx). */
int64_t mc_ssd_amx_scratch_floats(int64_t L, int64_t N, int64_t P) {
    const int64_t Lp = R32(L), Np = R32(N), Pp = R32(P);
    const int64_t f32 = 1024 + 2 * L * L + 2 * L + L * N + N * L + 2 * P * L + L * P + P * N;
    const int64_t bf16 = 3 * (2 * Lp * Np + Np * Lp + Pp * Np + Lp * Lp + 2 * Pp * Lp);
    return f32 + bf16 / 2 + 64;
}

/* out[i][j] (rows of os floats) = sum_k u[i][k] v[j][k] for i < ni, j < nj: u as B-operand
 * planes of nip rows, v as A-operand parts of njp rows, Kp values of k. */
static void product(float *out, int64_t os, const uint16_t *u, int64_t nip, int64_t ni, const uint16_t *v, int64_t njp,
                    int64_t nj, int64_t Kp, float *c) {
    for (int64_t i = 0; i < ni; i += 32)
        for (int64_t j = 0; j < nj; j += 32) {
            mc_amx_tile_block(c, v + j * Kp, njp * Kp, Kp, u + (i / 16) * (Kp / 32) * 512, nip * Kp, Kp, &mc_amx_plan_f32);
            mc_amx_write_block(out + i * os, os, c, ni - i < 32 ? (int)(ni - i) : 32, j, nj - j < 32 ? (int)(nj - j) : 32,
                               NULL);
        }
}

/* rows x cols floats (row stride ss) -> dst (cols x rows, contiguous), times scale[row]
 * when scale is not NULL: 16 x 16 blocks through registers. */
MC_AMX_TARGET static void transpose(float *dst, const float *src, int64_t ss, int64_t rows, int64_t cols,
                                    const float *scale) {
    for (int64_t r = 0; r < rows; r += 16)
        for (int64_t c = 0; c < cols; c += 16) {
            const int nr = rows - r < 16 ? (int)(rows - r) : 16, nc = cols - c < 16 ? (int)(cols - c) : 16;
            const __mmask16 mc = mc_amx_mask(nc), mr = mc_amx_mask(nr);
            __m512 v[16];
            for (int i = 0; i < 16; i++) {
                v[i] = i < nr ? _mm512_maskz_loadu_ps(mc, src + (r + i) * ss + c) : _mm512_setzero_ps();
                if (scale && i < nr) v[i] = _mm512_mul_ps(v[i], _mm512_set1_ps(scale[r + i]));
            }
            mc_transpose16(v);
            for (int j = 0; j < nc; j++) _mm512_mask_storeu_ps(dst + (c + j) * rows + r, mr, v[j]);
        }
}

/* M[s] = CB[s] * exp(cum[t] - cum[s]) * dt[s] for s <= t, 0 after (up to l). */
MC_AMX_TARGET static void decay_row(float *M, const float *CB, const float *cum, const float *dt, int64_t t, int64_t l) {
    const __m512 ct = _mm512_set1_ps(cum[t]);
    for (int64_t s = 0; s < l; s += 16) {
        const __mmask16 m = mc_amx_mask(t + 1 - s), in = mc_amx_mask(l - s);
        const __m512 dec = mc_exp512(_mm512_sub_ps(ct, _mm512_maskz_loadu_ps(m, cum + s)));
        const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, CB + s), dec), _mm512_maskz_loadu_ps(m, dt + s));
        _mm512_mask_storeu_ps(M + s, in, _mm512_maskz_mov_ps(m, v));
    }
}

MC_AMX_TARGET void mc_ssd_amx(const mc_ssd_args *a) {
    if (!mc_cpu_has_amx()) {
        mc_ssd_avx512(a);
        return;
    }
    const int64_t P = a->P, N = a->N, L = a->L, hpg = a->H / a->G, h0 = a->h0, h1 = a->h1 ? a->h1 : a->H;
    const int64_t Lp = R32(L), Np = R32(N), Pp = R32(P);
    /* float32: C tiles | CB (L, L) | M (L, L) | cum, tail (L) | Bc (L, N) | Bt (N, L) |
     * Xt, Xst (P, L) | Yt (L, P) | St (P, N); then the bf16 operands */
    float *c = a->scratch, *CB = c + 1024, *M = CB + L * L, *cum = M + L * L, *tail = cum + L, *Bc = tail + L;
    float *Bt = Bc + L * N, *Xt = Bt + N * L, *Xst = Xt + P * L, *Yt = Xst + P * L, *St = Yt + L * P;
    uint16_t *Cu = (uint16_t *)(St + P * N); /* C: B operand, rows t, k = n */
    uint16_t *Bv = Cu + 3 * Lp * Np;         /* B: A operand, rows s, k = n */
    uint16_t *Btv = Bv + 3 * Lp * Np;        /* B^T: A operand, rows n, k = s */
    uint16_t *Sv = Btv + 3 * Np * Lp;        /* S: A operand, rows p, k = n */
    uint16_t *Mu = Sv + 3 * Pp * Np;         /* M: B operand, rows t, k = s */
    uint16_t *Xtv = Mu + 3 * Lp * Lp;        /* X^T: A operand, rows p, k = s */
    uint16_t *Xsu = Xtv + 3 * Pp * Lp;       /* (X * tail)^T: B operand, rows p, k = s */
    TILE_CONFIG();
    for (int64_t c0 = 0; c0 < a->T; c0 += L) {
        const int64_t l = a->T - c0 < L ? a->T - c0 : L, lp = R32(l);
        for (int64_t g = h0 / hpg; g < a->G && g * hpg < h1; g++) {
            const float *Cg = a->C + c0 * a->bc_stride + g * N, *Bg = a->B + c0 * a->bc_stride + g * N;
            for (int64_t s = 0; s < l; s++) memcpy(Bc + s * N, Bg + s * a->bc_stride, (size_t)N * sizeof(float));
            transpose(Bt, Bc, N, l, N, NULL);
            mc_amx_split_x(Cu, 3, Cg, a->bc_stride, l, lp, 0, lp / 16, N, Np);
            const mc_weight Wb = {MAMBAC_DTYPE_F32, Bc, l, N, 0}, Wbt = {MAMBAC_DTYPE_F32, Bt, N, l, 0};
            mc_amx_pack_rows(Bv, &Wb, 0, (int)l, (int)lp, 3, Np, Np);
            mc_amx_pack_rows(Btv, &Wbt, 0, (int)N, (int)Np, 3, lp, lp);
            product(CB, L, Cu, lp, l, Bv, lp, l, Np, c);
            const int64_t hb = g * hpg > h0 ? g * hpg : h0, he = (g + 1) * hpg < h1 ? (g + 1) * hpg : h1;
            for (int64_t h = hb; h < he; h++) {
                float run = 0.0f;
                for (int64_t t = 0; t < l; t++) cum[t] = run += a->dt[(c0 + t) * a->dt_stride + h] * a->A[h];
                float *S = a->state + h * P * N, *y = a->y + c0 * a->y_stride + h * P;
                const float *X = a->x + c0 * a->x_stride + h * P;
                /* inter-chunk: y = exp(cum_t) * C S^T */
                const mc_weight Ws = {MAMBAC_DTYPE_F32, S, P, N, 0};
                mc_amx_pack_rows(Sv, &Ws, 0, (int)P, (int)Pp, 3, Np, Np);
                product(y, a->y_stride, Cu, lp, l, Sv, Pp, P, Np, c);
                for (int64_t t = 0; t < l; t++) {
                    const float e = expf(cum[t]);
                    for (int64_t p = 0; p < P; p++) y[t * a->y_stride + p] *= e;
                }
                /* intra-chunk: y += M X, M the causal, decayed, dt-weighted CB */
                for (int64_t s = 0; s < l; s++) tail[s] = a->dt[(c0 + s) * a->dt_stride + h];
                for (int64_t t = 0; t < l; t++) decay_row(M + t * L, CB + t * L, cum, tail, t, l);
                mc_amx_split_x(Mu, 3, M, L, l, lp, 0, lp / 16, l, lp);
                transpose(Xt, X, a->x_stride, l, P, NULL);
                const mc_weight Wx = {MAMBAC_DTYPE_F32, Xt, P, l, 0};
                mc_amx_pack_rows(Xtv, &Wx, 0, (int)P, (int)Pp, 3, lp, lp);
                product(Yt, P, Mu, lp, l, Xtv, Pp, P, lp, c);
                for (int64_t t = 0; t < l; t++)
                    for (int64_t p = 0; p < P; p++) y[t * a->y_stride + p] += Yt[t * P + p];
                /* state: decay, plus (X * tail)^T B */
                const float decay = expf(cum[l - 1]);
                for (int64_t s = 0; s < l; s++) tail[s] = expf(cum[l - 1] - cum[s]) * a->dt[(c0 + s) * a->dt_stride + h];
                transpose(Xst, X, a->x_stride, l, P, tail);
                mc_amx_split_x(Xsu, 3, Xst, l, P, Pp, 0, Pp / 16, l, lp);
                product(St, N, Xsu, Pp, P, Btv, Np, N, lp, c);
                for (int64_t i = 0; i < P * N; i++) S[i] = S[i] * decay + St[i];
            }
        }
    }
    TILE_RELEASE();
}
#endif
