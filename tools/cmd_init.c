/* cmd_init.c — `mambac init`: a randomly initialized model with the shapes of a
 * released checkpoint, for benchmarks without downloads. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_init(cli_args *a) {
    const char *preset = NULL, *out = NULL, *dtype = "f32", *seed_s = NULL;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_flag(a, "--list")) {
            for (int i = 0; mambac_preset_name(i); i++) printf("%s\n", mambac_preset_name(i));
            return CLI_OK;
        }
        if (cli_opt(a, "--preset", NULL, &preset, &bad) || cli_opt(a, "-o", "--output", &out, &bad) ||
            cli_opt(a, "--dtype", NULL, &dtype, &bad) || cli_opt(a, "--seed", NULL, &seed_s, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (!preset || !out) return cli_usage_error(a->cmd, "--preset NAME and -o DIR are required (--list shows the presets)");
    mambac_init_params p;
    mambac_error err;
    if (mambac_init_preset(preset, &p, &err) != MAMBAC_OK) return cli_error("%s", err.msg);
    if (strcmp(dtype, "f32") == 0) p.dtype = MAMBAC_DTYPE_F32;
    else if (strcmp(dtype, "bf16") == 0) p.dtype = MAMBAC_DTYPE_BF16;
    else if (strcmp(dtype, "f16") == 0) p.dtype = MAMBAC_DTYPE_F16;
    else return cli_usage_error(a->cmd, "--dtype must be f32, bf16 or f16");
    long long seed = 0;
    if (seed_s && !cli_parse_int(seed_s, 0, INT64_MAX, &seed)) return cli_usage_error(a->cmd, "--seed must be >= 0");
    p.seed = (uint64_t)seed;
    if (mambac_model_write_init(&p, out, &err) != MAMBAC_OK) return cli_error("%s", err.msg);
    return CLI_OK;
}
