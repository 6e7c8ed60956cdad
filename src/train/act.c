/* act.c — see act.h. */
#include "train/act.h"

#include <math.h>

#include <string.h>

#include "train/ops_train.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"

int mc_train_simd(const struct mc_kernels *k) {
    if (k->avx512) return MC_SIMD_AVX512;
    return strcmp(k->name, "avx2") == 0 ? MC_SIMD_AVX2 : MC_SIMD_SCALAR;
}

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

MC_AVX512_TARGET static void silu512(float *y, const float *x, int64_t n) {
    LOOP16(n, {
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, sigmoid512(v)));
    })
}
MC_AVX512_TARGET static void softplus512(float *y, const float *x, const float *b, int64_t n) {
    LOOP16(n, {
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(y + i, m, mc_softplus512(v));
    })
}
MC_AVX512_TARGET static void gate512(float *y, const float *a, const float *z, int64_t n) {
    LOOP16(n, {
        const __m512 zv = _mm512_maskz_loadu_ps(m, z + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_mul_ps(zv, sigmoid512(zv))));
    })
}
MC_AVX512_TARGET static void gate_bwd512(float *da, float *dz, const float *g, const float *a, const float *z, int64_t n) {
    LOOP16(n, {
        const __m512 zv = _mm512_maskz_loadu_ps(m, z + i), s = sigmoid512(zv), gv = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 one = _mm512_set1_ps(1.0f);
        const __m512 ds = _mm512_mul_ps(s, _mm512_fmadd_ps(zv, _mm512_sub_ps(one, s), one));
        _mm512_mask_storeu_ps(dz + i, m, _mm512_mul_ps(_mm512_mul_ps(gv, _mm512_maskz_loadu_ps(m, a + i)), ds));
        _mm512_mask_storeu_ps(da + i, m, _mm512_mul_ps(gv, _mm512_mul_ps(zv, s)));
    })
}
MC_AVX512_TARGET static void dsilu_mul512(float *g, const float *x, int64_t n) {
    LOOP16(n, {
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i), s = sigmoid512(v), one = _mm512_set1_ps(1.0f);
        const __m512 ds = _mm512_mul_ps(s, _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + i), ds));
    })
}
MC_AVX512_TARGET static void dsoftplus_mul512(float *g, const float *x, const float *b, int64_t n) {
    LOOP16(n, {
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
        __m512 d = sigmoid512(v);
        d = _mm512_mask_mov_ps(d, _mm512_cmp_ps_mask(v, _mm512_set1_ps(20.0f), _CMP_GT_OQ), _mm512_set1_ps(1.0f));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + i), d));
    })
}
#include "cpu/simd_avx2.h"

MC_AVX2_TARGET static inline __m256 sigmoid256(__m256 x) {
    return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), mc_exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* 8 lanes a step; the last step masked (maskload reads nothing past the mask) */
#define LOOP8(n, ...)                                                         \
    for (int64_t i = 0; i < (n); i += 8) {                                    \
        const __m256i m = mc_mask256((n) - i >= 8 ? 8 : (int)((n) - i));      \
        __VA_ARGS__                                                           \
    }
#define LD(p) _mm256_maskload_ps((p) + i, m)
#define ST(p, v) _mm256_maskstore_ps((p) + i, m, (v))

