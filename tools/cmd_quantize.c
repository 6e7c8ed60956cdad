/* cmd_quantize.c — `mambac quantize`: any loadable model → a GGUF file in llama.cpp's
 * layout, large matrices in the chosen type. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_parse_dtype(const char *s, mambac_dtype *out) {
    static const struct { const char *name; mambac_dtype t; } names[] = {
        {"f32", MAMBAC_DTYPE_F32},   {"f16", MAMBAC_DTYPE_F16},   {"bf16", MAMBAC_DTYPE_BF16},
        {"q8_0", MAMBAC_DTYPE_Q8_0}, {"q4_0", MAMBAC_DTYPE_Q4_0}, {"q4_k", MAMBAC_DTYPE_Q4_K},
        {"q4_K", MAMBAC_DTYPE_Q4_K},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].t;
            return 1;
        }
    return 0;
}

int cmd_quantize(cli_args *a) {
    const char *model = NULL, *out = NULL, *type_s = NULL;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_opt(a, "-m", "--model", &model, &bad) || cli_opt(a, "-o", "--output", &out, &bad) ||
            cli_opt(a, "--type", NULL, &type_s, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    mambac_dtype t;
    if (!out || !type_s) return cli_usage_error(a->cmd, "-o OUT.gguf and --type are required");
    if (!cli_parse_dtype(type_s, &t)) return cli_usage_error(a->cmd, "--type must be f32, f16, bf16, q8_0, q4_0 or q4_k");
    mambac_model *m;
    if (cli_load_model(model, &m) != CLI_OK) return CLI_ERR;
    mambac_error err;
    double t0 = cli_now();
    mambac_status st = mambac_model_write_gguf(m, out, t, &err);
    const mambac_model_info *c = mambac_model_get_info(m);
    if (st == MAMBAC_OK)
        fprintf(stderr, "wrote %s: %s %s, %lld parameters, from %s, in %.1f s\n", out, mambac_arch_name(c->arch),
                mambac_dtype_name(t), (long long)c->n_params, c->path, cli_now() - t0);
    mambac_model_free(m);
    return st == MAMBAC_OK ? CLI_OK : cli_error("%s", err.msg);
}
