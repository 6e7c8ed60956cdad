/*
 * mambac.h — public C API of libmambac: Mamba (selective SSM) and Mamba-2 (SSD)
 * language models in plain C.
 *
 * Usage (error handling shortened):
 *
 *     mambac_error err;
 *     mambac_model *model;   // mambac_model_load_ex(path, &params, ...) picks "cpu" / "cuda:N"
 *     if (mambac_model_load("state-spaces/mamba-130m-hf", &model, &err) != MAMBAC_OK)
 *         fprintf(stderr, "%s\n", err.msg);
 *     mambac_context *ctx;   mambac_context_new(model, NULL, &ctx, &err);
 *     mambac_state   *st;    mambac_state_new(model, &st, &err);
 *     const mambac_model_info *info = mambac_model_get_info(model);
 *     float *logits = malloc(sizeof(float) * info->n_vocab_rows);
 *     int32_t ids[] = {3, 14, 15};
 *     mambac_eval(ctx, st, ids, 3, MAMBAC_LOGITS_LAST, logits, &err);   // prefill
 *     int32_t next = mambac_argmax(logits, info->vocab_size);
 *     mambac_eval(ctx, st, &next, 1, MAMBAC_LOGITS_LAST, logits, &err); // one step
 *     ...
 *     mambac_state_free(st); mambac_context_free(ctx); mambac_model_free(model);
 *
 * Objects and threads:
 *   mambac_model    immutable weights (mmapped where possible, or on the GPU) + configuration.
 *                   Safe to share between threads once loaded. Must outlive every context and
 *                   state made from it; mambac_model_get_info()'s struct and strings live as
 *                   long as the model.
 *   mambac_state    the fixed-size recurrent state of ONE sequence (conv window and
 *                   SSM state of every layer), in the memory of the model's backend. Cheap to
 *                   copy, save and restore: this replaces a transformer's KV cache and does
 *                   not grow with length. One call at a time may use a state.
 *   mambac_context  scratch memory and a thread pool (or a GPU stream) for evaluating tokens.
 *                   Use a context from one thread at a time; it may evaluate any state of its
 *                   model, many at once (mambac_eval_batch). Results do not depend on the
 *                   number of threads.
 *   mambac_tokenizer  immutable vocabulary plus a cache: every call may run from several
 *                   threads at once. mambac_token_bytes()'s pointer lives as long as it.
 *   mambac_sampler  one thread at a time.
 *
 * Errors: every fallible call returns a mambac_status and, when `err` is not NULL,
 * writes one line of text naming the file, tensor or field at fault. The library
 * never exits or prints on its own.
 */
#ifndef MAMBAC_H
#define MAMBAC_H

#include <stddef.h>
#include <stdint.h>

/* Every public function is marked MAMBAC_API: exported from libmambac.so (built with
 * -fvisibility=hidden, so nothing else is). */
#if defined(__GNUC__) || defined(__clang__)
#define MAMBAC_API __attribute__((visibility("default")))
#else
#define MAMBAC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mambac_status {
    MAMBAC_OK = 0,
    MAMBAC_ERR_IO,          /* open/read/write/mmap failed */
    MAMBAC_ERR_FORMAT,      /* a file is malformed or inconsistent */
    MAMBAC_ERR_UNSUPPORTED, /* well-formed but not something mambac handles */
    MAMBAC_ERR_INVALID_ARG, /* bad argument from the caller (token id out of range, ...) */
    MAMBAC_ERR_NOMEM,       /* allocation failed */
} mambac_status;

MAMBAC_API const char *mambac_status_str(mambac_status s);
/* "MAJOR.MINOR.PATCH" of the library. */
MAMBAC_API const char *mambac_version(void);
/* Whether this CPU can run the CPU kernel set of that name ("scalar", "avx2", "avx512",
 * "amx"), and the set contexts use by default. */
MAMBAC_API int mambac_kernel_set_usable(const char *name);
MAMBAC_API const char *mambac_kernel_set_default(void);
/* The threads a context given `requested` runs: at most the CPUs this process may use
 * (MAMBAC_OVERSUBSCRIBE=1 in the environment lifts that). */
MAMBAC_API int32_t mambac_threads_usable(int32_t requested);

#define MAMBAC_ERROR_MAX 512
typedef struct mambac_error {
    char msg[MAMBAC_ERROR_MAX]; /* NUL-terminated, one line, no trailing newline */
} mambac_error;

