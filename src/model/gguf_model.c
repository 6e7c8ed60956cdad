/* gguf_model.c — Mamba models in GGUF files with llama.cpp's names and keys (what its
 * convert_hf_to_gguf.py and llama-quantize write for the `mamba` and `mamba2`
 * architectures), both ways:
 *  - loading: metadata → mambac_model_info, tensors renamed to the transformers names
 *    and reshaped to their shapes, then the common binder (weights.c);
 *  - writing (`mambac quantize`): any loaded model → GGUF, large matrices converted to
 *    the requested type, the small SSM parameters in f32, the tokenizer embedded.
 * Differences from the transformers layout, as llama.cpp's converter makes them:
 * ssm_a holds A = -exp(A_log); conv1d weights are (C, K); Mamba-2's A and D are
 * (H, 1), its gated-norm weight (G, E / G), its dt_bias is ssm_dt.bias; a tied LM head
 * is simply absent (output.weight). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant.h"
#include "core/threadpool.h"
#include "io/file.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/model.h"
#include "model/repack_x16.h"

int mc_is_gguf_file(const char *path) {
    const size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".gguf") == 0) return 1;
    int fd;
    mambac_error err;
    if (mc_open_regular(path, &fd, &err) != MAMBAC_OK) return 0; /* a folder, a FIFO, ...: not a GGUF file */
    char magic[4] = {0};
    const int ok = read(fd, magic, 4) == 4 && memcmp(magic, "GGUF", 4) == 0;
    close(fd);
    return ok;
}

/* GGUF per-layer suffix → transformers suffix (after "backbone.layers.N."). */
static const char *layer_name(const char *suffix, mambac_arch arch) {
    static const char *map[][2] = {
        {"attn_norm.weight", "norm.weight"},         {"ssm_in.weight", "mixer.in_proj.weight"},
        {"ssm_in.bias", "mixer.in_proj.bias"},       {"ssm_conv1d.weight", "mixer.conv1d.weight"},
        {"ssm_conv1d.bias", "mixer.conv1d.bias"},    {"ssm_x.weight", "mixer.x_proj.weight"},
        {"ssm_dt.weight", "mixer.dt_proj.weight"},   {"ssm_a", "mixer.A_log"},
        {"ssm_d", "mixer.D"},                        {"ssm_norm.weight", "mixer.norm.weight"},
        {"ssm_out.weight", "mixer.out_proj.weight"}, {"ssm_out.bias", "mixer.out_proj.bias"},
    };
    if (strcmp(suffix, "ssm_dt.bias") == 0) return arch == MAMBAC_ARCH_MAMBA1 ? "mixer.dt_proj.bias" : "mixer.dt_bias";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(suffix, map[i][0]) == 0) return map[i][1];
    return NULL;
}

/* Renames and reshapes the GGUF tensors in place into the transformers layout. */
static mambac_status rename_tensors(struct mambac_model *m, mambac_error *err) {
    const mambac_arch arch = m->info.arch;
    for (size_t i = 0; i < m->tensors.n; i++) {
        mc_tensor_entry *e = &m->tensors.v[i];
        char hf[256];
        const char *top = strcmp(e->name, "token_embd.weight") == 0    ? "backbone.embeddings.weight"
                          : strcmp(e->name, "output_norm.weight") == 0 ? "backbone.norm_f.weight"
                          : strcmp(e->name, "output.weight") == 0      ? "lm_head.weight"
                                                                       : NULL;
        int layer, used = 0;
        const char *suffix = NULL;
        if (top) {
            snprintf(hf, sizeof hf, "%s", top);
        } else if (sscanf(e->name, "blk.%d.%n", &layer, &used) == 1 && used > 0 && layer >= 0 &&
                   (suffix = layer_name(e->name + used, arch)) != NULL) {
            snprintf(hf, sizeof hf, "backbone.layers.%d.%s", layer, suffix);
        } else {
            return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: unexpected tensor '%s' for a %s model", e->file, e->name,
                           mambac_arch_name(arch));
        }
        /* Shapes: conv (C, K) → (C, 1, K); Mamba-2's (H, 1) and (G, E / G) → flat. */
        if (strstr(hf, "conv1d.weight") && e->ndim == 2) {
            e->shape[2] = e->shape[1];
            e->shape[1] = 1;
            e->ndim = 3;
        } else if (arch == MAMBAC_ARCH_MAMBA2 && e->ndim == 2 &&
                   (strstr(hf, "A_log") || strstr(hf, ".D") || strstr(hf, "mixer.norm.weight"))) {
            e->shape[0] *= e->shape[1];
            e->ndim = 1;
        }
        char *name = strdup(hf);
        if (!name) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
        free(e->name);
        e->name = name;
    }
    return mc_tensor_list_reindex(&m->tensors, err); /* two GGUF names for one tensor are refused here */
}

