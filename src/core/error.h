/* error.h — filling a mambac_error with one formatted line, and the status names.
 * Every failing path in the library goes through mc_fail so the message and the
 * status travel together. */
#ifndef MC_ERROR_H
#define MC_ERROR_H

#include "mambac.h"

#if defined(__GNUC__)
#define MC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MC_PRINTF(a, b)
#endif

/* Writes the message into err (if not NULL) and returns st, so callers can write
 * `return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: ...", path);`. */
mambac_status mc_fail(mambac_error *err, mambac_status st, const char *fmt, ...) MC_PRINTF(3, 4);

#endif
