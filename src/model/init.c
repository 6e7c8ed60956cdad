/* init.c — randomly initialized models with the exact shapes of released checkpoints
 * (for benchmarks without downloads; training starts from the same init). Values
 * follow mamba_ssm's initialization: PyTorch's default uniform for linear and conv
 * layers, out_proj scaled by 1/sqrt(n_layer), embedding N(0, 0.02), A_log = log(1..N)
 * (Mamba-1) or log U(1, 16) (Mamba-2), D = 1, dt bias = softplus^-1 of a log-uniform
 * dt in [1e-3, 1e-1] floored at 1e-4, norms 1. Written in the transformers layout;
 * large matrices in the chosen dtype, the small SSM parameters in f32. Tensors are
 * generated and written piece by piece (a 2.8B model never sits in memory) into a
 * temporary folder renamed into place at the end. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/file.h"
#include "io/safetensors_write.h"
#include "mambac.h"

typedef struct preset {
    const char *name;
    mambac_arch arch;
    int32_t d_model, n_layer;
} preset;

static const preset presets[] = {
    {"mamba-130m", MAMBAC_ARCH_MAMBA1, 768, 24},   {"mamba-370m", MAMBAC_ARCH_MAMBA1, 1024, 48},
    {"mamba-790m", MAMBAC_ARCH_MAMBA1, 1536, 48},  {"mamba-1.4b", MAMBAC_ARCH_MAMBA1, 2048, 48},
    {"mamba-2.8b", MAMBAC_ARCH_MAMBA1, 2560, 64},  {"mamba2-130m", MAMBAC_ARCH_MAMBA2, 768, 24},
    {"mamba2-370m", MAMBAC_ARCH_MAMBA2, 1024, 48}, {"mamba2-780m", MAMBAC_ARCH_MAMBA2, 1536, 48},
    {"mamba2-1.3b", MAMBAC_ARCH_MAMBA2, 2048, 48}, {"mamba2-2.7b", MAMBAC_ARCH_MAMBA2, 2560, 64},
};

const char *mambac_preset_name(int i) {
    return i >= 0 && i < (int)(sizeof presets / sizeof presets[0]) ? presets[i].name : NULL;
}

mambac_init_params mambac_init_default_params(mambac_arch arch) {
    mambac_init_params p = {.arch = arch, .d_model = 768, .n_layer = 24, .d_conv = 4, .expand = 2, .dtype = MAMBAC_DTYPE_F32};
    if (arch == MAMBAC_ARCH_MAMBA1) {
        p.vocab_size = 50280, p.d_state = 16;
    } else {
        p.vocab_size = 50288, p.d_state = 128, p.head_dim = 64, p.n_groups = 1, p.chunk_size = 256;
    }
    return p;
}

mambac_status mambac_init_preset(const char *name, mambac_init_params *out, mambac_error *err) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) {
            *out = mambac_init_default_params(presets[i].arch);
            out->d_model = presets[i].d_model;
            out->n_layer = presets[i].n_layer;
            return MAMBAC_OK;
        }
    return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "unknown preset '%s' (see 'mambac init --list')", name);
}

/* ---- values ------------------------------------------------------------------------- */

typedef enum { V_UNIFORM, V_NORMAL, V_CONST, V_A_LOG1, V_A_LOG2, V_DT_BIAS } vkind;

typedef struct gen {
    vkind kind;
    float a;        /* uniform bound, normal std, or constant */
    int64_t period; /* A_log of Mamba-1: log(1 + i % N) */
    uint64_t rng;
} gen;

static double uniform01(uint64_t *s) { /* splitmix64 → [0, 1) */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}

static float next_value(gen *g, int64_t i) {
    switch (g->kind) {
    case V_UNIFORM: return (float)((2 * uniform01(&g->rng) - 1) * g->a);
    case V_NORMAL: { /* Box-Muller */
        double u1 = uniform01(&g->rng), u2 = uniform01(&g->rng);
        return (float)(sqrt(-2 * log(u1 > 0 ? u1 : 1e-300)) * cos(2 * M_PI * u2) * g->a);
    }
    case V_CONST: return g->a;
    case V_A_LOG1: return logf((float)(1 + i % g->period));
    case V_A_LOG2: return (float)log(1 + 15 * uniform01(&g->rng));
    case V_DT_BIAS: {
        double dt = exp(log(1e-3) + uniform01(&g->rng) * (log(1e-1) - log(1e-3)));
        if (dt < 1e-4) dt = 1e-4;
        return (float)(dt + log(-expm1(-dt))); /* softplus^-1 */
    }
    }
    return 0;
}

