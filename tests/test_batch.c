/* test_batch.c — batched evaluation equals sequential evaluation:
 *   - six sequences with prompts of different lengths join a running batch at different
 *     steps, are fed in uneven pieces (longer than a micro-batch too, so pieces are cut
 *     and packed with other sequences' rows), decode, and leave at different steps; every
 *     sequence's logits at every position equal those of feeding the same pieces to it
 *     alone through mambac_eval. With the scalar kernels bit for bit for Mamba-1 (every
 *     product's row is computed the same whatever rows share it, and the scan is
 *     sequential), within 2e-5 for Mamba-2 (a piece that does not fit the rest of a
 *     micro-batch is cut, and the SSD's chunks then start at other tokens: the same
 *     function, rounded differently); with the SIMD kernels within a
 *     relative L2 of 2e-5 for float weights (products of 1-3 rows take the GEMV kernels,
 *     of more rows the packed GEMM: the same sums in another order, float32 rounding
 *     through a few layers) and 1e-3 for quantized weights (their activations are
 *     rounded to int16 per block either way, but by kernels of different widths).
 *     Every kernel set this CPU runs, 1 and 2 threads, both architectures, float,
 *     bf16 and quantized GGUF models, repacked and not.
 *   - GREEDY returns the argmax of the logits LAST returns for the same batch;
 *   - a batch with a bad sequence (id out of range, a state twice, no tokens, a state of
 *     another model) fails before anything runs: every state and count unchanged;
 *   - a state's bytes in memory round-trip, and refuse a truncated or corrupted copy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "mambac.h"
#include "testutil.h"

#define S 6       /* sequences */
#define STEPS 14
#define UB 16     /* max_ubatch: prompts of 37 and 70 tokens span several micro-batches */
#define MAXT 160

/* The schedule: sequence s joins at step join[s] with a prompt of plen[s] tokens fed in
 * pieces of at most piece[s], then decodes one token a step until step leave[s]. */
static const int join[S] = {0, 0, 1, 3, 3, 6};
static const int leave[S] = {9, 14, 12, 7, 14, 13};
static const int plen[S] = {37, 1, 70, 5, 12, 23};
static const int piece[S] = {37, 1, 9, 5, 40, 7};

typedef struct seqrun {
    int32_t ids[MAXT];
    int fed;            /* tokens fed so far */
    int npieces, len[MAXT], mode[MAXT];
    float *lg;          /* (MAXT, V) logits at every position that asked for them */
    unsigned char asked[MAXT];
} seqrun;

static void make_ids(seqrun *r, int s, int vocab) {
    uint32_t x = 2463534242u + 977u * (uint32_t)s;
    for (int t = 0; t < MAXT; t++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        r->ids[t] = (int32_t)(x % (uint32_t)vocab);
    }
}

/* Runs the schedule as one batch per step; records the pieces each sequence was fed. */
static int run_batched(mambac_context *ctx, mambac_model *m, seqrun *runs, mambac_error *err) {
    const mambac_model_info *c = mambac_model_get_info(m);
    mambac_state *st[S];
    for (int s = 0; s < S; s++) mambac_state_new(m, &st[s], err);
    int ok = 1;
    for (int step = 0; step < STEPS && ok; step++) {
        mambac_seq q[S];
        int n = 0;
        for (int s = 0; s < S; s++) {
            seqrun *r = &runs[s];
            if (step < join[s] || step >= leave[s]) continue;
            int k = r->fed < plen[s] ? (plen[s] - r->fed < piece[s] ? plen[s] - r->fed : piece[s]) : 1;
            /* logits: all positions of prompt pieces, the last of others; none now and then */
            int mode = r->fed < plen[s] ? MAMBAC_LOGITS_ALL : (step + s) % 5 == 0 ? MAMBAC_LOGITS_NONE : MAMBAC_LOGITS_LAST;
            q[n++] = (mambac_seq){st[s], r->ids + r->fed, (size_t)k, (mambac_logits_mode)mode,
                                  r->lg + (size_t)r->fed * (size_t)c->n_vocab_rows, NULL};
            r->len[r->npieces] = k, r->mode[r->npieces++] = mode;
            if (mode == MAMBAC_LOGITS_ALL)
                for (int t = 0; t < k; t++) r->asked[r->fed + t] = 1;
            if (mode == MAMBAC_LOGITS_LAST) {
                r->asked[r->fed + k - 1] = 1;
                q[n - 1].logits = r->lg + (size_t)(r->fed + k - 1) * (size_t)c->n_vocab_rows;
            }
            r->fed += k;
        }
        if (n && mambac_eval_batch(ctx, q, (size_t)n, err) != MAMBAC_OK) ok = 0;
    }
    for (int s = 0; s < S; s++) {
        if (mambac_state_n_tokens(st[s]) != runs[s].fed) ok = 0;
        mambac_state_free(st[s]);
    }
    return ok;
}

