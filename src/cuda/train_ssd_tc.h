/* train_ssd_tc.h — the training SSD's chunks as matrix products on tensor cores
 * (train_ssd_tc.cu). train_ssd.cu runs them in place of its recurrent chunk passes when the
 * SSD asks for them (mct_ssd.tc, precision bf16) and keeps the rest: the tape's layout, the
 * chunks' states combined in order, the final sums over heads and chunks. */
#ifndef MC_CUDA_TRAIN_SSD_TC_H
#define MC_CUDA_TRAIN_SSD_TC_H

#include "cuda/train_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MCT_SSD_CHUNK 64 /* steps per chunk, both forms (the tape is laid out by it) */

/* Where the passes read and write: the tape's states (B, H, chunks + 1, P, N) and sums of
 * dt (B, H, chunks); the gradient carries (B, H, chunks, P, N); per (sequence, head) dB and
 * dC (L, N) and ddt (L); dA per (sequence, head, chunk). */
typedef struct mct_ssd_tc_bufs {
    float *states, *dtsum, *carry, *dBp, *dCp, *ddtp, *dAp;
} mct_ssd_tc_bufs;

/* P and N suit the tensor-core passes on this device (multiples of 16, P <= 128, N <= 256,
 * the backward's shared memory within the device's limit). */
int mct_ssd_tc_fits(int64_t P, int64_t N);
/* forward: each chunk's end state from zero (into its states slot) and sum of dt */
void mct_ssd_tc_end(const mct_ssd *a, const mct_ssd_tc_bufs *o, mcu_stream s);
/* forward: y of each chunk from its entering state */
void mct_ssd_tc_y(const mct_ssd *a, const mct_ssd_tc_bufs *o, mcu_stream s);
/* backward: the gradient each chunk passes to its entering state, from its own dy */
void mct_ssd_tc_carry(const mct_ssd *a, const mct_ssd_tc_bufs *o, mcu_stream s);
/* backward: each chunk's gradients from its entering state and the gradient of its end
 * state: dx (+=), per-head dB and dC, ddt, dA's part */
void mct_ssd_tc_grad(const mct_ssd *a, const mct_ssd_tc_bufs *o, mcu_stream s);

#ifdef __cplusplus
}
#endif
#endif
