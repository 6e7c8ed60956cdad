/* testutil.h — helpers shared by the C tests: reading reference safetensors files,
 * relative L2 error, temporary folders, writing small files. */
#ifndef MAMBAC_TESTUTIL_H
#define MAMBAC_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "io/file.h"
#include "io/tensors.h"
#include "mambac.h"

typedef struct ref_file {
    mc_file file;
    mc_tensor_list tensors;
} ref_file;

int ref_open(ref_file *r, const char *path);
void ref_close(ref_file *r);
/* The tensor `name` converted to float32/int32 in a malloc'd buffer (NULL if absent). */
float *ref_f32(const ref_file *r, const char *name, int64_t *shape0, int64_t *shape1);
int32_t *ref_i32(const ref_file *r, const char *name, int64_t *n);

/* ||a - b|| / ||b|| over rows of `cols` columns taken from arrays with row strides. */
double rel_l2(const float *a, int64_t a_stride, const float *b, int64_t b_stride, int64_t rows, int64_t cols);

/* A fresh empty folder under $TMPDIR; returns a static-lifetime malloc'd path. */
char *make_temp_dir(void);
/* rm -rf of a folder made by make_temp_dir. */
int remove_temp_dir(const char *dir);
int write_file(const char *path, const void *data, size_t n);
char *path_in(const char *dir, const char *name); /* malloc'd */

/* The backend the end-to-end tests run on: MAMBAC_TEST_BACKEND ("cpu" when unset; e.g.
 * "cuda" on a GPU machine, scripts/test_cuda.sh), with MAMBAC_TEST_PRECISION. */
const char *test_backend(void);
int test_backend_is_cpu(void);
mambac_status test_model_load(const char *path, int32_t repack, mambac_model **out, mambac_error *err);

#endif

/* ---- crafting files --------------------------------------------------------- */

/* A tensor to write: raw bytes with a safetensors dtype string and a shape. */
typedef struct st_tensor {
    const char *name;
    const char *dtype; /* "F32", ... or anything, for bad-input tests */
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} st_tensor;

/* Writes a well-formed safetensors file. */
int write_safetensors(const char *path, const st_tensor *t, size_t n);
/* Writes 8-byte length + the given header text + data bytes verbatim. */
int write_raw_safetensors(const char *path, uint64_t header_len, const char *header, const void *data, size_t n);

/* Writes an uncompressed zip of the given entries (what torch.save writes). */
typedef struct zip_item {
    const char *name;
    const void *data;
    size_t size;
} zip_item;
int write_zip(const char *path, const zip_item *items, size_t n);

/* Copies every regular file of src into dst (both folders must exist). */
int copy_dir_files(const char *src, const char *dst);
/* Loads a text file (NUL-terminated, malloc'd). */
char *read_text(const char *path);
/* Replaces the first occurrence of `from` by `to` in a malloc'd string (returns new). */
char *replace_once(const char *s, const char *from, const char *to);
/* Replaces the value of the first "key": ... in a JSON text (value = scalar, array or
 * object) by `value`; returns a new malloc'd text, or NULL when key is absent. */
char *json_set_field(const char *text, const char *key, const char *value);

/* The tensors of a safetensors file as st_tensor rows (pointing into the mapping). */
typedef struct st_model {
    ref_file ref;
    st_tensor *t;
    size_t n;
} st_model;
int st_model_open(st_model *m, const char *path);
void st_model_close(st_model *m);
