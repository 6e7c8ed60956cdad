/* gemm_quant_avx512.c — prefill products with block-quantized weights (q8_0, q4_0,
 * q5_0, q4_K) on AVX512-VNNI, in integers: the activations are quantized per block of
 * 32 to int16 exactly as the decode kernels do (gemv_quant.c: dx = max|x| / 32767), the
 * weights are unpacked to int16 (w = scale * q - min per block), and one vpdpwssd
 * multiplies 16 rows x 2 values of K — twice the multiply-adds per instruction of the
 * float kernel, which dequantized weights into float panels.
 *
 * Layout: a panel holds 32 weight rows as, per 32-value block b, 16 pairs x 32 rows of
 * int32 (two int16 of one row), plus the rows' scale and min per block. A 6 x 32
 * micro-kernel keeps 12 int32 accumulators for the current block and 12 float ones:
 * per block, 16 steps of (2 panel loads, 6 pair broadcasts, 12 vpdpwssd), then the
 * int32 sums are converted and added with scale_w * dx (and q4_K's min * dx * sum(qx)
 * subtracted). Activations of TB tokens are quantized once per call into scratch;
 * panels are packed once per TB tokens (16 x 16 transposes in registers).
 * |sum| per block <= 32 * 128 * 32767 < 2^31. Tested in test_quant against the float
 * product with the same error bound as the decode kernels. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "core/dtype.h"
#include "core/quant.h"
#include "cpu/kernels.h"
#include "cpu/quant_avx512.h"
#include "cpu/simd_avx512.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")))
#define NR 32
#define MR 6
/* Tokens per pass: panels are packed once per pass (packing is memory-bound: 32 rows
 * read side by side), so a 512-token piece takes 2 passes (84 tokens: 7 passes, 14% of a
 * one-thread mamba2-130m q8_0 prefill in packing). */
#define TB 264

/* per 32 columns of K: panel, scales and mins, TB tokens of int16 and two floats per block */
_Static_assert((16 * 32 + 2 * 32 + TB * 16 + 2 * TB) * 64 <= MC_GEMM_SCRATCH(2048), "scratch too small for TB tokens");

int mc_gemm_quant_vnni_supported(mambac_dtype t) {
    return t == MAMBAC_DTYPE_Q8_0 || t == MAMBAC_DTYPE_Q4_0 || t == MAMBAC_DTYPE_Q5_0 || t == MAMBAC_DTYPE_Q4_K;
}

/* Rows [r, r + nr) into the panel: per block, 16 pairs x 32 rows of int32; scales and
 * mins per block x 32 rows (zero rows past nr). */
TARGET static void pack_panel_q(int32_t *panel, float *ws, float *wm, const mc_weight *W, int64_t r, int nr) {
    const int64_t K = W->cols, nb = K / 32;
    const size_t rb = mc_dtype_row_bytes(W->dtype, K), ahead = rb / (size_t)nb * 8; /* 8 blocks of 32 ahead */
    for (int64_t b = 0; b < nb; b++)
        for (int half = 0; half < NR / 16; half++) {
            __m512 v[16];
            for (int i = 0; i < 16; i++) {
                const int ri = half * 16 + i;
                float sc = 0.0f, mn = 0.0f;
                /* 32 row streams at once defeat the hardware prefetcher (perf: ~70% of
                 * packing stalled on the first load of a block); fetch ahead by hand */
                if (ri < nr) _mm_prefetch((const char *)W->data + (size_t)(r + ri) * rb + (size_t)b * rb / (size_t)nb + ahead, _MM_HINT_T0);
                v[i] = ri < nr ? _mm512_castsi512_ps(mc_unpack_weight_block_i16(W, r + ri, rb, b, &sc, &mn))
                               : _mm512_setzero_ps();
                ws[b * NR + ri] = sc, wm[b * NR + ri] = mn;
            }
            mc_transpose16(v);
            for (int kp = 0; kp < 16; kp++) _mm512_storeu_ps((float *)panel + (b * 16 + kp) * NR + half * 16, v[kp]);
        }
}

/* Token rows of x (K values) -> int16 (the decode kernels' rounding), the scale per
 * block, and scale * sum(q) per block (for q4_K's min). */
