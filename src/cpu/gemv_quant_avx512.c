/* gemv_quant_avx512.c — decode products (few tokens) with q8_0 / q4_0 / q4_K weights
 * on AVX512-VNNI, two blocks per step. The arithmetic is gemv_quant.c's (int16 activations
 * per block of 32, dx = max|x| / 32767, the same rounding, so both give the same
 * integers); only the arrangement differs: a 512-bit register holds 16 values of block
 * A and 16 of block B, so one vpdpwssd covers both blocks, one conversion and one FMA
 * (with the scale vector [sA dxA x 8 | sB dxB x 8]) finish them. The 256-bit kernel
 * spent ~20 instructions per block (perf: mamba2-130m q4_0 decode, 65% of the time);
 * this one ~8.
 *
 * Activations are rearranged once per token, per pair of blocks (A, B):
 *   q  [64 int16]: A[0..15] B[0..15] A[16..31] B[16..31]
 *   o8 [16 int32]: -8 * (the pair sums the lanes see), q4_0's offset folded in
 *   d  [16 float]: dxA x 8, dxB x 8
 * An odd last block is paired with itself and zero activations. q4_K's sub-blocks come
 * in pairs already (the low and high nibbles of 32 bytes), see row_q4_K.
 *
 * q4_0 / q8_0 rows repacked at load (model/repack_x16.h) go 16 rows at a time, one row
 * per int32 lane, the activations broadcast: group_q4_0_x16, group_q8_0_x16. The int16
 * activations are split into bytes, q = 256 hi + lo (lo unsigned, hi signed), so each
 * 4-value step is two vpdpbusd (weight x lo, weight x hi) on the weights as they lie in
 * memory: the same integers as the int16 dot; q4_0 ~2.3x the native kernel's speed
 * (docs/PERFORMANCE.md). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "core/dtype.h"
#include "cpu/kernels.h"
#include "cpu/simd_avx512.h"
#include "model/repack_x16.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")))
#define TOKENS 4
#define PAIR_BYTES 256 /* q 128 + o8 64 + d 64 */

/* One token's activations into pairs (np = ceil(nb / 2) of them at out). */
TARGET static void prepare_x(const float *x, int64_t K, uint8_t *out) {
    const int64_t nb = K / 32;
    for (int64_t p = 0; p < (nb + 1) / 2; p++) {
        int16_t *q = (int16_t *)(out + p * PAIR_BYTES);
        int32_t *o8 = (int32_t *)(out + p * PAIR_BYTES + 128);
        float *d = (float *)(out + p * PAIR_BYTES + 192);
        for (int h = 0; h < 2; h++) {
            const int64_t b = 2 * p + h;
            __m512i q0 = _mm512_setzero_si512(), q1 = q0;
            const float dx = b < nb ? mc_quantize_block_i16(x + 32 * b, &q0, &q1) : 0.0f;
            _mm256_storeu_si256((__m256i *)(q + 16 * h), _mm512_cvtepi32_epi16(q0));
            _mm256_storeu_si256((__m256i *)(q + 32 + 16 * h), _mm512_cvtepi32_epi16(q1));
            for (int j = 0; j < 8; j++) d[8 * h + j] = dx;
        }
        /* lane j sums words 2j, 2j+1 of both halves: -8 times that, for q4_0 */
        const __m512i minus8 = _mm512_set1_epi16(-8);
        __m512i s = _mm512_madd_epi16(_mm512_loadu_si512((const void *)q), minus8);
        s = _mm512_add_epi32(s, _mm512_madd_epi16(_mm512_loadu_si512((const void *)(q + 32)), minus8));
        _mm512_storeu_si512((void *)o8, s);
    }
}

/* One token's activations for the x16 kernels, per block of 32 (X16_XBYTES bytes): the
 * low bytes of q [32], the high bytes [32] (q = 256 hi + lo), then int32 -8 * sum(q)
 * (q4_0's offset), float dx, int32 -128 * sum(hi) (q8_0's: it meets hi as weight + 128,
 * an unsigned byte, since vpdpbusd multiplies unsigned by signed bytes). */
