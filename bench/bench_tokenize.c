/* bench_tokenize.c — encode throughput of the tokenizer, one thread.
 *   bench_tokenize TOKENIZER.json FILE [REPEATS]
 * Prints MB/s for each repeat (a fresh tokenizer each time, so the word cache starts
 * cold) and the best. Compare with scripts/bench_tokenizer_hf.py on the same file. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mambac.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenize TOKENIZER.json FILE [REPEATS]\n");
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 3;
    FILE *f = fopen(argv[2], "rb");
    if (!f) return perror(argv[2]), 1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n);
    if (fread(text, 1, (size_t)n, f) != (size_t)n) return 1;
    fclose(f);
    double best = 0;
    size_t ntok = 0;
    for (int r = 0; r < repeats; r++) {
        mambac_tokenizer *tok;
        mambac_error err;
        if (mambac_tokenizer_load(argv[1], &tok, &err) != MAMBAC_OK) return fprintf(stderr, "%s\n", err.msg), 1;
        int32_t *ids;
        double t0 = now();
        if (mambac_tokenize(tok, text, (size_t)n, &ids, &ntok, &err) != MAMBAC_OK) return fprintf(stderr, "%s\n", err.msg), 1;
        double dt = now() - t0, mbs = n / 1e6 / dt;
        printf("mambac encode: %.2f MB in %.3f s = %.2f MB/s, %zu tokens\n", n / 1e6, dt, mbs, ntok);
        if (mbs > best) best = mbs;
        mambac_free(ids);
        mambac_tokenizer_free(tok);
    }
    printf("best: %.2f MB/s\n", best);
    free(text);
    return 0;
}
