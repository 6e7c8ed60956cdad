/* eval_tasks.c — `mambac eval`'s tasks: lm-evaluation-harness's prompts (its task YAMLs and
 * utils.py, v0.4) rebuilt from the fields of the staged files (../shared/data/eval), and the
 * JSONL item format of a task file (docs/EVALUATION.md). */
#define _POSIX_C_SOURCE 200809L
#include "eval_tasks.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "cli.h"

static const task_def TASKS[] = {
    {"lambada_openai", "lambada/lambada_test.jsonl", K_LOGLIK, NULL, P_NONE, 0},
    {"piqa", "piqa/valid.jsonl", K_CHOICE, NULL, P_NONE, 1},
    {"arc_easy", "mosaic_icl/arc_easy.jsonl", K_CHOICE, "\nAnswer:", P_NONE, 1},
    {"arc_challenge", "mosaic_icl/arc_challenge.jsonl", K_CHOICE, "\nAnswer:", P_NONE, 1},
    {"openbookqa", "mosaic_icl/openbook_qa.jsonl", K_CHOICE, "", P_NONE, 1},
    {"winogrande", "mosaic_icl/winogrande.jsonl", K_PARTIAL, NULL, P_NONE, 0},
    {"wsc273", "mosaic_icl/winograd_wsc.jsonl", K_PARTIAL, NULL, P_NONE, 0},
    {"copa", "mosaic_icl/copa.jsonl", K_CHOICE, NULL, P_COPA, 0},
    {"boolq", "mosaic_icl/boolq.jsonl", K_CHOICE, NULL, P_BOOLQ, 0},
    {"siqa", "mosaic_icl/siqa.jsonl", K_CHOICE, NULL, P_SIQA, 0},
    {"commonsense_qa", "mosaic_icl/commonsense_qa.jsonl", K_CHOICE, NULL, P_CSQA, 0},
    {"hellaswag", "hellaswag/hellaswag_val.jsonl", K_CHOICE, NULL, P_NONE, 1},
};
#define N_TASKS (sizeof TASKS / sizeof TASKS[0])

const task_def *eval_task_find(const char *name) {
    for (size_t k = 0; k < N_TASKS; k++)
        if (strcmp(TASKS[k].name, name) == 0) return &TASKS[k];
    return NULL;
}

const char *eval_task_names(void) {
    return "lambada_openai, piqa, arc_easy, arc_challenge, openbookqa, winogrande, wsc273, copa, boolq, siqa, "
           "commonsense_qa, hellaswag";
}

void eval_task_free(task *t) {
    for (int i = 0; i < t->n; i++) {
        item *it = &t->items[i];
        for (int k = 0; k < it->n_ctx; k++) free(it->ctx[k]);
        for (int k = 0; k < it->n_cont; k++) free(it->cont[k]);
        free(it->ctx), free(it->cont), free(it->chars), free(it->doc);
    }
    free(t->items);
}

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) memcpy(s, a, na), memcpy(s + na, b, nb + 1);
    return s;
}

