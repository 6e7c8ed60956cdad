#define _POSIX_C_SOURCE 200809L
/* test_train.c — training, checked against independent references and against itself:
 *  - gradients of all four fixtures vs transformers' float64 gradients
 *    (grads.safetensors): loss within 1e-5 relative, every tensor within 1e-4
 *    relative L2, on every kernel set (scalar, AVX2, AVX-512: their scans and activations);
 *    1 and 2 threads give identical bits;
 *  - finite differences (double-precision sums of float32 runs) for the backward of
 *    each op on small random inputs: rmsnorm, conv, the Mamba-1 scan (scalar, AVX2 and
 *    AVX-512), the Mamba-2 SSD (scalar and AVX2), the gate and softplus activations (every vector form
 *    also against the scalar one at odd lengths); and for whole-model
 *    gradients of a tiny model of each architecture;
 *  - a tiny model overfits one batch; AdamW and the schedule behave as specified;
 *  - MQAR examples are well formed (every asked key's pair in the context, distinct keys
 *    and values, K targets, power-law gaps), deterministic and refused when they cannot
 *    fit; explicit targets give the next-token loss and a single position's entropy;
 *  - checkpoints: weights written and read back are identical; a checkpoint loads
 *    for inference and gives the training forward's loss; resume repeats an
 *    uninterrupted run bit for bit;
 *  - bad input: empty or too-short data, an unwritable output, inconsistent
 *    architecture flags, a tampered or mismatched checkpoint → an error naming it,
 *    and the checkpoint left as it was. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mambac.h"
#include "testutil.h"
#include "cpu/ops.h"
#include "train/act.h"
#include "train/checkpoint.h"
#include "train/ops_train.h"
#include "train/train.h"
#include "train/mqar.h"
#include "train/trainer.h"
#include "train/unwrap.h"

static uint64_t rng = 12345;
static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}
static float *rand_vec(int64_t n, float scale) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}
static float *zeros(int64_t n) { return calloc((size_t)n, sizeof(float)); }

/* ---- fixtures --------------------------------------------------------------------- */

static void grad_parity(const char *model, const char *isa, int threads, float **keep) {
    char dir[512], refp[512], gp[512];
    snprintf(dir, sizeof dir, "%s/models/%s/hf", MAMBAC_TEST_DATA, model);
    snprintf(refp, sizeof refp, "%s/models/%s/ref.safetensors", MAMBAC_TEST_DATA, model);
    snprintf(gp, sizeof gp, "%s/models/%s/grads.safetensors", MAMBAC_TEST_DATA, model);
    mambac_model *m;
    mambac_error err;
    ref_file ref, gr;
    if (mambac_model_load(dir, &m, &err) != MAMBAC_OK || !ref_open(&ref, refp) || !ref_open(&gr, gp)) {
        CHECK(0, "%s: fixture unreadable", model);
        return;
    }
    int64_t n;
    int32_t *ids = ref_i32(&ref, "input_ids", &n);
    mc_params P;
    mc_tctx c;
    mc_tape *t;
    int64_t max_k, tcap;
    CHECK(mc_params_from_model(m, &P, &err) == MAMBAC_OK, "params");
    mc_train_sizes(&P, 1, n, &max_k, &tcap);
    if (mc_tctx_init(&c, threads, isa, max_k, tcap, &err) != MAMBAC_OK) { /* kernel set not on this CPU */
        mc_params_free(&P);
        goto out;
    }
    CHECK(mc_tape_new(&P, 1, n, threads, &t, &err) == MAMBAC_OK, "tape");
    const double loss = mc_train_step(&c, &P, t, ids, 1, 1.0f);
    float *want_loss = ref_f32(&gr, "loss", NULL, NULL);
    const double le = fabs(loss - want_loss[0]) / fabs(want_loss[0]);
    CHECK(le < 1e-5, "%s (%s, %d threads): loss %.8g vs %.8g", model, isa, threads, loss, want_loss[0]);
    double worst = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < P.n; i++) {
        int64_t r0;
        float *want = ref_f32(&gr, P.v[i].name, &r0, NULL);
        if (!want) {
            CHECK(0, "%s: no reference gradient for %s", model, P.v[i].name);
            continue;
        }
        const double e = rel_l2(P.v[i].g, P.v[i].n, want, P.v[i].n, 1, P.v[i].n);
        if (e > worst) worst = e, worst_name = P.v[i].name;
        CHECK(e < 1e-4, "%s (%s): gradient of %s: relative L2 %.3g", model, isa, P.v[i].name, e);
        free(want);
    }
    printf("%-14s %-7s %d thread(s): loss rel err %.2g, worst gradient %.2g (%s)\n", model, isa, threads, le, worst, worst_name);
    if (keep) {
        if (*keep) CHECK(memcmp(*keep, P.g, (size_t)P.total * sizeof(float)) == 0, "%s: gradients differ with %d threads", model, threads);
        else *keep = memcpy(malloc((size_t)P.total * sizeof(float)), P.g, (size_t)P.total * sizeof(float));
    }
    free(want_loss);
    mc_tape_free(t);
    mc_tctx_free(&c);
    mc_params_free(&P);
out:
    free(ids);
    ref_close(&ref);
    ref_close(&gr);
    mambac_model_free(m);
}

/* ---- finite differences ----------------------------------------------------------- */

/* Checks analytic gradient `an` of a scalar function against central differences at
 * `k` coordinates of x (float32 function, double-summed objective). */
typedef double (*objective)(void *ctx);
static void fd_check(const char *label, objective f, void *ctx, float *x, const float *an, int64_t n, int k, float h) {
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < k; i++) {
        const int64_t j = (int64_t)((rng = rng * 6364136223846793005ull + 1) >> 33) % n;
        const float keep = x[j];
        x[j] = keep + h;
        const double fp = f(ctx);
        x[j] = keep - h;
        const double fm = f(ctx);
        x[j] = keep;
        const double fd = (fp - fm) / (2.0 * h), err = fabs(fd - an[j]);
        const double tol = 2e-2 * fabs(fd) + 2e-3;
        if (err > tol) bad++;
        if (err / (fabs(fd) + 1e-3) > worst) worst = err / (fabs(fd) + 1e-3);
    }
    CHECK(bad == 0, "%s: %d of %d coordinates disagree with finite differences (worst relative %.3g)", label, bad, k, worst);
}

