/* pickle.c — see pickle.h. Values live in one pool and are referred to by index, so
 * memo sharing (a tied lm_head is the same tensor object twice) costs nothing and
 * everything is freed at once. Limits on pool, stack and memo bound the memory a
 * hostile file can make us use to a small multiple of its length. */
#include "pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/zip.h"

typedef enum {
    V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT,
    V_GLOBAL, V_STORAGE, V_TENSOR, V_MARK,
} vkind;

typedef enum {
    G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_PARAMETER,
    G_STORAGE_F32, G_STORAGE_F16, G_STORAGE_BF16,
} global_id;

typedef struct value {
    vkind k;
    int64_t i;        /* int, bool, global id, storage elem */
    char *s;          /* str, storage key */
    int32_t *items;   /* tuple/list items, dict key/value pairs */
    size_t n, cap;
    uint64_t numel;   /* storage */
    int32_t tensor;   /* V_TENSOR: index into vm.tensors */
} value;

typedef struct vm {
    const unsigned char *p, *end, *start;
    const char *path;
    mambac_error *err;
    value *pool; size_t npool, cappool;
    int32_t *stack; size_t nstack, capstack;
    int32_t *memo; size_t capmemo, nmemo; /* nmemo: slots set (MEMOIZE's key, as Python's len(memo)) */
    mc_pickled_tensor *tensors; size_t ntensors, captensors;
} vm;

/* Objects alive at once, and memo slots. A state dict makes about ten objects a tensor
 * (real checkpoints: tens of thousands in all); the limits keep a crafted pickle's VM under
 * ~70 MB (a 16 MB pickle of small ops had reached 1.3 GB under 2^24). */
#define MAX_POOL (1u << 20)
#define MAX_MEMO (1u << 20)

static const struct { const char *module, *name; global_id id; } allowed_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER},
    {"torch", "FloatStorage", G_STORAGE_F32},
    {"torch", "HalfStorage", G_STORAGE_F16},
    {"torch", "BFloat16Storage", G_STORAGE_BF16},
};

static mambac_status fail(vm *m, const char *what) {
    return mc_fail(m->err, MAMBAC_ERR_FORMAT, "%s: pickle: %s (at byte %zu)", m->path, what,
                   (size_t)(m->p - m->start));
}

static int grow(void **ptr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*ptr, c * elem);
    if (!q) return 0;
    memset((char *)q + *cap * elem, 0, (c - *cap) * elem);
    *ptr = q;
    *cap = c;
    return 1;
}

static int32_t new_value(vm *m, vkind k) {
    if (m->npool >= MAX_POOL || !grow((void **)&m->pool, &m->cappool, m->npool + 1, sizeof(value))) {
        fail(m, "too many objects");
        return -1;
    }
    m->pool[m->npool] = (value){.k = k, .tensor = -1};
    return (int32_t)m->npool++;
}

static int push(vm *m, int32_t v) {
    if (v < 0) return 0;
    if (m->nstack >= MAX_POOL || !grow((void **)&m->stack, &m->capstack, m->nstack + 1, sizeof(int32_t))) {
        fail(m, "stack too deep");
        return 0;
    }
    m->stack[m->nstack++] = v;
    return 1;
}

static int32_t pop(vm *m) {
    if (m->nstack == 0) {
        fail(m, "stack underflow");
        return -1;
    }
    return m->stack[--m->nstack];
}

static value *val(vm *m, int32_t i) { return &m->pool[i]; }

static int add_item(vm *m, int32_t container, int32_t item) {
    value *c = val(m, container);
    if (!grow((void **)&c->items, &c->cap, c->n + 1, sizeof(int32_t))) {
        fail(m, "out of memory");
        return 0;
    }
    c->items[c->n++] = item;
    return 1;
}

