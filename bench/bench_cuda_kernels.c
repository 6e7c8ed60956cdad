/* bench_cuda_kernels.c — kernel workbench for the CUDA backend (llm.c dev/cuda style): the
 * selective scan and the SSD
 *   - prefill at the shapes of shared/gpu-peers' kernel figures (batch 1; scan D 4096 N 16
 *     with z; SSD H 64 P 64 N 128 groups 1), L = 2k / 8k / 32k tokens in one segment;
 *   - one decode step of 1 and of 128 sequences at mamba-130m's scan (D 1536 N 16) and
 *     mamba2-130m's SSD (H 24 P 64 N 128) shapes, each sequence its own state;
 *   - the decode product (GEMV) at mamba2-1.3b's projection shapes, bf16 weights and q8_0 /
 *     q4_0 kept quantized (one or two rows a warp), and the dequantization of a quantized
 *     matrix to bf16 / float32 (the prefill products' tiles);
 * from zero states, each variant checked against the CPU reference (cpu/ops.h) before it is
 * timed, the device-to-device copy bandwidth measured in the same run as the ceiling.
 * Times: median of 9 runs by CUDA events. GB/s counts the compulsory traffic (inputs and
 * states read once, outputs and states written once, float32). Outputs start as NaN; a
 * check fails above its bound (float32 paths 1e-5, bf16 tensor-core SSD 1e-2), and the
 * "N passed, N failed" line and the exit status say so (scripts/test_cuda.sh runs it under
 * compute-sanitizer).
 *   bench_cuda_kernels [--only FAMILY] [L...]
 * FAMILY (for profiling one family): scan, scan-step, ssd-f32, ssd-tc, ssd-step, gemv, dequant, argmax;
 * a prefix selects several (ssd: every SSD case). */
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

/* Median time (ms) of RUNS runs of run(arg), the state zeroed and reset(arg) (when not
 * NULL: inputs a kernel consumes) before each, untimed. */
static float time_runs(void (*run)(void *), void (*reset)(void *), void *arg, float *state, size_t state_floats) {
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    float t[RUNS];
    for (int i = 0; i < RUNS; i++) {
        cudaMemset(state, 0, state_floats * sizeof(float));
        if (reset) reset(arg);
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
    const float *dt0; /* dt as made: the scan's chunked passes leave dt's softplus in its place */
    size_t dt_floats;
} scan_case;
static void run_scan(void *p) {
    scan_case *c = p;
    mcu_selective_scan(&c->a, c->s.d_seg, c->B, &c->s.ch, 0);
}
static void reset_scan(void *p) {
    scan_case *c = p;
    cudaMemcpy(c->a.dt, c->dt0, c->dt_floats * sizeof(float), cudaMemcpyDeviceToDevice);
}

/* B segments of n tokens, channels E, N 16; step: one-token segments by the step kernel
 * (mcu_scan_args.step). */
static void bench_scan(int64_t B, int64_t n, int64_t E, int step, double ceil_gbs) {
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
                          .y = dev_copy(NULL, (size_t)(T * E)), .y_stride = E, .step = step};
    float *d_bc = dev_copy(BC, (size_t)(T * 2 * N));
    c.a.B = d_bc, c.a.C = d_bc + N;
    cudaMemset(c.a.y, 0xff, (size_t)(T * E) * sizeof(float)); /* NaN: an output left unwritten fails the check */
    c.s = make_segment(B, n, d_state, EN, E);
    c.dt0 = dev_copy(dt, (size_t)(T * E)), c.dt_floats = (size_t)(T * E);
    const float ms = time_runs(run_scan, reset_scan, &c, d_state, (size_t)(B * EN));
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
           n > 1 ? "(prefill)" : step ? "(decode, step kernel)" : "(decode, scan kernel)", (long long)E, (long long)N, (long long)B, (long long)n, ms,
           bytes / (ms * 1e-3) / 1e9, 100 * bytes / (ms * 1e-3) / 1e9 / ceil_gbs, err < 0 ? "(not checked) " : "",
           err < 0 ? 0.0 : err);
    cudaFree((void *)c.a.x), cudaFree((void *)c.a.z), cudaFree(c.a.dt), cudaFree((void *)c.dt0), cudaFree(d_bc), cudaFree((void *)c.a.A);
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
    const float ms = time_runs(run_ssd, NULL, &c, d_state, (size_t)(B * EN));
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