#define X16_XBYTES 80
TARGET static void prepare_x_x16(const float *x, int64_t K, uint8_t *out) {
    for (int64_t b = 0; b < K / 32; b++) {
        __m512i q0, q1;
        const float dx = mc_quantize_block_i16(x + 32 * b, &q0, &q1);
        uint8_t *o = out + b * X16_XBYTES;
        _mm_storeu_si128((__m128i *)o, _mm512_cvtepi32_epi8(q0)); /* truncation: the low byte */
        _mm_storeu_si128((__m128i *)(o + 16), _mm512_cvtepi32_epi8(q1));
        _mm_storeu_si128((__m128i *)(o + 32), _mm512_cvtepi32_epi8(_mm512_srai_epi32(q0, 8)));
        _mm_storeu_si128((__m128i *)(o + 48), _mm512_cvtepi32_epi8(_mm512_srai_epi32(q1, 8)));
        const int32_t s8 = -8 * _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        const int32_t h128 = -128 * _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_srai_epi32(q0, 8), _mm512_srai_epi32(q1, 8)));
        memcpy(o + 64, &s8, 4);
        memcpy(o + 68, &dx, 4);
        memcpy(o + 72, &h128, 4);
    }
}

TARGET static inline __m512i bcast32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* The 16 rows of group `grp` (nb blocks) against nt tokens of x16 activations (xbytes
 * apart): acc[t] lane l = row l's dot with token t. Chunk c of a block holds values
 * 4c..4c+3 (low nibbles) and 16+4c.. (high) of every row, so one dword of activations,
 * broadcast, meets 16 rows at once. |lo sums| <= 32*15*255 + 8*32*32767, |hi| <= 32*15*128:
 * int32 is far from overflow. */
/* The x16 kernels' float step for a block: acc + (lo + 256 hi) * dw * dx (x: the block's
 * prepared activations). */
TARGET static inline __m512 x16_finish(__m512 acc, __m512i lo, __m512i hi, __m512 dw, const uint8_t *x) {
    float dx;
    memcpy(&dx, x + 68, 4);
    const __m512i sum = _mm512_add_epi32(lo, _mm512_slli_epi32(hi, 8));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, _mm512_set1_ps(dx)), acc);
}

#define X16_Q4 288 /* bytes of a group's block */
#define X16_Q8 544

/* A group's block `bytes` ahead, into L1, unless that is past the range's end (p <=
 * end). Addresses as integers: written as pointer arithmetic, gcc 12 -O3 removed every
 * one of these prefetches (it does not with -fno-strict-overflow), and the repacked
 * kernels read DRAM at 2/3 of the native ones' speed. */
static inline void prefetch_block(const uint8_t *p, int bytes, const uint8_t *end) {
    if ((uintptr_t)end - (uintptr_t)p >= (uintptr_t)(MC_PREFETCH_AHEAD + bytes))
        for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char *)((uintptr_t)p + MC_PREFETCH_AHEAD + (uintptr_t)o), _MM_HINT_T0);
}