static int has_tensor(const mc_tensor_list *l, const char *name) { return mc_tensor_list_find(l, name) != NULL; }

/* mambac_model_info from the metadata. */
static mambac_status read_config(struct mambac_model *m, const mc_gguf *g, mambac_error *err) {
    mambac_model_info *c = &m->info;
    const char *path = m->path, *arch;
    size_t alen;
    memset(c, 0, sizeof *c);
    if (!mc_gguf_get_str(g, "general.architecture", &arch, &alen))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: no general.architecture", path);
    if (alen == 5 && memcmp(arch, "mamba", 5) == 0) c->arch = MAMBAC_ARCH_MAMBA1;
    else if (alen == 6 && memcmp(arch, "mamba2", 6) == 0) c->arch = MAMBAC_ARCH_MAMBA2;
    else
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not mamba or mamba2", path,
                       (int)(alen > 64 ? 64 : alen), arch);
    const char *a = c->arch == MAMBAC_ARCH_MAMBA1 ? "mamba" : "mamba2";
    struct { const char *key; int32_t *dst; int required; int64_t lo, hi; } ints[] = {
        {"embedding_length", &c->d_model, 1, 1, 1 << 20},   {"block_count", &c->n_layer, 1, 1, 4096},
        {"ssm.conv_kernel", &c->d_conv, 1, 1, 256},         {"ssm.inner_size", &c->d_inner, 1, 1, 1 << 20},
        {"ssm.state_size", &c->d_state, 1, 1, 4096},        {"ssm.time_step_rank", &c->dt_rank, 1, 1, 1 << 20},
        {"ssm.group_count", &c->n_groups, 0, 1, 1 << 20},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        char key[96];
        int64_t v;
        snprintf(key, sizeof key, "%s.%s", a, ints[i].key);
        if (!mc_gguf_get_int(g, key, &v)) {
            if (!ints[i].required) continue;
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: missing integer metadata '%s'", path, key);
        }
        if (v < ints[i].lo || v > ints[i].hi)
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: %s = %lld is out of range", path, key, (long long)v);
        *ints[i].dst = (int32_t)v;
    }
    char key[96];
    snprintf(key, sizeof key, "%s.ssm.dt_b_c_rms", a);
    const mc_gguf_kv *kv = mc_gguf_find(g, key);
    c->bcdt_rms = c->arch == MAMBAC_ARCH_MAMBA1 && kv && kv->type == MC_GGUF_BOOL && kv->data[0]; /* FalconMamba */
    double eps = 1e-5;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", a);
    if (mc_gguf_find(g, key) && !mc_gguf_get_float(g, key, &eps))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: %s is not a number", path, key);
    c->norm_eps = (float)eps;
    /* FalconMamba's dt / B / C norms: transformers' mixer_rms_eps, which llama.cpp's files
     * do not keep (llama.cpp uses the layer norm's epsilon there instead); mambac's files keep
     * it under a key of their own, and without it transformers' default (every released
     * FalconMamba has it) keeps the numbers transformers computes */
    double meps = 1e-6;
    snprintf(key, sizeof key, "%s.ssm.mixer_rms_epsilon", a);
    if (mc_gguf_find(g, key) && !mc_gguf_get_float(g, key, &meps))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: %s is not a number", path, key);
    if (c->bcdt_rms) c->mixer_rms_eps = (float)meps;
    if (c->arch == MAMBAC_ARCH_MAMBA2) {
        c->n_heads = c->dt_rank; /* llama.cpp stores the head count as the time step rank */
        c->dt_rank = 0;
        if (!c->n_groups) c->n_groups = 1;
        if (c->d_inner % c->n_heads)
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: inner size %d is not a multiple of %d heads", path, c->d_inner, c->n_heads);
        c->head_dim = c->d_inner / c->n_heads;
        c->chunk_size = 256;
        c->gated_norm = has_tensor(&m->tensors, "blk.0.ssm_norm.weight");
        c->dt_max_limit = INFINITY;
    } else {
        c->n_groups = 0;
    }
    c->conv_bias = has_tensor(&m->tensors, "blk.0.ssm_conv1d.bias");
    c->proj_bias = has_tensor(&m->tensors, "blk.0.ssm_in.bias");
    c->tied_embeddings = !has_tensor(&m->tensors, "output.weight");
    const mc_tensor_entry *emb = mc_tensor_list_find(&m->tensors, "token_embd.weight");
    if (!emb || emb->ndim != 2) return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: missing 2-D tensor 'token_embd.weight'", path);
    if (emb->shape[0] > (1 << 24)) return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: implausible vocabulary of %lld rows", path, (long long)emb->shape[0]);
    c->n_vocab_rows = (int32_t)emb->shape[0];
    const mc_gguf_kv *toks = mc_gguf_find(g, "tokenizer.ggml.tokens");
    c->vocab_size = toks && toks->type == MC_GGUF_ARRAY && toks->n > 0 && toks->n <= (uint64_t)c->n_vocab_rows
                        ? (int32_t)toks->n : c->n_vocab_rows;
    int64_t eos;
    c->eos_token_id = mc_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &eos) && eos >= 0 && eos < c->vocab_size ? (int32_t)eos : -1;
    c->layout = "gguf";
    c->format = "gguf";
    return mc_config_validate(path, c, err);
}