typedef enum mambac_arch {
    MAMBAC_ARCH_MAMBA1 = 1, /* selective SSM */
    MAMBAC_ARCH_MAMBA2 = 2, /* structured state space duality */
} mambac_arch;

typedef enum mambac_dtype {
    MAMBAC_DTYPE_F32 = 0,
    MAMBAC_DTYPE_F16 = 1,
    MAMBAC_DTYPE_BF16 = 2,
    /* Block-quantized (GGUF / ggml layouts; rows are whole blocks):             */
    MAMBAC_DTYPE_Q8_0 = 3, /* 32 values: f16 scale + 32 int8                    */
    MAMBAC_DTYPE_Q4_0 = 4, /* 32 values: f16 scale + 32 4-bit (offset 8)        */
    MAMBAC_DTYPE_Q4_K = 5, /* 256 values: f16 d, dmin, 8 6-bit scales/mins, 4-bit */
    MAMBAC_DTYPE_Q5_0 = 6, /* 32 values (read only: llama.cpp's q4_K fallback)  */
    MAMBAC_DTYPE_Q6_K = 7, /* 256 values (read only: llama.cpp's k-quant mixes) */
} mambac_dtype;

MAMBAC_API const char *mambac_dtype_name(mambac_dtype t);
MAMBAC_API const char *mambac_arch_name(mambac_arch a);

/* Everything a caller may want to know about a loaded model. */
typedef struct mambac_model_info {
    mambac_arch arch;
    int32_t d_model;
    int32_t n_layer;
    int32_t vocab_size;   /* real vocabulary (config); ids >= this are never sampled */
    int32_t n_vocab_rows; /* embedding / logit rows, padding included */
    int32_t d_inner;      /* expand * d_model */
    int32_t d_state;      /* N */
    int32_t d_conv;       /* causal conv kernel width */
    int32_t dt_rank;      /* Mamba-1 only */
    int32_t n_heads;      /* Mamba-2 only: H */
    int32_t head_dim;     /* Mamba-2 only: P */
    int32_t n_groups;     /* Mamba-2 only: G */
    int32_t chunk_size;   /* Mamba-2 only: SSD chunk length */
    int32_t proj_bias;    /* in_proj / out_proj have biases */
    int32_t conv_bias;
    int32_t gated_norm;   /* Mamba-2: gated RMSNorm present */
    int32_t norm_before_gate;
    int32_t tied_embeddings; /* lm_head is the embedding matrix */
    float norm_eps;
    float dt_min_limit, dt_max_limit; /* Mamba-2 time_step_limit (max may be +inf) */
    int32_t eos_token_id;  /* -1 when the config has none */
    mambac_dtype dtype;    /* storage type of the large matrices */
    int64_t n_params;      /* parameters, lm_head counted once when tied */
    int64_t weight_bytes;  /* bytes of parameter storage as stored in the files */
    const char *dir;       /* the checkpoint folder (where tokenizer.json is looked for) */
    const char *path;      /* what was loaded: the folder, its config.json, or a .gguf file */
    const char *layout;    /* "transformers", "mamba_ssm" or "gguf" */
    const char *format;    /* "safetensors", "pytorch" or "gguf" */
    int32_t bcdt_rms;      /* Mamba-1 with weightless RMS norms on dt, B and C after x_proj (FalconMamba) */
    float mixer_rms_eps;   /* their epsilon */
} mambac_model_info;

typedef struct mambac_model mambac_model;
typedef struct mambac_state mambac_state;
typedef struct mambac_context mambac_context;
typedef struct mambac_tokenizer mambac_tokenizer;

/* ---- model ---------------------------------------------------------------- */

/* Load a checkpoint folder, or a GGUF file (llama.cpp's mamba / mamba2 layout). Folders: transformers layout (config.json with model_type mamba or
 * mamba2 + model.safetensors or sharded safetensors with an index) or the original
 * mamba_ssm layout (config.json with d_model/n_layer/ssm_cfg + pytorch_model.bin or
 * model.safetensors). `path` may also name the config.json itself.
 * On success *out owns the model; free with mambac_model_free. */
MAMBAC_API mambac_status mambac_model_load(const char *path, mambac_model **out, mambac_error *err);
MAMBAC_API void mambac_model_free(mambac_model *model);

