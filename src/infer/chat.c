/* chat.c — chat templates: a conversation's messages as the text a chat model was trained
 * on. Built-in templates matched by name, and recognised in a model's Jinja chat_template
 * (tokenizer_config.json) by the markers it writes, as llama.cpp does; no Jinja is run.
 * Every built-in template is a concatenation of messages (prefix + content + end of turn
 * + separator), so the text of a longer conversation extends the shorter one's: a
 * recurrent state is fed only what a new message adds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "mambac.h"

typedef struct chat_template {
    const char *name;
    const char *prefix[3]; /* system, user, assistant: the header of a message */
    const char *end;       /* the end of a turn (an answer's stop string) */
    const char *after;     /* written after `end` */
    const char *marker;    /* a Jinja template that contains it is this one (NULL: none) */
} chat_template;

static const chat_template templates[] = {
    {"chatml", {"<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n"}, "<|im_end|>", "\n", "<|im_start|>"},
    {"zephyr", {"<|system|>\n", "<|user|>\n", "<|assistant|>\n"}, "</s>", "\n", "<|assistant|>"},
    {"plain", {"System: ", "User: ", "Assistant: "}, "\n", "", NULL},
};
#define N_TEMPLATES (sizeof templates / sizeof templates[0])

static const chat_template *find(const char *name) {
    for (size_t i = 0; name && i < N_TEMPLATES; i++)
        if (strcmp(templates[i].name, name) == 0) return &templates[i];
    return NULL;
}

const char *mambac_chat_template_name(const char *name_or_jinja) {
    if (!name_or_jinja) return NULL;
    const chat_template *t = find(name_or_jinja);
    if (t) return t->name;
    for (size_t i = 0; i < N_TEMPLATES; i++)
        if (templates[i].marker && strstr(name_or_jinja, templates[i].marker)) return templates[i].name;
    return NULL;
}

const char *mambac_chat_end_of_turn(const char *tmpl) {
    const chat_template *t = find(tmpl);
    return t ? t->end : NULL;
}

const char *mambac_chat_after_turn(const char *tmpl) {
    const chat_template *t = find(tmpl);
    return t ? t->after : NULL;
}

static int role_index(const char *role) {
    static const char *const roles[] = {"system", "user", "assistant"};
    for (int i = 0; role && i < 3; i++)
        if (strcmp(role, roles[i]) == 0) return i;
    return -1;
}

mambac_status mambac_chat_apply(const char *tmpl, const mambac_chat_message *msgs, size_t n, int add_assistant, char **out,
                                size_t *len, mambac_error *err) {
    const chat_template *t = find(tmpl);
    *out = NULL, *len = 0;
    if (!t) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "unknown chat template '%s' (built in: chatml, zephyr, plain)", tmpl ? tmpl : "");
    if (n && !msgs) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "chat: messages missing");
    const size_t le = strlen(t->end), la = strlen(t->after);
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        const int r = role_index(msgs[i].role);
        if (r < 0) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "chat: message %zu: role '%s' is not system, user or assistant", i,
                                  msgs[i].role ? msgs[i].role : "(none)");
        if (!msgs[i].content) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "chat: message %zu has no content", i);
        const size_t add = strlen(t->prefix[r]) + strlen(msgs[i].content) + le + la;
        if (add > SIZE_MAX / 2 - total) return mc_fail(err, MAMBAC_ERR_INVALID_ARG, "chat: messages too long");
        total += add;
    }
    if (add_assistant) total += strlen(t->prefix[2]);
    char *s = malloc(total), *p = s;
    if (!s) return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *parts[] = {t->prefix[role_index(msgs[i].role)], msgs[i].content, t->end, t->after};
        for (int k = 0; k < 4; k++) {
            const size_t l = strlen(parts[k]);
            memcpy(p, parts[k], l), p += l;
        }
    }
    if (add_assistant) {
        const size_t l = strlen(t->prefix[2]);
        memcpy(p, t->prefix[2], l), p += l;
    }
    *p = 0;
    *out = s, *len = (size_t)(p - s);
    return MAMBAC_OK;
}