mambac_status mc_gguf_model_parse(struct mambac_model *m, const void *data, size_t size, mambac_error *err) {
    mc_gguf g;
    mambac_status st = mc_gguf_parse(data, size, m->path, &g, &m->tensors, err);
    if (st == MAMBAC_OK) st = read_config(m, &g, err);
    mc_gguf_free(&g);
    if (st == MAMBAC_OK) st = rename_tensors(m, err);
    m->a_is_neg_exp = 1;
    return st;
}

mambac_status mc_gguf_model_load(struct mambac_model *m, mambac_error *err) {
    m->files = calloc(1, sizeof *m->files);
    m->paths = calloc(1, sizeof *m->paths);
    if (!m->files || !m->paths || !(m->paths[0] = strdup(m->path))) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    mambac_status st = mc_file_load(m->path, m->no_mmap, &m->files[0], err);
    if (st != MAMBAC_OK) {
        free(m->paths[0]);
        return st;
    }
    m->nfiles = 1;
    return mc_gguf_model_parse(m, m->files[0].data, m->files[0].size, err);
}

/* ---- writing ------------------------------------------------------------------ */

/* The type a matrix is written in: the requested one when its rows are whole blocks;
 * else (as llama-quantize falls back) q8_0 when rows are whole 32-blocks, else f16. */
static mambac_dtype pick_type(mambac_dtype want, int64_t cols) {
    if (cols % mc_dtype_block(want) == 0) return want;
    if (mc_dtype_is_quant(want) && cols % 32 == 0) return MAMBAC_DTYPE_Q8_0;
    return mc_dtype_is_quant(want) ? MAMBAC_DTYPE_F16 : want;
}

typedef struct out_tensor {
    char name[96];
    int ndim;
    int64_t shape[3];
    mambac_dtype t;
    const mc_weight *w; /* a matrix, or */
    const float *f;     /* f32 values */
} out_tensor;

typedef struct out_list {
    out_tensor *v;
    size_t n;
} out_list;

static out_tensor *add_out(out_list *l, const char *name, int layer) {
    out_tensor *o = &l->v[l->n++];
    memset(o, 0, sizeof *o);
    if (layer >= 0) snprintf(o->name, sizeof o->name, "blk.%d.%s", layer, name);
    else snprintf(o->name, sizeof o->name, "%s", name);
    return o;
}

