/* test_bad_input.c — every kind of bad input gets a specific one-line error and never
 * a crash (run under ASan/UBSan in CI, which also catches leaks). Each case builds a
 * broken file in a temporary folder and checks the status and that the message names
 * the file, tensor or field at fault. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/threadpool.h"
#include "io/pickle.h"
#include "mambac.h"
#include "testutil.h"

static const char *data_dir = MAMBAC_TEST_DATA;
static char *tmp;
static int folder_no;

/* A fresh folder holding the config of fixture case/form (or `config` text). */
static char *new_folder(const char *cse, const char *form, const char *config) {
    char name[32];
    snprintf(name, sizeof name, "m%d", folder_no++);
    char *dir = path_in(tmp, name);
    mkdir(dir, 0755);
    char *cfg_text = NULL;
    if (!config) {
        char p[1024];
        snprintf(p, sizeof p, "%s/models/%s/%s/config.json", data_dir, cse, form);
        config = cfg_text = read_text(p);
    }
    char *cp = path_in(dir, "config.json");
    CHECK(write_file(cp, config, strlen(config)), "write config");
    free(cp);
    free(cfg_text);
    return dir;
}

static void expect_error(const char *dir, mambac_status want, const char *substr, const char *label) {
    mambac_model *m = NULL;
    mambac_error err = {{0}};
    mambac_status s = mambac_model_load(dir, &m, &err);
    CHECK(s == want, "%s: status %s, want %s (%s)", label, mambac_status_str(s), mambac_status_str(want), err.msg);
    CHECK(m == NULL, "%s: no model on error", label);
    CHECK(strstr(err.msg, substr) != NULL, "%s: message '%s' lacks '%s'", label, err.msg, substr);
    CHECK(strchr(err.msg, '\n') == NULL && err.msg[0], "%s: one non-empty line", label);
    if (m) mambac_model_free(m);
}

static char *fixture_path(const char *rel) {
    char *p = malloc(1024);
    snprintf(p, 1024, "%s/models/%s", data_dir, rel);
    return p;
}

static void put_file(const char *dir, const char *name, const void *data, size_t n) {
    char *p = path_in(dir, name);
    CHECK(write_file(p, data, n), "write %s", name);
    free(p);
}

static void put_header(const char *dir, uint64_t hlen_override, const char *header, const void *data, size_t n) {
    char *p = path_in(dir, "model.safetensors");
    CHECK(write_raw_safetensors(p, hlen_override ? hlen_override : strlen(header), header, data, n), "write");
    free(p);
}

/* ---- safetensors -------------------------------------------------------------- */

static void test_safetensors(void) {
    char *src = fixture_path("mamba1-tiny/hf/model.safetensors");
    mc_file f;
    mambac_error err;
    CHECK(mc_file_map(src, &f, &err) == MAMBAC_OK, "map fixture");
    char *d;

    d = new_folder("mamba1-tiny", "hf", NULL);
    put_file(d, "model.safetensors", f.data, f.size / 2);
    expect_error(d, MAMBAC_ERR_FORMAT, "truncated?", "truncated data");
    free(d);

    d = new_folder("mamba1-tiny", "hf", NULL);
    put_file(d, "model.safetensors", f.data, 100);
    expect_error(d, MAMBAC_ERR_FORMAT, "exceeds the file", "truncated header");
    free(d);

    d = new_folder("mamba1-tiny", "hf", NULL);
    put_file(d, "model.safetensors", f.data, 5);
    expect_error(d, MAMBAC_ERR_FORMAT, "no header length", "5-byte file");
    free(d);

    d = new_folder("mamba1-tiny", "hf", NULL);
    put_header(d, 1ull << 40, "{}", NULL, 0);
    expect_error(d, MAMBAC_ERR_FORMAT, "absurd safetensors header length", "absurd header length");
    free(d);

    static const float four[4] = {1, 2, 3, 4};
    struct { const char *header, *substr, *label; mambac_status st; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", "lie outside", "offsets outside the file", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         "'a' and 'b' overlap", "overlapping tensors", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "need 12 bytes", "wrongly sized tensor", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unknown dtype 'F7'", "unknown dtype", MAMBAC_ERR_UNSUPPORTED},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "invalid data_offsets", "reversed offsets", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "no valid data_offsets", "missing offsets", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "invalid dimension", "negative dimension", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "invalid dimension", "fractional dimension", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "has no dtype", "missing dtype", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         "appears twice", "duplicate name", MAMBAC_ERR_FORMAT},
        {"{\"a\": {\"dtype\": \"F32\"", "not valid JSON", "header not JSON", MAMBAC_ERR_FORMAT},
        {"[1, 2]", "not a JSON object", "header not an object", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4000000000,4000000000,4000000000],\"data_offsets\":[0,8]}}", "need", "overflowing shape", MAMBAC_ERR_FORMAT},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "unexpected tensor 'a'", "unknown tensor", MAMBAC_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        d = new_folder("mamba1-tiny", "hf", NULL);
        put_header(d, 0, cases[i].header, four, sizeof four);
        /* The last case is a well-formed file whose tensors are not a model: the
         * embedding goes missing first, before unknown names are looked at. */
        expect_error(d, i + 1 == sizeof cases / sizeof cases[0] ? MAMBAC_ERR_FORMAT : cases[i].st,
                     i + 1 == sizeof cases / sizeof cases[0] ? "missing tensor 'backbone.embeddings.weight'" : cases[i].substr,
                     cases[i].label);
        free(d);
    }
    mc_file_unmap(&f);
    free(src);
}