typedef struct spec {
    mc_st_decl d;
    gen g;
} spec;

static uint64_t name_seed(uint64_t seed, const char *name) {
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    return h;
}

static void add(spec *v, size_t *n, uint64_t seed, mambac_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, gen g,
                const char *fmt, int layer, const char *suffix) {
    spec *s = &v[(*n)++];
    memset(s, 0, sizeof *s);
    snprintf(s->d.name, sizeof s->d.name, fmt, layer, suffix);
    s->d.dtype = dt;
    s->d.ndim = ndim;
    s->d.shape[0] = d0, s->d.shape[1] = d1, s->d.shape[2] = d2;
    s->g = g;
    s->g.rng = name_seed(seed, s->d.name);
}

/* The tensors of the model with their initializers, in file order. */
static size_t build_specs(const mambac_init_params *p, spec *v) {
    size_t n = 0;
    const int64_t D = p->d_model, E = (int64_t)p->expand * p->d_model, N = p->d_state, K = p->d_conv;
    const int64_t R = p->dt_rank ? p->dt_rank : (p->d_model + 15) / 16, H = p->head_dim ? E / p->head_dim : 0;
    const int64_t G = p->n_groups, C = p->arch == MAMBAC_ARCH_MAMBA1 ? E : E + 2 * G * N;
    const int64_t in_rows = p->arch == MAMBAC_ARCH_MAMBA1 ? 2 * E : 2 * E + 2 * G * N + H;
    const mambac_dtype big = p->dtype, f32 = MAMBAC_DTYPE_F32;
    const uint64_t s = p->seed;
    const float out_scale = 1.0f / sqrtf((float)p->n_layer);
    add(v, &n, s, big, 2, p->vocab_size, D, 0, (gen){V_NORMAL, 0.02f, 0, 0}, "backbone.embeddings.weight%.0d%s", 0, "");
    for (int l = 0; l < p->n_layer; l++) {
        const char *f = "backbone.layers.%d.%s";
        add(v, &n, s, f32, 1, D, 0, 0, (gen){V_CONST, 1, 0, 0}, f, l, "norm.weight");
        add(v, &n, s, big, 2, in_rows, D, 0, (gen){V_UNIFORM, 1 / sqrtf((float)D), 0, 0}, f, l, "mixer.in_proj.weight");
        add(v, &n, s, f32, 3, C, 1, K, (gen){V_UNIFORM, 1 / sqrtf((float)K), 0, 0}, f, l, "mixer.conv1d.weight");
        add(v, &n, s, f32, 1, C, 0, 0, (gen){V_UNIFORM, 1 / sqrtf((float)K), 0, 0}, f, l, "mixer.conv1d.bias");
        if (p->arch == MAMBAC_ARCH_MAMBA1) {
            add(v, &n, s, big, 2, R + 2 * N, E, 0, (gen){V_UNIFORM, 1 / sqrtf((float)E), 0, 0}, f, l, "mixer.x_proj.weight");
            add(v, &n, s, big, 2, E, R, 0, (gen){V_UNIFORM, 1 / sqrtf((float)R), 0, 0}, f, l, "mixer.dt_proj.weight");
            add(v, &n, s, f32, 1, E, 0, 0, (gen){V_DT_BIAS, 0, 0, 0}, f, l, "mixer.dt_proj.bias");
            add(v, &n, s, f32, 2, E, N, 0, (gen){V_A_LOG1, 0, N, 0}, f, l, "mixer.A_log");
            add(v, &n, s, f32, 1, E, 0, 0, (gen){V_CONST, 1, 0, 0}, f, l, "mixer.D");
        } else {
            add(v, &n, s, f32, 1, H, 0, 0, (gen){V_DT_BIAS, 0, 0, 0}, f, l, "mixer.dt_bias");
            add(v, &n, s, f32, 1, H, 0, 0, (gen){V_A_LOG2, 0, 0, 0}, f, l, "mixer.A_log");
            add(v, &n, s, f32, 1, H, 0, 0, (gen){V_CONST, 1, 0, 0}, f, l, "mixer.D");
            add(v, &n, s, f32, 1, E, 0, 0, (gen){V_CONST, 1, 0, 0}, f, l, "mixer.norm.weight");
        }
        add(v, &n, s, big, 2, D, E, 0, (gen){V_UNIFORM, out_scale / sqrtf((float)E), 0, 0}, f, l, "mixer.out_proj.weight");
    }
    add(v, &n, s, f32, 1, D, 0, 0, (gen){V_CONST, 1, 0, 0}, "backbone.norm_f.weight%.0d%s", 0, "");
    return n;
}

