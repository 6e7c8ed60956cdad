/* q4_0_x16.c — see q4_0_x16.h. */
#include "model/q4_0_x16.h"

#include <stdlib.h>

#include "core/quant.h"

const uint8_t *mc_weight_row_bytes(const mc_weight *W, int64_t r, uint8_t *tmp) {
    const size_t rb = mc_dtype_row_bytes(W->dtype, W->cols);
    if (r >= W->x16_rows) return (const uint8_t *)W->data + (size_t)r * rb;
    for (int64_t b = 0; b < W->cols / 32; b++) mc_x16_block_native(tmp + 18 * b, W, r, b);
    return tmp;
}

void mc_weight_row_f32(float *dst, const mc_weight *W, int64_t r) {
    if (r >= W->x16_rows) {
        mc_convert_to_f32(dst, (const uint8_t *)W->data + (size_t)r * mc_dtype_row_bytes(W->dtype, W->cols), W->dtype,
                          (size_t)W->cols);
        return;
    }
    for (int64_t b = 0; b < W->cols / 32; b++) {
        uint8_t blk[18];
        mc_x16_block_native(blk, W, r, b);
        mc_dequantize_row(dst + 32 * b, blk, MAMBAC_DTYPE_Q4_0, 32);
    }
}

void mc_x16_pack_group(uint8_t *dst, const uint8_t *src, int64_t cols) {
    const size_t rb = mc_dtype_row_bytes(MAMBAC_DTYPE_Q4_0, cols);
    for (int64_t b = 0; b < cols / 32; b++) {
        uint8_t *o = dst + (size_t)b * MC_X16_BLOCK_BYTES;
        for (int l = 0; l < MC_X16_ROWS; l++) {
            const uint8_t *blk = src + (size_t)l * rb + 18 * (size_t)b;
            memcpy(o + 2 * l, blk, 2);
            for (int j = 0; j < 4; j++) memcpy(o + 32 + 64 * j + 4 * l, blk + 2 + 4 * j, 4);
        }
    }
}

void *mc_x16_repack(mc_weight *W) {
    const size_t rb = mc_dtype_row_bytes(W->dtype, W->cols), bytes = rb * (size_t)W->rows;
    /* 64-byte aligned so a group's chunks are whole cache lines (rb * 16 = 288 * blocks) */
    uint8_t *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!buf) return NULL;
    const int64_t groups = W->rows / MC_X16_ROWS;
    const uint8_t *src = W->data;
    for (int64_t g = 0; g < groups; g++)
        mc_x16_pack_group(buf + (size_t)g * MC_X16_ROWS * rb, src + (size_t)g * MC_X16_ROWS * rb, W->cols);
    const size_t done = (size_t)groups * MC_X16_ROWS * rb;
    memcpy(buf + done, src + done, bytes - done);
    W->data = buf;
    W->x16_rows = groups * MC_X16_ROWS;
    return buf;
}
