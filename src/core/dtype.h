/* dtype.h — storage types of tensors in files, and their conversion to float32.
 * Conversions are exact (f16 and bf16 are subsets of f32). */
#ifndef MC_DTYPE_H
#define MC_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mambac.h"

static inline size_t mc_dtype_size(mambac_dtype t) { return t == MAMBAC_DTYPE_F32 ? 4 : 2; }

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

/* Converts n elements of type t at src (any alignment) to float32 at dst. */
void mc_convert_to_f32(float *dst, const void *src, mambac_dtype t, size_t n);

#endif
