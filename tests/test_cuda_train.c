#define _POSIX_C_SOURCE 200809L
/* test_cuda_train.c — training on the GPU (train_gpu.h) against the CPU trainer and the
 * float64 fixtures, on a GPU machine (scripts/test_cuda.sh; not part of ctest):
 *   - the four fixtures: loss within 1e-5 relative and every gradient within 1e-4
 *     relative L2 of transformers' float64 gradients (the CPU trainer's bounds);
 *   - random models against the CPU trainer's gradients (relative L2 5e-5 per tensor:
 *     float32 in another order, chunks' decays as exp of sums, exp as one MUFU op), at small shapes (Mamba-2 with d_state 64 / 128, groups,
 *     a batch smaller than the trainer's) and at the widths of mamba-130m and
 *     mamba2-130m (one layer, 2 x 512 tokens: the SSD's rows split over blocks, several
 *     checkpoint chunks and a partial one), and there with the tf32 and bf16 products
 *     (bounds 1e-2 and 5e-2: operands of 10 and 7 mantissa bits);
 *   - the SSD's tensor-core form (bf16 operands, precision bf16) against its float32
 *     recurrent form on random inputs (partial chunks, groups, N up to 256, P up to 128):
 *     y and every gradient within 2e-2 relative L2, a repeated run the same bits;
 *   - a step run twice gives the same gradients bit for bit (no atomics);
 *   - five AdamW steps with clipping track the CPU's weights (1e-5);
 *   - a tiny model overfits one batch;
 *   - `train --device cuda` runs: stopped at step 3 and resumed on the GPU repeats the
 *     uninterrupted run's log exactly; resumed on the CPU it continues within 1e-3 of the
 *     loss; the same run on the CPU gives the same losses within 1e-4 relative. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda/train_ops.h"
#include "cuda/train_ssd_tc.h"
#include "mambac.h"
#include "testutil.h"
#include "train/train.h"
#include "train/train_gpu.h"
#include "train/trainer.h"

static double rel_l2f(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        num += d * d, den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* CPU and GPU gradients of one batch of model m; bound on every tensor's relative L2. */
static void vs_cpu(const char *label, mambac_model *m, int64_t B, int64_t L, int64_t trainer_B, const char *precision,
                   double bound, double loss_bound) {
    mambac_error err;
    mc_params P;
    if (mc_params_from_model(m, &P, &err) != MAMBAC_OK) {
        CHECK(0, "%s: params: %s", label, err.msg);
        return;
    }
    const int64_t V = P.cfg.n_vocab_rows, T = B * L;
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    for (int64_t i = 0; i < T; i++) ids[i] = (int32_t)((i * 7919 + i / 13) % V);
    mc_tctx c;
    mc_tape *t;
    int64_t max_k, tcap;
    mc_train_sizes(&P, B, L, &max_k, &tcap);
    CHECK(mc_tctx_init(&c, 0, NULL, max_k, tcap, &err) == MAMBAC_OK, "tctx");
    CHECK(mc_tape_new(&P, B, L, c.pool ? mc_pool_threads(c.pool) : 1, &t, &err) == MAMBAC_OK, "tape");
    memset(P.g, 0, (size_t)P.total * sizeof(float));
    const double cpu_loss = mc_train_step(&c, &P, t, ids, 1, 1.0f);
    mc_gtrain *g;
    if (mc_gtrain_new(&P, "cuda", precision, trainer_B, L, &g, &err) != MAMBAC_OK) {
        CHECK(0, "%s: %s", label, err.msg);
        goto out;
    }
    float *gg = malloc((size_t)P.total * sizeof(float)), *g2 = malloc((size_t)P.total * sizeof(float));
    double gpu_loss = 0, loss2 = 0;
    CHECK(mc_gtrain_zero_grad(g, &err) == MAMBAC_OK && mc_gtrain_step(g, ids, B, 1, 1.0f, &gpu_loss, &err) == MAMBAC_OK &&
              mc_gtrain_grads(g, gg, &err) == MAMBAC_OK,
          "%s: gpu step: %s", label, err.msg);
    CHECK(fabs(gpu_loss - cpu_loss) <= loss_bound * fabs(cpu_loss), "%s: loss gpu %.9g cpu %.9g", label, gpu_loss, cpu_loss);
    double worst = 0;
    const char *wn = "";
    for (size_t i = 0; i < P.n; i++) {
        const int64_t off = P.v[i].g - P.g;
        const double e = rel_l2f(gg + off, P.v[i].g, P.v[i].n);
        if (e > worst || isnan(e)) worst = e, wn = P.v[i].name;
        CHECK(e < bound, "%s: gradient of %s: relative L2 %.3g vs the CPU", label, P.v[i].name, e);
    }
    /* the same step again: the same bits */
    CHECK(mc_gtrain_zero_grad(g, &err) == MAMBAC_OK && mc_gtrain_step(g, ids, B, 1, 1.0f, &loss2, &err) == MAMBAC_OK &&
              mc_gtrain_grads(g, g2, &err) == MAMBAC_OK,
          "%s: second step: %s", label, err.msg);
    CHECK(loss2 == gpu_loss && memcmp(gg, g2, (size_t)P.total * sizeof(float)) == 0, "%s: a repeated step differs", label);
    printf("%-34s loss %.7f (cpu %.7f), worst gradient %.2g (%s)\n", label, gpu_loss, cpu_loss, worst, wn);
    free(gg);
    free(g2);
    mc_gtrain_free(g);
out:
    mc_tape_free(t);
    mc_tctx_free(&c);
    mc_params_free(&P);
    free(ids);
}

