/* bytelevel.c — the tokenizer.json of a byte-level model: BPE over the 256 byte
 * tokens of GPT-2's byte-level alphabet with no merges and no regex split, so id b is
 * byte b. One code path (tokenizer.json) then serves byte models and BPE models, and
 * HF tokenizers / transformers read the same file. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/file.h"
#include "tokenizer/unicode.h"

static cJSON *byte_level(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddFalseToObject(o, "add_prefix_space");
    cJSON_AddTrueToObject(o, "trim_offsets");
    cJSON_AddFalseToObject(o, "use_regex");
    return o;
}

mambac_status mambac_tokenizer_write_bytelevel(const char *path, mambac_error *err) {
    cJSON *root = cJSON_CreateObject(), *model = cJSON_CreateObject(), *vocab = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON_AddItemToObject(root, "added_tokens", cJSON_CreateArray());
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", byte_level());
    cJSON_AddNullToObject(root, "post_processor");
    cJSON_AddItemToObject(root, "decoder", byte_level());
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddFalseToObject(model, "fuse_unk");
    cJSON_AddFalseToObject(model, "byte_fallback");
    cJSON_AddFalseToObject(model, "ignore_merges");
    for (int b = 0; b < 256; b++) {
        unsigned char u[5] = {0};
        mc_utf8_encode(mc_byte_to_cp((unsigned char)b), u);
        cJSON_AddNumberToObject(vocab, (const char *)u, b);
    }
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(model, "merges", cJSON_CreateArray());
    cJSON_AddItemToObject(root, "model", model);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    mc_atomic_file af;
    mambac_status st = mc_atomic_open(&af, path, err);
    if (st == MAMBAC_OK) {
        st = mc_atomic_write(&af, text, strlen(text), err);
        if (st == MAMBAC_OK) st = mc_atomic_write(&af, "\n", 1, err);
        if (st == MAMBAC_OK) st = mc_atomic_commit(&af, err);
        else mc_atomic_abort(&af);
    }
    free(text);
    return st;
}