/* Index in the stack of the topmost MARK, or -1. */
static long find_mark(vm *m) {
    for (size_t i = m->nstack; i-- > 0;)
        if (val(m, m->stack[i])->k == V_MARK) return (long)i;
    fail(m, "MARK expected but not found");
    return -1;
}

/* Builds a tuple from the n topmost stack items (n < 0: down to the topmost MARK). */
static int make_tuple(vm *m, long n, vkind kind) {
    size_t from;
    int drop_mark = 0;
    if (n < 0) {
        long mk = find_mark(m);
        if (mk < 0) return 0;
        from = (size_t)mk + 1;
        drop_mark = 1;
    } else {
        if ((size_t)n > m->nstack) return fail(m, "stack underflow"), 0;
        from = m->nstack - (size_t)n;
    }
    int32_t t = new_value(m, kind);
    if (t < 0) return 0;
    for (size_t i = from; i < m->nstack; i++)
        if (!add_item(m, t, m->stack[i])) return 0;
    m->nstack = from - (size_t)drop_mark;
    return push(m, t);
}

static int read_bytes(vm *m, size_t n, const unsigned char **out) {
    if ((size_t)(m->end - m->p) < n) {
        fail(m, "truncated");
        return 0;
    }
    *out = m->p;
    m->p += n;
    return 1;
}

static int read_uint(vm *m, int n, uint64_t *out) {
    const unsigned char *b;
    if (!read_bytes(m, (size_t)n, &b)) return 0;
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    *out = v;
    return 1;
}

static int push_int(vm *m, int64_t v) {
    int32_t x = new_value(m, V_INT);
    if (x < 0) return 0;
    val(m, x)->i = v;
    return push(m, x);
}

static int push_str(vm *m, const unsigned char *b, size_t n) {
    int32_t x = new_value(m, V_STR);
    if (x < 0) return 0;
    char *s = malloc(n + 1);
    if (!s) return fail(m, "out of memory"), 0;
    memcpy(s, b, n);
    s[n] = 0;
    val(m, x)->s = s;
    val(m, x)->n = n; /* a NUL inside is kept out of names by check_name */
    return push(m, x);
}

static int push_global(vm *m, const char *module, size_t ml, const char *name, size_t nl) {
    for (size_t i = 0; i < sizeof allowed_globals / sizeof allowed_globals[0]; i++) {
        if (strlen(allowed_globals[i].module) == ml && memcmp(allowed_globals[i].module, module, ml) == 0 &&
            strlen(allowed_globals[i].name) == nl && memcmp(allowed_globals[i].name, name, nl) == 0) {
            int32_t x = new_value(m, V_GLOBAL);
            if (x < 0) return 0;
            val(m, x)->i = allowed_globals[i].id;
            return push(m, x);
        }
    }
    char msg[200];
    snprintf(msg, sizeof msg, "global '%.*s.%.*s' is not allowed (refused, not run)", (int)(ml > 60 ? 60 : ml),
             module, (int)(nl > 60 ? 60 : nl), name);
    fail(m, msg);
    return 0;
}

static int as_int(vm *m, int32_t v, int64_t *out) {
    if (v < 0) return 0;
    value *x = val(m, v);
    if (x->k != V_INT && x->k != V_BOOL) return 0;
    *out = x->i;
    return 1;
}