/* Variations of a real model's tensor set: missing, extra, wrong dtype, wrong shape. */
static void test_tensor_set(void) {
    char *src = fixture_path("mamba1-tiny/hf/model.safetensors");
    st_model sm;
    CHECK(st_model_open(&sm, src), "open");
    char *d, *p;

    d = new_folder("mamba1-tiny", "hf", NULL);
    p = path_in(d, "model.safetensors");
    st_tensor *t = malloc((sm.n + 1) * sizeof *t);
    size_t k = 0;
    for (size_t i = 0; i < sm.n; i++)
        if (strcmp(sm.t[i].name, "backbone.layers.1.mixer.A_log") != 0) t[k++] = sm.t[i];
    CHECK(write_safetensors(p, t, k), "write");
    expect_error(d, MAMBAC_ERR_FORMAT, "missing tensor 'backbone.layers.1.mixer.A_log'", "missing tensor");
    free(p), free(d);

    d = new_folder("mamba1-tiny", "hf", NULL);
    p = path_in(d, "model.safetensors");
    memcpy(t, sm.t, sm.n * sizeof *t);
    t[sm.n] = sm.t[0];
    t[sm.n].name = "backbone.layers.0.mixer.extra.weight";
    CHECK(write_safetensors(p, t, sm.n + 1), "write");
    expect_error(d, MAMBAC_ERR_UNSUPPORTED, "unexpected tensor 'backbone.layers.0.mixer.extra.weight'", "extra tensor");
    free(p), free(d);

    d = new_folder("mamba1-tiny", "hf", NULL);
    p = path_in(d, "model.safetensors");
    memcpy(t, sm.t, sm.n * sizeof *t);
    for (size_t i = 0; i < sm.n; i++)
        if (strcmp(t[i].name, "backbone.norm_f.weight") == 0) t[i].dtype = "I32";
    CHECK(write_safetensors(p, t, sm.n), "write");
    expect_error(d, MAMBAC_ERR_UNSUPPORTED, "'backbone.norm_f.weight' has dtype I32", "integer weight");
    free(p), free(d);

    /* A config whose d_state disagrees with the tensors. */
    char *cfgp = fixture_path("mamba1-tiny/hf/config.json");
    char *cfg = read_text(cfgp), *bad = json_set_field(cfg, "state_size", "8");
    d = new_folder(NULL, NULL, bad);
    put_file(d, "model.safetensors", NULL, 0);
    p = path_in(d, "model.safetensors");
    CHECK(write_safetensors(p, sm.t, sm.n), "write");
    expect_error(d, MAMBAC_ERR_FORMAT, "but the config implies", "shape vs config");
    free(p), free(d), free(cfg), free(bad), free(cfgp);
    free(t);
    st_model_close(&sm);
    free(src);
}

/* ---- config.json ----------------------------------------------------------------- */

