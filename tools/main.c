/* main.c — the mambac command line: a thin front end over libmambac. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: mambac <command> [options]\n"
    "\n"
    "commands:\n"
    "  info      -m MODEL                       describe a checkpoint\n"
    "  logits    -m MODEL --prompt-ids IDS -o OUT.npy [--ubatch N]\n"
    "                                           logits after every prompt position, (T, V) float32\n"
    "  generate  -m MODEL --prompt-ids IDS [-n N] [--temp T] [--top-k K] [--top-p P]\n"
    "            [--min-p P] [--repeat-penalty R] [--repeat-last-n N] [--seed S] [--print-ids]\n"
    "                                           continue a prompt (greedy with --temp 0)\n"
    "  help                                     this text\n"
    "\n"
    "MODEL is a checkpoint folder: transformers (config.json + model.safetensors or shards)\n"
    "or mamba_ssm (config.json + pytorch_model.bin or model.safetensors); without -m the\n"
    "built-in default model is used. IDS: comma-separated token ids, e.g. 3,14,15.\n"
    "logits and generate also take --state-in FILE (start from a saved state) and\n"
    "--state-out FILE (save the state after the prompt / generation).\n";

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    cli_args a = {.argc = argc, .argv = argv, .i = 2, .cmd = argv[1]};
    if (strcmp(argv[1], "info") == 0) return cmd_info(&a);
    if (strcmp(argv[1], "logits") == 0) return cmd_logits(&a);
    if (strcmp(argv[1], "generate") == 0) return cmd_generate(&a);
    fprintf(stderr, "mambac: unknown command '%s' (see 'mambac help')\n", argv[1]);
    return CLI_USAGE;
}
