/* cmd_tokenize.c — `mambac tokenize` (text → ids, comma-separated on one line, or a line
 * per token with its bytes: --show-pieces; the tokenizer given or the model's) and
 * `mambac detokenize` (ids → exactly the bytes they stand for). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* A piece's bytes, printable: C escapes for control bytes, quotes and backslashes. */
static void print_piece_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\\' || c == '\'') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

int cmd_tokenize(cli_args *a) {
    const char *tpath = NULL, *model = NULL, *text = NULL, *file = NULL;
    int pieces = 0, no_escape = 0;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_flag(a, "--show-pieces")) {
            pieces = 1;
        } else if (cli_flag(a, "--no-escape")) {
            no_escape = 1;
        } else if (cli_opt(a, "--tokenizer", NULL, &tpath, &bad) || cli_opt(a, "-m", "--model", &model, &bad) ||
                   cli_opt(a, "-p", "--prompt", &text, &bad) || cli_opt(a, "-f", "--file", &file, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (!!tpath + !!model != 1) return cli_usage_error(a->cmd, "give one of --tokenizer PATH or -m MODEL");
    if (!!text + !!file != 1) return cli_usage_error(a->cmd, "give exactly one of -p TEXT or -f FILE");
    char mpath[4096];
    if (model) { /* the model's own tokenizer, without loading its weights: a folder's tokenizer.json, a GGUF's vocabulary */
        struct stat sb;
        if (stat(model, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(mpath, sizeof mpath, "%s/tokenizer.json", model);
        else snprintf(mpath, sizeof mpath, "%s", model);
        tpath = mpath;
    }
    mambac_tokenizer *tok;
    if (cli_load_tokenizer(tpath, NULL, &tok) != CLI_OK) return CLI_ERR;
    char *buf = NULL;
    size_t len;
    if (text && strcmp(text, "-") != 0) { /* escapes processed, as generate -p (and llama-tokenize) */
        buf = strdup(text);
        if (!buf) {
            mambac_tokenizer_free(tok);
            return cli_error("out of memory");
        }
        len = no_escape ? strlen(buf) : cli_unescape(buf);
    } else if (cli_read_input(text ? "-" : file, &buf, &len) != CLI_OK) {
        mambac_tokenizer_free(tok);
        return CLI_ERR;
    }
    int32_t *ids;
    size_t n;
    mambac_error err;
    int rc = CLI_OK;
    if (mambac_tokenize(tok, buf ? buf : text, len, &ids, &n, &err) != MAMBAC_OK) {
        rc = cli_error("%s", err.msg);
    } else if (pieces) { /* one line per token: id, tab, its bytes (escaped) */
        for (size_t i = 0; i < n; i++) {
            size_t bl = 0;
            const char *b = mambac_token_bytes(tok, ids[i], &bl);
            printf("%d\t", ids[i]);
            print_piece_escaped(b ? b : "", b ? bl : 0);
            putchar('\n');
        }
        mambac_free(ids);
    } else {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
        printf("\n");
        mambac_free(ids);
    }
    free(buf);
    mambac_tokenizer_free(tok);
    return rc;
}

int cmd_detokenize(cli_args *a) {
    const char *tpath = NULL, *ids_s = NULL;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_opt(a, "--tokenizer", NULL, &tpath, &bad) || cli_opt(a, "--ids", NULL, &ids_s, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (!tpath || !ids_s) return cli_usage_error(a->cmd, "--tokenizer PATH and --ids IDS are required");
    int32_t *ids;
    size_t n;
    char msg[160];
    if (!cli_parse_ids(ids_s, &ids, &n, msg, sizeof msg)) return cli_error("%s", msg);
    mambac_tokenizer *tok;
    if (cli_load_tokenizer(tpath, NULL, &tok) != CLI_OK) {
        free(ids);
        return CLI_ERR;
    }
    char *out;
    size_t len;
    mambac_error err;
    int rc = CLI_OK;
    if (mambac_detokenize(tok, ids, n, &out, &len, &err) != MAMBAC_OK) {
        rc = cli_error("%s", err.msg);
    } else {
        fwrite(out, 1, len, stdout);
        mambac_free(out);
    }
    free(ids);
    mambac_tokenizer_free(tok);
    return rc;
}
