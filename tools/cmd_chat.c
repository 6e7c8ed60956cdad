/* cmd_chat.c — `mambac chat`: a conversation in the terminal. The whole conversation lives
 * in one recurrent state: each message is fed once, as the chat template writes it (the
 * template's text of a longer conversation extends the shorter one's), and nothing is
 * read again. Lines are edited with libedit where the build found it (history of the
 * session), else read plainly. Ctrl-C during an answer stops it and keeps the
 * conversation; at the prompt, Ctrl-D (or /quit) leaves. /reset starts over (the system
 * message again), /save FILE and /load FILE write and read the conversation's state.
 * The template: --chat-template NAME, else the one the model's tokenizer_config.json
 * chat_template is recognised as, else chatml. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef MAMBAC_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "cli.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct chat {
    cli_session s;
    mambac_tokenizer *tok;
    const char *tmpl, *system;
    mambac_generate_params gp;
    /* what the template writes between the last answer and the next message: nothing
     * (none yet, or a message came last: its text ends a turn), its separator (the answer
     * ended at its end of turn), or both (stopped by Ctrl-C or -n) */
    enum { AFTER_NOTHING, AFTER_SEPARATOR, AFTER_END } after;
} chat;

static int on_piece(void *user, int32_t token, const char *text, size_t len) {
    (void)user, (void)token;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return interrupted;
}

