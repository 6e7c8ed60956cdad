/* cmd_info.c — `mambac info`: what a checkpoint is, as key: value lines. */
#include <stdio.h>

#include "cli.h"

int cmd_info(cli_args *a) {
    const char *path = NULL;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_opt(a, "-m", "--model", &path, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    mambac_model *m;
    if (cli_load_model(path, &m) != CLI_OK) return CLI_ERR;
    const mambac_model_info *c = mambac_model_get_info(m);
    printf("path: %s\n", c->path);
    printf("arch: %s\n", mambac_arch_name(c->arch));
    printf("layout: %s\n", c->layout);
    printf("format: %s\n", c->format);
    printf("dtype: %s\n", mambac_dtype_name(c->dtype));
    printf("d_model: %d\n", c->d_model);
    printf("n_layer: %d\n", c->n_layer);
    printf("d_inner: %d\n", c->d_inner);
    printf("d_state: %d\n", c->d_state);
    printf("d_conv: %d\n", c->d_conv);
    if (c->arch == MAMBAC_ARCH_MAMBA1) {
        printf("dt_rank: %d\n", c->dt_rank);
        if (c->bcdt_rms) printf("dt_b_c_norms: yes (FalconMamba, eps %g)\n", c->mixer_rms_eps);
    } else {
        printf("n_heads: %d\n", c->n_heads);
        printf("head_dim: %d\n", c->head_dim);
        printf("n_groups: %d\n", c->n_groups);
        printf("chunk_size: %d\n", c->chunk_size);
        printf("gated_norm: %s\n", c->gated_norm ? (c->norm_before_gate ? "norm-before-gate" : "yes") : "no");
        printf("dt_limit: [%g, %g]\n", c->dt_min_limit, c->dt_max_limit);
    }
    printf("proj_bias: %s\n", c->proj_bias ? "yes" : "no");
    printf("conv_bias: %s\n", c->conv_bias ? "yes" : "no");
    printf("vocab_size: %d\n", c->vocab_size);
    printf("vocab_rows: %d\n", c->n_vocab_rows);
    printf("tied_embeddings: %s\n", c->tied_embeddings ? "yes" : "no");
    printf("norm_eps: %g\n", c->norm_eps);
    printf("eos_token_id: %d\n", c->eos_token_id);
    printf("n_params: %lld\n", (long long)c->n_params);
    printf("weight_bytes: %lld\n", (long long)c->weight_bytes);
    printf("state_bytes: %zu\n", mambac_state_size_bytes(m));
    mambac_model_free(m);
    return CLI_OK;
}
