/* cmd_tokenize.c — `mambac tokenize` (text → ids, comma-separated on one line) and
 * `mambac detokenize` (ids → exactly the bytes they stand for). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_tokenize(cli_args *a) {
    const char *tpath = NULL, *text = NULL, *file = NULL;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_opt(a, "--tokenizer", NULL, &tpath, &bad) || cli_opt(a, "-p", "--prompt", &text, &bad) ||
            cli_opt(a, "-f", "--file", &file, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (!tpath) return cli_usage_error(a->cmd, "--tokenizer PATH is required");
    if (!!text + !!file != 1) return cli_usage_error(a->cmd, "give exactly one of -p TEXT or -f FILE");
    mambac_tokenizer *tok;
    if (cli_load_tokenizer(tpath, NULL, &tok) != CLI_OK) return CLI_ERR;
    char *buf = NULL;
    size_t len;
    if (text && strcmp(text, "-") != 0) {
        len = strlen(text);
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
