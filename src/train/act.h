/* act.h — elementwise activations of training over contiguous arrays, with their
 * derivatives, in a scalar form and an AVX-512 form (polynomial exp / log from
 * simd_avx512.h; chosen by `simd`). */
#ifndef MC_ACT_H
#define MC_ACT_H

#include <stdint.h>

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
