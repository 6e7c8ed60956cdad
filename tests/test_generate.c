/* test_generate.c — mambac_generate, the library's generation loop:
 *   - greedy tokens equal a hand-written loop of mambac_eval + argmax over the ids both the
 *     model and the tokenizer have, and the streamed text equals their detokenized bytes;
 *   - a stop string cuts the text before its first appearance (finish STOP), the callback
 *     can stop it (finish CALLBACK), max_tokens (finish LENGTH);
 *   - feed_last decides whether the state holds the last token;
 *   - bad arguments are refused before anything runs;
 *   - a model with a NaN weight fails with a message instead of printing token 0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mambac.h"
#include "testutil.h"

typedef struct sink {
    char text[4096];
    size_t len;
    int32_t tokens[256];
    int n, stop_after, finals;
} sink;

/* Progress reports: how many, and whether done grew to total. */
typedef struct progress {
    int calls, ordered;
    int64_t last, total;
} progress;
static void on_progress(void *user, int64_t done, int64_t total) {
    progress *p = user;
    if (done <= p->last || done > total || (p->total && total != p->total)) p->ordered = 0;
    p->calls++, p->last = done, p->total = total;
}

static int collect(void *user, int32_t token, const char *text, size_t len) {
    sink *k = user;
    if (k->len + len < sizeof k->text) memcpy(k->text + k->len, text, len), k->len += len;
    if (token < 0) k->finals++;
    else k->tokens[k->n++] = token;
    return k->stop_after && k->n >= k->stop_after;
}

/* The fixture with one NaN in the final norm: generation must fail, naming the cause. */
static void test_nan_model(const char *src_dir) {
    char *tmp = make_temp_dir(), *mfile = path_in(tmp, "model.safetensors"), src_file[600];
    snprintf(src_file, sizeof src_file, "%s/model.safetensors", src_dir);
    st_model sm;
    CHECK(tmp && copy_dir_files(src_dir, tmp) && st_model_open(&sm, src_file), "copy the fixture");
    void *copy = NULL;
    for (size_t i = 0; i < sm.n; i++)
        if (strcmp(sm.t[i].name, "backbone.norm_f.weight") == 0) {
            copy = malloc(sm.t[i].nbytes);
            memcpy(copy, sm.t[i].data, sm.t[i].nbytes);
            ((float *)copy)[0] = NAN;
            sm.t[i].data = copy;
        }
    CHECK(copy && write_safetensors(mfile, sm.t, sm.n), "write the NaN model");
    st_model_close(&sm);
    free(copy);
    mambac_model *m;
    mambac_error err;
    if (test_model_load(tmp, -1, &m, &err) == MAMBAC_OK) {
        mambac_context *ctx;
        mambac_state *st;
        mambac_context_new(m, NULL, &ctx, &err);
        mambac_state_new(m, &st, &err);
        const int32_t prompt[] = {1, 2, 3};
        mambac_generate_params gp = mambac_generate_default_params();
        gp.max_tokens = 4;
        mambac_status s = mambac_generate(ctx, st, NULL, prompt, 3, &gp, NULL, NULL, NULL, &err);
        CHECK(s == MAMBAC_ERR_FORMAT && strstr(err.msg, "non-finite"), "NaN weights refused: %s", err.msg);
        mambac_state_free(st);
        mambac_context_free(ctx);
        mambac_model_free(m);
    } else {
        CHECK(0, "NaN model load: %s", err.msg);
    }
    remove_temp_dir(tmp);
    free(mfile);
    free(tmp);
}

/* Chat templates: the text of each built-in one, a conversation's text extending its
 * prefix's, recognition of Jinja templates, refusals. */
