/* http.c — the HTTP side (http.h). Each connection's thread reads the body (refusing it
 * past max_body), checks the key, routes; a generation request becomes a job: waited
 * for (non-streaming) or streamed chunk by chunk from a content-reader callback that
 * blocks on the job's condition. A client that goes away cancels its job: seen by a
 * peek at its socket while waiting, or by libmicrohttpd when a write fails. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "serve/http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct srv_http {
    srv_config cfg;
    const mambac_model *model;
    const mambac_model_info *info;
    mambac_tokenizer *tok;
    srv_sched *sched;
    struct MHD_Daemon *d;
    atomic_int in_flight, draining;
    atomic_ullong req_id;
    atomic_ullong responses[6]; /* by status class: 1xx..5xx, and failed writes */
    int port;
};

typedef struct conn {
    char *body;
    size_t len, cap;
    int too_big;
} conn;

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- responses ------------------------------------------------------------------ */

static enum MHD_Result send_body(srv_http *h, struct MHD_Connection *c, unsigned status, const char *type, char *body) {
    const char *b = body ? body : "";
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(b), (void *)b, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == 503) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    const enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (status / 100 >= 1 && status / 100 <= 5) atomic_fetch_add(&h->responses[status / 100], 1);
    return rc;
}

static enum MHD_Result send_json(srv_http *h, struct MHD_Connection *c, unsigned status, char *json) {
    return send_body(h, c, status, "application/json", json);
}

static enum MHD_Result send_error(srv_http *h, struct MHD_Connection *c, unsigned status, const char *msg, const char *param) {
    const char *type = status == 401   ? "authentication_error"
                       : status == 404 ? "not_found_error"
                       : status == 503 ? "server_overloaded"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    return send_json(h, c, status, srv_error_json(msg, type, param));
}