static void fixture(const char *name) {
    char dir[512], gp[512], rp[512];
    snprintf(dir, sizeof dir, "%s/models/%s/hf", MAMBAC_TEST_DATA, name);
    snprintf(gp, sizeof gp, "%s/models/%s/grads.safetensors", MAMBAC_TEST_DATA, name);
    snprintf(rp, sizeof rp, "%s/models/%s/ref.safetensors", MAMBAC_TEST_DATA, name);
    mambac_model *m;
    mambac_error err;
    ref_file ref, gr;
    if (mambac_model_load(dir, &m, &err) != MAMBAC_OK || !ref_open(&ref, rp) || !ref_open(&gr, gp)) {
        CHECK(0, "%s: fixture unreadable", name);
        return;
    }
    int64_t n;
    int32_t *ids = ref_i32(&ref, "input_ids", &n);
    mc_params P;
    mc_gtrain *g = NULL;
    CHECK(mc_params_from_model(m, &P, &err) == MAMBAC_OK, "params");
    if (mc_gtrain_new(&P, "cuda", NULL, 1, n, &g, &err) != MAMBAC_OK) {
        CHECK(0, "%s: %s", name, err.msg);
    } else {
        double loss = 0;
        float *gg = malloc((size_t)P.total * sizeof(float));
        CHECK(mc_gtrain_zero_grad(g, &err) == MAMBAC_OK && mc_gtrain_step(g, ids, 1, 1, 1.0f, &loss, &err) == MAMBAC_OK &&
                  mc_gtrain_grads(g, gg, &err) == MAMBAC_OK,
              "%s: step: %s", name, err.msg);
        float *want_loss = ref_f32(&gr, "loss", NULL, NULL);
        const double le = fabs(loss - want_loss[0]) / fabs(want_loss[0]);
        CHECK(le < 1e-5, "%s: loss %.8g vs %.8g", name, loss, want_loss[0]);
        double worst = 0;
        const char *wn = "";
        for (size_t i = 0; i < P.n; i++) {
            float *want = ref_f32(&gr, P.v[i].name, NULL, NULL);
            if (!want) {
                CHECK(0, "%s: no reference gradient for %s", name, P.v[i].name);
                continue;
            }
            const double e = rel_l2f(gg + (P.v[i].g - P.g), want, P.v[i].n);
            if (e > worst) worst = e, wn = P.v[i].name;
            CHECK(e < 1e-4, "%s: gradient of %s: relative L2 %.3g vs float64", name, P.v[i].name, e);
            free(want);
        }
        printf("fixture %-14s loss rel err %.2g, worst gradient %.2g (%s)\n", name, le, worst, wn);
        free(want_loss);
        free(gg);
    }
    mc_gtrain_free(g);
    mc_params_free(&P);
    free(ids);
    ref_close(&ref);
    ref_close(&gr);
    mambac_model_free(m);
}

