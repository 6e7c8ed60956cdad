/* cmd_serve.c — `mambac serve`: loads the model, starts the scheduler and the HTTP
 * side, and waits for SIGTERM / SIGINT; then stops taking requests, lets the accepted
 * ones finish (within --timeout), and exits. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "serve/http.h"
#include "serve/scheduler.h"

static const char *base_name(const char *path) {
    const char *p = path + strlen(path);
    while (p > path && p[-1] == '/') p--; /* a folder's trailing slashes */
    const char *e = p;
    while (p > path && p[-1] != '/') p--;
    static char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(e - p), p);
    return name[0] ? name : "mambac";
}

int cmd_serve(cli_args *a) {
    const char *model = NULL, *threads_s = NULL, *host = "127.0.0.1", *port_s = "8080", *parallel_s = "8", *queue_s = "64";
    const char *cache_s = "256", *key = getenv("MAMBAC_API_KEY"), *tmpl_s = NULL, *tokenizer = NULL, *name = NULL;
    const char *state_dir = NULL;
    const char *max_tokens_s = "4096", *max_prompt_s = "65536", *max_body_s = "8", *timeout_s = "600", *piece_s = "512";
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "-t", "--threads", &threads_s, &bad) ||
            cli_opt(a, "--host", NULL, &host, &bad) || cli_opt(a, "--port", NULL, &port_s, &bad) ||
            cli_opt(a, "--parallel", "-np", &parallel_s, &bad) || cli_opt(a, "--queue", NULL, &queue_s, &bad) ||
            cli_opt(a, "--ctx-cache-mb", NULL, &cache_s, &bad) || cli_opt(a, "--api-key", NULL, &key, &bad) ||
            cli_opt(a, "--chat-template", NULL, &tmpl_s, &bad) || cli_opt(a, "--tokenizer", NULL, &tokenizer, &bad) ||
            cli_opt(a, "--model-name", NULL, &name, &bad) || cli_opt(a, "--max-tokens", NULL, &max_tokens_s, &bad) ||
            cli_opt(a, "--max-prompt", NULL, &max_prompt_s, &bad) || cli_opt(a, "--max-body-mb", NULL, &max_body_s, &bad) ||
            cli_opt(a, "--timeout", NULL, &timeout_s, &bad) || cli_opt(a, "--prefill-piece", NULL, &piece_s, &bad) ||
            cli_opt(a, "--state-dir", NULL, &state_dir, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    long long port, parallel, queue, cache_mb, max_tokens, max_prompt, max_body, timeout, piece;
    if (!cli_parse_int(port_s, 0, 65535, &port)) return cli_usage_error(a->cmd, "--port must be in [0, 65535]");
    if (!cli_parse_int(parallel_s, 1, 1024, &parallel)) return cli_usage_error(a->cmd, "--parallel must be in [1, 1024]");
    if (!cli_parse_int(queue_s, 1, 1 << 16, &queue)) return cli_usage_error(a->cmd, "--queue must be in [1, 65536]");
    if (!cli_parse_int(cache_s, 0, 1 << 20, &cache_mb)) return cli_usage_error(a->cmd, "--ctx-cache-mb must be in [0, 2^20]");
    if (!cli_parse_int(max_tokens_s, 1, 1 << 24, &max_tokens)) return cli_usage_error(a->cmd, "--max-tokens must be in [1, 2^24]");
    if (!cli_parse_int(max_prompt_s, 1, 1 << 26, &max_prompt)) return cli_usage_error(a->cmd, "--max-prompt must be in [1, 2^26]");
    if (!cli_parse_int(max_body_s, 1, 1024, &max_body)) return cli_usage_error(a->cmd, "--max-body-mb must be in [1, 1024]");
    if (!cli_parse_int(timeout_s, 1, 86400, &timeout)) return cli_usage_error(a->cmd, "--timeout must be in [1, 86400] seconds");
    if (!cli_parse_int(piece_s, 1, 1 << 20, &piece)) return cli_usage_error(a->cmd, "--prefill-piece must be in [1, 2^20]");
    if (key && !*key) key = NULL;
    if (state_dir) {
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/x", state_dir);
        if (!cli_folder_writable(probe)) return cli_usage_error(a->cmd, "--state-dir '%s': not a writable folder", state_dir);
        if (!cache_mb) return cli_usage_error(a->cmd, "--state-dir needs the state cache (--ctx-cache-mb > 0)");
    }
    const char *tmpl = tmpl_s ? mambac_chat_template_name(tmpl_s) : NULL;
    if (tmpl_s && !tmpl) return cli_usage_error(a->cmd, "--chat-template '%s': not one of chatml, zephyr, plain", tmpl_s);
    int32_t threads = 0;
    if (!cli_parse_threads(threads_s, &threads)) return cli_usage_error(a->cmd, "-t must be in [1, 1024]");

    /* every thread started from here on leaves these signals to sigwait below */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT), sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client that went away is a failed write, not the end */

    cli_session s;
    if (cli_session_open(&s, model, (int32_t)(piece < 4096 ? 4096 : piece), threads, NULL) != CLI_OK) return CLI_ERR;
    mambac_tokenizer *tok = NULL;
    if (cli_load_tokenizer(tokenizer, s.info, &tok) != CLI_OK) {
        cli_session_close(&s);
        return CLI_ERR;
    }
    if (!tmpl) tmpl = cli_model_chat_template(s.info);
    mambac_error err = {0};
    const srv_sched_params sp = {.parallel = (int32_t)parallel, .queue = (int32_t)queue,
                                 .cache_bytes = (size_t)cache_mb << 20, .prefill_piece = (int32_t)piece,
                                 .state_dir = state_dir};
    srv_sched *sched = srv_sched_new(s.model, s.ctx, tok, &sp, &err);
    if (!sched) {
        mambac_tokenizer_free(tok);
        cli_session_close(&s);
        return cli_error("%s", err.msg);
    }
    const srv_config cfg = {.host = host, .port = (int)port, .api_key = key, .max_body = (size_t)max_body << 20,
                            .max_prompt = max_prompt, .lim = {.max_tokens = max_tokens, .max_prompt_ids = max_prompt},
                            .timeout_s = (double)timeout, .max_connections = (int32_t)(parallel + queue + 64),
                            .chat_template = tmpl, .model_name = name ? name : base_name(s.info->path)};
    char msg[256];
    srv_http *http = srv_http_start(&cfg, s.model, tok, sched, msg, sizeof msg);
    if (!http) {
        srv_sched_drain_free(sched);
        mambac_tokenizer_free(tok);
        cli_session_close(&s);
        return cli_error("%s", msg);
    }
    fprintf(stderr, "mambac serve: %s (%s, %s, %d threads), %lld slots, chat template %s, state cache %lld MB\n",
            cfg.model_name, mambac_arch_name(s.info->arch), mambac_model_backend(s.model), mambac_context_threads(s.ctx),
            parallel, tmpl, cache_mb);
    fprintf(stderr, "mambac serve: listening on http://%s:%d\n", host, srv_http_port(http));
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "mambac serve: %s: finishing %d request(s), then leaving\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            srv_http_in_flight(http));
    srv_http_quiesce(http);
    const double until = cli_now() + (double)timeout;
    while (srv_http_in_flight(http) > 0 && cli_now() < until) nanosleep(&(struct timespec){0, 20000000L}, NULL);
    srv_sched_drain_free(sched);
    srv_http_stop(http);
    mambac_tokenizer_free(tok);
    cli_session_close(&s);
    fprintf(stderr, "mambac serve: stopped\n");
    return CLI_OK;
}
