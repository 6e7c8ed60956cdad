/* test_cuda.c — the CUDA backend against the CPU backend, on a GPU machine
 * (scripts/test_cuda.sh; not part of ctest, which runs where there is no GPU):
 *   - models of real shapes (mamba-130m and mamba2-130m widths with 2 layers; Mamba-1 with
 *     d_state 8 and 24; Mamba-2 with d_state 256, 4 groups and head_dim 32, and with
 *     d_state 64, 2 groups and head_dim 128; bf16 weights; a q4_0 GGUF; proj biases),
 *     the bf16 cases through the tensor-core SSD where its shapes allow;
 *     random weights; logits at every position of a 300-token prompt fed whole, token by
 *     token, in uneven pieces, and as one sequence of a batch with three others, and of a
 *     1500-token prompt whole and in two pieces (the chunked scan / SSD), against the CPU
 *     fed whole. Bounds: relative L2 1e-4 on the f32 path (float32 arithmetic in
 *     another order: ~1e-6 expected), 3e-2 for bf16 products (bf16 operands: ~4e-3 per
 *     product, through a few layers);
 *   - a state made on the GPU continues on the CPU and the other way (state bytes);
 *   - a device that is not there and an unknown precision are refused with a message. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mambac.h"
#include "testutil.h"

#define T 300

static float *logits_cpu(mambac_model *m, const int32_t *ids, int64_t n) {
    const int64_t V = mambac_model_get_info(m)->n_vocab_rows;
    mambac_context *ctx;
    mambac_state *st;
    mambac_error err;
    float *lg = malloc((size_t)(n * V) * sizeof(float));
    mambac_context_new(m, NULL, &ctx, &err);
    mambac_state_new(m, &st, &err);
    CHECK(mambac_eval(ctx, st, ids, (size_t)n, MAMBAC_LOGITS_ALL, lg, &err) == MAMBAC_OK, "cpu eval: %s", err.msg);
    mambac_state_free(st);
    mambac_context_free(ctx);
    return lg;
}

/* Logits fed in pieces: `pieces` lengths cycled (0-terminated), on a context of max_ubatch U. */
static float *logits_pieces(mambac_model *m, const int32_t *ids, int64_t n, const int *pieces, int32_t U) {
    const int64_t V = mambac_model_get_info(m)->n_vocab_rows;
    mambac_context_params cp = mambac_context_default_params();
    cp.max_ubatch = U;
    mambac_context *ctx;
    mambac_state *st;
    mambac_error err;
    float *lg = malloc((size_t)(n * V) * sizeof(float));
    if (mambac_context_new(m, &cp, &ctx, &err) != MAMBAC_OK || mambac_state_new(m, &st, &err) != MAMBAC_OK) {
        CHECK(0, "context: %s", err.msg);
        return lg;
    }
    for (int64_t done = 0, k = 0; done < n; k++) {
        if (!pieces[k]) k = 0;
        int64_t p = pieces[k] < n - done ? pieces[k] : n - done;
        if (mambac_eval(ctx, st, ids + done, (size_t)p, MAMBAC_LOGITS_ALL, lg + done * V, &err) != MAMBAC_OK) {
            CHECK(0, "eval: %s", err.msg);
            break;
        }
        done += p;
    }
    mambac_state_free(st);
    mambac_context_free(ctx);
    return lg;
}

