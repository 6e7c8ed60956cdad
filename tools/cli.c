/* cli.c — helpers shared by the subcommands (see cli.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <cjson/cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>


#ifndef MAMBAC_DEFAULT_MODEL
#define MAMBAC_DEFAULT_MODEL "models/default"
#endif

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mambac: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_ERR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mambac %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'mambac help')\n");
    va_end(ap);
    return CLI_USAGE;
}

int cli_opt(cli_args *a, const char *name, const char *alt, const char **val, int *bad) {
    const char *arg = a->argv[a->i];
    if (strcmp(arg, name) != 0 && !(alt && strcmp(arg, alt) == 0)) return 0;
    if (a->i + 1 >= a->argc) {
        *bad = 1;
        cli_usage_error(a->cmd, "option %s needs a value", arg);
        return 1;
    }
    *val = a->argv[++a->i];
    return 1;
}

int cli_flag(cli_args *a, const char *name) { return strcmp(a->argv[a->i], name) == 0; }

int cli_parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cli_parse_float(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) return 0;
    *out = v;
    return 1;
}

int cli_folder_writable(const char *path) {
    char *dir = strdup(path);
    if (!dir) return 1; /* out of memory: the write itself will say */
    char *slash = strrchr(dir, '/');
    const char *d = !slash ? "." : slash == dir ? "/" : (*slash = 0, dir);
    const int ok = access(d, W_OK) == 0;
    free(dir);
    return ok;
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

size_t cli_unescape(char *s) {
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] != '\\' || !s[i + 1]) {
            s[o++] = s[i];
            continue;
        }
        const char c = s[++i];
        if (c == 'x' && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            s[o++] = (char)(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
            i += 2;
            continue;
        }
        switch (c) {
        case 'n': s[o++] = '\n'; break;
        case 'r': s[o++] = '\r'; break;
        case 't': s[o++] = '\t'; break;
        case 'a': s[o++] = '\a'; break;
        case '0': s[o++] = '\0'; break;
        case '\\': case '\'': case '"': s[o++] = c; break;
        default: s[o++] = '\\', s[o++] = c; break; /* not an escape: kept as written */
        }
    }
    s[o] = 0;
    return o;
}

int cli_parse_ids(const char *s, int32_t **ids, size_t *n, char *msg, size_t msglen) {
    *ids = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return snprintf(msg, msglen, "out of memory"), 0;
    size_t k = 0;
    const char *p = s;
    while (*p == ' ' || *p == '\t') p++; /* "72, 101" as printed by Python: spaces around ids */
    while (*p) {
        if (*p < '0' || *p > '9') {
            free(v);
            snprintf(msg, msglen, "token ids must be comma-separated non-negative integers (at '%.20s')", p);
            return 0;
        }
        long long x = 0;
        while (*p >= '0' && *p <= '9') {
            x = x * 10 + (*p++ - '0');
            if (x > INT32_MAX) {
                free(v);
                snprintf(msg, msglen, "token id too large");
                return 0;
            }
        }
        v[k++] = (int32_t)x;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == ',') {
            p++;
            while (*p == ' ' || *p == '\t') p++;
            if (!*p) break; /* tolerate one trailing comma */
        } else if (*p) {
            free(v);
            snprintf(msg, msglen, "unexpected character '%c' in token ids", *p);
            return 0;
        }
    }
    if (k == 0) {
        free(v);
        snprintf(msg, msglen, "empty prompt: give at least one token id");
        return 0;
    }
    *ids = v;
    *n = k;
    return 1;
}

const char *cli_device = NULL;
int cli_no_mmap = 0;

/* The model used without -m: $MAMBAC_MODEL; else the one installed beside this binary
 * (PREFIX/share/mambac/models/default for PREFIX/bin/mambac); else the source tree's the
 * build was configured with. */