static void test_config(void) {
    char *cfgp = fixture_path("mamba2-tiny/hf/config.json");
    char *cfg = read_text(cfgp);
    struct { const char *key, *value, *substr, *label; mambac_status st; } cases[] = {
        {"model_type", "\"llama\"", "unknown model_type 'llama'", "unknown model_type", MAMBAC_ERR_UNSUPPORTED},
        {"hidden_size", "\"wide\"", "field 'hidden_size' must be an integer", "string for an integer", MAMBAC_ERR_FORMAT},
        {"num_hidden_layers", "0", "field 'num_hidden_layers' must be an integer in [1,", "zero layers", MAMBAC_ERR_FORMAT},
        {"num_heads", "7", "num_heads 7 * head_dim 16 != inner width 128", "heads * head_dim", MAMBAC_ERR_FORMAT},
        {"n_groups", "3", "not a multiple of n_groups 3", "groups", MAMBAC_ERR_FORMAT},
        {"time_step_limit", "[0.0, NaN]", "not valid JSON", "NaN", MAMBAC_ERR_FORMAT},
        {"time_step_limit", "[1.0, 0.5]", "time_step_limit", "inverted limit", MAMBAC_ERR_FORMAT},
        {"layer_norm_epsilon", "-1", "epsilon", "negative eps", MAMBAC_ERR_FORMAT},
        {"expand", "1.5001", "field 'expand' gives an invalid inner width", "fractional expand", MAMBAC_ERR_FORMAT},
        {"use_bias", "\"yes\"", "field 'use_bias' must be true or false", "string for a bool", MAMBAC_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *c = json_set_field(cfg, cases[i].key, cases[i].value);
        CHECK(c != NULL, "field %s present", cases[i].key);
        char *d = new_folder(NULL, NULL, c ? c : cfg);
        expect_error(d, cases[i].st, cases[i].substr, cases[i].label);
        free(c), free(d);
    }
    char *d = new_folder(NULL, NULL, "{\"model_type\": \"mamba\", \"hidden_size\": 64,");
    expect_error(d, MAMBAC_ERR_FORMAT, "config.json: not valid JSON", "config not JSON");
    free(d);
    d = new_folder(NULL, NULL, "{\"model_type\": \"mamba\"} trailing");
    expect_error(d, MAMBAC_ERR_FORMAT, "not valid JSON", "trailing garbage");
    free(d);
    d = new_folder(NULL, NULL, "{\"model_type\": \"mamba\", \"num_hidden_layers\": 2, \"vocab_size\": 10}");
    expect_error(d, MAMBAC_ERR_FORMAT, "missing field 'hidden_size'", "missing field");
    free(d);
    d = new_folder(NULL, NULL, "{\"architectures\": [\"GPT2\"]}");
    expect_error(d, MAMBAC_ERR_FORMAT, "not a Mamba config", "not a mamba config");
    free(d);
    d = new_folder(NULL, NULL, "[]");
    expect_error(d, MAMBAC_ERR_FORMAT, "not a JSON object", "config array");
    free(d);
    /* a key twice: cJSON would read the first, Python's json the last */
    char *twice = replace_once(cfg, "{", "{\"hidden_size\": 48, ");
    d = new_folder(NULL, NULL, twice);
    expect_error(d, MAMBAC_ERR_FORMAT, "key 'hidden_size' appears twice", "duplicate config key");
    free(d), free(twice);

    /* mamba_ssm configs. */
    char *sp = fixture_path("mamba2-tiny/ssm/config.json");
    char *scfg = read_text(sp);
    char *c1 = json_set_field(scfg, "attn_layer_idx", "[1]");
    d = new_folder(NULL, NULL, c1);
    expect_error(d, MAMBAC_ERR_UNSUPPORTED, "hybrid models", "attention layers");
    free(d), free(c1);
    c1 = json_set_field(scfg, "layer", "\"Mamba3\"");
    d = new_folder(NULL, NULL, c1);
    expect_error(d, MAMBAC_ERR_UNSUPPORTED, "unknown ssm_cfg.layer 'Mamba3'", "unknown layer");
    free(d), free(c1);
    c1 = json_set_field(scfg, "d_intermediate", "128");
    d = new_folder(NULL, NULL, c1);
    expect_error(d, MAMBAC_ERR_UNSUPPORTED, "MLP blocks", "mlp");
    free(d), free(c1);
    c1 = json_set_field(scfg, "headdim", "24");
    d = new_folder(NULL, NULL, c1);
    expect_error(d, MAMBAC_ERR_FORMAT, "not a multiple of ssm_cfg.headdim 24", "headdim");
    free(d), free(c1);

    /* Found by fuzzing: a misspelt required field followed by the padding multiple. */
    c1 = replace_once(scfg, "\"vocab_size\"", "\"vocaM_size\"");
    d = new_folder(NULL, NULL, c1);
    expect_error(d, MAMBAC_ERR_FORMAT, "missing field 'vocab_size'", "ssm config without vocab_size");
    free(d), free(c1);

    /* Folders that are not checkpoints. */
    d = path_in(tmp, "empty");
    mkdir(d, 0755);
    expect_error(d, MAMBAC_ERR_IO, "config.json: cannot open", "no config");
    free(d);
    d = new_folder("mamba2-tiny", "hf", NULL);
    expect_error(d, MAMBAC_ERR_IO, "no weights found", "no weights");
    free(d);
    expect_error("/nonexistent/mambac/model", MAMBAC_ERR_IO, "no such file", "missing path");
    free(cfg), free(cfgp), free(sp), free(scfg);
}

/* ---- pickle / torch zip -------------------------------------------------------- */

/* Pickle bytes for {name: _rebuild_tensor_v2(storage(key, numel), offset, shape, stride)}. */
typedef struct pk { unsigned char b[1024]; size_t n; } pk;
static void op(pk *p, const void *s, size_t n) { memcpy(p->b + p->n, s, n); p->n += n; }
static void ustr(pk *p, const char *s) {
    unsigned char h[5] = {'X', (unsigned char)strlen(s), 0, 0, 0};
    op(p, h, 5);
    op(p, s, strlen(s));
}
static void bint(pk *p, int v) { unsigned char h[5] = {'J', (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)}; op(p, h, 5); }
static void tensor_pickle(pk *p, const char *storage_type, int numel, int offset, int n, const int *shape, const int *stride) {
    p->n = 0;
    op(p, "\x80\x02}(", 4);
    ustr(p, "w");
    op(p, "ctorch._utils\n_rebuild_tensor_v2\n((", strlen("ctorch._utils\n_rebuild_tensor_v2\n(("));
    ustr(p, "storage");
    op(p, "c", 1);
    op(p, storage_type, strlen(storage_type));
    ustr(p, "0");
    ustr(p, "cpu");
    bint(p, numel);
    op(p, "tQ", 2);
    bint(p, offset);
    op(p, "(", 1);
    for (int i = 0; i < n; i++) bint(p, shape[i]);
    op(p, "t(", 2);
    for (int i = 0; i < n; i++) bint(p, stride[i]);
    op(p, "t\x89" "ccollections\nOrderedDict\n)RtRu.", strlen("t\x89" "ccollections\nOrderedDict\n)RtRu."));
}

static mambac_status torch_zip(const char *label, const pk *p, const void *storage, size_t storage_bytes, mc_tensor_list *out,
                               mambac_error *err) {
    char *zp = path_in(tmp, "t.bin");
    zip_item items[] = {{"archive/data.pkl", p->b, p->n}, {"archive/byteorder", "little", 6}, {"archive/data/0", storage, storage_bytes}};
    CHECK(write_zip(zp, items, storage ? 3 : 2), "%s: write zip", label);
    mc_file f;
    mambac_status s = mc_file_map(zp, &f, err);
    if (s == MAMBAC_OK) s = mc_torch_parse(f.data, f.size, zp, out, err);
    /* The list points into the mapping; tests only look at it while it is mapped, so
     * copy out the first float for the round-trip check before unmapping. */
    if (s == MAMBAC_OK && out->n && out->v[0].nbytes >= 4) memcpy(&out->v[0].shape[MC_MAX_DIMS - 1], out->v[0].data, 4);
    mc_file_unmap(&f);
    free(zp);
    return s;
}

/* Zip archives where readers could disagree on the contents: an entry name twice, a
 * local header naming another file than its central directory entry. */
static void test_zip_ambiguous(const pk *p) {
    char *zp = path_in(tmp, "z.bin");
    mambac_error err = {{0}};
    mc_tensor_list l = {0};
    zip_item twice[] = {{"archive/data.pkl", p->b, p->n}, {"archive/byteorder", "little", 6}, {"archive/data.pkl", p->b, p->n}};
    CHECK(write_zip(zp, twice, 3), "write zip");
    mc_file f;
    if (mc_file_map(zp, &f, &err) == MAMBAC_OK) {
        CHECK(mc_torch_parse(f.data, f.size, zp, &l, &err) != MAMBAC_OK && strstr(err.msg, "appears twice"),
              "a zip entry twice: %s", err.msg);
        mc_file_unmap(&f);
    }
    mc_tensor_list_free(&l);
    zip_item one[] = {{"archive/data.pkl", p->b, p->n}, {"archive/byteorder", "little", 6}};
    CHECK(write_zip(zp, one, 2), "write zip");
    size_t n = 0;
    unsigned char *b = NULL;
    if (mc_file_map(zp, &f, &err) == MAMBAC_OK) {
        n = f.size;
        b = malloc(n);
        memcpy(b, f.data, n);
        mc_file_unmap(&f);
    }
    if (b && n > 40) {
        b[30 + 8] ^= 1; /* the first local header's name: "archive/" then a changed letter */
        write_file(zp, b, n);
        if (mc_file_map(zp, &f, &err) == MAMBAC_OK) {
            CHECK(mc_torch_parse(f.data, f.size, zp, &l, &err) != MAMBAC_OK && strstr(err.msg, "names another entry"),
                  "local and central names differ: %s", err.msg);
            mc_file_unmap(&f);
        }
        mc_tensor_list_free(&l);
    }
    free(b);
    free(zp);
}

static void expect_pickle(const pk *p, const void *storage, size_t nbytes, const char *substr, const char *label) {
    mc_tensor_list l = {0};
    mambac_error err = {{0}};
    mambac_status s = torch_zip(label, p, storage, nbytes, &l, &err);
    CHECK(s != MAMBAC_OK, "%s: refused", label);
    CHECK(strstr(err.msg, substr) != NULL, "%s: message '%s' lacks '%s'", label, err.msg, substr);
    mc_tensor_list_free(&l);
}

static void expect_raw_pickle(const void *bytes, size_t n, const char *substr, const char *label) {
    mc_pickled_tensor *t;
    size_t nt;
    mambac_error err = {{0}};
    mambac_status s = mc_pickle_state_dict(bytes, n, "x.pkl", &t, &nt, &err);
    CHECK(s != MAMBAC_OK, "%s: refused", label);
    CHECK(strstr(err.msg, substr) != NULL, "%s: message '%s' lacks '%s'", label, err.msg, substr);
    if (s == MAMBAC_OK) mc_pickled_tensors_free(t, nt);
}

/* MEMOIZE's key is the number of memo entries (Python's len(memo)), found in constant
 * time: after LONG_BINPUT to slot 2^20 - 1 (the last allowed) the next MEMOIZE stores at 1
 * and BINGET 1 reads it back. (The key had been found by scanning the memo from its top: an
 * 8 KB pickle of MEMOIZEs after one far BINPUT scanned millions of slots each, 40 s.)
 * 200 000 MEMOIZEs follow, then a STOP on a dict that holds no tensor. Then the VM's bounds:
 * a slot past the memo's limit, and more objects alive than the pool's (1.1M one-byte
 * pushes: refused, where the VM once grew to 1.3 GB for a 16 MB pickle). */
static void test_pickle_memo(void) {
    const size_t n_memoize = 200000;
    unsigned char *b = malloc(16 + n_memoize);
    size_t k = 0;
    b[k++] = 0x80, b[k++] = 2, b[k++] = '}';                    /* PROTO 2, EMPTY_DICT */
    b[k++] = 'r', b[k++] = 0xff, b[k++] = 0xff, b[k++] = 0x0f, b[k++] = 0; /* LONG_BINPUT 2^20 - 1 */
    b[k++] = 0x94, b[k++] = 'h', b[k++] = 1;                     /* MEMOIZE (key 1), BINGET 1 */
    for (size_t i = 0; i < n_memoize; i++) b[k++] = 0x94;
    b[k++] = '.';
    mc_pickled_tensor *t = NULL;
    size_t nt = 0;
    mambac_error err = {{0}};
    mambac_status s = mc_pickle_state_dict(b, k, "x.pkl", &t, &nt, &err);
    CHECK(s == MAMBAC_OK ? nt == 0 : strstr(err.msg, "memo") == NULL, "memo: MEMOIZE after a far BINPUT keys by count: %s", err.msg);
    if (s == MAMBAC_OK) mc_pickled_tensors_free(t, nt);
    static const unsigned char far[] = {0x80, 2, '}', 'r', 0, 0, 0x10, 0, '.'}; /* LONG_BINPUT 2^20 */
    expect_raw_pickle(far, sizeof far, "memo index too large", "a memo slot past the limit");
    const size_t n_push = 1100000;
    unsigned char *many = malloc(8 + n_push);
    k = 0;
    many[k++] = 0x80, many[k++] = 2;
    for (size_t i = 0; i < n_push; i++) many[k++] = 0x88; /* NEWTRUE: one object a byte */
    many[k++] = '.';
    expect_raw_pickle(many, k, "too many objects", "1.1M objects alive at once");
    free(many);
    free(b);
}

static void test_pickle(void) {
    test_pickle_memo();
    float store[6] = {1.5f, 2, 3, 4, 5, 6};
    int shape[2] = {2, 3}, stride[2] = {3, 1};
    pk p;
    /* A well-formed hand-made pickle round-trips: the allowlist is not too tight. */
    tensor_pickle(&p, "torch\nFloatStorage\n", 6, 0, 2, shape, stride);
    mc_tensor_list l = {0};
    mambac_error err = {{0}};
    CHECK(torch_zip("good", &p, store, sizeof store, &l, &err) == MAMBAC_OK, "hand-made pickle loads: %s", err.msg);
    test_zip_ambiguous(&p);
    CHECK(l.n == 1 && l.v[0].shape[0] == 2 && l.v[0].shape[1] == 3 && l.v[0].elem == MC_ELEM_F32, "tensor read back");
    float first;
    memcpy(&first, &l.v[0].shape[MC_MAX_DIMS - 1], 4);
    CHECK(l.n == 1 && first == 1.5f, "data read back");
    mc_tensor_list_free(&l);

    int big[2] = {3, 3};
    tensor_pickle(&p, "torch\nFloatStorage\n", 6, 0, 2, big, stride);
    expect_pickle(&p, store, sizeof store, "extends past its storage", "tensor past storage");
    tensor_pickle(&p, "torch\nFloatStorage\n", 6, 4, 2, shape, stride);
    expect_pickle(&p, store, sizeof store, "extends past its storage", "offset past storage");
    int tr[2] = {1, 2};
    tensor_pickle(&p, "torch\nFloatStorage\n", 6, 0, 2, shape, tr);
    expect_pickle(&p, store, sizeof store, "not contiguous", "strided tensor");
    tensor_pickle(&p, "torch\nFloatStorage\n", 6, 0, 2, shape, stride);
    expect_pickle(&p, store, 8, "fewer than its 6 elements", "short storage");
    expect_pickle(&p, NULL, 0, "missing from the archive", "missing storage");
    tensor_pickle(&p, "torch\nLongStorage\n", 6, 0, 2, shape, stride);
    expect_pickle(&p, store, sizeof store, "global 'torch.LongStorage' is not allowed", "int64 storage");

    /* Code execution attempts: refused, and nothing runs (the marker never appears). */
    char *marker = path_in(tmp, "PWNED");
    char cmd[1200];
    int cl = snprintf(cmd, sizeof cmd, "\x80\x02" "cos\nsystem\nX%c%c%c%ctouch %s\x85R.", (int)(strlen(marker) + 6) & 255, 0, 0, 0,
                      marker);
    expect_raw_pickle(cmd, (size_t)cl, "global 'os.system' is not allowed (refused, not run)", "os.system");
    CHECK(access(marker, F_OK) != 0, "nothing was executed");
    free(marker);
    static const char evalp[] = "\x80\x02" "cbuiltins\neval\nX\x04\x00\x00\x00" "1+1\x85R.";
    expect_raw_pickle(evalp, sizeof evalp - 1, "global 'builtins.eval' is not allowed", "eval");
    static const char stack_global[] = "\x80\x04\x8c\x02os\x8c\x06system\x93.";
    expect_raw_pickle(stack_global, sizeof stack_global - 1, "global 'os.system' is not allowed", "STACK_GLOBAL");
    static const char newobj[] = "\x80\x02" "ccollections\nOrderedDict\n)\x81.";
    expect_raw_pickle(newobj, sizeof newobj - 1, "opcode 0x81 (NEWOBJ) is not allowed", "NEWOBJ");
    static const char inst[] = "(ios\nsystem\n.";
    expect_raw_pickle(inst, sizeof inst - 1, "opcode 0x69 (INST) is not allowed", "INST");
    static const char reduce_storage[] = "\x80\x02" "ctorch\nFloatStorage\n)R.";
    expect_raw_pickle(reduce_storage, sizeof reduce_storage - 1, "REDUCE of a storage type", "call a storage type");
    static const char not_dict[] = "\x80\x02]q\x00.";
    expect_raw_pickle(not_dict, sizeof not_dict - 1, "does not hold a state dict", "list");
    static const char no_stop[] = "\x80\x02}q\x00";
    expect_raw_pickle(no_stop, sizeof no_stop - 1, "truncated", "no STOP");
    static const char bad_memo[] = "\x80\x02h\x05.";
    expect_raw_pickle(bad_memo, sizeof bad_memo - 1, "memo read of an unset slot", "memo");
    static const char underflow[] = "\x80\x02R.";
    expect_raw_pickle(underflow, sizeof underflow - 1, "stack underflow", "underflow");
    static const char cut_str[] = "\x80\x02X\xff\xff\xff\x7f" "abc";
    expect_raw_pickle(cut_str, sizeof cut_str - 1, "truncated", "string past the end");
    static const char not_tensor[] = "\x80\x02}X\x01\x00\x00\x00" "aK\x01s.";
    expect_raw_pickle(not_tensor, sizeof not_tensor - 1, "not a named tensor", "int value");

    /* Found by fuzzing: a directory entry whose local header offset is wrong. */
    {
        char *zp = path_in(tmp, "lh.bin");
        zip_item items[] = {{"archive/data.pkl", "x", 1}};
        CHECK(write_zip(zp, items, 1), "write");
        mc_file zf;
        CHECK(mc_file_map(zp, &zf, &err) == MAMBAC_OK, "map");
        unsigned char *mod = malloc(zf.size);
        memcpy(mod, zf.data, zf.size);
        mod[30 + 16 + 1 + 42] = 7; /* central directory entry's local header offset: 0 -> 7 */
        mc_tensor_list tl = {0};
        CHECK(mc_torch_parse(mod, zf.size, "lh.bin", &tl, &err) == MAMBAC_ERR_FORMAT &&
                  strstr(err.msg, "local header of 'archive/data.pkl' is outside the file or corrupt"),
              "bad local header offset: %s", err.msg);
        mc_tensor_list_free(&tl);
        mc_file_unmap(&zf);
        free(mod), free(zp);
    }

    /* Found by fuzzing: a tiny file whose end record asks for zip64 (an unsigned
     * underflow in the bounds check read far outside the file). */
    {
        unsigned char tiny[42] = {0};
        memcpy(tiny, "PK\x06\x07", 4); /* zip64 locator pointing 16 MB past the end */
        tiny[8 + 3] = 1;
        memcpy(tiny + 20, "PK\x05\x06", 4);
        memset(tiny + 20 + 10, 0xff, 2); /* entry count 0xffff: "see zip64" */
        mc_tensor_list tl = {0};
        CHECK(mc_torch_parse(tiny, sizeof tiny, "tiny.bin", &tl, &err) == MAMBAC_ERR_FORMAT &&
                  strstr(err.msg, "zip64 end-of-directory record invalid"),
              "tiny zip64: %s", err.msg);
        mc_tensor_list_free(&tl);
    }

    /* Whole files: truncated and not-a-zip. */
    char *src = fixture_path("mamba1-tiny/ssm/pytorch_model.bin");
    mc_file f;
    CHECK(mc_file_map(src, &f, &err) == MAMBAC_OK, "map");
    char *d = new_folder("mamba1-tiny", "ssm", NULL);
    put_file(d, "pytorch_model.bin", f.data, f.size - 100);
    expect_error(d, MAMBAC_ERR_FORMAT, "pytorch_model.bin: not a zip archive or truncated", "truncated .bin");
    free(d);
    d = new_folder("mamba1-tiny", "ssm", NULL);
    put_file(d, "pytorch_model.bin", "PK\x03\x04 nonsense", sizeof "PK\x03\x04 nonsense" - 1);
    expect_error(d, MAMBAC_ERR_FORMAT, "not a zip archive", "garbage .bin");
    free(d);
    mc_file_unmap(&f);
    free(src);
}

/* ---- evaluation arguments and state files ------------------------------------ */

static void test_eval_and_state(void) {
    char *dir = fixture_path("mamba2-tiny/hf");
    mambac_model *m, *other;
    mambac_error err;
    CHECK(mambac_model_load(dir, &m, &err) == MAMBAC_OK, "load");
    char *odir = fixture_path("mamba1-tiny/hf");
    CHECK(mambac_model_load(odir, &other, &err) == MAMBAC_OK, "load other");
    mambac_context *ctx;
    mambac_state *st, *ost;
    mambac_context_new(m, NULL, &ctx, &err);
    mambac_state_new(m, &st, &err);
    mambac_state_new(other, &ost, &err);
    float lg[512];
    int32_t ids[3] = {1, 2, 512};
    CHECK(mambac_eval(ctx, st, ids, 3, MAMBAC_LOGITS_LAST, lg, &err) == MAMBAC_ERR_INVALID_ARG, "id >= vocab refused");
    CHECK(strstr(err.msg, "token id 512 at position 2 is out of range") != NULL, "message: %s", err.msg);
    CHECK(mambac_state_n_tokens(st) == 0, "state untouched by a refused call");
    ids[2] = -1;
    CHECK(mambac_eval(ctx, st, ids, 3, MAMBAC_LOGITS_LAST, lg, &err) == MAMBAC_ERR_INVALID_ARG, "negative id refused");
    CHECK(mambac_eval(ctx, st, ids, 0, MAMBAC_LOGITS_LAST, lg, &err) == MAMBAC_ERR_INVALID_ARG, "empty prompt refused");
    CHECK(strstr(err.msg, "empty prompt") != NULL, "message: %s", err.msg);
    mambac_context_params cp = {.max_ubatch = 0};
    mambac_context *bad;
    CHECK(mambac_context_new(m, &cp, &bad, &err) == MAMBAC_ERR_INVALID_ARG, "max_ubatch 0 refused");
    CHECK(mambac_state_copy(st, ost, &err) == MAMBAC_ERR_INVALID_ARG, "copy across shapes refused");

    ids[2] = 3;
    CHECK(mambac_eval(ctx, st, ids, 3, MAMBAC_LOGITS_NONE, NULL, &err) == MAMBAC_OK, "eval: %s", err.msg);
    char *sp = path_in(tmp, "s.state"), *op_ = path_in(tmp, "o.state");
    CHECK(mambac_state_save(st, sp, &err) == MAMBAC_OK, "save: %s", err.msg);
    CHECK(mambac_state_save(ost, op_, &err) == MAMBAC_OK, "save other: %s", err.msg);
    CHECK(mambac_state_load(st, op_, &err) == MAMBAC_ERR_INVALID_ARG && strstr(err.msg, "different shape"),
          "state of another model refused: %s", err.msg);
    CHECK(mambac_state_n_tokens(st) == 3, "state unchanged after a refused load");
    mc_file f;
    CHECK(mc_file_map(sp, &f, &err) == MAMBAC_OK, "map");
    unsigned char *copy = malloc(f.size);
    memcpy(copy, f.data, f.size);
    char *bp = path_in(tmp, "bad.state");
    write_file(bp, copy, f.size - 7);
    CHECK(mambac_state_load(st, bp, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "truncated"), "truncated state: %s", err.msg);
    copy[f.size / 2] ^= 0x40;
    write_file(bp, copy, f.size);
    CHECK(mambac_state_load(st, bp, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "checksum"), "corrupt state: %s", err.msg);
    copy[f.size / 2] ^= 0x40;
    memset(copy + 8 + 4 * 9, 0xff, 8); /* the token count (after magic and 9 header words), outside the checksum */
    write_file(bp, copy, f.size);
    CHECK(mambac_state_load(st, bp, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "token count"), "token count 2^64-1: %s",
          err.msg);
    CHECK(mambac_state_n_tokens(st) == 3, "state unchanged after a refused token count");
    write_file(bp, "hello", 5);
    CHECK(mambac_state_load(st, bp, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "not a mambac state file"), "not a state: %s",
          err.msg);
    CHECK(mambac_state_save(st, "/nonexistent/dir/x.state", &err) == MAMBAC_ERR_IO && strstr(err.msg, "cannot create"),
          "unwritable: %s", err.msg);
    CHECK(access("/nonexistent/dir/x.state", F_OK) != 0, "no file left");
    mc_file_unmap(&f);
    free(copy), free(bp), free(sp), free(op_);
    mambac_state_free(st);
    mambac_state_free(ost);
    mambac_context_free(ctx);
    mambac_model_free(m);
    mambac_model_free(other);
    free(dir), free(odir);
}

/* The tensor list's name index: every name found, duplicates refused (also after a
 * rename in place), a truncated list forgets the dropped names, and the work (slots
 * probed) linear — 4x the tensors cost at most 5x the probes. (Each add had walked the
 * list: 80 000 safetensors entries took 14.5 s.) */
static uint64_t tensor_list_probes(size_t n, int *ok) {
    mc_tensor_list l = {0};
    mambac_error err;
    char name[96];
    *ok = 1;
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "backbone.layers.%zu.mixer.weight", i);
        mc_tensor_entry e = {.name = name, .file = "x"};
        *ok &= mc_tensor_list_add(&l, &e, &err) == MAMBAC_OK;
    }
    for (size_t i = 0; i < n; i += 97) {
        snprintf(name, sizeof name, "backbone.layers.%zu.mixer.weight", i);
        mc_tensor_entry e = {.name = name, .file = "x"};
        *ok &= mc_tensor_list_add(&l, &e, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "appears twice") != NULL;
        const mc_tensor_entry *f = mc_tensor_list_find(&l, name);
        *ok &= f == &l.v[i];
    }
    *ok &= mc_tensor_list_find(&l, "backbone.layers.x") == NULL && l.n == n;
    const uint64_t probes = l.probes;
    mc_tensor_list_truncate(&l, n / 2);
    snprintf(name, sizeof name, "backbone.layers.%zu.mixer.weight", n - 1);
    *ok &= mc_tensor_list_find(&l, name) == NULL && mc_tensor_list_find(&l, l.v[0].name) == &l.v[0];
    const size_t len0 = strlen(l.v[0].name) + 1;
    free(l.v[1].name);
    l.v[1].name = malloc(len0); /* renamed in place onto another tensor's name */
    memcpy(l.v[1].name, l.v[0].name, len0);
    *ok &= mc_tensor_list_reindex(&l, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "appears twice") != NULL;
    mc_tensor_list_free(&l);
    return probes;
}

