/* cmd_grad.c — `mambac grad`: the loss of a token sequence (mean next-token
 * cross-entropy) and the gradient of every parameter, written as safetensors under
 * the transformers names — a debugging tool, and the check against the fixtures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/threadpool.h"
#include "train/train.h"

int cmd_grad(cli_args *a) {
    const char *model = NULL, *out = NULL, *ids_s = NULL, *threads_s = NULL, *text = NULL, *file = NULL, *tokenizer = NULL;
    int no_escape = 0;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_flag(a, "--no-escape")) {
            no_escape = 1;
        } else if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "-o", "--output", &out, &bad) ||
            cli_opt(a, "--prompt-ids", NULL, &ids_s, &bad) || cli_opt(a, "-t", "--threads", &threads_s, &bad) ||
            cli_opt(a, "-p", "--prompt", &text, &bad) || cli_opt(a, "-f", "--file", &file, &bad) ||
            cli_opt(a, "--tokenizer", NULL, &tokenizer, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (!!ids_s + !!text + !!file != 1 || !out)
        return cli_usage_error(a->cmd, "one of --prompt-ids IDS, -p TEXT or -f FILE, and -o OUT.safetensors, are required");
    int32_t threads = 0;
    if (threads_s && !cli_parse_threads(threads_s, &threads)) return cli_usage_error(a->cmd, "-t must be >= 1");
    int32_t *ids = NULL;
    size_t n = 0;
    char msg[256];
    if (ids_s && !cli_parse_ids(ids_s, &ids, &n, msg, sizeof msg)) return cli_usage_error(a->cmd, "%s", msg);
    if (ids_s && n < 2) {
        free(ids);
        return cli_usage_error(a->cmd, "need at least 2 ids (the loss predicts each next one)");
    }
    mambac_model *m;
    if (cli_load_model(model, &m) != CLI_OK) {
        free(ids);
        return CLI_ERR;
    }
    const mambac_model_info *info = mambac_model_get_info(m);
    if (!ids_s && cli_prompt_ids(NULL, text, file, !no_escape, tokenizer, info, &ids, &n) != CLI_OK) {
        mambac_model_free(m);
        return CLI_ERR;
    }
    if (n < 2) {
        cli_error("the text gave %zu token: the loss needs at least 2", n);
        free(ids);
        mambac_model_free(m);
        return CLI_ERR;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= info->n_vocab_rows) {
            cli_error("token id %d at position %zu is out of range (vocabulary has %d rows)", ids[i], i, info->n_vocab_rows);
            free(ids);
            mambac_model_free(m);
            return CLI_ERR;
        }
    mambac_error err;
    mc_params P;
    mc_tctx c = {0};
    mc_tape *tape = NULL;
    int rc = CLI_ERR;
    const int nt = threads ? threads : mc_cpu_count();
    if (mc_params_from_model(m, &P, &err) != MAMBAC_OK) {
        cli_error("%s", err.msg);
        goto done_model;
    }
    int64_t max_k, tcap;
    mc_train_sizes(&P, 1, (int64_t)n, &max_k, &tcap);
    if (mc_tctx_init(&c, nt, NULL, max_k, tcap, &err) != MAMBAC_OK || mc_tape_new(&P, 1, (int64_t)n, nt, &tape, &err) != MAMBAC_OK) {
        cli_error("%s", err.msg);
        goto done;
    }
    const double t0 = cli_now();
    const float loss = (float)mc_train_step(&c, &P, tape, ids, 1, 1.0f);
    const double dt = cli_now() - t0;
    if (mc_params_write(&P, out, 1, NULL, &loss, &err) != MAMBAC_OK) {
        cli_error("%s", err.msg);
        goto done;
    }
    printf("loss %.7g\n", loss);
    fprintf(stderr, "wrote %s: %zu gradients, %zu tokens, forward + backward %.3f s\n", out, P.n, n, dt);
    rc = CLI_OK;
done:
    mc_tape_free(tape);
    mc_tctx_free(&c);
    mc_params_free(&P);
done_model:
    mambac_model_free(m);
    free(ids);
    return rc;
}