TARGET static void group_q4_0_x16(__m512 acc[TOKENS], const uint8_t *grp, const uint8_t *xq, int64_t xbytes, int nt,
                                  int64_t nb, const uint8_t *prefetch_end) {
    const __m512i m4 = _mm512_set1_epi8(15);
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = grp + b * X16_Q4;
        prefetch_block(p, X16_Q4, prefetch_end);
        __m512i n[8];
        for (int c = 0; c < 4; c++) {
            const __m512i v = _mm512_loadu_si512((const void *)(p + 32 + 64 * c));
            n[2 * c] = _mm512_and_si512(v, m4);
            n[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        for (int t = 0; t < nt; t++) {
            const uint8_t *x = xq + t * xbytes + b * X16_XBYTES;
            __m512i lo = bcast32(x + 64), hi = _mm512_setzero_si512(); /* -8 sum(q) */
            for (int c = 0; c < 4; c++) {
                lo = _mm512_dpbusd_epi32(lo, bcast32(x + 4 * c), n[2 * c]);
                lo = _mm512_dpbusd_epi32(lo, bcast32(x + 16 + 4 * c), n[2 * c + 1]);
                hi = _mm512_dpbusd_epi32(hi, n[2 * c], bcast32(x + 32 + 4 * c));
                hi = _mm512_dpbusd_epi32(hi, n[2 * c + 1], bcast32(x + 48 + 4 * c));
            }
            acc[t] = x16_finish(acc[t], lo, hi, dw, x);
        }
    }
}

/* As group_q4_0_x16 for q8_0: chunk c holds values 4c..4c+3 of every row as signed
 * bytes; against hi they enter as w + 128 (unsigned), the offset taken back through the
 * -128 * sum(hi) start. |lo| <= 32*128*255, |hi| <= 32*255*128 + 128*32*128. */
TARGET static void group_q8_0_x16(__m512 acc[TOKENS], const uint8_t *grp, const uint8_t *xq, int64_t xbytes, int nt,
                                  int64_t nb, const uint8_t *prefetch_end) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = grp + b * X16_Q8;
        prefetch_block(p, X16_Q8, prefetch_end);
        __m512i w[8], u[8];
        for (int c = 0; c < 8; c++) {
            w[c] = _mm512_loadu_si512((const void *)(p + 32 + 64 * c));
            u[c] = _mm512_xor_si512(w[c], flip);
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        for (int t = 0; t < nt; t++) {
            const uint8_t *x = xq + t * xbytes + b * X16_XBYTES;
            __m512i lo = _mm512_setzero_si512(), hi = bcast32(x + 72); /* -128 sum(hi) */
            for (int c = 0; c < 8; c++) {
                lo = _mm512_dpbusd_epi32(lo, bcast32(x + 4 * c), w[c]);
                hi = _mm512_dpbusd_epi32(hi, u[c], bcast32(x + 32 + 4 * c));
            }
            acc[t] = x16_finish(acc[t], lo, hi, dw, x);
        }
    }
}

/* [a x 8 | b x 8] from two f16 scales. */
TARGET static inline __m512 scale_pair(const uint8_t *a, const uint8_t *b) {
    uint16_t ha, hb;
    memcpy(&ha, a, 2);
    memcpy(&hb, b, 2);
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)ha)), _mm_set1_epi16((short)hb), 1));
}

TARGET static float row_q4_0(const uint8_t *w, const uint8_t *xp, int64_t nb) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    const __m512i lo4 = _mm512_set1_epi16(15);
    for (int64_t p = 0; p < (nb + 1) / 2; p++) {
        const uint8_t *A = w + 18 * (2 * p), *B = 2 * p + 1 < nb ? A + 18 : A;
        const uint8_t *x = xp + p * PAIR_BYTES;
        const __m256i nib = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(A + 2))),
                                                    _mm_loadu_si128((const __m128i *)(B + 2)), 1);
        const __m512i words = _mm512_cvtepu8_epi16(nib); /* A qs | B qs, one byte per word */
        __m512i i = _mm512_loadu_si512((const void *)(x + 128));
        i = _mm512_dpwssd_epi32(i, _mm512_and_si512(words, lo4), _mm512_loadu_si512((const void *)x));
        i = _mm512_dpwssd_epi32(i, _mm512_srli_epi16(words, 4), _mm512_loadu_si512((const void *)(x + 64)));
        const __m512 s = _mm512_mul_ps(scale_pair(A, B), _mm512_loadu_ps((const float *)(x + 192)));
        if (p & 1) acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), s, acc1);
        else acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), s, acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

TARGET static float row_q8_0(const uint8_t *w, const uint8_t *xp, int64_t nb) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    for (int64_t p = 0; p < (nb + 1) / 2; p++) {
        const uint8_t *A = w + 34 * (2 * p), *B = 2 * p + 1 < nb ? A + 34 : A;
        const uint8_t *x = xp + p * PAIR_BYTES;
        const __m512i w0 = _mm512_cvtepi8_epi16(_mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(A + 2))), _mm_loadu_si128((const __m128i *)(B + 2)), 1));
        const __m512i w1 = _mm512_cvtepi8_epi16(_mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(A + 18))), _mm_loadu_si128((const __m128i *)(B + 18)), 1));
        __m512i i = _mm512_dpwssd_epi32(_mm512_setzero_si512(), w0, _mm512_loadu_si512((const void *)x));
        i = _mm512_dpwssd_epi32(i, w1, _mm512_loadu_si512((const void *)(x + 64)));
        const __m512 s = _mm512_mul_ps(scale_pair(A, B), _mm512_loadu_ps((const float *)(x + 192)));
        if (p & 1) acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), s, acc1);
        else acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), s, acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* q4_K: activations in order (q[K] int16), dx per block, dx * sum(q) per block. */
