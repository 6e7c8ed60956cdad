/* test_load.c — checkpoint details that real folders contain, each turned on in a
 * copy of a fixture model and checked against the fixture's reference logits:
 * time_step_rank "auto", time_step_limit with a bare Infinity / a finite limit,
 * lm_head present but tied, an untied lm_head, embedding rows padded beyond
 * vocab_size, sharded safetensors with an index, a path to config.json itself, the
 * large matrices used straight from the mmap (or read into memory with no_mmap, which
 * survives the file changing under it), and the parameter count. */
#define _DEFAULT_SOURCE /* truncate */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/file.h"
#include "mambac.h"
#include "model/model.h"
#include "testutil.h"

#define TOL 1e-4

static const char *data_dir = MAMBAC_TEST_DATA;

/* Makes dir/<name> as a copy of fixture folder case/form, with config text replaced
 * when `config` is not NULL. Returns the folder path (malloc'd). */
static char *clone_model(const char *tmp, const char *name, const char *cse, const char *form, const char *config) {
    char src[512];
    snprintf(src, sizeof src, "%s/models/%s/%s", data_dir, cse, form);
    char *dst = path_in(tmp, name);
    mkdir(dst, 0755);
    CHECK(copy_dir_files(src, dst), "copy %s", src);
    if (config) {
        char *p = path_in(dst, "config.json");
        CHECK(write_file(p, config, strlen(config)), "write config");
        free(p);
    }
    return dst;
}

static char *fixture_config(const char *cse, const char *form) {
    char p[512];
    snprintf(p, sizeof p, "%s/models/%s/%s/config.json", data_dir, cse, form);
    return read_text(p);
}

/* Relative L2 of the model's logits against the case's reference (cols columns,
 * reference scaled by `scale`). */
static double logits_error(const mambac_model *m, const char *cse, double scale, int64_t cols) {
    char p[512];
    snprintf(p, sizeof p, "%s/models/%s/ref.safetensors", data_dir, cse);
    ref_file ref;
    if (!ref_open(&ref, p)) return INFINITY;
    int64_t T, RV, n;
    float *want = ref_f32(&ref, "logits", &T, &RV);
    int32_t *ids = ref_i32(&ref, "input_ids", &n);
    for (int64_t i = 0; i < T * RV; i++) want[i] = (float)(want[i] * scale);
    const mambac_model_info *c = mambac_model_get_info(m);
    float *got = malloc((size_t)(T * c->n_vocab_rows) * sizeof(float));
    mambac_context *ctx;
    mambac_state *st;
    mambac_error err;
    mambac_context_new(m, NULL, &ctx, &err);
    mambac_state_new(m, &st, &err);
    double e = INFINITY;
    if (mambac_eval(ctx, st, ids, (size_t)T, MAMBAC_LOGITS_ALL, got, &err) == MAMBAC_OK)
        e = rel_l2(got, c->n_vocab_rows, want, RV, T, cols ? cols : RV);
    else
        printf("eval failed: %s\n", err.msg);
    mambac_state_free(st);
    mambac_context_free(ctx);
    free(got);
    free(want);
    free(ids);
    ref_close(&ref);
    return e;
}

static mambac_model *load_ok(const char *dir, const char *what) {
    mambac_model *m = NULL;
    mambac_error err;
    mambac_status s = mambac_model_load(dir, &m, &err);
    CHECK(s == MAMBAC_OK, "%s: %s", what, err.msg);
    return s == MAMBAC_OK ? m : NULL;
}

static void test_dt_rank_auto(const char *tmp) {
    char *cfg = fixture_config("mamba1-tiny", "hf");
    char *c2 = json_set_field(cfg, "time_step_rank", "\"auto\"");
    char *dir = clone_model(tmp, "auto", "mamba1-tiny", "hf", c2);
    mambac_model *m = load_ok(dir, "time_step_rank auto");
    if (m) {
        CHECK(mambac_model_get_info(m)->dt_rank == 4, "auto dt_rank = ceil(64/16) = 4, got %d", mambac_model_get_info(m)->dt_rank);
        double e = logits_error(m, "mamba1-tiny", 1, 0);
        CHECK(e < TOL, "auto dt_rank logits error %.3g", e);
        mambac_model_free(m);
    }
    free(cfg), free(c2), free(dir);
}

