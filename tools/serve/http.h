/* http.h — the server's HTTP side on libmicrohttpd (a thread per connection, so a
 * handler may wait for its job): bodies read within a size limit, the API key checked,
 * requests routed to the endpoints (OpenAI completions and chat, models, tokenize,
 * detokenize, health, metrics, the web page), jobs handed to the scheduler and their
 * tokens streamed back as server-sent events. */
#ifndef MAMBAC_SERVE_HTTP_H
#define MAMBAC_SERVE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "mambac.h"
#include "serve/api.h"
#include "serve/scheduler.h"

typedef struct srv_config {
    const char *host;
    int port;                /* 0: any free port (printed) */
    const char *api_key;     /* NULL: no key needed */
    size_t max_body;         /* bytes a request body may have */
    int64_t max_prompt;      /* prompt tokens a request may have */
    srv_limits lim;
    double timeout_s;        /* a request's time at most (its job is cancelled past it) */
    int32_t max_connections;
    const char *chat_template;
    const char *model_name;  /* what /v1/models and responses call the model */
} srv_config;

typedef struct srv_http srv_http;

/* Listens on host:port; NULL and a message when it cannot. */
srv_http *srv_http_start(const srv_config *cfg, const mambac_model *model, mambac_tokenizer *tok, srv_sched *sched,
                         char *msg, size_t msglen);
/* The port listened on. */
int srv_http_port(const srv_http *h);
/* Stops accepting connections; requests still arriving on open ones get 503. */
void srv_http_quiesce(srv_http *h);
/* Requests being answered. */
int srv_http_in_flight(srv_http *h);
void srv_http_stop(srv_http *h);

/* The chat page served at / (webui.c). */
extern const char srv_webui_html[];

#endif