static void test_chat_templates(void) {
    const mambac_chat_message m[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}};
    char *t, *shorter;
    size_t len, slen;
    mambac_error err;
    CHECK(mambac_chat_apply("chatml", m, 2, 1, &t, &len, &err) == MAMBAC_OK &&
              strcmp(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n") == 0 &&
              len == strlen(t),
          "chatml text");
    mambac_free(t);
    CHECK(mambac_chat_apply("zephyr", m + 1, 1, 1, &t, &len, &err) == MAMBAC_OK && strcmp(t, "<|user|>\nHi</s>\n<|assistant|>\n") == 0,
          "zephyr text");
    mambac_free(t);
    CHECK(mambac_chat_apply("plain", m + 1, 2, 0, &t, &len, &err) == MAMBAC_OK && strcmp(t, "User: Hi\nAssistant: Hello.\n") == 0,
          "plain text");
    mambac_free(t);
    static const char *const names[] = {"chatml", "zephyr", "plain"};
    for (int k = 0; k < 3; k++) {
        int ok = 1;
        for (size_t n = 1; n < 4 && ok; n++) {
            t = shorter = NULL;
            ok = mambac_chat_apply(names[k], m, n, 0, &shorter, &slen, &err) == MAMBAC_OK &&
                 mambac_chat_apply(names[k], m, n + 1, 0, &t, &len, &err) == MAMBAC_OK && len > slen &&
                 memcmp(t, shorter, slen) == 0;
            mambac_free(t), mambac_free(shorter);
        }
        /* an answer's end of turn and separator are what the template writes after it */
        const char *end = mambac_chat_end_of_turn(names[k]), *sep = mambac_chat_after_turn(names[k]);
        t = NULL;
        ok = ok && end && sep && mambac_chat_apply(names[k], m + 2, 1, 0, &t, &len, &err) == MAMBAC_OK &&
             len >= strlen(end) + strlen(sep) && strncmp(t + len - strlen(end) - strlen(sep), end, strlen(end)) == 0 &&
             strcmp(t + len - strlen(sep), sep) == 0;
        mambac_free(t);
        CHECK(ok, "%s: a conversation's text extends its prefix's; turns end with end-of-turn + separator", names[k]);
    }
    CHECK(mambac_chat_template_name("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}") != NULL &&
              strcmp(mambac_chat_template_name("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"), "chatml") == 0,
          "a ChatML Jinja template is recognised");
    CHECK(mambac_chat_template_name("{{ bos_token }}[INST] {{ m }} [/INST]") == NULL, "an unknown Jinja template is not guessed");
    const mambac_chat_message bad[] = {{"tool", "x"}};
    CHECK(mambac_chat_apply("chatml", bad, 1, 0, &t, &len, &err) == MAMBAC_ERR_INVALID_ARG && strstr(err.msg, "tool"),
          "an unknown role refused: %s", err.msg);
    CHECK(mambac_chat_apply("llama9", m, 1, 0, &t, &len, &err) == MAMBAC_ERR_INVALID_ARG, "an unknown template refused");
}

