/* ssd_chunked_impl.h — the chunked SSD of Mamba-2 as matrix products, written once and
 * compiled per instruction set: the including file defines SSD_TARGET (the function's
 * target attribute), SSD_NAME, SSD_GEMM (that ISA's mc_gemm_fn) and
 *   static void ssd_decay_row(float *M, const float *CB, const float *cum, const float *dt, int64_t t)
 * which sets M[s] = CB[s] * exp(cum[t] - cum[s]) * dt[s] for s = 0..t. For each chunk of
 * l <= L tokens, group g and head h (P channels, state (P, N)):
 *   CB   (l, l) = C_g B_g^T                              GEMM, once per group
 *   M    (l, l) = CB * exp(cum_t - cum_s) * dt_s, s <= t  (causal decay mask)
 *   y    (l, P) = exp(cum_t) * (C_g S_h^T)  +  M X_h      two GEMMs
 *   S_h  (P, N) = exp(cum_l) S_h + (X_h^T * tail) B_g     GEMM, tail_s = exp(cum_l - cum_s) dt_s
 * the same algebra as mc_ssd_chunked (ops_ref.c), which stays the reference. Operands
 * are copied into contiguous / transposed scratch first (mc_ssd_scratch_floats). */
SSD_TARGET void SSD_NAME(const mc_ssd_args *a) {
    const int64_t P = a->P, N = a->N, L = a->L, hpg = a->H / a->G;
    const int64_t h0 = a->h0, h1 = a->h1 ? a->h1 : a->H;
    float *CB = a->scratch, *M = CB + L * L, *Bc = M + L * L, *Bt = Bc + L * N, *Xt = Bt + N * L, *Xs = Xt + P * L;
    float *Yt = Xs + P * L, *St = Yt + L * P, *cum = St + P * N, *tail = cum + L, *pack = tail + L;
    for (int64_t c0 = 0; c0 < a->T; c0 += L) {
        const int64_t l = a->T - c0 < L ? a->T - c0 : L;
        for (int64_t g = h0 / hpg; g < a->G && g * hpg < h1; g++) {
            const float *Cg = a->C + c0 * a->bc_stride + g * N, *Bg = a->B + c0 * a->bc_stride + g * N;
            for (int64_t s = 0; s < l; s++) { /* B of the chunk, as rows and transposed */
                memcpy(Bc + s * N, Bg + s * a->bc_stride, (size_t)N * sizeof(float));
                for (int64_t n = 0; n < N; n++) Bt[n * l + s] = Bg[s * a->bc_stride + n];
            }
            mc_weight Wb = {MAMBAC_DTYPE_F32, Bc, l, N, 0};
            SSD_GEMM(CB, L, Cg, a->bc_stride, l, &Wb, 0, l, NULL, pack);
            const int64_t hb = g * hpg > h0 ? g * hpg : h0, he = (g + 1) * hpg < h1 ? (g + 1) * hpg : h1;
            for (int64_t h = hb; h < he; h++) {
                float run = 0.0f;
                for (int64_t t = 0; t < l; t++) cum[t] = run += a->dt[(c0 + t) * a->dt_stride + h] * a->A[h];
                float *S = a->state + h * P * N, *y = a->y + c0 * a->y_stride + h * P;
                const float *X = a->x + c0 * a->x_stride + h * P;
                /* inter-chunk: y = exp(cum_t) * C S^T */
                mc_weight Ws = {MAMBAC_DTYPE_F32, S, P, N, 0};
                SSD_GEMM(y, a->y_stride, Cg, a->bc_stride, l, &Ws, 0, P, NULL, pack);
                for (int64_t t = 0; t < l; t++) {
                    const float e = expf(cum[t]);
                    for (int64_t p = 0; p < P; p++) y[t * a->y_stride + p] *= e;
                }
                /* intra-chunk: M (causal, decayed, dt-weighted CB) times X; 16 s at a time */
                for (int64_t s = 0; s < l; s++) tail[s] = a->dt[(c0 + s) * a->dt_stride + h]; /* dt of this head */
                for (int64_t t = 0; t < l; t++) {
                    ssd_decay_row(M + t * L, CB + t * L, cum, tail, t);
                    for (int64_t s = t + 1; s < l; s++) M[t * L + s] = 0.0f;
                }
                for (int64_t s = 0; s < l; s++)
                    for (int64_t p = 0; p < P; p++) Xt[p * l + s] = X[s * a->x_stride + p];
                mc_weight Wx = {MAMBAC_DTYPE_F32, Xt, P, l, 0};
                SSD_GEMM(Yt, P, M, L, l, &Wx, 0, P, NULL, pack);
                for (int64_t t = 0; t < l; t++)
                    for (int64_t p = 0; p < P; p++) y[t * a->y_stride + p] += Yt[t * P + p];
                /* state: decay, plus (X^T * tail) B */
                const float decay = expf(cum[l - 1]);
                for (int64_t s = 0; s < l; s++) tail[s] = expf(cum[l - 1] - cum[s]) * a->dt[(c0 + s) * a->dt_stride + h];
                for (int64_t p = 0; p < P; p++)
                    for (int64_t s = 0; s < l; s++) Xs[p * l + s] = Xt[p * l + s] * tail[s];
                mc_weight Wbt = {MAMBAC_DTYPE_F32, Bt, N, l, 0};
                SSD_GEMM(St, N, Xs, l, P, &Wbt, 0, N, NULL, pack);
                for (int64_t i = 0; i < P * N; i++) S[i] = S[i] * decay + St[i];
            }
        }
    }
}
