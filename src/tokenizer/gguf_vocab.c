/* gguf_vocab.c — a tokenizer from a GGUF file's metadata. Prefers the complete
 * tokenizer.json that GGUF files may carry (tokenizer.huggingface.json: mambac writes
 * it); otherwise rebuilds one from llama.cpp's byte-level BPE vocabulary
 * (tokenizer.ggml.model "gpt2": tokens, token_type, merges) with the GPT-2 split and
 * no normalizer, which is how llama.cpp itself tokenizes such files. Token types 3
 * (control) and 4 (user-defined) become added tokens; 5 (unused: padding) are kept as
 * plain vocabulary entries that never match. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/file.h"
#include "io/gguf.h"
#include "core/strset.h"
#include "tokenizer/tokenizer.h"

static cJSON *str_n(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (!c) return NULL;
    memcpy(c, s, n);
    c[n] = 0;
    cJSON *j = cJSON_CreateString(c);
    free(c);
    return j;
}

/* tokenizer.json text rebuilt from the ggml vocabulary (malloc'd), or NULL with err. */
static char *json_from_ggml(const mc_gguf *g, const char *path, mambac_error *err) {
    const mc_gguf_kv *toks = mc_gguf_find(g, "tokenizer.ggml.tokens");
    const mc_gguf_kv *types = mc_gguf_find(g, "tokenizer.ggml.token_type");
    const mc_gguf_kv *merges = mc_gguf_find(g, "tokenizer.ggml.merges");
    if (!toks || toks->type != MC_GGUF_ARRAY || toks->arr_type != MC_GGUF_STRING || !merges ||
        merges->type != MC_GGUF_ARRAY || merges->arr_type != MC_GGUF_STRING) {
        mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tokenizer.ggml.tokens / merges missing or not string arrays", path);
        return NULL;
    }
    if (types && (types->type != MC_GGUF_ARRAY || types->n != toks->n || types->arr_type == MC_GGUF_STRING)) types = NULL;
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab"), *mj = cJSON_AddArrayToObject(model, "merges");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", 0);
    cJSON_AddBoolToObject(pre, "use_regex", 1);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "decoder"), "type", "ByteLevel");
    /* the first of duplicate tokens wins, found through a hash set (a cJSON object lookup
     * is a list walk: quadratic over 50k tokens) */
    mc_strset seen;
    if (!mc_strset_init(&seen, (size_t)toks->n)) {
        cJSON_Delete(root);
        mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    const uint8_t *cur = toks->data;
    for (uint64_t i = 0; i < toks->n; i++) {
        const char *s;
        size_t n;
        mc_gguf_next_str(&cur, &s, &n);
        const double tv = types ? mc_gguf_arr_num(types, i) : 1; /* any numeric type: compared, never cast */
        const int type = tv == 3 ? 3 : tv == 4 ? 4 : 1;
        cJSON *name = str_n(s, n);
        if (!name) break;
        if (type == 3 || type == 4) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", (double)i);
            cJSON_AddItemToObject(a, "content", name);
            cJSON_AddBoolToObject(a, "special", type == 3);
            cJSON_AddItemToArray(added, a);
        } else if (mc_strset_add(&seen, s, strnlen(s, n))) { /* as the JSON key will read: up to a NUL */
            cJSON_AddNumberToObject(vocab, name->valuestring, (double)i);
            cJSON_Delete(name);
        } else {
            cJSON_Delete(name);
        }
    }
    mc_strset_free(&seen);
    cur = merges->data;
    for (uint64_t i = 0; i < merges->n; i++) {
        const char *s;
        size_t n;
        mc_gguf_next_str(&cur, &s, &n);
        cJSON_AddItemToArray(mj, str_n(s, n));
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    return text;
}

mambac_status mc_tokenizer_from_gguf_bytes(const void *data, size_t size, const char *path, mambac_tokenizer **out,
                                           mambac_error *err) {
    mc_gguf g;
    mc_tensor_list tensors = {0};
    mambac_status st = mc_gguf_parse(data, size, path, &g, &tensors, err);
    const char *s, *model;
    size_t n, mlen;
    if (st == MAMBAC_OK && mc_gguf_get_str(&g, "tokenizer.huggingface.json", &s, &n)) {
        st = mc_tokenizer_from_json(s, n, path, out, err);
    } else if (st == MAMBAC_OK) {
        if (!mc_gguf_get_str(&g, "tokenizer.ggml.model", &model, &mlen))
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: the GGUF file has no tokenizer (give one with --tokenizer)", path);
        else if (mlen != 4 || memcmp(model, "gpt2", 4) != 0)
            st = mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: tokenizer model '%.*s' is not supported (only gpt2 byte-level BPE)",
                         path, (int)(mlen > 32 ? 32 : mlen), model);
        char *text = st == MAMBAC_OK ? json_from_ggml(&g, path, err) : NULL;
        if (st == MAMBAC_OK && !text) st = MAMBAC_ERR_FORMAT;
        if (text) st = mc_tokenizer_from_json_ex(text, strlen(text), path, 1, out, err);
        free(text);
    }
    mc_gguf_free(&g);
    mc_tensor_list_free(&tensors);
    return st;
}

mambac_status mc_tokenizer_from_gguf(const char *path, mambac_tokenizer **out, mambac_error *err) {
    mc_file f;
    mambac_status st = mc_file_map(path, &f, err);
    if (st != MAMBAC_OK) return st;
    st = mc_tokenizer_from_gguf_bytes(f.data, f.size, path, out, err);
    mc_file_unmap(&f);
    return st;
}
