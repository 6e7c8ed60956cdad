/* bench_cuda_kernels.c — kernel workbench for the CUDA backend (llm.c dev/cuda style): the
 * selective scan and the SSD
 *   - prefill at the shapes of shared/gpu-peers' kernel figures (batch 1; scan D 4096 N 16
 *     with z; SSD H 64 P 64 N 128 groups 1), L = 2k / 8k / 32k tokens in one segment;
 *   - one decode step of 1 and of 128 sequences at mamba-130m's scan (D 1536 N 16) and
 *     mamba2-130m's SSD (H 24 P 64 N 128) shapes, each sequence its own state;
 *   - the decode product (GEMV, bf16 weights) at mamba2-1.3b's projection shapes;
 * from zero states, each variant checked against the CPU reference (cpu/ops.h) before it is
 * timed, the device-to-device copy bandwidth measured in the same run as the ceiling.
 * Times: median of 9 runs by CUDA events. GB/s counts the compulsory traffic (inputs and
 * states read once, outputs and states written once, float32). Outputs start as NaN; a
 * check fails above its bound (float32 paths 1e-5, bf16 tensor-core SSD 1e-2), and the
 * "N passed, N failed" line and the exit status say so (scripts/test_cuda.sh runs it under
 * compute-sanitizer).
 *   bench_cuda_kernels [L...] */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ops.h"
#include "cuda/cuda_ops.h"

#define RUNS 9

static void die_on(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return;
    fprintf(stderr, "bench_cuda_kernels: %s: %s\n", what, cudaGetErrorString(e));
    exit(1);
}

static uint32_t rng = 12345;
static float urand(void) { /* [-1, 1) */
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}
static float *host_rand(size_t n, float scale, float shift) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = shift + scale * urand();
    return p;
}
static float *dev_copy(const float *h, size_t n) {
    float *d;
    die_on(cudaMalloc((void **)&d, (n ? n : 1) * sizeof *d), "cudaMalloc");
    if (h) die_on(cudaMemcpy(d, h, n * sizeof *d, cudaMemcpyHostToDevice), "upload");
    return d;
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Every check against the CPU: its bound, and the count of those within it (the summary
 * line and exit status make the workbench a kernel test too: scripts/test_cuda.sh). */
static int n_passed, n_failed;
static double checked(double err, double bound) {
    if (err >= 0) {
        if (err <= bound) n_passed++;
        else n_failed++, printf("FAILED: rel. L2 %.2e above %.0e\n", err, bound);
    }
    return err;
}

/* Relative L2 distance of got from want over n floats (NaN when either has one). */
static double rel_l2(const float *got, const float *want, size_t n) {
    double d = 0, w = 0;
    for (size_t i = 0; i < n; i++) d += (double)(got[i] - want[i]) * (got[i] - want[i]), w += (double)want[i] * want[i];
    return sqrt(d / (w > 0 ? w : 1));
}

static double copy_ceiling(void) {
    const size_t bytes = (size_t)1 << 30;
    void *a, *b;
    die_on(cudaMalloc(&a, bytes), "cudaMalloc");
    die_on(cudaMalloc(&b, bytes), "cudaMalloc");
    cudaMemset(a, 1, bytes);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    float best = 1e30f;
    for (int i = 0; i < 5; i++) {
        cudaEventRecord(e0, 0);
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0);
        cudaEventRecord(e1, 0);
        cudaEventSynchronize(e1);
        float ms;
        cudaEventElapsedTime(&ms, e0, e1);
        if (ms < best) best = ms;
    }
    cudaFree(a), cudaFree(b);
    return 2.0 * bytes / (best * 1e-3) / 1e9;
}

/* B segments of n rows each, one after the other, segment i's state at state + i *
 * state_floats; the chunk scratch (cuda_ops.h) of the chunked ones. */
typedef struct segment {
    mcu_seg *d_seg;
    mcu_chunks ch;
} segment;
static segment make_segment(int64_t B, int64_t n, float *state, int64_t state_floats, int64_t per_chunk) {
    segment s;
    const int32_t nch = n > MCU_CHUNK ? (int32_t)((n + MCU_CHUNK - 1) / MCU_CHUNK) : 0;
    mcu_seg *g = malloc((size_t)B * sizeof *g);
    for (int64_t i = 0; i < B; i++)
        g[i] = (mcu_seg){(int32_t)(i * n), (int32_t)n, NULL, state + i * state_floats, nch ? (int32_t)(i * nch) : -1, -1};
    s.d_seg = (mcu_seg *)(void *)dev_copy(NULL, (size_t)B * sizeof *g / sizeof(float));
    die_on(cudaMemcpy(s.d_seg, g, (size_t)B * sizeof *g, cudaMemcpyHostToDevice), "upload");
    free(g);
    memset(&s.ch, 0, sizeof s.ch);
    s.ch.state = dev_copy(NULL, (size_t)(B * nch * state_floats));
    s.ch.dtsum = dev_copy(NULL, (size_t)(B * nch * per_chunk));
    s.ch.max_chunks_per_seg = nch;
    return s;
}
static void free_segment(segment *s) {
    cudaFree(s->d_seg), cudaFree(s->ch.state), cudaFree(s->ch.dtsum);
}