TARGET static void prepare_x_plain(const float *x, int64_t K, uint8_t *out) {
    const int64_t nb = K / 32;
    int16_t *q = (int16_t *)out;
    float *d = (float *)(out + 2 * K), *ds = d + nb;
    for (int64_t b = 0; b < nb; b++) {
        __m512i q0, q1;
        d[b] = mc_quantize_block_i16(x + 32 * b, &q0, &q1);
        ds[b] = d[b] * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        _mm256_storeu_si256((__m256i *)(q + 32 * b), _mm512_cvtepi32_epi16(q0));
        _mm256_storeu_si256((__m256i *)(q + 32 * b + 16), _mm512_cvtepi32_epi16(q1));
    }
}

/* The 8 six-bit scales and mins of a q4_K super-block (mc_q4k_scale_min, 4 at a time:
 * bytes 0-3 hold scales 0-3 and the top bits of scales 4-7, bytes 4-7 the mins 0-3 and
 * the top bits of mins 4-7, bytes 8-11 the low 4 bits of scales / mins 4-7). */
static inline void q4k_scales_mins(const uint8_t *s12, uint8_t sc[8], uint8_t m[8]) {
    uint32_t u[3];
    memcpy(u, s12, 12);
    const uint32_t s_lo = u[0] & 0x3f3f3f3fu, m_lo = u[1] & 0x3f3f3f3fu;
    const uint32_t s_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    memcpy(sc, &s_lo, 4), memcpy(sc + 4, &s_hi, 4), memcpy(m, &m_lo, 4), memcpy(m + 4, &m_hi, 4);
}

/* Per super-block: the 8 sub-block scales d * sc * dx as one vector op, the min
 * correction dmin * m * dx * sum(qx) accumulated as a vector; per 64 values one
 * widening load, two vpdpwssd, two conversions and FMAs. */
TARGET static float row_q4_K(const uint8_t *w, const uint8_t *xp, int64_t K) {
    const int64_t nb = K / 32;
    const int16_t *q = (const int16_t *)xp;
    const float *d = (const float *)(xp + 2 * K), *ds = d + nb;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    __m256 corr = _mm256_setzero_ps();
    const __m512i lo4 = _mm512_set1_epi16(15);
    for (int64_t sb = 0; sb < K / 256; sb++) {
        const uint8_t *p = w + 144 * sb;
        uint8_t sc[8], mn[8];
        q4k_scales_mins(p + 4, sc, mn);
        uint16_t hd[2];
        memcpy(hd, p, 4);
        const float dw = _cvtsh_ss(hd[0]), dmin = _cvtsh_ss(hd[1]);
        uint64_t sc8, mn8;
        memcpy(&sc8, sc, 8), memcpy(&mn8, mn, 8);
        const __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc8)));
        const __m256 mnf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn8)));
        float s[8];
        _mm256_storeu_ps(s, _mm256_mul_ps(_mm256_mul_ps(scf, _mm256_set1_ps(dw)), _mm256_loadu_ps(d + 8 * sb)));
        corr = _mm256_fmadd_ps(_mm256_mul_ps(mnf, _mm256_set1_ps(dmin)), _mm256_loadu_ps(ds + 8 * sb), corr);
        for (int g = 0; g < 4; g++) {
            const int16_t *xq = q + 256 * sb + 64 * g;
            const __m512i raw = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(p + 16 + 32 * g)));
            const __m512i iA = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_and_si512(raw, lo4), _mm512_loadu_si512((const void *)xq));
            const __m512i iB = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_srli_epi16(raw, 4), _mm512_loadu_si512((const void *)(xq + 32)));
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iA), _mm512_set1_ps(s[2 * g]), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iB), _mm512_set1_ps(s[2 * g + 1]), acc1);
        }
    }
    __m128 c4 = _mm_add_ps(_mm256_castps256_ps128(corr), _mm256_extractf128_ps(corr, 1));
    c4 = _mm_add_ps(c4, _mm_movehl_ps(c4, c4));
    c4 = _mm_add_ss(c4, _mm_movehdup_ps(c4));
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - _mm_cvtss_f32(c4);
}

