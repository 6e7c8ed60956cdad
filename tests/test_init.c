/* test_init.c — random initialization and the safetensors writer:
 *   - a small model of each architecture written by mambac_model_write_init loads, has
 *     the parameter count its shapes imply, gives finite logits, is deterministic for a
 *     seed and differs across seeds; mamba_ssm's init rules hold (A_log = log(1..N) per
 *     channel for Mamba-1, log U(1,16) per head for Mamba-2, D = 1, dt bias such that
 *     softplus(bias) lies in [1e-4, 0.1], norms 1);
 *   - bf16 / f16 files hold the f32 values rounded to nearest even (checked against
 *     conversions written here in double precision);
 *   - writing over an existing folder is refused and leaves it alone. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "core/dtype.h"
#include "mambac.h"
#include "model/model.h"
#include "testutil.h"

static float *logits_of(const mambac_model *m) {
    const mambac_model_info *c = mambac_model_get_info(m);
    mambac_context *ctx;
    mambac_state *st;
    mambac_error err;
    mambac_context_new(m, NULL, &ctx, &err);
    mambac_state_new(m, &st, &err);
    int32_t ids[9] = {1, 5, 9, 2, 7, 3, 3, 8, 0};
    float *lg = malloc((size_t)(9 * c->n_vocab_rows) * sizeof(float));
    mambac_eval(ctx, st, ids, 9, MAMBAC_LOGITS_ALL, lg, &err);
    mambac_state_free(st);
    mambac_context_free(ctx);
    return lg;
}

static void test_arch(const char *tmp, mambac_arch arch) {
    mambac_init_params p = mambac_init_default_params(arch);
    p.d_model = 32, p.n_layer = 2, p.vocab_size = 50, p.seed = 5;
    if (arch == MAMBAC_ARCH_MAMBA2) p.d_state = 16, p.head_dim = 16, p.n_groups = 2, p.chunk_size = 8;
    char name[64];
    snprintf(name, sizeof name, "init-%d", arch);
    char *dir = path_in(tmp, name), *dir2 = path_in(tmp, "other-seed");
    mambac_error err;
    CHECK(mambac_model_write_init(&p, dir, &err) == MAMBAC_OK, "init: %s", err.msg);
    CHECK(mambac_model_write_init(&p, dir, &err) == MAMBAC_ERR_IO && strstr(err.msg, "already exists"), "no overwrite: %s", err.msg);
    p.seed = 6;
    CHECK(mambac_model_write_init(&p, dir2, &err) == MAMBAC_OK, "init 2: %s", err.msg);
    mambac_model *m = NULL, *m2 = NULL;
    CHECK(mambac_model_load(dir, &m, &err) == MAMBAC_OK, "load: %s", err.msg);
    CHECK(mambac_model_load(dir2, &m2, &err) == MAMBAC_OK, "load 2: %s", err.msg);
    if (m && m2) {
        const mambac_model_info *c = &m->info;
        const int64_t D = 32, E = 64, N = c->d_state, V = 50;
        int64_t expect = V * D + D; /* embedding, norm_f */
        if (arch == MAMBAC_ARCH_MAMBA1) {
            const int64_t R = 2;
            expect += 2 * (D + 2 * E * D + E * 4 + E + (R + 2 * N) * E + E * R + E + E * N + E + D * E);
        } else {
            const int64_t H = 4, G = 2, C = E + 2 * G * N;
            expect += 2 * (D + (2 * E + 2 * G * N + H) * D + C * 4 + C + H + H + H + E + D * E);
        }
        CHECK(c->n_params == expect, "n_params %lld, shapes imply %lld", (long long)c->n_params, (long long)expect);
        float *a = logits_of(m), *a2 = logits_of(m), *b = logits_of(m2);
        int finite = 1;
        for (int64_t i = 0; i < 9 * V; i++) finite &= isfinite(a[i]);
        CHECK(finite, "finite logits");
        CHECK(memcmp(a, a2, (size_t)(9 * V) * sizeof(float)) == 0, "deterministic");
        CHECK(memcmp(a, b, (size_t)(9 * V) * sizeof(float)) != 0, "another seed, another model");
        free(a), free(a2), free(b);
        const mc_layer *L = &m->layers[1];
        int ok_a = 1, ok_d = 1, ok_dt = 1, ok_n = 1;
        const int64_t nA = arch == MAMBAC_ARCH_MAMBA1 ? E * N : 4, nD = arch == MAMBAC_ARCH_MAMBA1 ? E : 4;
        for (int64_t i = 0; i < nA; i++) {
            float alog = logf(-L->A[i]); /* the model keeps A = -exp(A_log) */
            if (arch == MAMBAC_ARCH_MAMBA1) ok_a &= fabsf(alog - logf((float)(1 + i % N))) < 1e-5f;
            else ok_a &= alog >= -1e-6f && alog <= logf(16.0f) + 1e-5f;
        }
        for (int64_t i = 0; i < nD; i++) {
            ok_d &= L->D[i] == 1.0f;
            float dt = log1pf(expf(L->dt_bias[i]));
            ok_dt &= dt >= 0.99e-4f && dt <= 0.1001f;
        }
        for (int64_t i = 0; i < D; i++) ok_n &= L->norm[i] == 1.0f && m->norm_f[i] == 1.0f;
        CHECK(ok_a && ok_d && ok_dt && ok_n, "init rules: A_log %d D %d dt %d norms %d", ok_a, ok_d, ok_dt, ok_n);
    }
    mambac_model_free(m);
    mambac_model_free(m2);
    free(dir), free(dir2);
    remove_temp_dir(tmp);
    mkdir(tmp, 0700);
}