static mambac_model *random_model(const char *tmp, const char *name, mambac_init_params ip) {
    char *dir = path_in(tmp, name);
    mambac_error err;
    mambac_model *m = NULL;
    if (mambac_model_write_init(&ip, dir, &err) != MAMBAC_OK || mambac_model_load(dir, &m, &err) != MAMBAC_OK)
        CHECK(0, "%s: %s", name, err.msg);
    free(dir);
    return m;
}

static mambac_init_params small(mambac_arch arch, int d_model, int d_state, int head_dim, int groups) {
    mambac_init_params ip = mambac_init_default_params(arch);
    ip.d_model = d_model, ip.n_layer = 2, ip.vocab_size = 300, ip.d_state = d_state, ip.seed = 7;
    if (arch == MAMBAC_ARCH_MAMBA2) ip.head_dim = head_dim, ip.n_groups = groups, ip.chunk_size = 16;
    return ip;
}

static mambac_init_params with_conv(mambac_init_params ip, int d_conv) {
    ip.d_conv = d_conv;
    return ip;
}

static void random_models(const char *tmp) {
    struct {
        const char *name;
        mambac_init_params ip;
        int64_t B, L, trainer_B;
    } cases[] = {
        {"mamba d64 N16, 3 x 150", small(MAMBAC_ARCH_MAMBA1, 64, 16, 0, 1), 3, 150, 3},
        {"mamba d32 N5, 2 of 4 x 40", small(MAMBAC_ARCH_MAMBA1, 32, 5, 0, 1), 2, 40, 4},
        {"mamba2 d64 N64 P16 G2, 3 x 150", small(MAMBAC_ARCH_MAMBA2, 64, 64, 16, 2), 3, 150, 3},
        {"mamba2 d64 N128 P32, 2 x 130", small(MAMBAC_ARCH_MAMBA2, 64, 128, 32, 1), 2, 130, 2},
        {"mamba2 d48 N24 P8 G4, 1 of 3 x 70", small(MAMBAC_ARCH_MAMBA2, 48, 24, 8, 4), 1, 70, 3},
        /* conv widths other than 4: the conv kernels' taps padded to 4 and to 8 */
        {"mamba d32 N16 conv 3, 2 x 70", with_conv(small(MAMBAC_ARCH_MAMBA1, 32, 16, 0, 1), 3), 2, 70, 2},
        {"mamba2 d32 N16 P16 conv 6, 2 x 45", with_conv(small(MAMBAC_ARCH_MAMBA2, 32, 16, 16, 1), 6), 2, 45, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "rand%zu", i);
        mambac_model *m = random_model(tmp, name, cases[i].ip);
        if (m) vs_cpu(cases[i].name, m, cases[i].B, cases[i].L, cases[i].trainer_B, NULL, 5e-5, 1e-6);
        if (m && cases[i].ip.arch == MAMBAC_ARCH_MAMBA2) { /* bf16: the SSD's tensor-core form where P suits it */
            char label[80];
            snprintf(label, sizeof label, "%s, bf16", cases[i].name);
            vs_cpu(label, m, cases[i].B, cases[i].L, cases[i].trainer_B, "bf16", 5e-2, 2e-3);
        }
        mambac_model_free(m);
    }
    /* the widths of the released 130m models, one layer */
    const char *presets[] = {"mamba-130m", "mamba2-130m"};
    for (int i = 0; i < 2; i++) {
        mambac_init_params ip;
        mambac_error err;
        CHECK(mambac_init_preset(presets[i], &ip, &err) == MAMBAC_OK, "preset");
        ip.n_layer = 1, ip.vocab_size = 1000;
        mambac_model *m = random_model(tmp, presets[i], ip);
        char label[64];
        snprintf(label, sizeof label, "%s widths, 1 layer, 2 x 512", presets[i]);
        if (m) vs_cpu(label, m, 2, 512, 2, NULL, 5e-5, 1e-6);
        /* tensor-core products: operands rounded to 10 (tf32) or 7 (bf16) mantissa bits */
        const char *precs[] = {"tf32", "bf16"};
        for (int k = 0; m && k < 2; k++) {
            snprintf(label, sizeof label, "%s widths, %s", presets[i], precs[k]);
            vs_cpu(label, m, 2, 512, 2, precs[k], k ? 5e-2 : 1e-2, k ? 2e-3 : 5e-4);
        }
        mambac_model_free(m);
    }
}