static double utf8_chars(const char *s) {
    double n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static int ends_with(const char *s, const char *tail) {
    const size_t n = strlen(s), m = strlen(tail);
    return n >= m && memcmp(s + n - m, tail, m) == 0;
}

static const char *str_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- lm-eval's prompts from the staged files' queries ----------------------------------- */

/* The file's query as lm-eval's doc_to_text (NULL: the query is not of the task's form;
 * *why says how). SIQA's query lists its answers; they replace the letters as choices. */
static char *prep_query(task_prep p, const char *q, char ***answers, int *n_answers, const char **why) {
    *answers = NULL, *n_answers = 0;
    if (p == P_COPA) { /* "premise, therefore": lm-eval's premise[:-1] + " therefore" */
        const char *conn = ends_with(q, ", therefore") ? ", therefore" : ends_with(q, ", because") ? ", because" : NULL;
        if (!conn) return *why = "a COPA query ends with \", therefore\" or \", because\"", NULL;
        const size_t cut = strlen(q) - strlen(conn);
        char *s = malloc(cut + strlen(conn));
        if (s) memcpy(s, q, cut), strcpy(s + cut, conn + 1);
        return s;
    }
    if (p == P_BOOLQ) { /* "Passage: {passage}\nQuestion: {q}?": "{passage}\nQuestion: {q}?\nAnswer:" */
        if (strncmp(q, "Passage: ", 9) != 0) return *why = "a BoolQ query starts with \"Passage: \"", NULL;
        return join(q + 9, "\nAnswer:");
    }
    if (p == P_CSQA) { /* lm-eval lists the lettered answers without the file's "Choices:" line */
        const char *c = strstr(q, "\nChoices:\n");
        if (strncmp(q, "Question: ", 10) != 0 || !c) return *why = "a CommonsenseQA query is \"Question: ...\\nChoices:\\n...\"", NULL;
        char *s = malloc(strlen(q) + 1);
        if (s) memcpy(s, q, (size_t)(c - q)), strcpy(s + (c - q), c + 9);
        return s;
    }
    if (p == P_SIQA) { /* "Context: C\nQuestion: Q\nChoices:\nA. a\nB. b\nAnswer:": "Q: C Q\nA:" -> a, b */
        const char *qs = strstr(q, "\nQuestion: "), *cs = qs ? strstr(qs, "\nChoices:\n") : NULL;
        if (strncmp(q, "Context: ", 9) != 0 || !qs || !cs || !ends_with(q, "\nAnswer:"))
            return *why = "a SIQA query is \"Context: ...\\nQuestion: ...\\nChoices:\\n...\\nAnswer:\"", NULL;
        const char *end = q + strlen(q) - strlen("\nAnswer:");
        int n = 0;
        for (const char *l = cs + 10; l < end; n++) {
            const char *nl = memchr(l, '\n', (size_t)(end - l));
            l = nl ? nl + 1 : end;
        }
        char **a = n > 0 && n <= 64 ? calloc((size_t)n, sizeof *a) : NULL;
        if (!a) return *why = n > 0 && n <= 64 ? "out of memory" : "a SIQA query lists 1 to 64 answers", NULL;
        int k = 0;
        for (const char *l = cs + 10; l < end && k < n; k++) {
            const char *nl = memchr(l, '\n', (size_t)(end - l)), *le = nl ? nl : end;
            if (le - l < 3 || l[0] != 'A' + k || l[1] != '.' || l[2] != ' ') break; /* "A. answer" */
            if (!(a[k] = strndup(l + 3, (size_t)(le - l - 3)))) break;
            l = nl ? nl + 1 : end;
        }
        char *s = NULL;
        if (k == n) {
            const size_t nc = (size_t)(qs - (q + 9)), nq = (size_t)(cs - (qs + 11));
            if ((s = malloc(3 + nc + 1 + nq + 3 + 1))) sprintf(s, "Q: %.*s %.*s\nA:", (int)nc, q + 9, (int)nq, qs + 11);
        }
        if (!s) {
            for (int i = 0; i < n; i++) free(a[i]);
            free(a);
            return *why = k == n ? "out of memory" : "a SIQA answer line is not \"A. ...\", \"B. ...\", ...", NULL;
        }
        *answers = a, *n_answers = n;
        return s;
    }
    return strdup(q);
}

/* HellaSwag's preprocess (lm-eval tasks/hellaswag/utils.py): strip, " [title]" -> ". ", every
 * "[...]" (not across a newline) removed, then "  " -> " " in one left-to-right pass. */
static char *hellaswag_preprocess(const char *in) {
    while (*in == ' ' || (*in >= '\t' && *in <= '\r') || (*in >= 0x1c && *in <= 0x1f)) in++;
    size_t n = strlen(in);
    while (n && (in[n - 1] == ' ' || (in[n - 1] >= '\t' && in[n - 1] <= '\r') || (in[n - 1] >= 0x1c && in[n - 1] <= 0x1f))) n--;
    char *a = malloc(2 * n + 1), *b = malloc(2 * n + 1);
    if (!a || !b) return free(a), free(b), NULL;
    size_t m = 0;
    for (size_t i = 0; i < n;) { /* " [title]" -> ". " */
        if (n - i >= 8 && memcmp(in + i, " [title]", 8) == 0) a[m++] = '.', a[m++] = ' ', i += 8;
        else a[m++] = in[i++];
    }
    size_t k = 0;
    for (size_t i = 0; i < m;) { /* re.sub(r"\[.*?\]", "") */
        if (a[i] == '[') {
            size_t j = i + 1;
            while (j < m && a[j] != ']' && a[j] != '\n') j++;
            if (j < m && a[j] == ']') {
                i = j + 1;
                continue;
            }
        }
        b[k++] = a[i++];
    }
    m = 0;
    for (size_t i = 0; i < k;) { /* .replace("  ", " ") */
        if (i + 1 < k && b[i] == ' ' && b[i + 1] == ' ') a[m++] = ' ', i += 2;
        else a[m++] = b[i++];
    }
    a[m] = 0;
    free(b);
    return a;
}

/* Python's str.capitalize: the first character in title case, the rest in lower case. */
static char *py_capitalize(const char *s) {
    const size_t n = strlen(s);
    char *o = malloc(4 * n + 1);
    if (!o) return NULL;
    size_t m = 0;
    for (utf8proc_ssize_t i = 0, first = 1; i < (utf8proc_ssize_t)n; first = 0) {
        utf8proc_int32_t c;
        const utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)n - i, &c);
        if (l <= 0) { /* an invalid byte stays as it is */
            o[m++] = s[i++];
            continue;
        }
        m += (size_t)utf8proc_encode_char(first ? utf8proc_totitle(c) : utf8proc_tolower(c), (utf8proc_uint8_t *)o + m);
        i += l;
    }
    o[m] = 0;
    return o;
}

