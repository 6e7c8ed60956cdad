/* q4_0_x16.h — q4_0 matrices repacked at load time, 16 rows interleaved ("x16"), so the
 * decode product can compute 16 rows per 512-bit lane set: one row per int32 lane, the
 * activations broadcast (gemv_quant_avx512.c). The native q4_0 row (quant.h: per block an
 * f16 scale then 16 bytes, value j the low nibble of byte j, value j + 16 the high one)
 * spends most of its decode time pairing blocks and their scales into registers; this
 * layout removes that (measured: docs/PERFORMANCE.md).
 *
 * Rows are taken 16 at a time (a group). A group occupies exactly the bytes of its 16
 * native rows (16 x 18 B per block), so a repacked matrix has the size of the file's:
 *   group g at data + g * 16 * row_bytes; block b of the group at + b * 288:
 *     [0, 32)    the 16 rows' f16 scales, row l at 2 l
 *     [32, 288)  four chunks of 64 bytes; chunk j holds, at 4 l + i (i < 4), the native
 *                byte 4 j + i of row l's block (low nibble value 4 j + i, high 4 j + i + 16)
 * so row l's native block is its scale and the four dwords at 32 + 64 j + 4 l, in order.
 * Rows [0, x16_rows) of an mc_weight are in this layout (x16_rows a multiple of 16), the
 * rest (rows % 16) stay native after them.
 *
 * Everything that reads quantized weight bytes goes through the accessors below, so
 * every kernel set (scalar, AVX2, ...) reads a repacked model correctly; only the
 * AVX-512 VNNI decode kernel reads the layout directly. */
#ifndef MC_Q4_0_X16_H
#define MC_Q4_0_X16_H

#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "model/model.h"

#define MC_X16_ROWS 16
#define MC_X16_BLOCK_BYTES (MC_X16_ROWS * 18) /* one block of a group: 288 */

/* Group `g`'s bytes (blocks of 288) when W's rows [0, x16_rows) are repacked. */
static inline const uint8_t *mc_x16_group(const mc_weight *W, int64_t g) {
    return (const uint8_t *)W->data + (size_t)g * MC_X16_ROWS * mc_dtype_row_bytes(W->dtype, W->cols);
}

/* The native 18 bytes of block b of row r (r < W->x16_rows) into out. */
static inline void mc_x16_block_native(uint8_t out[18], const mc_weight *W, int64_t r, int64_t b) {
    const uint8_t *blk = mc_x16_group(W, r / MC_X16_ROWS) + (size_t)b * MC_X16_BLOCK_BYTES;
    const int l = (int)(r % MC_X16_ROWS);
    memcpy(out, blk + 2 * l, 2);
    for (int j = 0; j < 4; j++) memcpy(out + 2 + 4 * j, blk + 32 + 64 * j + 4 * l, 4);
}

/* Row r of W in its native bytes: a pointer into W, or (repacked rows) assembled in tmp
 * (mc_dtype_row_bytes(W->dtype, W->cols) bytes). */
const uint8_t *mc_weight_row_bytes(const mc_weight *W, int64_t r, uint8_t *tmp);

/* Row r of W as float32 (any dtype, any layout). */
void mc_weight_row_f32(float *dst, const mc_weight *W, int64_t r);

/* Repacks 16 native q4_0 rows (rows apart by row_bytes at src) of cols values into one
 * group at dst. */
void mc_x16_pack_group(uint8_t *dst, const uint8_t *src, int64_t cols);

/* Copies W into a new buffer (returned; the caller frees it) with its whole groups
 * repacked, and points W at it. NULL when out of memory (W unchanged). */
void *mc_x16_repack(mc_weight *W);

/* Whether a weight is worth and able to be repacked: q4_0 with at least one group. */
static inline int mc_x16_eligible(const mc_weight *W) {
    return W->dtype == MAMBAC_DTYPE_Q4_0 && W->rows >= MC_X16_ROWS && W->cols % 32 == 0 && W->x16_rows == 0;
}

#endif