static void add_mat(out_list *l, const char *name, int layer, const mc_weight *w, mambac_dtype want) {
    out_tensor *o = add_out(l, name, layer);
    o->ndim = 2;
    o->shape[0] = w->rows;
    o->shape[1] = w->cols;
    o->w = w;
    o->t = pick_type(want, w->cols);
}

static void add_f32(out_list *l, const char *name, int layer, const float *f, int ndim, int64_t d0, int64_t d1) {
    if (!f) return;
    out_tensor *o = add_out(l, name, layer);
    o->ndim = ndim;
    o->shape[0] = d0;
    o->shape[1] = d1;
    o->f = f;
    o->t = MAMBAC_DTYPE_F32;
}

/* Every tensor in llama.cpp's order and shapes. */
static void list_tensors(const struct mambac_model *m, mambac_dtype want, out_list *l) {
    const mambac_model_info *c = &m->info;
    const int64_t D = c->d_model, E = c->d_inner, C = mc_conv_channels(c), K = c->d_conv;
    const int m2 = c->arch == MAMBAC_ARCH_MAMBA2;
    add_mat(l, "token_embd.weight", -1, &m->embed, want);
    for (int i = 0; i < c->n_layer; i++) {
        const mc_layer *L = &m->layers[i];
        add_f32(l, "attn_norm.weight", i, L->norm, 1, D, 0);
        add_mat(l, "ssm_in.weight", i, &L->in_proj, want);
        add_f32(l, "ssm_in.bias", i, L->in_proj_b, 1, L->in_proj.rows, 0);
        add_f32(l, "ssm_conv1d.weight", i, L->conv_w, 2, C, K);
        add_f32(l, "ssm_conv1d.bias", i, L->conv_b, 1, C, 0);
        if (!m2) {
            add_mat(l, "ssm_x.weight", i, &L->x_proj, want);
            add_mat(l, "ssm_dt.weight", i, &L->dt_proj, want);
        }
        add_f32(l, "ssm_dt.bias", i, L->dt_bias, 1, m2 ? c->n_heads : E, 0);
        if (m2) {
            add_f32(l, "ssm_a", i, L->A, 2, c->n_heads, 1);
            add_f32(l, "ssm_d", i, L->D, 2, c->n_heads, 1);
            add_f32(l, "ssm_norm.weight", i, L->gnorm, 2, c->n_groups, E / c->n_groups);
        } else {
            add_f32(l, "ssm_a", i, L->A, 2, E, c->d_state);
            add_f32(l, "ssm_d", i, L->D, 1, E, 0);
        }
        add_mat(l, "ssm_out.weight", i, &L->out_proj, want);
        add_f32(l, "ssm_out.bias", i, L->out_proj_b, 1, D, 0);
    }
    add_f32(l, "output_norm.weight", -1, m->norm_f, 1, D, 0);
    if (m->lm_head.data != m->embed.data) add_mat(l, "output.weight", -1, &m->lm_head, want);
}

/* llama.cpp's general.file_type (LLAMA_FTYPE_*) for a requested type. */
static uint32_t file_type(mambac_dtype t) {
    switch (t) {
    case MAMBAC_DTYPE_F32: return 0;
    case MAMBAC_DTYPE_F16: return 1;
    case MAMBAC_DTYPE_Q4_0: return 2;
    case MAMBAC_DTYPE_Q8_0: return 7;
    case MAMBAC_DTYPE_Q4_K: return 14; /* Q4_K_S: all matrices q4_K */
    case MAMBAC_DTYPE_BF16: return 32;
    default: return 0;
    }
}

/* Tokenizer metadata from the folder's tokenizer.json: llama.cpp's gpt2 (byte-level
 * BPE) vocabulary, plus the whole file under tokenizer.huggingface.json (which mambac
 * prefers when reading, as it keeps the normalizer and added-token flags). */
