/* test_ops.c — the reference kernels against independent double-precision loops
 * written here from the formulas (not from the kernels), on random inputs:
 *   - chunked SSD vs the sequential recurrence, for chunk sizes that do and don't
 *     divide T, from a non-zero state, with groups; and the one-token SSD step;
 *   - selective scan vs the recurrence in double;
 *   - causal conv prefill vs step, K = 1..5;
 *   - matmul with f16 / bf16 weights vs f32 weights of the same values;
 *   - f16 → f32 for all 65536 bit patterns against the compiler's _Float16;
 *   - the sampler: greedy, top-k 1, seeds, the exact sets kept by top-p and min-p,
 *     and a chi-square test that temperature sampling follows softmax(logits / T).
 * Tolerances: float32 kernels vs double references on O(1) values with sums of at most
 * a few hundred terms: relative errors ~1e-6; 1e-4 flags a bug. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/dtype.h"
#include "cpu/ops.h"
#include "mambac.h"

static uint64_t rng = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}
static float *rand_vec(size_t n, float scale, float offset) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = frand() * scale + offset;
    return v;
}
static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += b[i] * b[i];
    }
    return isnan(num) ? INFINITY : sqrt(num / (den > 0 ? den : 1));
}

static void test_ssd(void) {
    const int64_t T = 37, H = 4, P = 5, N = 7, G = 2, hpg = H / G;
    float *x = rand_vec((size_t)(T * H * P), 1, 0), *B = rand_vec((size_t)(T * 2 * G * N), 1, 0);
    float *dt = rand_vec((size_t)(T * H), 0.2f, 0.25f), *A = rand_vec((size_t)H, 0.5f, -1.0f);
    float *s0 = rand_vec((size_t)(H * P * N), 1, 0);
    const float *C = B + G * N; /* B and C interleaved in one row of 2GN, as in xBC */
    /* Double reference: the recurrence token by token. */
    double *yr = calloc((size_t)(T * H * P), sizeof(double)), *sr = malloc((size_t)(H * P * N) * sizeof(double));
    for (int64_t i = 0; i < H * P * N; i++) sr[i] = s0[i];
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            int64_t g = h / hpg;
            double d = dt[t * H + h], dA = exp(d * A[h]);
            for (int64_t p = 0; p < P; p++)
                for (int64_t n = 0; n < N; n++) {
                    double *s = &sr[(h * P + p) * N + n];
                    *s = *s * dA + d * x[t * H * P + h * P + p] * B[t * 2 * G * N + g * N + n];
                    yr[t * H * P + h * P + p] += *s * C[t * 2 * G * N + g * N + n];
                }
        }
    const int64_t chunks[] = {1, 3, 8, 16, 37, 64};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        int64_t L = chunks[k];
        float *y = calloc((size_t)(T * H * P), sizeof(float)), *s = malloc((size_t)(H * P * N) * sizeof(float));
        float *scratch = malloc((size_t)(L * L + 2 * L) * sizeof(float));
        memcpy(s, s0, (size_t)(H * P * N) * sizeof(float));
        mc_ssd_args a = {.T = T, .H = H, .P = P, .N = N, .G = G, .L = L, .x = x, .x_stride = H * P, .B = B, .C = C,
                         .bc_stride = 2 * G * N, .dt = dt, .dt_stride = H, .A = A, .y = y, .y_stride = H * P,
                         .state = s, .scratch = scratch};
        mc_ssd_chunked(&a);
        double ey = rel_err(y, yr, (size_t)(T * H * P)), es = rel_err(s, sr, (size_t)(H * P * N));
        CHECK(ey < 1e-5 && es < 1e-5, "chunked SSD, L=%lld: y error %.3g, state error %.3g", (long long)L, ey, es);
        free(y), free(s), free(scratch);
    }
    /* Step kernel, token by token. */
    float *y = calloc((size_t)(T * H * P), sizeof(float)), *s = malloc((size_t)(H * P * N) * sizeof(float));
    memcpy(s, s0, (size_t)(H * P * N) * sizeof(float));
    for (int64_t t = 0; t < T; t++) {
        mc_ssd_args a = {.T = 1, .H = H, .P = P, .N = N, .G = G, .L = 1, .x = x + t * H * P, .B = B + t * 2 * G * N,
                         .C = C + t * 2 * G * N, .dt = dt + t * H, .A = A, .y = y + t * H * P, .state = s};
        mc_ssd_step(&a);
    }
    double ey = rel_err(y, yr, (size_t)(T * H * P)), es = rel_err(s, sr, (size_t)(H * P * N));
    CHECK(ey < 1e-5 && es < 1e-5, "SSD step: y error %.3g, state error %.3g", ey, es);
    free(y), free(s), free(x), free(B), free(dt), free(A), free(s0), free(yr), free(sr);
}

