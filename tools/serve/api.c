/* api.c — parsing and writing the OpenAI-style bodies (api.h). Parsing refuses what it
 * cannot honour exactly (a field of the wrong type, a value out of range, invalid UTF-8,
 * n > 1) and ignores fields it does not know, as OpenAI clients send many. */
#include "serve/api.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int srv_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        const unsigned c = p[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_seq(const char *s, size_t n) {
    const unsigned c = (unsigned char)s[0];
    const size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!k || k > n) return 0;
    return srv_utf8_valid(s, k) ? k : 0;
}

char *srv_utf8_sanitize(const char *s, size_t n, size_t *out_len) {
    char *o = malloc(3 * n + 1);
    size_t m = 0;
    if (!o) return NULL;
    for (size_t i = 0; i < n;) {
        const size_t k = utf8_seq(s + i, n - i);
        if (k) {
            memcpy(o + m, s + i, k), m += k, i += k;
        } else {
            memcpy(o + m, "\xef\xbf\xbd", 3), m += 3, i++;
        }
    }
    o[m] = 0;
    if (out_len) *out_len = m;
    return o;
}

char *srv_error_json(const char *message, const char *type, const char *param) {
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    size_t ml;
    char *m = srv_utf8_sanitize(message, strlen(message), &ml);
    cJSON_AddStringToObject(e, "message", m ? m : "error");
    cJSON_AddStringToObject(e, "type", type);
    if (param) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    cJSON_AddNullToObject(e, "code");
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    free(m);
    return out;
}

/* ---- parsing ------------------------------------------------------------------ */

typedef struct parse {
    char *msg;
    size_t msglen;
    const char **param;
} parse;

__attribute__((format(printf, 3, 4))) static int refuse(parse *p, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, p->msglen, fmt, ap);
    va_end(ap);
    if (p->param) *p->param = param;
    return -1;
}

/* A present, non-null field (JSON null counts as absent, as OpenAI's API treats it). */
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return f && !cJSON_IsNull(f) ? f : NULL;
}

static int get_number(parse *p, const cJSON *o, const char *name, double lo, double hi, double *out) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble)) return refuse(p, name, "'%s' must be a number", name);
    if (f->valuedouble < lo || f->valuedouble > hi) return refuse(p, name, "'%s' must be in [%g, %g]", name, lo, hi);
    *out = f->valuedouble;
    return 0;
}

static int get_int(parse *p, const cJSON *o, const char *name, double lo, double hi, int64_t *out) {
    double v = NAN;
    if (get_number(p, o, name, lo, hi, &v)) return -1;
    if (isnan(v)) return 0;
    if (v != floor(v)) return refuse(p, name, "'%s' must be an integer", name);
    *out = (int64_t)v;
    return 0;
}

static int get_bool(parse *p, const cJSON *o, const char *name, int *out) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsBool(f)) return refuse(p, name, "'%s' must be true or false", name);
    *out = cJSON_IsTrue(f);
    return 0;
}

static char *dup_string(parse *p, const cJSON *s, const char *name, size_t *len) {
    const size_t n = strlen(s->valuestring);
    if (!srv_utf8_valid(s->valuestring, n)) {
        refuse(p, name, "'%s' is not valid UTF-8", name);
        return NULL;
    }
    char *d = malloc(n + 1);
    if (!d) {
        refuse(p, name, "out of memory");
        return NULL;
    }
    memcpy(d, s->valuestring, n + 1);
    if (len) *len = n;
    return d;
}

static int parse_stop(parse *p, const cJSON *o, srv_request *r) {
    const cJSON *f = field(o, "stop");
    if (!f) return 0;
    if (cJSON_IsString(f)) {
        if (!f->valuestring[0]) return 0;
        if (strlen(f->valuestring) > SRV_MAX_STOP_LEN) return refuse(p, "stop", "a stop string is longer than %d bytes", SRV_MAX_STOP_LEN);
        return (r->stop[r->n_stop++] = dup_string(p, f, "stop", NULL)) ? 0 : -1;
    }
    if (!cJSON_IsArray(f)) return refuse(p, "stop", "'stop' must be a string or an array of strings");
    if (cJSON_GetArraySize(f) > SRV_MAX_STOP) return refuse(p, "stop", "at most %d stop strings", SRV_MAX_STOP);
    const cJSON *s;
    cJSON_ArrayForEach(s, f) {
        if (!cJSON_IsString(s)) return refuse(p, "stop", "'stop' must be a string or an array of strings");
        if (!s->valuestring[0]) continue;
        if (strlen(s->valuestring) > SRV_MAX_STOP_LEN) return refuse(p, "stop", "a stop string is longer than %d bytes", SRV_MAX_STOP_LEN);
        if (!(r->stop[r->n_stop++] = dup_string(p, s, "stop", NULL))) return -1;
    }
    return 0;
}