/* Where and how a model runs; chosen when it is loaded. */
typedef struct mambac_model_params {
    const char *backend; /* "cpu" (NULL: the default), "cuda" or "cuda:N" (builds with CUDA) */
    int32_t repack;      /* CPU: -1 = where the default kernels read it faster (MAMBAC_REPACK=0 in the
                          * environment turns that off), 0 = keep the file's layout, 1 = always repack
                          * q4_0 / q8_0 16 rows at a time */
    const char *precision; /* CUDA: "f32" (NULL: exact float32 products) or "bf16" (tensor-core
                            * products of bf16 operands, float32 accumulate); ignored on the CPU */
    int32_t no_mmap;       /* 1: read weight files into memory instead of mapping them (a file
                            * truncated or rewritten in place while mapped kills the process
                            * with SIGBUS; read, it cannot), at the cost of loading time and
                            * memory the page cache would share */
} mambac_model_params;

MAMBAC_API mambac_model_params mambac_model_default_params(void);
/* mambac_model_load with parameters (params NULL: the defaults). States made for this model
 * live where the backend keeps them (device memory for CUDA); every state call works the
 * same on any backend. */
MAMBAC_API mambac_status mambac_model_load_ex(const char *path, const mambac_model_params *params, mambac_model **out,
                                   mambac_error *err);
/* The backend the model runs on ("cpu", "cuda:0"). Lives as long as the model. */
MAMBAC_API const char *mambac_model_backend(const mambac_model *model);

/* Writes the model as a GGUF file in llama.cpp's layout (atomically): large matrices
 * in `type` (f32, f16, bf16, q8_0, q4_0, q4_K; rows that are not whole blocks fall back
 * to q8_0, else f16), small SSM parameters in f32, and the tokenizer.json of the
 * model's folder, when there is one, embedded. */
MAMBAC_API mambac_status mambac_model_write_gguf(const mambac_model *model, const char *path, mambac_dtype type, mambac_error *err);
/* The same, calling progress (when not NULL) after each tensor written: done of total,
 * and the tensor's GGUF name. */
MAMBAC_API mambac_status mambac_model_write_gguf_ex(const mambac_model *model, const char *path, mambac_dtype type,
                                                    void (*progress)(void *user, size_t done, size_t total, const char *name),
                                                    void *user, mambac_error *err);
MAMBAC_API const mambac_model_info *mambac_model_get_info(const mambac_model *model);

/* ---- random initialization (benchmarks, training) ----------------------------- */

typedef struct mambac_init_params {
    mambac_arch arch;
    int32_t d_model, n_layer, vocab_size, d_state, d_conv, expand;
    int32_t dt_rank;                       /* Mamba-1; 0 = "auto" (ceil(d_model / 16)) */
    int32_t head_dim, n_groups, chunk_size; /* Mamba-2 */
    mambac_dtype dtype;                    /* of the large matrices; small SSM parameters stay f32 */
    uint64_t seed;
} mambac_init_params;

/* Defaults of a released checkpoint of that architecture (130m sizes). */
MAMBAC_API mambac_init_params mambac_init_default_params(mambac_arch arch);
/* Shapes of a released checkpoint: mamba-130m ... mamba-2.8b, mamba2-130m ... mamba2-2.7b. */
MAMBAC_API mambac_status mambac_init_preset(const char *name, mambac_init_params *out, mambac_error *err);
/* Name of preset i, or NULL past the last. */
MAMBAC_API const char *mambac_preset_name(int i);
/* Writes a randomly initialized model (mamba_ssm's init) to a new folder `dir`
 * (config.json + model.safetensors, transformers layout), atomically. */
MAMBAC_API mambac_status mambac_model_write_init(const mambac_init_params *p, const char *dir, mambac_error *err);

/* ---- training (CPU, or a GPU in a CUDA build) -------------------------------- */

/* What `mambac train` takes: a new model (init, from the architecture's small defaults), an
 * existing folder to fine-tune (init_from), or a checkpoint folder to resume (resume: then
 * data, out and init_from stay NULL and the run continues with the checkpoint's settings). */