/* The same pieces, one sequence at a time. */
static int run_alone(mambac_context *ctx, mambac_model *m, const seqrun *r, float *lg, mambac_error *err) {
    const int64_t V = mambac_model_get_info(m)->n_vocab_rows;
    mambac_state *st;
    mambac_state_new(m, &st, err);
    int ok = 1;
    for (int p = 0, t = 0; p < r->npieces && ok; t += r->len[p], p++) {
        float *dst = lg + (size_t)t * (size_t)V;
        if (r->mode[p] == MAMBAC_LOGITS_LAST) dst = lg + (size_t)(t + r->len[p] - 1) * (size_t)V;
        ok = mambac_eval(ctx, st, r->ids + t, (size_t)r->len[p], (mambac_logits_mode)r->mode[p], dst, err) == MAMBAC_OK;
    }
    mambac_state_free(st);
    return ok;
}

/* GREEDY gives the argmax of the logits LAST gives in the same batch (same rows, same
 * products), for prompts and for decode steps. */
static void test_greedy(mambac_context *ctx, mambac_model *m, const char *label) {
    const mambac_model_info *c = mambac_model_get_info(m);
    const int64_t V = c->n_vocab_rows;
    enum { NS = 5 };
    mambac_state *a[NS], *b[NS];
    mambac_seq qa[NS], qb[NS];
    int32_t ids[NS][40], tok[NS], next[NS];
    float *lg = malloc((size_t)(NS * V) * sizeof(float));
    mambac_error err;
    int same = 1;
    for (int s = 0; s < NS; s++) {
        mambac_state_new(m, &a[s], &err), mambac_state_new(m, &b[s], &err);
        for (int t = 0; t < 40; t++) ids[s][t] = (7 * s + 3 * t + t * t) % c->vocab_size;
    }
    for (int step = 0; step < 4; step++) {
        for (int s = 0; s < NS; s++) {
            const size_t n = step == 0 ? (size_t)(1 + 9 * s) : 1;
            const int32_t *in = step == 0 ? ids[s] : &next[s];
            qa[s] = (mambac_seq){a[s], in, n, MAMBAC_LOGITS_LAST, lg + s * V, NULL};
            qb[s] = (mambac_seq){b[s], in, n, MAMBAC_LOGITS_GREEDY, NULL, &tok[s]};
        }
        CHECK(mambac_eval_batch(ctx, qa, NS, &err) == MAMBAC_OK && mambac_eval_batch(ctx, qb, NS, &err) == MAMBAC_OK,
              "%s greedy batch: %s", label, err.msg);
        for (int s = 0; s < NS; s++) {
            next[s] = mambac_argmax(lg + s * V, c->vocab_size);
            same &= next[s] == tok[s];
        }
    }
    CHECK(same, "%s: GREEDY tokens equal the argmax of LAST logits", label);
    for (int s = 0; s < NS; s++) mambac_state_free(a[s]), mambac_state_free(b[s]);
    free(lg);
}