/* ('storage', <storage type>, key, location, numel) → a storage value. */
static int persistent_load(vm *m) {
    int32_t pid = pop(m);
    if (pid < 0) return 0;
    value *t = val(m, pid);
    if (t->k != V_TUPLE || t->n != 5) return fail(m, "persistent id is not a 5-tuple"), 0;
    value *tag = val(m, t->items[0]), *type = val(m, t->items[1]), *key = val(m, t->items[2]);
    int64_t numel;
    if (tag->k != V_STR || strcmp(tag->s, "storage") != 0 || type->k != V_GLOBAL || key->k != V_STR ||
        !as_int(m, t->items[4], &numel) || numel < 0)
        return fail(m, "persistent id is not a storage reference"), 0;
    mc_elem e;
    switch ((global_id)type->i) {
    case G_STORAGE_F32: e = MC_ELEM_F32; break;
    case G_STORAGE_F16: e = MC_ELEM_F16; break;
    case G_STORAGE_BF16: e = MC_ELEM_BF16; break;
    default: return fail(m, "persistent id names something that is not a storage type"), 0;
    }
    if (strlen(key->s) != key->n || key->n == 0 || key->n > 64 || strchr(key->s, '/') || strstr(key->s, ".."))
        return fail(m, "invalid storage key"), 0;
    char *keycopy = strdup(key->s);
    if (!keycopy) return fail(m, "out of memory"), 0;
    int32_t s = new_value(m, V_STORAGE); /* may move the pool: t, key are stale after this */
    if (s < 0) {
        free(keycopy);
        return 0;
    }
    val(m, s)->i = e;
    val(m, s)->numel = (uint64_t)numel;
    val(m, s)->s = keycopy;
    return push(m, s);
}

