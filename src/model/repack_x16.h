/* repack_x16.h — q4_0 and q8_0 matrices repacked at load time, 16 rows interleaved
 * ("x16"), so the decode product computes 16 rows per 512-bit lane set: one row per int32
 * lane, the activations broadcast (gemv_quant_avx512.c). Native rows (quant.h: per block
 * an f16 scale then the quants) cost the decode kernel most of its time pairing blocks
 * and their scales into registers; this layout removes that (docs/PERFORMANCE.md).
 *
 * Rows are taken 16 at a time (a group). With Q quant bytes per block (q4_0 16, q8_0 32)
 * a group occupies exactly the bytes of its 16 native rows (16 x (2 + Q) per block), so a
 * repacked matrix has the size of the file's:
 *   group g at data + g * 16 * row_bytes; block b of the group at + b * 16 (2 + Q):
 *     [0, 32)        the 16 rows' f16 scales, row l at 2 l
 *     [32, 32 + 16Q) Q / 4 chunks of 64 bytes; chunk j holds, at 4 l .. 4 l + 3, the
 *                    quant bytes 4 j .. 4 j + 3 of row l's block
 * so row l's native block is its scale and dword l of every chunk, in order (q4_0: value
 * 4 j + i is the low nibble of chunk j's byte 4 l + i, value 16 + 4 j + i the high one;
 * q8_0: value 4 j + i is that byte). Rows [0, x16_rows) of an mc_weight are in this
 * layout (x16_rows a multiple of 16), the rest (rows % 16) stay native after them.
 *
 * Everything that reads quantized weight bytes goes through the accessors below, so
 * every kernel set (scalar, AVX2, ...) reads a repacked model correctly; only the
 * AVX-512 VNNI decode kernel reads the layout directly. */
#ifndef MC_REPACK_X16_H
#define MC_REPACK_X16_H

#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "model/model.h"

#define MC_X16_ROWS 16
#define MC_X16_MAX_BLOCK 34 /* native bytes of the largest repacked block (q8_0) */

/* Bytes of one block of a group (16 native blocks): q4_0 288, q8_0 544. */
static inline size_t mc_x16_block_bytes(mambac_dtype t) { return (size_t)(MC_X16_ROWS * mc_dtype_block_bytes(t)); }

/* Group `g`'s bytes when W's rows [0, x16_rows) are repacked. */
static inline const uint8_t *mc_x16_group(const mc_weight *W, int64_t g) {
    return (const uint8_t *)W->data + (size_t)g * MC_X16_ROWS * mc_dtype_row_bytes(W->dtype, W->cols);
}

/* The native bytes of block b of row r (r < W->x16_rows) into out. */
static inline void mc_x16_block_native(uint8_t out[MC_X16_MAX_BLOCK], const mc_weight *W, int64_t r, int64_t b) {
    const uint8_t *blk = mc_x16_group(W, r / MC_X16_ROWS) + (size_t)b * mc_x16_block_bytes(W->dtype);
    const int l = (int)(r % MC_X16_ROWS), chunks = (int)(mc_dtype_block_bytes(W->dtype) - 2) / 4;
    memcpy(out, blk + 2 * l, 2);
    for (int j = 0; j < chunks; j++) memcpy(out + 2 + 4 * j, blk + 32 + 64 * j + 4 * l, 4);
}

/* Row r of W in its native bytes: a pointer into W, or (repacked rows) assembled in tmp
 * (mc_dtype_row_bytes(W->dtype, W->cols) bytes). */
const uint8_t *mc_weight_row_bytes(const mc_weight *W, int64_t r, uint8_t *tmp);

/* Row r of W as float32 (any dtype, any layout). */
void mc_weight_row_f32(float *dst, const mc_weight *W, int64_t r);

/* Repacks 16 native rows of type t (row_bytes apart at src) of cols values into one
 * group at dst. */
void mc_x16_pack_group(uint8_t *dst, const uint8_t *src, mambac_dtype t, int64_t cols);

/* Copies W into a new buffer (returned; the caller frees it) with its whole groups
 * repacked, and points W at it. NULL when out of memory (W unchanged). */
void *mc_x16_repack(mc_weight *W);

/* Whether a weight can be repacked: q4_0 or q8_0 with at least one group, not yet. */
static inline int mc_x16_eligible(const mc_weight *W) {
    return (W->dtype == MAMBAC_DTYPE_Q4_0 || W->dtype == MAMBAC_DTYPE_Q8_0) && W->rows >= MC_X16_ROWS &&
           W->cols % 32 == 0 && W->x16_rows == 0;
}

#endif