static char *json_text(cJSON *root) {
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* ---- the client's socket ------------------------------------------------------------ */

static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return 1;
    char b;
    const ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Waits up to ms milliseconds for the job's next event or its end (job->mu held). */
static void wait_job(srv_job *j, long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

/* ---- generation ------------------------------------------------------------------------ */

/* A request's generation: one job per choice ('n'), choice i in jobs[i]. */
typedef struct gen {
    srv_http *h;
    srv_job *jobs[SRV_MAX_N];
    int n_jobs;
    srv_kind kind;
    char id[48];
    int64_t created;
    int include_usage, want_lp;
    struct MHD_Connection *c;
    double deadline;
    /* streaming, per choice: events sent, the role chunk sent, the end sent */
    size_t next_ev[SRV_MAX_N];
    int sent_role[SRV_MAX_N], ended[SRV_MAX_N];
    char *pending;
    size_t pending_len, pending_off;
    int finished;
} gen;

static void gen_free(gen *g) {
    for (int i = 0; i < g->n_jobs; i++) {
        atomic_store(&g->jobs[i]->cancelled, 1); /* a no-op when it is done */
        srv_job_release(g->jobs[i]);
    }
    free(g->pending);
    free(g);
}

/* The prompt counts once (choices after the first continue from its cached state); the
 * completion tokens of every choice. The jobs are done. */
static void fill_usage(const gen *g, srv_result *r) {
    r->usage = 1;
    r->prompt_tokens = (int64_t)g->jobs[0]->n_ids, r->cached_tokens = g->jobs[0]->n_cached;
    r->completion_tokens = 0;
    for (int i = 0; i < g->n_jobs; i++) r->completion_tokens += g->jobs[i]->n_generated;
}

static const char *model_name(const srv_http *h) { return h->cfg.model_name ? h->cfg.model_name : "mambac"; }

/* Appends "data: JSON\n\n" to the stream's pending bytes. */
static int pend(gen *g, const char *json) {
    if (!json) return 0;
    const size_t n = strlen(json), need = g->pending_len + n + sizeof "data: \n\n";
    char *p = realloc(g->pending, need);
    if (!p) return 0;
    g->pending = p;
    g->pending_len += (size_t)sprintf(p + g->pending_len, "data: %s\n\n", json);
    return 1;
}
static void pend_result(gen *g, const srv_result *r) {
    char *s = srv_result_json(g->kind, 1, r, 1, g->h->tok);
    pend(g, s), free(s);
}

/* The stream's chunks for every choice's new events and ends; once all have ended, the
 * usage chunk (when asked) and [DONE]. */
static void stream_events(gen *g) {
    int all_ended = 1;
    for (int i = 0; i < g->n_jobs; i++) {
        srv_job *j = g->jobs[i];
        const srv_result base = {.id = g->id, .index = i, .model = model_name(g->h), .created = g->created, .with_choice = 1};
        pthread_mutex_lock(&j->mu);
        if (g->kind == SRV_CHAT && !g->sent_role[i]) { /* the first chunk names the role, as OpenAI's does */
            srv_result r = base;
            r.role_delta = 1;
            pend_result(g, &r);
            g->sent_role[i] = 1;
        }
        for (; g->next_ev[i] < j->n_ev; g->next_ev[i]++) {
            const srv_event *e = &j->ev[g->next_ev[i]];
            const int lp = g->want_lp && e->lp.id >= 0;
            if (!e->len && !lp) continue;
            srv_result r = base;
            r.text = e->text, r.text_len = e->len;
            if (lp) r.lps = &e->lp, r.n_lps = 1;
            pend_result(g, &r);
        }
        if (j->phase == SRV_JOB_DONE && !g->ended[i]) {
            g->ended[i] = 1;
            if (j->failed) {
                char *s = srv_error_json(j->error, "server_error", NULL);
                pend(g, s), free(s);
            } else {
                srv_result r = base;
                r.finish = j->finish;
                pend_result(g, &r);
            }
        }
        all_ended &= g->ended[i];
        pthread_mutex_unlock(&j->mu);
    }
    if (!all_ended || g->finished) return;
    g->finished = 1;
    if (g->include_usage) {
        srv_result u = {.id = g->id, .model = model_name(g->h), .created = g->created};
        fill_usage(g, &u);
        pend_result(g, &u);
    }
    const size_t need = g->pending_len + 16;
    char *p = realloc(g->pending, need);
    if (p) g->pending = p, g->pending_len += (size_t)sprintf(p + g->pending_len, "data: [DONE]\n\n");
}

/* Whether a choice has something the stream has not sent (job->mu not held). */
static int stream_news(gen *g, int i) {
    srv_job *j = g->jobs[i];
    pthread_mutex_lock(&j->mu);
    const int news = g->next_ev[i] < j->n_ev || (j->phase == SRV_JOB_DONE && !g->ended[i]);
    pthread_mutex_unlock(&j->mu);
    return news;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    gen *g = cls;
    (void)pos;
    for (;;) {
        if (g->pending_off < g->pending_len) {
            size_t n = g->pending_len - g->pending_off;
            if (n > max) n = max;
            memcpy(buf, g->pending + g->pending_off, n);
            g->pending_off += n;
            if (g->pending_off == g->pending_len) g->pending_off = g->pending_len = 0;
            return (ssize_t)n;
        }
        if (g->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        if (client_gone(g->c) || now_mono() > g->deadline) {
            for (int i = 0; i < g->n_jobs; i++) atomic_store(&g->jobs[i]->cancelled, 1);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        int news = 0, first_open = -1;
        for (int i = 0; i < g->n_jobs && !news; i++) {
            news = stream_news(g, i);
            if (first_open < 0 && !g->ended[i]) first_open = i;
        }
        if (!news && first_open >= 0) { /* several choices: short waits on one, so none waits long */
            srv_job *j = g->jobs[first_open];
            pthread_mutex_lock(&j->mu);
            if (g->next_ev[first_open] == j->n_ev && j->phase != SRV_JOB_DONE) wait_job(j, g->n_jobs > 1 ? 5 : 50);
            pthread_mutex_unlock(&j->mu);
        }
        stream_events(g);
    }
}

static void stream_free(void *cls) { gen_free(cls); }

/* Waits for every job of g; 0, or -1 when the client went away or the deadline passed
 * (the jobs cancelled). */
static int wait_all(gen *g) {
    for (int i = 0; i < g->n_jobs; i++) {
        srv_job *j = g->jobs[i];
        pthread_mutex_lock(&j->mu);
        while (j->phase != SRV_JOB_DONE) {
            if (client_gone(g->c) || now_mono() > g->deadline) {
                pthread_mutex_unlock(&j->mu);
                for (int k = 0; k < g->n_jobs; k++) atomic_store(&g->jobs[k]->cancelled, 1);
                return -1;
            }
            wait_job(j, 50);
        }
        pthread_mutex_unlock(&j->mu); /* done: the scheduler no longer writes it */
    }
    return 0;
}

/* Non-streaming: waits for the jobs, then one response with each choice's whole text. */
static enum MHD_Result answer_whole(gen *g) {
    srv_http *h = g->h;
    if (wait_all(g)) {
        const int late = now_mono() > g->deadline;
        struct MHD_Connection *c = g->c;
        gen_free(g);
        return late ? send_error(h, c, 504, "the request took longer than the server's --timeout", NULL) : MHD_NO;
    }
    for (int i = 0; i < g->n_jobs; i++)
        if (g->jobs[i]->failed) {
            const srv_job *j = g->jobs[i];
            const enum MHD_Result rc = send_error(h, g->c, (unsigned)(j->status ? j->status : 500), j->error, NULL);
            gen_free(g);
            return rc;
        }
    srv_result rs[SRV_MAX_N];
    char *texts[SRV_MAX_N] = {0};
    srv_token_lp *lps[SRV_MAX_N] = {0};
    int ok = 1;
    for (int c = 0; c < g->n_jobs; c++) {
        const srv_job *j = g->jobs[c];
        size_t len = 0, n_lp = 0;
        for (size_t i = 0; i < j->n_ev; i++) len += j->ev[i].len, n_lp += j->ev[i].lp.id >= 0;
        texts[c] = malloc(len + 1);
        if (g->want_lp) lps[c] = malloc((n_lp ? n_lp : 1) * sizeof *lps[c]);
        if (!texts[c] || (g->want_lp && !lps[c])) {
            ok = 0;
            break;
        }
        len = 0, n_lp = 0;
        for (size_t i = 0; i < j->n_ev; i++) {
            memcpy(texts[c] + len, j->ev[i].text, j->ev[i].len), len += j->ev[i].len;
            if (lps[c] && j->ev[i].lp.id >= 0) lps[c][n_lp++] = j->ev[i].lp;
        }
        rs[c] = (srv_result){.id = g->id, .index = c, .model = model_name(h), .created = g->created, .text = texts[c],
                             .text_len = len, .finish = j->finish, .lps = lps[c], .n_lps = n_lp};
    }
    enum MHD_Result rc;
    if (!ok) {
        rc = send_error(h, g->c, 500, "out of memory", NULL);
    } else {
        fill_usage(g, &rs[0]);
        rc = send_json(h, g->c, 200, srv_result_json(g->kind, 0, rs, (size_t)g->n_jobs, h->tok));
    }
    for (int c = 0; c < g->n_jobs; c++) free(texts[c]), free(lps[c]);
    gen_free(g);
    return rc;
}

/* With cache_prompt, choices after the first wait until the first has its prompt evaluated (its first event,
 * or its end): its state is then in the prefix cache and they start from it. 0, or -1
 * when the client went away or the deadline passed. */
static int wait_prompt(gen *g) {
    srv_job *j = g->jobs[0];
    pthread_mutex_lock(&j->mu);
    while (j->n_ev == 0 && j->phase != SRV_JOB_DONE) {
        if (client_gone(g->c) || now_mono() > g->deadline) {
            pthread_mutex_unlock(&j->mu);
            return -1;
        }
        wait_job(j, 50);
    }
    pthread_mutex_unlock(&j->mu);
    return 0;
}

/* The prompt's tokens: the text through the tokenizer (chat: the messages through the
 * template first), or the ids as given (range checked). */
static int prompt_ids(srv_http *h, srv_request *req, int32_t **ids, size_t *n, char *msg, size_t msglen) {
    mambac_error err;
    *ids = NULL, *n = 0;
    if (req->kind == SRV_COMPLETION && req->prompt_ids) {
        for (size_t i = 0; i < req->n_prompt_ids; i++)
            if (req->prompt_ids[i] >= h->info->vocab_size) {
                snprintf(msg, msglen, "token id %d is not in the vocabulary (%d ids)", req->prompt_ids[i], h->info->vocab_size);
                return -1;
            }
        *ids = malloc((req->n_prompt_ids ? req->n_prompt_ids : 1) * sizeof **ids);
        if (!*ids) return snprintf(msg, msglen, "out of memory"), -1;
        memcpy(*ids, req->prompt_ids, req->n_prompt_ids * sizeof **ids);
        *n = req->n_prompt_ids;
        return 0;
    }
    if (!h->tok) return snprintf(msg, msglen, "the model has no tokenizer: give the prompt as token ids"), -1;
    char *text = req->prompt;
    size_t len = req->prompt_len;
    char *chat = NULL;
    if (req->kind == SRV_CHAT) {
        if (mambac_chat_apply(h->cfg.chat_template, req->msgs, req->n_msgs, 1, &chat, &len, &err) != MAMBAC_OK)
            return snprintf(msg, msglen, "%s", err.msg), -1;
        text = chat;
    }
    /* tokenizing is linear in the text; a text far past the token limit is refused first */
    if ((int64_t)len > 16 * h->cfg.max_prompt + 4096) {
        mambac_free(chat);
        return snprintf(msg, msglen, "the prompt is longer than the server's limit of %lld tokens", (long long)h->cfg.max_prompt), -1;
    }
    const mambac_status st = mambac_tokenize(h->tok, text ? text : "", len, ids, n, &err);
    mambac_free(chat);
    if (st != MAMBAC_OK) return snprintf(msg, msglen, "%s", err.msg), -1;
    return 0;
}

static enum MHD_Result handle_generate(srv_http *h, struct MHD_Connection *c, srv_kind kind, const conn *cn) {
    char msg[512];
    const char *param = NULL;
    srv_request req;
    if (srv_parse_request(cn->body ? cn->body : "", cn->len, kind, &h->cfg.lim, &req, msg, sizeof msg, &param))
        return send_error(h, c, 400, msg, param);
    if (kind == SRV_CHAT && req.n_stop < SRV_MAX_STOP) { /* the template's end of turn ends the answer */
        const char *eot = mambac_chat_end_of_turn(h->cfg.chat_template);
        if (eot && *eot && (req.stop[req.n_stop] = strdup(eot))) req.n_stop++;
    }
    int32_t *ids;
    size_t n;
    if (prompt_ids(h, &req, &ids, &n, msg, sizeof msg)) {
        srv_request_free(&req);
        return send_error(h, c, 400, msg, "prompt");
    }
    if (n == 0) { /* an empty prompt starts from the end-of-text token, as the harnesses do */
        int32_t eos = h->info->eos_token_id;
        if (eos < 0 && h->tok) eos = mambac_tokenizer_find(h->tok, "<|endoftext|>");
        if (eos < 0 || !(ids = realloc(ids, sizeof *ids))) {
            free(ids);
            srv_request_free(&req);
            return send_error(h, c, 400, "the prompt is empty", "prompt");
        }
        ids[0] = eos, n = 1;
    }
    if ((int64_t)n > h->cfg.max_prompt) {
        free(ids);
        srv_request_free(&req);
        snprintf(msg, sizeof msg, "the prompt has %zu tokens; the server's limit is %lld", n, (long long)h->cfg.max_prompt);
        return send_error(h, c, 400, msg, "prompt");
    }
    gen *g = calloc(1, sizeof *g);
    const int stream = req.stream;
    if (!g) {
        free(ids);
        srv_request_free(&req);
        return send_error(h, c, 500, "out of memory", NULL);
    }
    g->h = h, g->kind = kind, g->c = c, g->created = (int64_t)time(NULL);
    g->include_usage = req.include_usage, g->want_lp = req.logprobs;
    g->deadline = now_mono() + h->cfg.timeout_s;
    snprintf(g->id, sizeof g->id, "%s-%llx", kind == SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)atomic_fetch_add(&h->req_id, 1) ^ ((unsigned long long)g->created << 20));
    /* one job a choice; with a seed, choice i samples with seed + i */
    for (int i = 0; i < req.n_choices; i++) {
        srv_job *j = srv_job_new(ids, n, &req);
        if (!j) break;
        if (req.seed_given) j->sp.seed = req.sp.seed + (uint64_t)i;
        g->jobs[g->n_jobs++] = j;
    }
    free(ids);
    const int made = g->n_jobs == req.n_choices;
    srv_request_free(&req);
    if (!made) {
        gen_free(g);
        return send_error(h, c, 500, "out of memory", NULL);
    }
    /* g holds the submitter's reference to each job, the scheduler its own */
    for (int i = 0; i < g->n_jobs; i++) {
        if (i == 1 && g->jobs[0]->cache_prompt && wait_prompt(g)) {
            struct MHD_Connection *cc = g->c;
            const int late = now_mono() > g->deadline;
            gen_free(g);
            return late ? send_error(h, cc, 504, "the request took longer than the server's --timeout", NULL) : MHD_NO;
        }
        if (srv_sched_submit(h->sched, g->jobs[i])) {
            gen_free(g); /* cancels those already submitted */
            return send_error(h, c, 503, "the server is busy (its queue is full) or shutting down: retry later", NULL);
        }
    }
    if (!stream) return answer_whole(g);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, g, stream_free);
    if (!r) {
        stream_free(g);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    const enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    atomic_fetch_add(&h->responses[2], 1);
    return rc;
}

/* ---- the small endpoints ------------------------------------------------------------ */

static enum MHD_Result handle_tokenize(srv_http *h, struct MHD_Connection *c, const conn *cn) {
    if (!h->tok) return send_error(h, c, 400, "the model has no tokenizer", NULL);
    cJSON *root = cJSON_ParseWithLength(cn->body ? cn->body : "", cn->len);
    const cJSON *t = root ? cJSON_GetObjectItemCaseSensitive(root, "content") : NULL;
    if (!cJSON_IsString(t) || !srv_utf8_valid(t->valuestring, strlen(t->valuestring))) {
        cJSON_Delete(root);
        return send_error(h, c, 400, "the body must be {\"content\": a UTF-8 string}", "content");
    }
    int32_t *ids;
    size_t n;
    mambac_error err;
    const mambac_status st = mambac_tokenize(h->tok, t->valuestring, strlen(t->valuestring), &ids, &n, &err);
    cJSON_Delete(root);
    if (st != MAMBAC_OK) return send_error(h, c, 400, err.msg, "content");
    cJSON *out = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(out, "tokens");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
    mambac_free(ids);
    return send_json(h, c, 200, json_text(out));
}

static enum MHD_Result handle_detokenize(srv_http *h, struct MHD_Connection *c, const conn *cn) {
    if (!h->tok) return send_error(h, c, 400, "the model has no tokenizer", NULL);
    cJSON *root = cJSON_ParseWithLength(cn->body ? cn->body : "", cn->len);
    const cJSON *t = root ? cJSON_GetObjectItemCaseSensitive(root, "tokens") : NULL;
    const int n = cJSON_IsArray(t) ? cJSON_GetArraySize(t) : -1;
    int32_t *ids = n >= 0 ? malloc((size_t)(n ? n : 1) * sizeof *ids) : NULL;
    int k = 0;
    const cJSON *e;
    if (ids) cJSON_ArrayForEach(e, t) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= mambac_tokenizer_n_vocab(h->tok) ||
                e->valuedouble != (double)(int32_t)e->valuedouble)
                break;
            ids[k++] = (int32_t)e->valuedouble;
        }
    cJSON_Delete(root);
    if (!ids || k != n) {
        free(ids);
        return send_error(h, c, 400, "the body must be {\"tokens\": [ids of the vocabulary]}", "tokens");
    }
    char *text;
    size_t len;
    mambac_error err;
    const mambac_status st = mambac_detokenize(h->tok, ids, (size_t)n, &text, &len, &err);
    free(ids);
    if (st != MAMBAC_OK) return send_error(h, c, 400, err.msg, "tokens");
    size_t sl;
    char *clean = srv_utf8_sanitize(text, len, &sl);
    mambac_free(text);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "content", clean ? clean : "");
    free(clean);
    return send_json(h, c, 200, json_text(out));
}