typedef struct mambac_train_params {
    mambac_init_params init;  /* a new model's shapes */
    int32_t init_set;         /* 1: init was chosen by the caller (checked against a resumed checkpoint) */
    const char *init_from, *resume;
    const char *data;         /* a text file */
    const char *tokenizer;    /* a tokenizer.json (NULL: bytes are tokens) */
    const char *out;          /* the checkpoint folder written */
    int64_t batch, seq, steps, warmup, accum, eval_every, eval_windows, save_every;
    int64_t stop_at;          /* > 0: save and stop at this step (the schedule still runs to steps) */
    float lr, min_lr, weight_decay, clip, beta1, beta2;
    double val_frac, time_limit; /* time_limit > 0: seconds, then save and stop */
    uint64_t seed;
    int32_t threads;          /* 0: every CPU this process may use */
    const char *device;       /* NULL or "cpu"; "cuda" / "cuda:N": the steps on that GPU (a CUDA build) */
    const char *precision;    /* on a GPU: NULL or "f32" (exact), "tf32", "bf16" (tensor-core products) */
} mambac_train_params;

/* After every optimizer step: val_loss is NaN on steps without an evaluation. */
typedef struct mambac_train_progress {
    int64_t step, steps, tokens;
    double train_loss, val_loss;
    double lr, grad_norm, tok_s, elapsed, eta;
} mambac_train_progress;

/* Return nonzero to stop: the run saves a checkpoint after this step and returns MAMBAC_OK
 * (continue it later with resume). */
typedef int (*mambac_train_progress_fn)(void *user, const mambac_train_progress *p);

/* The defaults of `mambac train`: a small model of that architecture for a CPU (d_model
 * 128, 4 layers), batch 16 x 256 tokens, steps 0 (2000 for a new run, the checkpoint's on
 * resume), AdamW 3e-3 with warmup and cosine. */
MAMBAC_API mambac_train_params mambac_train_default_params(mambac_arch arch);
/* Runs the training described by p (progress may be NULL); checkpoints and log.csv go to
 * the out (or resume) folder. */
MAMBAC_API mambac_status mambac_train(const mambac_train_params *p, mambac_train_progress_fn progress, void *user,
                                      mambac_error *err);

/* ---- state ---------------------------------------------------------------- */

MAMBAC_API mambac_status mambac_state_new(const mambac_model *model, mambac_state **out, mambac_error *err);
MAMBAC_API void mambac_state_free(mambac_state *state);
/* Back to the empty-sequence state (all zeros). */
MAMBAC_API void mambac_state_reset(mambac_state *state);
/* dst and src must belong to models of identical shape. */
MAMBAC_API mambac_status mambac_state_copy(mambac_state *dst, const mambac_state *src, mambac_error *err);
/* Tokens consumed since the last reset (or as stored in a loaded file). */
MAMBAC_API int64_t mambac_state_n_tokens(const mambac_state *state);
/* Bytes of recurrent state per sequence (conv windows + SSM states, float32). */
MAMBAC_API size_t mambac_state_size_bytes(const mambac_model *model);
/* Save to a file (atomically: written to a temporary name, then renamed). */
MAMBAC_API mambac_status mambac_state_save(const mambac_state *state, const char *path, mambac_error *err);
/* Load a file written by mambac_state_save for a model of the same shape. On error
 * the state is left unchanged. */
MAMBAC_API mambac_status mambac_state_load(mambac_state *state, const char *path, mambac_error *err);
/* The state file's bytes in memory: mambac_state_to_bytes writes mambac_state_file_bytes(model)
 * bytes into buf (at least that many); mambac_state_from_bytes reads them back (same checks
 * as mambac_state_load; on error the state is unchanged). */
MAMBAC_API size_t mambac_state_file_bytes(const mambac_model *model);
MAMBAC_API mambac_status mambac_state_to_bytes(const mambac_state *state, void *buf, size_t size, mambac_error *err);
MAMBAC_API mambac_status mambac_state_from_bytes(mambac_state *state, const void *buf, size_t size, mambac_error *err);

/* ---- evaluation ----------------------------------------------------------- */

typedef struct mambac_context_params {
    int32_t max_ubatch; /* tokens evaluated per internal piece; bounds scratch memory */
    int32_t n_threads;  /* 0 = every CPU this process may use; more is reduced to that (threads
                         * beyond the CPUs stall every parallel loop) */
    const char *isa;    /* kernel set: NULL = the best this CPU runs; "scalar", "avx2", "avx512" */
} mambac_context_params;

MAMBAC_API mambac_context_params mambac_context_default_params(void);
/* params may be NULL for the defaults. */
MAMBAC_API mambac_status mambac_context_new(const mambac_model *model, const mambac_context_params *params,
                                 mambac_context **out, mambac_error *err);