/* Median time (ms) of RUNS runs of run(arg), the state zeroed before each (untimed). */
static float time_runs(void (*run)(void *), void *arg, float *state, size_t state_floats) {
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    float t[RUNS];
    for (int i = 0; i < RUNS; i++) {
        cudaMemset(state, 0, state_floats * sizeof(float));
        cudaEventRecord(e0, 0);
        run(arg);
        cudaEventRecord(e1, 0);
        die_on(cudaEventSynchronize(e1), "a timed run");
        cudaEventElapsedTime(&t[i], e0, e1);
    }
    die_on(cudaGetLastError(), "a launch");
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    qsort(t, RUNS, sizeof t[0], cmp_float);
    return t[RUNS / 2];
}

typedef struct scan_case {
    mcu_scan_args a;
    segment s;
    int64_t B;
} scan_case;
static void run_scan(void *p) {
    scan_case *c = p;
    mcu_selective_scan(&c->a, c->s.d_seg, c->B, &c->s.ch, 0);
}

/* B segments of n tokens, channels E, N 16. */
static void bench_scan(int64_t B, int64_t n, int64_t E, double ceil_gbs) {
    const int64_t N = 16, T = B * n, EN = E * N;
    float *x = host_rand((size_t)(T * E), 1.0f, 0.0f), *z = host_rand((size_t)(T * E), 1.0f, 0.0f);
    float *dt = host_rand((size_t)(T * E), 1.0f, -2.0f), *BC = host_rand((size_t)(T * 2 * N), 1.0f, 0.0f);
    float *A = host_rand((size_t)EN, 4.0f, -5.0f), *D = host_rand((size_t)E, 1.0f, 0.0f);
    float *bias = host_rand((size_t)E, 0.5f, 0.0f), *y = malloc((size_t)(T * E) * sizeof *y);
    scan_case c = {.B = B};
    float *d_state = dev_copy(NULL, (size_t)(B * EN));
    c.a = (mcu_scan_args){.E = E, .N = N, .x = dev_copy(x, (size_t)(T * E)), .x_stride = E,
                          .z = dev_copy(z, (size_t)(T * E)), .z_stride = E, .dt = dev_copy(dt, (size_t)(T * E)),
                          .dt_stride = E, .B = NULL, .C = NULL, .bc_stride = 2 * N, .A = dev_copy(A, (size_t)EN),
                          .D = dev_copy(D, (size_t)E), .dt_bias = dev_copy(bias, (size_t)E),
                          .y = dev_copy(NULL, (size_t)(T * E)), .y_stride = E};
    float *d_bc = dev_copy(BC, (size_t)(T * 2 * N));
    c.a.B = d_bc, c.a.C = d_bc + N;
    cudaMemset(c.a.y, 0xff, (size_t)(T * E) * sizeof(float)); /* NaN: an output left unwritten fails the check */
    c.s = make_segment(B, n, d_state, EN, E);
    const float ms = time_runs(run_scan, &c, d_state, (size_t)(B * EN));
    double err = -1;
    if (T <= 8192) { /* the CPU reference takes seconds beyond */
        float *state = calloc((size_t)EN, sizeof *state), *got = malloc((size_t)(T * E) * sizeof *got);
        for (int64_t i = 0; i < B; i++) {
            const int64_t o = i * n;
            memset(state, 0, (size_t)EN * sizeof *state);
            mc_scan_args r = {n, E, N, x + o * E, E, z + o * E, E, dt + o * E, E, BC + o * 2 * N, BC + o * 2 * N + N, 2 * N,
                              A, D, bias, y + o * E, E, state};
            mc_selective_scan(&r);
        }
        die_on(cudaMemcpy(got, c.a.y, (size_t)(T * E) * sizeof *got, cudaMemcpyDeviceToHost), "download");
        err = checked(rel_l2(got, y, (size_t)(T * E)), 1e-5);
        free(state), free(got);
    }
    const double bytes = 4.0 * (4.0 * T * E + 2.0 * T * N + 2.0 * B * EN);
    printf("scan %-22s D %4lld N %lld B %3lld L %6lld  %8.3f ms  %7.1f GB/s (%4.1f%% of copy)  rel. L2 vs CPU %s%.1e\n",
           n > 1 ? "(prefill)" : "(decode step)", (long long)E, (long long)N, (long long)B, (long long)n, ms,
           bytes / (ms * 1e-3) / 1e9, 100 * bytes / (ms * 1e-3) / 1e9 / ceil_gbs, err < 0 ? "(not checked) " : "",
           err < 0 ? 0.0 : err);
    cudaFree((void *)c.a.x), cudaFree((void *)c.a.z), cudaFree((void *)c.a.dt), cudaFree(d_bc), cudaFree((void *)c.a.A);
    cudaFree((void *)c.a.D), cudaFree((void *)c.a.dt_bias), cudaFree(c.a.y), cudaFree(d_state);
    free_segment(&c.s);
    free(x), free(z), free(dt), free(BC), free(A), free(D), free(bias), free(y);
}

