/* test_kernels.c — the fast kernels against the reference, ggml test-backend-ops style:
 * every kernel set this CPU runs (scalar, avx2, avx512, amx) x weight dtype (f32, bf16,
 * f16) x shapes of real models (mamba-130m / mamba2-130m projections) and awkward ones
 * (K not a multiple of the vector width, row counts not a multiple of the tile), T from
 * 1 (decode) to 67, and 160 on AMX (two passes of its 128-token planes, a partial
 * 32-token block). Checks: normalized error vs mc_matmul (reference, same widened
 * weights), no NaN/inf, and guard values around the output untouched. Then the whole
 * model: logits bitwise identical for 1, 2 and 3 threads.
 * Tolerance: float32 sums of K <= 1536 products of O(1) values in a different order:
 * relative error ~1e-6; 1e-5 flags a bug. */
#define _POSIX_C_SOURCE 200809L /* setenv */
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
    mc_weight W = {dt, wm + 2, R, K, 0};
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
    if (strcmp(k->name, "scalar") != 0) printf("%s ssd T=%lld: y error %.3g, state error %.3g\n", k->name, (long long)T, ey, es);
    CHECK(ey < 1e-5 && es < 1e-5, "%s ssd T=%lld H=%lld P=%lld N=%lld G=%lld L=%lld: y %.3g state %.3g", k->name, (long long)T,
          (long long)H, (long long)P, (long long)N, (long long)G, (long long)L, ey, es);
    free(x), free(bc), free(dt), free(A), free(s0), free(s1), free(s2), free(y1), free(y2), free(scratch);
}

/* A kernel set's conv1d prefill vs the reference: a strided input continuing from a
 * window, split over channel ranges as threads split it; output and window compared. */
static void check_conv(const mc_kernels *k, int64_t T, int64_t C, int64_t K, int with_bias) {
    const int64_t stride = C + 3;
    float *x1 = malloc((size_t)(T * stride) * 4), *x2 = malloc((size_t)(T * stride) * 4);
    float *w = malloc((size_t)(C * K) * 4), *b = malloc((size_t)C * 4);
    float *win1 = malloc((size_t)(C * (K - 1) + 1) * 4), *win2 = malloc((size_t)(C * (K - 1) + 1) * 4);
    for (int64_t i = 0; i < T * stride; i++) x1[i] = x2[i] = 3 * frand();
    for (int64_t i = 0; i < C * K; i++) w[i] = frand();
    for (int64_t i = 0; i < C; i++) b[i] = frand();
    for (int64_t i = 0; i < C * (K - 1); i++) win1[i] = win2[i] = frand();
    mc_conv1d_prefill(x1, T, stride, C, K, w, with_bias ? b : NULL, win1);
    const int64_t mid = C / 2 / 16 * 16;
    k->conv_prefill(x2, T, stride, mid, K, w, with_bias ? b : NULL, win2);
    k->conv_prefill(x2 + mid, T, stride, C - mid, K, w + mid * K, with_bias ? b + mid : NULL, win2 + mid * (K - 1));
    double num = 0, den = 0, wn = 0;
    int finite = 1, guards = 1;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t c = 0; c < C; c++) {
            const float a = x1[t * stride + c], v = x2[t * stride + c];
            num += (double)(a - v) * (a - v), den += (double)a * a;
            finite &= isfinite(v) != 0;
        }
        for (int64_t c = C; c < stride; c++) guards &= x1[t * stride + c] == x2[t * stride + c];
    }
    for (int64_t i = 0; i < C * (K - 1); i++) wn += fabs((double)win1[i] - win2[i]);
    double e = sqrt(num / den);
    CHECK(e < 1e-6 && finite && guards && wn == 0, "%s conv T=%lld C=%lld K=%lld: error %.3g, window diff %.3g", k->name,
          (long long)T, (long long)C, (long long)K, e, wn);
    free(x1), free(x2), free(w), free(b), free(win1), free(win2);
}

/* A kernel set's gated RMSNorm vs the reference, both gate orders and no norm. */
static void check_gated_norm(const mc_kernels *k, int64_t E, int64_t G) {
    float *y1 = malloc((size_t)E * 4), *y2 = malloc((size_t)E * 4), *z = malloc((size_t)E * 4), *w = malloc((size_t)E * 4);
    for (int mode = 0; mode < 3; mode++) {
        for (int64_t i = 0; i < E; i++) y1[i] = y2[i] = 4 * frand(), z[i] = 8 * frand(), w[i] = 1 + frand();
        const float *wn = mode == 2 ? NULL : w;
        mc_gated_rmsnorm(y1, z, wn, E, G, mode == 1, 1e-5f);
        k->gated_norm(y2, z, wn, E, G, mode == 1, 1e-5f);
        double num = 0, den = 0;
        for (int64_t i = 0; i < E; i++) num += (double)(y1[i] - y2[i]) * (y1[i] - y2[i]), den += (double)y1[i] * y1[i];
        CHECK(sqrt(num / den) < 1e-6, "%s gated norm E=%lld G=%lld mode %d: error %.3g", k->name, (long long)E,
              (long long)G, mode, sqrt(num / den));
    }
    free(y1), free(y2), free(z), free(w);
}

