/* test_quant.c — block quantization against llama.cpp's own Python implementation of
 * the formats (tests/data/quant/refs.safetensors, made by scripts/make_quant_refs.py
 * with the `gguf` package), and the quantized matrix kernels against the reference.
 *  - dequantization of random blocks of every type = gguf's, to float rounding;
 *  - q8_0 / q4_0 quantization = gguf's bytes;
 *  - q4_K round trip error bounded (gguf has no q4_K quantizer to compare bytes with);
 *  - every kernel set x {q8_0, q4_0, q4_K} x T (1..3: int8 activations; >= 4: packed)
 *    against mc_matmul on the dequantized weights. With int8 activations the error of
 *    each 32-block is at most sum |w| * dx / 2 (dx = the block's activation step): the
 *    test checks each output against that bound, plus float rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/dtype.h"
#include "core/quant.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "model/repack_x16.h"
#include "testutil.h"

static uint64_t rng = 99;
static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

static const mc_tensor_entry *find(const ref_file *r, const char *name) {
    const mc_tensor_entry *e = mc_tensor_list_find(&r->tensors, name);
    CHECK(e != NULL, "reference tensor %s missing", name);
    return e;
}

static void check_dequant(const ref_file *r, const char *name, mambac_dtype t) {
    char a[64], b[64];
    snprintf(a, sizeof a, "%s.blocks", name);
    snprintf(b, sizeof b, "%s.deq", name);
    const mc_tensor_entry *blocks = find(r, a);
    float *want = ref_f32(r, b, NULL, NULL);
    if (!blocks || !want) return;
    const int64_t n = (int64_t)(blocks->nbytes / (size_t)mc_dtype_block_bytes(t)) * mc_dtype_block(t);
    float *got = malloc((size_t)n * sizeof(float));
    mc_dequantize_row(got, blocks->data, t, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-6f * fabsf(want[i]) + 1e-30f)) bad++;
    CHECK(bad == 0, "%s: %lld of %lld dequantized values differ from gguf's", name, (long long)bad, (long long)n);
    free(got);
    free(want);
}

static double roundtrip_error(const float *x, int64_t n, mambac_dtype t) {
    void *q = malloc(mc_dtype_row_bytes(t, n));
    float *y = malloc((size_t)n * sizeof(float));
    mc_quantize_row(q, x, t, n);
    mc_dequantize_row(y, q, t, n);
    double e = rel_l2(y, n, x, n, 1, n);
    free(q);
    free(y);
    return e;
}

static void check_quantize(const ref_file *r) {
    int64_t n = 0;
    float *x = ref_f32(r, "x", &n, NULL);
    if (!x) return;
    const struct { const char *name; mambac_dtype t; } ty[] = {{"q8_0.q", MAMBAC_DTYPE_Q8_0}, {"q4_0.q", MAMBAC_DTYPE_Q4_0}};
    for (int i = 0; i < 2; i++) {
        const mc_tensor_entry *e = find(r, ty[i].name);
        if (!e) continue;
        const size_t nb = mc_dtype_row_bytes(ty[i].t, n);
        unsigned char *q = malloc(nb);
        CHECK(mc_quantize_row(q, x, ty[i].t, n), "quantize %s", ty[i].name);
        size_t diff = 0;
        for (size_t k = 0; k < nb && e->nbytes == nb; k++) diff += q[k] != ((const unsigned char *)e->data)[k];
        CHECK(e->nbytes == nb && diff == 0, "%s: %zu of %zu bytes differ from gguf's quantization", ty[i].name, diff, nb);
        free(q);
    }
    /* Round trips: q8_0 keeps ~7 bits per value, 4-bit types ~3; q4_K's fitted
     * scale/min should do no worse than q4_0 on the same data. */
    const double e8 = roundtrip_error(x, n, MAMBAC_DTYPE_Q8_0), e4 = roundtrip_error(x, n, MAMBAC_DTYPE_Q4_0),
                 ek = roundtrip_error(x, n, MAMBAC_DTYPE_Q4_K);
    CHECK(e8 < 0.01, "q8_0 round trip error %.4f", e8);
    CHECK(e4 < 0.15, "q4_0 round trip error %.4f", e4);
    CHECK(ek < 0.15 && ek <= e4 * 1.05, "q4_K round trip error %.4f (q4_0 %.4f)", ek, e4);
    /* An all-zero and a constant super-block survive exactly. */
    float z[256] = {0}, c[256], y[256];
    unsigned char q[512];
    for (int i = 0; i < 256; i++) c[i] = 0.25f;
    const mambac_dtype all[] = {MAMBAC_DTYPE_Q8_0, MAMBAC_DTYPE_Q4_0, MAMBAC_DTYPE_Q4_K};
    for (int i = 0; i < 3; i++) {
        mc_quantize_row(q, z, all[i], 256);
        mc_dequantize_row(y, q, all[i], 256);
        int ok = 1;
        for (int k = 0; k < 256; k++) ok &= y[k] == 0.0f;
        mc_quantize_row(q, c, all[i], 256);
        mc_dequantize_row(y, q, all[i], 256);
        for (int k = 0; k < 256; k++) ok &= fabsf(y[k] - 0.25f) < 2e-3f;
        CHECK(ok, "%s: zeros / constants not preserved", mambac_dtype_name(all[i]));
    }
    CHECK(!mc_quantize_row(q, c, MAMBAC_DTYPE_Q6_K, 256), "q6_K is read-only");
    free(x);
}