typedef struct ssd_case {
    mcu_ssd_args a;
    segment s;
    int64_t B;
} ssd_case;
static void run_ssd(void *p) {
    ssd_case *c = p;
    mcu_ssd(&c->a, c->s.d_seg, c->B, &c->s.ch, 0);
}

/* B segments of n tokens, H heads, P 64, N 128, one group. */
static void bench_ssd(int64_t B, int64_t n, int64_t H, int tc, double ceil_gbs) {
    const int64_t P = 64, N = 128, E = H * P, T = B * n, EN = E * N;
    float *x = host_rand((size_t)(T * E), 1.0f, 0.0f), *BC = host_rand((size_t)(T * 2 * N), 1.0f, 0.0f);
    float *dt = host_rand((size_t)(T * H), 0.04f, 0.05f), *A = host_rand((size_t)H, 3.0f, -4.0f);
    float *y = malloc((size_t)(T * E) * sizeof *y);
    ssd_case c = {.B = B};
    float *d_state = dev_copy(NULL, (size_t)(B * EN)), *d_bc = dev_copy(BC, (size_t)(T * 2 * N));
    c.a = (mcu_ssd_args){.H = H, .P = P, .N = N, .G = 1, .tc = tc, .x = dev_copy(x, (size_t)(T * E)), .x_stride = E,
                         .B = d_bc, .C = d_bc + N, .bc_stride = 2 * N, .dt = dev_copy(dt, (size_t)(T * H)),
                         .dt_stride = H, .A = dev_copy(A, (size_t)H), .y = dev_copy(NULL, (size_t)(T * E)), .y_stride = E};
    cudaMemset(c.a.y, 0xff, (size_t)(T * E) * sizeof(float));
    c.s = make_segment(B, n, d_state, EN, H);
    const float ms = time_runs(run_ssd, &c, d_state, (size_t)(B * EN));
    double err = -1;
    if (T <= 8192) {
        const int64_t CL = 64;
        float *state = calloc((size_t)EN, sizeof *state), *got = malloc((size_t)(T * E) * sizeof *got);
        float *scratch = malloc((size_t)(CL * CL + 2 * CL) * sizeof *scratch);
        for (int64_t i = 0; i < B; i++) {
            const int64_t o = i * n;
            memset(state, 0, (size_t)EN * sizeof *state);
            mc_ssd_args r = {n, H, P, N, 1, CL, 0, 0, x + o * E, E, BC + o * 2 * N, BC + o * 2 * N + N, 2 * N, dt + o * H, H,
                             A, y + o * E, E, state, scratch};
            mc_ssd_chunked(&r);
        }
        die_on(cudaMemcpy(got, c.a.y, (size_t)(T * E) * sizeof *got, cudaMemcpyDeviceToHost), "download");
        err = checked(rel_l2(got, y, (size_t)(T * E)), tc && n > 1 ? 1e-2 : 1e-5); /* bf16 operands: ~3e-3 */
        free(state), free(got), free(scratch);
    }
    const double bytes = 4.0 * (2.0 * T * E + 2.0 * T * N + T * H + 2.0 * B * EN);
    printf("ssd  %-22s H %4lld P %lld N %lld B %3lld L %6lld  %8.3f ms  %7.1f GB/s (%4.1f%% of copy)  rel. L2 vs CPU %s%.1e\n",
           n == 1 ? "(decode step)" : tc ? "(tensor cores, bf16)" : "(float32)", (long long)H, (long long)P, (long long)N,
           (long long)B, (long long)n, ms, bytes / (ms * 1e-3) / 1e9, 100 * bytes / (ms * 1e-3) / 1e9 / ceil_gbs,
           err < 0 ? "(not checked) " : "", err < 0 ? 0.0 : err);
    cudaFree((void *)c.a.x), cudaFree(d_bc), cudaFree((void *)c.a.dt), cudaFree((void *)c.a.A), cudaFree(c.a.y);
    cudaFree(d_state);
    free_segment(&c.s);
    free(x), free(BC), free(dt), free(A), free(y);
}

