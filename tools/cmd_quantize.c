/* cmd_quantize.c — `mambac quantize`: any loadable model → a GGUF file in llama.cpp's
 * layout, large matrices in the chosen type. Like init and train it never overwrites an
 * existing output, and like llama-quantize it re-quantizes an already quantized model
 * only when asked (--allow-requantize: the result carries both roundings). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* llama.cpp's names too, in any case (Q8_0, q8_0); its mixes (Q4_K_M, ...) are not ours. */
int cli_parse_dtype(const char *s, mambac_dtype *out) {
    static const struct { const char *name; mambac_dtype t; } names[] = {
        {"f32", MAMBAC_DTYPE_F32},   {"f16", MAMBAC_DTYPE_F16},   {"bf16", MAMBAC_DTYPE_BF16},
        {"q8_0", MAMBAC_DTYPE_Q8_0}, {"q4_0", MAMBAC_DTYPE_Q4_0}, {"q4_k", MAMBAC_DTYPE_Q4_K},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].t;
            return 1;
        }
    return 0;
}

static int quantized(mambac_dtype t) {
    return t == MAMBAC_DTYPE_Q8_0 || t == MAMBAC_DTYPE_Q4_0 || t == MAMBAC_DTYPE_Q4_K || t == MAMBAC_DTYPE_Q5_0 ||
           t == MAMBAC_DTYPE_Q6_K;
}

/* Per tensor, on a terminal only (a log keeps its lines). */
static void show_progress(void *user, size_t done, size_t total, const char *name) {
    (void)user;
    fprintf(stderr, "\rquantize: %zu / %zu tensors (%s)\033[K%s", done, total, name, done == total ? "\n" : "");
    fflush(stderr);
}

int cmd_quantize(cli_args *a) {
    const char *model = NULL, *out = NULL, *type_s = NULL;
    int requantize = 0;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_flag(a, "--allow-requantize")) {
            requantize = 1;
        } else if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "-o", "--output", &out, &bad) ||
            cli_opt(a, "--type", NULL, &type_s, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    mambac_dtype t;
    if (!out || !type_s) return cli_usage_error(a->cmd, "-o OUT.gguf and --type are required");
    if (!cli_parse_dtype(type_s, &t)) {
        if (strncasecmp(type_s, "q4_k_", 5) == 0 || strncasecmp(type_s, "q5_k", 4) == 0 || strncasecmp(type_s, "q3_k", 4) == 0)
            return cli_usage_error(a->cmd, "--type %s: llama.cpp's mixes are not supported (q4_k quantizes every matrix as q4_K)",
                                   type_s);
        return cli_usage_error(a->cmd, "--type must be f32, f16, bf16, q8_0, q4_0 or q4_k (any case)");
    }
    struct stat sb;
    if (stat(out, &sb) == 0) return cli_error("%s: already exists (not overwriting)", out);
    mambac_model *m;
    if (cli_load_model(model, &m) != CLI_OK) return CLI_ERR;
    const mambac_dtype from = mambac_model_get_info(m)->dtype;
    if (quantized(from) && from != t && t != MAMBAC_DTYPE_F32 && !requantize) { /* to f32 is exact */
        const int rc = cli_error("%s is already %s: quantizing it again to %s adds a second rounding (--allow-requantize to do it anyway)",
                                 mambac_model_get_info(m)->path, mambac_dtype_name(from), mambac_dtype_name(t));
        mambac_model_free(m);
        return rc;
    }
    mambac_error err;
    double t0 = cli_now();
    mambac_status st = mambac_model_write_gguf_ex(m, out, t, isatty(STDERR_FILENO) ? show_progress : NULL, NULL, &err);
    const mambac_model_info *c = mambac_model_get_info(m);
    if (st == MAMBAC_OK)
        fprintf(stderr, "wrote %s: %s %s, %lld parameters, from %s, in %.1f s\n", out, mambac_arch_name(c->arch),
                mambac_dtype_name(t), (long long)c->n_params, c->path, cli_now() - t0);
    mambac_model_free(m);
    return st == MAMBAC_OK ? CLI_OK : cli_error("%s", err.msg);
}
