/* zip.h — a reader for uncompressed ("stored") zip archives, the container torch.save
 * writes. Zip64 records are understood (checkpoints over 4 GB). Compressed entries are
 * refused: torch never writes them, and we don't inflate untrusted data for nothing. */
#ifndef MC_ZIP_H
#define MC_ZIP_H

#include <stddef.h>

#include "mambac.h"

typedef struct mc_zip_entry {
    char *name;                /* owned, NUL-terminated */
    const unsigned char *data; /* into the archive bytes */
    size_t size;
    int stored;                /* 0 when compressed (data unusable) */
} mc_zip_entry;

typedef struct mc_zip {
    mc_zip_entry *entries;
    size_t n;
} mc_zip;

mambac_status mc_zip_open(const unsigned char *data, size_t size, const char *path, mc_zip *z,
                          mambac_error *err);
const mc_zip_entry *mc_zip_find(const mc_zip *z, const char *name);
void mc_zip_close(mc_zip *z);

#endif
