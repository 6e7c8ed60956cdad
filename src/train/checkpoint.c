/* checkpoint.c — a training checkpoint is a model folder transformers and mambac load
 * (config.json, model.safetensors, tokenizer.json) plus the optimizer moments
 * (optimizer-m.safetensors, optimizer-v.safetensors) and train_state.json (step,
 * generator state, hyperparameters, and a checksum of each of the three weight files).
 *
 * A save is atomic as a whole: the four files are written into DIR/.saving (made
 * afresh); once all are complete that folder is renamed to DIR/.ready — the one step
 * that makes the new checkpoint count — and its files are then moved up into DIR,
 * train_state.json last, and .ready removed. A crash before the rename leaves the
 * previous checkpoint in DIR as it was (the next save or resume clears .saving); a crash
 * after it is finished by the next resume or save, which complete the moves first. At no
 * point is the model file in DIR torn, and the checksums still catch a folder tampered
 * with by hand. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static const char state_file[] = "train_state.json";

/* Removes DIR/sub and the checkpoint files in it (all a save puts there), if present. */
static void remove_staging(const char *dir, const char *sub) {
    char *d = mc_path_join(dir, sub);
    if (!d) return;
    for (int i = 0; i < 4; i++) {
        char *f = mc_path_join(d, i < 3 ? files[i] : state_file);
        if (f) unlink(f);
        free(f);
    }
    rmdir(d);
    free(d);
}

/* A complete new checkpoint waiting in DIR/.ready: its files moved up, state last. */
static mambac_status finish_ready(const char *dir, mambac_error *err) {
    char *ready = mc_path_join(dir, ".ready");
    if (!ready) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    struct stat sb;
    mambac_status st = MAMBAC_OK;
    if (stat(ready, &sb) == 0) {
        for (int i = 0; i < 4 && st == MAMBAC_OK; i++) {
            const char *name = i < 3 ? files[i] : state_file;
            char *from = mc_path_join(ready, name), *to = mc_path_join(dir, name);
            if (!from || !to) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
            else if (stat(from, &sb) == 0 && rename(from, to) != 0) /* absent: moved before a crash */
                st = mc_fail(err, MAMBAC_ERR_IO, "%s: cannot move %s into place: %s", dir, name, strerror(errno));
            free(from), free(to);
        }
        if (st == MAMBAC_OK && rmdir(ready) != 0)
            st = mc_fail(err, MAMBAC_ERR_IO, "%s: cannot remove .ready: %s", dir, strerror(errno));
    }
    free(ready);
    return st;
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
    mambac_status st = finish_ready(dir, err); /* a save interrupted after its switch */
    remove_staging(dir, ".saving");             /* one interrupted before */
    char *stage = mc_path_join(dir, ".saving"), *ready = mc_path_join(dir, ".ready"), *paths[4] = {0};
    if (st == MAMBAC_OK && (!stage || !ready)) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    if (st == MAMBAC_OK && mkdir(stage, 0755) != 0)
        st = mc_fail(err, MAMBAC_ERR_IO, "%s: cannot create: %s", stage, strerror(errno));
    for (int i = 0; i < 4 && st == MAMBAC_OK; i++)
        if (!(paths[i] = mc_path_join(stage, i < 3 ? files[i] : state_file))) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
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
    if (st == MAMBAC_OK) st = write_json(paths[3], state, err);
    if (st == MAMBAC_OK && rename(stage, ready) != 0)
        st = mc_fail(err, MAMBAC_ERR_IO, "%s: cannot switch to the new checkpoint: %s", dir, strerror(errno));
    if (st == MAMBAC_OK) st = finish_ready(dir, err);
    else remove_staging(dir, ".saving");
    for (int i = 0; i < 4; i++) free(paths[i]);
    free(stage), free(ready);
    return st;
}

mambac_status mc_ckpt_read_state(const char *dir, cJSON **state, mambac_error *err) {
    *state = NULL;
    mambac_status st = finish_ready(dir, err); /* a save interrupted after its switch is completed */
    if (st != MAMBAC_OK) return st;
    remove_staging(dir, ".saving");
    char *sp = mc_path_join(dir, state_file), *text = NULL;
    size_t len;
    if (!sp) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    st = mc_file_read_all(sp, 1u << 20, &text, &len, err);
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