TARGET void mc_gemv_quant_pairs(float *out, int64_t os, const float *x, int64_t xs, int64_t T, const mc_weight *W, int64_t r0,
                         int64_t r1, const float *bias, float *scratch) {
    const int64_t K = W->cols, nb = K / 32, np = (nb + 1) / 2;
    const size_t row = mc_dtype_row_bytes(W->dtype, K);
    const mambac_dtype dt = W->dtype;
    const int64_t xbytes = dt == MAMBAC_DTYPE_Q4_K ? 2 * K + 8 * nb : np * PAIR_BYTES; /* per token */
    uint8_t *xp = (uint8_t *)scratch, *xg = xp + TOKENS * xbytes;                        /* native / x16 */
    /* rows [r0, rg) repacked (whole groups, lanes outside [r0, r1) not stored), [rg, r1) native */
    const int64_t rg = r1 < W->x16_rows ? r1 : r0 > W->x16_rows ? r0 : W->x16_rows;
    const uint8_t *prefetch_end = mc_x16_group(W, (rg + MC_X16_ROWS - 1) / MC_X16_ROWS);
    for (int64_t t = 0; t < T; t += TOKENS) {
        const int nt = T - t < TOKENS ? (int)(T - t) : TOKENS;
        for (int j = 0; j < nt; j++) {
            const float *xj = x + (t + j) * xs;
            if (rg > r0) prepare_x_x16(xj, K, xg + j * nb * X16_XBYTES);
            if (r1 > rg) {
                if (dt == MAMBAC_DTYPE_Q4_K) prepare_x_plain(xj, K, xp + j * xbytes);
                else prepare_x(xj, K, xp + j * xbytes);
            }
        }
        for (int64_t g = r0 / MC_X16_ROWS; g * MC_X16_ROWS < rg; g++) {
            __m512 acc[TOKENS];
            if (dt == MAMBAC_DTYPE_Q8_0) group_q8_0_x16(acc, mc_x16_group(W, g), xg, nb * X16_XBYTES, nt, nb, prefetch_end);
            else group_q4_0_x16(acc, mc_x16_group(W, g), xg, nb * X16_XBYTES, nt, nb, prefetch_end);
            const int64_t lo = r0 > g * MC_X16_ROWS ? r0 - g * MC_X16_ROWS : 0;
            const int64_t hi = rg < (g + 1) * MC_X16_ROWS ? rg - g * MC_X16_ROWS : MC_X16_ROWS;
            const __mmask16 m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
            const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + g * MC_X16_ROWS) : _mm512_setzero_ps();
            for (int j = 0; j < nt; j++)
                _mm512_mask_storeu_ps(out + (t + j) * os + g * MC_X16_ROWS, m, _mm512_add_ps(acc[j], bv));
        }
        for (int64_t r = rg; r < r1; r++) {
            const uint8_t *w = (const uint8_t *)W->data + (size_t)r * row;
            mc_prefetch_row_ahead(W->data, row, r, r1);
            for (int j = 0; j < nt; j++) {
                const uint8_t *xj = xp + j * xbytes;
                const float v = dt == MAMBAC_DTYPE_Q4_0 ? row_q4_0(w, xj, nb) : dt == MAMBAC_DTYPE_Q8_0 ? row_q8_0(w, xj, nb)
                                                                                                     : row_q4_K(w, xj, K);
                out[(t + j) * os + r] = v + (bias ? bias[r] : 0.0f);
            }
        }
    }
}
#endif
