/* eval_tasks.h — the tasks of `mambac eval`: the built-in table (lm-eval's prompts over the
 * files of ../shared/data/eval) and the JSONL item format any task file uses (eval_tasks.c). */
#ifndef MAMBAC_EVAL_TASKS_H
#define MAMBAC_EVAL_TASKS_H

typedef enum { K_CHOICE, K_PARTIAL, K_LOGLIK, K_ROLLING } task_kind;

/* How a file's fields become lm-eval's prompt for that task (the staged files are not all in
 * the form lm-eval reads them from). */
typedef enum { P_NONE, P_COPA, P_BOOLQ, P_SIQA, P_CSQA } task_prep;

typedef struct task_def {
    const char *name, *file;
    task_kind kind;
    const char *suffix; /* appended to a choice task's query (lm-eval's doc_to_text) */
    task_prep prep;
    int norm;           /* lm-eval reports acc_norm for it */
} task_def;

/* One item: n_ctx contexts and n_cont continuations (choice: 1 x n; partial: n x 1;
 * loglik: 1 x 1), the gold index, each choice's length in characters (lm-eval's acc_norm
 * divides by it), and the line's JSON object (lm-eval's "doc" of a logged sample). */
typedef struct item {
    char **ctx, **cont;
    int n_ctx, n_cont, gold;
    double *chars;
    char *doc;
} item;

typedef struct task {
    char name[256];
    task_kind kind;
    int norm;
    item *items;
    int n;
    int n_file; /* items in the file (n: those read, --limit) */
} task;

/* The built-in task of that name, or NULL; the names, comma-separated, for messages. */
const task_def *eval_task_find(const char *name);
const char *eval_task_names(void);
/* Reads a task's items (at most limit; 0: all); def NULL for a jsonl: file. Every line must
 * parse and agree on the kind; an error names the file and line (CLI_ERR, printed). */
int eval_task_load(const char *path, const task_def *def, long long limit, task *t);
void eval_task_free(task *t);

#endif