int main(void) {
    test_chat_templates();
    char mpath[512], tpath[512];
    snprintf(mpath, sizeof mpath, "%s/models/mamba2-tiny/hf", MAMBAC_TEST_DATA);
    snprintf(tpath, sizeof tpath, "%s/tokenizer/gpt2-tokenizer.json", MAMBAC_TEST_DATA);
    mambac_error err;
    mambac_model *m;
    mambac_tokenizer *tok;
    if (test_model_load(mpath, -1, &m, &err) != MAMBAC_OK || mambac_tokenizer_load(tpath, &tok, &err) != MAMBAC_OK) {
        CHECK(0, "load: %s", err.msg);
        return check_summary();
    }
    const mambac_model_info *c = mambac_model_get_info(m);
    mambac_context *ctx;
    mambac_state *st;
    mambac_context_new(m, NULL, &ctx, &err);
    mambac_state_new(m, &st, &err);
    const int32_t prompt[] = {5, 9, 2, 7};
    mambac_generate_params gp = mambac_generate_default_params();
    gp.sampling.temp = 0, gp.max_tokens = 24, gp.ignore_eos = 1;

    /* greedy = the hand-written loop */
    sink a = {0};
    mambac_generate_result r;
    CHECK(mambac_generate(ctx, st, tok, prompt, 4, &gp, collect, &a, &r, &err) == MAMBAC_OK, "generate: %s", err.msg);
    CHECK(r.finish == MAMBAC_FINISH_LENGTH && r.n_generated == 24 && a.n == 24 && a.finals == 1 && r.n_prompt == 4,
          "length finish, 24 tokens, one final call");
    CHECK(mambac_state_n_tokens(st) == 4 + 23, "without feed_last the last token is not fed (%lld)",
          (long long)mambac_state_n_tokens(st));
    int32_t n_vocab = c->vocab_size < mambac_tokenizer_n_vocab(tok) ? c->vocab_size : mambac_tokenizer_n_vocab(tok);
    float *lg = malloc((size_t)c->n_vocab_rows * sizeof(float));
    mambac_state_reset(st);
    int same = mambac_eval(ctx, st, prompt, 4, MAMBAC_LOGITS_LAST, lg, &err) == MAMBAC_OK;
    for (int i = 0; same && i < 24; i++) {
        int32_t next = mambac_argmax(lg, n_vocab);
        same = next == a.tokens[i] && mambac_eval(ctx, st, &next, 1, MAMBAC_LOGITS_LAST, lg, &err) == MAMBAC_OK;
    }
    CHECK(same, "greedy tokens equal eval + argmax");
    char *want;
    size_t wl;
    mambac_detokenize(tok, a.tokens, 24, &want, &wl, &err);
    CHECK(wl == a.len && memcmp(want, a.text, wl) == 0, "streamed text = detokenized tokens");

    /* a stop string from the middle of that text: output is what comes before it */
    if (wl > 12) {
        char stop[3] = {want[wl / 2], want[wl / 2 + 1], 0};
        const char *stops[1] = {stop};
        const char *first = strstr(want, stop);
        sink b = {0};
        gp.stop = stops, gp.n_stop = 1;
        mambac_state_reset(st);
        CHECK(mambac_generate(ctx, st, tok, prompt, 4, &gp, collect, &b, &r, &err) == MAMBAC_OK, "stop: %s", err.msg);
        CHECK(r.finish == MAMBAC_FINISH_STOP && b.len == (size_t)(first - want) && memcmp(b.text, want, b.len) == 0,
              "text cut before the stop string ('%s' at %zu, got %zu bytes)", stop, (size_t)(first - want), b.len);
        gp.stop = NULL, gp.n_stop = 0;
    }
    mambac_free(want);

    /* the callback stops it; feed_last keeps every token in the state */
    sink d = {.stop_after = 5};
    gp.feed_last = 1;
    mambac_state_reset(st);
    CHECK(mambac_generate(ctx, st, tok, prompt, 4, &gp, collect, &d, &r, &err) == MAMBAC_OK, "callback: %s", err.msg);
    CHECK(r.finish == MAMBAC_FINISH_CALLBACK && r.n_generated == 5 && memcmp(d.tokens, a.tokens, 5 * sizeof(int32_t)) == 0,
          "callback stop after 5");
    CHECK(mambac_state_n_tokens(st) == 4 + 5, "feed_last after a stop: the state holds all %lld tokens",
          (long long)mambac_state_n_tokens(st));
    gp.max_tokens = 6;
    mambac_state_reset(st);
    CHECK(mambac_generate(ctx, st, NULL, prompt, 4, &gp, NULL, NULL, &r, &err) == MAMBAC_OK &&
              mambac_state_n_tokens(st) == 4 + 6,
          "feed_last: the state holds all %lld tokens", (long long)mambac_state_n_tokens(st));

    /* a prompt of 2.5 pieces read with progress reports: the same tokens as read whole */
    {
        enum { LONG = 2 * MAMBAC_PROGRESS_PIECE + MAMBAC_PROGRESS_PIECE / 2 };
        int32_t *lp = malloc(LONG * sizeof *lp);
        for (int i = 0; i < LONG; i++) lp[i] = (int32_t)((i * 7 + 3) % 200);
        mambac_generate_params lgp = mambac_generate_default_params();
        lgp.sampling.temp = 0, lgp.max_tokens = 6, lgp.ignore_eos = 1;
        sink whole = {0}, pieces = {0};
        progress pr = {.ordered = 1};
        mambac_state_reset(st);
        CHECK(mambac_generate(ctx, st, NULL, lp, LONG, &lgp, collect, &whole, &r, &err) == MAMBAC_OK, "long: %s", err.msg);
        lgp.on_prompt_progress = on_progress, lgp.progress_user = &pr;
        mambac_state_reset(st);
        CHECK(mambac_generate(ctx, st, NULL, lp, LONG, &lgp, collect, &pieces, &r, &err) == MAMBAC_OK, "long: %s", err.msg);
        CHECK(pr.calls == 3 && pr.ordered && pr.last == LONG && pr.total == LONG,
              "progress: 3 reports growing to the prompt's length (%d, last %lld)", pr.calls, (long long)pr.last);
        CHECK(pieces.n == 6 && memcmp(pieces.tokens, whole.tokens, 6 * sizeof(int32_t)) == 0,
              "a prompt read in pieces for progress continues as read whole");
        free(lp);
    }

    /* refusals */
    const char *stops[1] = {"x"}, *empty[1] = {""};
    gp.stop = stops, gp.n_stop = 1;
    CHECK(mambac_generate(ctx, st, NULL, prompt, 4, &gp, NULL, NULL, &r, &err) == MAMBAC_ERR_INVALID_ARG,
          "stop strings without a tokenizer refused");
    gp.stop = empty;
    CHECK(mambac_generate(ctx, st, tok, prompt, 4, &gp, NULL, NULL, &r, &err) == MAMBAC_ERR_INVALID_ARG, "empty stop refused");
    gp.n_stop = 0, gp.max_tokens = -1;
    CHECK(mambac_generate(ctx, st, tok, prompt, 4, &gp, NULL, NULL, &r, &err) == MAMBAC_ERR_INVALID_ARG, "negative max_tokens refused");
    gp.max_tokens = 3;
    CHECK(mambac_generate(ctx, st, tok, prompt, 0, &gp, NULL, NULL, &r, &err) == MAMBAC_ERR_INVALID_ARG, "empty prompt refused");

    test_nan_model(mpath);
    free(lg);
    mambac_state_free(st);
    mambac_context_free(ctx);
    mambac_tokenizer_free(tok);
    mambac_model_free(m);
    return check_summary();
}