/* Random weights quantized to t, then products through kernel set k vs mc_matmul. With
 * `repack` (q4_0, q8_0), the kernels read a copy repacked 16 rows at a time as the loader makes
 * it (repack_x16.h), split at rows that cut groups, and every row read back through the
 * accessor must give the native bytes. */
static void check_gemm(const mc_kernels *k, mambac_dtype t, int64_t R, int64_t K, int64_t T, int repack) {
    float *wf = malloc((size_t)(R * K) * sizeof(float)), *x = malloc((size_t)(T * K) * sizeof(float));
    for (int64_t i = 0; i < R * K; i++) wf[i] = frand() * (1.0f + (float)(i % 7));
    for (int64_t i = 0; i < T * K; i++) x[i] = frand() * (i % 97 == 0 ? 20.0f : 1.0f);
    const size_t row = mc_dtype_row_bytes(t, K);
    unsigned char *wq = malloc((size_t)R * row + 3);
    if (t == MAMBAC_DTYPE_Q5_0) /* read-only type: random blocks with a sane scale */
        for (int64_t i = 0; i < R * (int64_t)row; i++)
            wq[3 + i] = i % 22 == 0 ? 0x00 : i % 22 == 1 ? 0x20 : (unsigned char)((frand() + 1.0f) * 127.9f);
    else
        for (int64_t r = 0; r < R; r++) mc_quantize_row(wq + 3 + r * row, wf + r * K, t, K); /* misaligned */
    mc_weight W = {t, wq + 3, R, K, 0}, Wk = W;
    void *packed = repack ? mc_x16_repack(&Wk) : NULL;
    if (repack) {
        CHECK(packed && Wk.x16_rows == R / 16 * 16, "repack R=%lld", (long long)R);
        if (!packed) return;
        unsigned char *tmp = malloc(row);
        int64_t differ = 0;
        for (int64_t r = 0; r < R; r++) differ += memcmp(mc_weight_row_bytes(&Wk, r, tmp), wq + 3 + r * row, row) != 0;
        CHECK(differ == 0, "repacked R=%lld K=%lld: %lld rows read back differ", (long long)R, (long long)K, (long long)differ);
        free(tmp);
    }
    float *deq = malloc((size_t)K * sizeof(float)), *ref = malloc((size_t)(T * R) * sizeof(float));
    float *bias = malloc((size_t)R * sizeof(float));
    for (int64_t r = 0; r < R; r++) bias[r] = frand();
    mc_matmul(ref, x, K, T, &W, bias, deq);
    float *out = malloc((size_t)(T * R + 32) * sizeof(float)), *scratch = malloc((size_t)MC_GEMM_SCRATCH(K) * sizeof(float));
    for (int64_t i = 0; i < T * R + 32; i++) out[i] = 1234.5f;
    const int64_t mid = R / 2 / MC_GEMM_PANEL * MC_GEMM_PANEL, cut = repack ? 7 : 0;
    if (cut) k->gemm(out, R, x, K, T, &Wk, 0, cut, bias, scratch);
    k->gemm(out, R, x, K, T, &Wk, cut, mid, bias, scratch);
    k->gemm(out, R, x, K, T, &Wk, mid, R, bias, scratch);
    /* Kernels that quantize the activations: not scalar; AVX2 for decode (T < 4; q5_0
     * has no integer kernel: it dequantizes; prefill dequantizes into float panels);
     * AVX-512 for decode (not q5_0), and for prefill with VNNI (the int16 GEMM; without
     * VNNI it dequantizes into float panels). */
    const int avx2 = strcmp(k->name, "avx2") == 0, amx = strcmp(k->name, "amx") == 0;
    const int avx512 = strcmp(k->name, "avx512") == 0 || (amx && T < 32);
    const int quant_x = (avx2 && T < 4 && mc_gemv_quant_supported(t)) ||
                        (avx512 && (T < 4 ? mc_gemv_quant_supported(t)
                                          : mc_cpu_has_vnni() && mc_gemm_quant_vnni_supported(t)));
    /* AMX (T >= 32) splits weights and activations into two bf16 parts each (each part
     * rounds to 8 significant bits: the pair keeps |error| <= 2^-16 |v|) and drops the
     * product of the two second parts (<= 2^-16 |w x|): <= 3 * 2^-16 per product. */
    const double split_rel = amx && T >= 32 ? 3.0 / 65536.0 : 0.0;
    int64_t bad = 0;
    for (int64_t r = 0; r < R; r++) {
        mc_dequantize_row(deq, (const unsigned char *)W.data + r * row, t, K);
        for (int64_t tt = 0; tt < T; tt++) {
            const float *xr = x + tt * K;
            double bound = 0, mag = 0;
            for (int64_t b = 0; b < K / 32; b++) {
                double sw = 0, amax = 0;
                for (int j = 0; j < 32; j++) {
                    sw += fabs(deq[b * 32 + j]);
                    amax = fmax(amax, fabs(xr[b * 32 + j]));
                    mag += fabs((double)deq[b * 32 + j] * xr[b * 32 + j]);
                }
                if (quant_x) bound += sw * (amax / 32767.0) / 2.0;
            }
            bound = bound * 1.001 + (1e-5 + split_rel) * mag + 1e-6;
            const float g = out[tt * R + r];
            if (!isfinite(g) || fabs((double)g - ref[tt * R + r]) > bound) bad++;
        }
    }
    int guards = 1;
    for (int i = 0; i < 32; i++) guards &= out[T * R + i] == 1234.5f;
    CHECK(bad == 0 && guards, "%s %s%s R=%lld K=%lld T=%lld: %lld outputs beyond the error bound, guards %d", k->name,
          mambac_dtype_name(t), repack ? " (repacked)" : "", (long long)R, (long long)K, (long long)T, (long long)bad,
          guards);
    free(packed), free(wf), free(x), free(wq), free(deq), free(ref), free(bias), free(out), free(scratch);
}

