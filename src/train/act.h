/* act.h — elementwise activations of training over contiguous arrays, with their
 * derivatives, in a scalar form and AVX2 / AVX-512 forms (polynomial exp / log from
 * simd_avx2.h / simd_avx512.h; chosen by `simd`, a MC_SIMD_ level). */
#ifndef MC_ACT_H
#define MC_ACT_H

#include <stdint.h>

/* The SIMD forms training runs: the kernel set's (cpu/kernels.h) level. */
enum { MC_SIMD_SCALAR = 0, MC_SIMD_AVX2 = 1, MC_SIMD_AVX512 = 2 };
struct mc_kernels;
int mc_train_simd(const struct mc_kernels *k);

/* y = silu(x) */
void mc_act_silu(float *y, const float *x, int64_t n, int simd);
/* y = softplus(x + b) (b may be NULL), torch's threshold 20 */
void mc_act_softplus(float *y, const float *x, const float *b, int64_t n, int simd);
/* y = a * silu(z) */
void mc_act_gate(float *y, const float *a, const float *z, int64_t n, int simd);
/* given g = dL/dy of y = a * silu(z): da = g silu(z), dz = g a silu'(z) (da may alias g) */
void mc_act_gate_bwd(float *da, float *dz, const float *g, const float *a, const float *z, int64_t n, int simd);
/* g *= silu'(x) */
void mc_act_dsilu_mul(float *g, const float *x, int64_t n, int simd);
/* g *= softplus'(x + b) (b may be NULL) */
void mc_act_dsoftplus_mul(float *g, const float *x, const float *b, int64_t n, int simd);

#endif
