/* amx_tiles.h — the pieces of the AMX kernels (gemm_amx.c, ssd_amx.c): the tile
 * configuration and instructions, splitting float32 into exact bf16 parts, the two
 * operand layouts, the 32 x 32 tile loop and the transposed write-back. See gemm_amx.c
 * for the method. Only included by files that check mc_cpu_has_amx before calling. */
#ifndef MC_AMX_TILES_H
#define MC_AMX_TILES_H

#include <immintrin.h>
#include <stdint.h>

#include "core/dtype.h"
#include "cpu/quant_avx512.h"
#include "cpu/simd_avx512.h"
#include "model/model.h"

#define MC_AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))

typedef struct amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

static const amx_config mc_amx_tile_config __attribute__((aligned(64))) = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

#define TILE_CONFIG() __asm__ volatile("ldtilecfg %0" ::"m"(mc_amx_tile_config) : "memory")
#define TILE_RELEASE() __asm__ volatile("tilerelease" ::: "memory")
#define TILE_ZERO(t) __asm__ volatile("tilezero %%tmm" #t ::)
#define TILE_LOAD(t, p, stride) __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(p), "r"((int64_t)(stride)) : "memory")
#define TILE_STORE(t, p, stride) __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(p), "r"((int64_t)(stride)) : "memory")
/* C += A B: tile c (16 x 16 float) += tile a (16 x 32 bf16) x tile b (32 x 16 bf16, pairs) */
#define TILE_DP(c, a, b) __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)

/* A product as a sum of part products: term q multiplies part w[q] of the A operand
 * (the "weights", row-major) by part x[q] of the B operand (the "activations", pair
 * layout). */
typedef struct amx_plan {
    int wparts, xparts, nterms;
    signed char w[6], x[6];
} amx_plan;

/* Both operands float32 in three parts: the six terms down to 2^-16 of the product. */
static const amx_plan mc_amx_plan_f32 = {3, 3, 6, {0, 0, 0, 1, 1, 2}, {0, 1, 2, 0, 1, 0}};

/* ---- splitting float32 into bf16 parts ----------------------------------------------- */

MC_AMX_TARGET static inline __m512 amx_bf16_lo(__m512i h) { /* elements 0-15 of 32 bf16 */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
}
MC_AMX_TARGET static inline __m512 amx_bf16_hi(__m512i h) { /* elements 16-31 */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
}

/* 32 floats (v0: 0-15, v1: 16-31) -> n bf16 parts (32 each, in order) summing to them:
 * part p = bf16(rest), rest -= part (exact: the rest always fits float32). */
MC_AMX_TARGET static inline void mc_amx_split32(__m512 v0, __m512 v1, int n, __m512i *parts) {
    for (int p = 0; p < n; p++) {
        const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(v1, v0);
        parts[p] = h;
        if (p + 1 < n) v0 = _mm512_sub_ps(v0, amx_bf16_lo(h)), v1 = _mm512_sub_ps(v1, amx_bf16_hi(h));
    }
}

MC_AMX_TARGET static inline __mmask16 mc_amx_mask(int64_t n) { /* the first min(n, 16) lanes, none for n <= 0 */
    return n >= 16 ? (__mmask16)0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
}

/* Token rows of x (n of them) -> `parts` planes of B tiles for tbp tokens: part p,
 * 16-token group g, K step s at planes + ((p * G + g) * S + s) * 512 (G = tbp / 16,
 * S = Kp / 32); only groups [g0, g1) are written. Tokens >= n and columns >= K are
 * zero. */
MC_AMX_TARGET static inline void mc_amx_split_x(uint16_t *planes, int parts, const float *x, int64_t xs, int64_t n, int64_t tbp,
                                     int64_t g0, int64_t g1, int64_t K, int64_t Kp) {
    const int64_t G = tbp / 16, S = Kp / 32;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t s = 0; s < S; s++) {
            const int64_t k = 32 * s;
            const __mmask16 m0 = mc_amx_mask(K - k), m1 = mc_amx_mask(K - k - 16);
            __m512 v[3][16];
            for (int i = 0; i < 16; i++) {
                const int64_t t = g * 16 + i;
                __m512 v0 = _mm512_setzero_ps(), v1 = v0;
                if (t < n) v0 = _mm512_maskz_loadu_ps(m0, x + t * xs + k), v1 = _mm512_maskz_loadu_ps(m1, x + t * xs + k + 16);
                __m512i p[3];
                mc_amx_split32(v0, v1, parts, p);
                for (int j = 0; j < parts; j++) v[j][i] = _mm512_castsi512_ps(p[j]);
            }
            for (int j = 0; j < parts; j++) {
                mc_transpose16(v[j]);
                float *dst = (float *)(planes + ((j * G + g) * S + s) * 512);
                for (int kp = 0; kp < 16; kp++) _mm512_storeu_ps(dst + kp * 16, v[j][kp]);
            }
        }
}

/* ---- weight panels ------------------------------------------------------------------ */

