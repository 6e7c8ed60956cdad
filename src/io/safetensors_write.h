/* safetensors_write.h — writing safetensors files tensor by tensor: the header is
 * computed from the declared tensors first, then their data is streamed in order, so
 * a multi-GB file never has to sit in memory. Written atomically (mc_atomic_file). */
#ifndef MC_SAFETENSORS_WRITE_H
#define MC_SAFETENSORS_WRITE_H

#include <stdint.h>

#include "io/file.h"
#include "io/tensors.h"

typedef struct mc_st_decl {
    char name[160];
    mambac_dtype dtype;
    int ndim;
    int64_t shape[4];
} mc_st_decl;

typedef struct mc_st_writer {
    mc_atomic_file af;
    const mc_st_decl *decls;
    size_t n, next;        /* next tensor expected */
    uint64_t left;         /* bytes still owed for the current tensor */
} mc_st_writer;

uint64_t mc_st_decl_bytes(const mc_st_decl *d);
/* Opens path and writes the header for the declared tensors (kept by pointer). */
mambac_status mc_st_writer_open(mc_st_writer *w, const char *path, const mc_st_decl *decls, size_t n, mambac_error *err);
/* Appends float32 values to the current tensor (converted to its dtype); a tensor may
 * be written in any number of pieces. */
mambac_status mc_st_writer_put(mc_st_writer *w, const float *v, size_t count, mambac_error *err);
/* Checks every byte was written, then renames into place. */
mambac_status mc_st_writer_close(mc_st_writer *w, mambac_error *err);
void mc_st_writer_abort(mc_st_writer *w);

#endif
