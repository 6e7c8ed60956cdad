/* json.h — JSON parsing through cJSON, made lenient in the one way real checkpoint
 * configs need: Python's json.dump writes infinity as a bare `Infinity` literal.
 * Numbers may also be written {"__float__": "Infinity"} (transformers' encoding). */
#ifndef MC_JSON_H
#define MC_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "mambac.h"

/* Parses text[0..len). `what` names the source in error messages (a path). Returns a
 * tree to free with cJSON_Delete, or NULL with err set. */
cJSON *mc_json_parse(const char *text, size_t len, const char *what, mambac_error *err);

/* Refuses an object anywhere in the tree with a key twice ("'key' appears twice"): cJSON
 * keeps both and lookups find the first, where Python's json keeps the last — a file
 * would mean one thing to mambac and another to transformers. For config files. */
mambac_status mc_json_unique_keys(const cJSON *root, const char *what, mambac_error *err);

/* A number, a bare/quoted (+/-)Infinity, or {"__float__": "..."}; 0 when it is none. */
int mc_json_number(const cJSON *item, double *out);

/* Typed field lookup. Return 1 found and of the right type, 0 absent, -1 wrong type. */
int mc_json_get_int(const cJSON *obj, const char *key, long long *out);
int mc_json_get_num(const cJSON *obj, const char *key, double *out);
int mc_json_get_bool(const cJSON *obj, const char *key, int *out);
const char *mc_json_get_str(const cJSON *obj, const char *key);

#endif
