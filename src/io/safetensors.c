/* safetensors.c — see safetensors.h. */
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/json.h"

static int parse_elem(const char *s, mc_elem *out) {
    static const struct { const char *name; mc_elem e; } map[] = {
        {"F32", MC_ELEM_F32}, {"F16", MC_ELEM_F16}, {"BF16", MC_ELEM_BF16}, {"F64", MC_ELEM_F64},
        {"I8", MC_ELEM_I8},   {"I16", MC_ELEM_I16}, {"I32", MC_ELEM_I32},   {"I64", MC_ELEM_I64},
        {"U8", MC_ELEM_U8},   {"U16", MC_ELEM_U16}, {"U32", MC_ELEM_U32},   {"U64", MC_ELEM_U64},
        {"BOOL", MC_ELEM_BOOL},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i].name) == 0) { *out = map[i].e; return 1; }
    return 0;
}

/* Reads one header entry into e (offsets relative to the data section in *b, *en). */
static mambac_status parse_entry(const cJSON *item, const char *path, mc_tensor_entry *e,
                                 uint64_t *b, uint64_t *en, mambac_error *err) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: header entry '%s' is not an object", path, name);
    const char *dt = mc_json_get_str(item, "dtype");
    if (!dt) return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has no dtype", path, name);
    if (!parse_elem(dt, &e->elem))
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown dtype '%s'", path, name, dt);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    if (!cJSON_IsArray(shape))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has no shape array", path, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > MC_MAX_DIMS)
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions (max %d)", path, name, nd, MC_MAX_DIMS);
    e->ndim = nd;
    int k = 0;
    for (const cJSON *d = shape->child; d; d = d->next, k++) {
        double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
        if (!(v >= 0 && v <= 4.0e15) || v != (double)(int64_t)v)
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has an invalid dimension", path, name);
        e->shape[k] = (int64_t)v;
    }
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !cJSON_IsNumber(offs->child) ||
        !cJSON_IsNumber(offs->child->next))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has no valid data_offsets", path, name);
    double ob = offs->child->valuedouble, oe = offs->child->next->valuedouble;
    if (!(ob >= 0 && oe >= ob && oe <= 1.0e18) || ob != (double)(uint64_t)ob || oe != (double)(uint64_t)oe)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has invalid data_offsets", path, name);
    *b = (uint64_t)ob;
    *en = (uint64_t)oe;
    return MAMBAC_OK;
}

mambac_status mc_safetensors_parse(const unsigned char *data, size_t size, const char *path,
                                   mc_tensor_list *out, mambac_error *err) {
    if (size < 8)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: truncated safetensors file (%zu bytes, no header length)", path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    if (hlen > MC_SAFETENSORS_MAX_HEADER)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: absurd safetensors header length %llu", path, (unsigned long long)hlen);
    if (hlen > size - 8)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: truncated: header length %llu exceeds the file (%zu bytes)", path,
                       (unsigned long long)hlen, size);
    cJSON *root = mc_json_parse((const char *)data + 8, (size_t)hlen, path, err);
    if (!root) return MAMBAC_ERR_FORMAT;
    mambac_status st = MAMBAC_OK;
    size_t first = out->n;
    const unsigned char *base = data + 8 + hlen;
    uint64_t data_len = size - 8 - hlen;
    if (!cJSON_IsObject(root)) {
        st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: safetensors header is not a JSON object", path);
        goto done;
    }
    for (const cJSON *item = root->child; item; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) continue;
        mc_tensor_entry e = {.name = item->string, .file = path};
        uint64_t b = 0, en = 0, numel = 0;
        if ((st = parse_entry(item, path, &e, &b, &en, err)) != MAMBAC_OK) goto done;
        if (!mc_shape_numel(e.shape, e.ndim, UINT64_MAX / 8, &numel) ||
            numel * mc_elem_size(e.elem) != en - b) {
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s': shape and dtype need %llu bytes but data_offsets span %llu",
                         path, e.name, (unsigned long long)(numel * mc_elem_size(e.elem)), (unsigned long long)(en - b));
            goto done;
        }
        if (en > data_len) {
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' data_offsets [%llu, %llu) lie outside the file's %llu data bytes (truncated?)",
                         path, e.name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_len);
            goto done;
        }
        e.data = base + b;
        e.nbytes = (size_t)(en - b);
        if ((st = mc_tensor_list_add(out, &e, err)) != MAMBAC_OK) goto done;
    }
    st = mc_tensor_list_check_overlap(out, first, path, err);
done:
    if (st != MAMBAC_OK) { /* leave the list as it was */
        mc_tensor_list_truncate(out, first);
    }
    cJSON_Delete(root);
    return st;
}