#if defined(__x86_64__)
#include "cpu/simd_avx2.h"
#include "cpu/simd_avx512.h"
/* The vector exp / softplus / SiLU of one ISA over n (a multiple of 16) inputs. */
typedef void (*math_fn)(const float *in, float *e, float *sp, float *si, int n);
MC_AVX512_TARGET static void math512(const float *in, float *e, float *sp, float *si, int n) {
    for (int i = 0; i < n; i += 16) {
        const __m512 x = _mm512_loadu_ps(in + i);
        _mm512_storeu_ps(e + i, mc_exp512(x)), _mm512_storeu_ps(sp + i, mc_softplus512(x)), _mm512_storeu_ps(si + i, mc_silu512(x));
    }
}
MC_AVX2_TARGET static void math256(const float *in, float *e, float *sp, float *si, int n) {
    for (int i = 0; i < n; i += 8) {
        const __m256 x = _mm256_loadu_ps(in + i);
        _mm256_storeu_ps(e + i, mc_exp256(x)), _mm256_storeu_ps(sp + i, mc_softplus256(x)), _mm256_storeu_ps(si + i, mc_silu256(x));
    }
}
/* Against libm (through the reference's formulas) over a sweep that crosses softplus'
 * threshold and exp's flush and saturation. */
static void check_math(const char *isa, math_fn fn) {
    double worst_exp = 0, worst_sp = 0, worst_silu = 0;
    for (float v = -120.0f; v < 95.0f; v += 0.01337f) {
        float in[16], e[16], sp[16], si[16];
        for (int i = 0; i < 16; i++) in[i] = v + 0.0007f * (float)i;
        fn(in, e, sp, si, 16);
        for (int i = 0; i < 16; i++) {
            const double re = exp((double)in[i]), rs = mc_softplus(in[i]), rl = mc_silu(in[i]);
            if (re > 1e-37 && re < 3e38) worst_exp = fmax(worst_exp, fabs(e[i] - re) / re);
            if (rs > 1e-37) worst_sp = fmax(worst_sp, fabs(sp[i] - rs) / rs);
            else worst_sp = fmax(worst_sp, fabs(sp[i] - rs) * 1e30); /* underflow: both ~0 */
            if (fabs(rl) > 1e-30) worst_silu = fmax(worst_silu, fabs(si[i] - rl) / fabs(rl));
        }
    }
    printf("%s math vs libm: exp %.3g, softplus %.3g, silu %.3g (worst relative)\n", isa, worst_exp, worst_sp, worst_silu);
    CHECK(worst_exp < 5e-7 && worst_sp < 1e-6 && worst_silu < 1e-6, "%s exp / softplus / silu: worst relative errors %.3g %.3g %.3g",
          isa, worst_exp, worst_sp, worst_silu);
}
#endif

#if defined(__x86_64__)
/* The two-phase AMX product (split once, items in any order, as forward.c runs it) must
 * give mc_gemm_amx's results bit for bit: items here run last to first. */
