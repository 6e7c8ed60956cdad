/* json.c — see json.h. */
#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strset.h"

/* Copies text, replacing bare Infinity / -Infinity tokens outside strings by 1e999,
 * which strtod (used by cJSON) reads as infinity. NaN stays and is refused by cJSON. */
static char *replace_bare_infinity(const char *text, size_t len, size_t *out_len) {
    static const char word[] = "Infinity";
    const size_t wl = sizeof word - 1;
    /* "1e999" (5) is shorter than "Infinity" (8): the output never grows. */
    char *out = malloc(len + 1);
    if (!out) return NULL;
    size_t o = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            out[o++] = c;
            if (c == '\\' && i + 1 < len) out[o++] = text[++i];
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
            out[o++] = c;
        } else if (c == 'I' && len - i >= wl && memcmp(text + i, word, wl) == 0) {
            memcpy(out + o, "1e999", 5);
            o += 5;
            i += wl - 1;
        } else {
            out[o++] = c;
        }
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

cJSON *mc_json_parse(const char *text, size_t len, const char *what, mambac_error *err) {
    size_t n;
    char *buf = replace_bare_infinity(text, len, &n);
    if (!buf) {
        mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    if (root) {
        /* cJSON stops after the first value: anything but whitespace after it is an error. */
        const char *p = end;
        while (p < buf + n && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
        if (p < buf + n) {
            cJSON_Delete(root);
            root = NULL;
            end = p;
        }
    }
    if (!root) {
        size_t off = end && end >= buf && end <= buf + n ? (size_t)(end - buf) : 0;
        size_t line = 1;
        for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
        mc_fail(err, MAMBAC_ERR_FORMAT, "%s: not valid JSON (near line %zu, byte %zu)", what, line, off);
    }
    free(buf);
    return root;
}

static int parse_inf_word(const char *s, double *out) {
    if (!s) return 0;
    if (strcmp(s, "Infinity") == 0 || strcmp(s, "inf") == 0) { *out = INFINITY; return 1; }
    if (strcmp(s, "-Infinity") == 0 || strcmp(s, "-inf") == 0) { *out = -INFINITY; return 1; }
    return 0;
}

int mc_json_number(const cJSON *item, double *out) {
    if (!item) return 0;
    if (cJSON_IsNumber(item)) {
        *out = item->valuedouble;
        return !isnan(*out);
    }
    if (cJSON_IsString(item)) return parse_inf_word(item->valuestring, out);
    if (cJSON_IsObject(item)) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(item, "__float__");
        return cJSON_IsString(f) && parse_inf_word(f->valuestring, out);
    }
    return 0;
}

int mc_json_get_num(const cJSON *obj, const char *key, double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return 0;
    return mc_json_number(it, out) ? 1 : -1;
}

int mc_json_get_int(const cJSON *obj, const char *key, long long *out) {
    double d;
    int r = mc_json_get_num(obj, key, &d);
    if (r != 1) return r;
    if (!(d >= -9.0e15 && d <= 9.0e15) || d != floor(d)) return -1;
    *out = (long long)d;
    return 1;
}

int mc_json_get_bool(const cJSON *obj, const char *key, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsBool(it)) return -1;
    *out = cJSON_IsTrue(it);
    return 1;
}

const char *mc_json_get_str(const cJSON *obj, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

mambac_status mc_json_unique_keys(const cJSON *root, const char *what, mambac_error *err) {
    if (!root || !(cJSON_IsObject(root) || cJSON_IsArray(root))) return MAMBAC_OK;
    mambac_status st = MAMBAC_OK;
    if (cJSON_IsObject(root)) {
        mc_strset keys;
        if (!mc_strset_init(&keys, (size_t)cJSON_GetArraySize(root))) return mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", what);
        for (const cJSON *c = root->child; c && st == MAMBAC_OK; c = c->next)
            if (c->string && !mc_strset_add(&keys, c->string, strlen(c->string)))
                st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: key '%s' appears twice", what, c->string);
        mc_strset_free(&keys);
    }
    for (const cJSON *c = root->child; c && st == MAMBAC_OK; c = c->next) st = mc_json_unique_keys(c, what, err);
    return st;
}