/* The prompt as sequence 0 of a batch with three others fed at the same time. */
static float *logits_in_batch(mambac_model *m, const int32_t *ids, int64_t n) {
    const int64_t V = mambac_model_get_info(m)->n_vocab_rows;
    mambac_context_params cp = mambac_context_default_params();
    cp.max_ubatch = 128;
    mambac_context *ctx;
    mambac_state *st[4];
    mambac_error err;
    float *lg = malloc((size_t)(n * V) * sizeof(float)), *other = malloc((size_t)(n * V) * sizeof(float));
    mambac_context_new(m, &cp, &ctx, &err);
    for (int s = 0; s < 4; s++) mambac_state_new(m, &st[s], &err);
    const int64_t first = 100;
    int32_t tok;
    mambac_seq q[4] = {{st[0], ids, (size_t)first, MAMBAC_LOGITS_ALL, lg, NULL},
                       {st[1], ids + 7, 50, MAMBAC_LOGITS_LAST, other, NULL},
                       {st[2], ids + 3, 1, MAMBAC_LOGITS_GREEDY, NULL, &tok},
                       {st[3], ids + 11, 170, MAMBAC_LOGITS_ALL, other, NULL}};
    CHECK(mambac_eval_batch(ctx, q, 4, &err) == MAMBAC_OK, "batch: %s", err.msg);
    for (int64_t t = first; t < n; t++) { /* then token by token, beside three decoding sequences */
        q[0] = (mambac_seq){st[0], ids + t, 1, MAMBAC_LOGITS_LAST, lg + t * V, NULL};
        for (int s = 1; s < 4; s++)
            q[s] = (mambac_seq){st[s], ids + (t * s) % n, 1, s == 2 ? MAMBAC_LOGITS_GREEDY : MAMBAC_LOGITS_LAST, other + s * V, &tok};
        if (mambac_eval_batch(ctx, q, 4, &err) != MAMBAC_OK) {
            CHECK(0, "batch step: %s", err.msg);
            break;
        }
    }
    for (int s = 0; s < 4; s++) mambac_state_free(st[s]);
    mambac_context_free(ctx);
    free(other);
    return lg;
}

/* Half the prompt on `a`, the state moved through its bytes, the rest on `b`. */
static float *logits_moved(mambac_model *a, mambac_model *b, const int32_t *ids, int64_t n) {
    const int64_t V = mambac_model_get_info(a)->n_vocab_rows, half = n / 2;
    mambac_context *ca, *cb;
    mambac_state *sa, *sb;
    mambac_error err;
    float *lg = malloc((size_t)(n * V) * sizeof(float));
    mambac_context_new(a, NULL, &ca, &err);
    mambac_context_new(b, NULL, &cb, &err);
    mambac_state_new(a, &sa, &err);
    mambac_state_new(b, &sb, &err);
    const size_t nb = mambac_state_file_bytes(a);
    void *bytes = malloc(nb);
    CHECK(mambac_eval(ca, sa, ids, (size_t)half, MAMBAC_LOGITS_ALL, lg, &err) == MAMBAC_OK, "first half: %s", err.msg);
    CHECK(mambac_state_to_bytes(sa, bytes, nb, &err) == MAMBAC_OK && mambac_state_from_bytes(sb, bytes, nb, &err) == MAMBAC_OK,
          "state moved: %s", err.msg);
    CHECK(mambac_eval(cb, sb, ids + half, (size_t)(n - half), MAMBAC_LOGITS_ALL, lg + half * V, &err) == MAMBAC_OK,
          "second half: %s", err.msg);
    free(bytes);
    mambac_state_free(sa), mambac_state_free(sb);
    mambac_context_free(ca), mambac_context_free(cb);
    return lg;
}

static void compare_rows(const char *label, const char *how, const float *got, const float *want, int64_t V, int64_t rows,
                         double bound) {
    const double e = rel_l2(got, V, want, V, rows, V);
    printf("  %-34s %-28s rel L2 %.3g\n", label, how, e);
    CHECK(e <= bound, "%s %s: relative L2 %.3g above %g", label, how, e, bound);
}

static void compare(const char *label, const char *how, const float *got, const float *want, int64_t V, double bound) {
    compare_rows(label, how, got, want, V, T, bound);
}