MAMBAC_API void mambac_context_free(mambac_context *ctx);
/* The kernel set and thread count a context runs with. */
MAMBAC_API const char *mambac_context_isa(const mambac_context *ctx);
MAMBAC_API int32_t mambac_context_threads(const mambac_context *ctx);

typedef enum mambac_logits_mode {
    MAMBAC_LOGITS_NONE = 0, /* only advance the state */
    MAMBAC_LOGITS_LAST = 1, /* logits of the last token: n_vocab_rows floats */
    MAMBAC_LOGITS_ALL = 2,  /* logits after every token: n_tokens * n_vocab_rows floats */
    MAMBAC_LOGITS_GREEDY = 3, /* mambac_eval_batch only: no logits, the argmax of the last token's
                               * (over the real vocabulary, first on ties) into *token: computed
                               * where the model runs, so a GPU sends back one id */
} mambac_logits_mode;

/* Feed n_tokens ids to the sequence whose state is `state`, continuing from it.
 * n_tokens == 1 runs the recurrent step; more tokens run the parallel (prefill) form
 * in pieces of at most max_ubatch. Both give the same numbers up to rounding.
 * Ids must be in [0, n_vocab_rows). On error the state is unchanged. */
MAMBAC_API mambac_status mambac_eval(mambac_context *ctx, mambac_state *state, const int32_t *ids,
                          size_t n_tokens, mambac_logits_mode mode, float *logits,
                          mambac_error *err);

/* One sequence of a batch: its state, the tokens to feed it (1 for a decode step, many
 * for a prompt or a piece of one) and what it wants back (NONE; LAST: n_vocab_rows floats
 * in logits; ALL: n_tokens * n_vocab_rows floats; GREEDY: one id in *token). */
typedef struct mambac_seq {
    mambac_state *state;
    const int32_t *ids;
    size_t n_tokens;
    mambac_logits_mode mode;
    float *logits;
    int32_t *token; /* GREEDY only */
} mambac_seq;

/* Feeds every sequence its tokens, together: rows of all sequences are packed into pieces
 * of at most max_ubatch tokens, the matrix products of a piece read each weight once for
 * all of its sequences, and the conv / scan / SSD run per sequence on its own state.
 * Prompts and decode steps of different sequences may share one call (continuous
 * batching). Each sequence's results equal mambac_eval's on it alone up to rounding (the
 * products may take another kernel when more rows share them). Everything is checked
 * before anything is computed: on an argument error no state changes. A state may appear
 * once per call. mambac_eval is this with one sequence. */
MAMBAC_API mambac_status mambac_eval_batch(mambac_context *ctx, const mambac_seq *seqs, size_t n_seqs, mambac_error *err);

/* One continuation's score: the sum of its tokens' log-probabilities (natural log) after
 * the context, how many tokens it has, and whether each was the most likely token. */
typedef struct mambac_loglik {
    double logprob;
    int32_t n_tokens;
    int32_t greedy;
} mambac_loglik;

/* lm-evaluation-harness's `loglikelihood` of each of n_conts continuations after one
 * context, tokenized and scored as its transformers backend does (trailing whitespace of
 * the context moves to the continuations; a continuation's tokens are those of
 * context + continuation past the context's; an empty context is the end-of-text token;
 * log-softmax over the config's vocabulary). The context is evaluated once and each
 * continuation from a copy of its state. Uses ctx (not thread-safe with other calls on
 * it) and tok; out[i] for continuation i. */
MAMBAC_API mambac_status mambac_loglikelihood(mambac_context *ctx, mambac_tokenizer *tok, const char *context,
                                              size_t context_len, const char *const *conts, const size_t *cont_lens,
                                              size_t n_conts, mambac_loglik *out, mambac_error *err);
/* Many such requests at once: the contexts evaluated together, then every continuation of
 * every request together (mambac_eval_batch twice). Each sequence needs a state while the
 * call runs: 1 + n_conts states a request (mambac_state_size_bytes each). Results equal
 * mambac_loglikelihood's request by request up to rounding. */
typedef struct mambac_ll_request {
    const char *context;
    size_t context_len;
    const char *const *conts;
    const size_t *cont_lens;
    size_t n_conts;
    mambac_loglik *out; /* n_conts results */
} mambac_ll_request;
MAMBAC_API mambac_status mambac_loglikelihood_batch(mambac_context *ctx, mambac_tokenizer *tok,
                                                    const mambac_ll_request *reqs, size_t n_reqs, mambac_error *err);