static void test_time_step_limit(const char *tmp) {
    char *cfg = fixture_config("mamba2-tiny", "hf");
    char *bare = json_set_field(cfg, "time_step_limit", "[0.0, Infinity]");
    char *dir = clone_model(tmp, "inf", "mamba2-tiny", "hf", bare);
    mambac_model *m = load_ok(dir, "bare Infinity");
    if (m) {
        CHECK(isinf(mambac_model_get_info(m)->dt_max_limit), "bare Infinity read as +inf");
        double e = logits_error(m, "mamba2-tiny", 1, 0);
        CHECK(e < TOL, "bare Infinity logits error %.3g", e);
        mambac_model_free(m);
    }
    /* A finite upper limit must clamp dt, so the logits move away from the reference. */
    char *fin = json_set_field(cfg, "time_step_limit", "[0.0, 0.01]");
    char *dir2 = clone_model(tmp, "finite", "mamba2-tiny", "hf", fin);
    m = load_ok(dir2, "finite limit");
    if (m) {
        CHECK(fabsf(mambac_model_get_info(m)->dt_max_limit - 0.01f) < 1e-9f, "limit read");
        double e = logits_error(m, "mamba2-tiny", 1, 0);
        CHECK(e > 1e-3, "a dt clamp at 0.01 changes the logits (error %.3g)", e);
        mambac_model_free(m);
    }
    /* mamba_ssm spelling: ssm_cfg.dt_limit with a bare Infinity. */
    char *scfg = fixture_config("mamba2-tiny", "ssm");
    char *s2 = replace_once(scfg, "\"layer\": \"Mamba2\",", "\"layer\": \"Mamba2\", \"dt_limit\": [0.0, Infinity],");
    char *dir3 = clone_model(tmp, "ssm-inf", "mamba2-tiny", "ssm", s2);
    m = load_ok(dir3, "ssm dt_limit Infinity");
    if (m) {
        CHECK(isinf(mambac_model_get_info(m)->dt_max_limit), "ssm dt_limit read as +inf");
        mambac_model_free(m);
    }
    free(cfg), free(bare), free(dir), free(fin), free(dir2), free(scfg), free(s2), free(dir3);
}

/* Writes dir/model.safetensors = the fixture's tensors plus an lm_head.weight equal to
 * `scale` times the embedding. */
static void write_with_lm_head(const char *dir, float scale) {
    char src[512];
    snprintf(src, sizeof src, "%s/models/mamba1-tiny/hf/model.safetensors", data_dir);
    st_model sm;
    CHECK(st_model_open(&sm, src), "open fixture");
    st_tensor *emb = NULL;
    for (size_t i = 0; i < sm.n; i++)
        if (strcmp(sm.t[i].name, "backbone.embeddings.weight") == 0) emb = &sm.t[i];
    CHECK(emb != NULL, "embedding present");
    float *head = malloc(emb->nbytes);
    memcpy(head, emb->data, emb->nbytes);
    for (size_t i = 0; i < emb->nbytes / 4; i++) head[i] *= scale;
    sm.t[sm.n] = *emb;
    sm.t[sm.n].name = "lm_head.weight";
    sm.t[sm.n].data = head;
    char *p = path_in(dir, "model.safetensors");
    CHECK(write_safetensors(p, sm.t, sm.n + 1), "write");
    free(p);
    free(head);
    st_model_close(&sm);
}

static void test_lm_head(const char *tmp) {
    char *dir = clone_model(tmp, "tied-head", "mamba1-tiny", "hf", NULL);
    write_with_lm_head(dir, 1.0f);
    mambac_model *m = load_ok(dir, "tied with lm_head in the file");
    if (m) {
        double e = logits_error(m, "mamba1-tiny", 1, 0);
        CHECK(e < TOL, "tied + lm_head present: error %.3g", e);
        /* A tied head is counted once: same parameter count as without it in the file. */
        char orig[512];
        snprintf(orig, sizeof orig, "%s/models/mamba1-tiny/hf", data_dir);
        mambac_model *o = load_ok(orig, "fixture");
        if (o) CHECK(mambac_model_get_info(o)->n_params == mambac_model_get_info(m)->n_params, "tied head counted once");
        mambac_model_free(o);
        mambac_model_free(m);
    }
    char *cfg = fixture_config("mamba1-tiny", "hf");
    char *untied = json_set_field(cfg, "tie_word_embeddings", "false");
    char *dir2 = clone_model(tmp, "untied", "mamba1-tiny", "hf", untied);
    write_with_lm_head(dir2, 2.0f);
    m = load_ok(dir2, "untied lm_head");
    if (m) {
        /* The head is linear: twice the embedding gives exactly twice the logits. */
        double e = logits_error(m, "mamba1-tiny", 2.0, 0);
        CHECK(e < TOL, "untied lm_head = 2 * embedding gives 2 * logits: error %.3g", e);
        CHECK(!mambac_model_get_info(m)->tied_embeddings, "untied reported");
        mambac_model_free(m);
    }
    free(dir), free(cfg), free(untied), free(dir2);
}