typedef struct rms_ctx { float *x, *w, *R, *out, *rstd; int64_t T, n; } rms_ctx;
static double rms_obj(void *p) {
    rms_ctx *c = p;
    mc_rmsnorm_fwd(c->out, c->rstd, c->x, c->w, c->T, c->n, 1e-5f);
    double s = 0;
    for (int64_t i = 0; i < c->T * c->n; i++) s += (double)c->out[i] * c->R[i];
    return s;
}

static void fd_rmsnorm(void) {
    rms_ctx c = {rand_vec(3 * 20, 1), rand_vec(20, 1), rand_vec(60, 1), zeros(60), zeros(3), 3, 20};
    float *dx = zeros(60), *dw = zeros(20);
    rms_obj(&c);
    mc_rmsnorm_bwd(dx, dw, c.R, c.x, c.rstd, c.w, 3, 20, 0);
    fd_check("rmsnorm dx", rms_obj, &c, c.x, dx, 60, 30, 1e-2f);
    fd_check("rmsnorm dw", rms_obj, &c, c.w, dw, 20, 20, 1e-2f);
    free(c.x), free(c.w), free(c.R), free(c.out), free(c.rstd), free(dx), free(dw);
}

typedef struct conv_ctx { float *in, *w, *b, *R, *out; int64_t B, L, C, K, stride; } conv_ctx;
static double conv_obj(void *p) {
    conv_ctx *c = p;
    mc_conv_fwd(c->out, c->in, c->stride, c->w, c->b, c->B, c->L, c->C, c->K, 0, c->C);
    double s = 0;
    for (int64_t i = 0; i < c->B * c->L * c->C; i++) s += (double)c->out[i] * c->R[i];
    return s;
}

static void fd_conv(void) {
    const int64_t B = 2, L = 9, C = 5, K = 4, S = 7;
    conv_ctx c = {rand_vec(B * L * S, 1), rand_vec(C * K, 1), rand_vec(C, 1), rand_vec(B * L * C, 1), zeros(B * L * C), B, L, C, K, S};
    float *din = zeros(B * L * S), *dw = zeros(C * K), *db = zeros(C);
    conv_obj(&c);
    mc_conv_bwd(din, S, dw, db, c.R, c.in, S, c.w, B, L, C, K, 0, C);
    for (int64_t r = 0; r < B * L; r++) din[r * S + 5] = din[r * S + 6] = 0; /* columns past C are not inputs */
    fd_check("conv dx", conv_obj, &c, c.in, din, B * L * S, 40, 1e-2f);
    fd_check("conv dw", conv_obj, &c, c.w, dw, C * K, 20, 1e-2f);
    fd_check("conv db", conv_obj, &c, c.b, db, C, 5, 1e-2f);
    free(c.in), free(c.w), free(c.b), free(c.R), free(c.out), free(din), free(dw), free(db);
}

static const char *simd_name(int simd) { return simd == MC_SIMD_AVX512 ? "avx512" : simd == MC_SIMD_AVX2 ? "avx2" : "scalar"; }

typedef struct scan_ctx { mc_scan_train a; float *x, *delta, *bc, *A, *D, *R; int simd; } scan_ctx;
static double scan_obj(void *p) {
    scan_ctx *c = p;
#if defined(__x86_64__)
    if (c->simd == MC_SIMD_AVX512) mc_scan_fwd_avx512(&c->a, 0, c->a.E);
    else if (c->simd == MC_SIMD_AVX2) mc_scan_fwd_avx2(&c->a, 0, c->a.E);
    else
#endif
        mc_scan_fwd(&c->a, 0, c->a.E);
    double s = 0;
    for (int64_t i = 0; i < c->a.L * c->a.E; i++) s += (double)c->a.ys[i] * c->R[i];
    return s;
}

static void fd_scan(int simd) {
    const int64_t L = 12, E = 3, N = 19; /* N: one full vector and a masked tail */
    scan_ctx c = {{0}, rand_vec(L * E, 1), rand_vec(L * E, 0.4f), rand_vec(L * 2 * N, 1), rand_vec(E * N, 1), rand_vec(E, 1),
                  rand_vec(L * E, 1), simd};
    for (int64_t i = 0; i < L * E; i++) c.delta[i] = 0.05f + fabsf(c.delta[i]); /* softplus outputs are positive */
    for (int64_t i = 0; i < E * N; i++) c.A[i] = -0.5f - fabsf(c.A[i]);
    float *ys = zeros(L * E), *dx = zeros(L * E), *dd = zeros(L * E), *dbc = zeros(L * 2 * N), *dA = zeros(E * N), *dD = zeros(E);
    float *work = aligned_alloc(64, (size_t)(2 * L * 32) * sizeof(float));
    c.a = (mc_scan_train){.L = L, .E = E, .N = N, .x_stride = E, .bc_stride = 2 * N, .x = c.x, .delta = c.delta, .B = c.bc,
                          .C = c.bc + N, .A = c.A, .D = c.D, .ys = ys, .dys = c.R, .dx = dx, .ddelta = dd, .dB = dbc,
                          .dC = dbc + N, .dA = dA, .dD = dD, .work = work};
#if defined(__x86_64__)
    if (simd == MC_SIMD_AVX512) mc_scan_bwd_avx512(&c.a, 0, E);
    else if (simd == MC_SIMD_AVX2) mc_scan_bwd_avx2(&c.a, 0, E);
    else
#endif
        mc_scan_bwd(&c.a, 0, E);
    const char *k = simd_name(simd);
    char l[64];
    snprintf(l, sizeof l, "scan (%s) dx", k), fd_check(l, scan_obj, &c, c.x, dx, L * E, 20, 1e-2f);
    snprintf(l, sizeof l, "scan (%s) ddelta", k), fd_check(l, scan_obj, &c, c.delta, dd, L * E, 20, 1e-3f);
    snprintf(l, sizeof l, "scan (%s) dB dC", k), fd_check(l, scan_obj, &c, c.bc, dbc, L * 2 * N, 30, 1e-2f);
    snprintf(l, sizeof l, "scan (%s) dA", k), fd_check(l, scan_obj, &c, c.A, dA, E * N, 20, 1e-3f);
    snprintf(l, sizeof l, "scan (%s) dD", k), fd_check(l, scan_obj, &c, c.D, dD, E, 3, 1e-2f);
    free(c.x), free(c.delta), free(c.bc), free(c.A), free(c.D), free(c.R);
    free(ys), free(dx), free(dd), free(dbc), free(dA), free(dD), free(work);
}