static void test_selective_scan(void) {
    const int64_t T = 29, E = 6, N = 5;
    float *x = rand_vec((size_t)(T * E), 1, 0), *z = rand_vec((size_t)(T * E), 2, 0), *dt = rand_vec((size_t)(T * E), 3, 0);
    float *bc = rand_vec((size_t)(T * 2 * N), 1, 0), *A = rand_vec((size_t)(E * N), 0.5f, -1), *D = rand_vec((size_t)E, 1, 0);
    float *bias = rand_vec((size_t)E, 1, 0), *s0 = rand_vec((size_t)(E * N), 1, 0);
    dt[0] = 30.0f; /* exercises softplus's linear branch (threshold 20) */
    double *yr = malloc((size_t)(T * E) * sizeof(double)), *sr = malloc((size_t)(E * N) * sizeof(double));
    for (int64_t i = 0; i < E * N; i++) sr[i] = s0[i];
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < E; c++) {
            double v = (double)dt[t * E + c] + bias[c], d = v > 20 ? v : log1p(exp(v)), acc = 0, xv = x[t * E + c];
            for (int64_t n = 0; n < N; n++) {
                double *s = &sr[c * N + n];
                *s = exp(d * A[c * N + n]) * *s + d * bc[t * 2 * N + n] * xv;
                acc += *s * bc[t * 2 * N + N + n];
            }
            double zv = z[t * E + c];
            yr[t * E + c] = (acc + D[c] * xv) * zv / (1 + exp(-zv));
        }
    float *y = malloc((size_t)(T * E) * sizeof(float)), *s = malloc((size_t)(E * N) * sizeof(float));
    memcpy(s, s0, (size_t)(E * N) * sizeof(float));
    mc_scan_args a = {.T = T, .E = E, .N = N, .x = x, .x_stride = E, .z = z, .z_stride = E, .dt = dt, .dt_stride = E,
                      .B = bc, .C = bc + N, .bc_stride = 2 * N, .A = A, .D = D, .dt_bias = bias, .y = y, .y_stride = E,
                      .state = s};
    mc_selective_scan(&a);
    double ey = rel_err(y, yr, (size_t)(T * E)), es = rel_err(s, sr, (size_t)(E * N));
    CHECK(ey < 1e-5 && es < 1e-5, "selective scan: y error %.3g, state error %.3g", ey, es);
    free(x), free(z), free(dt), free(bc), free(A), free(D), free(bias), free(s0), free(yr), free(sr), free(y), free(s);
}

