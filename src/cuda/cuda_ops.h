/* cuda_ops.h — C-callable launchers of the CUDA kernels (one .cu file per op family).
 * Every pointer is device memory unless its name says host; every launch goes on
 * `stream` and returns at once (errors are collected by the caller with
 * cudaGetLastError / at the end of a micro-batch). Shapes as in cpu/ops.h: row-major,
 * T rows, strides in floats.
 *
 * A micro-batch's segments reach the kernels as a device array of mcu_seg: rows
 * [row0, row0 + n) of the micro-batch belong to the sequence whose layer state starts
 * at conv (C, K-1 floats) and ssm (Mamba-1 (E, N); Mamba-2 (H, P, N)). */
#ifndef MC_CUDA_OPS_H
#define MC_CUDA_OPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *mcu_stream;

/* One segment of a micro-batch, as the kernels see it (built on the host per layer). */
typedef struct mcu_seg {
    int32_t row0, n;
    float *conv; /* this layer's conv window of the sequence */
    float *ssm;  /* this layer's SSM state of the sequence */
    int32_t chunk0;  /* segments longer than MCU_CHUNK: index of its first chunk in the chunk
                      * scratch; -1: the segment is scanned in one piece */
    int32_t cchunk0; /* segments longer than MCU_CONV_CHUNK: index of its first conv chunk's
                      * history rows in the conv scratch; -1: convolved in one piece */
} mcu_seg;

/* The conv of a long segment runs in chunks of MCU_CONV_CHUNK rows at once: the K-1 input
 * rows before each chunk (the window for the first) are copied aside first, since the
 * conv works in place. The conv scratch holds mcu_conv_chunks_max(U) * (K-1) * C floats. */
#define MCU_CONV_CHUNK 128
static inline int64_t mcu_conv_chunks_max(int64_t U) { return 2 * (U / MCU_CONV_CHUNK) + 2; }

/* Long segments are scanned in chunks of MCU_CHUNK tokens in parallel: each chunk's state
 * from zero (and its sum of dt), then the chunks' entering states in order, then each
 * chunk again from its entering state for the outputs. The chunk scratch holds
 * mcu_chunks_max(U) chunks of (state floats) + (dt sums). */
#define MCU_CHUNK 64
static inline int64_t mcu_chunks_max(int64_t U) { return 2 * (U / MCU_CHUNK) + 2; }
typedef struct mcu_chunks {
    float *state; /* (chunks, state floats of a layer) */
    float *dtsum; /* (chunks, E) Mamba-1; (chunks, H) Mamba-2 */
    int64_t max_chunks_per_seg; /* grid depth: ceil(longest chunked segment / MCU_CHUNK), 0 if none */
} mcu_chunks;

/* h (T, D) = embed[ids] — embed (V, D) float32. */
void mcu_embed(float *h, const float *embed, const int32_t *ids, int64_t T, int64_t D, mcu_stream s);
/* out row i (n values: float32, or bf16 when out_bf16) = rmsnorm(x row rows[i] (or i when
 * rows is NULL)) * w. */
void mcu_rmsnorm(void *out, int out_bf16, const float *x, const int32_t *rows, const float *w, int64_t T, int64_t n,
                 float eps, mcu_stream s);
/* y (T, cols of stride ys) += bias (cols) — after a product. */
void mcu_add_bias(float *y, int64_t ys, const float *bias, int64_t T, int64_t cols, mcu_stream s);
/* float32 (T rows of stride xs, cols used) → bf16 (T, cols) packed. */
void mcu_to_bf16(void *out, const float *x, int64_t xs, int64_t T, int64_t cols, mcu_stream s);

/* A weight matrix (R, K) on the device, row-major, as a product reads it:
 *   MCU_W_F32, MCU_W_BF16: w holds the values;
 *   MCU_W_Q8_0, MCU_W_Q4_0 (K a multiple of 32): split from the file's blocks so that loads
 *   are aligned — w the quants, (R, K) int8 (q8_0) or (R, K / 2) bytes (q4_0: per block of
 *   32 values 16 bytes, byte j holding value j in its low nibble and value j + 16 in its
 *   high one, each offset by 8, as in the file); d (R, K / 32) the f16 block scales;
 *   value = d * q. */
typedef enum { MCU_W_F32, MCU_W_BF16, MCU_W_Q8_0, MCU_W_Q4_0 } mcu_wtype;
typedef struct mcu_matrix {
    const void *w, *d;
    mcu_wtype type;
    int64_t R, K;
} mcu_matrix;

/* out (T, R) = x' (T rows of xs; K used) W^T (+ beta out) for T <= MCU_GEMV_MAX_T: the
 * decode product, reading W once as stored, float32 activations and sums. x' = x, or with
 * norm_w (K floats) the RMSNorm of each row of x times norm_w (the norm fused into the
 * product: mcu_rmsnorm's result without its own pass). variant: 0 the library's choice
 * (activations staged in shared memory where they fit), MCU_GEMV_GLOBAL_X read from global
 * memory (the workbench's comparison). */
#define MCU_GEMV_MAX_T 8
#define MCU_GEMV_GLOBAL_X 1
void mcu_gemv(float *out, int64_t ldo, const float *x, int64_t xs, int64_t T, const mcu_matrix *W, float beta,
              const float *norm_w, float eps, int variant, mcu_stream s);
