/* test_kernels.c — the fast kernels against the reference, ggml test-backend-ops style:
 * every kernel set this CPU runs (scalar, avx2, avx512) x weight dtype (f32, bf16, f16)
 * x shapes of real models (mamba-130m / mamba2-130m projections) and awkward ones
 * (K not a multiple of the vector width, row counts not a multiple of the tile), T from
 * 1 (decode) to 67. Checks: normalized error vs mc_matmul (reference, same widened
 * weights), no NaN/inf, and guard values around the output untouched. Then the whole
 * model: logits bitwise identical for 1, 2 and 3 threads.
 * Tolerance: float32 sums of K <= 1536 products of O(1) values in a different order:
 * relative error ~1e-6; 1e-5 flags a bug. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/dtype.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "mambac.h"

static uint64_t rng = 7;
static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

#define GUARD 1234.5f

static void check_gemm(const mc_kernels *k, mambac_dtype dt, int64_t R, int64_t K, int64_t T) {
    const size_t es = dt == MAMBAC_DTYPE_F32 ? 4 : 2;
    unsigned char *w = malloc((size_t)(R * K) * es + 1);
    float *x = malloc((size_t)(T * (K + 3)) * sizeof(float)), *bias = malloc((size_t)R * sizeof(float));
    for (int64_t i = 0; i < R * K; i++) {
        float v = frand();
        if (dt == MAMBAC_DTYPE_F32) memcpy(w + 4 * i, &v, 4);
        else {
            uint32_t u;
            memcpy(&u, &v, 4);
            uint16_t h = dt == MAMBAC_DTYPE_BF16 ? (uint16_t)(u >> 16) : (uint16_t)(rng >> 48 & 0x3bff);
            memcpy(w + 2 * i, &h, 2);
        }
    }
    for (int64_t i = 0; i < T * (K + 3); i++) x[i] = frand();
    for (int64_t i = 0; i < R; i++) bias[i] = frand();
    /* Misaligned on purpose (w + 1 byte would break f32 loads of aligned-only code). */
    unsigned char *wm = malloc((size_t)(R * K) * es + 8);
    memcpy(wm + 2, w, (size_t)(R * K) * es);
    mc_weight W = {dt, wm + 2, R, K};
    float *ref = malloc((size_t)(T * R) * sizeof(float)), *scratch = malloc((size_t)K * sizeof(float));
    mc_matmul(ref, x, K + 3, T, &W, bias, scratch);
    /* Output with a row stride wider than R and guards on both sides and between rows. */
    const int64_t os = R + 5;
    float *buf = malloc((size_t)(T * os + 32) * sizeof(float)), *out = buf + 16;
    for (int64_t i = 0; i < T * os + 32; i++) buf[i] = GUARD;
    /* Two row ranges, as threads would split them. */
    int64_t mid = R / 2 / MC_GEMM_PANEL * MC_GEMM_PANEL;
    float *pack = malloc((size_t)MC_GEMM_SCRATCH(K) * sizeof(float));
    k->gemm(out, os, x, K + 3, T, &W, 0, mid, bias, pack);
    k->gemm(out, os, x, K + 3, T, &W, mid, R, bias, pack);
    free(pack);
    double num = 0, den = 0;
    int finite = 1, guards = 1;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t r = 0; r < R; r++) {
            float g = out[t * os + r], e = ref[t * R + r];
            finite &= isfinite(g);
            num += (double)(g - e) * (g - e);
            den += (double)e * e;
        }
        for (int64_t r = R; r < os; r++) guards &= out[t * os + r] == GUARD;
    }
    for (int i = 0; i < 16; i++) guards &= buf[i] == GUARD && out[T * os + i] == GUARD;
    double e = sqrt(num / (den > 0 ? den : 1));
    CHECK(finite && guards && e < 1e-5, "%s %s R=%lld K=%lld T=%lld: error %.3g finite %d guards %d", k->name,
          mambac_dtype_name(dt), (long long)R, (long long)K, (long long)T, e, finite, guards);
    free(w), free(wm), free(x), free(bias), free(ref), free(scratch), free(buf);
}

/* A kernel set's scan vs the reference scan on random inputs (N with and without a
 * vector tail; dt over softplus's whole range; a non-zero initial state). */