static void test_model(const char *file, int quantized) {
    static const char *isas[] = {"scalar", "avx2", "avx512", "amx"};
    for (int repack = 0; repack <= quantized; repack++) {
        char path[512];
        snprintf(path, sizeof path, "%s/gguf/%s", MAMBAC_TEST_DATA, file);
        mambac_model *m;
        mambac_error err;
        if (test_model_load(path, repack, &m, &err) != MAMBAC_OK) {
            CHECK(0, "%s: %s", file, err.msg);
            return;
        }
        const mambac_model_info *c = mambac_model_get_info(m);
        const int64_t V = c->n_vocab_rows;
        const int cpu = test_backend_is_cpu();
        for (size_t k = 0; k < (cpu ? sizeof isas / sizeof isas[0] : 1); k++)
            for (int nt = 1; nt <= 2; nt++) {
                mambac_context_params cp = mambac_context_default_params();
                cp.isa = cpu ? isas[k] : NULL, cp.n_threads = nt, cp.max_ubatch = UB;
                if (!cpu && nt > 1) continue;
                const char *kname = cpu ? isas[k] : test_backend();
                mambac_context *ctx;
                if (mambac_context_new(m, &cp, &ctx, &err) != MAMBAC_OK) continue; /* not on this CPU */
                seqrun runs[S];
                memset(runs, 0, sizeof runs);
                float *alone = malloc((size_t)(MAXT * V) * sizeof(float));
                for (int s = 0; s < S; s++) {
                    make_ids(&runs[s], s, c->vocab_size);
                    runs[s].lg = malloc((size_t)(MAXT * V) * sizeof(float));
                }
                CHECK(run_batched(ctx, m, runs, &err), "%s %s: batched run: %s", file, kname, err.msg);
                double worst = 0;
                int bitwise = 1;
                for (int s = 0; s < S; s++) {
                    CHECK(run_alone(ctx, m, &runs[s], alone, &err), "%s: alone: %s", file, err.msg);
                    for (int t = 0; t < runs[s].fed; t++) {
                        if (!runs[s].asked[t]) continue;
                        const float *a = runs[s].lg + (size_t)t * (size_t)V, *b = alone + (size_t)t * (size_t)V;
                        bitwise &= memcmp(a, b, (size_t)V * sizeof(float)) == 0;
                        double e = rel_l2(a, V, b, V, 1, V);
                        if (!(e <= worst)) worst = e; /* NaN sticks */
                    }
                }
                /* Mamba-2 pieces cut at another place start SSD chunks at another token */
                const int scalar = strcmp(isas[k], "scalar") == 0, m1 = c->arch == MAMBAC_ARCH_MAMBA1;
                const double bound = !cpu ? (getenv("MAMBAC_TEST_PRECISION") ? 3e-2 : 2e-5)
                                     : scalar && m1 ? 0.0 : quantized && !scalar ? 1e-3 : 2e-5;
                CHECK(worst <= bound && (bound > 0 || bitwise), "%s repack %d %s t%d: batched vs alone %.3g (bound %g)", file,
                      repack, kname, nt, worst, bound);
                printf("  %-22s repack %d %-6s t%d: batched vs alone %s %.2g\n", file, repack, kname, nt,
                       bitwise ? "bitwise," : "rel L2", worst);
                for (int s = 0; s < S; s++) free(runs[s].lg);
                free(alone);
                test_greedy(ctx, m, file);
                mambac_context_free(ctx);
            }
        mambac_model_free(m);
    }
}