static int int_tuple(vm *m, int32_t v, int64_t *out, int *n) {
    value *t = val(m, v);
    if (t->k != V_TUPLE || t->n > MC_MAX_DIMS) return 0;
    for (size_t i = 0; i < t->n; i++)
        if (!as_int(m, t->items[i], &out[i])) return 0;
    *n = (int)t->n;
    return 1;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static int rebuild_tensor(vm *m, value *args) {
    if (args->n < 4 || args->n > 7) return fail(m, "_rebuild_tensor_v2 with unexpected arguments"), 0;
    value *storage = val(m, args->items[0]);
    mc_pickled_tensor t = {0};
    int nstride;
    if (storage->k != V_STORAGE || !as_int(m, args->items[1], &t.offset) || t.offset < 0 ||
        !int_tuple(m, args->items[2], t.shape, &t.ndim) || !int_tuple(m, args->items[3], t.stride, &nstride) ||
        nstride != t.ndim)
        return fail(m, "_rebuild_tensor_v2 with malformed arguments"), 0;
    t.elem = (mc_elem)storage->i;
    t.storage_numel = storage->numel;
    if (!grow((void **)&m->tensors, &m->captensors, m->ntensors + 1, sizeof t)) return fail(m, "out of memory"), 0;
    t.storage_key = strdup(storage->s);
    if (!t.storage_key) return fail(m, "out of memory"), 0;
    int32_t x = new_value(m, V_TENSOR);
    if (x < 0) {
        free(t.storage_key);
        return 0;
    }
    val(m, x)->tensor = (int32_t)m->ntensors;
    m->tensors[m->ntensors++] = t;
    return push(m, x);
}

static int reduce(vm *m) {
    int32_t a = pop(m), f = pop(m);
    if (a < 0 || f < 0) return 0;
    value *args = val(m, a), *fn = val(m, f);
    if (fn->k != V_GLOBAL || args->k != V_TUPLE) return fail(m, "REDUCE of something that is not an allowed global"), 0;
    switch ((global_id)fn->i) {
    case G_ORDERED_DICT:
        if (args->n != 0) return fail(m, "OrderedDict with arguments"), 0;
        return push(m, new_value(m, V_DICT));
    case G_REBUILD_TENSOR:
        return rebuild_tensor(m, args);
    case G_REBUILD_PARAMETER: /* (tensor, requires_grad, hooks) → the tensor itself */
        if (args->n < 1 || val(m, args->items[0])->k != V_TENSOR) return fail(m, "_rebuild_parameter without a tensor"), 0;
        return push(m, args->items[0]);
    default:
        return fail(m, "REDUCE of a storage type"), 0;
    }
}

static int set_items(vm *m, long mark_at) {
    int32_t d = mark_at >= 1 ? m->stack[mark_at - 1] : -1;
    if (d < 0 || val(m, d)->k != V_DICT) return fail(m, "SETITEMS on something that is not a dict"), 0;
    if ((m->nstack - (size_t)mark_at - 1) % 2) return fail(m, "SETITEMS with an odd number of items"), 0;
    for (size_t i = (size_t)mark_at + 1; i < m->nstack; i++)
        if (!add_item(m, d, m->stack[i])) return 0;
    m->nstack = (size_t)mark_at;
    return 1;
}

static int memo_put(vm *m, uint64_t idx) {
    if (m->nstack == 0) return fail(m, "memo store with an empty stack"), 0;
    if (idx >= MAX_MEMO) return fail(m, "memo index too large"), 0;
    size_t old = m->capmemo;
    if (!grow((void **)&m->memo, &m->capmemo, (size_t)idx + 1, sizeof(int32_t))) return fail(m, "out of memory"), 0;
    for (size_t i = old; i < m->capmemo; i++) m->memo[i] = -1;
    if (m->memo[idx] < 0) m->nmemo++;
    m->memo[idx] = m->stack[m->nstack - 1];
    return 1;
}

static int memo_get(vm *m, uint64_t idx) {
    if (idx >= m->capmemo || m->memo[idx] < 0) return fail(m, "memo read of an unset slot"), 0;
    return push(m, m->memo[idx]);
}

static const char *opcode_name(unsigned op) {
    switch (op) {
    case 'c': return "GLOBAL";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 'P': return "PERSID";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 0x82: case 0x83: case 0x84: return "EXT";
    default: return "unknown";
    }
}

static mambac_status run(vm *m, int32_t *result) {
    for (;;) {
        if (m->p >= m->end) return fail(m, "truncated (no STOP)");
        unsigned op = *m->p++;
        uint64_t u;
        const unsigned char *b;
        int ok = 1;
        switch (op) {
        case 0x80: ok = read_uint(m, 1, &u) && (u <= 5 || !fail(m, "unknown protocol")); break; /* PROTO */
        case 0x95: ok = read_uint(m, 8, &u); break;                                          /* FRAME */
        case '.': /* STOP */
            *result = pop(m);
            return *result < 0 ? MAMBAC_ERR_FORMAT : MAMBAC_OK;
        case '(': ok = push(m, new_value(m, V_MARK)); break;
        case '}': ok = push(m, new_value(m, V_DICT)); break;
        case ']': ok = push(m, new_value(m, V_LIST)); break;
        case ')': ok = push(m, new_value(m, V_TUPLE)); break;
        case 'N': ok = push(m, new_value(m, V_NONE)); break;
        case 0x88: case 0x89: { /* NEWTRUE / NEWFALSE */
            int32_t x = new_value(m, V_BOOL);
            ok = x >= 0 && (val(m, x)->i = op == 0x88, push(m, x));
            break;
        }
        case 'K': ok = read_uint(m, 1, &u) && push_int(m, (int64_t)u); break;
        case 'M': ok = read_uint(m, 2, &u) && push_int(m, (int64_t)u); break;
        case 'J': ok = read_uint(m, 4, &u) && push_int(m, (int64_t)(int32_t)(uint32_t)u); break;
        case 0x8a: { /* LONG1: little-endian two's complement of n bytes */
            uint64_t n;
            ok = read_uint(m, 1, &n) && (n <= 8 || !fail(m, "integer too large")) && read_bytes(m, (size_t)n, &b);
            if (ok) {
                uint64_t v = 0;
                for (size_t i = n; i-- > 0;) v = v << 8 | b[i];
                if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~0ull << (8 * n); /* sign-extend */
                ok = push_int(m, (int64_t)v);
            }
            break;
        }
        case 'G': { /* BINFLOAT: accepted, value unused by state dicts */
            ok = read_bytes(m, 8, &b) && push(m, new_value(m, V_FLOAT));
            break;
        }
        case 'X': ok = read_uint(m, 4, &u) && read_bytes(m, (size_t)u, &b) && push_str(m, b, (size_t)u); break;
        case 0x8c: ok = read_uint(m, 1, &u) && read_bytes(m, (size_t)u, &b) && push_str(m, b, (size_t)u); break;
        case 0x8d:
            ok = read_uint(m, 8, &u) && (u <= (uint64_t)(m->end - m->p) || !fail(m, "truncated")) &&
                 read_bytes(m, (size_t)u, &b) && push_str(m, b, (size_t)u);
            break;
        case 'c': { /* GLOBAL "module\nname\n" */
            const unsigned char *nl1 = memchr(m->p, '\n', (size_t)(m->end - m->p));
            const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(m->end - nl1 - 1)) : NULL;
            if (!nl2) return fail(m, "truncated GLOBAL");
            const unsigned char *mod = m->p;
            m->p = nl2 + 1;
            ok = push_global(m, (const char *)mod, (size_t)(nl1 - mod), (const char *)nl1 + 1, (size_t)(nl2 - nl1 - 1));
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            int32_t n = pop(m), mo = pop(m);
            if (n < 0 || mo < 0 || val(m, n)->k != V_STR || val(m, mo)->k != V_STR) return fail(m, "STACK_GLOBAL without strings");
            ok = push_global(m, val(m, mo)->s, val(m, mo)->n, val(m, n)->s, val(m, n)->n);
            break;
        }
        case 'q': ok = read_uint(m, 1, &u) && memo_put(m, u); break;
        case 'r': ok = read_uint(m, 4, &u) && memo_put(m, u); break;
        case 0x94: ok = memo_put(m, m->nmemo); break; /* MEMOIZE: the key is the number of entries */
        case 'h': ok = read_uint(m, 1, &u) && memo_get(m, u); break;
        case 'j': ok = read_uint(m, 4, &u) && memo_get(m, u); break;
        case 't': ok = make_tuple(m, -1, V_TUPLE); break;
        case 0x85: ok = make_tuple(m, 1, V_TUPLE); break;
        case 0x86: ok = make_tuple(m, 2, V_TUPLE); break;
        case 0x87: ok = make_tuple(m, 3, V_TUPLE); break;
        case 'l': ok = make_tuple(m, -1, V_LIST); break;
        case 'd': { /* DICT from MARK k v k v ...: the dict takes the mark's place */
            long mk = find_mark(m);
            int32_t d = mk < 0 ? -1 : new_value(m, V_DICT);
            if (d < 0) return MAMBAC_ERR_FORMAT;
            if ((m->nstack - (size_t)mk - 1) % 2) return fail(m, "DICT with an odd number of items");
            for (size_t i = (size_t)mk + 1; ok && i < m->nstack; i++) ok = add_item(m, d, m->stack[i]);
            m->stack[mk] = d;
            m->nstack = (size_t)mk + 1;
            break;
        }
        case 'a': { /* APPEND */
            int32_t x = pop(m);
            ok = x >= 0 && m->nstack && val(m, m->stack[m->nstack - 1])->k == V_LIST ? add_item(m, m->stack[m->nstack - 1], x)
                                                                                      : (fail(m, "APPEND to a non-list"), 0);
            break;
        }
        case 'e': { /* APPENDS */
            long mk = find_mark(m);
            if (mk < 1 || val(m, m->stack[mk - 1])->k != V_LIST) return fail(m, "APPENDS to a non-list");
            for (size_t i = (size_t)mk + 1; ok && i < m->nstack; i++) ok = add_item(m, m->stack[mk - 1], m->stack[i]);
            m->nstack = (size_t)mk;
            break;
        }
        case 's': { /* SETITEM */
            int32_t v = pop(m), k = pop(m);
            ok = v >= 0 && k >= 0 && m->nstack && val(m, m->stack[m->nstack - 1])->k == V_DICT &&
                 add_item(m, m->stack[m->nstack - 1], k) && add_item(m, m->stack[m->nstack - 1], v);
            if (!ok && m->err && v >= 0 && k >= 0) fail(m, "SETITEM on something that is not a dict");
            break;
        }
        case 'u': {
            long mk = find_mark(m);
            ok = mk >= 0 && set_items(m, mk);
            break;
        }
        case '0': ok = pop(m) >= 0; break; /* POP */
        case '1': { long mk = find_mark(m); ok = mk >= 0; if (ok) m->nstack = (size_t)mk; break; } /* POP_MARK */
        case 'Q': ok = persistent_load(m); break;
        case 'R': ok = reduce(m); break;
        case 'b': { /* BUILD: only OrderedDict's state (its _metadata) is accepted and ignored */
            int32_t state = pop(m);
            ok = state >= 0 && m->nstack && val(m, m->stack[m->nstack - 1])->k == V_DICT;
            if (!ok && state >= 0) fail(m, "BUILD on something that is not a dict");
            break;
        }
        default: {
            char msg[96];
            m->p--;
            snprintf(msg, sizeof msg, "opcode 0x%02x (%s) is not allowed (refused, not run)", op, opcode_name(op));
            return fail(m, msg);
        }
        }
        if (!ok) return MAMBAC_ERR_FORMAT;
    }
}