static void check_scan(const mc_kernels *k, int64_t E, int64_t N, int64_t T) {
    size_t xs = (size_t)(T * E);
    float *x = malloc(xs * 4), *z = malloc(xs * 4), *dt = malloc(xs * 4), *bc = malloc((size_t)(T * 2 * N) * 4);
    float *A = malloc((size_t)(E * N) * 4), *D = malloc((size_t)E * 4), *bias = malloc((size_t)E * 4);
    float *s0 = malloc((size_t)(E * N) * 4), *s1 = malloc((size_t)(E * N) * 4), *s2 = malloc((size_t)(E * N) * 4);
    float *y1 = malloc(xs * 4), *y2 = malloc(xs * 4);
    for (size_t i = 0; i < xs; i++) x[i] = frand(), z[i] = 2 * frand(), dt[i] = 6 * frand() - 2;
    for (int64_t i = 0; i < T * 2 * N; i++) bc[i] = frand();
    for (int64_t i = 0; i < E * N; i++) A[i] = -expf(2 * frand() + 1), s0[i] = frand();
    for (int64_t i = 0; i < E; i++) D[i] = frand(), bias[i] = frand();
    memcpy(s1, s0, (size_t)(E * N) * 4);
    memcpy(s2, s0, (size_t)(E * N) * 4);
    mc_scan_args a = {.T = T, .E = E, .N = N, .x = x, .x_stride = E, .z = z, .z_stride = E, .dt = dt, .dt_stride = E,
                      .B = bc, .C = bc + N, .bc_stride = 2 * N, .A = A, .D = D, .dt_bias = bias, .y = y1, .y_stride = E,
                      .state = s1};
    mc_selective_scan(&a);
    a.y = y2, a.state = s2;
    k->scan(&a);
    double num = 0, den = 0, sn = 0, sd = 0;
    for (size_t i = 0; i < xs; i++) num += (double)(y1[i] - y2[i]) * (y1[i] - y2[i]), den += (double)y1[i] * y1[i];
    for (int64_t i = 0; i < E * N; i++) sn += (double)(s1[i] - s2[i]) * (s1[i] - s2[i]), sd += (double)s1[i] * s1[i];
    double ey = sqrt(num / den), es = sqrt(sn / sd);
    CHECK(ey < 1e-5 && es < 1e-5, "%s scan E=%lld N=%lld T=%lld: y error %.3g state error %.3g", k->name, (long long)E,
          (long long)N, (long long)T, ey, es);
    free(x), free(z), free(dt), free(bc), free(A), free(D), free(bias), free(s0), free(s1), free(s2), free(y1), free(y2);
}

/* A kernel set's chunked SSD vs the reference, over head sub-ranges as threads split
 * them, from a non-zero state. */
static void check_ssd(const mc_kernels *k, int64_t T, int64_t H, int64_t P, int64_t N, int64_t G, int64_t L) {
    const int64_t xw = H * P, bw = 2 * G * N;
    float *x = malloc((size_t)(T * xw) * 4), *bc = malloc((size_t)(T * bw) * 4), *dt = malloc((size_t)(T * H) * 4);
    float *A = malloc((size_t)H * 4), *s0 = malloc((size_t)(H * P * N) * 4), *s1 = malloc((size_t)(H * P * N) * 4);
    float *s2 = malloc((size_t)(H * P * N) * 4), *y1 = malloc((size_t)(T * xw) * 4), *y2 = malloc((size_t)(T * xw) * 4);
    float *scratch = malloc((size_t)mc_ssd_scratch_floats(L, N, P) * 4);
    for (int64_t i = 0; i < T * xw; i++) x[i] = frand();
    for (int64_t i = 0; i < T * bw; i++) bc[i] = frand();
    for (int64_t i = 0; i < T * H; i++) dt[i] = 0.05f + 0.04f * frand();
    for (int64_t i = 0; i < H; i++) A[i] = -expf(frand() + 0.5f);
    for (int64_t i = 0; i < H * P * N; i++) s0[i] = frand();
    memcpy(s1, s0, (size_t)(H * P * N) * 4);
    memcpy(s2, s0, (size_t)(H * P * N) * 4);
    mc_ssd_args a = {.T = T, .H = H, .P = P, .N = N, .G = G, .L = L, .x = x, .x_stride = xw, .B = bc, .C = bc + G * N,
                     .bc_stride = bw, .dt = dt, .dt_stride = H, .A = A, .y = y1, .y_stride = xw, .state = s1, .scratch = scratch};
    mc_ssd_chunked(&a);
    a.y = y2, a.state = s2;
    for (int64_t h = 0; h < H; h += 3) { /* uneven head ranges, crossing groups */
        a.h0 = h, a.h1 = h + 3 < H ? h + 3 : H;
        k->ssd(&a);
    }
    /* One more token through both step kernels, from the states just computed. */
    mc_ssd_args s1a = a, s2a = a;
    s1a.T = s2a.T = 1, s1a.h0 = s2a.h0 = 0, s1a.h1 = s2a.h1 = 0;
    s1a.state = s1, s2a.state = s2, s1a.y = y1, s2a.y = y2;
    mc_ssd_step(&s1a);
    k->ssd_step(&s2a);
    double num = 0, den = 0, sn = 0, sd = 0;
    for (int64_t i = 0; i < T * xw; i++) num += (double)(y1[i] - y2[i]) * (y1[i] - y2[i]), den += (double)y1[i] * y1[i];
    for (int64_t i = 0; i < H * P * N; i++) sn += (double)(s1[i] - s2[i]) * (s1[i] - s2[i]), sd += (double)s1[i] * s1[i];
    double ey = sqrt(num / den), es = sqrt(sn / sd);
    CHECK(ey < 1e-5 && es < 1e-5, "%s ssd T=%lld H=%lld P=%lld N=%lld G=%lld L=%lld: y %.3g state %.3g", k->name, (long long)T,
          (long long)H, (long long)P, (long long)N, (long long)G, (long long)L, ey, es);
    free(x), free(bc), free(dt), free(A), free(s0), free(s1), free(s2), free(y1), free(y2), free(scratch);
}