/* prompt: a string, an array of one string, an array of ids, or an array of one array of ids. */
static int parse_prompt(parse *p, const cJSON *o, const srv_limits *lim, srv_request *r) {
    const cJSON *f = field(o, "prompt");
    if (!f) return refuse(p, "prompt", "'prompt' is required");
    if (cJSON_IsArray(f) && cJSON_GetArraySize(f) == 1 && (cJSON_IsString(f->child) || cJSON_IsArray(f->child)))
        f = f->child;
    if (cJSON_IsString(f)) return (r->prompt = dup_string(p, f, "prompt", &r->prompt_len)) ? 0 : -1;
    if (!cJSON_IsArray(f)) return refuse(p, "prompt", "'prompt' must be a string or an array of token ids");
    const int n = cJSON_GetArraySize(f);
    if (n > 1 && !cJSON_IsNumber(f->child)) return refuse(p, "prompt", "one prompt a request (n and batches of prompts are not supported)");
    if ((int64_t)n > lim->max_prompt_ids) return refuse(p, "prompt", "the prompt has more than %lld tokens", (long long)lim->max_prompt_ids);
    r->prompt_ids = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!r->prompt_ids) return refuse(p, "prompt", "out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, f) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 || e->valuedouble > INT32_MAX)
            return refuse(p, "prompt", "token ids must be integers in [0, 2^31)");
        r->prompt_ids[r->n_prompt_ids++] = (int32_t)e->valuedouble;
    }
    return 0;
}

/* content: a string, or an array of {"type": "text", "text": ...} parts (joined). */
static char *message_content(parse *p, const cJSON *m) {
    const cJSON *c = field(m, "content");
    if (!c) return calloc(1, 1); /* an assistant message with only tool calls: no text */
    if (cJSON_IsString(c)) return dup_string(p, c, "messages", NULL);
    if (!cJSON_IsArray(c)) {
        refuse(p, "messages", "a message's content must be a string or an array of text parts");
        return NULL;
    }
    size_t len = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *t = field(part, "type"), *x = field(part, "text");
        if (!cJSON_IsObject(part) || !cJSON_IsString(t) || strcmp(t->valuestring, "text") != 0 || !cJSON_IsString(x)) {
            refuse(p, "messages", "only text content parts are supported");
            return NULL;
        }
        len += strlen(x->valuestring);
    }
    char *out = malloc(len + 1);
    if (!out) {
        refuse(p, "messages", "out of memory");
        return NULL;
    }
    len = 0;
    cJSON_ArrayForEach(part, c) {
        const char *x = field(part, "text")->valuestring;
        memcpy(out + len, x, strlen(x)), len += strlen(x);
    }
    out[len] = 0;
    if (!srv_utf8_valid(out, len)) {
        free(out);
        refuse(p, "messages", "'messages' is not valid UTF-8");
        return NULL;
    }
    return out;
}

static int parse_messages(parse *p, const cJSON *o, srv_request *r) {
    const cJSON *f = field(o, "messages");
    if (!cJSON_IsArray(f) || cJSON_GetArraySize(f) == 0) return refuse(p, "messages", "'messages' must be a non-empty array");
    const int n = cJSON_GetArraySize(f);
    if (n > SRV_MAX_MESSAGES) return refuse(p, "messages", "at most %d messages", SRV_MAX_MESSAGES);
    r->msgs = calloc((size_t)n, sizeof *r->msgs);
    if (!r->msgs) return refuse(p, "messages", "out of memory");
    const cJSON *m;
    cJSON_ArrayForEach(m, f) {
        const cJSON *role = field(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) return refuse(p, "messages", "each message needs a 'role' string");
        const char *rs = role->valuestring;
        const char *canon = strcmp(rs, "system") == 0 || strcmp(rs, "developer") == 0 ? "system"
                            : strcmp(rs, "user") == 0                                 ? "user"
                            : strcmp(rs, "assistant") == 0                            ? "assistant"
                                                                                      : NULL;
        if (!canon) return refuse(p, "messages", "unsupported role '%.32s' (system, developer, user, assistant)", rs);
        char *content = message_content(p, m);
        if (!content) return -1;
        r->msgs[r->n_msgs].role = canon;
        r->msgs[r->n_msgs++].content = content;
    }
    return 0;
}

