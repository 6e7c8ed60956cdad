/* dtype.c — names and bulk conversion of storage types. */
#include "dtype.h"

#include "quant.h"

const char *mambac_dtype_name(mambac_dtype t) {
    switch (t) {
    case MAMBAC_DTYPE_F32: return "f32";
    case MAMBAC_DTYPE_F16: return "f16";
    case MAMBAC_DTYPE_BF16: return "bf16";
    case MAMBAC_DTYPE_Q8_0: return "q8_0";
    case MAMBAC_DTYPE_Q4_0: return "q4_0";
    case MAMBAC_DTYPE_Q4_K: return "q4_K";
    case MAMBAC_DTYPE_Q5_0: return "q5_0";
    case MAMBAC_DTYPE_Q6_K: return "q6_K";
    }
    return "?";
}

const char *mambac_arch_name(mambac_arch a) {
    return a == MAMBAC_ARCH_MAMBA1 ? "mamba" : a == MAMBAC_ARCH_MAMBA2 ? "mamba2" : "?";
}

void mc_convert_to_f32(float *dst, const void *src, mambac_dtype t, size_t n) {
    const unsigned char *p = src;
    if (t == MAMBAC_DTYPE_F32) {
        memcpy(dst, src, n * 4);
        return;
    }
    if (mc_dtype_is_quant(t)) {
        mc_dequantize_row(dst, src, t, (int64_t)n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = t == MAMBAC_DTYPE_BF16 ? mc_bf16_to_f32(h) : mc_f16_to_f32(h);
    }
}
