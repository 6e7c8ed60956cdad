/* gemm_amx.c — prefill products on Intel AMX (the TMUL unit: TDPBF16PS multiplies a
 * 16 x 32 bf16 tile by a 32 x 16 bf16 tile into a 16 x 16 float32 tile, 16x the
 * multiply-adds per cycle of AVX-512 FMA), without giving up float32 results.
 *
 * bf16 x bf16 products are exact in float32 and AMX accumulates in float32, so the only
 * rounding is where operands are cut to bf16. They are not cut: each operand is split
 * into bf16 parts whose sum is the operand, x = x0 + x1 + x2 (8 + 8 + 8 significant
 * bits: exact for float32), and the product is a sum of part products ("terms"):
 *
 *   weights  parts  terms (w_i x_j)                     error of the product
 *   bf16     1      w0x0 w0x1 w0x2                      none (w is bf16): float32 sums only
 *   f16      2      w0x0 w0x1 w1x0 w0x2 w1x1            ~2^-24 |w||x|  (f16 has 11 bits)
 *   f32      3      i + j <= 2 (6 terms)                ~2^-24 |w||x|  (the dropped terms)
 *   quant    2      w0x0 w0x1 w1x0, x in 2 parts        ~2^-16 |w||x|  (like the int16
 *                                                        activations of the VNNI kernels)
 * Quantized weights are dequantized per 32-block (scale * q - min, exact in float32) and
 * split like float32 weights.
 *
 * Layout: weights are the A operand (16 rows x 32 values of K, row-major: bf16 weights
 * are read in place from the model's memory; other types are dequantized / split into
 * bf16 parts 32 rows at a time, still row-major). Activations are the B operand, split
 * once (per pass of up to TB tokens in mc_gemm_amx; per product, shared by all threads,
 * in the two-phase form forward.c uses) into part planes in AMX's pair layout (tile row
 * kp holds, for each of 16 tokens, the bf16 pair k = 2kp, 2kp + 1: a 16 x 16 transpose
 * of 32-bit pairs per 16 tokens x 32 values of K). A 32-row x 32-token block keeps four
 * float32 accumulator tiles, two A and two B tiles; per 32 values of K and per term:
 * when the weight part changes, load A (two tiles); load B (two tiles); four
 * TDPBF16PS. The C tiles (rows x tokens) are transposed on the way out. Putting the
 * weights on the A side is what keeps packing cheap: an earlier version packed weight
 * panels into the pair layout, one 16 x 16 transpose per 512 weights and part, redone
 * every pass: a quarter of the time.
 *
 * AMX state: the tile configuration is loaded per call (palette 1, every tile 16 rows x
 * 64 bytes) and released at the end. Linux hands out the tile registers only after the
 * process asks (arch_prctl ARCH_REQ_XCOMP_PERM), once, in mc_cpu_has_amx.
 *
 * The tile instructions are written as inline assembly with "memory" clobbers: gcc 12's
 * intrinsics declare neither the 64 bytes ldtilecfg reads (gcc then drops the stores
 * that build a configuration on the stack: llama.cpp built with gcc 12 dies of SIGILL on
 * this) nor the memory tile loads and stores touch. */
#if defined(__x86_64__)
#define _GNU_SOURCE
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/dtype.h"
#include "cpu/kernels.h"
#include "cpu/amx_tiles.h"