static cJSON *config_json(const mambac_init_params *p) {
    cJSON *c = cJSON_CreateObject();
    const int m1 = p->arch == MAMBAC_ARCH_MAMBA1;
    cJSON *arch = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(m1 ? "MambaForCausalLM" : "Mamba2ForCausalLM"));
    cJSON_AddStringToObject(c, "model_type", m1 ? "mamba" : "mamba2");
    cJSON_AddNumberToObject(c, "hidden_size", p->d_model);
    cJSON_AddNumberToObject(c, "num_hidden_layers", p->n_layer);
    cJSON_AddNumberToObject(c, "vocab_size", p->vocab_size);
    cJSON_AddNumberToObject(c, "state_size", p->d_state);
    cJSON_AddNumberToObject(c, "expand", p->expand);
    cJSON_AddNumberToObject(c, "conv_kernel", p->d_conv);
    cJSON_AddBoolToObject(c, "use_bias", 0);
    cJSON_AddBoolToObject(c, "use_conv_bias", 1);
    cJSON_AddNumberToObject(c, "layer_norm_epsilon", 1e-5);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", 1);
    cJSON_AddBoolToObject(c, "residual_in_fp32", 1);
    cJSON_AddNumberToObject(c, "bos_token_id", 0);
    cJSON_AddNumberToObject(c, "eos_token_id", 0);
    cJSON_AddNumberToObject(c, "pad_token_id", 0);
    cJSON_AddStringToObject(c, "dtype", mambac_dtype_name(p->dtype)[0] == 'b' ? "bfloat16" : p->dtype == MAMBAC_DTYPE_F16 ? "float16" : "float32");
    if (m1) {
        cJSON_AddNumberToObject(c, "intermediate_size", p->expand * p->d_model);
        if (p->dt_rank) cJSON_AddNumberToObject(c, "time_step_rank", p->dt_rank);
        else cJSON_AddStringToObject(c, "time_step_rank", "auto");
    } else {
        cJSON_AddNumberToObject(c, "num_heads", p->expand * p->d_model / p->head_dim);
        cJSON_AddNumberToObject(c, "head_dim", p->head_dim);
        cJSON_AddNumberToObject(c, "n_groups", p->n_groups);
        cJSON_AddNumberToObject(c, "chunk_size", p->chunk_size);
        cJSON_AddBoolToObject(c, "rms_norm", 1);
        cJSON *lim = cJSON_AddArrayToObject(c, "time_step_limit");
        cJSON_AddItemToArray(lim, cJSON_CreateRaw("0.0")); /* a float: transformers validates the type */
        cJSON *inf = cJSON_CreateObject();
        cJSON_AddStringToObject(inf, "__float__", "Infinity"); /* transformers' spelling of +inf */
        cJSON_AddItemToArray(lim, inf);
    }
    return c;
}

static mambac_status check_params(const mambac_init_params *p, mambac_error *err) {
    if (p->d_model < 1 || p->n_layer < 1 || p->vocab_size < 1 || p->d_state < 1 || p->d_conv < 1 || p->expand < 1 ||
        p->d_model > 65536 || p->n_layer > 4096 || p->vocab_size > (1 << 24) || p->d_state > 4096 || p->d_conv > 256)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "init: dimensions out of range");
    if (p->arch == MAMBAC_ARCH_MAMBA2 &&
        (p->head_dim < 1 || p->n_groups < 1 || p->chunk_size < 1 || (p->expand * p->d_model) % p->head_dim ||
         ((p->expand * p->d_model) / p->head_dim) % p->n_groups))
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "init: head_dim must divide expand*d_model and n_groups the heads");
    if (p->arch != MAMBAC_ARCH_MAMBA1 && p->arch != MAMBAC_ARCH_MAMBA2) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "init: unknown arch");
    return MAMBAC_OK;
}