static void test_conv(void) {
    for (int64_t K = 1; K <= 5; K++) {
        const int64_t T = 11, C = 3, stride = 5;
        float *x = rand_vec((size_t)(T * stride), 1, 0), *w = rand_vec((size_t)(C * K), 1, 0), *b = rand_vec((size_t)C, 1, 0);
        float *win0 = rand_vec((size_t)(C * (K - 1) + 1), 1, 0);
        float *xp = malloc((size_t)(T * stride) * sizeof(float)), *wp = malloc((size_t)(C * K) * sizeof(float));
        memcpy(xp, x, (size_t)(T * stride) * sizeof(float));
        memcpy(wp, win0, (size_t)(C * (K - 1) + 1) * sizeof(float));
        mc_conv1d_prefill(xp, T, stride, C, K, w, b, wp);
        float *ws = malloc((size_t)(C * K) * sizeof(float)), *xs = malloc((size_t)(T * stride) * sizeof(float));
        memcpy(ws, win0, (size_t)(C * (K - 1) + 1) * sizeof(float));
        memcpy(xs, x, (size_t)(T * stride) * sizeof(float));
        for (int64_t t = 0; t < T; t++) mc_conv1d_step(xs + t * stride, C, K, w, b, ws);
        /* Double reference from the definition over [window, x]. */
        double maxerr = 0;
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < T; t++) {
                double acc = b[c];
                for (int64_t k = 0; k < K; k++) {
                    int64_t pos = t - (K - 1) + k; /* < 0 reads the window */
                    double in = pos >= 0 ? x[pos * stride + c] : win0[c * (K - 1) + (K - 1 + pos)];
                    acc += w[c * K + k] * in;
                }
                double want = acc / (1 + exp(-acc));
                maxerr = fmax(maxerr, fabs(xp[t * stride + c] - want));
                maxerr = fmax(maxerr, fabs(xs[t * stride + c] - want));
            }
        CHECK(maxerr < 1e-5, "conv K=%lld: max error %.3g", (long long)K, maxerr);
        int untouched = 1; /* columns beyond C are not convolved */
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = C; c < stride; c++) untouched &= xp[t * stride + c] == x[t * stride + c];
        CHECK(untouched, "conv K=%lld leaves other columns alone", (long long)K);
        CHECK(memcmp(wp, ws, (size_t)(C * (K - 1)) * sizeof(float)) == 0, "conv K=%lld: windows agree", (long long)K);
        free(x), free(w), free(b), free(win0), free(xp), free(wp), free(ws), free(xs);
    }
}

static uint16_t f32_to_bf16_trunc(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

static void test_matmul_dtypes(void) {
    const int64_t R = 9, Cc = 13, T = 4;
    float *w = rand_vec((size_t)(R * Cc), 1, 0), *x = rand_vec((size_t)(T * Cc + 3), 1, 0), *bias = rand_vec((size_t)R, 1, 0);
    uint16_t *wb = malloc((size_t)(R * Cc) * 2), *wh = malloc((size_t)(R * Cc) * 2);
    float *wbf = malloc((size_t)(R * Cc) * 4), *whf = malloc((size_t)(R * Cc) * 4);
    for (int64_t i = 0; i < R * Cc; i++) {
        wb[i] = f32_to_bf16_trunc(w[i]);
        wh[i] = (uint16_t)(rng >> 48 & 0x3bff); /* random finite f16 patterns of magnitude < 1 */
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        wbf[i] = mc_bf16_to_f32(wb[i]);
        whf[i] = mc_f16_to_f32(wh[i]);
    }
    float scratch[13], o1[T * R], o2[T * R];
    mc_weight W16 = {MAMBAC_DTYPE_BF16, wb, R, Cc, 0}, W32 = {MAMBAC_DTYPE_F32, wbf, R, Cc, 0};
    mc_matmul(o1, x, Cc + 1, T, &W16, bias, scratch); /* strided x rows */
    mc_matmul(o2, x, Cc + 1, T, &W32, bias, scratch);
    CHECK(memcmp(o1, o2, sizeof o1) == 0, "bf16 matmul equals f32 on the same values");
    mc_weight H16 = {MAMBAC_DTYPE_F16, wh, R, Cc, 0}, H32 = {MAMBAC_DTYPE_F32, whf, R, Cc, 0};
    mc_matmul(o1, x, Cc + 1, T, &H16, NULL, scratch);
    mc_matmul(o2, x, Cc + 1, T, &H32, NULL, scratch);
    CHECK(memcmp(o1, o2, sizeof o1) == 0, "f16 matmul equals f32 on the same values");
    double maxerr = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < R; r++) {
            double acc = 0;
            for (int64_t i = 0; i < Cc; i++) acc += (double)whf[r * Cc + i] * x[t * (Cc + 1) + i];
            maxerr = fmax(maxerr, fabs(acc - o1[t * R + r]));
        }
    CHECK(maxerr < 1e-5, "matmul vs double: %.3g", maxerr);
    free(w), free(x), free(bias), free(wb), free(wh), free(wbf), free(whf);
}

/* f16 → f32 for every bit pattern against the IEEE definition evaluated in double:
 * (-1)^s 2^(e-15) (1 + m/1024), subnormals 2^-14 m/1024, e = 31 inf / NaN. */
