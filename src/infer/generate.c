/* generate.c — mambac_generate: the generation loop every front end shares (CLI, later
 * the server and the Python package): prompt → sample → feed, text streamed through the
 * text stream (UTF-8 characters released whole, stop strings held back and cut), stopping
 * at max_tokens, the end token, a stop string or the caller's word. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "infer/context.h"
#include "infer/text_stream.h"
#include "mambac.h"

mambac_generate_params mambac_generate_default_params(void) {
    return (mambac_generate_params){.sampling = mambac_sampler_default_params(), .max_tokens = 128};
}

/* NaN / Inf weights or a corrupted state give non-finite logits: sampling them would print
 * token 0 and succeed. */
static mambac_status check_finite(const float *logits, int32_t n, mambac_error *err) {
    for (int32_t i = 0; i < n; i++)
        if (!isfinite(logits[i]))
            return mc_fail(err, MAMBAC_ERR_FORMAT,
                           "the model gave non-finite logits (NaN or Inf at id %d): its weights or state are corrupt", i);
    return MAMBAC_OK;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Hands the stream's printable text (and the token) to the callback; 1 when it asks to
 * stop. */
static int emit(mc_text_stream *ts, int final, int32_t token, mambac_piece_fn fn, void *user) {
    const size_t k = ts->buf ? mc_text_stream_ready(ts, final) : 0;
    int stop = fn ? fn(user, token, ts->buf ? ts->buf : "", k) != 0 : 0;
    if (k) mc_text_stream_consume(ts, k);
    return stop;
}

mambac_status mambac_generate(mambac_context *ctx, mambac_state *state, const mambac_tokenizer *tok,
                              const int32_t *prompt, size_t n_prompt, const mambac_generate_params *params,
                              mambac_piece_fn on_piece, void *user, mambac_generate_result *result,
                              mambac_error *err) {
    const mambac_generate_params p = params ? *params : mambac_generate_default_params();
    mambac_generate_result r = {.n_prompt = (int64_t)n_prompt, .finish = MAMBAC_FINISH_LENGTH};
    if (result) *result = r;
    if (!ctx || !state || (!prompt && n_prompt)) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "generate: missing context, state or prompt");
    if (n_prompt == 0) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "no tokens to evaluate (empty prompt)");
    if (p.max_tokens < 0) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "generate: max_tokens must be >= 0");
    if (p.n_stop && !tok) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "generate: stop strings need a tokenizer");
    for (size_t i = 0; i < p.n_stop; i++)
        if (!p.stop || !p.stop[i] || !p.stop[i][0]) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "generate: empty stop string");
    const mambac_model_info *c = mambac_model_get_info(mc_context_model(ctx));
    /* never sample what the tokenizer cannot print (nor padded rows) */
    int32_t n_vocab = c->vocab_size;
    if (tok && mambac_tokenizer_n_vocab(tok) < n_vocab) n_vocab = mambac_tokenizer_n_vocab(tok);
    int32_t eos = p.ignore_eos ? -1 : c->eos_token_id;
    if (!p.ignore_eos && eos < 0 && tok) eos = mambac_tokenizer_find(tok, "<|endoftext|>");

    mambac_sampler *smp = NULL;
    float *logits = malloc((size_t)c->n_vocab_rows * sizeof(float));
    if (!logits) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    mambac_status st = mambac_sampler_new(&p.sampling, n_vocab, &smp, err);
    for (size_t i = 0; st == MAMBAC_OK && i < n_prompt; i++) mambac_sampler_accept(smp, prompt[i]);
    double t0 = now();
    size_t fed = 0; /* with a progress callback, pieces before the last */
    while (st == MAMBAC_OK && p.on_prompt_progress && n_prompt - fed > MAMBAC_PROGRESS_PIECE) {
        st = mambac_eval(ctx, state, prompt + fed, MAMBAC_PROGRESS_PIECE, MAMBAC_LOGITS_NONE, NULL, err);
        fed += MAMBAC_PROGRESS_PIECE;
        if (st == MAMBAC_OK) p.on_prompt_progress(p.progress_user, (int64_t)fed, (int64_t)n_prompt);
    }
    if (st == MAMBAC_OK) st = mambac_eval(ctx, state, prompt + fed, n_prompt - fed, MAMBAC_LOGITS_LAST, logits, err);
    if (st == MAMBAC_OK && p.on_prompt_progress && fed) p.on_prompt_progress(p.progress_user, (int64_t)n_prompt, (int64_t)n_prompt);
    r.prefill_seconds = now() - t0;
    if (st == MAMBAC_OK) st = check_finite(logits, n_vocab, err);
    mc_text_stream ts;
    mc_text_stream_init(&ts, p.stop, p.n_stop);
    int done = 0;
    while (st == MAMBAC_OK && r.n_generated < p.max_tokens && !done) {
        const int32_t next = mambac_sampler_sample(smp, logits);
        if (next == eos) {
            r.finish = MAMBAC_FINISH_EOS;
            break;
        }
        mambac_sampler_accept(smp, next);
        r.n_generated++;
        if (tok) {
            size_t bl;
            const char *b = mambac_token_bytes(tok, next, &bl);
            if (b && !mc_text_stream_push(&ts, b, bl)) {
                st = mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
                break;
            }
        }
        if (emit(&ts, 0, next, on_piece, user)) done = 1, r.finish = MAMBAC_FINISH_CALLBACK;
        if (ts.stopped) done = 1, r.finish = MAMBAC_FINISH_STOP;
        if ((!done && r.n_generated < p.max_tokens) || p.feed_last) { /* feed_last: after a stop too */
            const double t1 = now();
            st = mambac_eval(ctx, state, &next, 1, MAMBAC_LOGITS_LAST, logits, err);
            r.decode_seconds += now() - t1;
            r.n_decoded++;
            if (st == MAMBAC_OK) st = check_finite(logits, n_vocab, err);
        }
    }
    if (st == MAMBAC_OK) emit(&ts, 1, -1, on_piece, user); /* what was held back (nothing after a stop string) */
    mc_text_stream_free(&ts);
    mambac_sampler_free(smp);
    free(logits);
    if (result) *result = r;
    return st;
}
