/* kernels.h — the fast CPU kernels behind one dispatch table, chosen at run time from
 * the CPU's features (or forced with MAMBAC_ISA=scalar|avx2|avx512, or by name in tests).
 * Each kernel is tested against the reference kernels in ops_ref.c. */
#ifndef MC_KERNELS_H
#define MC_KERNELS_H

#include <stdint.h>

#include "model/model.h"

/* out[t * out_stride + r] = sum_k x[t * x_stride + k] * W[r, k] (+ bias[r]) for rows
 * r in [r0, r1) and tokens t in [0, T). W in its stored dtype (f32, f16, bf16, or a
 * block-quantized type). scratch: MC_GEMM_SCRATCH(K) floats for the calling thread
 * (packed weight panels + one dequantized row, or the quantized activations; the
 * integer prefill kernel keeps 264 tokens of int16 activations there (672 bytes per
 * column of K), the AMX kernel MC_AMX_TB tokens of activations split into three bf16
 * planes plus a panel of 32 rows in three bf16 parts: 6 * MC_AMX_TB + 192 bytes per
 * column of K, rounded up to 32 columns, panel rows padded by 32 more). */
typedef void (*mc_gemm_fn)(float *out, int64_t out_stride, const float *x, int64_t x_stride, int64_t T,
                           const mc_weight *W, int64_t r0, int64_t r1, const float *bias, float *scratch);
#define MC_GEMM_PANEL 32
#define MC_AMX_TB 256
#define MC_GEMM_SCRATCH(K) ((int64_t)(48 + 3 * MC_AMX_TB / 2) * ((K) + 64) + 1280)
/* Enough for the scalar / AVX2 / AVX-512 kernels when W is never block-quantized: the
 * SSD's own products (mc_gemm_avx512 / mc_gemm_avx2 called directly) and training (which
 * never takes the AMX kernel, linalg.c). */
#define MC_GEMM_SCRATCH_FLOAT(K) ((int64_t)(MC_GEMM_PANEL + 2) * (K) + 64)

struct mc_scan_args;
struct mc_ssd_args;

typedef struct mc_kernels {
    const char *name;
    mc_gemm_fn gemm;
    void (*scan)(const struct mc_scan_args *a); /* Mamba-1 selective scan (ops.h semantics) */
    void (*ssd)(const struct mc_ssd_args *a);   /* Mamba-2 chunked SSD (ops.h semantics) */
    void (*ssd_step)(const struct mc_ssd_args *a); /* Mamba-2 one-token step */
    /* mc_conv1d_prefill and mc_gated_rmsnorm (ops.h semantics) */
    void (*conv_prefill)(float *x, int64_t T, int64_t stride, int64_t C, int64_t K, const float *w, const float *b,
                         float *window);
    void (*gated_norm)(float *y, const float *z, const float *w, int64_t E, int64_t G, int norm_before_gate, float eps);
    int avx512; /* the CPU runs AVX-512 (F, BW, VL): training picks its AVX-512 scan and activations */
    int amx;    /* gemm is mc_gemm_amx: callers may use the two-phase form (mc_amx_split) */
} mc_kernels;

/* Floats of per-thread scratch any `ssd` kernel needs (args.scratch). */
int64_t mc_ssd_scratch_floats(int64_t L, int64_t N, int64_t P);

/* The best table this CPU runs (honouring MAMBAC_ISA when set and supported). */
const mc_kernels *mc_kernels_best(void);
/* A table by name, or NULL when unknown or not supported by this CPU. */
const mc_kernels *mc_kernels_named(const char *name);
/* The set a context or a training run uses: `isa` when given, else $MAMBAC_ISA when set,
 * else the best; NULL when the one asked for (*asked, NULL when none was) is unknown or
 * not usable on this CPU — never a silent fallback. */
const mc_kernels *mc_kernels_select(const char *isa, const char **asked);

void mc_gemm_scalar(float *out, int64_t out_stride, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                    int64_t r0, int64_t r1, const float *bias, float *scratch);
/* Whether loaded q4_0 / q8_0 matrices should be repacked 16 rows at a time (repack_x16.h):
 * the default kernels here are AVX-512 with VNNI (which read that layout directly) and
 * MAMBAC_REPACK is not "0". Every kernel set reads either layout. */
int mc_kernels_want_x16(void);
#if defined(__x86_64__)
void mc_gemm_avx2(float *out, int64_t out_stride, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                  int64_t r0, int64_t r1, const float *bias, float *scratch);
void mc_gemm_avx512(float *out, int64_t out_stride, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                    int64_t r0, int64_t r1, const float *bias, float *scratch);
void mc_scan_avx512(const struct mc_scan_args *a);
void mc_scan_avx2(const struct mc_scan_args *a);
void mc_ssd_avx2(const struct mc_ssd_args *a);
void mc_ssd_step_avx2(const struct mc_ssd_args *a);
void mc_conv1d_prefill_avx2(float *x, int64_t T, int64_t stride, int64_t C, int64_t K, const float *w, const float *b,
                            float *window);