static void test_padded_vocab(const char *tmp) {
    char *cfg = fixture_config("mamba2-tiny", "hf");
    char *c2 = json_set_field(cfg, "vocab_size", "508");
    char *dir = clone_model(tmp, "padded", "mamba2-tiny", "hf", c2);
    mambac_model *m = load_ok(dir, "rows beyond vocab_size");
    if (m) {
        const mambac_model_info *c = mambac_model_get_info(m);
        CHECK(c->vocab_size == 508 && c->n_vocab_rows == 512, "vocab %d rows %d", c->vocab_size, c->n_vocab_rows);
        double e = logits_error(m, "mamba2-tiny", 1, 508);
        CHECK(e < TOL, "padded: error %.3g", e);
        /* Padded ids are not valid input. */
        mambac_context *ctx;
        mambac_state *st;
        mambac_error err;
        mambac_context_new(m, NULL, &ctx, &err);
        mambac_state_new(m, &st, &err);
        int32_t id = 510;
        float lg[512];
        CHECK(mambac_eval(ctx, st, &id, 1, MAMBAC_LOGITS_LAST, lg, &err) == MAMBAC_ERR_INVALID_ARG, "padded id refused");
        /* Greedy never picks a padded id, even when its logit is the largest. */
        for (int i = 0; i < 512; i++) lg[i] = i < 508 ? 0.0f : 100.0f;
        lg[7] = 1.0f;
        mambac_sampler_params sp = mambac_sampler_default_params();
        sp.temp = 0;
        mambac_sampler *s;
        mambac_sampler_new(&sp, c->vocab_size, &s, &err);
        CHECK(mambac_sampler_sample(s, lg) == 7, "greedy skips padded ids");
        mambac_sampler_free(s);
        mambac_state_free(st);
        mambac_context_free(ctx);
        mambac_model_free(m);
    }
    free(cfg), free(c2), free(dir);
}