static void test_tensor_list(void) {
    int ok1, ok2;
    const uint64_t a = tensor_list_probes(4096, &ok1), b = tensor_list_probes(16384, &ok2);
    CHECK(ok1 && ok2, "tensor list: names found, duplicates refused, truncate and reindex");
    CHECK(b <= 5 * a, "tensor list: 4x the tensors, %llu vs %llu probes (at most 5x)", (unsigned long long)b,
          (unsigned long long)a);
}

/* A FIFO where a file is read (a model, a state, a tokenizer, a config) is refused at
 * once: opened without waiting for a writer, and not a regular file. */
static void test_fifo(void) {
    char *fifo = path_in(tmp, "fifo");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    mambac_error err;
    mambac_model *m = NULL;
    CHECK(mambac_model_load(fifo, &m, &err) != MAMBAC_OK && strstr(err.msg, "regular file"), "model from a FIFO: %s", err.msg);
    m = NULL;
    mambac_tokenizer *t = NULL;
    CHECK(mambac_tokenizer_load(fifo, &t, &err) != MAMBAC_OK && strstr(err.msg, "regular file"), "tokenizer from a FIFO: %s",
          err.msg);
    char *dir = path_in(tmp, "fifo-model");
    mkdir(dir, 0700);
    char *cfg = path_in(dir, "config.json");
    CHECK(mkfifo(cfg, 0600) == 0, "mkfifo config.json");
    CHECK(mambac_model_load(dir, &m, &err) != MAMBAC_OK && strstr(err.msg, "regular file"), "config.json a FIFO: %s", err.msg);
    m = NULL;
    char model[600];
    snprintf(model, sizeof model, "%s/models/mamba1-tiny/hf", MAMBAC_TEST_DATA);
    CHECK(mambac_model_load(model, &m, &err) == MAMBAC_OK, "load %s: %s", model, err.msg);
    if (m) {
        mambac_state *st;
        mambac_state_new(m, &st, &err);
        CHECK(mambac_state_load(st, fifo, &err) != MAMBAC_OK && strstr(err.msg, "regular file"), "state from a FIFO: %s",
              err.msg);
        mambac_state_free(st);
        mambac_model_free(m);
    }
    unlink(cfg), unlink(fifo), rmdir(dir);
    free(cfg), free(dir), free(fifo);
}

