/* cmd_generate.c — `mambac generate`: prefill the prompt (text through the tokenizer,
 * or ids), then decode one token at a time with the recurrent step and stream the text
 * to stdout (or, with --print-ids, the new ids on one line). Stops after -n tokens, at
 * the model's end-of-sequence token (unless --ignore-eos), or when a --stop string
 * appears (not printed). Padded vocabulary ids and ids the tokenizer lacks are never
 * sampled. Escapes (\n, \t, \xHH, ...) in -p and --stop are processed unless
 * --no-escape, as llama-cli does. Without --seed a sampled run takes a random seed and
 * prints it on stderr. Timing goes to stderr at the end.
 *
 * -i / -cnv: a conversation on one state (a Mamba model never re-reads its history):
 * after each answer a line is read from stdin and fed — as --in-prefix LINE --in-suffix
 * (-i), or as a ChatML user turn followed by the assistant's header (-cnv; -p is then the
 * system message, and an answer ends at "<|im_end|>") — until end of input. An answer
 * ends after -n tokens, at the end-of-sequence token, at a --stop string, or where the
 * text shows a -r / --reverse-prompt string (printed: the user's turn begins). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_STOPS 16
#define TURNS_PLAIN 1
#define TURNS_CHATML 2
#define CNV_TEMPLATE "chatml" /* -cnv's turns (the library's template) */

typedef struct gen_opts {
    const char *model, *tokenizer, *ids, *prompt, *prompt_file, *state_in, *state_out, *threads;
    const char *stops[MAX_STOPS], *reverse[MAX_STOPS];
    size_t n_stops, n_reverse;
    int turns; /* 0, or TURNS_PLAIN (-i) / TURNS_CHATML (-cnv) */
    const char *in_prefix, *in_suffix;
    cli_sampling smp; /* -n, the sampler's options, --seed */
    int print_ids, ignore_eos, no_escape, echo;
} gen_opts;