void mc_gated_rmsnorm_avx2(float *y, const float *z, const float *w, int64_t E, int64_t G, int norm_before_gate,
                           float eps);
/* Decode with quantized weights (q8_0, q4_0, q4_K) and int16-quantized activations:
 * the AVX2 form (gemv_quant.c) and the AVX512-VNNI form, 512-bit steps over two blocks
 * (gemv_quant_avx512.c); the same integers. scratch is required. */
int mc_gemv_quant_supported(mambac_dtype t);
void mc_gemv_quant_avx2(float *out, int64_t out_stride, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                        int64_t r0, int64_t r1, const float *bias, float *scratch);
int mc_cpu_has_vnni(void);
void mc_gemv_quant_pairs(float *out, int64_t out_stride, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                         int64_t r0, int64_t r1, const float *bias, float *scratch);
/* Prefill (many tokens) with q8_0 / q4_0 / q5_0 / q4_K weights in int16 on AVX512-VNNI
 * (gemm_quant_avx512.c); K a multiple of 32, scratch required. */
int mc_gemm_quant_vnni_supported(mambac_dtype t);
void mc_gemm_quant_vnni(float *out, int64_t out_stride, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                        int64_t r0, int64_t r1, const float *bias, float *scratch);
/* Prefill products on Intel AMX (gemm_amx.c): every weight type but q6_K, float32
 * results from bf16 tiles by splitting operands into exact bf16 parts. Falls back to
 * mc_gemm_avx512 below 32 tokens, for q6_K, and where the CPU or OS lacks AMX. */
int mc_cpu_has_amx(void);
void mc_gemm_amx(float *out, int64_t out_stride, const float *x, int64_t x_stride, int64_t T, const mc_weight *W,
                 int64_t r0, int64_t r1, const float *bias, float *scratch);
/* The same product in two phases, for callers that own a thread pool: the activations
 * are split once into a shared buffer of mc_amx_split_bytes(W, T) bytes (0: AMX does
 * not apply, use the table's gemm) by mc_amx_split over 16-token groups [g0, g1) (any
 * threads, any split), then the mc_amx_items(W, T) items (a pass of tokens x 32 weight
 * rows) are computed by mc_amx_item in any order by any thread, each with its own
 * scratch (MC_GEMM_SCRATCH(K) floats). Results are mc_gemm_amx's, bit for bit. */
int64_t mc_amx_split_bytes(const mc_weight *W, int64_t T);
void mc_amx_split(void *planes, const mc_weight *W, const float *x, int64_t x_stride, int64_t T, int64_t g0, int64_t g1);
int64_t mc_amx_items(const mc_weight *W, int64_t T);
void mc_amx_item(float *out, int64_t out_stride, const void *planes, const mc_weight *W, int64_t T, int64_t item,
                 const float *bias, float *scratch);
void mc_ssd_avx512(const struct mc_ssd_args *a);
/* The chunked SSD with its products on AMX tiles (ssd_amx.c); mc_ssd_avx512 where the
 * CPU lacks AMX. Its scratch (mc_ssd_amx_scratch_floats) is counted in
 * mc_ssd_scratch_floats. */
void mc_ssd_amx(const struct mc_ssd_args *a);
int64_t mc_ssd_amx_scratch_floats(int64_t L, int64_t N, int64_t P);
void mc_ssd_step_avx512(const struct mc_ssd_args *a);
void mc_conv1d_prefill_avx512(float *x, int64_t T, int64_t stride, int64_t C, int64_t K, const float *w, const float *b,
                              float *window);
void mc_gated_rmsnorm_avx512(float *y, const float *z, const float *w, int64_t E, int64_t G, int norm_before_gate,
                             float eps);
#else
/* Elsewhere (aarch64 today) only the scalar kernels exist: no integer kernels, no AMX. */
static inline int mc_gemv_quant_supported(mambac_dtype t) { return (void)t, 0; }
static inline int mc_cpu_has_vnni(void) { return 0; }
static inline int mc_gemm_quant_vnni_supported(mambac_dtype t) { return (void)t, 0; }
static inline int64_t mc_amx_split_bytes(const mc_weight *W, int64_t T) { return (void)W, (void)T, 0; }
static inline void mc_amx_split(void *planes, const mc_weight *W, const float *x, int64_t x_stride, int64_t T, int64_t g0,
                                int64_t g1) {
    (void)planes, (void)W, (void)x, (void)x_stride, (void)T, (void)g0, (void)g1;
}
static inline int64_t mc_amx_items(const mc_weight *W, int64_t T) { return (void)W, (void)T, 0; }
static inline void mc_amx_item(float *out, int64_t out_stride, const void *planes, const mc_weight *W, int64_t T, int64_t item,
                               const float *bias, float *scratch) {
    (void)out, (void)out_stride, (void)planes, (void)W, (void)T, (void)item, (void)bias, (void)scratch;
}
#endif

#endif
