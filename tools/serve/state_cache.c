/* state_cache.c — the prefix cache (state_cache.h): a list of entries in recency order,
 * searched linearly (a few hundred entries at most for the budgets people give; each
 * comparison stops at the first differing token). */
#define _DEFAULT_SOURCE /* DT_REG, d_type */
#include "serve/state_cache.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct entry {
    int32_t *ids;
    size_t n;
    mambac_state *state;
    float *logits; /* or NULL */
    size_t bytes;
    uint64_t used; /* recency tick */
} entry;

struct srv_cache {
    const mambac_model *model;
    size_t budget, bytes, state_bytes, logit_bytes;
    entry *e;
    size_t n, cap;
    uint64_t tick, hits, misses, evictions;
};

srv_cache *srv_cache_new(const mambac_model *model, size_t budget) {
    srv_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->model = model, c->budget = budget;
    c->state_bytes = mambac_state_size_bytes(model);
    c->logit_bytes = (size_t)mambac_model_get_info(model)->n_vocab_rows * sizeof(float);
    return c;
}

static void drop(srv_cache *c, size_t i) {
    entry *x = &c->e[i];
    c->bytes -= x->bytes;
    free(x->ids), free(x->logits);
    mambac_state_free(x->state);
    c->e[i] = c->e[--c->n];
}

void srv_cache_free(srv_cache *c) {
    if (!c) return;
    while (c->n) drop(c, c->n - 1);
    free(c->e);
    free(c);
}

size_t srv_cache_lookup(srv_cache *c, const int32_t *ids, size_t n, mambac_state *dst, float *logits) {
    size_t best = 0, best_i = 0;
    for (size_t i = 0; i < c->n; i++) {
        const entry *x = &c->e[i];
        if (x->n <= best || x->n > n || (x->n == n && !x->logits)) continue;
        if (memcmp(x->ids, ids, x->n * sizeof *ids) == 0) best = x->n, best_i = i;
    }
    if (!best || mambac_state_copy(dst, c->e[best_i].state, NULL) != MAMBAC_OK) {
        c->misses++;
        return 0;
    }
    entry *x = &c->e[best_i];
    if (best == n) memcpy(logits, x->logits, c->logit_bytes);
    x->used = ++c->tick;
    c->hits++;
    return best;
}

void srv_cache_store(srv_cache *c, const int32_t *ids, size_t n, const mambac_state *src, const float *logits) {
    const size_t bytes = c->state_bytes + n * sizeof *ids + (logits ? c->logit_bytes : 0);
    if (!n || bytes > c->budget) return;
    for (size_t i = 0; i < c->n; i++) /* the same prefix again: refreshed, or replaced by one with logits */
        if (c->e[i].n == n && memcmp(c->e[i].ids, ids, n * sizeof *ids) == 0) {
            if (!logits || c->e[i].logits) {
                c->e[i].used = ++c->tick;
                return;
            }
            drop(c, i);
            break;
        }
    while (c->n && c->bytes + bytes > c->budget) { /* least recently used first */
        size_t lru = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[lru].used) lru = i;
        drop(c, lru);
        c->evictions++;
    }
    if (c->n == c->cap) {
        const size_t cap = c->cap ? 2 * c->cap : 16;
        entry *e = realloc(c->e, cap * sizeof *e);
        if (!e) return;
        c->e = e, c->cap = cap;
    }
    entry x = {.n = n, .bytes = bytes, .used = ++c->tick};
    x.ids = malloc(n * sizeof *ids);
    x.logits = logits ? malloc(c->logit_bytes) : NULL;
    if (!x.ids || (logits && !x.logits) || mambac_state_new(c->model, &x.state, NULL) != MAMBAC_OK ||
        mambac_state_copy(x.state, src, NULL) != MAMBAC_OK) {
        free(x.ids), free(x.logits);
        if (x.state) mambac_state_free(x.state);
        return;
    }
    memcpy(x.ids, ids, n * sizeof *ids);
    if (logits) memcpy(x.logits, logits, c->logit_bytes);
    c->e[c->n++] = x;
    c->bytes += bytes;
}

srv_cache_stats srv_cache_get_stats(const srv_cache *c) {
    return (srv_cache_stats){c->n, c->bytes, c->budget, c->hits, c->misses, c->evictions};
}

/* ---- persistence ----------------------------------------------------------------------
 * An entry's file: "MCSC" | u32 version 1 | u64 tokens | u32 has logits | u32 logit rows |
 * u64 state bytes | tokens (int32) | logits (float32, when present) | the state as
 * mambac_state_to_bytes writes it (its own header, checked when read). Little-endian, as
 * the state file is. */
#define CACHE_MAGIC "MCSC"
#define CACHE_EXT ".mcsc"
typedef struct file_head {
    char magic[4];
    uint32_t version;
    uint64_t n;
    uint32_t has_logits, rows;
    uint64_t state_bytes;
} file_head;

