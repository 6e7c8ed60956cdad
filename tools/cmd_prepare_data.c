/* cmd_prepare_data.c — `mambac prepare-data`: a folder of .txt files (each a document), a
 * JSON-lines file of {"text": ...} documents, or one text file, tokenized once into a token
 * file the trainer maps (src/train/token_file.h). Held-out documents are chosen by a seeded
 * shuffle and kept whole; each document follows the end-of-text token when the tokenizer
 * has one. Documents are tokenized in parallel, a batch at a time, and written in order, so
 * memory holds one batch, not the corpus. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "train/checkpoint.h"
#include "train/token_file.h"
#include "train/trainer.h"
#include "train/unwrap.h"

#define BATCH_DOCS 256

typedef struct doc {
    char *text; /* this batch's documents' text */
    size_t len;
    int32_t *ids;
    size_t n;
    int val;
    mambac_status st;
    mambac_error err;
} doc;

typedef struct pool {
    mambac_tokenizer *tok;
    doc *docs;
    int n;
    atomic_int next;
} pool;

static void *tokenize_worker(void *arg) {
    pool *p = arg;
    for (int i; (i = atomic_fetch_add(&p->next, 1)) < p->n;) {
        doc *d = &p->docs[i];
        if (!p->tok) { /* bytes are tokens */
            d->ids = malloc((d->len ? d->len : 1) * sizeof *d->ids);
            if (!d->ids) {
                d->st = MAMBAC_ERR_NOMEM, snprintf(d->err.msg, sizeof d->err.msg, "out of memory");
                continue;
            }
            for (size_t k = 0; k < d->len; k++) d->ids[k] = (unsigned char)d->text[k];
            d->n = d->len;
        } else {
            d->st = mambac_tokenize(p->tok, d->text, d->len, &d->ids, &d->n, &d->err);
        }
    }
    return NULL;
}

/* The documents of a JSON-lines file: each line's "text" (line numbers in errors). */
static int jsonl_docs(const char *path, char *buf, char ***texts, size_t **lens, int *n) {
    int cap = 0, line_no = 0;
    *n = 0, *texts = NULL, *lens = NULL;
    for (char *line = buf; line && *line; line_no++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line) {
            cJSON *o = cJSON_Parse(line);
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
            if (!cJSON_IsString(t)) {
                cJSON_Delete(o);
                return cli_error("%s: line %d: not a JSON object with a \"text\" string", path, line_no + 1);
            }
            if (*n == cap) {
                cap = cap ? 2 * cap : 1024;
                char **nt = realloc(*texts, (size_t)cap * sizeof *nt);
                size_t *nlens = nt ? realloc(*lens, (size_t)cap * sizeof *nlens) : NULL;
                if (nt) *texts = nt;
                if (nlens) *lens = nlens;
                if (!nt || !nlens) return cJSON_Delete(o), cli_error("out of memory");
            }
            (*lens)[*n] = strlen(t->valuestring);
            if (!((*texts)[*n] = strdup(t->valuestring))) return cJSON_Delete(o), cli_error("out of memory");
            (*n)++;
            cJSON_Delete(o);
        }
        line = nl ? nl + 1 : NULL;
    }
    return *n ? CLI_OK : cli_error("%s: no documents", path);
}