static void vm_free(vm *m) {
    for (size_t i = 0; i < m->npool; i++) {
        free(m->pool[i].s);
        free(m->pool[i].items);
    }
    free(m->pool);
    free(m->stack);
    free(m->memo);
}

void mc_pickled_tensors_free(mc_pickled_tensor *t, size_t n) {
    if (!t) return;
    for (size_t i = 0; i < n; i++) {
        free(t[i].name);
        free(t[i].storage_key);
    }
    free(t);
}

mambac_status mc_pickle_state_dict(const unsigned char *pkl, size_t len, const char *path,
                                   mc_pickled_tensor **out, size_t *nout, mambac_error *err) {
    vm m = {.p = pkl, .end = pkl + len, .start = pkl, .path = path, .err = err};
    *out = NULL;
    *nout = 0;
    int32_t root = -1;
    mambac_status st = run(&m, &root);
    mc_pickled_tensor *res = NULL;
    size_t nres = 0;
    if (st == MAMBAC_OK && val(&m, root)->k != V_DICT)
        st = mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: pickle does not hold a state dict", path);
    if (st == MAMBAC_OK) {
        value *d = val(&m, root);
        res = calloc(d->n / 2 + 1, sizeof *res);
        if (!res) st = mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", path);
        for (size_t i = 0; st == MAMBAC_OK && i + 1 < d->n; i += 2) {
            value *k = val(&m, d->items[i]), *v = val(&m, d->items[i + 1]);
            if (k->k != V_STR || strlen(k->s) != k->n || v->k != V_TENSOR) {
                st = mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: state dict entry %zu is not a named tensor", path, i / 2);
                break;
            }
            res[nres] = m.tensors[v->tensor];
            res[nres].name = strdup(k->s);
            res[nres].storage_key = strdup(m.tensors[v->tensor].storage_key);
            nres++;
            if (!res[nres - 1].name || !res[nres - 1].storage_key) st = mc_fail(err, MAMBAC_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    for (size_t i = 0; i < m.ntensors; i++) free(m.tensors[i].storage_key);
    free(m.tensors);
    vm_free(&m);
    if (st != MAMBAC_OK) {
        mc_pickled_tensors_free(res, nres);
        return st;
    }
    *out = res;
    *nout = nres;
    return MAMBAC_OK;
}

/* Checks that t is a row-major contiguous view inside its storage bytes. */
static mambac_status resolve(const mc_pickled_tensor *t, const mc_zip_entry *data, const char *path,
                             mc_tensor_entry *e, mambac_error *err) {
    size_t es = mc_elem_size(t->elem);
    if (data->size / es < t->storage_numel)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: storage of '%s' holds %zu bytes, fewer than its %llu elements (truncated?)", path,
                       t->name, data->size, (unsigned long long)t->storage_numel);
    uint64_t numel;
    if (!mc_shape_numel(t->shape, t->ndim, UINT64_MAX / 8, &numel))
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' has an invalid shape", path, t->name);
    /* With no zero dimension every partial product is at most numel (no overflow); an
     * empty tensor has no bytes to lay out, whatever its strides. */
    int64_t expect = 1;
    for (int i = t->ndim - 1; numel > 0 && i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect)
            return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: tensor '%s' is not contiguous", path, t->name);
        expect *= t->shape[i];
    }
    if ((uint64_t)t->offset > t->storage_numel || numel > t->storage_numel - (uint64_t)t->offset)
        return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: tensor '%s' extends past its storage", path, t->name);
    e->name = t->name;
    e->elem = t->elem;
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof e->shape);
    e->data = data->data + (size_t)t->offset * es;
    e->nbytes = (size_t)numel * es;
    e->file = path;
    return MAMBAC_OK;
}