/* ---- the SSD's two forms: the tensor-core chunks (bf16 operands) against the recurrent
 * float32 form on the same random inputs, every output and gradient; and a repeated run
 * gives the same bits. */
static float *dev_copy(const float *h, int64_t n) {
    float *d = NULL;
    if (cudaMalloc((void **)&d, (size_t)(n > 0 ? n : 1) * sizeof(float)) != cudaSuccess) return NULL;
    if (h) cudaMemcpy(d, h, (size_t)n * sizeof(float), cudaMemcpyHostToDevice);
    return d;
}
static float *host_copy(const float *d, int64_t n) {
    float *h = malloc((size_t)n * sizeof(float));
    cudaMemcpy(h, d, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost);
    return h;
}
static float urand(uint64_t *s, float lo, float hi) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((*s >> 40) / 16777216.0);
}

typedef struct ssd_out {
    float *y, *dact, *ddt, *dA;
} ssd_out;

/* forward and backward of one form; outputs copied to the host */
static ssd_out ssd_run(int tc, int64_t B, int64_t L, int64_t H, int64_t P, int64_t N, int64_t G, const float *act,
                       const float *dt, const float *A, const float *dy, const float *dact0) {
    const int64_t T = B * L, E = H * P, C = E + 2 * G * N;
    float *d_act = dev_copy(act, T * C), *d_dt = dev_copy(dt, T * H), *d_A = dev_copy(A, H), *d_dy = dev_copy(dy, T * E);
    float *d_dact = dev_copy(dact0, T * C), *d_y = dev_copy(NULL, T * E), *d_ddt = dev_copy(NULL, T * H),
          *d_dA = dev_copy(NULL, H);
    float *keep = dev_copy(NULL, mct_ssd_tape(B, L, H, P, N)), *scr = dev_copy(NULL, mct_ssd_scratch(B, L, H, P, N));
    mct_ssd a = {.B = B, .L = L, .H = H, .P = P, .N = N, .G = G, .x = d_act, .xs = C, .Bm = d_act + E,
                 .Cm = d_act + E + G * N, .bcs = C, .dt = d_dt, .A = d_A, .y = d_y, .keep = keep, .dy = d_dy,
                 .dx = d_dact, .dxs = C, .dB = d_dact + E, .dC = d_dact + E + G * N, .ddt = d_ddt, .dA = d_dA,
                 .scratch = scr, .tc = tc};
    mct_ssd_fwd(&a, NULL);
    mct_ssd_bwd(&a, NULL);
    const cudaError_t e = cudaDeviceSynchronize();
    CHECK(e == cudaSuccess, "ssd form %d: %s", tc, cudaGetErrorString(e));
    ssd_out o = {host_copy(d_y, T * E), host_copy(d_dact, T * C), host_copy(d_ddt, T * H), host_copy(d_dA, H)};
    float *all[] = {d_act, d_dt, d_A, d_dy, d_dact, d_y, d_ddt, d_dA, keep, scr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) cudaFree(all[i]);
    return o;
}
static void ssd_out_free(ssd_out *o) {
    free(o->y), free(o->dact), free(o->ddt), free(o->dA);
}