static const char *default_model(void) {
    static char installed[4096];
    const char *env = getenv("MAMBAC_MODEL");
    if (env && *env) return env;
    const ssize_t n = readlink("/proc/self/exe", installed, sizeof installed - 64);
    if (n > 0) {
        installed[n] = 0;
        char *slash = strrchr(installed, '/');
        if (slash) {
            *slash = 0; /* PREFIX/bin */
            slash = strrchr(installed, '/');
            if (slash) {
                strcpy(slash, "/share/mambac/models/default");
                char cfg[4200];
                snprintf(cfg, sizeof cfg, "%s/config.json", installed);
                if (access(cfg, R_OK) == 0) return installed;
            }
        }
    }
    return MAMBAC_DEFAULT_MODEL;
}

int cli_load_model(const char *path, mambac_model **model) {
    mambac_error err;
    mambac_model_params mp = mambac_model_default_params();
    mp.backend = cli_device;
    mp.precision = getenv("MAMBAC_PRECISION");
    mp.no_mmap = cli_no_mmap;
    if (mambac_model_load_ex(path ? path : default_model(), &mp, model, &err) != MAMBAC_OK)
        return cli_error("%s", err.msg);
    return CLI_OK;
}

int cli_parse_threads(const char *v, int32_t *out) {
    long long t;
    if (!v) return 1;
    if (!cli_parse_int(v, 1, 1024, &t)) return 0;
    const int run = (int)mambac_threads_usable((int32_t)t);
    if (run != t) {
        fprintf(stderr, "mambac: -t %lld: this process may use %d CPU%s; using %d\n", t, run, run == 1 ? "" : "s", run);
        t = run;
    }
    *out = (int32_t)t;
    return 1;
}

int cli_session_open(cli_session *s, const char *model_path, int32_t max_ubatch, int32_t threads, const char *state_in) {
    memset(s, 0, sizeof *s);
    if (cli_load_model(model_path, &s->model) != CLI_OK) return CLI_ERR;
    s->info = mambac_model_get_info(s->model);
    mambac_error err;
    mambac_context_params cp = mambac_context_default_params();
    cp.max_ubatch = max_ubatch;
    cp.n_threads = threads;
    if (mambac_context_new(s->model, &cp, &s->ctx, &err) != MAMBAC_OK ||
        mambac_state_new(s->model, &s->state, &err) != MAMBAC_OK ||
        (state_in && mambac_state_load(s->state, state_in, &err) != MAMBAC_OK)) {
        cli_session_close(s);
        return cli_error("%s", err.msg);
    }
    return CLI_OK;
}

int cli_session_save(cli_session *s, const char *state_out) {
    mambac_error err;
    if (state_out && mambac_state_save(s->state, state_out, &err) != MAMBAC_OK) return cli_error("%s", err.msg);
    return CLI_OK;
}

void cli_session_close(cli_session *s) {
    mambac_state_free(s->state);
    mambac_context_free(s->ctx);
    mambac_model_free(s->model);
    memset(s, 0, sizeof *s);
}