/* A bad sequence anywhere in a batch: nothing runs, every state is left as it was. */
static void test_errors(void) {
    char path[512], other_path[512];
    snprintf(path, sizeof path, "%s/gguf/mamba1-tiny-f32.gguf", MAMBAC_TEST_DATA);
    snprintf(other_path, sizeof other_path, "%s/gguf/mamba2-tiny-f32.gguf", MAMBAC_TEST_DATA);
    mambac_model *m, *other;
    mambac_error err;
    if (test_model_load(path, -1, &m, &err) != MAMBAC_OK || test_model_load(other_path, -1, &other, &err) != MAMBAC_OK) {
        CHECK(0, "load: %s", err.msg);
        return;
    }
    const mambac_model_info *c = mambac_model_get_info(m);
    mambac_context *ctx;
    mambac_context_new(m, NULL, &ctx, &err);
    mambac_state *a, *b, *foreign;
    mambac_state_new(m, &a, &err);
    mambac_state_new(m, &b, &err);
    mambac_state_new(other, &foreign, &err);
    int32_t ids[4] = {1, 2, 3, 4}, bad[2] = {1, c->vocab_size};
    float *lg = malloc((size_t)(4 * c->n_vocab_rows) * sizeof(float));
    mambac_eval(ctx, a, ids, 4, MAMBAC_LOGITS_NONE, NULL, &err); /* a non-zero state to compare */
    const size_t nb = mambac_state_file_bytes(m);
    unsigned char *before = malloc(nb), *after = malloc(nb), *bb = malloc(nb), *ba = malloc(nb);
    mambac_state_to_bytes(a, before, nb, &err);
    mambac_state_to_bytes(b, bb, nb, &err);

    const mambac_seq cases[][2] = {
        {{a, ids, 4, MAMBAC_LOGITS_ALL, lg, NULL}, {b, bad, 2, MAMBAC_LOGITS_LAST, lg, NULL}},
        {{a, ids, 4, MAMBAC_LOGITS_NONE, NULL, NULL}, {a, ids, 1, MAMBAC_LOGITS_NONE, NULL, NULL}},
        {{a, ids, 4, MAMBAC_LOGITS_NONE, NULL, NULL}, {b, ids, 0, MAMBAC_LOGITS_NONE, NULL, NULL}},
        {{a, ids, 2, MAMBAC_LOGITS_NONE, NULL, NULL}, {foreign, ids, 2, MAMBAC_LOGITS_NONE, NULL, NULL}},
        {{a, ids, 2, MAMBAC_LOGITS_NONE, NULL, NULL}, {b, ids, 2, MAMBAC_LOGITS_LAST, NULL, NULL}},
        {{a, ids, 2, MAMBAC_LOGITS_NONE, NULL, NULL}, {NULL, ids, 2, MAMBAC_LOGITS_NONE, NULL, NULL}},
        {{a, ids, 2, MAMBAC_LOGITS_NONE, NULL, NULL}, {b, ids, 2, MAMBAC_LOGITS_GREEDY, lg, NULL}},
        {{a, ids, 2, MAMBAC_LOGITS_NONE, NULL, NULL}, {b, ids, 2, (mambac_logits_mode)9, lg, NULL}},
    };
    const char *what[] = {"id out of range", "a state twice", "no tokens", "another model's state", "no logits buffer",
                          "no state", "GREEDY without a token pointer", "an unknown mode"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(mambac_eval_batch(ctx, cases[i], 2, &err) == MAMBAC_ERR_INVALID_ARG, "%s refused", what[i]);
        mambac_state_to_bytes(a, after, nb, &err);
        mambac_state_to_bytes(b, ba, nb, &err);
        CHECK(memcmp(before, after, nb) == 0 && memcmp(bb, ba, nb) == 0, "%s: states unchanged", what[i]);
        CHECK(mambac_state_n_tokens(a) == 4 && mambac_state_n_tokens(b) == 0, "%s: counts unchanged", what[i]);
    }
    /* after every refusal the states are usable in a batch again (no mark left behind) */
    const mambac_seq good[2] = {{a, ids, 1, MAMBAC_LOGITS_NONE, NULL, NULL}, {b, ids, 3, MAMBAC_LOGITS_NONE, NULL, NULL}};
    CHECK(mambac_eval_batch(ctx, good, 2, &err) == MAMBAC_OK, "batch after refusals: %s", err.msg);
    CHECK(mambac_eval_batch(ctx, good, 0, &err) == MAMBAC_ERR_INVALID_ARG, "empty batch refused");

    /* state bytes: round trip, then a truncated and a corrupted copy refused */
    mambac_state_to_bytes(a, before, nb, &err);
    CHECK(mambac_state_to_bytes(a, before, nb - 1, &err) == MAMBAC_ERR_INVALID_ARG, "short buffer refused");
    CHECK(mambac_state_from_bytes(b, before, nb, &err) == MAMBAC_OK, "from bytes: %s", err.msg);
    mambac_state_to_bytes(b, after, nb, &err);
    CHECK(memcmp(before, after, nb) == 0 && mambac_state_n_tokens(b) == 5, "bytes round trip");
    CHECK(mambac_state_from_bytes(b, before, nb - 1, &err) == MAMBAC_ERR_FORMAT, "truncated bytes refused");
    before[nb / 2] ^= 1;
    CHECK(mambac_state_from_bytes(b, before, nb, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "checksum"),
          "corrupt bytes refused: %s", err.msg);
    CHECK(mambac_state_from_bytes(foreign, after, nb, &err) != MAMBAC_OK, "bytes of another shape refused");

    /* a FIFO (or device) under the output name is refused, not replaced by a file */
    char *tmp = make_temp_dir(), *fifo = tmp ? path_in(tmp, "fifo") : NULL;
    if (fifo && mkfifo(fifo, 0600) == 0) {
        struct stat sb;
        CHECK(mambac_state_save(a, fifo, &err) == MAMBAC_ERR_IO && strstr(err.msg, "not a regular file"),
              "state saved over a FIFO refused: %s", err.msg);
        CHECK(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO is still there");
    } else {
        CHECK(0, "mkfifo");
    }
    remove_temp_dir(tmp);
    free(fifo), free(tmp);
    free(before), free(after), free(bb), free(ba), free(lg);
    mambac_state_free(a), mambac_state_free(b), mambac_state_free(foreign);
    mambac_context_free(ctx);
    mambac_model_free(m), mambac_model_free(other);
}

int main(void) {
    test_model("mamba1-tiny-f32.gguf", 0);
    test_model("mamba1-bias-f32.gguf", 0);
    test_model("mamba1-tiny-bf16.gguf", 0);
    test_model("mamba1-tiny-q8_0.gguf", 1);
    test_model("mamba1-tiny-q4_0.gguf", 1);
    test_model("mamba2-tiny-f32.gguf", 0);
    test_model("mamba2-groups-f32.gguf", 0);
    test_model("mamba2-tiny-f16.gguf", 0);
    test_model("mamba2-tiny-q4_0.gguf", 1);
    test_model("mamba2-groups-q8_0.gguf", 1);
    test_errors();
    return check_summary();
}