typedef enum { W_BF16, W_Q8_0, W_Q4_0 } wfmt;
static const char *const wfmt_name[] = {"bf16", "q8_0", "q4_0"};

typedef struct gemv_case {
    float *out, *x, *nw;
    mcu_matrix W;
    int64_t T;
    int variant;
} gemv_case;
static void run_gemv(void *p) {
    gemv_case *c = p;
    mcu_gemv(c->out, c->W.R, c->x, c->W.K, c->T, &c->W, 0.0f, c->nw, 1e-5f, c->variant, 0);
}

static float f16_value(uint16_t h) { /* scales are normal f16 here */
    const uint32_t e = (h >> 10) & 31u, m = h & 1023u, u = ((uint32_t)(h & 0x8000u) << 16) | ((e + 112u) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Random weights of format f, (R, K): the device bytes (one copy) and their float values
 * (w, as the kernels must read them). Quantized: the layout of cuda_ops.h mcu_matrix. */
typedef struct host_weights {
    float *w;
    void *bytes, *scales;
    size_t n_bytes, n_scales;
} host_weights;
static host_weights make_weights(wfmt f, int64_t R, int64_t K) {
    host_weights h = {host_rand((size_t)(R * K), 1.0f, 0.0f), NULL, NULL, 0, 0};
    if (f == W_BF16) {
        uint16_t *w16 = malloc((size_t)(R * K) * 2);
        for (int64_t i = 0; i < R * K; i++) {
            uint32_t u;
            memcpy(&u, &h.w[i], 4);
            w16[i] = (uint16_t)(u >> 16), u &= 0xffff0000u, memcpy(&h.w[i], &u, 4); /* w as its bf16 value */
        }
        h.bytes = w16, h.n_bytes = (size_t)(R * K) * 2;
        return h;
    }
    const int q4 = f == W_Q4_0;
    const int64_t nb = K / 32, qb = q4 ? 16 : 32;
    uint8_t *q = malloc((size_t)(R * nb * qb));
    uint16_t *d = malloc((size_t)(R * nb) * 2);
    for (int64_t r = 0; r < R; r++)
        for (int64_t b = 0; b < nb; b++) {
            rng = rng * 1664525u + 1013904223u;
            const uint16_t h16 = (uint16_t)(0x1800u + (rng >> 22)); /* about 2^-9 .. 2^-8 */
            d[r * nb + b] = h16;
            const float sc = f16_value(h16);
            for (int64_t j = 0; j < 32; j++) {
                rng = rng * 1664525u + 1013904223u;
                const int v = q4 ? (int)(rng >> 28) : (int)(int8_t)(rng >> 24);
                float *wv = &h.w[r * K + 32 * b + j];
                if (q4) {
                    uint8_t *byte = &q[(r * nb + b) * 16 + j % 16];
                    *byte = (uint8_t)(j < 16 ? (*byte & 0xf0) | v : (*byte & 0x0f) | (v << 4));
                    *wv = sc * (float)(v - 8);
                } else {
                    q[(r * nb + b) * 32 + j] = (uint8_t)v;
                    *wv = sc * (float)v;
                }
            }
        }
    h.bytes = q, h.n_bytes = (size_t)(R * nb * qb), h.scales = d, h.n_scales = (size_t)(R * nb) * 2;
    return h;
}
static void *dev_bytes(const void *h, size_t n) {
    void *d;
    die_on(cudaMalloc(&d, n ? n : 1), "cudaMalloc");
    die_on(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice), "upload");
    return d;
}

/* The decode product out (T, R) = x (T, K) W^T in format f, mcu_gemv variant (0: the
 * library's choice), with the RMSNorm of x fused in when `norm`: GB/s of weights streamed.
 * Several weight copies in rotation so that each run reads from DRAM, not the L2. */
static void bench_gemv(wfmt f, int variant, int norm, int64_t T, int64_t R, int64_t K, double ceil_gbs) {
    enum { COPIES = 4 };
    static const mcu_wtype types[] = {MCU_W_BF16, MCU_W_Q8_0, MCU_W_Q4_0};
    host_weights hw = make_weights(f, R, K);
    float *x = host_rand((size_t)(T * K), 1.0f, 0.0f), *nw = host_rand((size_t)K, 0.5f, 1.0f);
    gemv_case c[COPIES];
    for (int k = 0; k < COPIES; k++) {
        c[k] = (gemv_case){dev_copy(NULL, (size_t)(T * R)), dev_copy(x, (size_t)(T * K)), norm ? dev_copy(nw, (size_t)K) : NULL,
                           {dev_bytes(hw.bytes, hw.n_bytes), hw.scales ? dev_bytes(hw.scales, hw.n_scales) : NULL, types[f], R, K},
                           T, variant};
        cudaMemset(c[k].out, 0xff, (size_t)(T * R) * sizeof(float));
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
    for (int64_t i = 0; i < T; i++) {
        double inv = 1.0;
        if (norm) {
            double ss = 0;
            for (int64_t k = 0; k < K; k++) ss += (double)x[i * K + k] * x[i * K + k];
            inv = 1.0 / sqrt(ss / (double)K + 1e-5);
        }
        for (int64_t r = 0; r < R; r++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (double)x[i * K + k] * (norm ? inv * nw[k] : 1.0) * hw.w[r * K + k];
            want[i * R + r] = (float)acc;
        }
    }
    const double ms = t[RUNS / 2], bytes = (double)(hw.n_bytes + hw.n_scales);
    char name[48];
    snprintf(name, sizeof name, "%s%s%s", wfmt_name[f], norm ? " + norm" : "", variant ? ", x global" : "");
    printf("gemv %-22s R %5lld K %5lld T %lld  %8.3f ms  %7.1f GB/s (%4.1f%% of copy)  rel. L2 vs CPU %.1e\n", name,
           (long long)R, (long long)K, (long long)T, ms, bytes / (ms * 1e-3) / 1e9, 100 * bytes / (ms * 1e-3) / 1e9 / ceil_gbs,
           checked(rel_l2(got, want, (size_t)(T * R)), 1e-5));
    for (int k = 0; k < COPIES; k++)
        cudaFree(c[k].out), cudaFree(c[k].x), cudaFree(c[k].nw), cudaFree((void *)c[k].W.w), cudaFree((void *)c[k].W.d);
    free(hw.w), free(hw.bytes), free(hw.scales), free(x), free(nw), free(got), free(want);
}

/* A quantized matrix dequantized to bf16 / float32 (the prefill products' tiles): GB/s of
 * quants read and values written; every value checked exactly (bf16: within rounding). */
static void bench_dequant(wfmt f, int out_bf16, int64_t R, int64_t K, double ceil_gbs) {
    host_weights hw = make_weights(f, R, K);
    const mcu_matrix q = {dev_bytes(hw.bytes, hw.n_bytes), dev_bytes(hw.scales, hw.n_scales),
                          f == W_Q4_0 ? MCU_W_Q4_0 : MCU_W_Q8_0, R, K};
    const size_t esz = out_bf16 ? 2 : 4;
    void *out;
    die_on(cudaMalloc(&out, (size_t)(R * K) * esz), "cudaMalloc");
    cudaMemset(out, 0xff, (size_t)(R * K) * esz);
    float t[RUNS];
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    for (int i = 0; i < RUNS; i++) {
        cudaEventRecord(e0, 0);
        mcu_dequant(out, out_bf16, &q, 0, R, 0);
        cudaEventRecord(e1, 0);
        die_on(cudaEventSynchronize(e1), "a timed run");
        cudaEventElapsedTime(&t[i], e0, e1);
    }
    qsort(t, RUNS, sizeof t[0], cmp_float);
    unsigned char *got = malloc((size_t)(R * K) * esz);
    die_on(cudaMemcpy(got, out, (size_t)(R * K) * esz, cudaMemcpyDeviceToHost), "download");
    double worst = 0;
    for (int64_t i = 0; i < R * K; i++) {
        float v;
        if (out_bf16) {
            uint16_t h;
            memcpy(&h, got + 2 * i, 2);
            const uint32_t u = (uint32_t)h << 16;
            memcpy(&v, &u, 4);
        } else {
            memcpy(&v, got + 4 * i, 4);
        }
        const double e = fabs((double)v - hw.w[i]) / (fabs(hw.w[i]) + 1e-30);
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e > worst ? e : worst;
    }
    const double ms = t[RUNS / 2], bytes = (double)(hw.n_bytes + hw.n_scales) + (double)(R * K) * esz;
    printf("dequant %s -> %-8s R %5lld K %5lld      %8.3f ms  %7.1f GB/s (%4.1f%% of copy)  max rel. error %.1e\n",
           wfmt_name[f], out_bf16 ? "bf16" : "float32", (long long)R, (long long)K, ms, bytes / (ms * 1e-3) / 1e9,
           100 * bytes / (ms * 1e-3) / 1e9 / ceil_gbs, checked(worst, out_bf16 ? 1.0 / 256 : 0.0));
    cudaFree(out), cudaFree((void *)q.w), cudaFree((void *)q.d);
    free(hw.w), free(hw.bytes), free(hw.scales), free(got);
}

/* The device argmax (the greedy token) against a plain loop, on rows made to trip it: ties
 * (the first wins), NaNs (never chosen), all NaN (0), all -inf, the maximum in the last
 * block of a row, and a batch of random rows; timed at 128 rows of 50 280. */
static void test_argmax(void) {
    enum { ROWS = 128, V = 50280 };
    float *lg = host_rand((size_t)ROWS * V, 4.0f, 0.0f);
    for (int64_t i = 0; i < V; i++) {
        lg[0 * V + i] = i % 7 == 3 ? 5.0f : 1.0f;             /* ties: the first 5 */
        lg[1 * V + i] = i % 2 ? NAN : (float)(i % 1000) - 2e3f; /* NaNs beside values */
        lg[2 * V + i] = NAN;                                    /* all NaN: 0 */
        lg[3 * V + i] = -INFINITY;                              /* all -inf: the first */
    }
    lg[4 * V + V - 1] = 100.0f; /* in the last, partial block */
    lg[1 * V + 5] = NAN, lg[1 * V + 7] = INFINITY;
    float *d = dev_copy(lg, (size_t)ROWS * V);
    uint64_t *keys, got[ROWS];
    die_on(cudaMalloc((void **)&keys, ROWS * sizeof *keys), "cudaMalloc");
    float t[RUNS];
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    for (int i = 0; i < RUNS; i++) {
        cudaEventRecord(e0, 0);
        mcu_argmax(keys, d, V, ROWS, V, 0);
        cudaEventRecord(e1, 0);
        die_on(cudaEventSynchronize(e1), "a timed run");
        cudaEventElapsedTime(&t[i], e0, e1);
    }
    qsort(t, RUNS, sizeof t[0], cmp_float);
    die_on(cudaMemcpy(got, keys, sizeof got, cudaMemcpyDeviceToHost), "download");
    int wrong = 0;
    for (int r = 0; r < ROWS; r++) {
        int32_t want = 0;
        float best = -INFINITY;
        int found = 0;
        for (int64_t i = 0; i < V; i++) {
            const float v = lg[(int64_t)r * V + i];
            if (v == v && (!found || v > best)) best = v, want = (int32_t)i, found = 1;
        }
        if (mcu_argmax_index(got[r]) != want) {
            if (wrong++ < 4) printf("  argmax row %d: %d, want %d\n", r, mcu_argmax_index(got[r]), want);
        }
    }
    printf("argmax %d rows of %d                     %8.3f ms  %d of %d rows wrong\n", ROWS, V, t[RUNS / 2], wrong, ROWS);
    checked(wrong, 0);
    cudaFree(d), cudaFree(keys);
    free(lg);
}

static const char *only; /* --only: the families run */
static int wanted(const char *family) { return !only || strncmp(family, only, strlen(only)) == 0; }

int main(int argc, char **argv) {
    int64_t lens[8] = {2048, 8192, 32768};
    int n_lens = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
        else if (n_lens < 8) lens[n_lens++] = atoll(argv[i]);
    }
    if (n_lens == 0) n_lens = 3;
    struct cudaDeviceProp prop;
    die_on(cudaGetDeviceProperties(&prop, 0), "no usable GPU");
    const double ceil_gbs = copy_ceiling();
    printf("%s, %d SMs; device-to-device copy %.0f GB/s (read + write)\n", prop.name, prop.multiProcessorCount, ceil_gbs);
    if (wanted("scan"))
        for (int i = 0; i < n_lens; i++) bench_scan(1, lens[i], 4096, 0, ceil_gbs);
    if (wanted("scan-step"))
        for (int step = 0; step <= 1; step++)
            bench_scan(1, 1, 1536, step, ceil_gbs), bench_scan(128, 1, 1536, step, ceil_gbs),
                bench_scan(128, 1, 4096, step, ceil_gbs);
    if (wanted("ssd-f32"))
        for (int i = 0; i < n_lens; i++) bench_ssd(1, lens[i], 64, 0, ceil_gbs);
    if (wanted("ssd-tc")) {
        for (int i = 0; i < n_lens; i++) bench_ssd(1, lens[i], 64, 1, ceil_gbs);
        bench_ssd(1, lens[n_lens - 1], 24, 1, ceil_gbs); /* mamba2-130m's heads */
    }
    if (wanted("ssd-step")) bench_ssd(1, 1, 24, 0, ceil_gbs), bench_ssd(128, 1, 24, 0, ceil_gbs);
    /* the decode products at mamba2-1.3b's in_proj and out_proj, activations staged in
     * shared memory (the library's choice) and read from global memory */
    for (wfmt f = W_BF16; f <= W_Q4_0; f++) {
        if (wanted("gemv")) {
            for (int v = 0; v <= MCU_GEMV_GLOBAL_X; v++) {
                bench_gemv(f, v, 0, 1, 8512, 2048, ceil_gbs);
                bench_gemv(f, v, 0, 1, 2048, 4096, ceil_gbs);
                bench_gemv(f, v, 1, 1, 8512, 2048, ceil_gbs); /* the norm fused in */
                bench_gemv(f, v, 0, 8, 8512, 2048, ceil_gbs); /* 8 rows: staged 64 KB, over the limit: x global */
            }
            bench_gemv(f, 0, 0, 1, 160, 4096, ceil_gbs); /* mamba-1.4b x_proj */
            bench_gemv(f, 0, 0, 3, 1536, 768, ceil_gbs); /* mamba-130m out_proj, 3 rows */
            bench_gemv(f, 0, 1, 8, 3072, 768, ceil_gbs); /* mamba-130m in_proj, 8 rows, norm */
        }
        if (f != W_BF16 && wanted("dequant")) {
            bench_dequant(f, 1, 8512, 2048, ceil_gbs);
            bench_dequant(f, 0, 8512, 2048, ceil_gbs);
        }
    }
    if (wanted("argmax")) test_argmax();
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
