/* help.c — `mambac COMMAND --help` / `mambac help COMMAND`: every option of a command with
 * its default and an example; `mambac --version`: what this build is and can run here. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mambac.h"

#ifndef MAMBAC_BUILD_TYPE
#define MAMBAC_BUILD_TYPE "unknown"
#endif

typedef struct command_help {
    const char *name, *text;
} command_help;

#define COMMON_MODEL                                                                                     \
    "  -m, --model MODEL     checkpoint folder (transformers or mamba_ssm) or .gguf file (default: the\n" \
    "                        built-in model)\n"                                                         \
    "  -d, --device DEV      cpu (default), cuda, cuda:N; MAMBAC_PRECISION=bf16 for the GPU's bf16 products\n" \
    "      --no-mmap         read the weight files into memory instead of mapping them\n"
#define COMMON_THREADS "  -t, --threads N       CPU threads (default: every CPU the process may use; never more)\n"

static const command_help helps[] = {
    {"generate",
     "usage: mambac generate [-m MODEL] (-p TEXT | -f FILE | -p - | --prompt-ids IDS) [options]\n"
     "Continues a prompt, streaming the text (or the ids) to stdout.\n\n" COMMON_MODEL COMMON_THREADS
     "  -p, --prompt TEXT     the prompt (- reads stdin)\n"
     "  -f, --file FILE       the prompt from a file\n"
     "      --prompt-ids IDS  the prompt as comma-separated token ids\n"
     "  -n, --n-predict N     tokens to generate (default 128)\n"
     "      --temp T          temperature (default 0.8; 0 = greedy)\n"
     "      --top-k K         keep the K most likely (default 40; 0 = off)\n"
     "      --top-p P         nucleus mass (default 0.95)\n"
     "      --min-p P         drop tokens below P x the most likely (default 0.05; 0 = off)\n"
     "      --repeat-penalty R, --repeat-last-n N   penalty for recent tokens (default 1.0 = off, 64)\n"
     "      --seed S          sampling seed (default: random, printed on stderr; -1: random)\n"
     "      --stop STRING     stop before this text (repeatable)\n"
     "      --no-escape       take -p and --stop literally (default: \\n, \\t, \\xHH ... processed)\n"
     "      --ignore-eos      keep going past the end-of-text token\n"
     "      --print-ids       print token ids instead of text\n"
     "      --echo            print the prompt's text before the continuation\n"
     "      --tokenizer PATH  tokenizer.json (default: the model's)\n"
     "      --state-in FILE, --state-out FILE   continue from / save the sequence state\n"
     "  -i, --interactive     then read lines from stdin, each fed as the next turn (-n tokens an\n"
     "                        answer; the conversation lives in the state: nothing is re-read)\n"
     "  -r, --reverse-prompt S  with -i: an answer stops where S appears (printed; repeatable)\n"
     "      --in-prefix S, --in-suffix S   with -i: text around each line read\n"
     "  -cnv, --conversation  -i with ChatML turns (-p is the system message; answers end at\n"
     "                        <|im_end|>)\n\n"
     "example: mambac generate -m mamba-130m-hf -p \"The meaning of life is\" -n 64 --temp 0.7\n"
     "         mambac generate -m mamba-130m-hf -i -p \"ROMEO:\" -r \"JULIET:\" --in-suffix \"\\nROMEO:\"\n"},
    {"chat",
     "usage: mambac chat [-m MODEL] [options]\n"
     "A conversation in the terminal. The whole conversation is one state: each message is read\n"
     "once, nothing is re-read. Lines are edited with libedit (history of the session).\n\n" COMMON_MODEL COMMON_THREADS
     "      --chat-template T chatml, zephyr or plain (default: the one the model's\n"
     "                        tokenizer_config.json chat_template is recognised as, else chatml)\n"
     "      --system TEXT     the system message\n"
     "  -n, --n-predict N     tokens an answer at most (default 512)\n"
     "      --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed   as generate\n"
     "      --tokenizer PATH  tokenizer.json (default: the model's)\n"
     "In the chat: /reset starts over, /save FILE and /load FILE write and read the conversation's\n"
     "state, /quit or Ctrl-D leaves, Ctrl-C stops an answer.\n\n"
     "example: mambac chat -m mamba-chat --system \"You are helpful.\" --temp 0.7\n"},
    {"logits",
     "usage: mambac logits [-m MODEL] (--prompt-ids IDS | -p TEXT | -f FILE) -o OUT.npy [options]\n"
     "Writes the logits after every prompt position as a (T, V) float32 .npy file.\n\n" COMMON_MODEL COMMON_THREADS
     "      --prompt-ids IDS  comma-separated token ids\n"
     "  -p, --prompt TEXT     or a text (escapes processed unless --no-escape; - reads stdin), through the tokenizer\n"
     "  -f, --file FILE       or a file's text\n"
     "      --tokenizer PATH  tokenizer.json (default: the model's)\n"
     "  -o, --output FILE     the .npy file to write\n"
     "      --ubatch N        tokens evaluated per piece (default: ids all at once, text 512)\n"
     "      --state-in FILE, --state-out FILE   continue from / save the sequence state\n\n"
     "example: mambac logits -m mamba-130m-hf --prompt-ids 510,4495,273 -o logits.npy\n"},
    {"info", "usage: mambac info [-m MODEL]\nDescribes a checkpoint: architecture, sizes, dtype, tokenizer.\n\n" COMMON_MODEL
             "\nexample: mambac info -m model.gguf\n"},
    {"tokenize",
     "usage: mambac tokenize (--tokenizer PATH | -m MODEL) (-p TEXT | -f FILE) [--show-pieces]\n"
     "Prints the token ids of a text, comma-separated (--show-pieces: a line per token, id and bytes).\n\n"
     "      --tokenizer PATH  tokenizer.json, or a .gguf file with a vocabulary\n"
     "  -m, --model MODEL     the model's tokenizer (its folder's tokenizer.json, or the GGUF's)\n"
     "  -p, --prompt TEXT     the text (escapes such as \\n processed unless --no-escape; - reads stdin)\n"
     "  -f, --file FILE       the text from a file (taken as it is)\n\n"
     "example: mambac tokenize --tokenizer tokenizer.json -p \"Hello world\"\n"},
    {"detokenize",
     "usage: mambac detokenize --tokenizer PATH --ids IDS\n"
     "Prints the bytes the ids stand for.\n\n"
     "      --tokenizer PATH  tokenizer.json, or a .gguf file with a vocabulary\n"
     "      --ids IDS         comma-separated token ids\n\n"
     "example: mambac detokenize --tokenizer tokenizer.json --ids 12092,1533\n"},
    {"init",
     "usage: mambac init --preset NAME -o DIR [--dtype f32|bf16|f16] [--seed S] | --list\n"
     "Writes a model of random weights with the shapes of a released checkpoint.\n\n"
     "      --preset NAME     mamba-130m ... mamba2-2.7b (--list shows them)\n"
     "  -o, --output DIR      the folder to create (must not exist)\n"
     "      --dtype T         f32 (default), bf16, f16\n"
     "      --seed S          initialisation seed (default 0)\n\n"
     "example: mambac init --preset mamba2-130m --dtype bf16 -o /tmp/m2\n"},
    {"quantize",
     "usage: mambac quantize [-m MODEL] -o OUT.gguf --type T\n"
     "Writes the model as GGUF (llama.cpp's layout) with its matrices in type T.\n\n"
     "  -m, --model MODEL     the model to convert (default: the built-in model)\n"
     "  -o, --output FILE     the .gguf file to write\n"
     "      --type T          f32, f16, bf16, q8_0, q4_0, q4_k (any case: Q8_0 too)\n"
     "      --allow-requantize  quantize an already quantized model again (two roundings)\n"
     "An existing output is never overwritten.\n\n"
     "example: mambac quantize -m mamba-130m-hf -o mamba-130m-q8_0.gguf --type q8_0\n"},
    {"train",
     "usage: mambac train --data FILE -o DIR [options] | --resume DIR [--steps N]\n"
     "Trains a model (new, --init-from a folder, or resumed). Ctrl-C saves and stops.\n"
     "All options, defaults and results: docs/TRAINING.md.\n\n"
     "      --data FILE       training text, or a token file (mambac prepare-data); --tokenizer PATH\n"
     "                        to train on its tokens (default: bytes; a token file's own tokenizer)\n"
     "  -o, --output DIR      the checkpoint folder (must not exist)\n"
     "      --resume DIR      continue a checkpoint with its data and settings\n"
     "      --init-from DIR   fine-tune a model folder\n"
     "      --arch A          mamba (default) or mamba2; --d-model 128, --layers 4, --d-state,\n"
     "                        --expand, --d-conv, --dt-rank, --headdim, --groups, --chunk\n"
     "      --batch 16, --seq 256, --steps 2000, --accum 1, --warmup, --lr 3e-3, --min-lr 3e-4,\n"
     "      --wd 0.1, --beta1 0.9, --beta2 0.95, --clip 1.0, --eval-every 100, --eval-windows,\n"
     "      --save-every, --time-limit S, --stop-at N, --val-frac 0.1, --seed 1337\n"
     "  -d, --device D        cpu (default), cuda or cuda:N: the steps on that GPU (float32; a\n"
     "                        checkpoint continues on either)\n"
     "      --precision P     on the GPU: f32 (default: the CPU's gradients to rounding), tf32 or\n"
     "                        bf16 (products on tensor cores; float32 weights, moments and sums)\n" COMMON_THREADS
     "\nexample: mambac train --data input.txt -o ts --steps 2000\n"},
    {"mqar",
     "usage: mambac mqar -o DIR [options]   |   mambac mqar --eval -m MODEL [task options]\n"
     "Multi-query associative recall (Zoology's MQAR, the Mamba-2 paper's recall task): trains a new\n"
     "model on fresh examples every step, then prints its accuracy on held-out examples (the share of\n"
     "asked positions whose greedy prediction is the value) and writes DIR/mqar.json. --eval scores a\n"
     "model (its JSON only with --json). With -d cuda the training runs on the GPU. docs/TRAINING.md.\n\n"
     "      --vocab 8192, --seq 256, --kv 16   the task: vocabulary, sequence length, key-value pairs\n"
     "      --arch mamba2 (or mamba), --d-model 64, --layers 2, --d-state (64; Mamba-1 16),\n"
     "      --headdim 16, --chunk 64\n"
     "      --steps 2000, --batch 64, --lr 1e-3 (cosine to a tenth), --warmup 100, --wd 0.1, --seed 1\n"
     "      --eval-examples 1000, --precision f32|tf32|bf16 (GPU), --json FILE (instead of DIR/mqar.json)\n" COMMON_THREADS
     "\nexample: mambac mqar -o mqar-d64 --seq 256 --kv 16 --d-model 64 -d cuda\n"},
    {"prepare-data",
     "usage: mambac prepare-data --data DIR|FILE -o OUT.tok [--tokenizer PATH | -m MODEL] [options]\n"
     "Tokenizes a corpus once into a token file that `mambac train --data OUT.tok` maps instead of\n"
     "tokenizing on every run: the .txt files of a folder (each a document), a .jsonl file of\n"
     "{\"text\": ...} documents, or one text file. Held-out documents are chosen by a seeded shuffle\n"
     "and kept whole; each document follows <|endoftext|> when the tokenizer has it. Format:\n"
     "docs/TRAINING.md.\n\n"
     "      --data PATH       the corpus\n"
     "  -o, --output FILE     the token file (must not exist; written atomically)\n"
     "      --tokenizer PATH  tokenizer.json (default: bytes are tokens); -m MODEL: the model's\n"
     "      --val-frac F      documents held out (default 0.05; one text file: its last F of tokens)\n"
     "      --val-docs N      or exactly N documents\n"
     "      --seed S          the shuffle choosing them (default 1337)\n"
     "      --unwrap          undo hard line wrapping (Gutenberg's ~70 columns): a newline after a\n"
     "                        line of 50+ bytes, before a visible character, becomes a space;\n"
     "                        blank lines, short lines and indented lines keep theirs\n" COMMON_THREADS
     "\nexample: mambac prepare-data --data books/ --tokenizer tokenizer.json -o books.tok\n"},
    {"perplexity",
     "usage: mambac perplexity [-m MODEL] -f FILE [--ctx 256] [--from BYTE] [--to BYTE]\n"
     "Mean next-token loss and perplexity of a text in windows of --ctx tokens.\n\n" COMMON_MODEL COMMON_THREADS
     "  -f, --file FILE       the text\n"
     "      --ctx N           window in tokens (default 256)\n"
     "      --from B, --to B  a byte range of the file (default: all of it)\n"
     "      --tokenizer PATH  tokenizer.json (default: the model's)\n\n"
     "example: mambac perplexity -m mamba-130m-hf -f book.txt --ctx 1024\n"},
    {"eval",
     "usage: mambac eval [-m MODEL] --task NAME[,NAME...] [--data DIR] [--limit N] [-o results.json]\n"
     "Zero-shot tasks scored as lm-evaluation-harness scores them (its prompts, tokenization and\n"
     "metrics: acc, acc_norm, perplexity, with standard errors); each item's context is evaluated\n"
     "once and its choices continue from copies of the state.\n\n" COMMON_MODEL COMMON_THREADS
     "      --task NAMES      lambada_openai, piqa, arc_easy, arc_challenge, openbookqa, winogrande,\n"
     "                        wsc273, copa, boolq, siqa, commonsense_qa, hellaswag (its file given:\n"
     "                        hellaswag/hellaswag_val.jsonl under --data), jsonl:FILE (a task\n"
     "                        file: docs/EVALUATION.md), or perplexity (of the\n"
     "                        text file or folder of .txt files given as --data); comma-separated\n"
     "      --ctx N           perplexity: lm-eval's windows of N tokens (default 2048); 0: each\n"
     "                        document whole through the state\n"
     "      --curve FILE      perplexity: mean loss by position in the document, as CSV\n"
     "      --data DIR        the built-in tasks' files (the layout of shared/data/eval: lambada/,\n"
     "                        piqa/, mosaic_icl/, and hellaswag/)\n"
     "      --limit N         the first N items of each task\n"
     "  -o, --output FILE     the results as JSON as well\n"
     "      --log-samples FILE  every item as lm-eval's --log_samples writes it (JSON lines: the\n"
     "                        context and continuation strings, log-likelihoods, greedy flags, hits)\n"
     "      --tokenizer PATH  tokenizer.json (default: the model's)\n\n"
     "example: mambac eval -m mamba-130m-hf --task lambada_openai,piqa --data eval-data\n"},
    {"serve",
     "usage: mambac serve [-m MODEL] [--host 127.0.0.1] [--port 8080] [--parallel N] [options]\n"
     "An OpenAI-compatible HTTP server: /v1/completions, /v1/chat/completions (streaming with\n"
     "stream: true), /v1/models, /tokenize, /detokenize, /health, /metrics, and a chat page at /.\n"
     "Running requests are evaluated together each step; the state after every prompt and every\n"
     "answer is cached, so a request that extends a cached prefix evaluates only its new tokens.\n\n"
     COMMON_MODEL COMMON_THREADS
     "      --host ADDR       IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
     "      --port N          port (default 8080; 0: any free one, printed)\n"
     "  -np, --parallel N     sequences evaluated together at most (default 8)\n"
     "      --queue N         requests waiting beyond those at most (default 64; then 503)\n"
     "      --ctx-cache-mb M  the state cache's memory (default 256; 0: off)\n"
     "      --state-dir DIR   keep the state cache across restarts: read from DIR at the start, written at the end\n"
     "      --api-key KEY     require Authorization: Bearer KEY (default: $MAMBAC_API_KEY, or none)\n"
     "      --chat-template T chatml, zephyr or plain (default: the model's, else chatml)\n"
     "      --model-name NAME the model's id in responses (default: the model's file or folder name)\n"
     "      --max-tokens N    tokens a request may generate at most, and the default (4096)\n"
     "      --max-prompt N    prompt tokens a request may have (default 65536)\n"
     "      --max-body-mb M   request body size limit (default 8)\n"
     "      --timeout S       a request's time limit in seconds (default 600)\n"
     "      --prefill-piece N prompt tokens fed a step while others decode (default 512)\n"
     "      --tokenizer PATH  tokenizer.json (default: the model's)\n\n"
     "example: mambac serve -m mamba-130m-hf --port 8080 --parallel 16\n"
     "         curl http://127.0.0.1:8080/v1/completions -d '{\"prompt\": \"Once\", \"max_tokens\": 16}'\n"},
    {"grad",
     "usage: mambac grad [-m MODEL] (--prompt-ids IDS | -p TEXT | -f FILE) -o GRADS.safetensors [-t N]\n"
     "The mean next-token loss of the tokens and every parameter's gradient.\n\n" COMMON_MODEL COMMON_THREADS
     "      --prompt-ids IDS  comma-separated token ids (at least two)\n"
     "  -p, --prompt TEXT     or a text (escapes processed unless --no-escape; - reads stdin), through the tokenizer\n"
     "  -f, --file FILE       or a file's text\n"
     "      --tokenizer PATH  tokenizer.json (default: the model's)\n"
     "  -o, --output FILE     the gradients, as safetensors\n\n"
     "example: mambac grad --prompt-ids 1,2,3,4 -o g.safetensors\n"},
    {"bench",
     "usage: mambac bench [-m MODEL] [options]\n"
     "Prefill and decode speed (of B sequences together: aggregate tokens/s).\n\n" COMMON_MODEL COMMON_THREADS
     "  -p, --prompt N        prompt tokens (default 512)\n"
     "  -n, --n-gen N         tokens decoded (default 128)\n"
     "  -b, --batch B         sequences together (default 1)\n"
     "  -u, --ubatch U        tokens per piece (default: the prompt)\n"
     "  -r, --repeats R       rounds after one warm-up (default 3)\n"
     "      --json            one JSON line per run\n\n"
     "example: mambac bench -m model.gguf -p 512 -n 128 -b 16\n"},
};

int cli_help(const char *cmd) {
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
        if (strcmp(helps[i].name, cmd) == 0) {
            fputs(helps[i].text, stdout);
            return CLI_OK;
        }
    return cli_usage_error("help", "no command '%s'", cmd);
}

int cli_version(void) {
    printf("mambac %s (%s build)\n", mambac_version(), MAMBAC_BUILD_TYPE);
    static const char *sets[] = {"scalar", "avx2", "avx512", "amx"};
    printf("CPU kernel sets usable here:");
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (mambac_kernel_set_usable(sets[i])) printf(" %s", sets[i]);
    printf(" (default %s)\n", mambac_kernel_set_default());
#ifdef MAMBAC_HAVE_CUDA
    printf("CUDA backend: built in (-d cuda)\n");
#else
    printf("CUDA backend: not built (no nvcc at configure time)\n");
#endif
    return CLI_OK;
}