/* Index of the largest of logits[0..n) (first one on ties). */
MAMBAC_API int32_t mambac_argmax(const float *logits, int32_t n);

/* ---- sampling --------------------------------------------------------------- */

/* Sampler parameters. temp == 0 is greedy (argmax over the real vocabulary). */
typedef struct mambac_sampler_params {
    float temp;
    int32_t top_k;        /* 0 = off */
    float top_p;          /* 1 = off */
    float min_p;          /* 0 = off */
    float repeat_penalty; /* 1 = off */
    int32_t repeat_last_n;/* window of recent tokens the penalty looks at */
    uint64_t seed;
} mambac_sampler_params;

typedef struct mambac_sampler mambac_sampler;

MAMBAC_API mambac_sampler_params mambac_sampler_default_params(void);
/* n_vocab: the real vocabulary; padded logit columns beyond it are never chosen. */
MAMBAC_API mambac_status mambac_sampler_new(const mambac_sampler_params *params, int32_t n_vocab,
                                 mambac_sampler **out, mambac_error *err);
MAMBAC_API void mambac_sampler_free(mambac_sampler *s);
/* Choose the next id from one row of logits (at least n_vocab floats; not modified). */
MAMBAC_API int32_t mambac_sampler_sample(mambac_sampler *s, const float *logits);
/* Tell the sampler which id was emitted (feeds the repetition penalty window). */
MAMBAC_API void mambac_sampler_accept(mambac_sampler *s, int32_t id);

/* ---- generation ------------------------------------------------------------- */

typedef enum mambac_finish {
    MAMBAC_FINISH_LENGTH = 0,   /* max_tokens reached */
    MAMBAC_FINISH_EOS = 1,      /* the model chose its end-of-sequence token */
    MAMBAC_FINISH_STOP = 2,     /* a stop string appeared (it is not in the text) */
    MAMBAC_FINISH_CALLBACK = 3, /* the callback asked to stop */
} mambac_finish;

typedef struct mambac_generate_params {
    mambac_sampler_params sampling;
    int64_t max_tokens;        /* tokens to generate at most (>= 0) */
    int32_t ignore_eos;        /* keep going past the end-of-sequence token */
    const char *const *stop;   /* stop strings (needs a tokenizer), n_stop of them */
    size_t n_stop;
    int32_t feed_last;         /* feed the last generated token too, so the state holds every
                                * token produced (to save it, or continue later) */
    /* Called while a long prompt is read (NULL: not called): the prompt is then fed in
     * pieces of MAMBAC_PROGRESS_PIECE tokens, done / total after each. */
    void (*on_prompt_progress)(void *user, int64_t done, int64_t total);
    void *progress_user;
} mambac_generate_params;
#define MAMBAC_PROGRESS_PIECE 4096

/* Defaults: the sampler's defaults, max_tokens 128, no stop strings, feed_last 0. */
MAMBAC_API mambac_generate_params mambac_generate_default_params(void);

/* Called once a generated token is chosen: `token`, and the text that became printable
 * with it (len may be 0: a character still incomplete, or text that may start a stop
 * string); at the end once more with token -1 and what was held back. Text is never part
 * of a stop string. Return nonzero to stop. */
typedef int (*mambac_piece_fn)(void *user, int32_t token, const char *text, size_t len);

typedef struct mambac_generate_result {
    int64_t n_prompt, n_generated;
    double prefill_seconds, decode_seconds; /* wall time of the prompt and of the decode steps */
    int64_t n_decoded;                      /* decode steps run (tokens fed after the prompt) */
    mambac_finish finish;
} mambac_generate_result;

/* Feeds the prompt (n_prompt >= 1 ids) to `state`, then samples and feeds one token at a
 * time, streaming each through on_piece (may be NULL). tok may be NULL (no text: pieces
 * are empty; stop strings need it); with a tokenizer, ids it lacks are never sampled,
 * and its "<|endoftext|>" is the end token when the config names none. Padded rows are
 * never sampled. The state ends after the prompt and every generated token fed (the last
 * one only with feed_last: then also when a stop string or the callback ended the run;
 * never the end-of-sequence token). Same seed, same tokens. */
MAMBAC_API mambac_status mambac_generate(mambac_context *ctx, mambac_state *state, const mambac_tokenizer *tok,
                                         const int32_t *prompt, size_t n_prompt, const mambac_generate_params *params,
                                         mambac_piece_fn on_piece, void *user, mambac_generate_result *result,
                                         mambac_error *err);