/* ---- items ------------------------------------------------------------------------------ */

static int alloc_item(item *it, int n_ctx, int n_cont, int chars) {
    it->n_ctx = n_ctx, it->n_cont = n_cont;
    it->ctx = calloc((size_t)n_ctx, sizeof *it->ctx), it->cont = calloc((size_t)n_cont, sizeof *it->cont);
    if (chars) it->chars = calloc((size_t)n_cont, sizeof *it->chars);
    return it->ctx && it->cont && (!chars || it->chars);
}

/* HellaSwag (Rowan/hellaswag's fields): activity_label + ": " + ctx_a + " " + ctx_b.capitalize(),
 * the endings, the label (a string or a number). */
static int parse_hellaswag(const cJSON *o, item *it, const char **why) {
    const char *act = str_field(o, "activity_label"), *ca = str_field(o, "ctx_a"), *cb = str_field(o, "ctx_b");
    const cJSON *endings = cJSON_GetObjectItemCaseSensitive(o, "endings"), *label = cJSON_GetObjectItemCaseSensitive(o, "label");
    const int n = cJSON_GetArraySize(endings);
    if (n < 1 || n > 64) return *why = "'endings' must hold 1 to 64 strings", 0;
    double g = cJSON_IsNumber(label) ? label->valuedouble : cJSON_IsString(label) ? strtod(label->valuestring, NULL) : -1;
    if (!(g >= 0 && g < n)) return *why = "'label' is not the index of an ending", 0;
    if (!alloc_item(it, 1, n, 1)) return *why = "out of memory", 0;
    it->gold = (int)g;
    char *cap = py_capitalize(cb), *a = cap ? join(act, ": ") : NULL, *b = a ? join(a, ca) : NULL, *c = b ? join(b, " ") : NULL,
         *d = c ? join(c, cap) : NULL;
    it->ctx[0] = d ? hellaswag_preprocess(d) : NULL;
    free(cap), free(a), free(b), free(c), free(d);
    if (!it->ctx[0]) return *why = "out of memory", 0;
    for (int k = 0; k < n; k++) {
        const cJSON *e = cJSON_GetArrayItem(endings, k);
        if (!cJSON_IsString(e)) return *why = "'endings' must hold strings", 0;
        char *p = hellaswag_preprocess(e->valuestring);
        it->cont[k] = p ? join(" ", p) : NULL;
        it->chars[k] = p ? utf8_chars(p) : 0;
        free(p);
        if (!it->cont[k]) return *why = "out of memory", 0;
    }
    return 1;
}

