/* config.c — config.json (transformers `mamba`/`mamba2`, or mamba_ssm's MambaConfig)
 * → mambac_model_info. Defaults are those of the library that wrote each layout; every
 * dimension is range-checked so later size arithmetic cannot overflow. */
#include "model/config.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "io/json.h"

typedef struct reader {
    const cJSON *obj;
    const char *path;
    const char *prefix; /* "" or "ssm_cfg." for messages */
    mambac_error *err;
    mambac_status st;
} reader;

/* Integer field in [lo, hi]; `def` when absent (def < lo: required). */
static int32_t get_int(reader *r, const char *key, long long def, long long lo, long long hi) {
    if (r->st != MAMBAC_OK) return 0;
    long long v;
    int got = mc_json_get_int(r->obj, key, &v);
    if (got == 0) {
        if (def >= lo) return (int32_t)def;
        r->st = mc_fail(r->err, MAMBAC_ERR_FORMAT, "%s: missing field '%s%s'", r->path, r->prefix, key);
        return 0;
    }
    if (got < 0 || v < lo || v > hi) {
        r->st = mc_fail(r->err, MAMBAC_ERR_FORMAT, "%s: field '%s%s' must be an integer in [%lld, %lld]", r->path,
                        r->prefix, key, lo, hi);
        return 0;
    }
    return (int32_t)v;
}

static int get_bool(reader *r, const char *key, int def) {
    if (r->st != MAMBAC_OK) return def;
    int v;
    int got = mc_json_get_bool(r->obj, key, &v);
    if (got < 0) r->st = mc_fail(r->err, MAMBAC_ERR_FORMAT, "%s: field '%s%s' must be true or false", r->path, r->prefix, key);
    return got == 1 ? v : def;
}

static double get_num(reader *r, const char *key, double def) {
    if (r->st != MAMBAC_OK) return def;
    double v;
    int got = mc_json_get_num(r->obj, key, &v);
    if (got < 0) r->st = mc_fail(r->err, MAMBAC_ERR_FORMAT, "%s: field '%s%s' must be a number", r->path, r->prefix, key);
    return got == 1 ? v : def;
}

/* dt_rank / time_step_rank: an integer or "auto" (= ceil(d_model / 16)). */
static int32_t get_dt_rank(reader *r, const char *key, int32_t d_model) {
    if (r->st != MAMBAC_OK) return 0;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(r->obj, key);
    if (!it || cJSON_IsNull(it) || (cJSON_IsString(it) && strcmp(it->valuestring, "auto") == 0))
        return (d_model + 15) / 16;
    return get_int(r, key, -1, 1, 1 << 16);
}

/* A [min, max] pair of numbers (max may be Infinity in any of its spellings). */
static void get_limit(reader *r, const char *key, float *lo, float *hi) {
    if (r->st != MAMBAC_OK) return;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(r->obj, key);
    *lo = 0.0f;
    *hi = INFINITY;
    if (!it || cJSON_IsNull(it)) return;
    double a, b;
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !mc_json_number(it->child, &a) ||
        !mc_json_number(it->child->next, &b) || !(a >= 0 && b >= a)) {
        r->st = mc_fail(r->err, MAMBAC_ERR_FORMAT, "%s: field '%s%s' must be [min, max] with 0 <= min <= max", r->path,
                        r->prefix, key);
        return;
    }
    *lo = (float)a;
    *hi = (float)b;
}

static int32_t get_expand_inner(reader *r, const char *key, int32_t d_model) {
    double e = get_num(r, key, 2.0);
    if (r->st != MAMBAC_OK) return 0;
    double inner = e * d_model;
    if (!(e > 0) || inner != floor(inner) || inner < 1 || inner > (1 << 20)) {
        r->st = mc_fail(r->err, MAMBAC_ERR_FORMAT, "%s: field '%s%s' gives an invalid inner width", r->path, r->prefix, key);
        return 0;
    }
    return (int32_t)inner;
}

#define MAX_DIM (1 << 20)
#define MAX_VOCAB (1 << 24)

