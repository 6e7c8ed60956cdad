/* zip.c — see zip.h. Layout per PKWARE APPNOTE: end of central directory (EOCD),
 * optional zip64 EOCD + locator, central directory records, local headers. */
#include "zip.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strset.h"

static uint64_t rd(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Reads 64-bit replacements for the 0xffffffff fields from a zip64 extra field. */
static int zip64_extra(const unsigned char *ex, size_t exlen, uint64_t *usize, uint64_t *csize,
                       uint64_t *off) {
    size_t i = 0;
    while (i + 4 <= exlen) {
        uint64_t id = rd(ex + i, 2), len = rd(ex + i + 2, 2);
        if (i + 4 + len > exlen) return 0;
        if (id == 1) {
            const unsigned char *q = ex + i + 4;
            size_t left = (size_t)len;
            uint64_t *fields[3] = {usize, csize, off};
            for (int f = 0; f < 3; f++) {
                if (*fields[f] != 0xffffffffu) continue;
                if (left < 8) return 0;
                *fields[f] = rd(q, 8);
                q += 8;
                left -= 8;
            }
            return 1;
        }
        i += 4 + (size_t)len;
    }
    return 1;
}

mambac_status mc_zip_open(const unsigned char *d, size_t size, const char *path, mc_zip *z,
                          mambac_error *err) {
    memset(z, 0, sizeof *z);
    if (size < 22) return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: not a zip archive or truncated (too small)", path);
    size_t eocd = SIZE_MAX;
    size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (size_t i = size - 22 + 1; i-- > lowest;)
        if (rd(d + i, 4) == 0x06054b50u) { eocd = i; break; }
    if (eocd == SIZE_MAX)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: not a zip archive or truncated (no end-of-directory record)", path);
    uint64_t count = rd(d + eocd + 10, 2), cd_size = rd(d + eocd + 12, 4), cd_off = rd(d + eocd + 16, 4);
    if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        if (eocd < 20 || rd(d + eocd - 20, 4) != 0x07064b50u)
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: zip64 locator missing", path);
        uint64_t z64 = rd(d + eocd - 20 + 8, 8);
        if (size < 56 || z64 > size - 56 || rd(d + z64, 4) != 0x06064b50u)
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: zip64 end-of-directory record invalid", path);
        count = rd(d + z64 + 32, 8);
        cd_size = rd(d + z64 + 40, 8);
        cd_off = rd(d + z64 + 48, 8);
    }
    if (cd_off > size || cd_size > size - cd_off)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: central directory lies outside the file (truncated?)", path);
    if (count > cd_size / 46 + 1)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: central directory entry count %llu is impossible", path,
                       (unsigned long long)count);
    z->entries = calloc((size_t)count + 1, sizeof *z->entries);
    if (!z->entries) return mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", path);
    size_t p = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    for (uint64_t k = 0; k < count; k++) {
        if (p + 46 > end || rd(d + p, 4) != 0x02014b50u) {
            mc_zip_close(z);
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: central directory entry %llu is corrupt", path, (unsigned long long)k);
        }
        uint64_t method = rd(d + p + 10, 2), csize = rd(d + p + 20, 4), usize = rd(d + p + 24, 4);
        size_t nlen = (size_t)rd(d + p + 28, 2), xlen = (size_t)rd(d + p + 30, 2), clen = (size_t)rd(d + p + 32, 2);
        uint64_t loff = rd(d + p + 42, 4);
        if (p + 46 + nlen + xlen + clen > end || !zip64_extra(d + p + 46 + nlen, xlen, &usize, &csize, &loff)) {
            mc_zip_close(z);
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: central directory entry %llu is corrupt", path, (unsigned long long)k);
        }
        mc_zip_entry *e = &z->entries[z->n];
        e->name = malloc(nlen + 1);
        if (!e->name) {
            mc_zip_close(z);
            return mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", path);
        }
        memcpy(e->name, d + p + 46, nlen);
        e->name[nlen] = 0;
        z->n++;
        if (memchr(e->name, 0, nlen)) {
            mc_zip_close(z);
            return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: zip entry name contains a NUL byte", path);
        }
        /* The local header repeats name and extra with lengths of its own. */
        if (loff > size || size - loff < 30 || rd(d + loff, 4) != 0x04034b50u) {
            mambac_status st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: local header of '%.200s' is outside the file or corrupt",
                                       path, e->name);
            mc_zip_close(z); /* after the message: it names an entry */
            return st;
        }
        const uint64_t lnlen = rd(d + loff + 26, 2);
        if (lnlen != nlen || size - loff - 30 < lnlen || memcmp(d + loff + 30, e->name, nlen) != 0) {
            /* readers that go by the local headers would see other files than this one */
            mambac_status st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: local header of '%.200s' names another entry", path, e->name);
            mc_zip_close(z);
            return st;
        }
        uint64_t data_off = loff + 30 + lnlen + rd(d + loff + 28, 2);
        if (data_off > size || csize > size - data_off) {
            mambac_status st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: data of '%.200s' extends past the end of the file (truncated?)",
                                       path, e->name);
            mc_zip_close(z);
            return st;
        }
        e->stored = method == 0 && csize == usize;
        e->data = d + data_off;
        e->size = (size_t)csize;
        p += 46 + nlen + xlen + clen;
    }
    mc_strset names; /* every name once: which of two entries a reader takes is up to it */
    if (!mc_strset_init(&names, z->n)) {
        mc_zip_close(z);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", path);
    }
    mambac_status st = MAMBAC_OK;
    for (size_t i = 0; i < z->n && st == MAMBAC_OK; i++)
        if (!mc_strset_add(&names, z->entries[i].name, strlen(z->entries[i].name)))
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: zip entry '%.200s' appears twice", path, z->entries[i].name);
    mc_strset_free(&names);
    if (st != MAMBAC_OK) mc_zip_close(z);
    return st;
}

const mc_zip_entry *mc_zip_find(const mc_zip *z, const char *name) {
    for (size_t i = 0; i < z->n; i++)
        if (strcmp(z->entries[i].name, name) == 0) return &z->entries[i];
    return NULL;
}

void mc_zip_close(mc_zip *z) {
    for (size_t i = 0; i < z->n; i++) free(z->entries[i].name);
    free(z->entries);
    memset(z, 0, sizeof *z);
}