static enum MHD_Result handle_models(srv_http *h, struct MHD_Connection *c) {
    cJSON *out = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(out, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "object", "list");
    cJSON_AddStringToObject(m, "id", model_name(h));
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "mambac");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddStringToObject(meta, "arch", mambac_arch_name(h->info->arch));
    cJSON_AddNumberToObject(meta, "n_params", (double)h->info->n_params);
    cJSON_AddNumberToObject(meta, "n_vocab", h->info->vocab_size);
    cJSON_AddNumberToObject(meta, "state_bytes", (double)mambac_state_size_bytes(h->model));
    cJSON_AddStringToObject(meta, "backend", mambac_model_backend(h->model));
    cJSON_AddItemToArray(data, m);
    return send_json(h, c, 200, json_text(out));
}

/* Prometheus text format, appended at *p within *left bytes (what does not fit is cut). */
static void advance(char **p, size_t *left, int n) {
    const size_t k = n < 0 ? 0 : (size_t)n < *left ? (size_t)n : *left ? *left - 1 : 0;
    *p += k, *left -= k;
}

static void metric(char **p, size_t *left, const char *type, const char *name, const char *help, uint64_t v) {
    advance(p, left, snprintf(*p, *left, "# HELP mambac_%s %s\n# TYPE mambac_%s %s\nmambac_%s %llu\n", name, help, name,
                              type, name, (unsigned long long)v));
}