typedef struct gemv_case {
    float *out, *x;
    void *W;
    int64_t T, R, K;
} gemv_case;
static void run_gemv(void *p) {
    gemv_case *c = p;
    mcu_gemv(c->out, c->R, c->x, c->K, c->T, c->W, 1, c->R, c->K, 0.0f, 0);
}

/* The decode product out (T, R) = x (T, K) W^T, W bf16 (R, K): GB/s of weights streamed.
 * Several weight copies in rotation so that each run reads from DRAM, not the L2. */
static void bench_gemv(int64_t T, int64_t R, int64_t K, double ceil_gbs) {
    enum { COPIES = 4 };
    float *w = host_rand((size_t)(R * K), 1.0f, 0.0f), *x = host_rand((size_t)(T * K), 1.0f, 0.0f);
    uint16_t *w16 = malloc((size_t)(R * K) * sizeof *w16);
    for (int64_t i = 0; i < R * K; i++) {
        uint32_t u;
        memcpy(&u, &w[i], 4);
        w16[i] = (uint16_t)(u >> 16), u &= 0xffff0000u, memcpy(&w[i], &u, 4); /* w as its bf16 value */
    }
    gemv_case c[COPIES];
    for (int k = 0; k < COPIES; k++) {
        c[k] = (gemv_case){dev_copy(NULL, (size_t)(T * R)), dev_copy(x, (size_t)(T * K)), NULL, T, R, K};
        cudaMemset(c[k].out, 0xff, (size_t)(T * R) * sizeof(float));
        die_on(cudaMalloc(&c[k].W, (size_t)(R * K) * 2), "cudaMalloc");
        die_on(cudaMemcpy(c[k].W, w16, (size_t)(R * K) * 2, cudaMemcpyHostToDevice), "upload");
    }
    float t[RUNS];
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    for (int i = 0; i < RUNS; i++) {
        cudaEventRecord(e0, 0);
        run_gemv(&c[i % COPIES]);
        cudaEventRecord(e1, 0);
        die_on(cudaEventSynchronize(e1), "a timed run");
        cudaEventElapsedTime(&t[i], e0, e1);
    }
    qsort(t, RUNS, sizeof t[0], cmp_float);
    float *got = malloc((size_t)(T * R) * sizeof *got), *want = malloc((size_t)(T * R) * sizeof *want);
    die_on(cudaMemcpy(got, c[0].out, (size_t)(T * R) * sizeof *got, cudaMemcpyDeviceToHost), "download");
    for (int64_t i = 0; i < T; i++)
        for (int64_t r = 0; r < R; r++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (double)x[i * K + k] * w[r * K + k];
            want[i * R + r] = (float)acc;
        }
    const double ms = t[RUNS / 2], bytes = 2.0 * R * K;
    printf("gemv (bf16 weights)    R %5lld K %5lld T %lld  %8.3f ms  %7.1f GB/s (%4.1f%% of copy)  rel. L2 vs CPU %.1e\n",
           (long long)R, (long long)K, (long long)T, ms, bytes / (ms * 1e-3) / 1e9, 100 * bytes / (ms * 1e-3) / 1e9 / ceil_gbs,
           checked(rel_l2(got, want, (size_t)(T * R)), 1e-5));
    for (int k = 0; k < COPIES; k++) cudaFree(c[k].out), cudaFree(c[k].x), cudaFree(c[k].W);
    free(w), free(x), free(w16), free(got), free(want);
}

int main(int argc, char **argv) {
    int64_t lens[8] = {2048, 8192, 32768};
    int n_lens = 3;
    if (argc > 1) {
        n_lens = 0;
        for (int i = 1; i < argc && n_lens < 8; i++) lens[n_lens++] = atoll(argv[i]);
    }
    struct cudaDeviceProp prop;
    die_on(cudaGetDeviceProperties(&prop, 0), "no usable GPU");
    const double ceil_gbs = copy_ceiling();
    printf("%s, %d SMs; device-to-device copy %.0f GB/s (read + write)\n", prop.name, prop.multiProcessorCount, ceil_gbs);
    for (int i = 0; i < n_lens; i++) bench_scan(1, lens[i], 4096, ceil_gbs);
    bench_scan(1, 1, 1536, ceil_gbs);
    bench_scan(128, 1, 1536, ceil_gbs);
    for (int i = 0; i < n_lens; i++) bench_ssd(1, lens[i], 64, 0, ceil_gbs);
    for (int i = 0; i < n_lens; i++) bench_ssd(1, lens[i], 64, 1, ceil_gbs);
    bench_ssd(1, 1, 24, 0, ceil_gbs);
    bench_ssd(128, 1, 24, 0, ceil_gbs);
    bench_gemv(1, 8512, 2048, ceil_gbs); /* mamba2-1.3b in_proj */
    bench_gemv(1, 2048, 4096, ceil_gbs); /* out_proj */
    bench_gemv(8, 8512, 2048, ceil_gbs);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
