/* gguf.h — GGUF files (llama.cpp's model format), versions 2 and 3, little-endian:
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x (string key, u32 type, value), n_tensors x (string name, u32 n_dims,
 *   u64 ne[n_dims] (ne[0] innermost), u32 ggml type, u64 offset), padding to
 *   general.alignment (default 32), tensor data (offsets relative to its start).
 * Strings are u64 length + bytes. The parser checks every length, count, offset and
 * size against the file before use; tensors come out in mambac's row-major order
 * (shape[0] outermost = ne[n_dims - 1]). The writer (gguf_write.c) streams a file
 * through an atomic temp-then-rename. */
#ifndef MC_GGUF_H
#define MC_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "io/tensors.h"
#include "mambac.h"

enum {
    MC_GGUF_U8 = 0, MC_GGUF_I8, MC_GGUF_U16, MC_GGUF_I16, MC_GGUF_U32, MC_GGUF_I32, MC_GGUF_F32,
    MC_GGUF_BOOL, MC_GGUF_STRING, MC_GGUF_ARRAY, MC_GGUF_U64, MC_GGUF_I64, MC_GGUF_F64,
};

/* ggml tensor type numbers mambac reads and writes. */
enum {
    MC_GGML_F32 = 0, MC_GGML_F16 = 1, MC_GGML_Q4_0 = 2, MC_GGML_Q5_0 = 6, MC_GGML_Q8_0 = 8,
    MC_GGML_Q4_K = 12, MC_GGML_Q6_K = 14, MC_GGML_BF16 = 30,
};

typedef struct mc_gguf_kv {
    char *key;             /* owned */
    uint32_t type;         /* MC_GGUF_*; for arrays, the element type is arr_type */
    uint32_t arr_type;
    uint64_t n;            /* array length (1 for scalars) */
    const uint8_t *data;   /* the value (for arrays: the first element) in the mapping */
} mc_gguf_kv;

typedef struct mc_gguf {
    uint32_t version;
    uint64_t alignment;
    mc_gguf_kv *kv;
    size_t n_kv;
} mc_gguf;

/* Parses a mapped GGUF file: metadata into g, tensors (with their GGUF names) into
 * tensors. Tensor data pointers point into `data`. */
mambac_status mc_gguf_parse(const void *data, size_t size, const char *path, mc_gguf *g, mc_tensor_list *tensors,
                            mambac_error *err);
void mc_gguf_free(mc_gguf *g);

const mc_gguf_kv *mc_gguf_find(const mc_gguf *g, const char *key);
/* Typed getters: 1 when the key exists with a compatible scalar type (any integer
 * type in range for ints; f32 or f64 for floats; string for strings), else 0. */
int mc_gguf_get_int(const mc_gguf *g, const char *key, int64_t *out);
int mc_gguf_get_float(const mc_gguf *g, const char *key, double *out);
int mc_gguf_get_str(const mc_gguf *g, const char *key, const char **s, size_t *len);
/* Walks a string array (validated by the parser): *cursor starts at kv->data. */
void mc_gguf_next_str(const uint8_t **cursor, const char **s, size_t *len);
/* Element i of an integer or float array (validated type), as double. */
double mc_gguf_arr_num(const mc_gguf_kv *kv, uint64_t i);

/* ggml type number <-> mambac dtype. */
int mc_ggml_to_dtype(uint32_t ggml_type, mambac_dtype *out);
uint32_t mc_dtype_to_ggml(mambac_dtype t);

/* ---- writing ------------------------------------------------------------------- */

typedef struct mc_gguf_writer mc_gguf_writer;

/* Starts a file at path (written to a temporary name until mc_gguf_writer_finish). */
mambac_status mc_gguf_writer_open(mc_gguf_writer **w, const char *path, mambac_error *err);
/* Metadata, in the order written. Arrays of strings take n C strings of given lengths. */
void mc_gguf_add_str(mc_gguf_writer *w, const char *key, const char *value);
void mc_gguf_add_u32(mc_gguf_writer *w, const char *key, uint32_t value);
void mc_gguf_add_i32(mc_gguf_writer *w, const char *key, int32_t value);
void mc_gguf_add_f32(mc_gguf_writer *w, const char *key, float value);
void mc_gguf_add_bool(mc_gguf_writer *w, const char *key, int value);
void mc_gguf_add_str_array(mc_gguf_writer *w, const char *key, const char *const *s, const size_t *len, uint64_t n);
void mc_gguf_add_i32_array(mc_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* Declares a tensor: name, row-major shape (outermost first), type. Data follows in
 * the same order through mc_gguf_writer_data. */
void mc_gguf_add_tensor(mc_gguf_writer *w, const char *name, int ndim, const int64_t *shape, mambac_dtype t);
/* Writes the header (after the last declaration) then appends tensor bytes; each
 * tensor's bytes must be given in full, in declaration order (any number of calls). */
void mc_gguf_writer_data(mc_gguf_writer *w, const void *data, size_t n);
/* Checks every byte was given, flushes, renames into place. On any earlier failure
 * (or when abort is set) the temporary file is removed and nothing is left. */
mambac_status mc_gguf_writer_finish(mc_gguf_writer *w, int abort, mambac_error *err);

#endif