static void hist_text(char **p, size_t *left, const char *name, const char *help, const srv_histogram *hg) {
    advance(p, left, snprintf(*p, *left, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name));
    uint64_t cum = 0;
    for (int b = 0; b <= SRV_HIST_BUCKETS; b++) {
        cum += hg->count[b];
        if (b < SRV_HIST_BUCKETS)
            advance(p, left, snprintf(*p, *left, "%s_bucket{le=\"%g\"} %llu\n", name, hg->le[b], (unsigned long long)cum));
        else
            advance(p, left, snprintf(*p, *left, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum));
    }
    advance(p, left, snprintf(*p, *left, "%s_sum %g\n%s_count %llu\n", name, hg->sum, name, (unsigned long long)hg->n));
}

static enum MHD_Result handle_metrics(srv_http *h, struct MHD_Connection *c) {
    srv_sched_stats s;
    srv_sched_get_stats(h->sched, &s);
    const size_t cap = 16384;
    char *buf = malloc(cap), *p = buf;
    size_t left = cap;
    if (!buf) return send_error(h, c, 500, "out of memory", NULL);
#define COUNTER(name, help, v) metric(&p, &left, "counter", name, help, (uint64_t)(v))
#define GAUGE(name, help, v) metric(&p, &left, "gauge", name, help, (uint64_t)(v))
    COUNTER("requests_done_total", "generation requests finished", s.jobs_done);
    COUNTER("requests_failed_total", "generation requests that failed", s.jobs_failed);
    COUNTER("requests_cancelled_total", "generation requests whose client went away", s.jobs_cancelled);
    COUNTER("requests_rejected_total", "generation requests refused with 503 (queue full)", s.jobs_rejected);
    COUNTER("prompt_tokens_total", "prompt tokens of started requests", s.prompt_tokens);
    COUNTER("prompt_tokens_cached_total", "prompt tokens taken from the state cache", s.cached_tokens);
    COUNTER("generated_tokens_total", "tokens generated", s.generated_tokens);
    COUNTER("steps_total", "batched evaluation steps", s.steps);
    COUNTER("cache_hits_total", "prompts that started from a cached state", s.cache_hits);
    COUNTER("cache_misses_total", "prompts that found no cached prefix", s.cache_misses);
    COUNTER("cache_evictions_total", "cached states evicted", s.cache_evictions);
    for (int k = 2; k <= 5; k++) {
        advance(&p, &left, snprintf(p, left, "mambac_http_responses_total{class=\"%dxx\"} %llu\n", k,
                                    (unsigned long long)atomic_load(&h->responses[k])));
    }
    GAUGE("requests_running", "sequences in the running batch", s.running > 0 ? s.running : 0);
    GAUGE("requests_queued", "requests waiting for a slot", s.queued > 0 ? s.queued : 0);
    GAUGE("slots", "the --parallel bound", s.parallel);
    GAUGE("cache_entries", "states in the cache", s.cache_entries);
    GAUGE("cache_bytes", "bytes the cache holds", s.cache_bytes);
    hist_text(&p, &left, "mambac_time_to_first_token_seconds", "from submission to the first token", &s.ttft);
    hist_text(&p, &left, "mambac_request_seconds", "from submission to the end", &s.latency);
    hist_text(&p, &left, "mambac_batch_sequences", "sequences evaluated together a step", &s.batch);
#undef COUNTER
#undef GAUGE
    return send_body(h, c, 200, "text/plain; version=0.0.4", buf);
}