TARGET static void quantize_rows(const float *x, int64_t xs, int64_t n, int64_t K, int16_t *q, float *d, float *ds) {
    const int64_t nb = K / 32;
    for (int64_t t = 0; t < n; t++)
        for (int64_t b = 0; b < nb; b++) {
            __m512i q0, q1;
            const float dx = mc_quantize_block_i16(x + t * xs + 32 * b, &q0, &q1);
            _mm256_storeu_si256((__m256i *)(q + t * K + 32 * b), _mm512_cvtepi32_epi16(q0));
            _mm256_storeu_si256((__m256i *)(q + t * K + 32 * b + 16), _mm512_cvtepi32_epi16(q1));
            d[t * nb + b] = dx;
            ds[t * nb + b] = dx * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        }
}

/* out rows [t, t + mr) x panel rows [r, r + nr). */
TARGET static void micro_q(float *out, int64_t os, const int16_t *q, const float *d, const float *ds, int64_t K,
                           const int32_t *panel, const float *ws, const float *wm, int has_min, int64_t r, int nr,
                           int mr, const float *bias) {
    const int64_t nb = K / 32;
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const int16_t *qp[MR];
    for (int i = 0; i < MR; i++) qp[i] = q + (i < mr ? i : mr - 1) * K;
    for (int64_t b = 0; b < nb; b++) {
        __m512i ia[MR][2];
        for (int i = 0; i < MR; i++) ia[i][0] = ia[i][1] = _mm512_setzero_si512();
        const int32_t *pb = panel + b * 16 * NR;
        for (int kp = 0; kp < 16; kp++) {
            const __m512i w0 = _mm512_loadu_si512((const void *)(pb + kp * NR)), w1 = _mm512_loadu_si512((const void *)(pb + kp * NR + 16));
            for (int i = 0; i < MR; i++) {
                int32_t pair;
                memcpy(&pair, qp[i] + 32 * b + 2 * kp, 4);
                const __m512i xb = _mm512_set1_epi32(pair);
                ia[i][0] = _mm512_dpwssd_epi32(ia[i][0], xb, w0);
                ia[i][1] = _mm512_dpwssd_epi32(ia[i][1], xb, w1);
            }
        }
        const __m512 s0 = _mm512_loadu_ps(ws + b * NR), s1 = _mm512_loadu_ps(ws + b * NR + 16);
        for (int i = 0; i < MR; i++) {
            const __m512 dx = _mm512_set1_ps(d[(i < mr ? i : mr - 1) * nb + b]);
            acc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[i][0]), _mm512_mul_ps(s0, dx), acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[i][1]), _mm512_mul_ps(s1, dx), acc[i][1]);
        }
        if (has_min) {
            const __m512 m0 = _mm512_loadu_ps(wm + b * NR), m1 = _mm512_loadu_ps(wm + b * NR + 16);
            for (int i = 0; i < MR; i++) {
                const __m512 sx = _mm512_set1_ps(ds[(i < mr ? i : mr - 1) * nb + b]);
                acc[i][0] = _mm512_fnmadd_ps(m0, sx, acc[i][0]);
                acc[i][1] = _mm512_fnmadd_ps(m1, sx, acc[i][1]);
            }
        }
    }
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias + r) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + r + 16) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(out + i * os + r, m0, _mm512_add_ps(acc[i][0], b0));
        _mm512_mask_storeu_ps(out + i * os + r + 16, m1, _mm512_add_ps(acc[i][1], b1));
    }
}

void mc_gemm_quant_vnni(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W, int64_t r0,
                        int64_t r1, const float *bias, float *scratch) {
    const int64_t K = W->cols, nb = K / 32;
    /* scratch (floats): panel 16 K | ws K | wm K | q TB K / 2 | d, ds TB K / 32 each */
    int32_t *panel = (int32_t *)scratch;
    float *ws = scratch + 16 * K, *wm = ws + K;
    int16_t *q = (int16_t *)(wm + K);
    float *d = wm + K + TB * K / 2, *ds = d + TB * nb;
    const int has_min = W->dtype == MAMBAC_DTYPE_Q4_K;
    for (int64_t t0 = 0; t0 < T; t0 += TB) {
        const int64_t tb = T - t0 < TB ? T - t0 : TB;
        quantize_rows(x + t0 * xs, xs, tb, K, q, d, ds);
        for (int64_t r = r0; r < r1; r += NR) {
            const int nr = r1 - r < NR ? (int)(r1 - r) : NR;
            pack_panel_q(panel, ws, wm, W, r, nr);
            for (int64_t t = 0; t < tb; t += MR) {
                const int mr = tb - t < MR ? (int)(tb - t) : MR;
                micro_q(out + (t0 + t) * os, os, q + t * K, d + t * nb, ds + t * nb, K, panel, ws, wm, has_min, r, nr,
                        mr, bias);
            }
        }
    }
}
#endif
