/* fastmath.cuh — the special functions of the scan and SSD kernels.
 * exp2 as one MUFU.EX2 with subnormal results flushed to zero: exp2f compiles to the
 * same instruction plus three that rescale subnormal arguments and results, which the
 * scan runs T * E * N times for values that only ever decay towards zero. */
#ifndef MC_CUDA_FASTMATH_CUH
#define MC_CUDA_FASTMATH_CUH

#define MCU_LOG2E 1.4426950408889634f

__device__ static inline float mcu_ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* exp(x) as exp2(x log2 e): one special-function op (~2 ulp) */
__device__ static inline float mcu_exp(float x) { return mcu_ex2(x * MCU_LOG2E); }

__device__ static inline float mcu_silu(float x) { return x / (1.0f + mcu_exp(-x)); }

/* log(1 + e^x) as torch computes it (x itself above 20). log1pf, not log(1 + e^x): dt's
 * softplus is mostly of x in (-7, -2), where 1 + e^x rounds away up to 1e-4 of the
 * result and __logf's absolute error is as large. */
__device__ static inline float mcu_softplus(float x) { return x > 20.0f ? x : log1pf(mcu_exp(x)); }

#endif
