/* repack_x16.c — see repack_x16.h. */
#include "model/repack_x16.h"

#include <stdlib.h>

#include "core/quant.h"

const uint8_t *mc_weight_row_bytes(const mc_weight *W, int64_t r, uint8_t *tmp) {
    const int64_t bb = mc_dtype_block_bytes(W->dtype);
    if (r >= W->x16_rows) return (const uint8_t *)W->data + (size_t)r * mc_dtype_row_bytes(W->dtype, W->cols);
    for (int64_t b = 0; b < W->cols / 32; b++) {
        uint8_t blk[MC_X16_MAX_BLOCK];
        mc_x16_block_native(blk, W, r, b);
        memcpy(tmp + bb * b, blk, (size_t)bb);
    }
    return tmp;
}

void mc_weight_row_f32(float *dst, const mc_weight *W, int64_t r) {
    if (r >= W->x16_rows) {
        mc_convert_to_f32(dst, (const uint8_t *)W->data + (size_t)r * mc_dtype_row_bytes(W->dtype, W->cols), W->dtype,
                          (size_t)W->cols);
        return;
    }
    for (int64_t b = 0; b < W->cols / 32; b++) {
        uint8_t blk[MC_X16_MAX_BLOCK];
        mc_x16_block_native(blk, W, r, b);
        mc_dequantize_row(dst + 32 * b, blk, W->dtype, 32);
    }
}

void mc_x16_pack_group(uint8_t *dst, const uint8_t *src, mambac_dtype t, int64_t cols) {
    const size_t rb = mc_dtype_row_bytes(t, cols), bb = (size_t)mc_dtype_block_bytes(t);
    for (int64_t b = 0; b < cols / 32; b++) {
        uint8_t *o = dst + (size_t)b * mc_x16_block_bytes(t);
        for (int l = 0; l < MC_X16_ROWS; l++) {
            const uint8_t *blk = src + (size_t)l * rb + bb * (size_t)b;
            memcpy(o + 2 * l, blk, 2);
            for (size_t j = 0; j < (bb - 2) / 4; j++) memcpy(o + 32 + 64 * j + 4 * l, blk + 2 + 4 * j, 4);
        }
    }
}

void *mc_x16_repack(mc_weight *W) {
    const size_t rb = mc_dtype_row_bytes(W->dtype, W->cols), bytes = rb * (size_t)W->rows;
    /* 64-byte aligned: a group starts on a cache line (its blocks of 288 / 544 bytes
     * then alternate between line-aligned and half-line-aligned chunks) */
    uint8_t *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!buf) return NULL;
    const int64_t groups = W->rows / MC_X16_ROWS;
    const uint8_t *src = W->data;
    for (int64_t g = 0; g < groups; g++)
        mc_x16_pack_group(buf + (size_t)g * MC_X16_ROWS * rb, src + (size_t)g * MC_X16_ROWS * rb, W->dtype, W->cols);
    const size_t done = (size_t)groups * MC_X16_ROWS * rb;
    memcpy(buf + done, src + done, bytes - done);
    W->data = buf;
    W->x16_rows = groups * MC_X16_ROWS;
    return buf;
}