/* The SSD through the reference chunked forward (chunks of 4: several per sequence). */
typedef struct ssd_ctx { float *x, *bc, *dt, *A, *R, *y, *state, *scratch; int64_t L, H, P, N, G; } ssd_ctx;
static double ssd_obj(void *p) {
    ssd_ctx *c = p;
    memset(c->state, 0, (size_t)(c->H * c->P * c->N) * sizeof(float));
    mc_ssd_args a = {.T = c->L, .H = c->H, .P = c->P, .N = c->N, .G = c->G, .L = 4, .x = c->x, .x_stride = c->H * c->P,
                     .B = c->bc, .C = c->bc + c->G * c->N, .bc_stride = 2 * c->G * c->N, .dt = c->dt, .dt_stride = c->H,
                     .A = c->A, .y = c->y, .y_stride = c->H * c->P, .state = c->state, .scratch = c->scratch};
    mc_ssd_chunked(&a);
    double s = 0;
    for (int64_t i = 0; i < c->L * c->H * c->P; i++) s += (double)c->y[i] * c->R[i];
    return s;
}

static void fd_ssd(int simd) {
    const int64_t L = 10, H = 4, P = 3, N = 5, G = 2, E = H * P, W = 2 * G * N;
    ssd_ctx c = {rand_vec(L * E, 1), rand_vec(L * W, 1), rand_vec(L * H, 0.5f), rand_vec(H, 1), rand_vec(L * E, 1),
                 zeros(L * E), zeros(H * P * N), zeros(mc_ssd_scratch_floats(4, N, P) + 64), L, H, P, N, G};
    for (int64_t i = 0; i < L * H; i++) c.dt[i] = 0.05f + fabsf(c.dt[i]);
    for (int64_t i = 0; i < H; i++) c.A[i] = -0.3f - fabsf(c.A[i]);
    float *dx = zeros(L * E), *dbc = zeros(L * W), *ddt = zeros(L * H), *dA = zeros(H), *work = zeros((L + 2) * P * N);
    mc_ssd_train a = {.L = L, .H = H, .P = P, .N = N, .G = G, .x = c.x, .x_stride = E, .B = c.bc, .C = c.bc + G * N,
                      .bc_stride = W, .dt = c.dt, .dt_stride = H, .A = c.A, .dy = c.R, .dy_stride = E, .dx = dx, .dx_stride = E,
                      .dB = dbc, .dC = dbc + G * N, .ddt = ddt, .dA = dA, .work = work};
    for (int64_t g = 0; g < G; g++) {
#if defined(__x86_64__)
        if (simd == MC_SIMD_AVX2) {
            mc_ssd_bwd_avx2(&a, g);
            continue;
        }
#endif
        mc_ssd_bwd(&a, g);
    }
    char l[64];
    const char *k = simd_name(simd);
    snprintf(l, sizeof l, "ssd (%s) dx", k), fd_check(l, ssd_obj, &c, c.x, dx, L * E, 20, 1e-2f);
    snprintf(l, sizeof l, "ssd (%s) dB dC", k), fd_check(l, ssd_obj, &c, c.bc, dbc, L * W, 30, 1e-2f);
    snprintf(l, sizeof l, "ssd (%s) ddt", k), fd_check(l, ssd_obj, &c, c.dt, ddt, L * H, 20, 1e-3f);
    snprintf(l, sizeof l, "ssd (%s) dA", k), fd_check(l, ssd_obj, &c, c.A, dA, H, 4, 1e-3f);
    free(c.x), free(c.bc), free(c.dt), free(c.A), free(c.R), free(c.y), free(c.state), free(c.scratch);
    free(dx), free(dbc), free(ddt), free(dA), free(work);
}

typedef struct act_ctx { float *a, *z, *R, *y; int64_t n; int simd, which; } act_ctx;
static double act_obj(void *p) {
    act_ctx *c = p;
    if (c->which == 0) mc_act_gate(c->y, c->a, c->z, c->n, c->simd);
    else if (c->which == 1) mc_act_softplus(c->y, c->z, c->a, c->n, c->simd);
    else mc_act_silu(c->y, c->z, c->n, c->simd);
    double s = 0;
    for (int64_t i = 0; i < c->n; i++) s += (double)c->y[i] * c->R[i];
    return s;
}

static void fd_act(int simd) {
    const int64_t n = 37;
    act_ctx c = {rand_vec(n, 2), rand_vec(n, 8), rand_vec(n, 1), zeros(n), n, simd, 0};
    c.z[3] = 25.0f, c.z[4] = -30.0f; /* softplus's threshold and its flat tail */
    float *da = zeros(n), *dz = zeros(n), *g = zeros(n);
    mc_act_gate_bwd(da, dz, c.R, c.a, c.z, n, simd);
    char l[64];
    snprintf(l, sizeof l, "gate (%s) da", simd_name(simd)), fd_check(l, act_obj, &c, c.a, da, n, 20, 1e-2f);
    snprintf(l, sizeof l, "gate (%s) dz", simd_name(simd)), fd_check(l, act_obj, &c, c.z, dz, n, 20, 1e-2f);
    c.which = 1;
    memcpy(g, c.R, (size_t)n * sizeof(float));
    mc_act_dsoftplus_mul(g, c.z, c.a, n, simd);
    snprintf(l, sizeof l, "softplus (%s)", simd_name(simd)), fd_check(l, act_obj, &c, c.z, g, n, 20, 1e-2f);
    c.which = 2;
    memcpy(g, c.R, (size_t)n * sizeof(float));
    mc_act_dsilu_mul(g, c.z, n, simd);
    snprintf(l, sizeof l, "silu (%s)", simd_name(simd)), fd_check(l, act_obj, &c, c.z, g, n, 20, 1e-2f);
    /* the vector forms against the scalar ones */
    float *y1 = zeros(n), *y2 = zeros(n);
    mc_act_softplus(y1, c.z, NULL, n, 0);
    mc_act_softplus(y2, c.z, NULL, n, simd);
    double e = rel_l2(y2, n, y1, n, 1, n);
    CHECK(e < 1e-6, "softplus forms differ (%s): %.3g", simd_name(simd), e);
    /* every activation's vector form against the scalar one, odd lengths (masked tails) */
    for (int64_t len = 1; len <= n; len += 6) {
        float *r[6], *v[6];
        for (int k = 0; k < 6; k++) r[k] = zeros(n), v[k] = zeros(n);
        for (int pass = 0; pass < 2; pass++) {
            float **o = pass ? v : r;
            const int s = pass ? simd : 0;
            mc_act_silu(o[0], c.z, len, s);
            mc_act_gate(o[1], c.a, c.z, len, s);
            mc_act_gate_bwd(o[2], o[3], c.R, c.a, c.z, len, s);
            memcpy(o[4], c.R, (size_t)n * sizeof(float)), mc_act_dsilu_mul(o[4], c.z, len, s);
            memcpy(o[5], c.R, (size_t)n * sizeof(float)), mc_act_dsoftplus_mul(o[5], c.z, c.a, len, s);
        }
        for (int k = 0; k < 6; k++) {
            CHECK(rel_l2(v[k], n, r[k], n, 1, n) < 1e-6, "activation %d (%s, length %lld) differs from the scalar form", k,
                  simd_name(simd), (long long)len);
            free(r[k]), free(v[k]);
        }
    }
    free(c.a), free(c.z), free(c.R), free(c.y), free(da), free(dz), free(g), free(y1), free(y2);
}