/* ---- chat templates ------------------------------------------------------------ */

/* A conversation's messages as the text a chat model was trained on. Built-in templates:
 * "chatml" (<|im_start|>role ... <|im_end|>), "zephyr" (<|user|> ... </s>) and "plain"
 * ("User: ...", one line an answer). A longer conversation's text extends the shorter
 * one's, so a state is fed only what new messages add. Thread safety: pure functions. */
typedef struct mambac_chat_message {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content;
} mambac_chat_message;

/* The built-in template of that name, or the one a model's Jinja chat_template
 * (tokenizer_config.json) is recognised as by the markers it writes: its name (static
 * storage), or NULL. */
MAMBAC_API const char *mambac_chat_template_name(const char *name_or_jinja);
/* The messages' text, then the assistant's header when add_assistant: a new string (free
 * with mambac_free). */
MAMBAC_API mambac_status mambac_chat_apply(const char *tmpl, const mambac_chat_message *msgs, size_t n, int add_assistant,
                                           char **out, size_t *len, mambac_error *err);
/* What ends an assistant's turn (a stop string for its answer), and what the template
 * writes after it before the next message; NULL for an unknown template. */
MAMBAC_API const char *mambac_chat_end_of_turn(const char *tmpl);
MAMBAC_API const char *mambac_chat_after_turn(const char *tmpl);

/* ---- tokenizer -------------------------------------------------------------- */

/* A byte-level BPE tokenizer read from an HF tokenizer.json (GPT-2 / GPT-NeoX style:
 * NFC normalizer, ByteLevel pre-tokenizer and decoder, added tokens). Encoding gives
 * the same ids as HF tokenizers. Thread safety: every call may run from several threads
 * at once on one handle (one mambac_tokenize at a time uses the handle's cache of recent
 * words, concurrent ones a cache of their own for the call); only free is exclusive. */
/* path: a tokenizer.json, a folder holding one, or a GGUF file with a tokenizer. */
MAMBAC_API mambac_status mambac_tokenizer_load(const char *path, mambac_tokenizer **out, mambac_error *err);
MAMBAC_API void mambac_tokenizer_free(mambac_tokenizer *tok);
/* 1 + the largest id (vocabulary and added tokens). */
MAMBAC_API int32_t mambac_tokenizer_n_vocab(const mambac_tokenizer *tok);
/* Text (any bytes; invalid UTF-8 is encoded byte by byte) → ids in a new array that
 * the caller frees with mambac_free. */
MAMBAC_API mambac_status mambac_tokenize(mambac_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n_ids,
                              mambac_error *err);
/* The bytes one id stands for (not NUL-terminated; NULL for an unknown id). Tokens may
 * hold part of a UTF-8 character: concatenate before printing. */
MAMBAC_API const char *mambac_token_bytes(const mambac_tokenizer *tok, int32_t id, size_t *len);
MAMBAC_API int mambac_token_is_special(const mambac_tokenizer *tok, int32_t id);
/* Id of an added token or vocabulary entry given as text ("<|endoftext|>"), or -1. */
MAMBAC_API int32_t mambac_tokenizer_find(const mambac_tokenizer *tok, const char *text);
/* Ids → the concatenated bytes, in a new NUL-terminated buffer (free with mambac_free). */
MAMBAC_API mambac_status mambac_detokenize(const mambac_tokenizer *tok, const int32_t *ids, size_t n, char **out, size_t *len,
                                mambac_error *err);
/* Writes the tokenizer.json of a byte-level model (ids 0..255 are the bytes 0..255, no
 * merges), readable by mambac and by HF tokenizers / transformers. Atomic. */
MAMBAC_API mambac_status mambac_tokenizer_write_bytelevel(const char *path, mambac_error *err);

/* Length of the longest prefix of s[0..n) that does not end inside an incomplete UTF-8
 * character (invalid bytes are not held back): what a stream can print now. */
MAMBAC_API size_t mambac_utf8_complete_prefix(const char *s, size_t n);

/* sizeof the public struct of that name ("mambac_model_info", "mambac_seq", ...), 0 for
 * a name it does not know: lets bindings that mirror these structs (the Python package)
 * refuse a library they do not match. */
MAMBAC_API size_t mambac_sizeof(const char *type_name);

/* Frees memory returned by mambac_tokenize / mambac_detokenize. */
MAMBAC_API void mambac_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* MAMBAC_H */
