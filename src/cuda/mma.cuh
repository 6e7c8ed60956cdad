/* mma.cuh — tensor-core tiles for the SSD kernels (ssd_tc.cu, train_ssd_tc.cu): mma.sync
 * m16n8k16 (bf16 in, float32 accumulate) with operands from shared memory by ldmatrix.
 * Fragment layouts (PTX ISA, m16n8k16): lane l, g = l / 4, q = l % 4; accumulator c[0..1]
 * at (row g, cols 2q, 2q+1), c[2..3] at row g + 8. A 16 x 16 operand tile is four 8 x 8
 * matrices loaded by one ldmatrix.x4; a 16 (k) x 16 (n) B tile likewise, registers 0-1 for
 * columns 0-7 and 2-3 for columns 8-15. Where a tile is stored with the reduced dimension
 * k along rows ("k-major"), the .trans form loads it. Each lane gives the address of one
 * 8-element row of one of the four matrices: */
#ifndef MC_CUDA_MMA_CUH
#define MC_CUDA_MMA_CUH

#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

__device__ static inline uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
/* A stored row-major (m along rows) or B stored k-major: matrices (r 0-7, c 0-7), (r 8-15,
 * c 0-7), (r 0-7, c 8-15), (r 8-15, c 8-15) */
__device__ static inline const bf16 *rows_first(const bf16 *tile, int ld) {
    const int l = threadIdx.x % 32;
    return tile + (l % 16) * ld + (l / 16) * 8;
}
/* A stored k-major or B stored n-major: matrices (r 0-7, c 0-7), (r 0-7, c 8-15), (r 8-15,
 * c 0-7), (r 8-15, c 8-15) */
__device__ static inline const bf16 *cols_first(const bf16 *tile, int ld) {
    const int l = threadIdx.x % 32;
    return tile + (l % 8 + (l / 16) * 8) * ld + ((l / 8) % 2) * 8;
}
__device__ static inline void ldsm(uint32_t r[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
}
__device__ static inline void ldsm_t(uint32_t r[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
}
/* c (16 x 16, as two 16 x 8 accumulators) += a (16 x 16) b (16 x 16) */
__device__ static inline void mma16(float c[2][4], const uint32_t a[4], const uint32_t b[4]) {
#pragma unroll
    for (int h = 0; h < 2; h++)
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
            "{%0, %1, %2, %3};"
            : "+f"(c[h][0]), "+f"(c[h][1]), "+f"(c[h][2]), "+f"(c[h][3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[2 * h]), "r"(b[2 * h + 1]));
}
__device__ static inline void zero16(float c[2][4]) {
#pragma unroll
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++) c[h][i] = 0.0f;
}
/* The float32 16 x 16 tile c to rows of stride ld at dst (row 0, col 0 of the tile); rows
 * from `rows` on are left alone. vec: dst and ld allow 8-byte stores. */
__device__ static inline void store16(float *dst, int64_t ld, const float c[2][4], int rows, bool vec) {
    const int l = threadIdx.x % 32, g = l / 4, q = l % 4;
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int r = g + 8 * half;
            if (r >= rows) continue;
            float *o = dst + r * ld + h * 8 + 2 * q;
            if (vec) *(float2 *)o = make_float2(c[h][2 * half], c[h][2 * half + 1]);
            else o[0] = c[h][2 * half], o[1] = c[h][2 * half + 1];
        }
}

/* c += A B over k in [k0, k1), 16 at a time. A (16 rows of the product) is stored rows
 * first (a at the tile's first row: element (m, k) at a[m lda + k]) or k-major (a at the
 * tile's first column: (m, k) at a[k lda + m]); B (16 columns) n-major (b at the tile's
 * first column's row: (k, n) at b[n ldb + k]) or k-major ((k, n) at b[k ldb + n]). */
enum { A_ROWS, A_KMAJOR };
enum { B_NMAJOR, B_KMAJOR };
template <int AF, int BF>
__device__ static inline void mma_run(float c[2][4], const bf16 *a, int lda, const bf16 *b, int ldb, int k0, int k1) {
#pragma unroll 4
    for (int k = k0; k < k1; k += 16) {
        uint32_t fa[4], fb[4];
        if (AF == A_ROWS) ldsm(fa, rows_first(a + k, lda));
        else ldsm_t(fa, cols_first(a + k * lda, lda));
        if (BF == B_NMAJOR) ldsm(fb, cols_first(b + k, ldb));
        else ldsm_t(fb, rows_first(b + k * ldb, ldb));
        mma16(c, fa, fb);
    }
}

/* Lower-triangle tile k of an n x n grid of tiles: row ti, column si <= ti. */
__device__ static inline void tri_tile(int k, int *ti, int *si) {
    int t = 0;
    while (k > t) k -= ++t;
    *ti = t, *si = k;
}

#endif