/* ---- the handler ----------------------------------------------------------------------- */

/* Constant time in the key's contents (the lengths are not secret). */
static int key_ok(const srv_http *h, struct MHD_Connection *c) {
    if (!h->cfg.api_key) return 1;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a || strncmp(a, "Bearer ", 7) != 0) return 0;
    a += 7;
    const size_t n = strlen(h->cfg.api_key), m = strlen(a);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(h->cfg.api_key[i] ^ (i < m ? a[i] : 0));
    return diff == 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    srv_http *h = cls;
    (void)version;
    conn *cn = *con_cls;
    if (!cn) { /* the headers: refuse a declared body over the limit before reading it */
        if (!(cn = calloc(1, sizeof *cn))) return MHD_NO;
        *con_cls = cn;
        atomic_fetch_add(&h->in_flight, 1);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->cfg.max_body) { /* answered at once; the body is never read */
            char msg[96];
            snprintf(msg, sizeof msg, "the body is larger than the server's limit of %zu bytes", h->cfg.max_body);
            return send_error(h, c, 413, msg, NULL);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cn->too_big && cn->len + *upload_size > h->cfg.max_body) cn->too_big = 1;
        if (!cn->too_big) {
            if (cn->len + *upload_size + 1 > cn->cap) {
                size_t cap = cn->cap ? cn->cap : 4096;
                while (cap < cn->len + *upload_size + 1) cap *= 2;
                char *b = realloc(cn->body, cap);
                if (!b) return MHD_NO;
                cn->body = b, cn->cap = cap;
            }
            memcpy(cn->body + cn->len, upload, *upload_size);
            cn->len += *upload_size;
            cn->body[cn->len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cn->too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "the body is larger than the server's limit of %zu bytes", h->cfg.max_body);
        return send_error(h, c, 413, msg, NULL);
    }
    const int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (get && strcmp(url, "/") == 0) return send_body(h, c, 200, "text/html; charset=utf-8", strdup(srv_webui_html));
    if (get && strcmp(url, "/health") == 0) {
        const int d = atomic_load(&h->draining);
        return send_json(h, c, d ? 503 : 200, strdup(d ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}"));
    }
    if (!key_ok(h, c)) return send_error(h, c, 401, "a valid API key is needed (Authorization: Bearer KEY)", NULL);
    if (atomic_load(&h->draining)) return send_error(h, c, 503, "the server is shutting down", NULL);
    const char *u = strncmp(url, "/v1/", 4) == 0 ? url + 3 : url; /* /v1/x and /x alike */
    if (strcmp(u, "/completions") == 0 || strcmp(u, "/chat/completions") == 0) {
        if (!post) return send_error(h, c, 405, "use POST", NULL);
        return handle_generate(h, c, u[1] == 'c' && u[2] == 'h' ? SRV_CHAT : SRV_COMPLETION, cn);
    }
    if (strcmp(u, "/models") == 0) return get ? handle_models(h, c) : send_error(h, c, 405, "use GET", NULL);
    if (strcmp(u, "/metrics") == 0) return get ? handle_metrics(h, c) : send_error(h, c, 405, "use GET", NULL);
    if (strcmp(u, "/tokenize") == 0) return post ? handle_tokenize(h, c, cn) : send_error(h, c, 405, "use POST", NULL);
    if (strcmp(u, "/detokenize") == 0) return post ? handle_detokenize(h, c, cn) : send_error(h, c, 405, "use POST", NULL);
    return send_error(h, c, 404, "no such endpoint", NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    srv_http *h = cls;
    (void)c;
    conn *cn = *con_cls;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) atomic_fetch_add(&h->responses[0], 1);
    if (!cn) return;
    free(cn->body);
    free(cn);
    *con_cls = NULL;
    atomic_fetch_sub(&h->in_flight, 1);
}

