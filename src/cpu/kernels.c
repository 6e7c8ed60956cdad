/* kernels.c — kernel selection, and the portable scalar GEMM (the fallback on CPUs
 * without AVX2, and a second check of the SIMD ones). */
#include "cpu/kernels.h"
#include "mambac.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "core/dtype.h"
#include "core/quant.h"
#include "cpu/ops.h"
#include "model/repack_x16.h"

void mc_gemm_scalar(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W, int64_t r0,
                    int64_t r1, const float *bias, float *scratch) {
    (void)scratch;
    const int64_t K = W->cols;
    for (int64_t r = r0; r < r1; r++) {
        const unsigned char *w = (const unsigned char *)W->data + (size_t)r * mc_dtype_row_bytes(W->dtype, K);
        for (int64_t t = 0; t < T; t++) {
            const float *xr = x + t * xs;
            float acc = 0.0f;
            if (mc_dtype_is_quant(W->dtype)) { /* a block at a time, in the order of the values */
                const int64_t bs = mc_dtype_block(W->dtype), bb = mc_dtype_block_bytes(W->dtype);
                float blk[256];
                uint8_t native[MC_X16_MAX_BLOCK];
                for (int64_t b = 0; b < K / bs; b++) {
                    if (r < W->x16_rows) mc_x16_block_native(native, W, r, b); /* repacked at load */
                    mc_dequantize_row(blk, r < W->x16_rows ? native : w + b * bb, W->dtype, bs);
                    for (int64_t j = 0; j < bs; j++) acc += blk[j] * xr[b * bs + j];
                }
            } else if (W->dtype == MAMBAC_DTYPE_F32) {
                for (int64_t k = 0; k < K; k++) {
                    float v;
                    memcpy(&v, w + 4 * k, 4);
                    acc += v * xr[k];
                }
            } else {
                for (int64_t k = 0; k < K; k++) {
                    uint16_t h;
                    memcpy(&h, w + 2 * k, 2);
                    acc += (W->dtype == MAMBAC_DTYPE_BF16 ? mc_bf16_to_f32(h) : mc_f16_to_f32(h)) * xr[k];
                }
            }
            out[t * os + r] = acc + (bias ? bias[r] : 0.0f);
        }
    }
}

static const mc_kernels scalar = {"scalar", mc_gemm_scalar, mc_selective_scan, mc_ssd_chunked, mc_ssd_step,
                                 mc_conv1d_prefill, mc_gated_rmsnorm, 0, 0};
#if defined(__x86_64__)
static const mc_kernels avx2 = {"avx2", mc_gemm_avx2, mc_scan_avx2, mc_ssd_avx2, mc_ssd_step_avx2,
                               mc_conv1d_prefill_avx2, mc_gated_rmsnorm_avx2, 0, 0};
static const mc_kernels avx512 = {"avx512", mc_gemm_avx512, mc_scan_avx512, mc_ssd_avx512, mc_ssd_step_avx512,
                                 mc_conv1d_prefill_avx512, mc_gated_rmsnorm_avx512, 1, 0};
/* AVX-512 with the matrix products of prefill on AMX tiles */
static const mc_kernels amx = {"amx", mc_gemm_amx, mc_scan_avx512, mc_ssd_amx, mc_ssd_step_avx512,
                              mc_conv1d_prefill_avx512, mc_gated_rmsnorm_avx512, 1, 1};
#else
int64_t mc_ssd_scratch_floats(int64_t L, int64_t N, int64_t P) { (void)N, (void)P; return L * L + 2 * L; }
#endif

#if defined(__x86_64__)
/* F16C from CPUID leaf 1 (ECX bit 29): not every compiler's __builtin_cpu_supports knows it. */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

int mc_cpu_has_vnni(void) {
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
    }
    return v;
}
#endif

const mc_kernels *mc_kernels_named(const char *name) {
    if (!name) return NULL;
    if (strcmp(name, "scalar") == 0) return &scalar;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
        return &avx2;
    if (strcmp(name, "avx512") == 0 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return &avx512;
    if (strcmp(name, "amx") == 0 && mc_kernels_named("avx512") && mc_cpu_has_amx()) return &amx;
#endif
    return NULL;
}

int mc_kernels_want_x16(void) {
#if defined(__x86_64__)
    const char *e = getenv("MAMBAC_REPACK");
    return mc_kernels_best()->avx512 && mc_cpu_has_vnni() && !(e && strcmp(e, "0") == 0);
#else
    return 0;
#endif
}

const mc_kernels *mc_kernels_select(const char *isa, const char **asked) {
    if (!isa || !*isa) isa = getenv("MAMBAC_ISA");
    if (!isa || !*isa) isa = NULL;
    if (asked) *asked = isa;
    return isa ? mc_kernels_named(isa) : mc_kernels_best();
}

const mc_kernels *mc_kernels_best(void) {
    const mc_kernels *forced = mc_kernels_named(getenv("MAMBAC_ISA"));
    if (forced) return forced;
    const mc_kernels *k = mc_kernels_named("amx");
    if (!k) k = mc_kernels_named("avx512");
    if (!k) k = mc_kernels_named("avx2");
    return k ? k : &scalar;
}

int mambac_kernel_set_usable(const char *name) { return name && mc_kernels_named(name) != NULL; }
const char *mambac_kernel_set_default(void) { return mc_kernels_best()->name; }
