/* npy.c — see npy.h. Header: magic, version 1.0, u16 length, a Python dict literal
 * padded with spaces to a multiple of 64 bytes and ended by '\n'. */
#include "npy.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

mambac_status mc_npy_write_header(mc_atomic_file *af, const int64_t *shape, int ndim, mambac_error *err) {
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = (size_t)n + pad + 1;
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    char spaces[64];
    memset(spaces, ' ', sizeof spaces);
    mambac_status st = mc_atomic_write(af, head, sizeof head, err);
    if (st == MAMBAC_OK) st = mc_atomic_write(af, dict, (size_t)n, err);
    if (st == MAMBAC_OK) st = mc_atomic_write(af, spaces, pad, err);
    if (st == MAMBAC_OK) st = mc_atomic_write(af, "\n", 1, err);
    return st;
}