srv_http *srv_http_start(const srv_config *cfg, const mambac_model *model, mambac_tokenizer *tok, srv_sched *sched,
                         char *msg, size_t msglen) {
    srv_http *h = calloc(1, sizeof *h);
    if (!h) return snprintf(msg, msglen, "out of memory"), NULL;
    h->cfg = *cfg, h->model = model, h->info = mambac_model_get_info(model), h->tok = tok, h->sched = sched;
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)cfg->port)};
    const char *host = strcmp(cfg->host, "localhost") == 0 ? "127.0.0.1" : cfg->host;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    const struct sockaddr *sa;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        sa = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        sa = (const struct sockaddr *)&a6, flags |= MHD_USE_IPv6;
    } else {
        free(h);
        return snprintf(msg, msglen, "--host '%s': not an IPv4 or IPv6 address", cfg->host), NULL;
    }
    h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
    if (!h->d) {
        free(h);
        return snprintf(msg, msglen, "cannot listen on %s:%d (in use, or not allowed)", cfg->host, cfg->port), NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->port;
    return h;
}

int srv_http_port(const srv_http *h) { return h->port; }

void srv_http_quiesce(srv_http *h) {
    atomic_store(&h->draining, 1);
    const MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET) close(s);
}

int srv_http_in_flight(srv_http *h) { return atomic_load(&h->in_flight); }

void srv_http_stop(srv_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