int srv_parse_request(const char *body, size_t len, srv_kind kind, const srv_limits *lim, srv_request *out, char *msg,
                      size_t msglen, const char **param) {
    parse p = {msg, msglen, param};
    if (param) *param = NULL;
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->sp = mambac_sampler_default_params();
    out->sp.temp = 1.0f, out->sp.top_p = 1.0f, out->sp.top_k = 0, out->sp.min_p = 0.0f, out->sp.repeat_penalty = 1.0f;
    out->max_tokens = lim->max_tokens;
    out->cache_prompt = 1;
    if (!srv_utf8_valid(body, len)) return refuse(&p, NULL, "the body is not valid UTF-8");
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) return refuse(&p, NULL, "the body is not valid JSON");
    int rc = -1;
    double v;
    int64_t iv;
    if (!cJSON_IsObject(root)) {
        refuse(&p, NULL, "the body must be a JSON object");
        goto done;
    }
    if (kind == SRV_COMPLETION ? parse_prompt(&p, root, lim, out) : parse_messages(&p, root, out)) goto done;
    v = out->sp.temp;
    if (get_number(&p, root, "temperature", 0, 100, &v)) goto done;
    out->sp.temp = (float)v, v = out->sp.top_p;
    if (get_number(&p, root, "top_p", 0, 1, &v)) goto done;
    if (v <= 0) {
        refuse(&p, "top_p", "'top_p' must be in (0, 1]");
        goto done;
    }
    out->sp.top_p = (float)v, v = out->sp.min_p;
    if (get_number(&p, root, "min_p", 0, 1, &v)) goto done;
    out->sp.min_p = (float)v, v = out->sp.repeat_penalty;
    if (get_number(&p, root, "repeat_penalty", 0.01, 100, &v)) goto done;
    out->sp.repeat_penalty = (float)v, iv = out->sp.top_k;
    if (get_int(&p, root, "top_k", 0, 1 << 30, &iv)) goto done;
    out->sp.top_k = (int32_t)iv, iv = out->sp.repeat_last_n;
    if (get_int(&p, root, "repeat_last_n", 0, 1 << 20, &iv)) goto done;
    out->sp.repeat_last_n = (int32_t)iv, iv = -1;
    if (get_int(&p, root, "seed", -9007199254740992.0, 9007199254740992.0, &iv)) goto done;
    if (iv >= 0) out->sp.seed = (uint64_t)iv, out->seed_given = 1;
    if (get_int(&p, root, "max_tokens", 0, (double)lim->max_tokens, &out->max_tokens)) goto done;
    if (kind == SRV_CHAT && get_int(&p, root, "max_completion_tokens", 0, (double)lim->max_tokens, &out->max_tokens)) goto done;
    iv = 1;
    if (get_int(&p, root, "n", 1, SRV_MAX_N, &iv)) goto done;
    out->n_choices = (int)iv;
    if (get_bool(&p, root, "ignore_eos", &out->ignore_eos) || get_bool(&p, root, "stream", &out->stream) ||
        get_bool(&p, root, "cache_prompt", &out->cache_prompt) || parse_stop(&p, root, out))
        goto done;
    const cJSON *so = field(root, "stream_options");
    if (so && !cJSON_IsObject(so)) {
        refuse(&p, "stream_options", "'stream_options' must be an object");
        goto done;
    }
    if (so && get_bool(&p, so, "include_usage", &out->include_usage)) goto done;
    if (kind == SRV_COMPLETION) { /* logprobs: an integer, the alternatives per token */
        iv = -1;
        if (get_int(&p, root, "logprobs", 0, SRV_MAX_TOP_LOGPROBS, &iv)) goto done;
        if (iv >= 0) out->logprobs = 1, out->top_logprobs = (int)iv;
    } else { /* logprobs: a flag; top_logprobs: the alternatives */
        if (get_bool(&p, root, "logprobs", &out->logprobs)) goto done;
        iv = 0;
        if (get_int(&p, root, "top_logprobs", 0, SRV_MAX_TOP_LOGPROBS, &iv)) goto done;
        if (iv > 0 && !out->logprobs) {
            refuse(&p, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
            goto done;
        }
        out->top_logprobs = (int)iv;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc) srv_request_free(out);
    return rc;
}