int cli_read_input(const char *path, char **buf, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (size_t got = 1; b && got > 0;) {
        if (n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
        }
        got = fread(b + n, 1, cap - 1 - n, f);
        n += got;
    }
    int bad = !b || ferror(f);
    if (f != stdin) fclose(f);
    if (bad) {
        free(b);
        return cli_error("%s: read failed", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return CLI_OK;
}

int cli_load_tokenizer(const char *path, const mambac_model_info *info, mambac_tokenizer **tok) {
    mambac_error err;
    char buf[4096];
    if (!path && info && strcmp(info->format, "gguf") == 0) {
        if (mambac_tokenizer_load(info->path, tok, &err) == MAMBAC_OK) return CLI_OK;
        snprintf(buf, sizeof buf, "%s/tokenizer.json", info->dir);
        if (access(buf, R_OK) != 0) return cli_error("%s", err.msg); /* a look, not an open: never waits on a FIFO */
        path = buf;
    }
    if (!path) {
        const char *model_dir = info ? info->dir : ".";
        snprintf(buf, sizeof buf, "%s/tokenizer.json", model_dir);
        if (access(buf, R_OK) != 0)
            return cli_error("no tokenizer.json in %s: give one with --tokenizer PATH (or use --prompt-ids and --print-ids)", model_dir);
        path = buf;
    }
    if (mambac_tokenizer_load(path, tok, &err) != MAMBAC_OK) return cli_error("%s", err.msg);
    return CLI_OK;
}

int cli_prompt_ids(const char *ids, const char *text, const char *file, int escape, const char *tokenizer,
                   const mambac_model_info *info, int32_t **out, size_t *n) {
    char msg[160];
    if (ids) return cli_parse_ids(ids, out, n, msg, sizeof msg) ? CLI_OK : cli_error("%s", msg);
    char *buf;
    size_t len;
    if (text && strcmp(text, "-") != 0) {
        buf = strdup(text);
        if (!buf) return cli_error("out of memory");
        len = escape ? cli_unescape(buf) : strlen(buf);
    } else if (cli_read_input(text ? "-" : file, &buf, &len) != CLI_OK) {
        return CLI_ERR;
    }
    mambac_tokenizer *tok = NULL;
    mambac_error err;
    int rc = cli_load_tokenizer(tokenizer, info, &tok);
    if (rc == CLI_OK && mambac_tokenize(tok, buf, len, out, n, &err) != MAMBAC_OK) rc = cli_error("%s", err.msg);
    if (rc == CLI_OK && *n == 0) {
        mambac_free(*out);
        rc = cli_error("empty prompt: the text gave no tokens");
    }
    mambac_tokenizer_free(tok);
    free(buf);
    return rc;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *cli_model_chat_template(const mambac_model_info *info) {
    char path[4200];
    char *jinja = NULL;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", info->dir);
    char *text;
    size_t len;
    if (info->dir && info->dir[0] && access(path, R_OK) == 0 && cli_read_input(path, &text, &len) == CLI_OK) {
        cJSON *root = cJSON_ParseWithLength(text, len);
        const cJSON *t = root ? cJSON_GetObjectItemCaseSensitive(root, "chat_template") : NULL;
        if (cJSON_IsString(t)) jinja = strdup(t->valuestring);
        cJSON_Delete(root);
        free(text);
    }
    const char *tmpl = mambac_chat_template_name(jinja);
    if (jinja && !tmpl) fprintf(stderr, "mambac: the model's chat template is not one of chatml, zephyr, plain: chatml used\n");
    free(jinja);
    return tmpl ? tmpl : "chatml";
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cli_list_documents(const char *path, char ***out, int *n, int *is_dir) {
    struct stat st;
    if (stat(path, &st) != 0) return cli_error("%s: %s", path, strerror(errno));
    *n = 0, *out = NULL;
    if (is_dir) *is_dir = S_ISDIR(st.st_mode);
    if (!S_ISDIR(st.st_mode)) {
        if (!(*out = malloc(sizeof **out)) || !((*out)[0] = strdup(path))) return cli_error("out of memory");
        *n = 1;
        return CLI_OK;
    }
    DIR *d = opendir(path);
    if (!d) return cli_error("%s: %s", path, strerror(errno));
    int cap = 0, rc = CLI_OK;
    for (struct dirent *e; rc == CLI_OK && (e = readdir(d));) {
        const size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".txt") != 0) continue;
        if (*n == cap) {
            char **nl = realloc(*out, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *nl);
            if (!nl) rc = cli_error("out of memory");
            else *out = nl;
        }
        char *p = rc == CLI_OK ? malloc(strlen(path) + l + 2) : NULL;
        if (rc == CLI_OK && !p) rc = cli_error("out of memory");
        if (p) sprintf(p, "%s/%s", path, e->d_name), (*out)[(*n)++] = p;
    }
    closedir(d);
    if (rc == CLI_OK && *n == 0) rc = cli_error("%s: no .txt files", path);
    if (rc == CLI_OK) qsort(*out, (size_t)*n, sizeof **out, cmp_str);
    return rc;
}
