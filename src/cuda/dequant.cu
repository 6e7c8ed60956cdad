/* dequant.cu — a quantized matrix's rows as float32 or bf16 (the tiles that longer products
 * hand to cuBLAS): one thread per chunk (wread.cuh), its values scaled and stored a quad
 * at a time. */
#include "cuda/cuda_ops.h"
#include "cuda/wread.cuh"

template <class RD, bool BF16>
__global__ static void dequant_k(void *out, RD rd, int64_t r0, int64_t n, int64_t K) {
    constexpr int V = RD::V;
    const int64_t per_row = K / V, g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= n * per_row) return;
    const int64_t i = g / per_row, c = g % per_row;
    const uint4 u = rd.load(r0 + i, c);
    const float sc = rd.scale(r0 + i, c);
#pragma unroll
    for (int j = 0; j < RD::Q; j++) {
        float v[4];
        RD::quad(u, j, v);
        const int64_t k = i * K + c * V + 4 * j;
        if (BF16) {
            __nv_bfloat162 *o = (__nv_bfloat162 *)((__nv_bfloat16 *)out + k);
            o[0] = __floats2bfloat162_rn(sc * v[0], sc * v[1]), o[1] = __floats2bfloat162_rn(sc * v[2], sc * v[3]);
        } else {
            *(float4 *)((float *)out + k) = make_float4(sc * v[0], sc * v[1], sc * v[2], sc * v[3]);
        }
    }
}

template <class RD>
static void run(void *out, int out_bf16, const RD &rd, int64_t r0, int64_t n, int64_t K, mcu_stream s) {
    const int64_t threads = n * (K / RD::V);
    const unsigned blocks = (unsigned)((threads + 255) / 256);
    if (out_bf16) dequant_k<RD, true><<<blocks, 256, 0, s>>>(out, rd, r0, n, K);
    else dequant_k<RD, false><<<blocks, 256, 0, s>>>(out, rd, r0, n, K);
}

extern "C" void mcu_dequant(void *out, int out_bf16, const mcu_matrix *W, int64_t r0, int64_t n, mcu_stream s) {
    const int64_t K = W->K;
    if (n <= 0 || K % 32 || r0 < 0 || r0 + n > W->R) return;
    if (W->type == MCU_W_Q8_0) run(out, out_bf16, ReadQ8{(const uint8_t *)W->w, (const __half *)W->d, K}, r0, n, K, s);
    else if (W->type == MCU_W_Q4_0) run(out, out_bf16, ReadQ4{(const uint8_t *)W->w, (const __half *)W->d, K}, r0, n, K, s);
}
