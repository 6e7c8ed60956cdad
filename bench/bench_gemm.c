/* bench_gemm.c — kernel workbench for the GEMM kernels (llm.c dev/cuda style): every
 * kernel set this CPU runs x weight dtype, on the projection shapes of mamba-130m, for
 * decode (T = 1: GB/s of weights streamed, vs the read bandwidth) and prefill (T = 512:
 * GFLOP/s, vs the FMA peak). One thread; bench_roofline gives the ceilings. Then the
 * quantized decode kernels (q8_0 and q4_0 as stored and repacked 16 rows at a time, q4_K)
 * on a 768-wide matrix of 1 024 rows (L2) and of 150 000 rows (DRAM), T = 1.
 *   bench_gemm [ISA] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"
#include "core/quant.h"
#include "cpu/kernels.h"
#include "model/repack_x16.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The quantized decode kernels of set k: GB/s of weights streamed, best of 5. */
static void bench_quant_decode(const char *isa, const mc_kernels *k) {
    const mambac_dtype types[] = {MAMBAC_DTYPE_Q8_0, MAMBAC_DTYPE_Q8_0, MAMBAC_DTYPE_Q4_0, MAMBAC_DTYPE_Q4_0, MAMBAC_DTYPE_Q4_K};
    const int repack[] = {0, 1, 0, 1, 0};
    const int64_t K = 768, rows[] = {1024, 150000};
    float *src = malloc((size_t)K * sizeof(float)), *x = malloc((size_t)K * sizeof(float));
    for (int64_t i = 0; i < K; i++) x[i] = (float)(i % 11 - 5) / 5.0f;
    for (int ti = 0; ti < 5; ti++)
        for (int ri = 0; ri < 2; ri++) {
            const mambac_dtype t = types[ti];
            const int64_t R = rows[ri];
            const size_t rb = mc_dtype_row_bytes(t, K);
            void *w = malloc(rb * (size_t)R), *packed = NULL;
            for (int64_t r = 0; r < R; r++) {
                for (int64_t i = 0; i < K; i++) src[i] = (float)((r * 7 + i * 13) % 17 - 8) / 8.0f;
                mc_quantize_row((char *)w + (size_t)r * rb, src, t, K);
            }
            mc_weight W = {t, w, R, K, 0};
            if (repack[ti] && !(packed = mc_x16_repack(&W))) continue;
            float *out = malloc((size_t)R * sizeof(float)), *scratch = malloc((size_t)MC_GEMM_SCRATCH(K) * sizeof(float));
            const int reps = R < 10000 ? 2000 : 5;
            k->gemm(out, R, x, K, 1, &W, 0, R, NULL, scratch);
            double best = 1e9;
            for (int it = 0; it < 5; it++) {
                const double t0 = now();
                for (int r = 0; r < reps; r++) k->gemm(out, R, x, K, 1, &W, 0, R, NULL, scratch);
                const double d = (now() - t0) / reps;
                best = d < best ? d : best;
            }
            printf("%-7s %-5s%-9s 768 x %-6lld T=1 %8.3f ms  %6.1f GB/s of weights\n", isa, mambac_dtype_name(t),
                   repack[ti] ? " repacked" : "", (long long)R, best * 1e3, (double)(rb * (size_t)R) / best / 1e9);
            free(out), free(scratch), free(packed), free(w);
        }
    free(src), free(x);
}

int main(int argc, char **argv) {
    const char *isas[] = {"scalar", "avx2", "avx512", "amx"};
    const int64_t shapes[][2] = {{3072, 768}, {768, 1536}, {50280, 768}};
    const char *names[] = {"in_proj 3072x768", "out_proj 768x1536", "lm_head 50280x768"};
    for (int i = 0; i < 4; i++) {
        if (argc > 1 && strcmp(argv[1], isas[i]) != 0) continue;
        const mc_kernels *k = mc_kernels_named(isas[i]);
        if (!k) continue;
        for (int dt = 0; dt < 3; dt++) {
            for (int s = 0; s < 3; s++) {
                const int64_t R = shapes[s][0], K = shapes[s][1];
                const size_t es = dt == MAMBAC_DTYPE_F32 ? 4 : 2;
                void *w = malloc((size_t)(R * K) * es);
                memset(w, 0x3c, (size_t)(R * K) * es);
                mc_weight W = {(mambac_dtype)dt, w, R, K, 0};
                for (int64_t T = 1; T <= 512; T += 511) {
                    if (s == 2 && T > 1) continue; /* the head runs for one token */
                    float *x = calloc((size_t)(T * K), sizeof(float)), *out = malloc((size_t)(T * R) * sizeof(float));
                    float *pack = malloc((size_t)MC_GEMM_SCRATCH(K) * sizeof(float));
                    int reps = T == 1 ? 20 : 2;
                    if (i == 0 && T > 1) reps = 1;
                    k->gemm(out, R, x, K, T, &W, 0, R, NULL, pack); /* warm */
                    double t0 = now();
                    for (int r = 0; r < reps; r++) k->gemm(out, R, x, K, T, &W, 0, R, NULL, pack);
                    double dt_s = (now() - t0) / reps;
                    if (T == 1)
                        printf("%-7s %-5s %-20s T=1   %7.2f ms  %6.1f GB/s of weights\n", isas[i], mambac_dtype_name((mambac_dtype)dt),
                               names[s], dt_s * 1e3, R * K * es / dt_s / 1e9);
                    else
                        printf("%-7s %-5s %-20s T=512 %7.2f ms  %6.1f GFLOP/s\n", isas[i], mambac_dtype_name((mambac_dtype)dt),
                               names[s], dt_s * 1e3, 2.0 * R * K * T / dt_s / 1e9);
                    free(x), free(out), free(pack);
                }
                free(w);
            }
        }
        bench_quant_decode(isas[i], k);
    }
    return 0;
}
