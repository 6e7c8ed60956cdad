/* dtype.h — storage types of tensors in files, and their conversion to float32.
 * Conversions are exact (f16 and bf16 are subsets of f32). */
#ifndef MC_DTYPE_H
#define MC_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mambac.h"

/* Bytes per element of the float types (f32, f16, bf16) only. */
static inline size_t mc_dtype_size(mambac_dtype t) { return t == MAMBAC_DTYPE_F32 ? 4 : 2; }

static inline int mc_dtype_is_quant(mambac_dtype t) { return t >= MAMBAC_DTYPE_Q8_0 && t <= MAMBAC_DTYPE_Q6_K; }

/* Values per block and bytes per block (1 value per "block" for the float types). */
static inline int64_t mc_dtype_block(mambac_dtype t) {
    return t == MAMBAC_DTYPE_Q4_K || t == MAMBAC_DTYPE_Q6_K ? 256 : mc_dtype_is_quant(t) ? 32 : 1;
}
static inline int64_t mc_dtype_block_bytes(mambac_dtype t) {
    switch (t) {
    case MAMBAC_DTYPE_F32: return 4;
    case MAMBAC_DTYPE_F16: case MAMBAC_DTYPE_BF16: return 2;
    case MAMBAC_DTYPE_Q8_0: return 34;
    case MAMBAC_DTYPE_Q4_0: return 18;
    case MAMBAC_DTYPE_Q4_K: return 144;
    case MAMBAC_DTYPE_Q5_0: return 22;
    case MAMBAC_DTYPE_Q6_K: return 210;
    }
    return 0;
}
/* Bytes of a row of n values (n a multiple of the block size). */
static inline size_t mc_dtype_row_bytes(mambac_dtype t, int64_t n) {
    return (size_t)(n / mc_dtype_block(t) * mc_dtype_block_bytes(t));
}

static inline float mc_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float mc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            u = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* float32 → bf16 / f16, rounding to nearest even (NaN stays NaN, overflow → inf). */
static inline uint16_t mc_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline uint16_t mc_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00);           /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);          /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                                           /* below the smallest normal: subnormal or 0 */
        if (a < 0x33000000u) return (uint16_t)sign;                  /* < half the smallest subnormal */
        uint32_t m = (a & 0x7fffffu) | 0x800000u, e = a >> 23;       /* value = m * 2^(e-150) */
        uint32_t shift = 126 - e;                                    /* to units of 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        q += rem > half || (rem == half && (q & 1));
        return (uint16_t)(sign | q);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1);                       /* round the 13 dropped bits */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

/* Converts n elements of type t at src (any alignment) to float32 at dst; for the
 * quantized types n is a multiple of the block size (dequantization, quant.h). */
void mc_convert_to_f32(float *dst, const void *src, mambac_dtype t, size_t n);

#endif