static int parse(cli_args *a, gen_opts *o) {
    cli_sampling_init(&o->smp, 128);
    for (; a->i < a->argc; a->i++) {
        const char *stop = NULL;
        int bad = 0, matched;
        if (cli_flag(a, "--print-ids")) {
            o->print_ids = 1;
        } else if (cli_flag(a, "--ignore-eos")) {
            o->ignore_eos = 1;
        } else if (cli_flag(a, "--echo")) {
            o->echo = 1;
        } else if (cli_flag(a, "--no-escape")) {
            o->no_escape = 1;
        } else if (cli_flag(a, "-e") || cli_flag(a, "--escape")) {
            o->no_escape = 0;
        } else if (cli_flag(a, "-i") || cli_flag(a, "--interactive")) {
            o->turns = TURNS_PLAIN;
        } else if (cli_flag(a, "-cnv") || cli_flag(a, "--conversation")) {
            o->turns = TURNS_CHATML;
        } else if (cli_opt(a, "--in-prefix", NULL, &o->in_prefix, &bad) || cli_opt(a, "--in-suffix", NULL, &o->in_suffix, &bad)) {
            if (bad) return CLI_USAGE;
        } else if (cli_opt(a, "-r", "--reverse-prompt", &stop, &bad)) {
            if (bad) return CLI_USAGE;
            if (o->n_reverse == MAX_STOPS) return cli_usage_error(a->cmd, "at most %d -r strings", MAX_STOPS);
            if (!*stop || strlen(stop) > 256) return cli_usage_error(a->cmd, "-r needs a string of 1 to 256 bytes");
            o->reverse[o->n_reverse++] = stop;
        } else if (cli_opt(a, "-m", "--model", &o->model, &bad) || cli_opt(a, "--prompt-ids", NULL, &o->ids, &bad) ||
                   cli_opt(a, "-p", "--prompt", &o->prompt, &bad) || cli_opt(a, "-f", "--file", &o->prompt_file, &bad) ||
                   cli_opt(a, "--tokenizer", NULL, &o->tokenizer, &bad) || cli_opt(a, "--state-in", NULL, &o->state_in, &bad) ||
                   cli_opt(a, "--state-out", NULL, &o->state_out, &bad) || cli_opt(a, "-t", "--threads", &o->threads, &bad)) {
            if (bad) return CLI_USAGE;
        } else if (cli_opt(a, "--stop", NULL, &stop, &bad)) {
            if (bad) return CLI_USAGE;
            if (o->n_stops == MAX_STOPS) return cli_usage_error(a->cmd, "at most %d --stop strings", MAX_STOPS);
            if (!*stop) return cli_usage_error(a->cmd, "--stop needs a non-empty string");
            o->stops[o->n_stops++] = stop;
        } else {
            int rc = cli_sampling_opt(a, &o->smp, &bad, &matched);
            if (rc != CLI_OK) return rc;
            if (!matched) return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    const int n_prompts = !!o->ids + !!o->prompt + !!o->prompt_file;
    if (o->turns ? n_prompts > 1 : n_prompts != 1)
        return cli_usage_error(a->cmd, o->turns ? "give at most one of -p TEXT, -f FILE or --prompt-ids IDS"
                                                : "give exactly one of -p TEXT, -f FILE or --prompt-ids IDS");
    if (o->turns && (o->print_ids || (o->prompt && strcmp(o->prompt, "-") == 0) || (o->prompt_file && strcmp(o->prompt_file, "-") == 0)))
        return cli_usage_error(a->cmd, "-i / -cnv read the conversation from stdin: not with --print-ids or a prompt from stdin");
    if (o->turns == TURNS_CHATML && o->ids) return cli_usage_error(a->cmd, "-cnv: -p or -f is the system message, not ids");
    if (!o->turns && (o->n_reverse || o->in_prefix || o->in_suffix))
        return cli_usage_error(a->cmd, "-r, --in-prefix and --in-suffix need -i (or -cnv)");
    if (o->n_stops && o->print_ids) return cli_usage_error(a->cmd, "--stop works on text: not with --print-ids");
    /* escapes in the stop strings, processed in place (argv is ours to change); -p's are
     * processed on its copy in prompt_ids, where its length is kept */
    for (size_t i = 0; !o->no_escape && i < o->n_stops; i++)
        if (cli_unescape((char *)o->stops[i]) == 0 || !*o->stops[i])
            return cli_usage_error(a->cmd, "--stop needs a non-empty string");
    for (size_t i = 0; !o->no_escape && i < o->n_reverse; i++)
        if (cli_unescape((char *)o->reverse[i]) == 0 || !*o->reverse[i])
            return cli_usage_error(a->cmd, "-r needs a non-empty string");
    if (!o->no_escape && o->in_prefix) cli_unescape((char *)o->in_prefix);
    if (!o->no_escape && o->in_suffix) cli_unescape((char *)o->in_suffix);
    if (o->state_out && !cli_folder_writable(o->state_out)) /* found out now, not after generating */
        return cli_usage_error(a->cmd, "--state-out %s: its folder does not exist or is not writable", o->state_out);
    return cli_sampling_check(a, &o->smp);
}

/* The prompt as ids: parsed, or the text (from -p, -f or stdin) through the tokenizer;
 * with --echo the prompt's text is printed first. With -i / -cnv the prompt may be absent
 * (no ids); with -cnv it is the system message of a ChatML conversation. */
static int prompt_ids(const gen_opts *o, mambac_tokenizer *tok, int32_t **ids, size_t *n) {
    char msg[160];
    *ids = NULL, *n = 0;
    if (o->ids) return cli_parse_ids(o->ids, ids, n, msg, sizeof msg) ? CLI_OK : cli_error("%s", msg);
    if (o->turns && !o->prompt && !o->prompt_file) return CLI_OK;
    char *text;
    size_t len;
    if (o->prompt && strcmp(o->prompt, "-") != 0) {
        text = strdup(o->prompt);
        len = text && !o->no_escape ? cli_unescape(text) : strlen(o->prompt);
    } else if (cli_read_input(o->prompt ? "-" : o->prompt_file, &text, &len) != CLI_OK) {
        return CLI_ERR;
    }
    mambac_error err;
    if (text && o->turns == TURNS_CHATML) { /* the system turn */
        const mambac_chat_message m = {"system", text};
        char *t = NULL;
        mambac_chat_apply(CNV_TEMPLATE, &m, 1, 0, &t, &len, &err);
        free(text);
        text = t;
    }
    mambac_status st = text ? mambac_tokenize(tok, text, len, ids, n, &err) : MAMBAC_ERR_NOMEM;
    if (st == MAMBAC_OK && o->echo && !o->print_ids) fwrite(text, 1, len, stdout);
    free(text);
    if (st != MAMBAC_OK) return cli_error("%s", text ? err.msg : "out of memory");
    if (*n == 0) {
        mambac_free(*ids);
        *ids = NULL;
        return o->turns ? CLI_OK : cli_error("empty prompt: the text gave no tokens");
    }
    return CLI_OK;
}

/* Streams each piece: the text, or with --print-ids the ids on one line. With -r, the
 * answer's last bytes are kept to find a reverse prompt in them (then the answer stops). */
#define TAIL 512
typedef struct printer {
    int print_ids;
    long long n;
    const char *const *reverse;
    size_t n_reverse;
    char tail[TAIL];
    size_t tail_len;
} printer;

static int print_piece(void *user, int32_t token, const char *text, size_t len) {
    printer *pr = user;
    if (pr->print_ids) {
        if (token >= 0) printf("%s%d", pr->n++ ? "," : "", token);
    } else {
        fwrite(text, 1, len, stdout);
    }
    fflush(stdout);
    if (!pr->n_reverse || !len) return 0;
    const size_t keep = len >= TAIL ? TAIL : len, old = pr->tail_len + keep > TAIL ? TAIL - keep : pr->tail_len;
    memmove(pr->tail, pr->tail + pr->tail_len - old, old);
    memcpy(pr->tail + old, text + len - keep, keep);
    pr->tail_len = old + keep;
    for (size_t i = 0; i < pr->n_reverse; i++) { /* an occurrence that ends in this piece */
        const size_t rl = strlen(pr->reverse[i]);
        const size_t from = pr->tail_len > keep + rl - 1 ? pr->tail_len - (keep + rl - 1) : 0;
        for (size_t j = from; j + rl <= pr->tail_len; j++)
            if (memcmp(pr->tail + j, pr->reverse[i], rl) == 0) return 1;
    }
    return 0;
}

/* A long prompt's progress, on a terminal only (a log keeps its lines): tokens, rate, and
 * the time left at that rate. user: the double holding when the prompt began (cli_now),
 * reset by each answer. */
static void show_progress(void *user, int64_t done, int64_t total) {
    double *t0 = user;
    const double el = cli_now() - *t0, rate = el > 0 ? done / el : 0;
    fprintf(stderr, "\rprompt: %lld / %lld tokens (%.0f%%), %.0f tok/s, %.0f s left   %s", (long long)done, (long long)total,
            100.0 * done / total, rate, rate > 0 ? (total - done) / rate : 0.0, done == total ? "\n" : "");
    fflush(stderr);
}

typedef struct totals {
    int64_t prompt, generated, decoded;
    double prefill_s, decode_s;
} totals;

static mambac_status answer(cli_session *s, mambac_tokenizer *tok, const int32_t *ids, size_t n,
                            const mambac_generate_params *gp, printer *pr, totals *tot, mambac_generate_result *res,
                            mambac_error *err) {
    pr->tail_len = 0;
    if (gp->progress_user) *(double *)gp->progress_user = cli_now();
    mambac_status st = mambac_generate(s->ctx, s->state, tok, ids, n, gp, print_piece, pr, res, err);
    tot->prompt += (int64_t)n, tot->generated += res->n_generated, tot->decoded += res->n_decoded;
    tot->prefill_s += res->prefill_seconds, tot->decode_s += res->decode_seconds;
    return st;
}

/* a, b and c joined in a new string (c holds cl bytes). */
static char *join3(const char *a, const char *b, const char *c, size_t cl, size_t *out) {
    const size_t al = strlen(a), bl = strlen(b);
    char *t = malloc(al + bl + cl + 1);
    if (!t) return NULL;
    memcpy(t, a, al), memcpy(t + al, b, bl), memcpy(t + al + bl, c, cl), t[al + bl + cl] = 0;
    *out = al + bl + cl;
    return t;
}

/* A user's line (NUL-terminated) as the next turn's text: --in-prefix LINE --in-suffix, or
 * (-cnv) the template's user turn and assistant header, after what closes the last answer:
 * its separator, and its end of turn too when the answer did not end there. */
static char *turn_text(const gen_opts *o, char *line, size_t len, int after_answer, int answer_open, size_t *out) {
    if (o->turns != TURNS_CHATML) {
        const char *pre = o->in_prefix ? o->in_prefix : "", *suf = o->in_suffix ? o->in_suffix : "";
        const size_t pl = strlen(pre), sl = strlen(suf);
        char *t = malloc(pl + len + sl + 1);
        if (t) memcpy(t, pre, pl), memcpy(t + pl, line, len), memcpy(t + pl + len, suf, sl + 1), *out = pl + len + sl;
        return t;
    }
    if (len && line[len - 1] == '\n') line[len - 1] = 0;
    const mambac_chat_message m = {"user", line};
    char *turn = NULL;
    size_t tl;
    mambac_error err;
    if (mambac_chat_apply(CNV_TEMPLATE, &m, 1, 1, &turn, &tl, &err) != MAMBAC_OK) return NULL;
    char *t = join3(answer_open ? mambac_chat_end_of_turn(CNV_TEMPLATE) : "",
                    after_answer ? mambac_chat_after_turn(CNV_TEMPLATE) : "", turn, tl, out);
    mambac_free(turn);
    return t;
}

/* -i / -cnv: the prompt's answer (if a prompt), then a turn per line of stdin. */
static int converse(const gen_opts *o, cli_session *s, mambac_tokenizer *tok, const int32_t *first, size_t n_first,
                    mambac_generate_params *gp, printer *pr, totals *tot) {
    mambac_generate_result res;
    mambac_error err;
    gp->feed_last = 1; /* the state holds the whole conversation */
    int after_answer = 0, answer_open = 0;
    if (n_first) {
        mambac_generate_params sys = *gp;
        if (o->turns == TURNS_CHATML) sys.max_tokens = 0; /* the system message: read, not answered */
        if (answer(s, tok, first, n_first, &sys, pr, tot, &res, &err) != MAMBAC_OK) return cli_error("%s", err.msg);
        after_answer = o->turns != TURNS_CHATML;
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = CLI_OK;
    for (;;) {
        if (isatty(STDIN_FILENO)) fputs("\n> ", stderr), fflush(stderr);
        const ssize_t got = getline(&line, &cap, stdin);
        if (got < 0) break;
        size_t len;
        char *text = turn_text(o, line, (size_t)got, after_answer, answer_open, &len);
        int32_t *ids = NULL;
        size_t n = 0;
        if (!text || mambac_tokenize(tok, text, len, &ids, &n, &err) != MAMBAC_OK) {
            rc = cli_error("%s", text ? err.msg : "out of memory");
            free(text);
            break;
        }
        free(text);
        mambac_status st = n ? answer(s, tok, ids, n, gp, pr, tot, &res, &err) : MAMBAC_OK;
        mambac_free(ids);
        if (st != MAMBAC_OK) {
            rc = cli_error("%s", err.msg);
            break;
        }
        if (n) after_answer = 1, answer_open = o->turns == TURNS_CHATML && res.finish != MAMBAC_FINISH_STOP;
        if (o->turns == TURNS_CHATML) fputc('\n', stdout), fflush(stdout);
    }
    free(line);
    return rc;
}

int cmd_generate(cli_args *a) {
    gen_opts o = {0};
    int rc = parse(a, &o);
    if (rc != CLI_OK) return rc;
    int32_t threads = 0;
    if (!cli_parse_threads(o.threads, &threads)) return cli_usage_error(a->cmd, "-t must be in [1, 1024]");
    cli_session s;
    if (cli_session_open(&s, o.model, 512, threads, o.state_in) != CLI_OK) return CLI_ERR;
    mambac_tokenizer *tok = NULL;
    int need_tok = !o.print_ids || !o.ids;
    if (need_tok && cli_load_tokenizer(o.tokenizer, s.info, &tok) != CLI_OK) {
        cli_session_close(&s);
        return CLI_ERR;
    }
    int32_t *ids = NULL;
    size_t T = 0;
    if (prompt_ids(&o, tok, &ids, &T) != CLI_OK) {
        mambac_tokenizer_free(tok);
        cli_session_close(&s);
        return CLI_ERR;
    }
    mambac_generate_params gp = mambac_generate_default_params();
    gp.sampling = o.smp.sp;
    gp.max_tokens = o.smp.n;
    gp.ignore_eos = o.ignore_eos;
    const char *stops[2 * MAX_STOPS + 1];
    size_t n_stops = 0;
    for (size_t i = 0; i < o.n_stops; i++) stops[n_stops++] = o.stops[i];
    if (o.turns == TURNS_CHATML) stops[n_stops++] = mambac_chat_end_of_turn(CNV_TEMPLATE);
    gp.stop = stops, gp.n_stop = n_stops;
    cli_sampling_seed(&o.smp, &gp.sampling);
    gp.feed_last = o.state_out != NULL; /* the saved state then holds every token */
    double prompt_t0 = 0;
    if (isatty(STDERR_FILENO)) gp.on_prompt_progress = show_progress, gp.progress_user = &prompt_t0;
    printer pr = {.print_ids = o.print_ids, .reverse = o.reverse, .n_reverse = o.n_reverse};
    totals tot = {0};
    mambac_generate_result res = {0};
    mambac_error err;
    if (o.turns) {
        rc = converse(&o, &s, tok, ids, T, &gp, &pr, &tot);
    } else {
        mambac_status st = answer(&s, tok, ids, T, &gp, &pr, &tot, &res, &err);
        rc = st == MAMBAC_OK ? CLI_OK : cli_error("%s", err.msg);
    }
    if (rc == CLI_OK) {
        if (o.print_ids) printf("\n");
        fflush(stdout);
        if (!o.turns && res.n_generated == 0 && res.finish == MAMBAC_FINISH_EOS)
            fprintf(stderr, "mambac: the model ended the text at once (its end-of-sequence token; --ignore-eos goes on)\n");
        fprintf(stderr, "%sprompt: %lld tokens, %.1f tok/s | generated: %lld tokens, %.1f tok/s\n", o.print_ids ? "" : "\n",
                (long long)tot.prompt, tot.prefill_s > 0 ? tot.prompt / tot.prefill_s : 0.0, (long long)tot.generated,
                tot.decode_s > 0 ? tot.decoded / tot.decode_s : 0.0);
        rc = cli_session_save(&s, o.state_out);
    }
    mambac_tokenizer_free(tok);
    mambac_free(ids);
    cli_session_close(&s);
    return rc;
}