/* More threads than CPUs are reduced to the CPUs this process may use (on 2 cores
 * -t 1024 had taken 14 s for what 2 threads do in 0.03 s). */
static void test_thread_clamp(void) {
    char model[600];
    snprintf(model, sizeof model, "%s/models/mamba1-tiny/hf", MAMBAC_TEST_DATA);
    mambac_model *m = NULL;
    mambac_error err;
    CHECK(mambac_model_load(model, &m, &err) == MAMBAC_OK, "load: %s", err.msg);
    if (!m) return;
    mambac_context_params p = mambac_context_default_params();
    p.n_threads = 1024;
    mambac_context *ctx;
    CHECK(mambac_context_new(m, &p, &ctx, &err) == MAMBAC_OK, "context: %s", err.msg);
    CHECK(mambac_context_threads(ctx) == mc_cpu_count(), "1024 threads asked, %d run (%d CPUs)", mambac_context_threads(ctx),
          mc_cpu_count());
    mambac_context_free(ctx);
    p.n_threads = 1;
    CHECK(mambac_context_new(m, &p, &ctx, &err) == MAMBAC_OK && mambac_context_threads(ctx) == 1, "1 thread asked, 1 runs");
    mambac_context_free(ctx);
    mambac_model_free(m);
}

/* A worker descheduled in the middle of a dynamic loop (here: it sleeps 20 ms in its first
 * chunk, the caller holding its own first chunk until the worker has one) makes the
 * following dynamic loops run on the caller alone for the back-off (threadpool.c), every
 * item still done once; once the back-off is over a clean loop ends it. */