void srv_request_free(srv_request *r) {
    free(r->prompt);
    free(r->prompt_ids);
    for (size_t i = 0; i < r->n_msgs; i++) free((char *)r->msgs[i].content);
    free(r->msgs);
    for (size_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

/* ---- writing ------------------------------------------------------------------ */

static void add_text(cJSON *o, const char *name, const char *s, size_t n) {
    size_t m;
    char *t = srv_utf8_sanitize(s ? s : "", s ? n : 0, &m);
    cJSON_AddStringToObject(o, name, t ? t : "");
    free(t);
}

static void add_token_text(cJSON *o, const mambac_tokenizer *tok, int32_t id, int with_bytes) {
    size_t n = 0;
    const char *b = tok ? mambac_token_bytes(tok, id, &n) : NULL;
    add_text(o, "token", b, n);
    if (!with_bytes) return;
    cJSON *arr = cJSON_AddArrayToObject(o, "bytes");
    for (size_t i = 0; b && i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber((unsigned char)b[i]));
}

/* completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"} */
static void completion_logprobs(cJSON *choice, const srv_result *r, const mambac_tokenizer *tok) {
    cJSON *lp = cJSON_AddObjectToObject(choice, "logprobs");
    cJSON *tokens = cJSON_AddArrayToObject(lp, "tokens"), *lps = cJSON_AddArrayToObject(lp, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(lp, "top_logprobs"), *offs = cJSON_AddArrayToObject(lp, "text_offset");
    size_t off = 0;
    for (size_t i = 0; i < r->n_lps; i++) {
        const srv_token_lp *t = &r->lps[i];
        cJSON *tmp = cJSON_CreateObject();
        add_token_text(tmp, tok, t->id, 0);
        cJSON_AddItemToArray(tokens, cJSON_DetachItemFromObject(tmp, "token"));
        cJSON_Delete(tmp);
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(t->logprob));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        size_t n = 0;
        if (tok) mambac_token_bytes(tok, t->id, &n);
        off += n;
        cJSON *top = cJSON_CreateObject();
        for (int k = 0; k < t->n_top; k++) {
            cJSON *e = cJSON_CreateObject();
            add_token_text(e, tok, t->top_id[k], 0);
            const char *key = cJSON_GetObjectItem(e, "token")->valuestring;
            if (!cJSON_GetObjectItemCaseSensitive(top, key)) cJSON_AddNumberToObject(top, key, t->top_lp[k]);
            cJSON_Delete(e);
        }
        cJSON_AddItemToArray(tops, top);
    }
}

/* chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]} */
static void chat_logprobs(cJSON *choice, const srv_result *r, const mambac_tokenizer *tok) {
    cJSON *lp = cJSON_AddObjectToObject(choice, "logprobs"), *content = cJSON_AddArrayToObject(lp, "content");
    for (size_t i = 0; i < r->n_lps; i++) {
        const srv_token_lp *t = &r->lps[i];
        cJSON *e = cJSON_CreateObject();
        add_token_text(e, tok, t->id, 1);
        cJSON_AddNumberToObject(e, "logprob", t->logprob);
        cJSON *tops = cJSON_AddArrayToObject(e, "top_logprobs");
        for (int k = 0; k < t->n_top; k++) {
            cJSON *a = cJSON_CreateObject();
            add_token_text(a, tok, t->top_id[k], 1);
            cJSON_AddNumberToObject(a, "logprob", t->top_lp[k]);
            cJSON_AddItemToArray(tops, a);
        }
        cJSON_AddItemToArray(content, e);
    }
}

char *srv_result_json(srv_kind kind, int stream, const srv_result *rs, size_t n, const mambac_tokenizer *tok) {
    const srv_result *r = rs;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", r->id);
    cJSON_AddStringToObject(root, "object",
                            kind == SRV_CHAT ? (stream ? "chat.completion.chunk" : "chat.completion") : "text_completion");
    cJSON_AddNumberToObject(root, "created", (double)r->created);
    cJSON_AddStringToObject(root, "model", r->model);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    for (size_t i = 0; i < (stream ? 1 : n) && (!stream || rs->with_choice); i++) {
        r = &rs[i];
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", r->index);
        if (kind == SRV_COMPLETION) {
            add_text(c, "text", r->text, r->text_len);
        } else {
            cJSON *m = cJSON_AddObjectToObject(c, stream ? "delta" : "message");
            if (!stream || r->role_delta) cJSON_AddStringToObject(m, "role", "assistant");
            if (!stream || r->text_len) add_text(m, "content", r->text, r->text_len);
        }
        if (r->lps) (kind == SRV_CHAT ? chat_logprobs : completion_logprobs)(c, r, tok);
        else cJSON_AddNullToObject(c, "logprobs");
        if (r->finish) cJSON_AddStringToObject(c, "finish_reason", r->finish);
        else cJSON_AddNullToObject(c, "finish_reason");
        cJSON_AddItemToArray(choices, c);
    }
    r = rs;
    if (r->usage) {
        cJSON *u = cJSON_AddObjectToObject(root, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", (double)r->prompt_tokens);
        cJSON_AddNumberToObject(u, "completion_tokens", (double)r->completion_tokens);
        cJSON_AddNumberToObject(u, "total_tokens", (double)(r->prompt_tokens + r->completion_tokens));
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"), "cached_tokens", (double)r->cached_tokens);
    }
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}
