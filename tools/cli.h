/* cli.h — shared pieces of the mambac command-line front end: option parsing,
 * id lists, error reporting, and loading the model named by -m (or the default). */
#ifndef MAMBAC_CLI_H
#define MAMBAC_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "mambac.h"

/* Exit codes: 0 success, 1 runtime error (bad file, bad ids), 2 usage error. */
enum { CLI_OK = 0, CLI_ERR = 1, CLI_USAGE = 2 };

/* Prints "mambac: <message>" on one line of stderr; returns CLI_ERR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option cursor over argv. */
typedef struct cli_args {
    int argc, i;
    char **argv;
    const char *cmd;
} cli_args;

/* True when argv[i] is `name` (or one of two spellings); *val receives the next
 * argument when the option takes a value. Sets *bad on a missing value. */
int cli_opt(cli_args *a, const char *name, const char *alt, const char **val, int *bad);
int cli_flag(cli_args *a, const char *name);
int cli_parse_int(const char *s, long long lo, long long hi, long long *out);
int cli_parse_float(const char *s, double *out);
/* Processes C-style escapes in place (\n \r \t \a \0 \\ \' \" \xHH; others are kept as
 * written) and returns the new length (the text may now hold NUL bytes). */
size_t cli_unescape(char *s);
/* Whether the folder a file would be written into exists and is writable. */
int cli_folder_writable(const char *path);

/* "3,14,15" → malloc'd ids. Returns 0 and an error message on malformed input. */
int cli_parse_ids(const char *s, int32_t **ids, size_t *n, char *msg, size_t msglen);

/* Reads a whole file, or stdin for "-", into a malloc'd NUL-terminated buffer. */
int cli_read_input(const char *path, char **buf, size_t *len);
/* The documents at path: the .txt files of a folder in name order, or the file itself
 * (*is_dir, when not NULL, says which); *out holds n malloc'd paths (free each, then it). */
int cli_list_documents(const char *path, char ***out, int *n, int *is_dir);
/* Loads --tokenizer PATH, or else the model's own: the one inside a GGUF file, or
 * tokenizer.json in the model folder. info may be NULL (then path is required). */
int cli_load_tokenizer(const char *path, const mambac_model_info *info, mambac_tokenizer **tok);
/* The tokens of a command's prompt: --prompt-ids IDS parsed, or the text of -p TEXT
 * (escapes processed when `escape`; "-" reads stdin) or -f FILE through the tokenizer
 * (--tokenizer PATH or the model's). Exactly one of ids / text / file is non-NULL; *out
 * is malloc'd. */
int cli_prompt_ids(const char *ids, const char *text, const char *file, int escape, const char *tokenizer,
                   const mambac_model_info *info, int32_t **out, size_t *n);
/* The built-in template the model's tokenizer_config.json chat_template is recognised
 * as (beside a model folder), else "chatml" (saying so on stderr when the model has one
 * that is not recognised). */
const char *cli_model_chat_template(const mambac_model_info *info);
/* sampling_opts.c: -n, the sampler's options and --seed, shared by generate and chat. */
typedef struct cli_sampling {
    mambac_sampler_params sp;
    long long n;    /* -n: tokens to generate */
    int seed_given; /* --seed S with S >= 0 */
} cli_sampling;
void cli_sampling_init(cli_sampling *o, long long n);
/* One option at argv[a->i] if it is one of these (*matched); a usage error on a bad value. */
int cli_sampling_opt(cli_args *a, cli_sampling *o, int *bad, int *matched);
/* The values' ranges, before a model loads (exit 2 naming the flag). */
int cli_sampling_check(const cli_args *a, const cli_sampling *o);
/* Without --seed: a random seed into sp, printed on stderr when sampling. */
void cli_sampling_seed(const cli_sampling *o, mambac_sampler_params *sp);

/* "f32", "bf16", "q8_0", ... → dtype; 0 when unknown. */
int cli_parse_dtype(const char *s, mambac_dtype *out);

/* -d / --device BACKEND given anywhere on the command line ("cpu", "cuda", "cuda:N"), or
 * NULL: where cli_load_model loads models. MAMBAC_PRECISION=f32|bf16 picks a GPU
 * backend's precision. */
extern const char *cli_device;
/* --no-mmap given anywhere on the command line: weight files read into memory. */
extern int cli_no_mmap;
/* Loads -m PATH, or the built-in default model when path is NULL, on cli_device. */
int cli_load_model(const char *path, mambac_model **model);

/* Model + evaluation context + one state (optionally loaded from state_in). */
typedef struct cli_session {
    mambac_model *model;
    mambac_context *ctx;
    mambac_state *state;
    const mambac_model_info *info;
} cli_session;

/* threads: 0 = every CPU. */
int cli_session_open(cli_session *s, const char *model_path, int32_t max_ubatch, int32_t threads, const char *state_in);
/* Parses -t N (>= 1); returns 0 on a bad value. */
int cli_parse_threads(const char *v, int32_t *out);
/* Saves the state to state_out when not NULL (atomically). */
int cli_session_save(cli_session *s, const char *state_out);
void cli_session_close(cli_session *s);

/* Monotonic clock in seconds, for the timings commands print. */
double cli_now(void);

/* help.c: one command's options, defaults and an example (stdout); the build's version,
 * kernel sets usable on this CPU and whether CUDA is built in. */
int cli_help(const char *cmd);
int cli_version(void);

int cmd_chat(cli_args *a);
int cmd_info(cli_args *a);
int cmd_logits(cli_args *a);
int cmd_generate(cli_args *a);
int cmd_tokenize(cli_args *a);
int cmd_init(cli_args *a);
int cmd_bench(cli_args *a);
int cmd_detokenize(cli_args *a);
int cmd_quantize(cli_args *a);
int cmd_grad(cli_args *a);
int cmd_train(cli_args *a);
int cmd_prepare_data(cli_args *a);
int cmd_perplexity(cli_args *a);
int cmd_eval(cli_args *a);
int cmd_mqar(cli_args *a);
int cmd_serve(cli_args *a);

#endif