/* Tokenizes and feeds `text`; with `answer`, generates the reply after it. */
static int feed(chat *c, const char *text, size_t len, int answer) {
    int32_t *ids = NULL;
    size_t n = 0;
    mambac_error err;
    if (mambac_tokenize(c->tok, text, len, &ids, &n, &err) != MAMBAC_OK) return cli_error("%s", err.msg);
    mambac_generate_params gp = c->gp;
    if (!answer) gp.max_tokens = 0;
    mambac_generate_result res = {0};
    interrupted = 0;
    mambac_status st = n ? mambac_generate(c->s.ctx, c->s.state, c->tok, ids, n, &gp, on_piece, NULL, &res, &err) : MAMBAC_OK;
    mambac_free(ids);
    if (st != MAMBAC_OK) return cli_error("%s", err.msg);
    if (answer) {
        c->after = res.finish == MAMBAC_FINISH_STOP ? AFTER_SEPARATOR : AFTER_END;
        if (res.finish == MAMBAC_FINISH_CALLBACK) fputs(" [stopped]", stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    return CLI_OK;
}

/* The template's text of one message (with the assistant's header after a user's). */
static int feed_message(chat *c, const char *role, const char *content) {
    const mambac_chat_message m = {role, content};
    char *text;
    size_t len;
    mambac_error err;
    if (mambac_chat_apply(c->tmpl, &m, 1, strcmp(role, "user") == 0, &text, &len, &err) != MAMBAC_OK)
        return cli_error("%s", err.msg);
    int rc = CLI_OK;
    if (c->after != AFTER_NOTHING) { /* close the last answer as the template writes it */
        const char *end = c->after == AFTER_END ? mambac_chat_end_of_turn(c->tmpl) : "", *sep = mambac_chat_after_turn(c->tmpl);
        char *close = malloc(strlen(end) + strlen(sep) + 1);
        if (!close) rc = cli_error("out of memory");
        else strcpy(close, end), strcat(close, sep), rc = *close ? feed(c, close, strlen(close), 0) : CLI_OK;
        free(close);
    }
    c->after = AFTER_NOTHING;
    if (rc == CLI_OK) rc = feed(c, text, len, strcmp(role, "user") == 0);
    mambac_free(text);
    return rc;
}

static int start(chat *c) {
    mambac_state_reset(c->s.state);
    c->after = AFTER_NOTHING;
    return c->system ? feed_message(c, "system", c->system) : CLI_OK;
}

static char *read_line(int tty) {
#ifdef MAMBAC_HAVE_LIBEDIT
    if (tty) {
        char *l = readline("> ");
        if (l && *l) add_history(l);
        return l;
    }
#endif
    if (tty) fputs("> ", stdout), fflush(stdout);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n && line[n - 1] == '\n') line[n - 1] = 0;
    return line;
}

static const char *const commands_help =
    "/reset  start over    /save FILE  write the conversation's state    /load FILE  read one\n"
    "/quit   leave (or Ctrl-D)    Ctrl-C during an answer stops it\n";

/* A /command: 1 to leave, 0 done, -1 an error (reported, the chat goes on). */
static int command(chat *c, const char *line) {
    mambac_error err;
    if (strcmp(line, "/quit") == 0 || strcmp(line, "/exit") == 0) return 1;
    if (strcmp(line, "/help") == 0) return fputs(commands_help, stdout), 0;
    if (strcmp(line, "/reset") == 0) return start(c) == CLI_OK ? 0 : -1;
    const int save = strncmp(line, "/save ", 6) == 0, load = strncmp(line, "/load ", 6) == 0;
    if (save || load) {
        const char *path = line + 6;
        mambac_status st = save ? mambac_state_save(c->s.state, path, &err) : mambac_state_load(c->s.state, path, &err);
        if (st != MAMBAC_OK) return cli_error("%s", err.msg), -1;
        if (load) c->after = AFTER_SEPARATOR; /* a conversation saved after an answer */
        printf("%s %s (%lld tokens)\n", save ? "saved" : "loaded", path, (long long)mambac_state_n_tokens(c->s.state));
        return 0;
    }
    return cli_error("unknown command '%s' (/help lists them)", line), -1;
}

int cmd_chat(cli_args *a) {
    const char *model = NULL, *threads_s = NULL, *tmpl_s = NULL, *system = NULL, *tokenizer = NULL;
    cli_sampling smp;
    cli_sampling_init(&smp, 512);
    for (; a->i < a->argc; a->i++) {
        int bad = 0, matched;
        if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "-t", "--threads", &threads_s, &bad) ||
            cli_opt(a, "--chat-template", NULL, &tmpl_s, &bad) || cli_opt(a, "--system", NULL, &system, &bad) ||
            cli_opt(a, "--tokenizer", NULL, &tokenizer, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            int rc = cli_sampling_opt(a, &smp, &bad, &matched);
            if (rc != CLI_OK) return rc;
            if (!matched) return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (cli_sampling_check(a, &smp) != CLI_OK) return CLI_USAGE;
    const char *tmpl = tmpl_s ? mambac_chat_template_name(tmpl_s) : NULL;
    if (tmpl_s && !tmpl) return cli_usage_error(a->cmd, "--chat-template '%s': not one of chatml, zephyr, plain", tmpl_s);
    int32_t threads = 0;
    if (!cli_parse_threads(threads_s, &threads)) return cli_usage_error(a->cmd, "-t must be in [1, 1024]");
    chat c = {.system = system};
    if (cli_session_open(&c.s, model, 512, threads, NULL) != CLI_OK) return CLI_ERR;
    if (cli_load_tokenizer(tokenizer, c.s.info, &c.tok) != CLI_OK) {
        cli_session_close(&c.s);
        return CLI_ERR;
    }
    if (!tmpl) tmpl = cli_model_chat_template(c.s.info);
    c.tmpl = tmpl;
    c.gp = mambac_generate_default_params();
    c.gp.sampling = smp.sp, c.gp.max_tokens = smp.n;
    cli_sampling_seed(&smp, &c.gp.sampling);
    const char *stop = mambac_chat_end_of_turn(tmpl);
    c.gp.stop = &stop, c.gp.n_stop = 1;
    c.gp.feed_last = 1; /* the state holds every token of the conversation */
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    const int tty = isatty(STDIN_FILENO);
    if (tty) fprintf(stderr, "mambac chat (template %s). /help for commands, Ctrl-D to leave.\n", tmpl);
    int rc = start(&c);
    while (rc == CLI_OK) {
        char *line = read_line(tty);
        if (!line) break;
        int leave = 0;
        if (line[0] == '/') leave = command(&c, line) == 1;
        else if (line[0]) rc = feed_message(&c, "user", line);
        free(line);
        if (leave) break;
    }
    sigaction(SIGINT, &old, NULL);
    if (rc == CLI_OK) fprintf(stderr, "\nconversation: %lld tokens in the state\n", (long long)mambac_state_n_tokens(c.s.state));
    mambac_tokenizer_free(c.tok);
    cli_session_close(&c.s);
    return rc;
}
