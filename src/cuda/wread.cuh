/* wread.cuh — how the products read a weight matrix of each stored type (cuda_ops.h
 * mcu_matrix): a "chunk" is the 16 bytes one lane loads at once, V values. Quantized
 * chunks are turned into floats by building the float's bits (0x4B000000 | byte is
 * 2^23 + byte: one byte permute and one subtraction a value, instead of an int-to-float
 * conversion, a quarter-rate instruction); their scale is returned apart, so a product
 * scales a block's sum once. */
#ifndef MC_CUDA_WREAD_CUH
#define MC_CUDA_WREAD_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

/* Weight readers. A chunk (16 bytes: V values) is loaded as one uint4 (load) with its scale
 * (scale: 1 unless quantized), then decoded a quad of 4 values at a time (quad j: values
 * 4 j .. 4 j + 3 of the chunk), so a product keeps 4 decoded values and 4 activations
 * live, not V of each: few registers, many warps in flight. at() is one value, for the
 * scalar fallback. */
__device__ static inline uint32_t word(const uint4 &u, int j) { return j == 0 ? u.x : j == 1 ? u.y : j == 2 ? u.z : u.w; }

struct ReadF32 {
    static constexpr int V = 4, Q = 1;
    const float *w;
    int64_t K;
    __device__ uint4 load(int64_t r, int64_t c) const { return __ldg((const uint4 *)(w + r * K) + c); }
    __device__ float scale(int64_t, int64_t) const { return 1.0f; }
    __device__ static void quad(const uint4 &u, int, float v[4]) {
        v[0] = __uint_as_float(u.x), v[1] = __uint_as_float(u.y), v[2] = __uint_as_float(u.z), v[3] = __uint_as_float(u.w);
    }
    __device__ float at(int64_t r, int64_t k) const { return w[r * K + k]; }
    __host__ __device__ bool aligned() const { return K % V == 0 && (uintptr_t)w % 16 == 0; }
};
struct ReadBF16 {
    static constexpr int V = 8, Q = 2;
    const __nv_bfloat16 *w;
    int64_t K;
    __device__ uint4 load(int64_t r, int64_t c) const { return __ldg((const uint4 *)(w + r * K) + c); }
    __device__ float scale(int64_t, int64_t) const { return 1.0f; }
    __device__ static void quad(const uint4 &u, int j, float v[4]) { /* bf16 -> f32 is a shift: exact */
        const uint32_t a = word(u, 2 * j), b = word(u, 2 * j + 1);
        v[0] = __uint_as_float(a << 16), v[1] = __uint_as_float(a & 0xffff0000u);
        v[2] = __uint_as_float(b << 16), v[3] = __uint_as_float(b & 0xffff0000u);
    }
    __device__ float at(int64_t r, int64_t k) const { return __bfloat162float(w[r * K + k]); }
    __host__ __device__ bool aligned() const { return K % V == 0 && (uintptr_t)w % 16 == 0; }
};
/* 2^23 + byte i of m, as a float. */
__device__ static inline float magic(uint32_t m, int i) {
    return __uint_as_float(__byte_perm(m, 0x4B000000u, (unsigned)(i | 0x7440)));
}
struct ReadQ8 { /* a chunk: 16 values, half a block */
    static constexpr int V = 16, Q = 4;
    const uint8_t *q;
    const __half *d;
    int64_t K;
    __device__ uint4 load(int64_t r, int64_t c) const { return __ldg((const uint4 *)(q + r * K) + c); }
    __device__ float scale(int64_t r, int64_t c) const { return __half2float(d[r * (K / 32) + c / 2]); }
    __device__ static void quad(const uint4 &u, int j, float v[4]) {
        const uint32_t m = word(u, j) ^ 0x80808080u; /* q + 128 */
        for (int i = 0; i < 4; i++) v[i] = magic(m, i) - 8388736.0f; /* 2^23 + 128 */
    }
    __device__ float at(int64_t r, int64_t k) const { return __half2float(d[r * (K / 32) + k / 32]) * (float)(int8_t)q[r * K + k]; }
    __host__ __device__ bool aligned() const { return K % 32 == 0 && (uintptr_t)q % 16 == 0; }
};
struct ReadQ4 { /* a chunk: one block of 32 values; quads 0-3 the low nibbles, 4-7 the high */
    static constexpr int V = 32, Q = 8;
    const uint8_t *q;
    const __half *d;
    int64_t K;
    __device__ uint4 load(int64_t r, int64_t c) const { return __ldg((const uint4 *)(q + r * (K / 2)) + c); }
    __device__ float scale(int64_t r, int64_t c) const { return __half2float(d[r * (K / 32) + c]); }
    __device__ static void quad(const uint4 &u, int j, float v[4]) {
        const uint32_t m = (j < 4 ? word(u, j) : word(u, j - 4) >> 4) & 0x0f0f0f0fu;
        for (int i = 0; i < 4; i++) v[i] = magic(m, i) - 8388616.0f; /* 2^23 + 8 */
    }
    __device__ float at(int64_t r, int64_t k) const {
        const uint8_t b = q[r * (K / 2) + (k / 32) * 16 + (k % 16)];
        return __half2float(d[r * (K / 32) + k / 32]) * ((float)((k % 32) < 16 ? b & 15 : b >> 4) - 8.0f);
    }
    __host__ __device__ bool aligned() const { return K % 32 == 0 && (uintptr_t)q % 16 == 0; }
};

#endif
