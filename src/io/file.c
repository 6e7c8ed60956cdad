/* file.c — see file.h. POSIX only (mmap, rename). */
#define _POSIX_C_SOURCE 200809L
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* madvise */
#endif
#include "file.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

mambac_status mc_open_regular(const char *path, int *fd, mambac_error *err) {
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever */
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0) return mc_fail(err, MAMBAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return mc_fail(err, MAMBAC_ERR_IO, "%s: not a regular file", path);
    }
    const int fl = fcntl(*fd, F_GETFL);
    if (fl >= 0) fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
    return MAMBAC_OK;
}

/* A regular file opened for reading, and its size. */
static mambac_status open_sized(const char *path, int *fd, size_t *size, mambac_error *err) {
    mambac_status s = mc_open_regular(path, fd, err);
    if (s != MAMBAC_OK) return s;
    struct stat st;
    if (fstat(*fd, &st) != 0) {
        close(*fd);
        return mc_fail(err, MAMBAC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    *size = (size_t)st.st_size;
    return MAMBAC_OK;
}

mambac_status mc_file_load(const char *path, int in_memory, mc_file *f, mambac_error *err) {
    if (!in_memory) return mc_file_map(path, f, err);
    f->data = NULL, f->size = 0, f->in_memory = 1;
    int fd;
    size_t n = 0;
    mambac_status s = open_sized(path, &fd, &n, err);
    if (s != MAMBAC_OK) return s;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *p = n ? aligned_alloc(page, (n + page - 1) / page * page) : NULL;
    if (n && !p) {
        close(fd);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory for %zu bytes (the file is read into memory)", path, n);
    }
    for (size_t done = 0; done < n;) {
        const ssize_t r = read(fd, p + done, n - done > (1u << 30) ? (1u << 30) : n - done);
        if (r <= 0) {
            free(p);
            close(fd);
            return mc_fail(err, MAMBAC_ERR_IO, "%s: read failed%s%s", path, r < 0 ? ": " : " (the file shrank)",
                           r < 0 ? strerror(errno) : "");
        }
        done += (size_t)r;
    }
    close(fd);
    f->data = p, f->size = n;
    return MAMBAC_OK;
}

mambac_status mc_file_map(const char *path, mc_file *f, mambac_error *err) {
    f->data = NULL;
    f->size = 0;
    f->in_memory = 0;
    int fd;
    size_t n = 0;
    mambac_status s = open_sized(path, &fd, &n, err);
    if (s != MAMBAC_OK) return s;
    if (n > 0) {
        void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return mc_fail(err, MAMBAC_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
        f->data = p;
        f->size = n;
    }
    close(fd);
    return MAMBAC_OK;
}

void mc_file_unmap(mc_file *f) {
    if (f->data && f->in_memory) free((void *)f->data);
    else if (f->data) munmap((void *)f->data, f->size);
    f->data = NULL;
    f->size = 0;
}

void mc_file_forget(const mc_file *f, const void *p, size_t n) {
    const uintptr_t a = (uintptr_t)p, base = (uintptr_t)f->data;
    if (!f->data || f->in_memory || a < base || n > f->size || a - base > f->size - n) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = (a + page - 1) / page * page, hi = (a + n) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

mambac_status mc_file_read_all(const char *path, size_t max_bytes, char **out, size_t *len,
                               mambac_error *err) {
    *out = NULL;
    int fd;
    mambac_status s = mc_open_regular(path, &fd, err);
    if (s != MAMBAC_OK) return s;
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        return mc_fail(err, MAMBAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max_bytes) {
                free(buf);
                fclose(fp);
                return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(fp);
                return mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad || n > max_bytes) {
        free(buf);
        return mc_fail(err, bad ? MAMBAC_ERR_IO : MAMBAC_ERR_FORMAT, "%s: %s", path,
                       bad ? "read error" : "file too large");
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return MAMBAC_OK;
}

int mc_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *mc_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

/* A dead writer's temporary folder: the regular files in it, then the folder (one with
 * anything else inside is left alone). */
static void remove_stale_folder(const char *full) {
    DIR *d = opendir(full);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char f[8448];
        snprintf(f, sizeof f, "%s/%s", full, e->d_name);
        struct stat sb;
        if (lstat(f, &sb) == 0 && S_ISREG(sb.st_mode)) unlink(f);
    }
    closedir(d);
    rmdir(full);
}

void mc_remove_stale_temps(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        const size_t dl = (size_t)(slash - path);
        if (dl >= sizeof dir) return;
        memcpy(dir, path, dl);
        dir[dl] = 0;
    }
    const char *base = slash ? slash + 1 : path;
    const size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0) continue;
        char *end;
        const long pid = strtol(n + bl + 5, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, n);
        struct stat sb;
        if (lstat(full, &sb) != 0) continue;
        if (S_ISREG(sb.st_mode)) unlink(full);
        else if (S_ISDIR(sb.st_mode)) remove_stale_folder(full);
    }
    closedir(d);
}

mambac_status mc_atomic_open(mc_atomic_file *af, const char *path, mambac_error *err) {
    memset(af, 0, sizeof *af);
    mc_remove_stale_temps(path);
    struct stat sb; /* a FIFO or device under the name would be replaced by a regular file */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return mc_fail(err, MAMBAC_ERR_IO, "%s: exists and is not a regular file (not replaced)", path);
    size_t n = strlen(path) + 32;
    af->tmp_path = malloc(n);
    af->final_path = strdup(path);
    if (!af->tmp_path || !af->final_path) {
        mc_atomic_abort(af);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        mambac_status st = mc_fail(err, MAMBAC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(af->tmp_path);
        af->tmp_path = NULL; /* nothing to unlink */
        mc_atomic_abort(af);
        return st;
    }
    return MAMBAC_OK;
}

mambac_status mc_atomic_write(mc_atomic_file *af, const void *buf, size_t n, mambac_error *err) {
    if (n && fwrite(buf, 1, n, af->fp) != n)
        return mc_fail(err, MAMBAC_ERR_IO, "%s: write failed: %s", af->final_path, strerror(errno));
    return MAMBAC_OK;
}

mambac_status mc_atomic_commit(mc_atomic_file *af, mambac_error *err) {
    int bad = fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0;
    bad |= fclose(af->fp) != 0;
    af->fp = NULL;
    if (bad || rename(af->tmp_path, af->final_path) != 0) {
        mambac_status st = mc_fail(err, MAMBAC_ERR_IO, "%s: write failed: %s", af->final_path,
                                   strerror(errno));
        mc_atomic_abort(af);
        return st;
    }
    free(af->tmp_path);
    free(af->final_path);
    af->tmp_path = af->final_path = NULL;
    return MAMBAC_OK;
}

void mc_atomic_abort(mc_atomic_file *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->final_path);
    memset(af, 0, sizeof *af);
}