static mambac_status add_tokenizer(mc_gguf_writer *w, const struct mambac_model *m, const char *dir, mambac_error *err) {
    char *path = mc_path_join(dir, "tokenizer.json"), *text = NULL;
    size_t len;
    if (!path) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    if (!mc_file_exists(path)) {
        free(path);
        return MAMBAC_OK; /* a model without a tokenizer: ids only */
    }
    mambac_status st = mc_file_read_all(path, 256u << 20, &text, &len, err);
    cJSON *root = st == MAMBAC_OK ? cJSON_ParseWithLength(text, len) : NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(model, "type"));
    if (st == MAMBAC_OK && (!root || !cJSON_IsObject(vocab) || !type || strcmp(type, "BPE") != 0))
        st = mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: only byte-level BPE tokenizers can be embedded in GGUF", path);
    const int64_t n = m->info.n_vocab_rows;
    const char **tok = st == MAMBAC_OK ? calloc((size_t)n, sizeof *tok) : NULL;
    size_t *tlen = st == MAMBAC_OK ? calloc((size_t)n, sizeof *tlen) : NULL;
    int32_t *ttype = st == MAMBAC_OK ? calloc((size_t)n, sizeof *ttype) : NULL;
    char *pads = st == MAMBAC_OK ? calloc((size_t)n, 24) : NULL;
    if (st == MAMBAC_OK && (!tok || !tlen || !ttype || !pads)) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    if (st == MAMBAC_OK) {
        for (const cJSON *it = vocab->child; it; it = it->next)
            if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble < (double)n) {
                tok[(int64_t)it->valuedouble] = it->string;
                ttype[(int64_t)it->valuedouble] = 1; /* normal */
            }
        for (const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "added_tokens") ? cJSON_GetObjectItemCaseSensitive(root, "added_tokens")->child : NULL; it; it = it->next) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
            const char *content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "content"));
            if (!cJSON_IsNumber(id) || !content || id->valuedouble < 0 || id->valuedouble >= (double)n) continue;
            tok[(int64_t)id->valuedouble] = content;
            ttype[(int64_t)id->valuedouble] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")) ? 3 : 4;
        }
        for (int64_t i = 0; i < n; i++) {
            if (!tok[i]) { /* padding rows, named as llama.cpp's converter names them */
                snprintf(pads + i * 24, 24, "[PAD%lld]", (long long)i);
                tok[i] = pads + i * 24;
                ttype[i] = 5; /* unused */
            }
            tlen[i] = strlen(tok[i]);
        }
        mc_gguf_add_str(w, "tokenizer.ggml.model", "gpt2");
        mc_gguf_add_str(w, "tokenizer.ggml.pre", "gpt-2");
        mc_gguf_add_str_array(w, "tokenizer.ggml.tokens", tok, tlen, (uint64_t)n);
        mc_gguf_add_i32_array(w, "tokenizer.ggml.token_type", ttype, (uint64_t)n);
        /* merges: "a b" strings (newer files store [a, b] pairs: joined the same way) */
        const int nm = cJSON_GetArraySize(merges);
        char **ms = calloc((size_t)nm + 1, sizeof *ms);
        size_t *ml = calloc((size_t)nm + 1, sizeof *ml);
        int k = 0;
        for (const cJSON *it = merges ? merges->child : NULL; ms && ml && it; it = it->next) {
            if (cJSON_IsString(it)) ms[k] = strdup(it->valuestring);
            else if (cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) && cJSON_IsString(it->child->next)) {
                size_t a = strlen(it->child->valuestring), b = strlen(it->child->next->valuestring);
                if ((ms[k] = malloc(a + b + 2))) {
                    memcpy(ms[k], it->child->valuestring, a);
                    ms[k][a] = ' ';
                    memcpy(ms[k] + a + 1, it->child->next->valuestring, b + 1);
                }
            } else continue;
            if (!ms[k]) break;
            ml[k] = strlen(ms[k]);
            k++;
        }
        if (!ms || !ml || k != nm) st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: cannot read model.merges", path);
        else mc_gguf_add_str_array(w, "tokenizer.ggml.merges", (const char *const *)ms, ml, (uint64_t)k);
        for (int i = 0; ms && i < k; i++) free(ms[i]);
        free(ms);
        free(ml);
        mc_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", 0);
        char *hf = malloc(len + 1);
        if (hf) {
            memcpy(hf, text, len);
            hf[len] = 0;
            mc_gguf_add_str(w, "tokenizer.huggingface.json", hf);
            free(hf);
        }
    }
    free(tok);
    free(tlen);
    free(ttype);
    free(pads);
    cJSON_Delete(root);
    free(text);
    free(path);
    return st;
}

