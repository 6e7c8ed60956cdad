/* fuzz_shard_index.c — libFuzzer target for model.safetensors.index.json as
 * mambac_model_load reads a sharded checkpoint: the input is the index; the folder beside
 * it holds the tiny test model's config, its weights as shard 1 and a one-tensor shard 2
 * (made once per process), so well-formed indexes reach the shard loading, the per-tensor
 * file check and the binding of an accepted model. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mambac.h"

static char dir[256];

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = 0;
    return ok;
}

static void remove_dir(void) {
    static const char *names[] = {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                  "model.safetensors.index.json"};
    char p[400];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) snprintf(p, sizeof p, "%s/%s", dir, names[i]), unlink(p);
    rmdir(dir);
}

/* The folder: config.json and shard 1 from the fixture, shard 2 written here. */
static int make_dir(void) {
    snprintf(dir, sizeof dir, "%s/mambac-fuzz-shards-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 0;
    atexit(remove_dir);
    char from[400], to[400];
    snprintf(from, sizeof from, "%s/config.json", MAMBAC_FUZZ_MODEL), snprintf(to, sizeof to, "%s/config.json", dir);
    if (!copy_file(from, to)) return 0;
    snprintf(from, sizeof from, "%s/model.safetensors", MAMBAC_FUZZ_MODEL);
    snprintf(to, sizeof to, "%s/model-00001-of-00002.safetensors", dir);
    if (!copy_file(from, to)) return 0;
    static const char header[] = "{\"extra.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}    ";
    const unsigned long long n = sizeof header - 1; /* a multiple of 8 */
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    const float one = 1.0f;
    snprintf(to, sizeof to, "%s/model-00002-of-00002.safetensors", dir);
    FILE *f = fopen(to, "wb");
    int ok = f && fwrite(len, 1, 8, f) == 8 && fwrite(header, 1, n, f) == n && fwrite(&one, 4, 1, f) == 1;
    return f && fclose(f) == 0 && ok;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static int ready = -1;
    if (ready < 0) ready = make_dir();
    if (!ready) abort(); /* the harness itself failed */
    char index[400];
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(index, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    mambac_model *m = NULL;
    mambac_error err;
    if (mambac_model_load(dir, &m, &err) == MAMBAC_OK) mambac_model_free(m);
    return 0;
}
