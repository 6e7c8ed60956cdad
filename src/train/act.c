/* act.c — see act.h. */
#include "train/act.h"

#include <math.h>

#include "train/ops_train.h"
#include "cpu/ops.h"

#if defined(__x86_64__)
#include "cpu/simd_avx512.h"

MC_AVX512_TARGET static inline __m512 sigmoid512(__m512 x) {
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), mc_exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

#define LOOP16(n, ...)                                                                                              \
    for (int64_t i = 0; i < (n); i += 16) {                                                                        \
        const __mmask16 m = (n) - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << ((n) - i)) - 1);                \
        __VA_ARGS__                                                                                                 \
    }

MC_AVX512_TARGET static void silu_v(float *y, const float *x, int64_t n) {
    LOOP16(n, {
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, sigmoid512(v)));
    })
}
MC_AVX512_TARGET static void softplus_v(float *y, const float *x, const float *b, int64_t n) {
    LOOP16(n, {
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(y + i, m, mc_softplus512(v));
    })
}
MC_AVX512_TARGET static void gate_v(float *y, const float *a, const float *z, int64_t n) {
    LOOP16(n, {
        const __m512 zv = _mm512_maskz_loadu_ps(m, z + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_mul_ps(zv, sigmoid512(zv))));
    })
}
MC_AVX512_TARGET static void gate_bwd_v(float *da, float *dz, const float *g, const float *a, const float *z, int64_t n) {
    LOOP16(n, {
        const __m512 zv = _mm512_maskz_loadu_ps(m, z + i), s = sigmoid512(zv), gv = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 one = _mm512_set1_ps(1.0f);
        const __m512 ds = _mm512_mul_ps(s, _mm512_fmadd_ps(zv, _mm512_sub_ps(one, s), one));
        _mm512_mask_storeu_ps(dz + i, m, _mm512_mul_ps(_mm512_mul_ps(gv, _mm512_maskz_loadu_ps(m, a + i)), ds));
        _mm512_mask_storeu_ps(da + i, m, _mm512_mul_ps(gv, _mm512_mul_ps(zv, s)));
    })
}
MC_AVX512_TARGET static void dsilu_mul_v(float *g, const float *x, int64_t n) {
    LOOP16(n, {
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i), s = sigmoid512(v), one = _mm512_set1_ps(1.0f);
        const __m512 ds = _mm512_mul_ps(s, _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + i), ds));
    })
}
MC_AVX512_TARGET static void dsoftplus_mul_v(float *g, const float *x, const float *b, int64_t n) {
    LOOP16(n, {
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
        __m512 d = sigmoid512(v);
        d = _mm512_mask_mov_ps(d, _mm512_cmp_ps_mask(v, _mm512_set1_ps(20.0f), _CMP_GT_OQ), _mm512_set1_ps(1.0f));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + i), d));
    })
}
#define SIMD(call) \
    if (simd) {    \
        call;      \
        return;    \
    }
#else
#define SIMD(call) (void)simd;
#endif

void mc_act_silu(float *y, const float *x, int64_t n, int simd) {
    SIMD(silu_v(y, x, n))
    for (int64_t i = 0; i < n; i++) y[i] = mc_silu(x[i]);
}

void mc_act_softplus(float *y, const float *x, const float *b, int64_t n, int simd) {
    SIMD(softplus_v(y, x, b, n))
    for (int64_t i = 0; i < n; i++) y[i] = mc_softplus(x[i] + (b ? b[i] : 0.0f));
}

void mc_act_gate(float *y, const float *a, const float *z, int64_t n, int simd) {
    SIMD(gate_v(y, a, z, n))
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * mc_silu(z[i]);
}

void mc_act_gate_bwd(float *da, float *dz, const float *g, const float *a, const float *z, int64_t n, int simd) {
    SIMD(gate_bwd_v(da, dz, g, a, z, n))
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i];
        dz[i] = gi * a[i] * mc_dsilu(z[i]);
        da[i] = gi * mc_silu(z[i]);
    }
}

void mc_act_dsilu_mul(float *g, const float *x, int64_t n, int simd) {
    SIMD(dsilu_mul_v(g, x, n))
    for (int64_t i = 0; i < n; i++) g[i] *= mc_dsilu(x[i]);
}

void mc_act_dsoftplus_mul(float *g, const float *x, const float *b, int64_t n, int simd) {
    SIMD(dsoftplus_mul_v(g, x, b, n))
    for (int64_t i = 0; i < n; i++) g[i] *= mc_dsoftplus(x[i] + (b ? b[i] : 0.0f));
}
