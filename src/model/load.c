/* load.c — mambac_model_load: find config and weight files in a checkpoint folder,
 * map them, parse their tensor directories, then bind (weights.c). Lookup order:
 * model.safetensors, model.safetensors.index.json (shards), pytorch_model.bin,
 * pytorch_model.bin.index.json. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "core/error.h"
#include "core/strset.h"
#include "io/file.h"
#include "io/json.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/model.h"

#define MAX_CONFIG_BYTES (1u << 20)
#define MAX_INDEX_BYTES (64u << 20)

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Maps one weight file and adds its tensors. */
static mambac_status add_file(struct mambac_model *m, const char *name, mambac_error *err) {
    char *path = mc_path_join(m->dir, name);
    char **paths = realloc(m->paths, (m->nfiles + 1) * sizeof *paths);
    if (paths) m->paths = paths;
    mc_file *files = paths ? realloc(m->files, (m->nfiles + 1) * sizeof *files) : NULL;
    if (files) m->files = files;
    if (!path || !paths || !files) {
        free(path);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    }
    mc_file *f = &m->files[m->nfiles];
    mambac_status st = mc_file_load(path, m->no_mmap, f, err);
    if (st != MAMBAC_OK) {
        free(path);
        return st;
    }
    m->paths[m->nfiles++] = path;
    int pt = ends_with(name, ".bin");
    m->info.format = pt ? "pytorch" : "safetensors";
    return pt ? mc_torch_parse(f->data, f->size, path, &m->tensors, err)
              : mc_safetensors_parse(f->data, f->size, path, &m->tensors, err);
}

/* A shard index: {"weight_map": {tensor: file}}. Every file is loaded once, and every
 * tensor it names must be found in the file it names. */
static mambac_status add_sharded(struct mambac_model *m, const char *index_name, mambac_error *err) {
    char *path = mc_path_join(m->dir, index_name), *text = NULL;
    if (!path) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    size_t len;
    mambac_status st = mc_file_read_all(path, MAX_INDEX_BYTES, &text, &len, err);
    cJSON *root = st == MAMBAC_OK ? mc_json_parse(text, len, path, err) : NULL;
    if (st == MAMBAC_OK && !root) st = MAMBAC_ERR_FORMAT;
    if (st == MAMBAC_OK) st = mc_json_unique_keys(root, path, err);
    const cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (st == MAMBAC_OK && !cJSON_IsObject(map))
        st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: no 'weight_map' object", path);
    mc_strset files = {0}; /* each shard loaded once (a set: linear in the entries whatever their order) */
    if (st == MAMBAC_OK && !mc_strset_init(&files, (size_t)cJSON_GetArraySize(map)))
        st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    for (const cJSON *it = map ? map->child : NULL; st == MAMBAC_OK && it; it = it->next) {
        const char *file = cJSON_IsString(it) ? it->valuestring : NULL;
        if (!file || !*file || strchr(file, '/') || strcmp(file, "..") == 0) {
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: weight_map entry '%s' does not name a file in the folder", path, it->string);
            break;
        }
        if (mc_strset_add(&files, file, strlen(file))) st = add_file(m, file, err);
    }
    mc_strset_free(&files);
    for (const cJSON *it = map ? map->child : NULL; st == MAMBAC_OK && it; it = it->next) {
        const mc_tensor_entry *e = mc_tensor_list_find(&m->tensors, it->string);
        char *want = mc_path_join(m->dir, it->valuestring); /* the exact file (a suffix match let xa.safetensors pass for a.safetensors) */
        if (!want) st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
        else if (!e || strcmp(e->file, want) != 0)
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' is not in %s as the index says", path, it->string,
                         it->valuestring);
        free(want);
    }
    cJSON_Delete(root);
    free(text);
    free(path);
    return st;
}

static mambac_status load_weights(struct mambac_model *m, mambac_error *err) {
    static const char *single[] = {"model.safetensors", "pytorch_model.bin"};
    static const char *sharded[] = {"model.safetensors.index.json", "pytorch_model.bin.index.json"};
    for (int i = 0; i < 2; i++) {
        char *p = mc_path_join(m->dir, single[i]);
        char *q = mc_path_join(m->dir, sharded[i]);
        if (!p || !q) {
            free(p);
            free(q);
            return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
        }
        int has_single = mc_file_exists(p), has_index = mc_file_exists(q);
        free(p);
        free(q);
        if (has_single) return add_file(m, single[i], err);
        if (has_index) return add_sharded(m, sharded[i], err);
    }
    return mc_fail(err, MAMBAC_ERR_IO,
                   "%s: no weights found (expected model.safetensors, model.safetensors.index.json or pytorch_model.bin)",
                   m->dir);
}

