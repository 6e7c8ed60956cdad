/* model.h — the loaded model as the forward pass sees it: configuration, the mapped
 * files, and per-layer pointers to weights. Large matrices stay in their stored dtype
 * (usually straight in the mmap); small SSM parameters are float32 copies in one arena,
 * A already turned into -exp(A_log). */
#ifndef MC_MODEL_H
#define MC_MODEL_H

#include "io/file.h"
#include "io/tensors.h"
#include "mambac.h"

/* A row-major (rows, cols) matrix in its stored dtype: y = W x reads row r at
 * data + r * cols * dtype_size. */
typedef struct mc_weight {
    mambac_dtype dtype;
    const void *data;
    int64_t rows, cols;
    int64_t x16_rows; /* q4_0 / q8_0: rows [0, x16_rows) repacked 16 at a time (repack_x16.h) */
} mc_weight;

typedef struct mc_layer {
    const float *norm;       /* (D) pre-mixer RMSNorm */
    mc_weight in_proj;       /* Mamba-1 (2E, D); Mamba-2 (2E + 2GN + H, D) */
    const float *in_proj_b;  /* NULL unless proj_bias */
    const float *conv_w;     /* (C, K): C = E (Mamba-1) or E + 2GN (Mamba-2) */
    const float *conv_b;     /* (C) or NULL */
    mc_weight x_proj;        /* Mamba-1: (R + 2N, E) */
    mc_weight dt_proj;       /* Mamba-1: (E, R) */
    const float *dt_bias;    /* Mamba-1: dt_proj.bias (E); Mamba-2: dt_bias (H) */
    const float *A;          /* -exp(A_log): Mamba-1 (E, N); Mamba-2 (H) */
    const float *D;          /* Mamba-1 (E); Mamba-2 (H) */
    const float *gnorm;      /* Mamba-2 gated RMSNorm weight (E), NULL when absent */
    mc_weight out_proj;      /* (D, E) */
    const float *out_proj_b; /* NULL unless proj_bias */
} mc_layer;

struct mambac_model {
    mambac_model_info info;
    char *dir;
    char **paths;      /* mapped weight files */
    mc_file *files;
    size_t nfiles;
    int no_mmap;       /* weight files read into memory (mambac_model_params.no_mmap) */
    mc_tensor_list tensors;
    mc_weight embed;   /* (V_rows, D) */
    mc_weight lm_head; /* (V_rows, D); the embedding itself when tied */
    const float *norm_f;
    mc_layer *layers;
    float *arena;      /* float32 copies of the small parameters */
    int a_is_neg_exp;  /* the file stores A = -exp(A_log) itself (GGUF), not A_log */
    char *path;        /* what was loaded: the folder, or the .gguf file */
    void **repacked;   /* CPU backend: buffers of the matrices repacked at load (repack_x16.h) */
    size_t n_repacked;
    const struct mc_backend *be; /* where it runs (backend/backend.h) */
    void *bmodel;                /* the backend's prepared weights, NULL for none */
    char backend_name[32];       /* "cpu", "cuda:0" */
    mambac_model_params params;  /* as loaded (strings not kept) */
    uint64_t fingerprint;        /* of the norms, D and dt_bias (weights.c): which model a state file came from */
};

/* Channels through the causal conv: Mamba-1 x only; Mamba-2 x, B and C. */
static inline int64_t mc_conv_channels(const mambac_model_info *c) {
    return c->arch == MAMBAC_ARCH_MAMBA1 ? c->d_inner : c->d_inner + 2 * (int64_t)c->n_groups * c->d_state;
}

/* Floats of SSM state per layer: Mamba-1 (E, N); Mamba-2 (H, P, N) = E * N too. */
static inline int64_t mc_ssm_state_floats(const mambac_model_info *c) {
    return (int64_t)c->d_inner * c->d_state;
}

/* Binds config + tensors into m (fills embed, layers, ...). Used by the loaders. */
mambac_status mc_model_bind(struct mambac_model *m, mambac_error *err);

/* GGUF (gguf_model.c): a model from a .gguf file (llama.cpp's mamba / mamba2 names and
 * keys; m->path set, file mapped into m->files), and the writer behind `mambac quantize`. */
int mc_is_gguf_file(const char *path);
mambac_status mc_gguf_model_load(struct mambac_model *m, mambac_error *err);
/* The metadata and tensor table of GGUF bytes in memory (m->path names them in
 * messages); mc_model_bind then finishes the model. Used by the loader and the fuzzer. */
mambac_status mc_gguf_model_parse(struct mambac_model *m, const void *data, size_t size, mambac_error *err);

#endif
