/* api_threads.c — a program that knows only mambac.h and libmambac.so (built out of tree
 * by tests/api/run.sh): one model and one tokenizer handle shared by four threads, each
 * with its own context and states: each tokenizes and detokenizes text (at the same time
 * on the one handle), runs a batch of three sequences decoding greedily, generates text
 * with mambac_generate, and moves a state through its bytes. Every thread must get the
 * same ids, tokens, text and bytes as the main thread did alone.
 * Usage: api_threads MODEL_DIR TOKENIZER_JSON */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mambac.h"

#define THREADS 4
#define STEPS 8

typedef struct result {
    int32_t tokens[3][STEPS];
    int32_t *ids;
    size_t n_ids;
    char text[2048];
    size_t text_len;
    unsigned char *state_bytes;
    int ok;
    char msg[MAMBAC_ERROR_MAX];
} result;

static const mambac_model *model;
static mambac_tokenizer *tok; /* one handle for every thread */
static const char text[] = "The state of a Mamba model is small: kilobytes, not a cache that grows.";

static int collect(void *user, int32_t token, const char *text, size_t len) {
    result *r = user;
    (void)token;
    if (r->text_len + len < sizeof r->text) memcpy(r->text + r->text_len, text, len), r->text_len += len;
    return 0;
}

static void *work(void *arg) {
    result *r = arg;
    mambac_error err;
    mambac_context_params cp = mambac_context_default_params();
    cp.n_threads = 1;
    mambac_context *ctx = NULL;
    mambac_state *st[3] = {NULL, NULL, NULL}, *moved = NULL;
    r->ok = 0;
    if (mambac_context_new(model, &cp, &ctx, &err) != MAMBAC_OK) goto fail;
    if (mambac_tokenize(tok, text, strlen(text), &r->ids, &r->n_ids, &err) != MAMBAC_OK) goto fail;
    char *back = NULL;
    size_t blen = 0;
    if (mambac_detokenize(tok, r->ids, r->n_ids, &back, &blen, &err) != MAMBAC_OK) goto fail;
    int same_text = blen == strlen(text) && memcmp(back, text, blen) == 0;
    mambac_free(back);
    if (!same_text) {
        snprintf(r->msg, sizeof r->msg, "detokenize(tokenize(text)) != text");
        return r;
    }
    const int32_t vocab = mambac_model_get_info(model)->vocab_size;
    int32_t prompt[3][5];
    for (int s = 0; s < 3; s++)
        for (int t = 0; t < 5; t++) prompt[s][t] = (int32_t)((r->ids[(s + t) % r->n_ids]) % vocab);
    for (int s = 0; s < 3; s++)
        if (mambac_state_new(model, &st[s], &err) != MAMBAC_OK) goto fail;
    mambac_seq q[3];
    int32_t next[3];
    for (int s = 0; s < 3; s++) q[s] = (mambac_seq){st[s], prompt[s], (size_t)(1 + 2 * s), MAMBAC_LOGITS_GREEDY, NULL, &next[s]};
    for (int k = 0; k < STEPS; k++) {
        if (mambac_eval_batch(ctx, q, 3, &err) != MAMBAC_OK) goto fail;
        for (int s = 0; s < 3; s++) {
            r->tokens[s][k] = next[s];
            q[s].ids = &r->tokens[s][k], q[s].n_tokens = 1;
        }
    }
    mambac_generate_params gp = mambac_generate_default_params();
    gp.sampling.temp = 0.7f, gp.sampling.seed = 11, gp.max_tokens = 16, gp.ignore_eos = 1;
    mambac_state_reset(st[0]);
    if (mambac_generate(ctx, st[0], tok, prompt[0], 5, &gp, collect, r, NULL, &err) != MAMBAC_OK) goto fail;
    const size_t nb = mambac_state_file_bytes(model);
    r->state_bytes = malloc(nb);
    if (mambac_state_new(model, &moved, &err) != MAMBAC_OK ||
        mambac_state_to_bytes(st[2], r->state_bytes, nb, &err) != MAMBAC_OK ||
        mambac_state_from_bytes(moved, r->state_bytes, nb, &err) != MAMBAC_OK)
        goto fail;
    r->ok = mambac_state_n_tokens(moved) == mambac_state_n_tokens(st[2]);
    if (!r->ok) snprintf(r->msg, sizeof r->msg, "state bytes lost the token count");
    goto done;
fail:
    snprintf(r->msg, sizeof r->msg, "%s", err.msg);
done:
    for (int s = 0; s < 3; s++) mambac_state_free(st[s]);
    mambac_state_free(moved);
    mambac_context_free(ctx);
    return r;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: api_threads MODEL_DIR TOKENIZER_JSON\n");
        return 2;
    }
    int passed = 0, failed = 0;
    mambac_error err;
    mambac_model *m;
    if (mambac_model_load(argv[1], &m, &err) != MAMBAC_OK) {
        printf("load: %s\n0 passed, 1 failed\n", err.msg);
        return 1;
    }
    model = m;
    if (mambac_tokenizer_load(argv[2], &tok, &err) != MAMBAC_OK) {
        printf("tokenizer: %s\n0 passed, 1 failed\n", err.msg);
        return 1;
    }
    printf("libmambac %s, backend %s\n", mambac_version(), mambac_model_backend(m));
    result alone, rs[THREADS];
    memset(&alone, 0, sizeof alone), memset(rs, 0, sizeof rs);
    work(&alone);
    alone.ok ? passed++ : (failed++, printf("FAIL alone: %s\n", alone.msg));
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, work, &rs[i]);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    const size_t nb = mambac_state_file_bytes(m);
    for (int i = 0; i < THREADS; i++) {
        int same = rs[i].ok && alone.ok && rs[i].n_ids == alone.n_ids &&
                   memcmp(rs[i].ids, alone.ids, alone.n_ids * sizeof(int32_t)) == 0 &&
                   memcmp(rs[i].tokens, alone.tokens, sizeof alone.tokens) == 0 &&
                   memcmp(rs[i].state_bytes, alone.state_bytes, nb) == 0 && rs[i].text_len == alone.text_len &&
                   memcmp(rs[i].text, alone.text, alone.text_len) == 0;
        same ? passed++ : (failed++, printf("FAIL thread %d: %s\n", i, rs[i].ok ? "results differ from the lone run" : rs[i].msg));
        mambac_free(rs[i].ids);
        free(rs[i].state_bytes);
    }
    mambac_free(alone.ids);
    free(alone.state_bytes);
    mambac_tokenizer_free(tok);
    mambac_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