static void parse_hf(reader *r, const char *model_type, mambac_model_info *c) {
    c->layout = "transformers";
    c->arch = strcmp(model_type, "mamba2") == 0 ? MAMBAC_ARCH_MAMBA2 : MAMBAC_ARCH_MAMBA1;
    if (strcmp(model_type, "falcon_mamba") == 0) { /* Mamba-1 with weightless RMS norms on dt, B and C */
        c->bcdt_rms = 1;
        c->mixer_rms_eps = (float)get_num(r, "mixer_rms_eps", 1e-6);
    }
    c->d_model = get_int(r, "hidden_size", -1, 1, MAX_DIM);
    c->n_layer = get_int(r, "num_hidden_layers", -1, 1, 4096);
    c->vocab_size = get_int(r, "vocab_size", -1, 1, MAX_VOCAB);
    c->d_conv = get_int(r, "conv_kernel", 4, 1, 256);
    c->proj_bias = get_bool(r, "use_bias", 0);
    c->conv_bias = get_bool(r, "use_conv_bias", 1);
    c->norm_eps = (float)get_num(r, "layer_norm_epsilon", 1e-5);
    c->tied_embeddings = get_bool(r, "tie_word_embeddings", 1);
    c->eos_token_id = get_int(r, "eos_token_id", -1, -1, MAX_VOCAB);
    c->d_inner = get_expand_inner(r, "expand", c->d_model);
    if (c->arch == MAMBAC_ARCH_MAMBA1) {
        c->d_state = get_int(r, "state_size", 16, 1, 4096);
        c->dt_rank = get_dt_rank(r, "time_step_rank", c->d_model);
        int32_t inter = get_int(r, "intermediate_size", c->d_inner, 1, MAX_DIM);
        if (r->st == MAMBAC_OK && inter != c->d_inner)
            r->st = mc_fail(r->err, MAMBAC_ERR_FORMAT, "%s: intermediate_size %d differs from expand * hidden_size = %d",
                            r->path, inter, c->d_inner);
    } else {
        c->d_state = get_int(r, "state_size", 128, 1, 4096);
        c->n_heads = get_int(r, "num_heads", -1, 1, MAX_DIM);
        c->head_dim = get_int(r, "head_dim", 64, 1, MAX_DIM);
        c->n_groups = get_int(r, "n_groups", 1, 1, MAX_DIM);
        c->chunk_size = get_int(r, "chunk_size", 256, 1, 1 << 16);
        c->gated_norm = get_bool(r, "rms_norm", 1);
        c->norm_before_gate = get_bool(r, "norm_before_gate", 0);
        get_limit(r, "time_step_limit", &c->dt_min_limit, &c->dt_max_limit);
    }
}

static void parse_ssm(reader *r, const cJSON *root, mambac_model_info *c) {
    c->layout = "mamba_ssm";
    c->d_model = get_int(r, "d_model", -1, 1, MAX_DIM);
    c->n_layer = get_int(r, "n_layer", -1, 1, 4096);
    int32_t vocab = get_int(r, "vocab_size", -1, 1, MAX_VOCAB);
    int32_t pad = get_int(r, "pad_vocab_size_multiple", 8, 1, 1 << 16);
    if (r->st != MAMBAC_OK) return;
    c->vocab_size = vocab;
    c->n_vocab_rows = vocab % pad ? vocab + pad - vocab % pad : vocab; /* the padded embedding */
    c->tied_embeddings = get_bool(r, "tie_embeddings", 1);
    c->norm_eps = (float)get_num(r, "norm_epsilon", 1e-5);
    c->eos_token_id = get_int(r, "eos_token_id", -1, -1, MAX_VOCAB);
    if (r->st != MAMBAC_OK) return;
    if (!get_bool(r, "rms_norm", 1)) {
        r->st = mc_fail(r->err, MAMBAC_ERR_UNSUPPORTED, "%s: rms_norm false (LayerNorm blocks) is not supported", r->path);
        return;
    }
    long long d_inter = 0;
    if (mc_json_get_int(root, "d_intermediate", &d_inter) < 0 || d_inter != 0) {
        r->st = mc_fail(r->err, MAMBAC_ERR_UNSUPPORTED, "%s: models with MLP blocks (d_intermediate > 0) are not supported", r->path);
        return;
    }
    const cJSON *attn = cJSON_GetObjectItemCaseSensitive(root, "attn_layer_idx");
    if (cJSON_IsArray(attn) && cJSON_GetArraySize(attn) > 0) {
        r->st = mc_fail(r->err, MAMBAC_ERR_UNSUPPORTED, "%s: hybrid models (attention layers) are not supported", r->path);
        return;
    }
    const cJSON *ssm = cJSON_GetObjectItemCaseSensitive(root, "ssm_cfg");
    if (ssm && !cJSON_IsNull(ssm) && !cJSON_IsObject(ssm)) {
        r->st = mc_fail(r->err, MAMBAC_ERR_FORMAT, "%s: field 'ssm_cfg' must be an object", r->path);
        return;
    }
    static const cJSON empty = {0};
    reader s = {cJSON_IsObject(ssm) ? ssm : &empty, r->path, "ssm_cfg.", r->err, MAMBAC_OK};
    const char *layer = mc_json_get_str(s.obj, "layer");
    if (layer && strcmp(layer, "Mamba1") != 0 && strcmp(layer, "Mamba2") != 0) {
        r->st = mc_fail(r->err, MAMBAC_ERR_UNSUPPORTED, "%s: unknown ssm_cfg.layer '%s' (expected Mamba1 or Mamba2)", r->path, layer);
        return;
    }
    c->arch = layer && strcmp(layer, "Mamba2") == 0 ? MAMBAC_ARCH_MAMBA2 : MAMBAC_ARCH_MAMBA1;
    c->d_conv = get_int(&s, "d_conv", 4, 1, 256);
    c->d_inner = get_expand_inner(&s, "expand", c->d_model);
    c->conv_bias = get_bool(&s, "conv_bias", 1);
    c->proj_bias = get_bool(&s, "bias", 0);
    if (c->arch == MAMBAC_ARCH_MAMBA1) {
        c->d_state = get_int(&s, "d_state", 16, 1, 4096);
        c->dt_rank = get_dt_rank(&s, "dt_rank", c->d_model);
    } else {
        c->d_state = get_int(&s, "d_state", 128, 1, 4096);
        c->head_dim = get_int(&s, "headdim", 64, 1, MAX_DIM);
        c->n_groups = get_int(&s, "ngroups", 1, 1, MAX_DIM);
        c->chunk_size = get_int(&s, "chunk_size", 256, 1, 1 << 16);
        c->gated_norm = get_bool(&s, "rmsnorm", 1);
        c->norm_before_gate = get_bool(&s, "norm_before_gate", 0);
        get_limit(&s, "dt_limit", &c->dt_min_limit, &c->dt_max_limit);
        long long d_ssm;
        if (s.st == MAMBAC_OK && mc_json_get_int(s.obj, "d_ssm", &d_ssm) == 1 && d_ssm != c->d_inner)
            s.st = mc_fail(r->err, MAMBAC_ERR_UNSUPPORTED, "%s: ssm_cfg.d_ssm smaller than the inner width is not supported", r->path);
        if (s.st == MAMBAC_OK && c->d_inner % c->head_dim)
            s.st = mc_fail(r->err, MAMBAC_ERR_FORMAT, "%s: inner width %d is not a multiple of ssm_cfg.headdim %d", r->path,
                           c->d_inner, c->head_dim);
        if (s.st == MAMBAC_OK) c->n_heads = c->d_inner / c->head_dim;
    }
    r->st = s.st;
}

