/* error.c — status names and the formatted error helpers. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

const char *mambac_status_str(mambac_status s) {
    switch (s) {
    case MAMBAC_OK: return "ok";
    case MAMBAC_ERR_IO: return "i/o error";
    case MAMBAC_ERR_FORMAT: return "malformed input";
    case MAMBAC_ERR_UNSUPPORTED: return "unsupported";
    case MAMBAC_ERR_INVALID_ARG: return "invalid argument";
    case MAMBAC_ERR_NOMEM: return "out of memory";
    }
    return "unknown status";
}

/* Keeps messages to one line: control characters from untrusted names become '?'. */
static void sanitize(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20) *s = '?';
}

mambac_status mc_fail(mambac_error *err, mambac_status st, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        sanitize(err->msg);
    }
    return st;
}

const char *mambac_version(void) { return MAMBAC_VERSION_STRING; }