/* The item of one JSON line, by the fields it has; piqa's gold comes from its label file. */
static int parse_item(const cJSON *o, const task_def *def, int piqa_label, item *it, task_kind *kind, const char **why) {
    memset(it, 0, sizeof *it);
    const cJSON *gold = cJSON_GetObjectItemCaseSensitive(o, "gold");
    if (cJSON_IsNumber(gold) && !(gold->valuedouble >= 0 && gold->valuedouble < 64)) /* before any int conversion */
        return *why = "'gold' is not the index of a choice", 0;
    const char *q = str_field(o, "query"), *goal = str_field(o, "goal"), *text = str_field(o, "text");
    const char *cont = str_field(o, "continuation"), *context = str_field(o, "context");
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    const cJSON *ctxs = cJSON_GetObjectItemCaseSensitive(o, "context_options");
    const char *sol[2] = {str_field(o, "sol1"), str_field(o, "sol2")};
    int ok = 1;
    if (goal && sol[0] && sol[1]) { /* PIQA: "Question: {goal}\nAnswer:" */
        *kind = K_CHOICE;
        if (!alloc_item(it, 1, 2, 1)) return *why = "out of memory", 0;
        it->gold = piqa_label;
        char *a = join("Question: ", goal);
        it->ctx[0] = a ? join(a, "\nAnswer:") : NULL;
        free(a);
        for (int k = 0; k < 2; k++) it->cont[k] = join(" ", sol[k]), it->chars[k] = utf8_chars(sol[k]), ok &= it->cont[k] != NULL;
        ok &= it->ctx[0] != NULL;
    } else if (str_field(o, "ctx_a") && str_field(o, "ctx_b") && str_field(o, "activity_label")) {
        *kind = K_CHOICE;
        if (!parse_hellaswag(o, it, why)) return 0;
    } else if (q && cJSON_IsArray(choices) && cJSON_IsNumber(gold)) {
        *kind = K_CHOICE;
        const int n = cJSON_GetArraySize(choices);
        if (n < 1 || n > 64) return *why = "'choices' must hold 1 to 64 strings", 0;
        for (int k = 0; k < n; k++)
            if (!cJSON_IsString(cJSON_GetArrayItem(choices, k))) return *why = "'choices' must hold strings", 0;
        const task_prep prep = def ? def->prep : P_NONE;
        char **answers;
        int n_answers;
        char *query = prep_query(prep, q, &answers, &n_answers, why);
        if (!query) return 0;
        if (answers && n_answers != n) {
            for (int k = 0; k < n_answers; k++) free(answers[k]);
            free(answers), free(query);
            return *why = "the query lists another number of answers than 'choices' has", 0;
        }
        if (!alloc_item(it, 1, n, 1)) return free(query), *why = "out of memory", 0;
        it->gold = (int)gold->valuedouble;
        /* COPA's choices carry their own space before lm-eval's target delimiter (its
         * utils.py): the continuation starts with two */
        const char *delim = prep == P_COPA ? "  " : str_field(o, "delimiter") ? str_field(o, "delimiter") : " ";
        it->ctx[0] = join(query, def && def->suffix ? def->suffix : "");
        free(query);
        ok &= it->ctx[0] != NULL;
        for (int k = 0; k < n; k++) {
            const char *c = answers ? answers[k] : cJSON_GetArrayItem(choices, k)->valuestring;
            char *lower = prep == P_COPA ? strdup(c) : NULL; /* lm-eval's choice[0].lower() + choice[1:] */
            if (lower && lower[0] >= 'A' && lower[0] <= 'Z') lower[0] = (char)(lower[0] - 'A' + 'a');
            it->cont[k] = join(delim, lower ? lower : c);
            it->chars[k] = utf8_chars(c) + (prep == P_COPA); /* lm-eval's choice is " " + choice */
            ok &= it->cont[k] != NULL && (prep != P_COPA || lower);
            free(lower);
        }
        for (int k = 0; k < n_answers; k++) free(answers[k]);
        free(answers);
    } else if (cJSON_IsArray(ctxs) && cont && cJSON_IsNumber(gold)) { /* partial scoring */
        *kind = K_PARTIAL;
        const int n = cJSON_GetArraySize(ctxs);
        if (n < 1 || n > 64) return *why = "'context_options' must hold 1 to 64 strings", 0;
        if (!alloc_item(it, n, 1, 0)) return *why = "out of memory", 0;
        it->gold = (int)gold->valuedouble;
        for (int k = 0; k < n; k++) {
            const cJSON *c = cJSON_GetArrayItem(ctxs, k);
            if (!cJSON_IsString(c)) return *why = "'context_options' must hold strings", 0;
            ok &= (it->ctx[k] = strdup(c->valuestring)) != NULL;
        }
        ok &= (it->cont[0] = join(" ", cont)) != NULL;
    } else if (text || (context && cont)) { /* LAMBADA: the last word after the rest */
        *kind = K_LOGLIK;
        if (!alloc_item(it, 1, 1, 0)) return *why = "out of memory", 0;
        if (text) {
            const char *sp = strrchr(text, ' ');
            const size_t cut = sp ? (size_t)(sp - text) : 0;
            it->ctx[0] = strndup(text, cut);
            it->cont[0] = sp ? strdup(sp) : join(" ", text);
        } else {
            it->ctx[0] = strdup(context), it->cont[0] = strdup(cont);
        }
        ok &= it->ctx[0] && it->cont[0];
    } else {
        return *why = "neither a choice item (query, choices, gold), a partial one (context_options, continuation, gold), "
                      "a HellaSwag one (activity_label, ctx_a, ctx_b, endings, label), nor a loglikelihood one (text, or "
                      "context and continuation)",
               0;
    }
    if (!ok) return *why = "out of memory", 0;
    if (*kind != K_LOGLIK && (it->gold < 0 || it->gold >= (it->n_ctx > it->n_cont ? it->n_ctx : it->n_cont)))
        return *why = "'gold' is not the index of a choice", 0;
    if (!(it->doc = cJSON_PrintUnformatted(o))) return *why = "out of memory", 0;
    return 1;
}

