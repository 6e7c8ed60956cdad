/* eval_rolling.h — the perplexity task of `mambac eval` (eval_rolling.c). */
#ifndef MAMBAC_EVAL_ROLLING_H
#define MAMBAC_EVAL_ROLLING_H

#include "cli.h"

typedef struct rolling_result {
    double ll;                    /* summed log-likelihood, nats */
    double tokens, bytes, words;  /* scored tokens; the documents' bytes and words */
    int docs;
} rolling_result;

/* lm-eval's loglikelihood_rolling over the documents at path (a file, or a folder's .txt
 * files; at most limit of them when limit > 0) in windows of ctx tokens (0: each document
 * whole); curve (or NULL): the loss by position, as CSV. */
int eval_rolling(cli_session *s, mambac_tokenizer *tok, const char *path, long long ctx, long long limit,
                 const char *curve, rolling_result *out);

#endif
