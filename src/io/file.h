/* file.h — read-only file mapping, small-file reads, and atomic writes.
 * Atomic writes go to "<path>.tmp.<pid>" and are renamed over <path> only once
 * everything was written and flushed, so no reader ever sees a partial file. */
#ifndef MC_FILE_H
#define MC_FILE_H

#include <stdio.h>
#include <stddef.h>

#include "mambac.h"

typedef struct mc_file {
    const unsigned char *data; /* NULL for an empty file */
    size_t size;
    int in_memory;             /* read into memory (page aligned), not mapped */
} mc_file;

/* The file's bytes: mapped read-only, or with in_memory read into memory — then a file
 * truncated or rewritten in place later cannot fault its reader (a mapping would: SIGBUS
 * on a page past the new end). */
mambac_status mc_file_load(const char *path, int in_memory, mc_file *f, mambac_error *err);
mambac_status mc_file_map(const char *path, mc_file *f, mambac_error *err);
/* Removes PATH.tmp.PID files and folders left by writers that were killed (PID no longer
 * running): every interrupted run would otherwise leave one more behind. A folder loses
 * its regular files, then itself (anything else inside keeps it). */
void mc_remove_stale_temps(const char *path);
/* Opens a regular file for reading (*fd), never waiting on a FIFO or device: anything
 * else is refused with "not a regular file". */
mambac_status mc_open_regular(const char *path, int *fd, mambac_error *err);
/* Unmaps (or frees) what mc_file_map / mc_file_load gave. */
void mc_file_unmap(mc_file *f);
/* Gives back the resident pages wholly inside [p, p + n) of f's mapping (they are read
 * again from the file if touched later): for ranges copied elsewhere. No-op outside f,
 * and for a file read into memory (its pages have nowhere to be read back from). */
void mc_file_forget(const mc_file *f, const void *p, size_t n);

/* Reads a whole (small) file into a NUL-terminated malloc'd buffer. Files larger than
 * max_bytes are refused. */
mambac_status mc_file_read_all(const char *path, size_t max_bytes, char **out, size_t *len,
                               mambac_error *err);

int mc_file_exists(const char *path);

typedef struct mc_atomic_file {
    FILE *fp;
    char *tmp_path;
    char *final_path;
} mc_atomic_file;

mambac_status mc_atomic_open(mc_atomic_file *af, const char *path, mambac_error *err);
mambac_status mc_atomic_write(mc_atomic_file *af, const void *buf, size_t n, mambac_error *err);
/* Flushes, closes and renames into place. On failure the temporary file is removed. */
mambac_status mc_atomic_commit(mc_atomic_file *af, mambac_error *err);
/* Closes and removes the temporary file (safe to call after a failed commit). */
void mc_atomic_abort(mc_atomic_file *af);

/* "dir" + "/" + "name" in a malloc'd string (NULL on allocation failure). */
char *mc_path_join(const char *dir, const char *name);

#endif
