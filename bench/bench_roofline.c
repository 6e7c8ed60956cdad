/* bench_roofline.c — the machine's limits that mambac's kernels are measured against:
 *   peak fp32 FMA rate: a register-only loop of independent AVX-512 (or AVX2) FMAs,
 *     per thread, on 1..N threads;
 *   peak AMX bf16 rate (where the CPU and OS have AMX): a register-only loop of
 *     TDPBF16PS into four independent accumulator tiles, per thread;
 *   read bandwidth: threads summing disjoint parts of a 1 GiB buffer (far beyond
 *     the caches), best of several passes.
 *   bench_roofline [THREADS] [--json]
 * No mambac code is involved: these are the ceilings, not results. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define FMA_ITERS 200000000LL

/* 12 independent accumulators hide the FMA latency (4 cycles x 2 pipes + slack). */
__attribute__((target("avx512f"))) static float fma512(void) {
    __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long long it = 0; it < FMA_ITERS / 12; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma256(void) {
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long long it = 0; it < FMA_ITERS / 12; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[7];
}

/* AMX: CPUID leaf 7 (AMX-TILE, AMX-BF16), the OS saving tile state (XCR0 bits 17-18),
 * and Linux's permission for this process. */
static int amx_ready(void) {
    unsigned a, b, c, d, lo, hi;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1) || !((d >> 22) & 1)) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & (3u << 17)) == (3u << 17) && syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0;
}

#define AMX_ITERS 20000000LL
static const struct {
    unsigned char palette, start, reserved[14];
    unsigned short colsb[16];
    unsigned char rows[16];
} amx_cfg __attribute__((aligned(64))) = {1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

/* 4 TDPBF16PS per iteration (16 x 16 x 32 multiply-adds each), 4 independent C tiles. */
static void amx_loop(void) {
    static const unsigned short zero[512] __attribute__((aligned(64)));
    __asm__ volatile("ldtilecfg %0" ::"m"(amx_cfg) : "memory");
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm4\n tileloadd (%0,%1,1), %%tmm5\n"
                     "tileloadd (%0,%1,1), %%tmm6\n tileloadd (%0,%1,1), %%tmm7\n"
                     "tilezero %%tmm0\n tilezero %%tmm1\n tilezero %%tmm2\n tilezero %%tmm3" ::"r"(zero), "r"(64L) : "memory");
    for (long long i = 0; i < AMX_ITERS; i++)
        __asm__ volatile("tdpbf16ps %%tmm6, %%tmm4, %%tmm0\n tdpbf16ps %%tmm7, %%tmm4, %%tmm1\n"
                         "tdpbf16ps %%tmm6, %%tmm5, %%tmm2\n tdpbf16ps %%tmm7, %%tmm5, %%tmm3" ::);
    __asm__ volatile("tilerelease" ::: "memory");
}

typedef struct job {
    int wide;
    const float *buf;
    size_t n;
    double sum;
} job;

static void *fma_thread(void *p) {
    job *j = p;
    j->sum = j->wide ? fma512() : fma256();
    return NULL;
}

static void *amx_thread(void *p) {
    (void)p;
    amx_loop();
    return NULL;
}

__attribute__((target("avx2"))) static void *read_thread(void *p) {
    job *j = p;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= j->n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(j->buf + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(j->buf + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(j->buf + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(j->buf + i + 24));
    }
    float v[8];
    _mm256_storeu_ps(v, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    j->sum = v[0];
    return NULL;
}

static double run(int nt, void *(*fn)(void *), job *jobs) {
    pthread_t th[64];
    double t0 = now();
    for (int i = 0; i < nt; i++) pthread_create(&th[i], NULL, fn, &jobs[i]);
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
    return now() - t0;
}

int main(int argc, char **argv) {
    int max_threads = argc > 1 && argv[1][0] != '-' ? atoi(argv[1]) : 2, json = 0;
    for (int i = 1; i < argc; i++) json |= strcmp(argv[i], "--json") == 0;
    int wide = __builtin_cpu_supports("avx512f"), amx_ok = amx_ready();
    if (max_threads < 1 || max_threads > 64) max_threads = 2;
    size_t bytes = 1ull << 30, n = bytes / 4;
    float *buf = aligned_alloc(64, bytes);
    for (size_t i = 0; i < n; i++) buf[i] = 1.0f; /* touch every page */
    for (int nt = 1; nt <= max_threads; nt++) {
        job jobs[64];
        for (int i = 0; i < nt; i++) jobs[i] = (job){wide, NULL, 0, 0};
        double dt = run(nt, fma_thread, jobs);
        double gflops = 2.0 * (wide ? 16 : 8) * (double)(FMA_ITERS / 12 * 12) * nt / dt / 1e9, amx = 0;
        if (amx_ok) amx = 4.0 * 16 * 16 * 32 * 2 * (double)AMX_ITERS * nt / run(nt, amx_thread, jobs) / 1e9;
        double best = 0;
        for (int pass = 0; pass < 5; pass++) {
            for (int i = 0; i < nt; i++) jobs[i] = (job){wide, buf + n / nt * i, n / nt, 0};
            double t = run(nt, read_thread, jobs);
            if (bytes / t / 1e9 > best) best = bytes / t / 1e9;
        }
        if (json)
            printf("{\"threads\": %d, \"isa\": \"%s\", \"peak_fp32_gflops\": %.1f, \"peak_amx_bf16_gflops\": %.1f, "
                   "\"read_gb_s\": %.1f}\n",
                   nt, wide ? "avx512" : "avx2", gflops, amx, best);
        else if (amx_ok)
            printf("threads %d: peak fp32 FMA %.1f GFLOP/s (%s), AMX bf16 %.0f GFLOP/s, read bandwidth %.1f GB/s\n", nt,
                   gflops, wide ? "AVX-512" : "AVX2", amx, best);
        else
            printf("threads %d: peak fp32 FMA %.1f GFLOP/s (%s), read bandwidth %.1f GB/s\n", nt, gflops,
                   wide ? "AVX-512" : "AVX2", best);
    }
    free(buf);
    return 0;
}