/* Whole-model gradients of a tiny random model vs finite differences of the loss. */
typedef struct model_ctx { mc_tctx *c; mc_params *P; mc_tape *t; const int32_t *ids; } model_ctx;
static double model_obj(void *p) {
    model_ctx *m = p;
    return mc_train_step(m->c, m->P, m->t, m->ids, 0, 1.0f);
}

static mambac_model *tiny_model(const char *tmp, mambac_arch arch, const char *name) {
    mambac_init_params ip = mambac_init_default_params(arch);
    ip.d_model = 16, ip.n_layer = 2, ip.vocab_size = 40, ip.d_state = 8, ip.seed = 3;
    if (arch == MAMBAC_ARCH_MAMBA2) ip.head_dim = 8, ip.n_groups = 2, ip.chunk_size = 4;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    mambac_error err;
    mambac_model *m = NULL;
    if (mambac_model_write_init(&ip, dir, &err) != MAMBAC_OK || mambac_model_load(dir, &m, &err) != MAMBAC_OK)
        CHECK(0, "tiny model: %s", err.msg);
    return m;
}

static void fd_model(const char *tmp) {
    for (int a = 1; a <= 2; a++) {
        mambac_model *m = tiny_model(tmp, (mambac_arch)a, a == 1 ? "fd1" : "fd2");
        if (!m) continue;
        mc_params P;
        mc_tctx c;
        mc_tape *t;
        mambac_error err;
        int64_t max_k, tcap;
        mc_params_from_model(m, &P, &err);
        mc_train_sizes(&P, 2, 11, &max_k, &tcap);
        mc_tctx_init(&c, 1, NULL, max_k, tcap, &err);
        mc_tape_new(&P, 2, 11, 1, &t, &err);
        int32_t ids[22];
        for (int i = 0; i < 22; i++) ids[i] = (i * 7 + 3) % 40;
        mc_train_step(&c, &P, t, ids, 1, 1.0f);
        model_ctx mc = {&c, &P, t, ids};
        for (size_t i = 0; i < P.n; i++) {
            char l[160];
            snprintf(l, sizeof l, "%s: %s", a == 1 ? "mamba" : "mamba2", P.v[i].name);
            fd_check(l, model_obj, &mc, P.v[i].w, P.v[i].g, P.v[i].n, 4, 2e-3f);
        }
        mc_tape_free(t);
        mc_tctx_free(&c);
        mc_params_free(&P);
        mambac_model_free(m);
    }
}

/* ---- optimizer, overfitting ------------------------------------------------------- */

/* prepare-data --unwrap: wrapped prose joins, paragraph breaks, short and indented lines stay. */
static void test_unwrap(void) {
    const char *lines[] = {"It was the best of times, it was the worst of times, it was the age", /* wrapped */
                           "of wisdom, it was the age of foolishness, it was the epoch of belief,", /* wrapped */
                           "and so on.", "A short line of verse", "runs on here.", "",
                           "Next paragraph, long enough to count as a wrapped line of prose....",
                           "    an indented line after it keeps its newline.",
                           "The last line of the text is long enough but has no next line....."};
    char buf[1024], want[1024];
    size_t n = 0, breaks[9];
    for (int k = 0; k < 9; k++) {
        const size_t l = strlen(lines[k]);
        memcpy(buf + n, lines[k], l);
        breaks[k] = n + l;
        buf[n + l] = '\n';
        n += l + 1;
    }
    buf[n] = 0;
    memcpy(want, buf, n + 1);
    want[breaks[0]] = want[breaks[1]] = ' '; /* only the two wrapped lines join */
    CHECK(mc_unwrap_text(buf, n) == 2, "two wrapped line breaks");
    CHECK(strcmp(buf, want) == 0, "unwrapped: %s", buf);
    char edge[60];
    memset(edge, 'x', sizeof edge);
    edge[50] = '\n';
    CHECK(mc_unwrap_text(edge, sizeof edge) == 1 && edge[50] == ' ', "a 50-byte line joins the next");
    memset(edge, 'x', sizeof edge);
    edge[49] = '\n';
    CHECK(mc_unwrap_text(edge, sizeof edge) == 0 && edge[49] == '\n', "a 49-byte line keeps its newline");
    CHECK(mc_unwrap_text(edge, 0) == 0, "empty text");
}

static void test_optimizer(void) {
    /* AdamW's first step moves every weight by lr against its gradient's sign (m / sqrt(v)
     * = sign g after bias correction) and decays only decayed tensors. */
    float w[4] = {1, 1, 1, 1}, g[4] = {0.5f, -2, 0, 1e-3f};
    mc_param ps[2] = {{.name = "a", .n = 2, .w = w, .g = g, .decay = 1}, {.name = "b", .n = 2, .w = w + 2, .g = g + 2, .decay = 0}};
    mc_params P = {.v = ps, .n = 2, .w = w, .g = g, .total = 4};
    mc_adamw o;
    mambac_error err;
    mc_adamw_init(&o, &P, &err);
    mc_adamw_update(&o, &P, 0.1f);
    CHECK(fabsf(w[0] - (1 * 0.99f - 0.1f)) < 1e-5f && fabsf(w[1] - (0.99f + 0.1f)) < 1e-5f && w[2] == 1.0f &&
              fabsf(w[3] - 0.9f) < 1e-3f,
          "AdamW first step: %g %g %g %g", w[0], w[1], w[2], w[3]);
    mc_adamw_free(&o);
    const double n = mc_clip_grad(&P, 1.0);
    double after = 0;
    for (int i = 0; i < 4; i++) after += (double)g[i] * g[i];
    CHECK(fabs(n - sqrt(0.25 + 4 + 1e-6)) < 1e-4 && fabs(sqrt(after) - 1.0) < 1e-4, "clip: norm %g, after %g", n, sqrt(after));
    CHECK(fabsf(mc_lr_schedule(0, 10, 100, 1, 0.1f) - 0.1f) < 1e-6f && fabsf(mc_lr_schedule(9, 10, 100, 1, 0.1f) - 1) < 1e-6f &&
              fabsf(mc_lr_schedule(55, 10, 100, 1, 0.1f) - 0.55f) < 1e-5f && fabsf(mc_lr_schedule(100, 10, 100, 1, 0.1f) - 0.1f) < 1e-6f,
          "schedule: warmup, cosine midpoint and floor");
}