int cmd_prepare_data(cli_args *a) {
    const char *data = NULL, *out = NULL, *tok_path = NULL, *model = NULL, *val_docs_s = NULL, *val_frac_s = NULL, *seed_s = NULL,
               *threads_s = NULL;
    int unwrap = 0;
    for (; a->i < a->argc; a->i++) {
        int bad = 0;
        if (cli_flag(a, "--unwrap")) {
            unwrap = 1;
        } else if (cli_opt(a, "--data", NULL, &data, &bad) || cli_opt(a, "-o", "--output", &out, &bad) ||
            cli_opt(a, "--tokenizer", NULL, &tok_path, &bad) || cli_opt(a, "-m", "--model", &model, &bad) ||
            cli_opt(a, "--val-docs", NULL, &val_docs_s, &bad) || cli_opt(a, "--val-frac", NULL, &val_frac_s, &bad) ||
            cli_opt(a, "--seed", NULL, &seed_s, &bad) || cli_opt(a, "-t", "--threads", &threads_s, &bad)) {
            if (bad) return CLI_USAGE;
        } else {
            return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
        }
    }
    if (!data || !out) return cli_usage_error(a->cmd, "--data PATH and -o FILE are required");
    if (tok_path && model) return cli_usage_error(a->cmd, "--tokenizer or -m (its tokenizer), not both");
    long long val_docs = -1, seed = 1337;
    double val_frac = 0.05;
    int32_t threads = 0;
    if (val_docs_s && !cli_parse_int(val_docs_s, 0, 1LL << 40, &val_docs)) return cli_usage_error(a->cmd, "--val-docs must be >= 0");
    if (val_frac_s && (!cli_parse_float(val_frac_s, &val_frac) || !(val_frac >= 0 && val_frac < 1)))
        return cli_usage_error(a->cmd, "--val-frac must be in [0, 1)");
    if (val_docs_s && val_frac_s) return cli_usage_error(a->cmd, "--val-docs or --val-frac, not both");
    if (seed_s && !cli_parse_int(seed_s, 0, INT64_MAX, &seed)) return cli_usage_error(a->cmd, "--seed must be >= 0");
    if (threads_s && !cli_parse_threads(threads_s, &threads)) return cli_usage_error(a->cmd, "-t must be >= 1");
    struct stat sb;
    if (stat(out, &sb) == 0) return cli_error("%s already exists (not replaced)", out);

    /* the tokenizer: given, the model's, or none (bytes) */
    char tbuf[4200];
    if (model) {
        snprintf(tbuf, sizeof tbuf, "%s/tokenizer.json", model);
        tok_path = tbuf;
    }
    mambac_tokenizer *tok = NULL;
    mambac_error err;
    uint64_t tok_fnv = 0;
    if (tok_path && (mambac_tokenizer_load(tok_path, &tok, &err) != MAMBAC_OK || mc_file_fnv(tok_path, &tok_fnv, &err) != MAMBAC_OK)) {
        mambac_tokenizer_free(tok);
        return cli_error("%s", err.msg);
    }
    const int32_t vocab = tok ? mambac_tokenizer_n_vocab(tok) : 256;
    const int32_t eot = tok ? mambac_tokenizer_find(tok, "<|endoftext|>") : -1;

    /* the documents */
    char **inputs = NULL, **texts = NULL, *jsonl = NULL;
    size_t *lens = NULL, jlen = 0;
    int n_inputs = 0, is_dir = 0, n_docs = 0;
    int rc = cli_list_documents(data, &inputs, &n_inputs, &is_dir);
    const size_t dl = strlen(data);
    const int is_jsonl = rc == CLI_OK && !is_dir && dl > 6 && strcmp(data + dl - 6, ".jsonl") == 0;
    if (rc == CLI_OK && is_jsonl) {
        rc = cli_read_input(data, &jsonl, &jlen);
        if (rc == CLI_OK) rc = jsonl_docs(data, jsonl, &texts, &lens, &n_docs);
        free(jsonl);
    } else if (rc == CLI_OK) {
        n_docs = n_inputs;
    }
    /* held out: a seeded shuffle's first documents; a lone text file: its last val_frac of tokens */
    const int single = rc == CLI_OK && !is_dir && !is_jsonl;
    if (single && val_docs_s) rc = cli_usage_error(a->cmd, "one text file is one document: its tail is held out (--val-frac)");
    unsigned char *is_val = rc == CLI_OK ? calloc((size_t)(n_docs ? n_docs : 1), 1) : NULL;
    int *order = rc == CLI_OK ? malloc((size_t)(n_docs ? n_docs : 1) * sizeof *order) : NULL;
    if (rc == CLI_OK && (!is_val || !order)) rc = cli_error("out of memory");
    long long n_val = 0;
    if (rc == CLI_OK) {
        n_val = val_docs >= 0 ? val_docs : (long long)(val_frac * n_docs + 0.999999);
        if (!single && n_docs >= 2 && n_val >= n_docs) rc = cli_error("%lld held-out documents of %d leave none to train on", n_val, n_docs);
        if (single || n_docs < 2) n_val = 0;
        uint64_t rng = (uint64_t)seed;
        for (int i = 0; i < n_docs; i++) order[i] = i;
        for (int i = n_docs - 1; i > 0; i--) { /* Fisher-Yates */
            const int j = (int)(mc_rng_next(&rng) % (uint64_t)(i + 1));
            const int t = order[i];
            order[i] = order[j], order[j] = t;
        }
        for (long long i = 0; i < n_val; i++) is_val[order[i]] = 1;
    }
    mc_token_writer w;
    int writer_open = 0;
    if (rc == CLI_OK) {
        if (mc_token_writer_open(&w, out, vocab, eot, tok_fnv, &err) != MAMBAC_OK) rc = cli_error("%s", err.msg);
        else writer_open = 1;
    }
    const int nt = (int)mambac_threads_usable(threads);
    doc *batch = rc == CLI_OK ? calloc(BATCH_DOCS, sizeof *batch) : NULL;
    if (rc == CLI_OK && !batch) rc = cli_error("out of memory");
    const double t0 = cli_now();
    long long bytes = 0, joined = 0;
    for (int b0 = 0; rc == CLI_OK && b0 < n_docs; b0 += BATCH_DOCS) {
        const int bn = n_docs - b0 < BATCH_DOCS ? n_docs - b0 : BATCH_DOCS;
        memset(batch, 0, (size_t)bn * sizeof *batch);
        for (int i = 0; rc == CLI_OK && i < bn; i++) {
            doc *d = &batch[i];
            d->val = is_val[b0 + i];
            if (texts) d->text = texts[b0 + i], d->len = lens[b0 + i], texts[b0 + i] = NULL;
            else rc = cli_read_input(inputs[b0 + i], &d->text, &d->len);
            if (rc == CLI_OK && unwrap) joined += (long long)mc_unwrap_text(d->text, d->len);
            bytes += (long long)d->len;
        }
        pool p = {tok, batch, rc == CLI_OK ? bn : 0, 0};
        pthread_t th[64];
        int started = 0;
        for (; started < nt - 1 && started < 64 && started < bn - 1; started++)
            if (pthread_create(&th[started], NULL, tokenize_worker, &p) != 0) break;
        tokenize_worker(&p);
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < bn; i++) {
            doc *d = &batch[i];
            if (rc == CLI_OK && d->st != MAMBAC_OK) rc = cli_error("%s: %s", texts ? data : inputs[b0 + i], d->err.msg);
            if (rc == CLI_OK && single) { /* one text: its tail held out, as the trainer splits a text file */
                const size_t cut = (size_t)((double)d->n * (1.0 - val_frac));
                if (mc_token_writer_add(&w, d->ids, cut, 0, &err) != MAMBAC_OK ||
                    (val_frac > 0 && mc_token_writer_add(&w, d->ids + cut, d->n - cut, 1, &err) != MAMBAC_OK))
                    rc = cli_error("%s", err.msg);
            } else if (rc == CLI_OK && mc_token_writer_add(&w, d->ids, d->n, d->val, &err) != MAMBAC_OK) {
                rc = cli_error("%s", err.msg);
            }
            free(d->text);
            if (tok) mambac_free(d->ids);
            else free(d->ids);
            d->ids = NULL;
        }
        if (isatty(2)) {
            const double dt = cli_now() - t0;
            fprintf(stderr, "\rprepare-data: %d / %d documents, %.1f MB/s   ", b0 + bn, n_docs, bytes / 1e6 / (dt > 0 ? dt : 1e-9));
        }
    }
    if (isatty(2) && n_docs) fputc('\n', stderr);
    if (rc == CLI_OK && w.n_train == 0) rc = cli_error("%s: no text to train on", data);
    if (rc == CLI_OK) {
        const long long tr = w.n_train, va = w.n_val, td = w.train_docs, vd = w.val_docs;
        if (mc_token_writer_finish(&w, &err) != MAMBAC_OK) rc = cli_error("%s", err.msg);
        else
            fprintf(stderr, "wrote %s: %lld training tokens (%lld documents), %lld held out (%lld documents), %d-byte tokens, vocabulary %d\n",
                    out, tr, td, va, vd, vocab <= 65536 ? 2 : 4, vocab);
        if (rc == CLI_OK && unwrap) fprintf(stderr, "unwrapped: %lld line breaks inside paragraphs became spaces\n", joined);
        writer_open = 0;
    }
    if (writer_open) mc_token_writer_abort(&w);
    for (int i = 0; texts && i < n_docs; i++) free(texts[i]);
    for (int i = 0; i < n_inputs; i++) free(inputs[i]);
    free(texts), free(lens), free(inputs), free(is_val), free(order), free(batch);
    mambac_tokenizer_free(tok);
    return rc;
}
