/* checkpoint.c — a training checkpoint is a model folder transformers and mambac load
 * (config.json, model.safetensors, tokenizer.json) plus the optimizer moments
 * (optimizer-m.safetensors, optimizer-v.safetensors) and train_state.json (step,
 * generator state, hyperparameters, and a checksum of each of the three weight files).
 * Every file is written to a temporary name and renamed, train_state.json last: the
 * model file is always whole, and a crash between two renames leaves checksums that
 * do not match, which resume reports instead of continuing from a torn state. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/file.h"
#include "io/json.h"
#include "train/checkpoint.h"

static const char *files[] = {"model.safetensors", "optimizer-m.safetensors", "optimizer-v.safetensors"};

mambac_status mc_file_fnv(const char *path, uint64_t *out, mambac_error *err) {
    mc_file f;
    mambac_status st = mc_file_map(path, &f, err);
    if (st != MAMBAC_OK) return st;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < f.size; i++) h = (h ^ f.data[i]) * 0x100000001b3ull;
    mc_file_unmap(&f);
    *out = h;
    return MAMBAC_OK;
}

static mambac_status write_json(const char *path, cJSON *root, mambac_error *err) {
    char *text = cJSON_Print(root);
    if (!text) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    mc_atomic_file af;
    mambac_status st = mc_atomic_open(&af, path, err);
    if (st == MAMBAC_OK) st = mc_atomic_write(&af, text, strlen(text), err);
    if (st == MAMBAC_OK) st = mc_atomic_commit(&af, err);
    else mc_atomic_abort(&af);
    free(text);
    return st;
}

mambac_status mc_ckpt_save(const char *dir, const mc_params *P, const mc_adamw *o, cJSON *state, mambac_error *err) {
    char *paths[3] = {0};
    mambac_status st = MAMBAC_OK;
    for (int i = 0; i < 3 && st == MAMBAC_OK; i++)
        if (!(paths[i] = mc_path_join(dir, files[i]))) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    if (st == MAMBAC_OK) st = mc_params_write(P, paths[0], 0, NULL, NULL, err);
    if (st == MAMBAC_OK) st = mc_params_write(P, paths[1], 2, o->m, NULL, err);
    if (st == MAMBAC_OK) st = mc_params_write(P, paths[2], 3, o->v, NULL, err);
    cJSON *sums = cJSON_CreateObject();
    for (int i = 0; i < 3 && st == MAMBAC_OK; i++) {
        uint64_t h;
        char hex[24];
        if ((st = mc_file_fnv(paths[i], &h, err)) != MAMBAC_OK) break;
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        cJSON_AddStringToObject(sums, files[i], hex);
    }
    cJSON_DeleteItemFromObject(state, "checksums");
    cJSON_AddItemToObject(state, "checksums", sums);
    char *sp = mc_path_join(dir, "train_state.json");
    if (st == MAMBAC_OK) st = sp ? write_json(sp, state, err) : mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    free(sp);
    for (int i = 0; i < 3; i++) free(paths[i]);
    return st;
}

mambac_status mc_ckpt_read_state(const char *dir, cJSON **state, mambac_error *err) {
    char *sp = mc_path_join(dir, "train_state.json"), *text = NULL;
    size_t len;
    *state = NULL;
    if (!sp) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    mambac_status st = mc_file_read_all(sp, 1u << 20, &text, &len, err);
    if (st == MAMBAC_OK && !(*state = mc_json_parse(text, len, sp, err))) st = MAMBAC_ERR_FORMAT;
    if (st == MAMBAC_OK) st = mc_json_unique_keys(*state, sp, err);
    const cJSON *fmt = *state ? cJSON_GetObjectItemCaseSensitive(*state, "format") : NULL;
    if (st == MAMBAC_OK && (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "mambac-train-state-1") != 0))
        st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: not a mambac training state (format mambac-train-state-1)", sp);
    const cJSON *sums = *state ? cJSON_GetObjectItemCaseSensitive(*state, "checksums") : NULL;
    for (int i = 0; i < 3 && st == MAMBAC_OK; i++) {
        char *p = mc_path_join(dir, files[i]), hex[24];
        uint64_t h = 0;
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sums, files[i]));
        st = p ? mc_file_fnv(p, &h, err) : mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        if (st == MAMBAC_OK && (!want || strcmp(want, hex) != 0))
            st = mc_fail(err, MAMBAC_ERR_FORMAT,
                         "%s: %s does not match the checksum in train_state.json (a save was interrupted?): cannot resume",
                         dir, files[i]);
        free(p);
    }
    free(text);
    free(sp);
    if (st != MAMBAC_OK) {
        cJSON_Delete(*state);
        *state = NULL;
    }
    return st;
}

mambac_status mc_ckpt_load_optimizer(const char *dir, const mc_params *P, mc_adamw *o, mambac_error *err) {
    char *pm = mc_path_join(dir, files[1]), *pv = mc_path_join(dir, files[2]);
    mambac_status st = pm && pv ? mc_params_read(P, pm, o->m, err) : mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    if (st == MAMBAC_OK) st = mc_params_read(P, pv, o->v, err);
    free(pm);
    free(pv);
    return st;
}