mambac_status mc_torch_parse(const unsigned char *data, size_t size, const char *path,
                             mc_tensor_list *out, mambac_error *err) {
    mc_zip z;
    mambac_status st = mc_zip_open(data, size, path, &z, err);
    if (st != MAMBAC_OK) return st;
    const mc_zip_entry *pkl = NULL;
    for (size_t i = 0; i < z.n; i++) {
        const char *slash = strchr(z.entries[i].name, '/');
        if (slash && strcmp(slash, "/data.pkl") == 0) {
            if (pkl) {
                mc_zip_close(&z);
                return mc_fail(err, MAMBAC_ERR_FORMAT, "%s: archive holds more than one data.pkl", path);
            }
            pkl = &z.entries[i];
        }
    }
    if (!pkl || !pkl->stored) {
        mc_zip_close(&z);
        return mc_fail(err, pkl ? MAMBAC_ERR_UNSUPPORTED : MAMBAC_ERR_FORMAT, "%s: %s", path,
                       pkl ? "data.pkl is compressed" : "not a torch.save archive (no <name>/data.pkl)");
    }
    size_t plen = strlen(pkl->name) - strlen("data.pkl"); /* keeps the "<name>/" prefix */
    char *key = malloc(plen + 80);
    if (!key) {
        mc_zip_close(&z);
        return mc_fail(err, MAMBAC_ERR_NOMEM, "out of memory");
    }
    memcpy(key, pkl->name, plen);
    strcpy(key + plen, "byteorder");
    const mc_zip_entry *bo = mc_zip_find(&z, key);
    if (bo && !(bo->size == 6 && memcmp(bo->data, "little", 6) == 0)) {
        free(key);
        mc_zip_close(&z);
        return mc_fail(err, MAMBAC_ERR_UNSUPPORTED, "%s: big-endian torch archive", path);
    }
    mc_pickled_tensor *ts;
    size_t nt;
    st = mc_pickle_state_dict(pkl->data, pkl->size, path, &ts, &nt, err);
    for (size_t i = 0; st == MAMBAC_OK && i < nt; i++) {
        snprintf(key + plen, 80, "data/%s", ts[i].storage_key);
        const mc_zip_entry *d = mc_zip_find(&z, key);
        mc_tensor_entry e;
        if (!d || !d->stored)
            st = mc_fail(err, MAMBAC_ERR_FORMAT, "%s: storage '%s' of tensor '%s' is %s", path, ts[i].storage_key,
                         ts[i].name, d ? "compressed" : "missing from the archive");
        else if ((st = resolve(&ts[i], d, path, &e, err)) == MAMBAC_OK)
            st = mc_tensor_list_add(out, &e, err);
    }
    mc_pickled_tensors_free(ts, nt);
    free(key);
    mc_zip_close(&z);
    return st;
}
