/* npy.h — writing NumPy .npy files (format 1.0, little-endian float32, C order). */
#ifndef MC_NPY_H
#define MC_NPY_H

#include <stdint.h>

#include "io/file.h"

/* Writes the .npy header for a float32 array of the given shape to an atomic file;
 * the caller then writes prod(shape) floats and commits. */
mambac_status mc_npy_write_header(mc_atomic_file *af, const int64_t *shape, int ndim, mambac_error *err);

#endif
