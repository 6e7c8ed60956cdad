/* cmd_logits.c — `mambac logits`: the logits after every prompt position as a
 * (T, V) float32 .npy file, V = the checkpoint's logit rows (padding included).
 * --ubatch N feeds the prompt N tokens at a time, carrying the state between pieces
 * (N = 1 is pure recurrent decoding). The prompt: ids, or text (-p / -f) through the
 * model's tokenizer. The file is written atomically. */
#include <stdlib.h>

#include "io/npy.h"
#include "cli.h"

int cmd_logits(cli_args *a) {
    const char *model = NULL, *ids_s = NULL, *out = NULL, *ub_s = NULL, *state_in = NULL, *state_out = NULL, *t_s = NULL;
    const char *text = NULL, *file = NULL, *tokenizer = NULL;
    int no_escape = 0;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_flag(a, "--no-escape")) {
            no_escape = 1;
        } else if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "--prompt-ids", NULL, &ids_s, &bad) ||
            cli_opt(a, "-o", "--output", &out, &bad) || cli_opt(a, "--ubatch", NULL, &ub_s, &bad) ||
            cli_opt(a, "--state-in", NULL, &state_in, &bad) || cli_opt(a, "--state-out", NULL, &state_out, &bad) ||
            cli_opt(a, "-t", "--threads", &t_s, &bad) || cli_opt(a, "-p", "--prompt", &text, &bad) ||
            cli_opt(a, "-f", "--file", &file, &bad) || cli_opt(a, "--tokenizer", NULL, &tokenizer, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    int32_t threads = 0;
    if (!cli_parse_threads(t_s, &threads)) return cli_usage_error(a->cmd, "-t must be in [1, 1024]");
    if (!!ids_s + !!text + !!file != 1) return cli_usage_error(a->cmd, "give exactly one of --prompt-ids IDS, -p TEXT or -f FILE");
    if (!out) return cli_usage_error(a->cmd, "-o OUT.npy is required");
    long long ub = 0;
    if (ub_s && !cli_parse_int(ub_s, 1, 1 << 20, &ub)) return cli_usage_error(a->cmd, "--ubatch must be an integer in [1, 1048576]");
    int32_t *ids = NULL;
    size_t T = 0;
    char msg[128];
    if (ids_s && !cli_parse_ids(ids_s, &ids, &T, msg, sizeof msg)) return cli_error("%s", msg);
    /* default: the whole prompt at once (text: pieces of 512, its length is known later) */
    if (!ub) ub = !ids_s ? 512 : (long long)T < (1 << 20) ? (long long)T : (1 << 20);
    cli_session s;
    if (cli_session_open(&s, model, (int32_t)ub, threads, state_in) != CLI_OK) {
        free(ids);
        return CLI_ERR;
    }
    if (!ids_s && cli_prompt_ids(NULL, text, file, !no_escape, tokenizer, s.info, &ids, &T) != CLI_OK) {
        cli_session_close(&s);
        return CLI_ERR;
    }
    const size_t V = (size_t)s.info->n_vocab_rows;
    float *logits = malloc((size_t)ub * V * sizeof(float));
    mambac_error err;
    mc_atomic_file af = {0};
    int64_t shape[2] = {(int64_t)T, (int64_t)V};
    mambac_status st = logits ? MAMBAC_OK : MAMBAC_ERR_NOMEM;
    if (!logits) snprintf(err.msg, sizeof err.msg, "out of memory for %zu x %zu logits", (size_t)ub, V);
    /* Checking the ids before creating the file keeps bad input from leaving anything behind. */
    for (size_t i = 0; st == MAMBAC_OK && i < T; i++)
        if (ids[i] >= s.info->vocab_size) {
            st = MAMBAC_ERR_INVALID_ARG;
            snprintf(err.msg, sizeof err.msg, "token id %d at position %zu is out of range (vocabulary has %d tokens)", ids[i],
                     i, s.info->vocab_size);
        }
    if (st == MAMBAC_OK) st = mc_atomic_open(&af, out, &err);
    int opened = st == MAMBAC_OK;
    if (st == MAMBAC_OK) st = mc_npy_write_header(&af, shape, 2, &err);
    for (size_t done = 0; st == MAMBAC_OK && done < T;) {
        size_t n = T - done < (size_t)ub ? T - done : (size_t)ub;
        st = mambac_eval(s.ctx, s.state, ids + done, n, MAMBAC_LOGITS_ALL, logits, &err);
        if (st == MAMBAC_OK) st = mc_atomic_write(&af, logits, n * V * sizeof(float), &err);
        done += n;
    }
    if (st == MAMBAC_OK) st = mc_atomic_commit(&af, &err);
    else if (opened) mc_atomic_abort(&af);
    int rc = st == MAMBAC_OK ? cli_session_save(&s, state_out) : cli_error("%s", err.msg);
    free(logits);
    free(ids);
    cli_session_close(&s);
    return rc;
}