/* Round-to-nearest-even references computed in double. */
static double round_to(double x, int mant_bits, int min_exp) {
    if (x == 0 || !isfinite(x)) return x;
    int e;
    frexp(x, &e);
    if (e - 1 < min_exp) e = min_exp + 1; /* subnormal: fixed spacing */
    double q = ldexp(1.0, e - 1 - mant_bits);
    return nearbyint(x / q) * q; /* nearbyint: ties to even in the default rounding mode */
}

static void test_rounding(void) {
    uint64_t r = 1;
    int bad_bf = 0, bad_h = 0;
    for (int i = 0; i < 200000; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t u = (uint32_t)(r >> 32);
        float f;
        memcpy(&f, &u, 4);
        if (!isfinite(f)) continue;
        double want_bf = round_to(f, 7, -126);
        float got_bf = mc_bf16_to_f32(mc_f32_to_bf16(f));
        if (isfinite(want_bf) && fabs(want_bf) < 3.3e38 && got_bf != (float)want_bf) bad_bf++;
        double want_h = round_to(f, 10, -14);
        if (fabs(want_h) >= 65520) want_h = copysign(INFINITY, f);
        float got_h = mc_f16_to_f32(mc_f32_to_f16(f));
        if (got_h != (float)want_h) bad_h++;
    }
    CHECK(bad_bf == 0, "f32 -> bf16 rounding wrong for %d values", bad_bf);
    CHECK(bad_h == 0, "f32 -> f16 rounding wrong for %d values", bad_h);
    CHECK(mc_f16_to_f32(mc_f32_to_f16(65504.0f)) == 65504.0f && isinf(mc_f16_to_f32(mc_f32_to_f16(65520.0f))), "f16 max");
    CHECK(isnan(mc_bf16_to_f32(mc_f32_to_bf16(NAN))) && isnan(mc_f16_to_f32(mc_f32_to_f16(NAN))), "NaN stays NaN");
}

static void test_dtypes(const char *tmp) {
    mambac_init_params p = mambac_init_default_params(MAMBAC_ARCH_MAMBA1);
    p.d_model = 32, p.n_layer = 1, p.vocab_size = 40, p.seed = 9;
    char *f32 = path_in(tmp, "f32"), *b16 = path_in(tmp, "bf16"), *h16 = path_in(tmp, "f16");
    mambac_error err;
    mambac_model_write_init(&p, f32, &err);
    p.dtype = MAMBAC_DTYPE_BF16;
    mambac_model_write_init(&p, b16, &err);
    p.dtype = MAMBAC_DTYPE_F16;
    mambac_model_write_init(&p, h16, &err);
    mambac_model *a = NULL, *b = NULL, *h = NULL;
    mambac_model_load(f32, &a, &err);
    mambac_model_load(b16, &b, &err);
    mambac_model_load(h16, &h, &err);
    CHECK(a && b && h, "load: %s", err.msg);
    if (!a || !b || !h) {
        mambac_model_free(a), mambac_model_free(b), mambac_model_free(h);
        free(f32), free(b16), free(h16);
        return;
    }
    CHECK(b->info.dtype == MAMBAC_DTYPE_BF16 && h->info.dtype == MAMBAC_DTYPE_F16, "dtypes");
    const mc_weight *wa = &a->layers[0].in_proj, *wb = &b->layers[0].in_proj, *wh = &h->layers[0].in_proj;
    int ok = 1;
    for (int64_t i = 0; i < wa->rows * wa->cols; i++) {
        float v = ((const float *)wa->data)[i];
        uint16_t hb, hh;
        memcpy(&hb, (const char *)wb->data + 2 * i, 2);
        memcpy(&hh, (const char *)wh->data + 2 * i, 2);
        ok &= hb == mc_f32_to_bf16(v) && hh == mc_f32_to_f16(v);
    }
    CHECK(ok, "bf16 / f16 files hold the rounded f32 values");
    CHECK(b->arena && b->layers[0].D[0] == 1.0f, "small parameters stay f32");
    mambac_model_free(a), mambac_model_free(b), mambac_model_free(h);
    free(f32), free(b16), free(h16);
}

int main(void) {
    char *tmp = make_temp_dir();
    test_arch(tmp, MAMBAC_ARCH_MAMBA1);
    test_arch(tmp, MAMBAC_ARCH_MAMBA2);
    test_rounding();
    test_dtypes(tmp);
    mambac_init_params p;
    mambac_error err;
    CHECK(mambac_init_preset("mamba2-2.7b", &p, &err) == MAMBAC_OK && p.d_model == 2560 && p.n_layer == 64, "preset");
    CHECK(mambac_init_preset("mamba-9b", &p, &err) == MAMBAC_ERR_INVALID_ARG, "unknown preset");
    CHECK(remove_temp_dir(tmp), "cleanup");
    free(tmp);
    return check_summary();
}