/* Values [k, k + 32) of weight row r (at `row` when native) as float32 (zero past K). */
MC_AMX_TARGET static inline void amx_row_f32(const mc_weight *W, int64_t r, const uint8_t *row, int64_t k, __m512 *v0,
                                             __m512 *v1) {
    const __mmask16 m0 = mc_amx_mask(W->cols - k), m1 = mc_amx_mask(W->cols - k - 16);
    switch (W->dtype) {
    case MAMBAC_DTYPE_F32:
        *v0 = _mm512_maskz_loadu_ps(m0, (const float *)row + k);
        *v1 = _mm512_maskz_loadu_ps(m1, (const float *)row + k + 16);
        return;
    case MAMBAC_DTYPE_F16:
        *v0 = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m0, (const uint16_t *)row + k));
        *v1 = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m1, (const uint16_t *)row + k + 16));
        return;
    case MAMBAC_DTYPE_BF16: {
        const __m512i h = _mm512_maskz_loadu_epi16(((__mmask32)m1 << 16) | m0, (const uint16_t *)row + k);
        *v0 = amx_bf16_lo(h), *v1 = amx_bf16_hi(h);
        return;
    }
    default: { /* quantized: K is a whole number of blocks */
        float scale, min;
        const __m512i q = mc_unpack_weight_block_i16(W, r, mc_dtype_row_bytes(W->dtype, W->cols), k / 32, &scale, &min);
        const __m512 sc = _mm512_set1_ps(scale), mn = _mm512_set1_ps(min);
        *v0 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(q))), sc, mn);
        *v1 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(q, 1))), sc, mn);
        return;
    }
    }
}

/* Rows [r, r + nr) of W as `wparts` bf16 planes of rows_p rows x Kp, row-major with rows
 * ld >= Kp values apart (rows >= nr and columns >= K zero): part p of row i, value k at
 * dst[(p * rows_p + i) * ld + k]. */
MC_AMX_TARGET static inline void mc_amx_pack_rows(uint16_t *dst, const mc_weight *W, int64_t r, int nr, int rows_p,
                                                  int wparts, int64_t Kp, int64_t ld) {
    const size_t rb = mc_dtype_row_bytes(W->dtype, W->cols);
    for (int i = 0; i < rows_p; i++) {
        const uint8_t *row = i < nr ? (const uint8_t *)W->data + (size_t)(r + i) * rb : NULL;
        for (int64_t k = 0; k < Kp; k += 32) {
            __m512 v0 = _mm512_setzero_ps(), v1 = v0;
            if (i < nr && k < W->cols) amx_row_f32(W, r + i, row, k, &v0, &v1);
            __m512i parts[3];
            mc_amx_split32(v0, v1, wparts, parts);
            for (int p = 0; p < wparts; p++) _mm512_storeu_si512((void *)(dst + ((int64_t)p * rows_p + i) * ld + k), parts[p]);
        }
    }
}

/* ---- the tile loop ----------------------------------------------------------------- */

/* 32 weight rows (A: part p of row i, value k at a + p * aplane + i * astride_el + k) x
 * 32 tokens (B: part p, K step s at b + p * bplane + s * 512, the second 16 tokens at
 * + S * 512), over all of Kp; the C tiles (rows 0-15 / 16-31 x tokens 0-15 / 16-31) go
 * to c[4][16][16] as [rows-half * 2 + tokens-half][row][token]. */
MC_AMX_TARGET static inline void mc_amx_tile_block(float *c, const uint16_t *a, int64_t aplane, int64_t astride_el, const uint16_t *b, int64_t bplane,
                       int64_t Kp, const amx_plan *pl) {
    const int64_t S = Kp / 32, astride = astride_el * 2;
    TILE_ZERO(0);
    TILE_ZERO(1);
    TILE_ZERO(2);
    TILE_ZERO(3);
    for (int64_t s = 0; s < S; s++) {
        const uint16_t *as = a + 32 * s, *bs = b + s * 512;
        int loaded = -1;
        for (int q = 0; q < pl->nterms; q++) {
            if (pl->w[q] != loaded) {
                loaded = pl->w[q];
                TILE_LOAD(4, as + loaded * aplane, astride);
                TILE_LOAD(5, as + loaded * aplane + 16 * astride_el, astride);
            }
            const uint16_t *bp = bs + pl->x[q] * bplane;
            TILE_LOAD(6, bp, 64);
            TILE_LOAD(7, bp + S * 512, 64);
            TILE_DP(0, 4, 6);
            TILE_DP(1, 4, 7);
            TILE_DP(2, 5, 6);
            TILE_DP(3, 5, 7);
        }
    }
    TILE_STORE(0, c, 64);
    TILE_STORE(1, c + 256, 64);
    TILE_STORE(2, c + 512, 64);
    TILE_STORE(3, c + 768, 64);
}

/* out (tokens [0, mt) x columns [r, r + nr)) = the C tiles transposed, plus the bias. */
MC_AMX_TARGET static inline void mc_amx_write_block(float *out, int64_t os, const float *c, int mt, int64_t r, int nr, const float *bias) {
    for (int rh = 0; rh < 2; rh++) {
        const __mmask16 m = mc_amx_mask(nr - 16 * rh);
        if (!m) continue;
        const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + r + 16 * rh) : _mm512_setzero_ps();
        for (int th = 0; th < 2 && 16 * th < mt; th++) {
            __m512 v[16];
            const float *ct = c + (rh * 2 + th) * 256;
            for (int i = 0; i < 16; i++) v[i] = _mm512_loadu_ps(ct + 16 * i);
            mc_transpose16(v); /* v[j]: token 16 th + j, rows 16 rh .. 16 rh + 15 */
            for (int j = 0; j < 16 && 16 * th + j < mt; j++)
                _mm512_mask_storeu_ps(out + (16 * th + j) * os + r + 16 * rh, m, _mm512_add_ps(v[j], b));
        }
    }
}

#endif
