/* fuzz_token_file.c — libFuzzer target for token files (src/train/token_file.c) as the
 * trainer reads them: the input is written to a file and opened; an accepted file's tokens
 * are all read (each below the vocabulary it claims). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "train/token_file.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/mambac-fuzz-tokens-%ld.tok", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data, 1, size, f);
    if (fclose(f) != 0) abort();
    mc_token_file t;
    mambac_error err;
    if (mc_token_file_open(path, &t, &err) == MAMBAC_OK) {
        for (int64_t i = 0; i < t.n_train + t.n_val; i++)
            if (mc_token_at(&t, i) < 0 || mc_token_at(&t, i) >= t.vocab) abort();
        mc_token_file_close(&t);
    }
    return 0;
}