static void test_case(const char *label, const char *path) {
    mambac_error err;
    mambac_model *cpu, *gpu, *gpu16;
    mambac_model_params p = mambac_model_default_params();
    if (mambac_model_load(path, &cpu, &err) != MAMBAC_OK) {
        CHECK(0, "%s: cpu load: %s", label, err.msg);
        return;
    }
    p.backend = "cuda";
    if (mambac_model_load_ex(path, &p, &gpu, &err) != MAMBAC_OK) {
        CHECK(0, "%s: cuda load: %s", label, err.msg);
        mambac_model_free(cpu);
        return;
    }
    p.precision = "bf16";
    CHECK(mambac_model_load_ex(path, &p, &gpu16, &err) == MAMBAC_OK, "%s: cuda bf16 load: %s", label, err.msg);
    const mambac_model_info *c = mambac_model_get_info(cpu);
    const int64_t V = c->n_vocab_rows;
    int32_t ids[T];
    uint32_t x = 12345;
    for (int t = 0; t < T; t++) x = x * 1664525u + 1013904223u, ids[t] = (int32_t)((x >> 8) % (uint32_t)c->vocab_size);
    float *want = logits_cpu(cpu, ids, T);
    static const int whole[] = {T, 0}, one[] = {1, 0}, uneven[] = {1, 2, 37, 5, 64, 3, 130, 0};
    float *g;
    g = logits_pieces(gpu, ids, T, whole, 512), compare(label, "whole", g, want, V, 1e-4), free(g);
    g = logits_pieces(gpu, ids, T, one, 512), compare(label, "token by token", g, want, V, 1e-4), free(g);
    g = logits_pieces(gpu, ids, T, uneven, 40), compare(label, "uneven pieces, max_ubatch 40", g, want, V, 1e-4), free(g);
    g = logits_in_batch(gpu, ids, T), compare(label, "in a batch of four", g, want, V, 1e-4), free(g);
    g = logits_moved(gpu, cpu, ids, T), compare(label, "state gpu -> cpu", g, want, V, 1e-4), free(g);
    g = logits_moved(cpu, gpu, ids, T), compare(label, "state cpu -> gpu", g, want, V, 1e-4), free(g);
    /* a long prompt: one segment of many chunks (cuda_ops.h MCU_CHUNK), whole and in two
     * uneven pieces (a state entering the chunked scan) */
    enum { TL = 1500 };
    int32_t *lids = malloc(TL * sizeof *lids);
    for (int t = 0; t < TL; t++) x = x * 1664525u + 1013904223u, lids[t] = (int32_t)((x >> 8) % (uint32_t)c->vocab_size);
    float *lwant = logits_cpu(cpu, lids, TL);
    static const int lwhole[] = {TL, 0}, ltwo[] = {901, TL, 0};
    g = logits_pieces(gpu, lids, TL, lwhole, 4096), compare_rows(label, "1500 tokens whole", g, lwant, V, TL, 1e-4), free(g);
    g = logits_pieces(gpu, lids, TL, ltwo, 4096), compare_rows(label, "1500 tokens, 901 + 599", g, lwant, V, TL, 1e-4), free(g);
    if (gpu16) { /* long prompts: the chunked SSD on tensor cores (ssd_tc.cu) where the shape allows */
        g = logits_pieces(gpu16, ids, T, whole, 512), compare(label, "bf16 products, whole", g, want, V, 3e-2), free(g);
        g = logits_pieces(gpu16, ids, T, one, 512), compare(label, "bf16 products, token by token", g, want, V, 3e-2), free(g);
        g = logits_pieces(gpu16, lids, TL, lwhole, 4096);
        compare_rows(label, "bf16 products, 1500 tokens whole", g, lwant, V, TL, 3e-2), free(g);
        g = logits_pieces(gpu16, lids, TL, ltwo, 4096);
        compare_rows(label, "bf16 products, 1500 tokens, 901 + 599", g, lwant, V, TL, 3e-2), free(g);
    }
    free(lwant);
    free(lids);
    free(want);
    mambac_model_free(gpu16);
    mambac_model_free(gpu);
    mambac_model_free(cpu);
}

