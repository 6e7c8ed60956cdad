/* api.h — the OpenAI-style request and response bodies of `mambac serve`: JSON in, a
 * checked request out (every field's type and range, UTF-8, sizes bounded); the
 * response, stream chunk and error objects out. No I/O and no model: parsing is a pure
 * function of the bytes (fuzz/fuzz_serve_request.c). */
#ifndef MAMBAC_SERVE_API_H
#define MAMBAC_SERVE_API_H

#include <stddef.h>
#include <stdint.h>

#include "mambac.h"

#define SRV_MAX_STOP 16        /* stop strings a request may give */
#define SRV_MAX_STOP_LEN 512   /* bytes each */
#define SRV_MAX_TOP_LOGPROBS 20
#define SRV_MAX_MESSAGES 4096
#define SRV_MAX_N 16           /* choices a request may ask for ('n') */

/* What a request may ask for at most (the server's options). */
typedef struct srv_limits {
    int64_t max_tokens;      /* generated tokens a request may ask for (and the default) */
    int64_t max_prompt_ids;  /* token ids a prompt given as ids may hold */
} srv_limits;

typedef enum { SRV_COMPLETION, SRV_CHAT } srv_kind;

typedef struct srv_request {
    srv_kind kind;
    char *prompt;             /* completions: the prompt text, or NULL when given as ids */
    size_t prompt_len;
    int32_t *prompt_ids;      /* completions: the prompt as token ids (range checked later) */
    size_t n_prompt_ids;
    mambac_chat_message *msgs;/* chat: roles "system", "user", "assistant" (strings owned) */
    size_t n_msgs;
    mambac_sampler_params sp;
    int seed_given;
    int64_t max_tokens;
    int ignore_eos;
    char *stop[SRV_MAX_STOP];
    size_t n_stop;
    int stream, include_usage;
    int logprobs;             /* token log-probabilities asked for */
    int top_logprobs;         /* alternatives per token, 0..SRV_MAX_TOP_LOGPROBS */
    int cache_prompt;         /* use and fill the state cache (default 1) */
    int n_choices;            /* 'n', 1..SRV_MAX_N */
} srv_request;

/* Parses a body of /v1/completions or /v1/chat/completions. 0 and *out filled, or -1 and
 * a message for the client (and *param the offending field, or NULL). Unknown fields are
 * ignored; known ones of the wrong type or out of range are refused. */
int srv_parse_request(const char *body, size_t len, srv_kind kind, const srv_limits *lim, srv_request *out, char *msg,
                      size_t msglen, const char **param);
void srv_request_free(srv_request *r);

/* Whether s[0..n) is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
int srv_utf8_valid(const char *s, size_t n);
/* A copy of s[0..n) with each invalid UTF-8 sequence replaced by U+FFFD (NUL-terminated,
 * malloc'd; *out_len its length): token bytes may end inside a character. */
char *srv_utf8_sanitize(const char *s, size_t n, size_t *out_len);

/* {"error": {"message", "type", "param", "code"}}: malloc'd JSON text. */
char *srv_error_json(const char *message, const char *type, const char *param);

/* One generated token's log-probability and its best alternatives (text as bytes). */
typedef struct srv_token_lp {
    int32_t id;
    float logprob;
    int n_top;
    int32_t top_id[SRV_MAX_TOP_LOGPROBS];
    float top_lp[SRV_MAX_TOP_LOGPROBS];
} srv_token_lp;

/* What a finished (or streamed) choice says. */
typedef struct srv_result {
    const char *id;           /* "cmpl-..." / "chatcmpl-..." */
    int index;                /* the choice's index (of the request's 'n') */
    const char *model;
    int64_t created;
    const char *text;         /* the choice's text (sanitized to UTF-8 by the writer) */
    size_t text_len;
    const char *finish;       /* "stop", "length", or NULL while streaming */
    const srv_token_lp *lps;  /* n_lps tokens' log-probabilities, or NULL */
    size_t n_lps;
    int64_t prompt_tokens, cached_tokens, completion_tokens;
    int usage;                /* write the usage object */
    int with_choice;          /* a stream chunk with a choice (else the usage-only chunk) */
    int role_delta;           /* chat stream: the first chunk's {"role": "assistant"} */
} srv_result;

/* The JSON of a whole response (stream 0; the choices r[0..n), the response's id, model,
 * created and usage from r[0]) or of one stream chunk (stream 1, n 1), for kind; tok
 * names the tokens of log-probabilities. malloc'd text. */
char *srv_result_json(srv_kind kind, int stream, const srv_result *r, size_t n, const mambac_tokenizer *tok);

#endif