/* Cross-field checks shared by both layouts. */
mambac_status mc_config_validate(const char *path, mambac_model_info *c, mambac_error *err) {
    if (!(c->norm_eps > 0 && c->norm_eps < 1))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: norm epsilon must be in (0, 1)", path);
    if (c->bcdt_rms && (c->arch != MAMBAC_ARCH_MAMBA1 || !(c->mixer_rms_eps > 0 && c->mixer_rms_eps < 1)))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: dt / B / C norms need a Mamba-1 model and an epsilon in (0, 1)", path);
    if (c->arch == MAMBAC_ARCH_MAMBA2) {
        if ((int64_t)c->n_heads * c->head_dim != c->d_inner)
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: num_heads %d * head_dim %d != inner width %d", path, c->n_heads,
                           c->head_dim, c->d_inner);
        if (c->n_heads % c->n_groups)
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: num_heads %d is not a multiple of n_groups %d", path, c->n_heads,
                           c->n_groups);
        if ((int64_t)c->n_groups * c->d_state > MAX_DIM)
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: n_groups * state_size too large", path);
    } else if (c->dt_rank > c->d_inner * 4) {
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: dt_rank %d is implausible", path, c->dt_rank);
    }
    if ((int64_t)c->d_inner * c->d_state > (1 << 26))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: state of %d x %d is too large", path, c->d_inner, c->d_state);
    return MAMBAC_OK;
}

mambac_status mc_config_parse(const char *text, size_t len, const char *path, mambac_model_info *c,
                              mambac_error *err) {
    memset(c, 0, sizeof *c);
    c->eos_token_id = -1;
    c->dt_max_limit = INFINITY;
    cJSON *root = mc_json_parse(text, len, path, err);
    if (!root) return MAMBAC_ERR_FORMAT;
    reader r = {root, path, "", err, MAMBAC_OK};
    if ((r.st = mc_json_unique_keys(root, path, err)) != MAMBAC_OK) {
        /* refused: read as one thing here and another by transformers */
    } else if (!cJSON_IsObject(root)) {
        r.st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: config is not a JSON object", path);
    } else {
        const char *mt = mc_json_get_str(root, "model_type");
        if (mt && (strcmp(mt, "mamba") == 0 || strcmp(mt, "mamba2") == 0 || strcmp(mt, "falcon_mamba") == 0))
            parse_hf(&r, mt, c);
        else if (mt)
            r.st = mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: unknown model_type '%.100s' (expected mamba, mamba2 or falcon_mamba)", path, mt);
        else if (cJSON_GetObjectItemCaseSensitive(root, "d_model"))
            parse_ssm(&r, root, c);
        else
            r.st = mc_fail(err, MAMBAC_ERR_FORMAT,
                           "%s: not a Mamba config (no model_type, and no d_model as in mamba_ssm configs)", path);
    }
    cJSON_Delete(root);
    return r.st == MAMBAC_OK ? mc_config_validate(path, c, err) : r.st;
}