static void make_case(const char *tmp, const char *name, const char *preset, mambac_arch arch, int d_state, int head_dim,
                      int groups, mambac_dtype dtype, const char *gguf_type) {
    mambac_init_params p;
    mambac_error err;
    if (preset) mambac_init_preset(preset, &p, &err);
    else p = mambac_init_default_params(arch);
    p.n_layer = 2, p.dtype = dtype, p.seed = 7;
    if (d_state) p.d_state = d_state;
    if (head_dim) p.head_dim = head_dim;
    if (groups) p.n_groups = groups;
    char *dir = path_in(tmp, name);
    if (mambac_model_write_init(&p, dir, &err) != MAMBAC_OK) {
        CHECK(0, "%s: init: %s", name, err.msg);
        free(dir);
        return;
    }
    if (gguf_type) {
        mambac_model *m;
        mambac_dtype t;
        char file[600];
        snprintf(file, sizeof file, "%s.gguf", dir);
        t = strcmp(gguf_type, "q4_0") == 0 ? MAMBAC_DTYPE_Q4_0 : MAMBAC_DTYPE_Q8_0;
        CHECK(mambac_model_load(dir, &m, &err) == MAMBAC_OK && mambac_model_write_gguf(m, file, t, &err) == MAMBAC_OK,
              "%s: gguf: %s", name, err.msg);
        mambac_model_free(m);
        test_case(name, file);
    } else {
        test_case(name, dir);
    }
    free(dir);
}

static void test_refusals(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/gguf/mamba1-tiny-f32.gguf", MAMBAC_TEST_DATA);
    mambac_model_params p = mambac_model_default_params();
    mambac_model *m = NULL;
    mambac_error err;
    p.backend = "cuda:99";
    CHECK(mambac_model_load_ex(path, &p, &m, &err) == MAMBAC_ERR_INVALID_ARG && strstr(err.msg, "device 99"),
          "missing device refused: %s", err.msg);
    p.backend = "cuda", p.precision = "fp8";
    CHECK(mambac_model_load_ex(path, &p, &m, &err) == MAMBAC_ERR_INVALID_ARG && strstr(err.msg, "fp8"),
          "unknown precision refused: %s", err.msg);
    p.backend = "cuda:x", p.precision = NULL;
    CHECK(mambac_model_load_ex(path, &p, &m, &err) == MAMBAC_ERR_INVALID_ARG, "bad device name refused: %s", err.msg);
}

int main(void) {
    char *tmp = make_temp_dir();
    make_case(tmp, "mamba-130m-shape", "mamba-130m", MAMBAC_ARCH_MAMBA1, 0, 0, 0, MAMBAC_DTYPE_F32, NULL);
    make_case(tmp, "mamba-130m-shape-bf16", "mamba-130m", MAMBAC_ARCH_MAMBA1, 0, 0, 0, MAMBAC_DTYPE_BF16, NULL);
    /* the scan's per-channel kernels hold up to 16 states (8: a smaller template); 24 take
     * the lanes-per-channel kernels in every pass */
    make_case(tmp, "mamba1-N8", NULL, MAMBAC_ARCH_MAMBA1, 8, 0, 0, MAMBAC_DTYPE_F32, NULL);
    make_case(tmp, "mamba1-N24", NULL, MAMBAC_ARCH_MAMBA1, 24, 0, 0, MAMBAC_DTYPE_F32, NULL);
    make_case(tmp, "mamba2-130m-shape", "mamba2-130m", MAMBAC_ARCH_MAMBA2, 0, 0, 0, MAMBAC_DTYPE_F32, NULL);
    make_case(tmp, "mamba2-N256-G4-P32", NULL, MAMBAC_ARCH_MAMBA2, 256, 32, 4, MAMBAC_DTYPE_F32, NULL);
    make_case(tmp, "mamba2-N64-G2-P128", NULL, MAMBAC_ARCH_MAMBA2, 64, 128, 2, MAMBAC_DTYPE_F32, NULL);
    make_case(tmp, "mamba2-130m-shape-q4_0", "mamba2-130m", MAMBAC_ARCH_MAMBA2, 0, 0, 0, MAMBAC_DTYPE_F32, "q4_0");
    make_case(tmp, "mamba-130m-shape-q8_0", "mamba-130m", MAMBAC_ARCH_MAMBA1, 0, 0, 0, MAMBAC_DTYPE_F32, "q8_0");
    char fix[512];
    snprintf(fix, sizeof fix, "%s/models/mamba1-bias/hf", MAMBAC_TEST_DATA);
    test_case("mamba1-bias (proj and conv biases)", fix);
    test_refusals();
    remove_temp_dir(tmp);
    free(tmp);
    return check_summary();
}