static void test_overfit(const char *tmp) {
    for (int a = 1; a <= 2; a++) {
        mambac_model *m = tiny_model(tmp, (mambac_arch)a, a == 1 ? "of1" : "of2");
        if (!m) continue;
        mc_params P;
        mc_tctx c;
        mc_tape *t;
        mc_adamw o;
        mambac_error err;
        int64_t max_k, tcap;
        mc_params_from_model(m, &P, &err);
        mc_train_sizes(&P, 4, 16, &max_k, &tcap);
        mc_tctx_init(&c, 2, NULL, max_k, tcap, &err);
        mc_tape_new(&P, 4, 16, 2, &t, &err);
        mc_adamw_init(&o, &P, &err);
        int32_t ids[64];
        for (int i = 0; i < 64; i++) ids[i] = (int32_t)((i * 13 + i / 16 * 5) % 40);
        double first = 0, loss = 0;
        int step = 0;
        for (; step < 300; step++) {
            memset(P.g, 0, (size_t)P.total * sizeof(float));
            loss = mc_train_step(&c, &P, t, ids, 1, 1.0f);
            if (step == 0) first = loss;
            if (loss < 0.05) break;
            mc_clip_grad(&P, 1.0);
            mc_adamw_update(&o, &P, 1e-2f);
        }
        printf("overfit %s: loss %.3f -> %.4f in %d steps\n", a == 1 ? "mamba" : "mamba2", first, loss, step);
        CHECK(loss < 0.05, "%s did not overfit one batch: loss %.3f -> %.3f after 300 steps", a == 1 ? "mamba" : "mamba2", first, loss);
        mc_adamw_free(&o);
        mc_tape_free(t);
        mc_tctx_free(&c);
        mc_params_free(&P);
        mambac_model_free(m);
    }
}

/* ---- checkpoints and the loop ------------------------------------------------------ */

static char *data_file(const char *tmp, const char *name, size_t n) {
    char *p = path_in(tmp, name);
    char *buf = malloc(n + 1);
    const char *verse = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n";
    for (size_t i = 0; i < n; i++) buf[i] = verse[i % strlen(verse)];
    write_file(p, buf, n);
    free(buf);
    return p;
}

static mc_train_config small_config(const char *data, const char *out, mambac_arch arch) {
    mc_train_config c = mc_train_default_config();
    c.init = mambac_init_default_params(arch);
    c.init.d_model = 16, c.init.n_layer = 2, c.init.d_state = 8;
    if (arch == MAMBAC_ARCH_MAMBA2) c.init.head_dim = 8, c.init.chunk_size = 8;
    c.data = data, c.out = out;
    c.batch = 3, c.seq = 20, c.steps = 6, c.warmup = 2, c.eval_every = 2, c.lr = 5e-3f, c.min_lr = 1e-3f, c.threads = 2;
    return c;
}

static char *read_log_losses(const char *dir) {
    char *p = path_in(dir, "log.csv"), *t = read_text(p), *o = calloc(1, t ? strlen(t) + 1 : 1);
    size_t k = 0;
    for (char *line = t ? strtok(t, "\n") : NULL; line; line = strtok(NULL, "\n")) { /* step,tokens,train_loss: */
        char *c = strchr(line, ','), *c2 = c ? strchr(c + 1, ',') : NULL, *c3 = c2 ? strchr(c2 + 1, ',') : NULL;
        if (c3) k += (size_t)sprintf(o + k, "%.*s;", (int)(c3 - line), line);
    }
    free(p);
    free(t);
    return o;
}

static void test_loop(const char *tmp) {
    char *data = data_file(tmp, "verse.txt", 4000);
    mambac_error err;
    for (int a = 1; a <= 2; a++) {
        char full[600], part[600];
        snprintf(full, sizeof full, "%s/full%d", tmp, a);
        snprintf(part, sizeof part, "%s/part%d", tmp, a);
        mc_train_config c = small_config(data, full, (mambac_arch)a);
        CHECK(mc_train_run(&c, &err) == MAMBAC_OK, "train: %s", err.msg);
        /* interrupted at step 3 (the schedule still spans 6 steps), then resumed */
        c.out = part, c.stop_at = 3;
        CHECK(mc_train_run(&c, &err) == MAMBAC_OK, "train to step 3: %s", err.msg);
        mc_train_config r = mc_train_default_config();
        r.resume = part, r.threads = 2, r.steps = 0; /* 0: the checkpoint's own step count */
        CHECK(mc_train_run(&r, &err) == MAMBAC_OK, "resume: %s", err.msg);
        char *l1 = read_log_losses(full), *l2 = read_log_losses(part);
        CHECK(strcmp(l1, l2) == 0 && strlen(l1) > 40, "resumed loss curve differs:\n%.300s\n%.300s", l1, l2);
        char *m1 = path_in(full, "model.safetensors"), *m2 = path_in(part, "model.safetensors");
        uint64_t h1 = 0, h2 = 1;
        mc_file_fnv(m1, &h1, &err);
        mc_file_fnv(m2, &h2, &err);
        CHECK(h1 == h2, "resumed weights differ from the uninterrupted run's");
        /* the checkpoint loads for inference; its loss on a window matches training's */
        mambac_model *m;
        if (mambac_model_load(full, &m, &err) == MAMBAC_OK) {
            mc_params P, Q;
            mc_params_from_model(m, &P, &err);
            mc_params_from_model(m, &Q, &err);
            char *w = path_in(tmp, "w.safetensors");
            CHECK(mc_params_write(&P, w, 0, NULL, NULL, &err) == MAMBAC_OK && mc_params_read(&Q, w, Q.w, &err) == MAMBAC_OK &&
                      memcmp(P.w, Q.w, (size_t)P.total * 4) == 0,
                  "weights written and read back differ: %s", err.msg);
            free(w);
            int32_t ids[20];
            for (int i = 0; i < 20; i++) ids[i] = (unsigned char)"To be, or not to be,"[i];
            mc_tctx tc;
            mc_tape *t;
            int64_t max_k, tcap;
            mc_train_sizes(&P, 1, 20, &max_k, &tcap);
            mc_tctx_init(&tc, 1, NULL, max_k, tcap, &err);
            mc_tape_new(&P, 1, 20, 1, &t, &err);
            const double tl = mc_train_step(&tc, &P, t, ids, 0, 1.0f);
            mambac_context *ctx;
            mambac_state *st;
            mambac_context_new(m, NULL, &ctx, &err);
            mambac_state_new(m, &st, &err);
            const int64_t V = mambac_model_get_info(m)->n_vocab_rows;
            float *lg = malloc((size_t)(20 * V) * sizeof(float));
            mambac_eval(ctx, st, ids, 20, MAMBAC_LOGITS_ALL, lg, &err);
            double il = 0;
            for (int i = 0; i < 19; i++) {
                double mx = lg[i * V], s = 0;
                for (int64_t v = 1; v < V; v++) mx = fmax(mx, lg[i * V + v]);
                for (int64_t v = 0; v < V; v++) s += exp(lg[i * V + v] - mx);
                il += mx + log(s) - lg[i * V + ids[i + 1]];
            }
            il /= 19;
            CHECK(fabs(il - tl) < 1e-4 * fabs(tl), "inference loss %.7g vs training forward %.7g", il, tl);
            free(lg);
            mambac_state_free(st);
            mambac_context_free(ctx);
            mc_tape_free(t);
            mc_tctx_free(&tc);
            mc_params_free(&P);
            mc_params_free(&Q);
            mambac_model_free(m);
        } else {
            CHECK(0, "checkpoint does not load: %s", err.msg);
        }
        free(l1), free(l2), free(m1), free(m2);
    }
    free(data);
}