MC_AVX2_TARGET static void silu256(float *y, const float *x, int64_t n) {
    LOOP8(n, {
        const __m256 v = LD(x);
        ST(y, _mm256_mul_ps(v, sigmoid256(v)));
    })
}
MC_AVX2_TARGET static void softplus256(float *y, const float *x, const float *b, int64_t n) {
    LOOP8(n, {
        __m256 v = LD(x);
        if (b) v = _mm256_add_ps(v, LD(b));
        ST(y, mc_softplus256(v));
    })
}
MC_AVX2_TARGET static void gate256(float *y, const float *a, const float *z, int64_t n) {
    LOOP8(n, {
        const __m256 zv = LD(z);
        ST(y, _mm256_mul_ps(LD(a), _mm256_mul_ps(zv, sigmoid256(zv))));
    })
}
MC_AVX2_TARGET static void gate_bwd256(float *da, float *dz, const float *g, const float *a, const float *z, int64_t n) {
    LOOP8(n, {
        const __m256 zv = LD(z), s = sigmoid256(zv), gv = LD(g), one = _mm256_set1_ps(1.0f);
        const __m256 ds = _mm256_mul_ps(s, _mm256_fmadd_ps(zv, _mm256_sub_ps(one, s), one));
        ST(dz, _mm256_mul_ps(_mm256_mul_ps(gv, LD(a)), ds));
        ST(da, _mm256_mul_ps(gv, _mm256_mul_ps(zv, s)));
    })
}
MC_AVX2_TARGET static void dsilu_mul256(float *g, const float *x, int64_t n) {
    LOOP8(n, {
        const __m256 v = LD(x), s = sigmoid256(v), one = _mm256_set1_ps(1.0f);
        const __m256 ds = _mm256_mul_ps(s, _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one));
        ST(g, _mm256_mul_ps(LD(g), ds));
    })
}
MC_AVX2_TARGET static void dsoftplus_mul256(float *g, const float *x, const float *b, int64_t n) {
    LOOP8(n, {
        __m256 v = LD(x);
        if (b) v = _mm256_add_ps(v, LD(b));
        const __m256 d = _mm256_blendv_ps(sigmoid256(v), _mm256_set1_ps(1.0f), _mm256_cmp_ps(v, _mm256_set1_ps(20.0f), _CMP_GT_OQ));
        ST(g, _mm256_mul_ps(LD(g), d));
    })
}
#undef LD
#undef ST

#define SIMD(call512, call256)          \
    if (simd == MC_SIMD_AVX512) {       \
        call512;                        \
        return;                         \
    }                                   \
    if (simd == MC_SIMD_AVX2) {         \
        call256;                        \
        return;                         \
    }
#else
#define SIMD(call512, call256) (void)simd;
#endif

void mc_act_silu(float *y, const float *x, int64_t n, int simd) {
    SIMD(silu512(y, x, n), silu256(y, x, n))
    for (int64_t i = 0; i < n; i++) y[i] = mc_silu(x[i]);
}

void mc_act_softplus(float *y, const float *x, const float *b, int64_t n, int simd) {
    SIMD(softplus512(y, x, b, n), softplus256(y, x, b, n))
    for (int64_t i = 0; i < n; i++) y[i] = mc_softplus(x[i] + (b ? b[i] : 0.0f));
}

void mc_act_gate(float *y, const float *a, const float *z, int64_t n, int simd) {
    SIMD(gate512(y, a, z, n), gate256(y, a, z, n))
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * mc_silu(z[i]);
}

void mc_act_gate_bwd(float *da, float *dz, const float *g, const float *a, const float *z, int64_t n, int simd) {
    SIMD(gate_bwd512(da, dz, g, a, z, n), gate_bwd256(da, dz, g, a, z, n))
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i];
        dz[i] = gi * a[i] * mc_dsilu(z[i]);
        da[i] = gi * mc_silu(z[i]);
    }
}

void mc_act_dsilu_mul(float *g, const float *x, int64_t n, int simd) {
    SIMD(dsilu_mul512(g, x, n), dsilu_mul256(g, x, n))
    for (int64_t i = 0; i < n; i++) g[i] *= mc_dsilu(x[i]);
}

void mc_act_dsoftplus_mul(float *g, const float *x, const float *b, int64_t n, int simd) {
    SIMD(dsoftplus_mul512(g, x, b, n), dsoftplus_mul256(g, x, b, n))
    for (int64_t i = 0; i < n; i++) g[i] *= mc_dsoftplus(x[i] + (b ? b[i] : 0.0f));
}