int eval_task_load(const char *path, const task_def *def, long long limit, task *t) {
    char *text = NULL, *labels = NULL;
    size_t len, llen = 0;
    t->norm = def ? def->norm : 1;
    if (cli_read_input(path, &text, &len) != CLI_OK) return CLI_ERR;
    if (def && strcmp(def->name, "piqa") == 0) {
        char lp[4096];
        const char *slash = strrchr(path, '/');
        snprintf(lp, sizeof lp, "%.*s/valid-labels.lst", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (cli_read_input(lp, &labels, &llen) != CLI_OK) return free(text), CLI_ERR;
    }
    int rc = CLI_OK, cap = 0, line_no = 0;
    char *lab = labels, *line = text;
    for (; rc == CLI_OK && line && *line && (limit <= 0 || t->n < limit); line_no++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        const char *why = NULL;
        cJSON *o = *line ? cJSON_Parse(line) : NULL;
        if (*line && !cJSON_IsObject(o)) why = "not a JSON object";
        int label = 0;
        if (!why && *line && labels) {
            if (!lab || !*lab || (*lab != '0' && *lab != '1')) why = "no label in valid-labels.lst";
            else label = *lab - '0', lab = strchr(lab, '\n'), lab = lab ? lab + 1 : NULL;
        }
        if (!why && *line) {
            if (t->n == cap) {
                item *ni = realloc(t->items, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *ni);
                if (!ni) why = "out of memory";
                else t->items = ni;
            }
            task_kind k = K_CHOICE;
            if (!why) {
                const int ok = parse_item(o, def, label, &t->items[t->n], &k, &why);
                t->n++; /* freed with the task, built or half-built */
                if (ok && t->n > 1 && k != t->kind) why = "items of different kinds in one task";
                else if (ok) t->kind = k;
                else if (!why) why = "bad item";
            }
        }
        cJSON_Delete(o);
        if (why) rc = cli_error("%s: line %d: %s", path, line_no + 1, why);
        line = nl ? nl + 1 : NULL;
    }
    t->n_file = t->n;
    for (; rc == CLI_OK && line && *line;) { /* the items past --limit, counted (lm-eval's n-samples "original") */
        char *nl = strchr(line, '\n');
        t->n_file += nl != line;
        line = nl ? nl + 1 : NULL;
    }
    if (rc == CLI_OK && t->n == 0) rc = cli_error("%s: no items", path);
    free(text), free(labels);
    return rc;
}