/* Gradient accumulation: 2 micro-batches of 3 sequences = one batch of 6 (the same
 * windows in the same order), so the loss curves agree to float rounding. */
static void test_accumulation(const char *tmp) {
    char *data = data_file(tmp, "verse2.txt", 4000);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/acc1", tmp);
    snprintf(b, sizeof b, "%s/acc2", tmp);
    mambac_error err;
    mc_train_config c = small_config(data, a, MAMBAC_ARCH_MAMBA1);
    c.batch = 6, c.steps = 5, c.eval_every = 100;
    CHECK(mc_train_run(&c, &err) == MAMBAC_OK, "batch 6: %s", err.msg);
    c.out = b, c.batch = 3, c.accum = 2;
    CHECK(mc_train_run(&c, &err) == MAMBAC_OK, "batch 3 x 2: %s", err.msg);
    char *pa = path_in(a, "log.csv"), *pb = path_in(b, "log.csv"), *ta = read_text(pa), *tb = read_text(pb);
    double worst = ta && tb ? 0 : 1;
    int rows = 0;
    for (char *la = ta, *lb = tb; la && lb && *la && *lb; rows++) {
        char *na = strchr(la, '\n'), *nb = strchr(lb, '\n');
        double sa, sb;
        long long s1, t1, s2, t2;
        if (sscanf(la, "%lld,%lld,%lf", &s1, &t1, &sa) == 3 && sscanf(lb, "%lld,%lld,%lf", &s2, &t2, &sb) == 3)
            worst = fmax(worst, fabs(sa - sb) / sa);
        la = na ? na + 1 : NULL, lb = nb ? nb + 1 : NULL;
    }
    CHECK(rows == 6 && worst < 1e-5, "accumulated vs whole batch: %d rows, worst relative loss difference %.3g", rows, worst);
    free(pa), free(pb), free(ta), free(tb), free(data);
}

/* Stopping (a signal handler's flag) and interrupted saves:
 *   - the flag set before the first step: the run returns with a whole checkpoint of step 0,
 *     which resumes;
 *   - set by the progress callback at step 3: a checkpoint of step 3 (not of the last step);
 *   - a save interrupted before its switch (a half-written DIR/.saving): the checkpoint in
 *     DIR still resumes and the leftover is removed;
 *   - one interrupted after it (DIR/.ready holding the new files, some already moved up):
 *     resume completes the moves and reads the new state. */
static volatile sig_atomic_t stop_flag;
static void stop_at_3(const mc_train_progress *p, void *user) {
    (void)user;
    if (p->step == 3) stop_flag = 1;
}

static int64_t state_step(const char *dir) {
    cJSON *st = NULL;
    mambac_error err;
    if (mc_ckpt_read_state(dir, &st, &err) != MAMBAC_OK) return -1;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(st, "step");
    const int64_t v = cJSON_IsNumber(s) ? (int64_t)s->valuedouble : -2;
    cJSON_Delete(st);
    return v;
}

static int exists(const char *dir, const char *name) {
    char *p = path_in(dir, name);
    struct stat sb;
    const int ok = stat(p, &sb) == 0;
    free(p);
    return ok;
}

static void test_stop_and_interrupted_saves(const char *tmp) {
    char *data = data_file(tmp, "verse3.txt", 4000);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/stop0", tmp);
    snprintf(b, sizeof b, "%s/stop3", tmp);
    mambac_error err;
    mc_train_config c = small_config(data, a, MAMBAC_ARCH_MAMBA1);
    c.steps = 50, c.stop = &stop_flag;
    stop_flag = 1;
    CHECK(mc_train_run(&c, &err) == MAMBAC_OK, "stopped before the first step: %s", err.msg);
    CHECK(state_step(a) == 0, "a checkpoint of step 0 (read %lld)", (long long)state_step(a));
    stop_flag = 0;
    c.out = b, c.progress = stop_at_3;
    CHECK(mc_train_run(&c, &err) == MAMBAC_OK, "stopped at step 3: %s", err.msg);
    CHECK(state_step(b) == 3, "a checkpoint of step 3 (read %lld)", (long long)state_step(b));
    CHECK(!exists(b, ".saving") && !exists(b, ".ready"), "no staging folder left after a save");
    mc_train_config r = mc_train_default_config();
    r.resume = a, r.steps = 2;
    stop_flag = 0;
    CHECK(mc_train_run(&r, &err) == MAMBAC_OK && state_step(a) == 2, "the step-0 checkpoint resumes: %s", err.msg);
    /* a folder another trainer holds is refused, nothing changed */
    const int held = open(a, O_RDONLY | O_DIRECTORY);
    CHECK(held >= 0 && flock(held, LOCK_EX | LOCK_NB) == 0, "lock the folder");
    r.steps = 3;
    CHECK(mc_train_run(&r, &err) == MAMBAC_ERR_IO && strstr(err.msg, "another process"), "a locked folder: %s", err.msg);
    close(held);
    CHECK(state_step(a) == 2, "the locked checkpoint unchanged");
    /* interrupted before the switch: junk in .saving */
    char *saving = path_in(b, ".saving"), *junk = path_in(saving, "model.safetensors");
    mkdir(saving, 0755);
    write_file(junk, "torn", 4);
    CHECK(state_step(b) == 3 && !exists(b, ".saving"), "a half-written save leaves the checkpoint as it was");
    /* interrupted after the switch: .ready holds train_state.json (step 9) and the weights moved already */
    char *ready = path_in(b, ".ready"), *sp = path_in(b, "train_state.json"), *rp = path_in(ready, "train_state.json");
    char *text = read_text(sp), *edited = text ? json_set_field(text, "step", "9") : NULL;
    mkdir(ready, 0755);
    if (edited) write_file(rp, edited, strlen(edited));
    CHECK(state_step(b) == 9 && !exists(b, ".ready"), "a save interrupted after its switch is completed on resume");
    free(saving), free(junk), free(ready), free(sp), free(rp), free(text), free(edited), free(data);
}