static void ssd_forms(void) {
    const struct {
        int64_t B, L, H, P, N, G;
    } cases[] = {
        {2, 150, 4, 64, 128, 2}, /* mamba2-130m's head, two groups, a partial last chunk */
        {1, 192, 2, 16, 256, 1}, /* N 256 (MQAR's widest state) */
        {3, 40, 6, 32, 64, 3},   /* shorter than a chunk */
        {1, 2048, 2, 128, 16, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int64_t B = cases[c].B, L = cases[c].L, H = cases[c].H, P = cases[c].P, N = cases[c].N, G = cases[c].G;
        const int64_t T = B * L, E = H * P, C = E + 2 * G * N;
        char label[96];
        snprintf(label, sizeof label, "ssd B%lld L%lld H%lld P%lld N%lld G%lld", (long long)B, (long long)L, (long long)H,
                 (long long)P, (long long)N, (long long)G);
        if (!mct_ssd_tc_fits(P, N)) {
            CHECK(0, "%s: the tensor-core form should fit", label);
            continue;
        }
        uint64_t seed = 1234 + c;
        float *act = malloc((size_t)(T * C) * sizeof(float)), *dact0 = malloc((size_t)(T * C) * sizeof(float));
        float *dt = malloc((size_t)(T * H) * sizeof(float)), *dy = malloc((size_t)(T * E) * sizeof(float)), A[8];
        for (int64_t i = 0; i < T * C; i++) act[i] = urand(&seed, -1, 1), dact0[i] = urand(&seed, -1, 1);
        for (int64_t i = 0; i < T * H; i++) dt[i] = urand(&seed, 0.001f, 0.2f);
        for (int64_t i = 0; i < T * E; i++) dy[i] = urand(&seed, -1, 1);
        for (int64_t h = 0; h < H; h++) A[h] = -expf(urand(&seed, 0.0f, 2.8f));
        ssd_out r = ssd_run(0, B, L, H, P, N, G, act, dt, A, dy, dact0), t = ssd_run(1, B, L, H, P, N, G, act, dt, A, dy, dact0),
                t2 = ssd_run(1, B, L, H, P, N, G, act, dt, A, dy, dact0);
        /* dx, dB and dC: the change to dact (the rest of dact is left alone by both) */
        float *dr = malloc((size_t)(T * C) * sizeof(float)), *dtc = malloc((size_t)(T * C) * sizeof(float));
        for (int64_t i = 0; i < T * C; i++) dr[i] = r.dact[i] - dact0[i], dtc[i] = t.dact[i] - dact0[i];
        double ex = 0, eb = 0, ec = 0;
        {
            double n[3] = {0}, d[3] = {0};
            for (int64_t i = 0; i < T * C; i++) {
                const int64_t col = i % C, k = col < E ? 0 : col < E + G * N ? 1 : 2;
                const double diff = (double)dtc[i] - dr[i];
                n[k] += diff * diff, d[k] += (double)dr[i] * dr[i];
            }
            ex = sqrt(n[0] / d[0]), eb = sqrt(n[1] / d[1]), ec = sqrt(n[2] / d[2]);
        }
        const double ey = rel_l2f(t.y, r.y, T * E), et = rel_l2f(t.ddt, r.ddt, T * H), ea = rel_l2f(t.dA, r.dA, H);
        const double bound = 2e-2; /* bf16 operands (8 bits): ~4e-3 a product, sums of up to 256 terms */
        CHECK(ey < bound && ex < bound && eb < bound && ec < bound && et < bound && ea < bound,
              "%s: tensor-core vs recurrent: y %.2g dx %.2g dB %.2g dC %.2g ddt %.2g dA %.2g", label, ey, ex, eb, ec, et, ea);
        CHECK(memcmp(t.y, t2.y, (size_t)(T * E) * sizeof(float)) == 0 &&
                  memcmp(t.dact, t2.dact, (size_t)(T * C) * sizeof(float)) == 0 &&
                  memcmp(t.ddt, t2.ddt, (size_t)(T * H) * sizeof(float)) == 0 && memcmp(t.dA, t2.dA, (size_t)H * sizeof(float)) == 0,
              "%s: a repeated run differs", label);
        printf("%-36s tensor cores vs float32: y %.2g dx %.2g dB %.2g dC %.2g ddt %.2g dA %.2g\n", label, ey, ex, eb, ec, et, ea);
        ssd_out_free(&r), ssd_out_free(&t), ssd_out_free(&t2);
        free(act), free(dact0), free(dt), free(dy), free(dr), free(dtc);
    }
}

/* Five AdamW steps (clipped) on the GPU and the CPU from the same weights. */
static void updates(const char *tmp) {
    for (int a = 1; a <= 2; a++) {
        mambac_model *m = random_model(tmp, a == 1 ? "upd1" : "upd2", small((mambac_arch)a, 32, 16, 16, 1));
        if (!m) continue;
        mambac_error err;
        mc_params P, Q;
        mc_params_from_model(m, &P, &err);
        mc_params_from_model(m, &Q, &err);
        const int64_t B = 2, L = 48;
        int32_t ids[96];
        for (int i = 0; i < 96; i++) ids[i] = (i * 31 + 5) % 300;
        mc_tctx c;
        mc_tape *t;
        int64_t max_k, tcap;
        mc_train_sizes(&P, B, L, &max_k, &tcap);
        mc_tctx_init(&c, 1, NULL, max_k, tcap, &err);
        mc_tape_new(&P, B, L, 1, &t, &err);
        mc_adamw oc, og;
        mc_adamw_init(&oc, &P, &err);
        mc_adamw_init(&og, &Q, &err);
        mc_gtrain *g;
        if (mc_gtrain_new(&Q, "cuda", NULL, B, L, &g, &err) != MAMBAC_OK) {
            CHECK(0, "updates: %s", err.msg);
        } else {
            double lc = 0, lg = 0, nc = 0, ng = 0;
            for (int s = 0; s < 5; s++) {
                memset(P.g, 0, (size_t)P.total * sizeof(float));
                lc = mc_train_step(&c, &P, t, ids, 1, 1.0f);
                nc = mc_clip_grad(&P, 0.5);
                mc_adamw_update(&oc, &P, 1e-2f);
                CHECK(mc_gtrain_zero_grad(g, &err) == MAMBAC_OK && mc_gtrain_step(g, ids, B, 1, 1.0f, &lg, &err) == MAMBAC_OK &&
                          mc_gtrain_update(g, &og, 0.5, 1e-2f, &ng, &err) == MAMBAC_OK,
                      "update: %s", err.msg);
            }
            CHECK(mc_gtrain_download(g, &Q, &og, &err) == MAMBAC_OK, "download: %s", err.msg);
            const double ew = rel_l2f(Q.w, P.w, P.total), em = rel_l2f(og.m, oc.m, P.total);
            CHECK(ew < 1e-5 && em < 1e-4 && fabs(ng - nc) < 1e-4 * nc && og.step == oc.step,
                  "%s: 5 AdamW steps: weights %.3g, moments %.3g, norm %.6g vs %.6g", a == 1 ? "mamba" : "mamba2", ew, em, ng, nc);
            printf("%s: 5 AdamW steps: loss %.6f (cpu %.6f), weights rel %.2g, m rel %.2g\n", a == 1 ? "mamba" : "mamba2", lg, lc,
                   ew, em);
            mc_gtrain_free(g);
        }
        mc_adamw_free(&oc);
        mc_adamw_free(&og);
        mc_tape_free(t);
        mc_tctx_free(&c);
        mc_params_free(&P);
        mc_params_free(&Q);
        mambac_model_free(m);
    }
}

static void overfit(const char *tmp) {
    for (int a = 1; a <= 2; a++) {
        mambac_init_params ip = small((mambac_arch)a, 32, 8, 8, 2);
        ip.vocab_size = 40;
        mambac_model *m = random_model(tmp, a == 1 ? "of1" : "of2", ip);
        if (!m) continue;
        mambac_error err;
        mc_params P;
        mc_params_from_model(m, &P, &err);
        mc_adamw o;
        mc_adamw_init(&o, &P, &err);
        mc_gtrain *g;
        int32_t ids[64];
        for (int i = 0; i < 64; i++) ids[i] = (int32_t)((i * 13 + i / 16 * 5) % 40);
        if (mc_gtrain_new(&P, "cuda", NULL, 4, 16, &g, &err) != MAMBAC_OK) {
            CHECK(0, "overfit: %s", err.msg);
        } else {
            double first = 0, loss = 0, gn;
            int step = 0;
            for (; step < 300; step++) {
                mc_gtrain_zero_grad(g, &err);
                mc_gtrain_step(g, ids, 4, 1, 1.0f, &loss, &err);
                if (step == 0) first = loss;
                if (loss < 0.05) break;
                mc_gtrain_update(g, &o, 1.0, 1e-2f, &gn, &err);
            }
            printf("overfit on the GPU, %s: loss %.3f -> %.4f in %d steps\n", a == 1 ? "mamba" : "mamba2", first, loss, step);
            CHECK(loss < 0.05, "%s did not overfit on the GPU: %.3f -> %.3f", a == 1 ? "mamba" : "mamba2", first, loss);
            mc_gtrain_free(g);
        }
        mc_adamw_free(&o);
        mc_params_free(&P);
        mambac_model_free(m);
    }
}

/* the train_loss column of log.csv, as numbers */
static int log_losses(const char *dir, double *out, int max) {
    char *p = path_in(dir, "log.csv"), *t = read_text(p);
    int n = 0;
    for (char *line = t ? strtok(t, "\n") : NULL; line && n < max; line = strtok(NULL, "\n")) {
        long long s, tok;
        double l;
        if (sscanf(line, "%lld,%lld,%lf", &s, &tok, &l) == 3) out[n++] = l;
    }
    free(p);
    free(t);
    return n;
}

static void loop(const char *tmp) {
    char *data = path_in(tmp, "verse.txt");
    {
        const char *verse = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n";
        char *buf = malloc(6001);
        for (size_t i = 0; i < 6000; i++) buf[i] = verse[i % strlen(verse)];
        write_file(data, buf, 6000);
        free(buf);
    }
    mambac_error err;
    for (int a = 1; a <= 2; a++) {
        char full[600], part[600], cpu[600], mixed[600];
        snprintf(full, sizeof full, "%s/gfull%d", tmp, a);
        snprintf(part, sizeof part, "%s/gpart%d", tmp, a);
        snprintf(cpu, sizeof cpu, "%s/gcpu%d", tmp, a);
        snprintf(mixed, sizeof mixed, "%s/gmixed%d", tmp, a);
        mc_train_config c = mc_train_default_config();
        c.init = mambac_init_default_params((mambac_arch)a);
        c.init.d_model = 32, c.init.n_layer = 2, c.init.d_state = 16;
        if (a == 2) c.init.head_dim = 16, c.init.chunk_size = 16;
        c.data = data, c.out = full, c.device = "cuda";
        c.batch = 3, c.seq = 40, c.steps = 6, c.warmup = 2, c.eval_every = 2, c.lr = 5e-3f, c.min_lr = 1e-3f, c.threads = 2;
        CHECK(mc_train_run(&c, &err) == MAMBAC_OK, "train on the GPU: %s", err.msg);
        mc_train_config cc = c;
        cc.out = cpu, cc.device = NULL;
        CHECK(mc_train_run(&cc, &err) == MAMBAC_OK, "train on the CPU: %s", err.msg);
        c.out = part, c.stop_at = 3;
        CHECK(mc_train_run(&c, &err) == MAMBAC_OK, "train to step 3: %s", err.msg);
        char cmd[2000];
        snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", part, mixed);
        CHECK(system(cmd) == 0, "copy");
        mc_train_config r = mc_train_default_config();
        r.resume = part, r.threads = 2, r.steps = 0, r.device = "cuda";
        CHECK(mc_train_run(&r, &err) == MAMBAC_OK, "resume on the GPU: %s", err.msg);
        r.resume = mixed, r.device = NULL;
        CHECK(mc_train_run(&r, &err) == MAMBAC_OK, "resume on the CPU: %s", err.msg);
        double lf[16], lp[16], lc[16], lm[16];
        const int nf = log_losses(full, lf, 16), np = log_losses(part, lp, 16), nc = log_losses(cpu, lc, 16),
                  nm = log_losses(mixed, lm, 16);
        CHECK(nf == 6 && np == 6 && nc == 6 && nm == 6, "log rows %d %d %d %d", nf, np, nc, nm);
        for (int i = 0; i < 6 && nf == 6 && np == 6 && nc == 6 && nm == 6; i++) {
            CHECK(lf[i] == lp[i], "step %d: resumed on the GPU %.6f vs uninterrupted %.6f", i + 1, lp[i], lf[i]);
            CHECK(fabs(lf[i] - lc[i]) <= 1e-4 * lf[i], "step %d: GPU %.6f vs CPU %.6f", i + 1, lf[i], lc[i]);
            CHECK(fabs(lf[i] - lm[i]) <= 1e-3 * lf[i], "step %d: resumed on the CPU %.6f vs GPU %.6f", i + 1, lm[i], lf[i]);
        }
        printf("%s: train --device cuda: losses %.4f .. %.4f; CPU %.4f .. %.4f; GPU->CPU resume %.4f\n",
               a == 1 ? "mamba" : "mamba2", lf[0], lf[5], lc[0], lc[5], lm[5]);
    }
    free(data);
}

static void refusals(void) {
    mc_params P = {0};
    mc_gtrain *g = NULL;
    mambac_error err;
    CHECK(mc_gtrain_new(&P, "cuda:77", NULL, 1, 8, &g, &err) != MAMBAC_OK && strstr(err.msg, "cuda:77"), "cuda:77 refused: %s", err.msg);
    CHECK(mc_gtrain_new(&P, "gpu", NULL, 1, 8, &g, &err) != MAMBAC_OK && strstr(err.msg, "unknown training device"), "gpu refused: %s",
          err.msg);
    CHECK(mc_gtrain_new(&P, "cuda", "fp8", 1, 8, &g, &err) != MAMBAC_OK && strstr(err.msg, "fp8"), "fp8 refused: %s", err.msg);
}

/* Two small random models against the CPU trainer, shaped to reach the kernels' edges
 * (Mamba-1: a width not a multiple of the scan's 128-channel blocks, N below 16, a last
 * segment and piece cut short, a conv of 3 taps; Mamba-2 with bf16 products: the
 * tensor-core SSD with its skip, a partial chunk): for compute-sanitizer. */
static void edge_models(const char *tmp) {
    mambac_model *m = random_model(tmp, "edge1", with_conv(small(MAMBAC_ARCH_MAMBA1, 48, 5, 0, 1), 3));
    if (m) vs_cpu("edge: mamba d48 N5 conv 3, 2 x 83", m, 2, 83, 2, NULL, 5e-5, 1e-6);
    mambac_model_free(m);
    m = random_model(tmp, "edge2", small(MAMBAC_ARCH_MAMBA2, 32, 16, 16, 1));
    if (m) vs_cpu("edge: mamba2 d32 N16 P16, 2 x 70, bf16", m, 2, 70, 2, "bf16", 5e-2, 2e-3);
    mambac_model_free(m);
}

/* `test_cuda_train kernels` runs only the kernel-level checks (the SSD's two forms) and
 * the two edge models, small enough for compute-sanitizer (scripts/test_cuda.sh). */
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "kernels") == 0) {
        char *tmp = make_temp_dir();
        ssd_forms();
        edge_models(tmp);
        remove_temp_dir(tmp);
        free(tmp);
        return check_summary();
    }
    char *tmp = make_temp_dir();
    const char *fixtures[] = {"mamba1-tiny", "mamba1-bias", "mamba2-tiny", "mamba2-groups"};
    for (int i = 0; i < 4; i++) fixture(fixtures[i]);
    ssd_forms();
    edge_models(tmp);
    random_models(tmp);
    updates(tmp);
    overfit(tmp);
    loop(tmp);
    refusals();
    remove_temp_dir(tmp);
    free(tmp);
    return check_summary();
}