static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}
typedef struct straggle_job {
    atomic_int items[64];
    atomic_int worker_started, by_worker;
    int stall;
} straggle_job;
static void straggle_range(void *arg, int64_t b, int64_t e, int thread) {
    straggle_job *j = arg;
    if (thread == 0 && j->stall)
        for (int spins = 0; !atomic_load(&j->worker_started) && spins < 5000; spins++) sleep_ms(1);
    if (thread != 0) {
        atomic_fetch_add(&j->by_worker, 1);
        if (j->stall && !atomic_exchange(&j->worker_started, 1)) sleep_ms(20);
    }
    for (int64_t i = b; i < e; i++) atomic_fetch_add(&j->items[i], 1);
}
static int straggle_loop(mc_pool *p, int stall, int *by_worker) {
    static straggle_job j;
    memset(&j, 0, sizeof j);
    j.stall = stall;
    mc_pool_for_dynamic(p, 64, 1, straggle_range, &j);
    int once = 1;
    for (int i = 0; i < 64; i++) once &= atomic_load(&j.items[i]) == 1;
    *by_worker = atomic_load(&j.by_worker);
    return once;
}
static void test_pool_straggler(void) {
    mc_pool *p = mc_pool_new(2);
    CHECK(p != NULL, "a pool of two");
    if (!p) return;
    int by_worker;
    CHECK(straggle_loop(p, 1, &by_worker) && by_worker >= 1, "the stalled loop: every item once, the worker took part");
    CHECK(mc_pool_solo_loops(p) == 0, "no loop run alone before the stall was seen");
    CHECK(straggle_loop(p, 0, &by_worker) && by_worker == 0, "the next loop on the caller alone (worker chunks: %d)", by_worker);
    CHECK(mc_pool_solo_loops(p) == 1, "one loop run alone: %lld", (long long)mc_pool_solo_loops(p));
    sleep_ms(60); /* past the first back-off (5 ms) */
    CHECK(straggle_loop(p, 0, &by_worker), "after the back-off: every item once");
    CHECK(mc_pool_solo_loops(p) == 1, "the back-off over: the next loop offered to the worker again");
    mc_pool_free(p);
}

