/* testutil.h — helpers shared by the C tests: reading reference safetensors files,
 * relative L2 error, temporary folders, writing small files. */
#ifndef MAMBAC_TESTUTIL_H
#define MAMBAC_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "io/file.h"
#include "io/tensors.h"

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
int write_file(const char *path, const void *data, size_t n);
char *path_in(const char *dir, const char *name); /* malloc'd */

#endif