static uint64_t fnv(const int32_t *ids, size_t n) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)ids;
    for (size_t i = 0; i < n * sizeof *ids; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int write_entry(const srv_cache *c, const entry *x, const char *path) {
    const size_t sb = mambac_state_file_bytes(c->model);
    void *bytes = malloc(sb);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%.4200s.tmp", path);
    FILE *f = bytes ? fopen(tmp, "wb") : NULL;
    const file_head h = {{'M', 'C', 'S', 'C'}, 1, x->n, x->logits != NULL,
                         (uint32_t)(c->logit_bytes / sizeof(float)), sb};
    int ok = f && mambac_state_to_bytes(x->state, bytes, sb, NULL) == MAMBAC_OK && fwrite(&h, sizeof h, 1, f) == 1 &&
             fwrite(x->ids, sizeof *x->ids, x->n, f) == x->n &&
             (!x->logits || fwrite(x->logits, 1, c->logit_bytes, f) == c->logit_bytes) && fwrite(bytes, 1, sb, f) == sb;
    if (f) ok &= fflush(f) == 0 && fsync(fileno(f)) == 0, ok &= fclose(f) == 0;
    free(bytes);
    if (ok) ok = rename(tmp, path) == 0;
    if (!ok) remove(tmp);
    return ok;
}

static int has_ext(const char *name) {
    const size_t n = strlen(name), e = strlen(CACHE_EXT);
    return n > e && strcmp(name + n - e, CACHE_EXT) == 0;
}

size_t srv_cache_save_dir(srv_cache *c, const char *dir) {
    size_t written = 0;
    char path[4200];
    char (*names)[32] = calloc(c->n ? c->n : 1, sizeof *names);
    if (!names) return 0;
    for (size_t i = 0; i < c->n; i++) {
        snprintf(names[i], sizeof names[i], "%016llx" CACHE_EXT, (unsigned long long)fnv(c->e[i].ids, c->e[i].n));
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (write_entry(c, &c->e[i], path)) written++;
        else fprintf(stderr, "mambac serve: could not write %s\n", path);
    }
    DIR *d = opendir(dir); /* files of entries no longer cached */
    for (struct dirent *de; d && (de = readdir(d));) {
        if (!has_ext(de->d_name)) continue;
        int kept = 0;
        for (size_t i = 0; i < c->n && !kept; i++) kept = strcmp(names[i], de->d_name) == 0;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (!kept) remove(path);
    }
    if (d) closedir(d);
    free(names);
    return written;
}

/* One file back into the cache; 0 (and why on stderr) when it is not an entry of this model. */
static int read_entry(srv_cache *c, const char *path) {
    const size_t sb = mambac_state_file_bytes(c->model), rows = c->logit_bytes / sizeof(float);
    const int32_t vocab = mambac_model_get_info(c->model)->vocab_size;
    FILE *f = fopen(path, "rb");
    file_head h;
    struct stat st;
    int ok = f && fstat(fileno(f), &st) == 0 && fread(&h, sizeof h, 1, f) == 1 && memcmp(h.magic, CACHE_MAGIC, 4) == 0 &&
             h.version == 1 && h.rows == rows && h.state_bytes == sb && h.has_logits <= 1 && h.n > 0 &&
             h.n <= (uint64_t)(st.st_size / sizeof(int32_t)) &&
             (uint64_t)st.st_size == sizeof h + h.n * sizeof(int32_t) + (h.has_logits ? c->logit_bytes : 0) + sb;
    int32_t *ids = ok ? malloc(h.n * sizeof *ids) : NULL;
    float *logits = ok && h.has_logits ? malloc(c->logit_bytes) : NULL;
    void *bytes = ok ? malloc(sb) : NULL;
    mambac_state *state = NULL;
    ok = ok && ids && bytes && (!h.has_logits || logits) && fread(ids, sizeof *ids, h.n, f) == h.n &&
         (!logits || fread(logits, 1, c->logit_bytes, f) == c->logit_bytes) && fread(bytes, 1, sb, f) == sb;
    for (uint64_t i = 0; ok && i < h.n; i++) ok = ids[i] >= 0 && ids[i] < vocab;
    ok = ok && mambac_state_new(c->model, &state, NULL) == MAMBAC_OK &&
         mambac_state_from_bytes(state, bytes, sb, NULL) == MAMBAC_OK;
    if (ok) srv_cache_store(c, ids, h.n, state, logits);
    else fprintf(stderr, "mambac serve: %s is not a cached state of this model: skipped\n", path);
    if (f) fclose(f);
    if (state) mambac_state_free(state);
    free(ids), free(logits), free(bytes);
    return ok;
}

typedef struct dated {
    char name[256];
    long long mtime;
} dated;
static int by_mtime(const void *a, const void *b) {
    const long long x = ((const dated *)a)->mtime, y = ((const dated *)b)->mtime;
    return x < y ? -1 : x > y;
}

size_t srv_cache_load_dir(srv_cache *c, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    dated *files = NULL;
    size_t n = 0, cap = 0, loaded = 0;
    char path[4200];
    for (struct dirent *de; (de = readdir(d));) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (!has_ext(de->d_name) || strlen(de->d_name) >= sizeof files->name || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            dated *g = realloc(files, (cap = cap ? 2 * cap : 64) * sizeof *g);
            if (!g) break;
            files = g;
        }
        snprintf(files[n].name, sizeof files[n].name, "%s", de->d_name);
        files[n++].mtime = (long long)st.st_mtime;
    }
    closedir(d);
    if (n) qsort(files, n, sizeof *files, by_mtime); /* the newest stored last: most recently used */
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        loaded += (size_t)read_entry(c, path);
    }
    free(files);
    return loaded;
}