static mambac_status write_text(const char *dir, const char *name, const char *text, mambac_error *err) {
    char *path = mc_path_join(dir, name);
    mc_atomic_file af;
    mambac_status st = path ? mc_atomic_open(&af, path, err) : mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    if (st == MAMBAC_OK) {
        st = mc_atomic_write(&af, text, strlen(text), err);
        if (st == MAMBAC_OK) st = mc_atomic_commit(&af, err);
        else mc_atomic_abort(&af);
    }
    free(path);
    return st;
}

static mambac_status write_weights(const mambac_init_params *p, const char *dir, mambac_error *err) {
    size_t cap = 4 + (size_t)p->n_layer * 12;
    spec *v = calloc(cap, sizeof *v);
    mc_st_decl *decls = calloc(cap, sizeof *decls);
    float *buf = malloc(65536 * sizeof(float));
    char *path = mc_path_join(dir, "model.safetensors");
    mambac_status st = v && decls && buf && path ? MAMBAC_OK : mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    size_t n = st == MAMBAC_OK ? build_specs(p, v) : 0;
    for (size_t i = 0; i < n; i++) decls[i] = v[i].d;
    mc_st_writer w;
    if (st == MAMBAC_OK) st = mc_st_writer_open(&w, path, decls, n, err);
    for (size_t i = 0; st == MAMBAC_OK && i < n; i++) {
        int64_t total = 1;
        for (int d = 0; d < v[i].d.ndim; d++) total *= v[i].d.shape[d];
        for (int64_t done = 0; st == MAMBAC_OK && done < total;) {
            int64_t k = total - done < 65536 ? total - done : 65536;
            for (int64_t j = 0; j < k; j++) buf[j] = next_value(&v[i].g, done + j);
            st = mc_st_writer_put(&w, buf, (size_t)k, err);
            done += k;
        }
        if (st != MAMBAC_OK) mc_st_writer_abort(&w);
    }
    if (st == MAMBAC_OK) st = mc_st_writer_close(&w, err);
    free(v), free(decls), free(buf), free(path);
    return st;
}

mambac_status mambac_model_write_init(const mambac_init_params *p, const char *dir, mambac_error *err) {
    mambac_status st = check_params(p, err);
    if (st != MAMBAC_OK) return st;
    struct stat sb;
    if (stat(dir, &sb) == 0 && !(S_ISDIR(sb.st_mode) && rmdir(dir) == 0)) /* an empty folder may be replaced */
        return mc_fail(err, MAMBAC_ERR_IO, "%s: already exists (not overwriting)", dir);
    mc_remove_stale_temps(dir); /* a killed init's folder */
    size_t n = strlen(dir) + 32;
    char *tmp = malloc(n);
    if (!tmp) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", dir, (long)getpid());
    if (mkdir(tmp, 0755) != 0) {
        st = mc_fail(err, MAMBAC_ERR_IO, "%s: cannot create: %s", dir, strerror(errno)); /* the user's name, not the temporary one */
        free(tmp);
        return st;
    }
    cJSON *cfg = config_json(p);
    char *text = cJSON_Print(cfg);
    cJSON_Delete(cfg);
    st = text ? write_text(tmp, "config.json", text, err) : mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    free(text);
    if (st == MAMBAC_OK) st = write_weights(p, tmp, err);
    if (st == MAMBAC_OK && rename(tmp, dir) != 0)
        st = errno == ENOTEMPTY || errno == EEXIST
                 ? mc_fail(err, MAMBAC_ERR_IO, "%s: created by another process meanwhile (not overwriting)", dir)
                 : mc_fail(err, MAMBAC_ERR_IO, "%s: cannot rename into place: %s", dir, strerror(errno));
    if (st != MAMBAC_OK) { /* leave nothing behind */
        char *p1 = mc_path_join(tmp, "config.json"), *p2 = mc_path_join(tmp, "model.safetensors");
        if (p1) unlink(p1);
        if (p2) unlink(p2);
        rmdir(tmp);
        free(p1), free(p2);
    }
    free(tmp);
    return st;
}