static void check_amx_two_phase(mambac_dtype dt, int64_t R, int64_t K, int64_t T) {
    const size_t rb = mc_dtype_row_bytes(dt, K);
    unsigned char *w = malloc((size_t)R * rb);
    float *row = malloc((size_t)K * sizeof(float)), *x = malloc((size_t)(T * K) * sizeof(float));
    for (int64_t r = 0; r < R; r++) {
        for (int64_t k = 0; k < K; k++) row[k] = frand();
        if (dt == MAMBAC_DTYPE_F32) memcpy(w + r * rb, row, (size_t)K * 4);
        else
            for (int64_t k = 0; k < K; k++) {
                uint32_t u;
                memcpy(&u, &row[k], 4);
                const uint16_t h = (uint16_t)(u >> 16);
                memcpy(w + r * rb + 2 * k, &h, 2);
            }
    }
    for (int64_t i = 0; i < T * K; i++) x[i] = frand();
    const mc_weight W = {dt, w, R, K, 0};
    float *a = malloc((size_t)(T * R) * sizeof(float)), *b = malloc((size_t)(T * R) * sizeof(float));
    float *scratch = malloc((size_t)MC_GEMM_SCRATCH(K) * sizeof(float));
    mc_gemm_amx(a, R, x, K, T, &W, 0, R, NULL, scratch);
    const int64_t bytes = mc_amx_split_bytes(&W, T);
    void *planes = malloc((size_t)(bytes > 0 ? bytes : 1));
    CHECK(bytes > 0, "two-phase AMX applies to %s T=%lld", mambac_dtype_name(dt), (long long)T);
    if (bytes > 0) {
        const int64_t groups = (T + 31) / 32 * 2;
        mc_amx_split(planes, &W, x, K, T, groups / 2, groups); /* the two halves in either order */
        mc_amx_split(planes, &W, x, K, T, 0, groups / 2);
        for (int64_t i = mc_amx_items(&W, T) - 1; i >= 0; i--) mc_amx_item(b, R, planes, &W, T, i, NULL, scratch);
        CHECK(memcmp(a, b, (size_t)(T * R) * sizeof(float)) == 0, "two-phase AMX %s R=%lld K=%lld T=%lld: bitwise equal",
              mambac_dtype_name(dt), (long long)R, (long long)K, (long long)T);
    }
    free(w), free(row), free(x), free(a), free(b), free(scratch), free(planes);
}
#endif

static void test_threads_bitwise(void) {
    setenv("MAMBAC_OVERSUBSCRIBE", "1", 1); /* 3 threads even on 2 CPUs: the splits are what is tested */
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
    const char *names[] = {"scalar", "avx2", "avx512", "amx"};
    const mambac_dtype dts[] = {MAMBAC_DTYPE_F32, MAMBAC_DTYPE_BF16, MAMBAC_DTYPE_F16};
    /* (rows, cols): mamba-130m in_proj / out_proj / x_proj, mamba2-130m in_proj, odd ones. */
    const int64_t shapes[][2] = {{3072, 768}, {768, 1536}, {80, 1536}, {3352, 768}, {13, 37}, {7, 5}, {64, 16}};
    const int64_t Ts[] = {1, 2, 5, 67, 160};
    int ran = 0;
    for (int n = 0; n < 4; n++) {
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
                    if (Ts[t] > 67 && strcmp(names[n], "amx") != 0) continue; /* the other kernels have no passes */
                    check_gemm(k, dts[d], shapes[s][0], shapes[s][1], Ts[t]);
                }
        check_scan(k, 1536, 16, 9);
        check_scan(k, 37, 13, 40);
        check_scan(k, 8, 40, 1);
        check_scan(k, 5, 80, 3); /* wider state than the vector kernel keeps */
        check_ssd(k, 300, 4, 64, 128, 1, 256); /* mamba2-130m's head shape, two chunks with a tail */
        check_ssd(k, 37, 8, 24, 16, 2, 8);     /* the fixture's grouped shape */
        check_ssd(k, 5, 6, 5, 7, 3, 16);       /* one partial chunk, odd sizes */
        check_conv(k, 67, 1792, 4, 1);         /* mamba2-130m's x B C channels */
        check_conv(k, 9, 37, 3, 0);            /* odd channel count, no bias */
        check_conv(k, 5, 20, 2, 1);
        check_conv(k, 4, 33, 7, 1);            /* a width without its own case */
        check_conv(k, 3, 18, 12, 1);           /* wider than the vector kernel keeps in registers */
        check_conv(k, 1, 1792, 4, 1);          /* decode: one token (K = 4, 3, 2 through register permutes) */
        check_conv(k, 1, 48, 3, 0);
        check_conv(k, 1, 32, 2, 1);
        check_gated_norm(k, 1536, 1);
        check_gated_norm(k, 1536, 8);
        check_gated_norm(k, 37, 1);
    }
    CHECK(ran >= 1, "at least the scalar kernels ran");
#if defined(__x86_64__)
    if (mc_kernels_named("avx512")) check_math("avx512", math512);
    if (mc_kernels_named("avx2")) check_math("avx2", math256);
    if (mc_kernels_named("amx")) {
        check_amx_two_phase(MAMBAC_DTYPE_F32, 3352, 768, 512); /* mamba2-130m in_proj, two passes */
        check_amx_two_phase(MAMBAC_DTYPE_BF16, 768, 1536, 300); /* out_proj, passes with a tail */
        check_amx_two_phase(MAMBAC_DTYPE_BF16, 70, 48, 33);     /* K and rows not whole tiles */
    }
#endif
    printf("best kernel set here: %s\n", mc_kernels_best()->name);
    test_threads_bitwise();
    return check_summary();
}
