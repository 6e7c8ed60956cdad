/* fuzz_eval_task.c — libFuzzer target for `mambac eval`'s task files (tools/eval_tasks.c):
 * the first byte picks the task whose preparation the lines go through (or none: a jsonl:
 * file), the rest is the file. The parser reads files, so the input is written to one in a
 * private temporary folder (beside a PIQA label file). The CLI's file reading and error
 * printing are replaced here: the same reading, errors kept quiet. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eval_tasks.h"

int cli_error(const char *fmt, ...) {
    (void)fmt;
    return CLI_ERR;
}

int cli_read_input(const char *p, char **buf, size_t *len) {
    FILE *f = fopen(p, "rb");
    if (!f) return CLI_ERR;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (cap - n - 1 == 0) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    fclose(f);
    if (!b) return CLI_ERR;
    b[n] = 0;
    *buf = b, *len = n;
    return CLI_OK;
}

static const char *const NAMES[] = {NULL, "piqa", "copa", "boolq", "siqa", "commonsense_qa", "hellaswag",
                                    "arc_easy", "lambada_openai", "winogrande"};
static char dir[64], path[96];

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/mambac-fuzz-eval-XXXXXX");
        if (!mkdtemp(dir)) abort();
        snprintf(path, sizeof path, "%s/valid.jsonl", dir);
        char lp[96];
        snprintf(lp, sizeof lp, "%s/valid-labels.lst", dir);
        FILE *l = fopen(lp, "wb");
        for (int i = 0; l && i < 64; i++) fputs(i % 3 ? "1\n" : "0\n", l);
        if (!l || fclose(l) != 0) abort();
    }
    if (!size) return 0;
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data + 1, 1, size - 1, f);
    if (fclose(f) != 0) abort();
    const char *name = NAMES[data[0] % (sizeof NAMES / sizeof NAMES[0])];
    task t;
    memset(&t, 0, sizeof t);
    eval_task_load(path, name ? eval_task_find(name) : NULL, data[0] & 0x80 ? 2 : 0, &t);
    eval_task_free(&t);
    return 0;
}
