/* main.c — the mambac command line: a thin front end over libmambac. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: mambac <command> [options]\n"
    "\n"
    "commands:\n"
    "  generate  [-m MODEL] (-p TEXT | -f FILE | -p - | --prompt-ids IDS) [-n N] [options]\n"
    "            continue a prompt, streaming text (or ids with --print-ids). Options:\n"
    "              --temp T (0 = greedy)  --top-k K  --top-p P  --min-p P  --seed S (-1: random)\n"
    "              --repeat-penalty R  --repeat-last-n N  --stop STRING (repeatable)\n"
    "              --ignore-eos  --tokenizer PATH  --state-in FILE  --state-out FILE\n"
    "              -t THREADS (default: all CPUs; also for logits and bench)\n"
    "              -i / -cnv: then a conversation, a turn per line of stdin\n"
    "  chat      [-m MODEL] [--chat-template chatml|zephyr|plain] [--system TEXT] [-n N]\n"
    "            a conversation in the terminal, kept in one state (/save, /load, /reset)\n"
    "  logits    [-m MODEL] (--prompt-ids IDS | -p TEXT | -f FILE) -o OUT.npy [--ubatch N] [--state-in F] [--state-out F]\n"
    "            the logits after every prompt position as a (T, V) float32 .npy\n"
    "  info      [-m MODEL]                 describe a checkpoint\n"
    "  tokenize  (--tokenizer PATH | -m MODEL) (-p TEXT | -f FILE)   ids, comma-separated\n"
    "  detokenize --tokenizer PATH --ids IDS            the bytes the ids stand for\n"
    "  init      --preset NAME -o DIR [--dtype f32|bf16|f16] [--seed S] | --list\n"
    "            a random model with the shapes of a released checkpoint\n"
    "  quantize  [-m MODEL] -o OUT.gguf --type f32|f16|bf16|q8_0|q4_0|q4_k\n"
    "            write the model as GGUF (llama.cpp's layout) with matrices in that type\n"
    "  train     --data FILE -o DIR [--arch mamba|mamba2] [--d-model 128] [--layers 4]\n"
    "            [--batch 16] [--seq 256] [--steps 2000] [--lr 3e-3] [options] | --resume DIR\n"
    "            train a model (byte-level, or --tokenizer PATH); see docs/TRAINING.md\n"
    "  mqar      -o DIR [--seq 256] [--kv 16] [--d-model 64] [-d cuda] | --eval -m MODEL\n"
    "            train and score multi-query associative recall (the Mamba-2 paper's recall task)\n"
    "  prepare-data --data DIR|FILE -o OUT.tok [--tokenizer PATH | -m MODEL] [--val-frac 0.05]\n"
    "            tokenize a corpus once into a token file train maps (documents held out whole)\n"
    "  perplexity [-m MODEL] -f FILE [--ctx 256] [--from BYTE] [--to BYTE]\n"
    "            mean next-token loss of a text in windows of --ctx tokens\n"
    "  eval      [-m MODEL] --task NAME[,NAME...] [--data DIR] [--limit N] [-o results.json]\n"
    "            zero-shot tasks (LAMBADA, PIQA, ARC, OpenBookQA, WinoGrande, WSC273, COPA, BoolQ,\n"
    "            SIQA, CommonsenseQA, HellaSwag, jsonl:FILE, perplexity)\n"
    "            scored as lm-evaluation-harness scores them\n"
    "  serve     [-m MODEL] [--host H] [--port P] [--parallel N]\n"
    "            an OpenAI-compatible HTTP server with continuous batching and a state cache\n"
    "  grad      [-m MODEL] (--prompt-ids IDS | -p TEXT | -f FILE) -o GRADS.safetensors [-t THREADS]\n"
    "            the mean next-token loss of the tokens and every parameter's gradient\n"
    "  bench     [-m MODEL] [-p 512] [-n 128] [-b BATCH] [-u UBATCH] [-t THREADS] [-r REPEATS] [--json]\n"
    "            prefill and decode speed (of BATCH sequences together: aggregate tok/s)\n"
    "  help [COMMAND]                       this text, or COMMAND's options (also COMMAND --help)\n"
    "  version                              version, build, kernel sets usable here, CUDA (also --version)\n"
    "\n"
    "-d / --device BACKEND (every command that evaluates a model): cpu (default), cuda,\n"
    "cuda:N (builds with CUDA); MAMBAC_PRECISION=bf16 picks the GPU's bf16 products.\n"
    "--no-mmap (the same commands): read weight files into memory instead of mapping them.\n"
    "\n"
    "MODEL is a checkpoint folder: transformers (config.json + model.safetensors or shards)\n"
    "or mamba_ssm (config.json + pytorch_model.bin or model.safetensors), with its\n"
    "tokenizer.json; or a .gguf file (llama.cpp's mamba/mamba2: f32, f16, bf16, q8_0,\n"
    "q4_0, q4_K, q5_0, q6_K). Without -m the built-in default model is used. IDS: comma-separated\n"
    "token ids, e.g. 3,14,15. -p - reads the prompt from stdin.\n";

int main(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) return cli_version();
    if (argc >= 3 && strcmp(argv[1], "help") == 0) return cli_help(argv[2]);
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    for (int i = 2; i < argc; i++) /* COMMAND --help: that command's help, whatever else is given */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return cli_help(argv[1]);
    /* -d / --device is common to every command that evaluates a model: taken out here */
    int n = 2;
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--device") == 0) && strcmp(argv[1], "train") != 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mambac %s: option %s needs a value (see 'mambac help')\n", argv[1], argv[i]);
                return CLI_USAGE;
            }
            cli_device = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--no-mmap") == 0 && strcmp(argv[1], "train") != 0) {
            cli_no_mmap = 1;
            continue;
        }
        argv[n++] = argv[i];
    }
    argc = n;
    cli_args a = {.argc = argc, .argv = argv, .i = 2, .cmd = argv[1]};
    if (strcmp(argv[1], "info") == 0) return cmd_info(&a);
    if (strcmp(argv[1], "logits") == 0) return cmd_logits(&a);
    if (strcmp(argv[1], "generate") == 0) return cmd_generate(&a);
    if (strcmp(argv[1], "chat") == 0) return cmd_chat(&a);
    if (strcmp(argv[1], "tokenize") == 0) return cmd_tokenize(&a);
    if (strcmp(argv[1], "init") == 0) return cmd_init(&a);
    if (strcmp(argv[1], "bench") == 0) return cmd_bench(&a);
    if (strcmp(argv[1], "quantize") == 0) return cmd_quantize(&a);
    if (strcmp(argv[1], "grad") == 0) return cmd_grad(&a);
    if (strcmp(argv[1], "train") == 0) return cmd_train(&a);
    if (strcmp(argv[1], "prepare-data") == 0) return cmd_prepare_data(&a);
    if (strcmp(argv[1], "perplexity") == 0) return cmd_perplexity(&a);
    if (strcmp(argv[1], "eval") == 0) return cmd_eval(&a);
    if (strcmp(argv[1], "mqar") == 0) return cmd_mqar(&a);
    if (strcmp(argv[1], "detokenize") == 0) return cmd_detokenize(&a);
    if (strcmp(argv[1], "serve") == 0) {
#ifdef MAMBAC_HAVE_SERVE
        return cmd_serve(&a);
#else
        fprintf(stderr, "mambac: serve is not built in (libmicrohttpd was not found: run scripts/setup.sh, then rebuild)\n");
        return CLI_ERR;
#endif
    }
    fprintf(stderr, "mambac: unknown command '%s' (see 'mambac help')\n", argv[1]);
    return CLI_USAGE;
}