#define ROW_BLOCK 256

typedef struct conv_job {
    const mc_weight *W;
    mambac_dtype t;
    size_t dst_row;
    int64_t r0, max_cols;
    float *rows_f32; /* max_cols per thread */
    char *out;       /* ROW_BLOCK converted rows */
} conv_job;

static void convert_rows(void *arg, int64_t a, int64_t b, int thread) {
    const conv_job *j = arg;
    const mc_weight *W = j->W;
    float *row = j->rows_f32 + thread * j->max_cols;
    for (int64_t i = a; i < b; i++) {
        char *dst = j->out + (size_t)i * j->dst_row;
        mc_weight_row_f32(row, W, j->r0 + i);
        if (mc_dtype_is_quant(j->t)) mc_quantize_row(dst, row, j->t, W->cols);
        else if (j->t == MAMBAC_DTYPE_F32) memcpy(dst, row, (size_t)W->cols * 4);
        else
            for (int64_t k = 0; k < W->cols; k++) {
                uint16_t h = j->t == MAMBAC_DTYPE_BF16 ? mc_f32_to_bf16(row[k]) : mc_f32_to_f16(row[k]);
                memcpy(dst + 2 * k, &h, 2);
            }
    }
}

mambac_status mambac_model_write_gguf(const mambac_model *m, const char *path, mambac_dtype type, mambac_error *err) {
    return mambac_model_write_gguf_ex(m, path, type, NULL, NULL, err);
}

mambac_status mambac_model_write_gguf_ex(const mambac_model *m, const char *path, mambac_dtype type,
                                         void (*progress)(void *user, size_t done, size_t total, const char *name), void *user,
                                         mambac_error *err) {
    if (type != MAMBAC_DTYPE_F32 && type != MAMBAC_DTYPE_F16 && type != MAMBAC_DTYPE_BF16 && type != MAMBAC_DTYPE_Q8_0 &&
        type != MAMBAC_DTYPE_Q4_0 && type != MAMBAC_DTYPE_Q4_K)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "cannot write type %s (choose f32, f16, bf16, q8_0, q4_0 or q4_K)",
                       mambac_dtype_name(type));
    const mambac_model_info *c = &m->info;
    out_list l = {calloc((size_t)c->n_layer * 16 + 8, sizeof(out_tensor)), 0};
    if (!l.v) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    list_tensors(m, type, &l);
    mc_gguf_writer *w;
    mambac_status st = mc_gguf_writer_open(&w, path, err);
    if (st != MAMBAC_OK) {
        free(l.v);
        return st;
    }
    const char *a = mambac_arch_name(c->arch);
    char key[96];
#define KEY(s) (snprintf(key, sizeof key, "%s.%s", a, s), key)
    mc_gguf_add_str(w, "general.architecture", a);
    mc_gguf_add_str(w, "general.name", "mambac export");
    mc_gguf_add_u32(w, "general.quantization_version", 2);
    mc_gguf_add_u32(w, "general.alignment", 32);
    mc_gguf_add_u32(w, "general.file_type", file_type(type));
    mc_gguf_add_u32(w, KEY("context_length"), 1u << 20);
    mc_gguf_add_u32(w, KEY("embedding_length"), (uint32_t)c->d_model);
    mc_gguf_add_u32(w, KEY("feed_forward_length"), 0);
    mc_gguf_add_u32(w, KEY("attention.head_count"), 0);
    mc_gguf_add_u32(w, KEY("block_count"), (uint32_t)c->n_layer);
    mc_gguf_add_u32(w, KEY("ssm.conv_kernel"), (uint32_t)c->d_conv);
    mc_gguf_add_u32(w, KEY("ssm.inner_size"), (uint32_t)c->d_inner);
    mc_gguf_add_u32(w, KEY("ssm.state_size"), (uint32_t)c->d_state);
    mc_gguf_add_u32(w, KEY("ssm.time_step_rank"), (uint32_t)(c->arch == MAMBAC_ARCH_MAMBA2 ? c->n_heads : c->dt_rank));
    if (c->arch == MAMBAC_ARCH_MAMBA2) mc_gguf_add_u32(w, KEY("ssm.group_count"), (uint32_t)c->n_groups);
    else mc_gguf_add_bool(w, KEY("ssm.dt_b_c_rms"), c->bcdt_rms != 0);
    if (c->bcdt_rms) mc_gguf_add_f32(w, KEY("ssm.mixer_rms_epsilon"), c->mixer_rms_eps);
    mc_gguf_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