/* A config asking for far more state than the file has weights (d_inner 2048 x d_state
 * 4096 from a 2 MB file: 32 MB a sequence) is refused at load, naming the fields. */
static void test_state_bound(void) {
    mambac_init_params p = mambac_init_default_params(MAMBAC_ARCH_MAMBA2);
    p.d_model = 8, p.expand = 256, p.d_state = 4096, p.head_dim = 64, p.n_layer = 1, p.vocab_size = 300;
    char *dir = path_in(tmp, "huge-state");
    mambac_error err;
    mambac_model *m = NULL;
    CHECK(mambac_model_write_init(&p, dir, &err) == MAMBAC_OK, "init: %s", err.msg);
    CHECK(mambac_model_load(dir, &m, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "floats of state") && strstr(err.msg, "d_state 4096"),
          "a state 15x the weights refused: %s", err.msg);
    mambac_model_free(m);
    free(dir);
}

/* A config whose widths are out of proportion to the file (d_model 2, d_inner 32 768: 2M
 * parameters, 131k floats of scratch a token, so 268 MB a context of 512-token pieces;
 * its state alone would pass) is refused at load, naming the fields. */
static void test_width_bound(void) {
    mambac_init_params p = mambac_init_default_params(MAMBAC_ARCH_MAMBA1);
    p.d_model = 2, p.expand = 16384, p.n_layer = 1, p.vocab_size = 300;
    char *dir = path_in(tmp, "huge-width");
    mambac_error err;
    mambac_model *m = NULL;
    CHECK(mambac_model_write_init(&p, dir, &err) == MAMBAC_OK, "init: %s", err.msg);
    CHECK(mambac_model_load(dir, &m, &err) == MAMBAC_ERR_FORMAT && strstr(err.msg, "floats of scratch") &&
              strstr(err.msg, "d_inner 32768"),
          "widths 1/16 of the weights refused: %s", err.msg);
    mambac_model_free(m);
    free(dir);
}

