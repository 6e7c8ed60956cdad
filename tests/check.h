/* check.h — the smallest test harness that does the job: CHECK counts, prints the
 * failing expression with its location, and check_summary() prints the closing
 * "N passed, N failed" line and returns the exit status. */
#ifndef MAMBAC_CHECK_H
#define MAMBAC_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                             \
    do {                                                                             \
        if (cond) {                                                                  \
            check_passed++;                                                          \
        } else {                                                                     \
            check_failed++;                                                          \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                  \
            printf(__VA_ARGS__);                                                     \
            printf("\n");                                                            \
        }                                                                            \
    } while (0)

static inline int check_summary(void) {
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