#define TB MC_AMX_TB /* most tokens per pass */
#define MIN_T_AMX 32 /* below this the padded 32-token blocks waste too much */

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    const int tile = (d >> 24) & 1, bf16 = (d >> 22) & 1;
    unsigned a1 = 0, b1, c1, d1;
    __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
    const int avx512bf16 = (a1 >> 5) & 1;
    if (!tile || !bf16 || !avx512bf16 || !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl"))
        return;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return; /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return; /* the OS saves XTILECFG and XTILEDATA */
    amx_ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int mc_cpu_has_amx(void) {
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
}

/* ---- what each weight type needs --------------------------------------------------- */

static const amx_plan plan_bf16 = {1, 3, 3, {0, 0, 0}, {0, 1, 2}};
static const amx_plan plan_f16 = {2, 3, 5, {0, 0, 0, 1, 1}, {0, 1, 2, 0, 1}};
static const amx_plan plan_quant = {2, 2, 3, {0, 0, 1}, {0, 1, 0}};

static const amx_plan *plan_for(mambac_dtype t) {
    switch (t) {
    case MAMBAC_DTYPE_BF16: return &plan_bf16;
    case MAMBAC_DTYPE_F16: return &plan_f16;
    case MAMBAC_DTYPE_F32: return &mc_amx_plan_f32;
    case MAMBAC_DTYPE_Q8_0:
    case MAMBAC_DTYPE_Q4_0:
    case MAMBAC_DTYPE_Q5_0:
    case MAMBAC_DTYPE_Q4_K: return &plan_quant;
    default: return NULL; /* q6_K: the AVX-512 kernel dequantizes it */
    }
}

/* Tokens per pass: the activation planes of a pass (parts x TB x Kp bf16) stay within
 * ~1.25 MB of L2, since every row panel walks all of them. */
static int64_t pass_tokens(int64_t T, int64_t Kp, int xparts) {
    int64_t tb = (int64_t)(1280 * 1024) / (Kp * 2 * xparts) / 32 * 32;
    tb = tb < 32 ? 32 : tb > TB ? TB : tb;
    return T < tb ? (T + 31) / 32 * 32 : tb;
}

/* A tile load reads 16 rows at the row stride. L1 has 64 sets of 64-byte lines, so rows
 * a multiple of 4 KB apart all land in one set (12 ways) and two A tiles thrash it —
 * d_model 2048 in bf16 (measured: mamba2-370m, 1024 / 2048 columns, prefill at 1.2x the
 * AVX-512 kernel instead of 1.7x). Packed panels get rows 64 bytes longer than Kp; bf16
 * weights are read in place only when their stride reaches >= 4 sets (<= 8 of 32 rows
 * per set). */
#define PANEL_LD(Kp) ((Kp) + 32)
static int l1_friendly(size_t rb) {
    if (rb % 64) return 1;
    size_t a = rb / 64 % 64, b = 64;
    while (a) { const size_t t = b % a; b = a, a = t; } /* b = gcd(rb / 64, 64) */
    return b <= 16;
}

/* Tokens [t0, t0 + tb) x weight rows [r, r + nr) into out (rows of os floats, token 0
 * first). planes hold tokens [pt0, pt0 + ptp) (t0 - pt0 a multiple of 32); work: the
 * calling thread's C tiles (1024 floats) and weight panel. */
static void run_panel(float *out, int64_t os, const uint16_t *planes, int64_t ptp, int64_t pt0, const mc_weight *W,
                      const amx_plan *pl, int64_t t0, int64_t tb, int64_t r, int nr, const float *bias, float *work) {
    const int64_t K = W->cols, Kp = (K + 31) / 32 * 32, S = Kp / 32;
    const size_t rb = mc_dtype_row_bytes(W->dtype, K);
    float *c = work;
    uint16_t *panel = (uint16_t *)(work + 1024);
    const uint16_t *a = panel;
    int64_t astride = PANEL_LD(Kp);
    /* bf16 rows are the A tiles as they are, when whole tiles of them exist and their
     * stride spreads 32 rows over L1 sets */
    if (W->dtype == MAMBAC_DTYPE_BF16 && K % 32 == 0 && nr == 32 && l1_friendly(rb))
        a = (const uint16_t *)((const uint8_t *)W->data + (size_t)r * rb), astride = (int64_t)rb / 2;
    else
        mc_amx_pack_rows(panel, W, r, nr, 32, pl->wparts, Kp, PANEL_LD(Kp));
    for (int64_t t = t0; t < t0 + tb; t += 32) {
        mc_amx_tile_block(c, a, 32 * PANEL_LD(Kp), astride, planes + ((t - pt0) / 16) * S * 512, ptp * Kp, Kp, pl);
        mc_amx_write_block(out + t * os, os, c, t0 + tb - t < 32 ? (int)(t0 + tb - t) : 32, r, nr, bias);
    }
}

void mc_gemm_amx(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W, int64_t r0,
                 int64_t r1, const float *bias, float *scratch) {
    const amx_plan *pl = plan_for(W->dtype);
    if (T < MIN_T_AMX || !scratch || !pl || !mc_cpu_has_amx()) {
        mc_gemm_avx512(out, os, x, xs, T, W, r0, r1, bias, scratch);
        return;
    }
    const int64_t K = W->cols, Kp = (K + 31) / 32 * 32, tbmax = pass_tokens(T, Kp, pl->xparts);
    /* scratch: C tiles (1024 floats) | panel (wparts x 32 x (Kp + 32) bf16) | planes (xparts x TB x Kp bf16) */
    uint16_t *planes = (uint16_t *)(scratch + 1024) + (int64_t)pl->wparts * 32 * PANEL_LD(Kp);
    TILE_CONFIG();
    for (int64_t t0 = 0; t0 < T; t0 += tbmax) {
        const int64_t tb = T - t0 < tbmax ? T - t0 : tbmax, tbp = (tb + 31) / 32 * 32;
        mc_amx_split_x(planes, pl->xparts, x + t0 * xs, xs, tb, tbp, 0, tbp / 16, K, Kp);
        for (int64_t r = r0; r < r1; r += 32)
            run_panel(out, os, planes, tbp, t0, W, pl, t0, tb, r, r1 - r < 32 ? (int)(r1 - r) : 32, bias, scratch);
    }
    TILE_RELEASE();
}

/* ---- the two-phase form for callers with a thread pool ------------------------------ */

int64_t mc_amx_split_bytes(const mc_weight *W, int64_t T) {
    const amx_plan *pl = plan_for(W->dtype);
    if (T < MIN_T_AMX || !pl || !mc_cpu_has_amx()) return 0;
    return (int64_t)pl->xparts * ((T + 31) / 32 * 32) * ((W->cols + 31) / 32 * 32) * 2;
}

void mc_amx_split(void *planes, const mc_weight *W, const float *x, int64_t xs, int64_t T, int64_t g0, int64_t g1) {
    const int64_t Kp = (W->cols + 31) / 32 * 32;
    mc_amx_split_x(planes, plan_for(W->dtype)->xparts, x, xs, T, (T + 31) / 32 * 32, g0, g1, W->cols, Kp);
}

/* Items run pass by pass, each pass over every 32-row panel: threads taking items in
 * order work on the same pass's activations at the same time. */
int64_t mc_amx_items(const mc_weight *W, int64_t T) {
    const int64_t Kp = (W->cols + 31) / 32 * 32, tbmax = pass_tokens(T, Kp, plan_for(W->dtype)->xparts);
    return (T + tbmax - 1) / tbmax * ((W->rows + 31) / 32);
}

void mc_amx_item(float *out, int64_t os, const void *planes, const mc_weight *W, int64_t T, int64_t item,
                 const float *bias, float *scratch) {
    const amx_plan *pl = plan_for(W->dtype);
    const int64_t Kp = (W->cols + 31) / 32 * 32, tbmax = pass_tokens(T, Kp, pl->xparts), panels = (W->rows + 31) / 32;
    const int64_t t0 = item / panels * tbmax, r = item % panels * 32;
    TILE_CONFIG();
    run_panel(out, os, planes, (T + 31) / 32 * 32, 0, W, pl, t0, T - t0 < tbmax ? T - t0 : tbmax, r,
              W->rows - r < 32 ? (int)(W->rows - r) : 32, bias, scratch);
    TILE_RELEASE();
}
#endif