#undef KEY
    st = add_tokenizer(w, m, c->dir, err);
    if (c->eos_token_id >= 0) { /* GPT-NeoX models use <|endoftext|> for both */
        mc_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_token_id);
        mc_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->eos_token_id);
    }
    for (size_t i = 0; i < l.n; i++) mc_gguf_add_tensor(w, l.v[i].name, l.v[i].ndim, l.v[i].shape, l.v[i].t);
    /* Data: blocks of rows converted in parallel (source row → f32 → target type),
     * then written in order. */
    int64_t max_cols = 1;
    for (size_t i = 0; i < l.n; i++) max_cols = l.v[i].shape[l.v[i].ndim - 1] > max_cols ? l.v[i].shape[l.v[i].ndim - 1] : max_cols;
    mc_pool *pool = mc_pool_new(mc_cpu_count());
    const int nt = mc_pool_threads(pool);
    conv_job j = {0};
    j.rows_f32 = malloc((size_t)(max_cols * nt) * sizeof(float));
    j.max_cols = max_cols;
    j.out = malloc((size_t)(ROW_BLOCK * (max_cols * 4 + 64)));
    if (st == MAMBAC_OK && (!j.rows_f32 || !j.out)) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < l.n && st == MAMBAC_OK; i++) {
        if (progress && i) progress(user, i, l.n, l.v[i - 1].name);
        const out_tensor *o = &l.v[i];
        if (o->f) {
            int64_t n = o->shape[0] * (o->ndim > 1 ? o->shape[1] : 1);
            mc_gguf_writer_data(w, o->f, (size_t)n * 4);
            continue;
        }
        const mc_weight *W = o->w;
        const size_t src_row = mc_dtype_row_bytes(W->dtype, W->cols);
        if (o->t == W->dtype && !W->x16_rows) {
            mc_gguf_writer_data(w, W->data, src_row * (size_t)W->rows);
            continue;
        }
        if (o->t == W->dtype) { /* repacked at load: the file gets the native rows back */
            for (int64_t r = 0; r < W->rows; r += ROW_BLOCK) {
                const int64_t n = W->rows - r < ROW_BLOCK ? W->rows - r : ROW_BLOCK;
                for (int64_t k = 0; k < n; k++) {
                    uint8_t *dst = (uint8_t *)j.out + (size_t)k * src_row;
                    const uint8_t *row = mc_weight_row_bytes(W, r + k, dst);
                    if (row != dst) memcpy(dst, row, src_row);
                }
                mc_gguf_writer_data(w, j.out, src_row * (size_t)n);
            }
            continue;
        }
        j.W = W, j.t = o->t, j.dst_row = mc_dtype_row_bytes(o->t, W->cols);
        for (int64_t r = 0; r < W->rows; r += ROW_BLOCK) {
            j.r0 = r;
            const int64_t n = W->rows - r < ROW_BLOCK ? W->rows - r : ROW_BLOCK;
            mc_pool_for(pool, n, 1, convert_rows, &j);
            mc_gguf_writer_data(w, j.out, j.dst_row * (size_t)n);
        }
    }
    mc_pool_free(pool);
    if (progress && st == MAMBAC_OK && l.n) progress(user, l.n, l.n, l.v[l.n - 1].name);
    free(j.rows_f32);
    free(j.out);
    free(l.v);
    mambac_error werr;
    mambac_status fst = mc_gguf_writer_finish(w, st != MAMBAC_OK, &werr);
    if (st == MAMBAC_OK && fst != MAMBAC_OK && err) *err = werr;
    return st != MAMBAC_OK ? st : fst;
}
