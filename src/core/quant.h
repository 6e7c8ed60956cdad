/* quant.h — block quantization in ggml's layouts (the bytes GGUF files hold), so
 * mambac reads llama.cpp's quantized files and writes files llama.cpp reads.
 *
 *   q8_0  32 values, 34 B: f16 d, int8 q[32];            x = d * q
 *   q4_0  32 values, 18 B: f16 d, u8 qs[16];             x = d * (nibble - 8)
 *         value j < 16 is the low nibble of qs[j], value j + 16 the high one
 *   q5_0  32 values, 22 B: f16 d, u32 qh, u8 qs[16];     x = d * ((nibble | bit << 4) - 16)
 *   q4_K 256 values, 144 B: f16 d, f16 dmin, u8 scales[12] (8 packed 6-bit scale/min
 *         pairs), u8 qs[128];  sub-block s (32 values): x = d*sc[s]*q - dmin*m[s]; the 64
 *         values of sub-blocks 2g, 2g+1 are the low, then high nibbles of qs[32g..32g+31]
 *   q6_K 256 values, 210 B: u8 ql[128], u8 qh[64], int8 scales[16], f16 d
 *
 * The quantizers are the reference (round-to-nearest) ones; q4_K searches each
 * sub-block's scale and min by weighted least squares as ggml's reference does.
 * Dequantization and quantization are scalar: the hot dot products are in cpu/. */
#ifndef MC_QUANT_H
#define MC_QUANT_H

#include <stdint.h>

#include "mambac.h"

/* Dequantizes n values (a multiple of the block size) of type t from src to dst. */
void mc_dequantize_row(float *dst, const void *src, mambac_dtype t, int64_t n);

/* Quantizes n values (a multiple of the block size) to q8_0, q4_0 or q4_K. Returns 0
 * for a type that cannot be written. */
int mc_quantize_row(void *dst, const float *src, mambac_dtype t, int64_t n);

/* Unpacks the 6-bit scale and min of sub-block j (0..7) of a q4_K block. */
static inline void mc_q4k_scale_min(const uint8_t *scales, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
        *m = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

#endif