static void test_threads_bitwise(void) {
    const char *dirs[] = {MAMBAC_TEST_DATA "/models/mamba1-tiny/hf", MAMBAC_TEST_DATA "/models/mamba2-groups/hf",
                          MAMBAC_TEST_DATA "/models/mamba2-tiny/hf-f16"};
    for (int d = 0; d < 3; d++) {
        mambac_model *m;
        mambac_error err;
        if (mambac_model_load(dirs[d], &m, &err) != MAMBAC_OK) {
            CHECK(0, "load: %s", err.msg);
            continue;
        }
        const mambac_model_info *c = mambac_model_get_info(m);
        int32_t ids[40];
        for (int i = 0; i < 40; i++) ids[i] = (i * 37 + 11) % c->vocab_size;
        float *lg[3];
        for (int nt = 1; nt <= 3; nt++) {
            mambac_context_params cp = mambac_context_default_params();
            cp.n_threads = nt;
            mambac_context *ctx;
            mambac_state *st;
            mambac_context_new(m, &cp, &ctx, &err);
            mambac_state_new(m, &st, &err);
            CHECK(mambac_context_threads(ctx) == nt, "threads");
            lg[nt - 1] = malloc((size_t)(40 * c->n_vocab_rows) * sizeof(float));
            mambac_eval(ctx, st, ids, 39, MAMBAC_LOGITS_ALL, lg[nt - 1], &err);
            mambac_eval(ctx, st, ids + 39, 1, MAMBAC_LOGITS_ALL, lg[nt - 1] + 39 * c->n_vocab_rows, &err);
            mambac_state_free(st);
            mambac_context_free(ctx);
        }
        size_t bytes = (size_t)(40 * c->n_vocab_rows) * sizeof(float);
        CHECK(memcmp(lg[0], lg[1], bytes) == 0 && memcmp(lg[0], lg[2], bytes) == 0, "%s: logits identical for 1, 2, 3 threads",
              dirs[d]);
        for (int i = 0; i < 3; i++) free(lg[i]);
        mambac_model_free(m);
    }
}

int main(void) {
    const char *names[] = {"scalar", "avx2", "avx512"};
    const mambac_dtype dts[] = {MAMBAC_DTYPE_F32, MAMBAC_DTYPE_BF16, MAMBAC_DTYPE_F16};
    /* (rows, cols): mamba-130m in_proj / out_proj / x_proj, mamba2-130m in_proj, odd ones. */
    const int64_t shapes[][2] = {{3072, 768}, {768, 1536}, {80, 1536}, {3352, 768}, {13, 37}, {7, 5}, {64, 16}};
    const int64_t Ts[] = {1, 2, 5, 67};
    int ran = 0;
    for (int n = 0; n < 3; n++) {
        const mc_kernels *k = mc_kernels_named(names[n]);
        if (!k) {
            printf("kernel set %s: not supported by this CPU, not tested here\n", names[n]);
            continue;
        }
        ran++;
        for (int d = 0; d < 3; d++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (size_t t = 0; t < sizeof Ts / sizeof Ts[0]; t++) {
                    /* The big shapes with many tokens on the scalar kernel take long; one T suffices there. */
                    if (n == 0 && shapes[s][0] * shapes[s][1] > 100000 && Ts[t] > 2) continue;
                    check_gemm(k, dts[d], shapes[s][0], shapes[s][1], Ts[t]);
                }
        check_scan(k, 1536, 16, 9);
        check_scan(k, 37, 13, 40);
        check_scan(k, 8, 40, 1);
        check_ssd(k, 300, 4, 64, 128, 1, 256); /* mamba2-130m's head shape, two chunks with a tail */
        check_ssd(k, 37, 8, 24, 16, 2, 8);     /* the fixture's grouped shape */
        check_ssd(k, 5, 6, 5, 7, 3, 16);       /* one partial chunk, odd sizes */
    }
    CHECK(ran >= 1, "at least the scalar kernels ran");
    printf("best kernel set here: %s\n", mc_kernels_best()->name);
    test_threads_bitwise();
    return check_summary();
}