static void test_f16_exhaustive(void) {
    int bad = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        int s = b >> 15, e = (b >> 10) & 31, m = b & 1023;
        double v = e == 0 ? ldexp(m / 1024.0, -14) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1 + m / 1024.0, e - 15);
        if (s) v = -v;
        float got = mc_f16_to_f32((uint16_t)b);
        if (isnan(v) ? !isnan(got) : (got != (float)v || !signbit(got) != !signbit(v))) bad++;
    }
    CHECK(bad == 0, "f16 conversion wrong for %d of 65536 patterns", bad);
}

static void test_rmsnorm(void) {
    const int64_t n = 300;
    float *x = rand_vec((size_t)n, 3, 0.5f), *w = rand_vec((size_t)n, 1, 1), out[300];
    mc_rmsnorm(out, x, w, 1, n, 1e-5f);
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double inv = 1 / sqrt(ss / n + 1e-5), *want = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) want[i] = x[i] * inv * w[i];
    CHECK(rel_err(out, want, (size_t)n) < 1e-6, "rmsnorm");
    /* Grouped gated norm = per-group rmsnorm of y * silu(z). */
    float y[12], z[12], g[12], ref[12];
    for (int i = 0; i < 12; i++) y[i] = frand(), z[i] = frand(), g[i] = frand() + 1;
    for (int i = 0; i < 12; i++) ref[i] = y[i] * mc_silu(z[i]);
    for (int k = 0; k < 3; k++) mc_rmsnorm(ref + 4 * k, ref + 4 * k, g + 4 * k, 1, 4, 1e-5f); /* 3 groups of 4 */
    mc_gated_rmsnorm(y, z, g, 12, 3, 0, 1e-5f);
    CHECK(memcmp(y, ref, sizeof y) == 0, "grouped gated norm normalizes each group alone");
    free(x), free(w), free(want);
}

/* ---- sampler ----------------------------------------------------------------- */

static mambac_sampler *sampler(float temp, int top_k, float top_p, float min_p, uint64_t seed, int32_t n) {
    mambac_sampler_params p = mambac_sampler_default_params();
    p.temp = temp, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p, p.seed = seed;
    mambac_sampler *s;
    mambac_error err;
    CHECK(mambac_sampler_new(&p, n, &s, &err) == MAMBAC_OK, "sampler: %s", err.msg);
    return s;
}

/* argmax against a plain scan: every length 1..40 (tails past the 8-wide loop), the
 * maximum moved to each position, ties (the first wins), negatives, NaNs skipped. */
static void test_argmax(void) {
    float v[40];
    int bad = 0;
    for (int n = 1; n <= 40; n++)
        for (int at = 0; at < n; at++) {
            for (int i = 0; i < n; i++) v[i] = -100.0f - (float)((i * 7) % 11);
            v[at] = -1.0f;
            if (at + 3 < n) v[at + 3] = -1.0f; /* a later tie */
            if (at > 0) v[0] = NAN;
            bad += mambac_argmax(v, n) != at;
        }
    float nan3[3] = {NAN, NAN, NAN};
    CHECK(bad == 0 && mambac_argmax(nan3, 3) == 0, "argmax: %d wrong", bad);
}

/* Which ids appear over many draws. */
static void support(mambac_sampler *s, const float *logits, int32_t n, int *seen, int draws) {
    memset(seen, 0, (size_t)n * sizeof *seen);
    for (int i = 0; i < draws; i++) seen[mambac_sampler_sample(s, logits)]++;
}