mambac_model_params mambac_model_default_params(void) {
    return (mambac_model_params){.backend = NULL, .repack = -1, .precision = NULL, .no_mmap = 0};
}

mambac_status mambac_model_load(const char *path, mambac_model **out, mambac_error *err) {
    return mambac_model_load_ex(path, NULL, out, err);
}

/* The backend named in the parameters prepares the bound weights (repacking on the CPU,
 * device copies on a GPU). */
static mambac_status attach_backend(struct mambac_model *m, const mambac_model_params *p, mambac_error *err) {
    const char *device = NULL;
    const mc_backend *be = mc_backend_find(p->backend, &device, err);
    if (!be) return MAMBAC_ERR_UNSUPPORTED;
    if (p->repack < -1 || p->repack > 1)
        return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "repack must be -1, 0 or 1, got %d", p->repack);
    m->params = *p;
    m->params.backend = m->params.precision = NULL;
    snprintf(m->backend_name, sizeof m->backend_name, "%s%s%s", be->name, device ? ":" : "", device ? device : "");
    mambac_status st = be->model_init(m, device, p, err);
    if (st == MAMBAC_OK) m->be = be;
    return st;
}

const char *mambac_model_backend(const mambac_model *m) { return m->backend_name; }

mambac_status mambac_model_load_ex(const char *path, const mambac_model_params *params, mambac_model **out,
                                   mambac_error *err) {
    *out = NULL;
    const mambac_model_params p = params ? *params : mambac_model_default_params();
    if (!path || !*path) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "no model path given");
    struct mambac_model *m = calloc(1, sizeof *m);
    if (!m) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    /* A folder, or the config.json inside one. */
    struct stat sb;
    if (stat(path, &sb) != 0) {
        free(m);
        return mc_fail(err, MAMBAC_ERR_IO, "%s: no such file or folder", path);
    }
    if (S_ISDIR(sb.st_mode)) {
        m->dir = strdup(path);
    } else {
        const char *slash = strrchr(path, '/');
        m->dir = slash ? strndup(path, (size_t)(slash - path + (slash == path))) : strdup(".");
    }
    m->path = strdup(path);
    m->no_mmap = p.no_mmap != 0;
    mambac_status st;
    if (!m->dir || !m->path) {
        st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    } else if (!S_ISDIR(sb.st_mode) && mc_is_gguf_file(path)) {
        st = mc_gguf_model_load(m, err);
    } else {
        char *cfg_path = S_ISDIR(sb.st_mode) ? mc_path_join(m->dir, "config.json") : strdup(path);
        char *text = NULL;
        size_t len = 0;
        st = !cfg_path ? mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory")
                       : mc_file_read_all(cfg_path, MAX_CONFIG_BYTES, &text, &len, err);
        if (st == MAMBAC_OK) st = mc_config_parse(text, len, cfg_path, &m->info, err);
        free(text);
        free(cfg_path);
        if (st == MAMBAC_OK) st = load_weights(m, err);
    }
    if (st == MAMBAC_OK) st = mc_model_bind(m, err);
    if (st == MAMBAC_OK) st = attach_backend(m, &p, err);
    m->info.dir = m->dir;
    m->info.path = m->path;
    if (st != MAMBAC_OK) {
        mambac_model_free(m);
        return st;
    }
    *out = m;
    return MAMBAC_OK;
}

void mambac_model_free(mambac_model *m) {
    if (!m) return;
    if (m->be) m->be->model_free(m);
    for (size_t i = 0; i < m->nfiles; i++) {
        mc_file_unmap(&m->files[i]);
        free(m->paths[i]);
    }
    free(m->files);
    free(m->paths);
    mc_tensor_list_free(&m->tensors);
    free(m->layers);
    free(m->arena);
    free(m->dir);
    free(m->path);
    free(m);
}

const mambac_model_info *mambac_model_get_info(const mambac_model *m) { return &m->info; }
