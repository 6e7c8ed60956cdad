/* quant_avx512.h — one 32-value block of a quantized weight row as int16 lanes, shared
 * by the kernels that consume quantized weights a block at a time (the int16 VNNI
 * prefill, gemm_quant_avx512.c; the AMX prefill, gemm_amx.c). Only included by files
 * compiled with AVX-512 targets. */
#ifndef MC_QUANT_AVX512_H
#define MC_QUANT_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/quant.h"
#include "model/repack_x16.h"
#include "mambac.h"

#define MC_QUANT_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,f16c")))

MC_QUANT_AVX512_TARGET static inline float mc_f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* The 32 nibbles of a q4_0 / q5_0 block (16 bytes) as int16 words 0..15 (value j < 16 the
 * low nibble of byte j, value j + 16 the high one). */
MC_QUANT_AVX512_TARGET static inline __m512i mc_nibbles_i16(__m128i qs) {
    const __m256i v = _mm256_cvtepu8_epi16(qs);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, _mm256_set1_epi16(15))), _mm256_srli_epi16(v, 4), 1);
}

/* Block b (32 values) of a q8_0 / q4_0 / q5_0 / q4_K row as 32 int16 (value j in word j)
 * with w = scale * q - min. */
MC_QUANT_AVX512_TARGET static inline __m512i mc_unpack_block_i16(mambac_dtype t, const uint8_t *row, int64_t b,
                                                                 float *scale, float *min) {
    *min = 0.0f;
    if (t == MAMBAC_DTYPE_Q8_0) {
        const uint8_t *blk = row + b * 34;
        *scale = mc_f16_at(blk);
        return _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(blk + 2)));
    }
    if (t == MAMBAC_DTYPE_Q4_K) {
        const uint8_t *blk = row + (b >> 3) * 144;
        const int j = (int)(b & 7);
        uint8_t sc, m;
        mc_q4k_scale_min(blk + 4, j, &sc, &m);
        *scale = mc_f16_at(blk) * (float)sc;
        *min = mc_f16_at(blk + 2) * (float)m;
        const __m512i v = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * (j >> 1))));
        return j & 1 ? _mm512_srli_epi16(v, 4) : _mm512_and_si512(v, _mm512_set1_epi16(15));
    }
    /* q4_0 / q5_0: values 0..15 are the low nibbles of qs, 16..31 the high ones */
    const int q5 = t == MAMBAC_DTYPE_Q5_0;
    const uint8_t *blk = row + b * (q5 ? 22 : 18), *qs = blk + (q5 ? 6 : 2);
    *scale = mc_f16_at(blk);
    __m512i z = mc_nibbles_i16(_mm_loadu_si128((const __m128i *)qs));
    if (!q5) return _mm512_sub_epi16(z, _mm512_set1_epi16(8));
    uint32_t qh;
    memcpy(&qh, blk + 2, 4);
    z = _mm512_mask_add_epi16(z, (__mmask32)qh, z, _mm512_set1_epi16(16));
    return _mm512_sub_epi16(z, _mm512_set1_epi16(16));
}

/* Block b of row r of W (rows rb bytes apart when native; q4_0 / q8_0 rows repacked at
 * load: the row's scale and its dwords of the group's block, repack_x16.h, gathered in
 * registers — through a stack copy the 4-byte stores stalled the 16-byte load). */
MC_QUANT_AVX512_TARGET static inline __m512i mc_unpack_weight_block_i16(const mc_weight *W, int64_t r, size_t rb, int64_t b,
                                                                        float *scale, float *min) {
    if (r < W->x16_rows) {
        const uint8_t *blk = mc_x16_group(W, r / MC_X16_ROWS) + (size_t)b * mc_x16_block_bytes(W->dtype);
        const int l = (int)(r % MC_X16_ROWS);
        int32_t d[8];
        *scale = mc_f16_at(blk + 2 * l);
        *min = 0.0f;
        if (W->dtype == MAMBAC_DTYPE_Q8_0) {
            for (int j = 0; j < 8; j++) memcpy(&d[j], blk + 32 + 64 * j + 4 * l, 4);
            return _mm512_cvtepi8_epi16(_mm256_setr_epi32(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]));
        }
        for (int j = 0; j < 4; j++) memcpy(&d[j], blk + 32 + 64 * j + 4 * l, 4);
        return _mm512_sub_epi16(mc_nibbles_i16(_mm_setr_epi32(d[0], d[1], d[2], d[3])), _mm512_set1_epi16(8));
    }
    return mc_unpack_block_i16(W->dtype, (const uint8_t *)W->data + (size_t)r * rb, b, scale, min);
}

#endif