int main(void) {
    ref_file r;
    CHECK(ref_open(&r, MAMBAC_TEST_DATA "/quant/refs.safetensors"), "open quant refs");
    check_dequant(&r, "q8_0", MAMBAC_DTYPE_Q8_0);
    check_dequant(&r, "q4_0", MAMBAC_DTYPE_Q4_0);
    check_dequant(&r, "q5_0", MAMBAC_DTYPE_Q5_0);
    check_dequant(&r, "q4_K", MAMBAC_DTYPE_Q4_K);
    check_dequant(&r, "q6_K", MAMBAC_DTYPE_Q6_K);
    check_quantize(&r);
    ref_close(&r);

    const char *sets[] = {"scalar", "avx2", "avx512", "amx"};
    const mambac_dtype types[] = {MAMBAC_DTYPE_Q8_0, MAMBAC_DTYPE_Q4_0, MAMBAC_DTYPE_Q4_K, MAMBAC_DTYPE_Q5_0};
    /* 90: more tokens than the int16 GEMM's pass; 300: two passes of the AMX kernel */
    const int64_t Ts[] = {1, 2, 3, 4, 7, 90, 300};
    for (int s = 0; s < 4; s++) {
        const mc_kernels *k = mc_kernels_named(sets[s]);
        if (!k) {
            printf("note: kernel set %s not supported by this CPU\n", sets[s]);
            continue;
        }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 7; j++) {
                if (Ts[j] == 300 && strcmp(sets[s], "amx") != 0) continue;
                check_gemm(k, types[i], 67, 768, Ts[j], 0);
                if (types[i] != MAMBAC_DTYPE_Q4_K) check_gemm(k, types[i], 37, 96, Ts[j], 0);
                if (types[i] == MAMBAC_DTYPE_Q4_0 || types[i] == MAMBAC_DTYPE_Q8_0) {
                    check_gemm(k, types[i], 67, 768, Ts[j], 1);
                    check_gemm(k, types[i], 37, 96, Ts[j], 1);
                }
            }
        check_gemm(k, MAMBAC_DTYPE_Q4_K, 40, 1536, 1, 0);
    }
    if (mc_cpu_has_vnni()) printf("note: avx512 uses the VNNI int16 dot product\n");
    if (mc_kernels_named("amx")) printf("note: amx runs prefill (T >= 32) on AMX tiles\n");
    return check_summary();
}