/* Rows [r0, r0 + n) of a quantized W as float32 or bf16 (out_bf16), (n, K) packed: the
 * tiles of a longer product. */
void mcu_dequant(void *out, int out_bf16, const mcu_matrix *W, int64_t r0, int64_t n, mcu_stream s);

/* keys[i] = the argmax of logits row i (n floats; rows ld apart) as a key: (the value's
 * bits made orderable) << 32 | (2^32 - 1 - index), so the largest key is the first
 * maximum; NaN never chosen; 0 when every value is NaN. mcu_argmax_index reads the index
 * (0 for a key of 0): mambac_argmax on the device. */
void mcu_argmax(uint64_t *keys, const float *logits, int64_t ld, int64_t rows, int64_t n, mcu_stream s);
static inline int32_t mcu_argmax_index(uint64_t key) { return key ? (int32_t)(0xffffffffu - (uint32_t)key) : 0; }

/* Causal depthwise conv + bias + SiLU in place over channels [0, C) of rows of stride
 * `stride` (x points at the first conv channel), per segment from its window (updated
 * to the last K-1 inputs). w (C, K), b (C) or NULL. out16 (T, C) bf16, or NULL: a copy of
 * the outputs rounded to bf16 (the next product's input). */
void mcu_conv(float *x, int64_t stride, int64_t C, int64_t K, const float *w, const float *b, const mcu_seg *seg,
              int64_t n_seg, int64_t max_cchunks, float *hist, void *out16, mcu_stream s);

/* Mamba-1 selective scan per segment (ops.h mc_selective_scan semantics: softplus of
 * dt + dt_bias, D skip, the silu(z) gate), continuing from each segment's state. */
typedef struct mcu_scan_args {
    int64_t E, N;
    const float *x; int64_t x_stride;
    const float *z; int64_t z_stride;
    float *dt; int64_t dt_stride; /* scratch: chunked segments leave softplus(dt + dt_bias) here */
    const float *B, *C; int64_t bc_stride;
    const float *A, *D, *dt_bias;
    float *y; int64_t y_stride;
    /* Or dt_proj fused in (few rows): dt row r = dt_in row r (dt_rank floats) dt_w^T, dt_w
     * (E, dt_rank) float32, or bf16 when dt_w_bf16; dt unused. NULL: dt as given. */
    const void *dt_w; int dt_w_bf16; int64_t dt_rank;
    const float *dt_in; int64_t dt_in_stride;
    int step; /* every segment is one token (decode): the step kernel */
    void *y16; /* (T, E) bf16, or NULL: a copy of y rounded to bf16 (out_proj's input) */
} mcu_scan_args;
void mcu_selective_scan(const mcu_scan_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s);

/* Mamba-2: dt (T, H) = clamp(softplus(raw (rows of stride rs) + dt_bias), lo, hi). */
void mcu_dt_softplus(float *dt, const float *raw, int64_t rs, const float *dt_bias, int64_t T, int64_t H, float lo,
                     float hi, mcu_stream s);
/* Mamba-2 SSD per segment (ops.h mc_ssd_chunked semantics, without D and gate): the
 * recurrent form, one warp per (segment, head, p) with the N states in its lanes, long
 * segments in chunks (above). */
typedef struct mcu_ssd_args {
    int64_t H, P, N, G;
    int tc; /* long segments' chunks may run on tensor cores with bf16 operands (ssd_tc.cu) */
    const float *x; int64_t x_stride;
    const float *B, *C; int64_t bc_stride;
    const float *dt; int64_t dt_stride;
    const float *A;
    float *y; int64_t y_stride;
    /* Or mcu_dt_softplus fused in (no chunked segments): dt = clamp(softplus(dt_raw +
     * dt_bias), dt_lo, dt_hi) computed where it is used; dt unused. NULL: dt as given. */
    const float *dt_raw; int64_t dt_raw_stride;
    const float *dt_bias; float dt_lo, dt_hi;
} mcu_ssd_args;
void mcu_ssd(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s);
/* Inside mcu_ssd: the chunked passes on tensor cores in chunks of MCU_SSD_TC_CHUNK rows
 * (0 when the shape or the device's shared memory does not suit them: nothing launched),
 * and pass 2 for chunks of clen rows. */
#define MCU_SSD_TC_CHUNK 128
int mcu_ssd_tc(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, mcu_stream s);
void mcu_ssd_combine(const mcu_ssd_args *a, const mcu_seg *seg, int64_t n_seg, const mcu_chunks *ch, int32_t clen,
                     mcu_stream s);
/* Mamba-2 after the SSD, per row: y += D[h] x; then the gated norm with z (ops.h
 * mc_gated_rmsnorm; gnorm NULL: y *= silu(z)). y (T, E); x, z rows of stride xs. y16
 * (T, E) bf16, or NULL: a copy of the result rounded to bf16 (out_proj's input). */
void mcu_gate(float *y, void *y16, const float *x, const float *z, int64_t xs, const float *D, const float *gnorm,
              int64_t T, int64_t E, int64_t P, int64_t G, int norm_before_gate, float eps, mcu_stream s);

#ifdef __cplusplus
}
#endif
#endif