static void test_sharded(const char *tmp) {
    char src[512];
    snprintf(src, sizeof src, "%s/models/mamba2-tiny/hf/model.safetensors", data_dir);
    char *dir = path_in(tmp, "sharded");
    mkdir(dir, 0755);
    st_model sm;
    CHECK(st_model_open(&sm, src), "open");
    size_t half = sm.n / 2;
    char *p1 = path_in(dir, "model-00001-of-00002.safetensors"), *p2 = path_in(dir, "model-00002-of-00002.safetensors");
    CHECK(write_safetensors(p1, sm.t, half) && write_safetensors(p2, sm.t + half, sm.n - half), "write shards");
    size_t cap = 64 + sm.n * 128, k = 0;
    char *idx = malloc(cap);
    k += (size_t)snprintf(idx + k, cap - k, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (size_t i = 0; i < sm.n; i++)
        k += (size_t)snprintf(idx + k, cap - k, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", sm.t[i].name,
                              i < half ? 1 : 2);
    snprintf(idx + k, cap - k, "}}");
    char *pi = path_in(dir, "model.safetensors.index.json"), *pc = path_in(dir, "config.json");
    char *cfg = fixture_config("mamba2-tiny", "hf");
    CHECK(write_file(pi, idx, strlen(idx)) && write_file(pc, cfg, strlen(cfg)), "write index");
    mambac_model *m = load_ok(dir, "sharded");
    if (m) {
        double e = logits_error(m, "mamba2-tiny", 1, 0);
        CHECK(e < TOL, "sharded: error %.3g", e);
        mambac_model_free(m);
    }
    /* The config.json path itself works as -m. */
    m = load_ok(pc, "path to config.json");
    if (m) mambac_model_free(m);
    /* Shards a.safetensors and xa.safetensors, the index placing one tensor of xa in a:
     * refused (file names are compared whole, not as suffixes). */
    char *dir2 = path_in(tmp, "sharded-suffix");
    mkdir(dir2, 0755);
    char *q1 = path_in(dir2, "a.safetensors"), *q2 = path_in(dir2, "xa.safetensors");
    CHECK(write_safetensors(q1, sm.t, half) && write_safetensors(q2, sm.t + half, sm.n - half), "write suffix shards");
    k = (size_t)snprintf(idx, cap, "{\"weight_map\": {");
    for (size_t i = 0; i < sm.n; i++)
        k += (size_t)snprintf(idx + k, cap - k, "%s\"%s\": \"%s\"", i ? ", " : "", sm.t[i].name,
                              i < half || i == sm.n - 1 ? "a.safetensors" : "xa.safetensors");
    snprintf(idx + k, cap - k, "}}");
    char *qi = path_in(dir2, "model.safetensors.index.json"), *qc = path_in(dir2, "config.json");
    CHECK(write_file(qi, idx, strlen(idx)) && write_file(qc, cfg, strlen(cfg)), "write suffix index");
    mambac_error err;
    m = NULL;
    CHECK(mambac_model_load(dir2, &m, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "as the index says"),
          "a tensor of xa.safetensors indexed under a.safetensors refused: %s", err.msg);
    mambac_model_free(m);
    /* an index of 200 000 entries naming one shard, for tensors it lacks: read (each shard
     * opened once) and refused at its first missing tensor */
    enum { MANY = 200000 };
    char *big = malloc((size_t)MANY * 48 + 64);
    k = (size_t)sprintf(big, "{\"weight_map\": {");
    for (int i = 0; i < MANY; i++) k += (size_t)sprintf(big + k, "%s\"t%d\": \"a.safetensors\"", i ? ", " : "", i);
    sprintf(big + k, "}}");
    CHECK(write_file(qi, big, strlen(big)), "write a big index");
    m = NULL;
    CHECK(mambac_model_load(dir2, &m, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "'t0' is not in a.safetensors"),
          "an index of 200 000 entries: refused by its first missing tensor: %s", err.msg);
    mambac_model_free(m);
    free(big);
    free(dir2), free(q1), free(q2), free(qi), free(qc);
    st_model_close(&sm);
    free(dir), free(p1), free(p2), free(idx), free(pi), free(pc), free(cfg);
}

/* f32 matrices are used in place from the mapping; the parameter count adds up. */
static void test_mmap_and_counts(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/models/mamba1-bias/hf", data_dir);
    mambac_model *m = load_ok(dir, "mamba1-bias");
    if (!m) return;
    const unsigned char *lo = m->files[0].data, *hi = lo + m->files[0].size;
    const unsigned char *p = m->layers[0].in_proj.data;
    CHECK(p >= lo && p < hi, "in_proj points into the mapped file");
    const mambac_model_info *c = &m->info;
    int64_t sum = 0;
    for (size_t i = 0; i < m->tensors.n; i++) sum += (int64_t)(m->tensors.v[i].nbytes / 4);
    CHECK(c->n_params == sum, "n_params %lld equals the tensors' elements %lld", (long long)c->n_params, (long long)sum);
    CHECK(c->weight_bytes == sum * 4, "weight_bytes");
    mambac_model_free(m);
}

/* no_mmap: the weights read into memory give the fixture's logits, and still do after the
 * files are truncated and rewritten in place (a mapped model would die of SIGBUS); a GGUF
 * file the same. */
static void test_no_mmap(const char *tmp) {
    char src[512];
    snprintf(src, sizeof src, "%s/models/mamba2-tiny/hf", data_dir);
    char *dir = path_in(tmp, "no-mmap");
    mkdir(dir, 0755);
    CHECK(copy_dir_files(src, dir), "copy the fixture");
    mambac_model_params p = mambac_model_default_params();
    p.no_mmap = 1;
    mambac_model *m = NULL;
    mambac_error err;
    CHECK(mambac_model_load_ex(dir, &p, &m, &err) == MAMBAC_OK, "load with no_mmap: %s", err.msg);
    if (m) {
        CHECK(m->nfiles >= 1 && m->files[0].in_memory, "the weights are in memory");
        char *w = path_in(dir, "model.safetensors");
        CHECK(truncate(w, 0) == 0 && write_file(w, "x", 1), "truncate and rewrite the weights in place");
        free(w);
        double e = logits_error(m, "mamba2-tiny", 1, 0);
        CHECK(e < TOL, "no_mmap: the fixture's logits after the file changed under the model (error %.3g)", e);
        mambac_model_free(m);
    }
    char gg[512];
    snprintf(gg, sizeof gg, "%s/gguf/mamba1-tiny-f32.gguf", data_dir);
    char *g = path_in(tmp, "no-mmap.gguf");
    char *bytes = NULL;
    size_t n = 0;
    CHECK(mc_file_read_all(gg, 1u << 26, &bytes, &n, &err) == MAMBAC_OK && write_file(g, bytes, n), "copy a GGUF");
    m = NULL;
    CHECK(mambac_model_load_ex(g, &p, &m, &err) == MAMBAC_OK && m->files[0].in_memory, "GGUF with no_mmap: %s", err.msg);
    if (m) {
        CHECK(truncate(g, 100) == 0, "truncate the GGUF");
        double e = logits_error(m, "mamba1-tiny", 1, 0);
        CHECK(e < TOL, "GGUF no_mmap: the fixture's logits after truncation (error %.3g)", e);
        mambac_model_free(m);
    }
    free(bytes), free(g), free(dir);
}

int main(void) {
    char *tmp = make_temp_dir();
    CHECK(tmp != NULL, "temp dir");
    test_dt_rank_auto(tmp);
    test_time_step_limit(tmp);
    test_lm_head(tmp);
    test_padded_vocab(tmp);
    test_sharded(tmp);
    test_no_mmap(tmp);
    test_mmap_and_counts();
    CHECK(remove_temp_dir(tmp), "cleanup");
    free(tmp);
    return check_summary();
}