static void expect_fail(mc_train_config *c, const char *substr, const char *label) {
    mambac_error err = {0};
    mambac_status st = mc_train_run(c, &err);
    CHECK(st != MAMBAC_OK && strstr(err.msg, substr), "%s: status %d, message '%s' (want '%s')", label, st, err.msg, substr);
}

static void test_bad_input(const char *tmp) {
    char *empty = path_in(tmp, "empty.txt"), *small = data_file(tmp, "small.txt", 30), *data = data_file(tmp, "ok.txt", 3000);
    write_file(empty, "", 0);
    char out[600];
    snprintf(out, sizeof out, "%s/bad-out", tmp);
    mc_train_config c = small_config(empty, out, MAMBAC_ARCH_MAMBA1);
    expect_fail(&c, "empty", "empty data");
    c.data = small;
    expect_fail(&c, "too few", "too-short data");
    c.data = "/nonexistent/data.txt";
    expect_fail(&c, "/nonexistent/data.txt", "missing data");
    c = small_config(data, "/proc/mambac-cannot-write-here", MAMBAC_ARCH_MAMBA1);
    expect_fail(&c, "/proc/mambac-cannot-write-here", "unwritable output");
    c = small_config(data, out, MAMBAC_ARCH_MAMBA2);
    c.init.head_dim = 5; /* 32 channels are not whole heads of 5 */
    expect_fail(&c, "head", "inconsistent architecture");
    c = small_config(data, out, MAMBAC_ARCH_MAMBA1);
    c.seq = 1;
    expect_fail(&c, "sequence length", "sequence length 1");
    /* a real checkpoint, then mismatches against it */
    char ck[600];
    snprintf(ck, sizeof ck, "%s/ck", tmp);
    c = small_config(data, ck, MAMBAC_ARCH_MAMBA1);
    c.steps = 2;
    mambac_error err;
    CHECK(mc_train_run(&c, &err) == MAMBAC_OK, "train: %s", err.msg);
    expect_fail(&c, "already exists", "output exists");
    char *sp = path_in(ck, "train_state.json"), *before = read_text(sp);
    mc_train_config r = mc_train_default_config();
    r.resume = ck, r.steps = 0, r.have_arch_flags = 1, r.init = c.init, r.init.d_model = 32;
    expect_fail(&r, "do not match the checkpoint", "resume with other architecture flags");
    char *mp = path_in(ck, "model.safetensors"), *opt = path_in(ck, "optimizer-m.safetensors");
    char *saved = read_text(opt);
    FILE *f = fopen(opt, "r+b");
    fseek(f, -4, SEEK_END);
    const int orig = fgetc(f);
    fseek(f, -4, SEEK_END);
    fputc(orig == 'x' ? 'y' : 'x', f);
    fclose(f);
    r = mc_train_default_config();
    r.resume = ck, r.steps = 0;
    expect_fail(&r, "does not match the checksum", "tampered optimizer state");
    char *after = read_text(sp);
    CHECK(before && after && strcmp(before, after) == 0, "a failed resume changed train_state.json");
    f = fopen(opt, "r+b"); /* the optimizer state as saved again */
    fseek(f, -4, SEEK_END);
    fputc(orig, f);
    fclose(f);
    /* numbers no count can be: refused with a message, never converted (UBSan's
     * float-cast-overflow) nor multiplied past int64 */
    static const char *bad[][3] = {{"step", "1e300", "out of range"}, {"step", "-5", "out of range"},
                                   {"batch", "1e300", "batch"}, {"seq", "4.5", "sequence length"},
                                   {"batch", "9007199254740992", "too large"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *edited = json_set_field(before, bad[i][0], bad[i][1]);
        write_file(sp, edited, strlen(edited));
        r = mc_train_default_config();
        r.resume = ck, r.steps = 0;
        char label[64];
        snprintf(label, sizeof label, "train_state.json %s = %s", bad[i][0], bad[i][1]);
        expect_fail(&r, bad[i][2], label);
        free(edited);
    }
    write_file(sp, before, strlen(before));
    free(saved), free(before), free(after), free(sp), free(mp), free(opt);
    free(empty), free(small), free(data);
}

/* ---- MQAR and explicit targets ------------------------------------------------------ */

static void test_mqar(void) {
    const mc_mqar cases[] = {{64, 32, 4, 0.01}, {8192, 256, 64, 0.01}, {300, 64, 16, 0.5}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const mc_mqar *m = &cases[c];
        mambac_error err;
        CHECK(mc_mqar_check(m, &err) == MAMBAC_OK, "mqar config %zu: %s", c, err.msg);
        const int32_t L = m->seq, K = m->kv, V = m->vocab, space = (L - 2 * K) / 2;
        int32_t *ids = malloc((size_t)L * 4 * sizeof(int32_t)), *tg = ids + L, *ids2 = tg + L, *tg2 = ids2 + L;
        int64_t early = 0, asked = 0, bad = 0;
        for (int64_t e = 0; e < 200; e++) {
            mc_mqar_example(m, 7, e, ids, tg);
            mc_mqar_example(m, 7, e, ids2, tg2);
            CHECK(memcmp(ids, ids2, (size_t)L * 2 * sizeof(int32_t)) == 0, "mqar: example %lld not deterministic", (long long)e);
            int32_t n = 0;
            for (int32_t r = 0; r < L; r++) {
                if (ids[r] < 0 || ids[r] >= V) bad++;
                if (tg[r] < 0) continue;
                n++;
                /* a returning key, after the context, whose pair in the context has this value */
                int found = 0;
                for (int32_t j = 0; j < K; j++) found += ids[2 * j] == ids[r] && ids[2 * j + 1] == tg[r];
                if (r < 2 * K || found != 1 || tg[r] < V / 2 || ids[r] < 1 || ids[r] >= V / 2) bad++;
                early += (r - 2 * K) / 2 < space / 2;
            }
            for (int32_t j = 0; j < 2 * K; j++)
                for (int32_t k = j + 1; k < 2 * K; k++) bad += ids[j] == ids[k];
            CHECK(n == K, "mqar: example %lld asks %d positions, want %d", (long long)e, n, K);
            asked += n;
        }
        mc_mqar_example(m, 7, 1, ids2, tg2);
        mc_mqar_example(m, 7, 0, ids, tg);
        CHECK(memcmp(ids, ids2, (size_t)L * sizeof(int32_t)) != 0, "mqar: examples 0 and 1 are equal");
        mc_mqar_example(m, 8, 0, ids2, tg2);
        CHECK(memcmp(ids, ids2, (size_t)L * sizeof(int32_t)) != 0, "mqar: seeds 7 and 8 give the same example");
        CHECK(bad == 0, "mqar config %zu: %lld malformed positions (keys, values, pairs)", c, (long long)bad);
        /* power_a 0.01 puts most queries in the first half of the query region (when they
         * need not fill it) */
        const double f = (double)early / (double)asked;
        if (m->power_a < 0.1 && 3 * K <= space) CHECK(f > 0.6, "mqar config %zu: %.2f of the queries in the first half", c, f);
        free(ids);
    }
    mambac_error err;
    const mc_mqar odd = {64, 31, 4, 0.01}, crowded = {64, 32, 9, 0.01}, small_v = {32, 32, 4, 0.01};
    CHECK(mc_mqar_check(&odd, &err) != MAMBAC_OK && mc_mqar_check(&crowded, &err) != MAMBAC_OK &&
              mc_mqar_check(&small_v, &err) != MAMBAC_OK,
          "mqar: an odd length, too many pairs and a small vocabulary refused");
}

/* mc_train_step_targets: the next ids as targets give mc_train_step's loss and gradients;
 * one target gives that position's cross-entropy alone. */
static void test_targets(const char *tmp) {
    mambac_model *m = tiny_model(tmp, MAMBAC_ARCH_MAMBA2, "tg");
    if (!m) return;
    mc_params P;
    mc_tctx c;
    mc_tape *t;
    mambac_error err;
    int64_t max_k, tcap;
    const int64_t B = 2, L = 9;
    mc_params_from_model(m, &P, &err);
    mc_train_sizes(&P, B, L, &max_k, &tcap);
    mc_tctx_init(&c, 1, NULL, max_k, tcap, &err);
    mc_tape_new(&P, B, L, 1, &t, &err);
    int32_t ids[18], tg[18];
    for (int i = 0; i < 18; i++) ids[i] = (i * 11 + 2) % 40;
    for (int i = 0; i < 18; i++) tg[i] = i % L == L - 1 ? -1 : ids[i + 1];
    memset(P.g, 0, (size_t)P.total * sizeof(float));
    const double l1 = mc_train_step(&c, &P, t, ids, 1, 1.0f);
    float *g1 = memcpy(malloc((size_t)P.total * sizeof(float)), P.g, (size_t)P.total * sizeof(float));
    memset(P.g, 0, (size_t)P.total * sizeof(float));
    const double l2 = mc_train_step_targets(&c, &P, t, ids, tg, 1, 1.0f);
    CHECK(l1 == l2 && memcmp(g1, P.g, (size_t)P.total * sizeof(float)) == 0, "targets = next ids: %.9g vs %.9g", l2, l1);
    int32_t one[18];
    for (int i = 0; i < 18; i++) one[i] = -1;
    one[12] = 5; /* sequence 1, position 3 */
    const double l3 = mc_train_step_targets(&c, &P, t, ids, one, 0, 1.0f);
    mambac_context *ctx;
    mambac_state *st;
    float lg[40 * 9];
    mambac_context_new(m, NULL, &ctx, &err);
    mambac_state_new(m, &st, &err);
    mambac_eval(ctx, st, ids + 9, 9, MAMBAC_LOGITS_ALL, lg, &err);
    const float *row = lg + 3 * 40;
    double mx = row[0], se = 0;
    for (int v = 1; v < 40; v++) mx = row[v] > mx ? row[v] : mx;
    for (int v = 0; v < 40; v++) se += exp(row[v] - mx);
    const double want = mx + log(se) - row[5];
    CHECK(fabs(l3 - want) < 1e-4 * fabs(want), "one target: loss %.7g, its cross-entropy %.7g", l3, want);
    CHECK(mc_train_count_targets(one, B, L) == 1 && mc_train_count_targets(NULL, B, L) == B * (L - 1), "target counts");
    mambac_state_free(st);
    mambac_context_free(ctx);
    free(g1);
    mc_tape_free(t);
    mc_tctx_free(&c);
    mc_params_free(&P);
    mambac_model_free(m);
}

int main(void) {
    const char *models[] = {"mamba1-tiny", "mamba1-bias", "mamba2-tiny", "mamba2-groups", "falcon-mamba-tiny"};
    for (int k = 0; k < 5; k++) {
        float *keep = NULL;
        grad_parity(models[k], "scalar", 1, NULL);
        grad_parity(models[k], "avx512", 1, &keep);
        grad_parity(models[k], "avx512", 2, &keep);
        free(keep);
        keep = NULL;
        grad_parity(models[k], "avx2", 1, &keep);
        grad_parity(models[k], "avx2", 2, &keep);
        free(keep);
    }
    fd_rmsnorm();
    fd_conv();
    fd_scan(0);
    fd_ssd(0);
    fd_act(0);
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        fd_scan(MC_SIMD_AVX512);
        fd_act(MC_SIMD_AVX512);
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        fd_scan(MC_SIMD_AVX2);
        fd_ssd(MC_SIMD_AVX2);
        fd_act(MC_SIMD_AVX2);
    }
#endif
    char *tmp = make_temp_dir();
    fd_model(tmp);
    test_mqar();
    test_unwrap();
    test_targets(tmp);
    test_optimizer();
    test_overfit(tmp);
    test_loop(tmp);
    test_accumulation(tmp);
    test_stop_and_interrupted_saves(tmp);
    test_bad_input(tmp);
    remove_temp_dir(tmp);
    free(tmp);
    return check_summary();
}