static void test_sampler(void) {
    enum { V = 50 };
    float lg[V];
    for (int i = 0; i < V; i++) lg[i] = frand() * 3;
    int32_t best = mambac_argmax(lg, V);
    mambac_sampler *g = sampler(0, 0, 1, 0, 1, V), *k1 = sampler(1.0f, 1, 1, 0, 7, V);
    for (int i = 0; i < 20; i++) {
        CHECK(mambac_sampler_sample(g, lg) == best, "greedy = argmax");
        CHECK(mambac_sampler_sample(k1, lg) == best, "top-k 1 = greedy");
    }
    mambac_sampler_free(g), mambac_sampler_free(k1);
    /* Same seed, same tokens; another seed, another sequence. */
    mambac_sampler *a = sampler(1, 0, 1, 0, 42, V), *b = sampler(1, 0, 1, 0, 42, V), *c = sampler(1, 0, 1, 0, 43, V);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 100; i++) {
        int32_t x = mambac_sampler_sample(a, lg), y = mambac_sampler_sample(b, lg), z = mambac_sampler_sample(c, lg);
        same_ab &= x == y;
        same_ac &= x == z;
    }
    CHECK(same_ab, "same seed, same tokens");
    CHECK(!same_ac, "different seeds differ");
    mambac_sampler_free(a), mambac_sampler_free(b), mambac_sampler_free(c);

    /* Crafted logits, probabilities 0.5, 0.25, 0.125, 0.0625, ... */
    float cl[8];
    for (int i = 0; i < 8; i++) cl[i] = -(float)i * logf(2.0f);
    int seen[V];
    /* top-p 0.7: 0.5 < 0.7 <= 0.75 keeps exactly ids {0, 1}. */
    mambac_sampler *tp = sampler(1, 0, 0.7f, 0, 3, 8);
    support(tp, cl, 8, seen, 2000);
    CHECK(seen[0] && seen[1] && !seen[2] && !seen[3], "top-p 0.7 keeps {0,1}: %d %d %d %d", seen[0], seen[1], seen[2], seen[3]);
    mambac_sampler_free(tp);
    /* min-p 0.2: keeps p >= 0.1, i.e. {0, 1, 2} (0.125) but not 3 (0.0625). */
    mambac_sampler *mp = sampler(1, 0, 1, 0.2f, 5, 8);
    support(mp, cl, 8, seen, 4000);
    CHECK(seen[0] && seen[1] && seen[2] && !seen[3], "min-p 0.2 keeps {0,1,2}: %d %d %d %d", seen[0], seen[1], seen[2], seen[3]);
    mambac_sampler_free(mp);
    /* top-k 3 keeps {0,1,2}. */
    mambac_sampler *tk = sampler(1, 3, 1, 0, 9, 8);
    support(tk, cl, 8, seen, 4000);
    CHECK(seen[2] && !seen[3] && !seen[7], "top-k 3");
    mambac_sampler_free(tk);

    /* Temperature: frequencies follow softmax(logits / T). Chi-square with 7 degrees
     * of freedom; 24.3 is the 0.999 quantile, so a correct sampler fails 1 in 1000
     * seeds — the seed is fixed, so the test is deterministic. */
    const float T = 1.7f;
    const int draws = 20000;
    mambac_sampler *ts = sampler(T, 0, 1, 0, 2024, 8);
    support(ts, cl, 8, seen, draws);
    double z = 0, p[8];
    for (int i = 0; i < 8; i++) z += (p[i] = exp(cl[i] / T));
    double chi2 = 0;
    for (int i = 0; i < 8; i++) {
        double e = draws * p[i] / z;
        chi2 += (seen[i] - e) * (seen[i] - e) / e;
    }
    CHECK(chi2 < 24.3, "temperature sampling vs softmax(l/T): chi2 %.2f", chi2);
    mambac_sampler_free(ts);

    /* Repetition penalty pushes a recently seen id below its rival. */
    mambac_sampler_params rp = mambac_sampler_default_params();
    rp.temp = 0, rp.repeat_penalty = 2.0f, rp.repeat_last_n = 4;
    mambac_sampler *r;
    mambac_error err;
    mambac_sampler_new(&rp, 3, &r, &err);
    float two[3] = {1.0f, 0.8f, -1.0f};
    CHECK(mambac_sampler_sample(r, two) == 0, "no penalty yet");
    mambac_sampler_accept(r, 0);
    CHECK(mambac_sampler_sample(r, two) == 1, "penalized id 0 loses");
    mambac_sampler_free(r);
    rp.top_p = 0;
    CHECK(mambac_sampler_new(&rp, 3, &r, &err) == MAMBAC_ERR_INVALID_ARG, "top_p 0 refused");
}

int main(void) {
    test_ssd();
    test_selective_scan();
    test_conv();
    test_matmul_dtypes();
    test_f16_exhaustive();
    test_rmsnorm();
    test_sampler();
    test_argmax();
    return check_summary();
}