/* A writer's temporary file left by a killed process (its PID gone) is removed by the next
 * write of the same target; one of a live process stays. */
static void test_stale_temps(void) {
    const pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0); /* its PID is free now */
    char *out = path_in(tmp, "x.state"), stale[700], live[700];
    snprintf(stale, sizeof stale, "%s.tmp.%ld", out, (long)child);
    snprintf(live, sizeof live, "%s.tmp.%ld", out, (long)getppid());
    write_file(stale, "old", 3);
    write_file(live, "busy", 4);
    char model[600];
    snprintf(model, sizeof model, "%s/models/mamba1-tiny/hf", MAMBAC_TEST_DATA);
    mambac_model *m = NULL;
    mambac_state *st = NULL;
    mambac_error err;
    CHECK(mambac_model_load(model, &m, &err) == MAMBAC_OK && mambac_state_new(m, &st, &err) == MAMBAC_OK, "load: %s", err.msg);
    CHECK(st && mambac_state_save(st, out, &err) == MAMBAC_OK, "save: %s", err.msg);
    CHECK(access(stale, F_OK) != 0, "a dead writer's temporary file removed");
    CHECK(access(live, F_OK) == 0, "a live writer's temporary file kept");
    unlink(live), unlink(out);
    /* a killed init's temporary folder (its files inside), beside a live one's */
    char *dir = path_in(tmp, "fresh-model"), sdir[700], ldir[700], sfile[800];
    snprintf(sdir, sizeof sdir, "%s.tmp.%ld", dir, (long)child);
    snprintf(ldir, sizeof ldir, "%s.tmp.%ld", dir, (long)getppid());
    snprintf(sfile, sizeof sfile, "%s/model.safetensors", sdir);
    mkdir(sdir, 0755), mkdir(ldir, 0755);
    write_file(sfile, "half a model", 12);
    mambac_init_params ip = mambac_init_default_params(MAMBAC_ARCH_MAMBA1);
    ip.n_layer = 1, ip.d_model = 16;
    CHECK(mambac_model_write_init(&ip, dir, &err) == MAMBAC_OK, "init: %s", err.msg);
    CHECK(access(sdir, F_OK) != 0, "a killed init's temporary folder removed");
    CHECK(access(ldir, F_OK) == 0, "a live init's temporary folder kept");
    rmdir(ldir);
    free(dir);
    mambac_state_free(st);
    mambac_model_free(m);
    free(out);
}

/* A state names the model it came from: another model of the same shape (another seed)
 * refuses it; a version 1 file (no fingerprint) still loads. */
static void test_state_fingerprint(void) {
    mambac_init_params p = mambac_init_default_params(MAMBAC_ARCH_MAMBA1);
    p.d_model = 16, p.n_layer = 1, p.vocab_size = 300;
    char *d1 = path_in(tmp, "fp1"), *d2 = path_in(tmp, "fp2"), *sp = path_in(tmp, "fp.state");
    mambac_error err;
    p.seed = 1;
    CHECK(mambac_model_write_init(&p, d1, &err) == MAMBAC_OK, "init 1: %s", err.msg);
    p.seed = 2;
    CHECK(mambac_model_write_init(&p, d2, &err) == MAMBAC_OK, "init 2: %s", err.msg);
    mambac_model *a = NULL, *b = NULL;
    mambac_state *sa = NULL, *sb = NULL;
    CHECK(mambac_model_load(d1, &a, &err) == MAMBAC_OK && mambac_model_load(d2, &b, &err) == MAMBAC_OK, "load: %s", err.msg);
    if (a && b && mambac_state_new(a, &sa, &err) == MAMBAC_OK && mambac_state_new(b, &sb, &err) == MAMBAC_OK) {
        CHECK(mambac_state_save(sa, sp, &err) == MAMBAC_OK, "save: %s", err.msg);
        CHECK(mambac_state_load(sb, sp, &err) == MAMBAC_ERR_INVALID_ARG && strstr(err.msg, "another model"),
              "a state of another model of the same shape refused: %s", err.msg);
        CHECK(mambac_state_load(sa, sp, &err) == MAMBAC_OK, "its own model loads it: %s", err.msg);
        mc_file f;
        if (mc_file_map(sp, &f, &err) == MAMBAC_OK) { /* the same as version 1: no fingerprint */
            const size_t v1 = 8 + 4 * 9 + 16, n = f.size - 8;
            unsigned char *c = malloc(n);
            memcpy(c, f.data, v1);
            memcpy(c + v1, f.data + v1 + 8, n - v1);
            c[8] = 1;
            mc_file_unmap(&f);
            CHECK(mambac_state_from_bytes(sb, c, n, &err) == MAMBAC_OK, "a version 1 state loads: %s", err.msg);
            free(c);
        }
    }
    mambac_state_free(sa), mambac_state_free(sb);
    mambac_model_free(a), mambac_model_free(b);
    free(d1), free(d2), free(sp);
}

int main(void) {
    tmp = make_temp_dir();
    test_tensor_list();
    test_state_fingerprint();
    test_stale_temps();
    test_state_bound();
    test_width_bound();
    test_pool_straggler();
    test_thread_clamp();
    test_fifo();
    CHECK(tmp != NULL, "temp dir");
    test_safetensors();
    test_tensor_set();
    test_config();
    test_pickle();
    test_eval_and_state();
    CHECK(remove_temp_dir(tmp), "cleanup");
    free(tmp);
    return check_summary();
}
