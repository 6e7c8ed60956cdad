/* unicode.c — see unicode.h. */
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int mc_utf8_decode(const unsigned char *s, size_t n, int32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    int32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) len = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, v = c & 0x07, min = 0x10000;
    else { *cp = -1; return 1; }
    if ((size_t)len > n) { *cp = -1; return 1; }
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) { *cp = -1; return 1; }
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) { *cp = -1; return 1; }
    *cp = v;
    return len;
}

int mc_utf8_encode(int32_t cp, unsigned char *o) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xc0 | cp >> 6); o[1] = (unsigned char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12); o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18); o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)); o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

int mc_char_class(int32_t cp) {
    if (cp < 0) return MC_CC_OTHER;
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return MC_CC_LETTER;
        if (cp >= '0' && cp <= '9') return MC_CC_NUMBER;
        if (cp == ' ' || (cp >= 9 && cp <= 13)) return MC_CC_SPACE;
        return MC_CC_OTHER;
    }
    if (cp == 0x85) return MC_CC_SPACE;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return MC_CC_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return MC_CC_NUMBER;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
        return MC_CC_SPACE;
    default:
        return MC_CC_OTHER;
    }
}

/* Appends src[0..n) to a growable buffer. */
static int append(unsigned char **buf, size_t *len, size_t *cap, const void *src, size_t n) {
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < *len + n) c *= 2;
        unsigned char *b = realloc(*buf, c);
        if (!b) return 0;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, src, n);
    *len += n;
    return 1;
}

static int ccc(int32_t cp) { return utf8proc_get_property(cp)->combining_class; }

/* Stable merge sort of cp[0..n) by combining class (tmp: n entries). */
static void sort_marks(int32_t *cp, int32_t *tmp, size_t n, size_t *work) {
    if (n < 2) return;
    const size_t h = n / 2;
    sort_marks(cp, tmp, h, work);
    sort_marks(cp + h, tmp, n - h, work);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        ++*work;
        tmp[k++] = ccc(cp[j]) < ccc(cp[i]) ? cp[j++] : cp[i++]; /* ties keep their order */
    }
    while (i < h) tmp[k++] = cp[i++];
    while (j < n) tmp[k++] = cp[j++];
    memcpy(cp, tmp, n * sizeof *cp);
}

/* NFC of a run of valid UTF-8 (n bytes) appended to out: canonical decomposition a code
 * point at a time, canonical ordering (each maximal run of combining marks stably sorted
 * by class, n log n), canonical composition — utf8proc's steps, except the ordering:
 * utf8proc_map orders by adjacent swaps, quadratic in the length of a run of marks, which
 * a prompt can make as long as it likes. */
static int nfc_valid(const unsigned char *s, size_t n, unsigned char **out, size_t *len, size_t *cap, size_t *work) {
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    size_t room = n + 16, m = 0;
    int32_t *cp = malloc(room * sizeof *cp), *tmp = NULL;
    int ok = cp != NULL;
    for (size_t i = 0; ok && i < n;) {
        int32_t c;
        i += (size_t)mc_utf8_decode(s + i, n - i, &c);
        for (;;) { /* decompositions are a few code points; grow until this one fits */
            int bound = 0;
            const utf8proc_ssize_t k = utf8proc_decompose_char(c, cp + m, (utf8proc_ssize_t)(room - m), opt, &bound);
            if (k < 0) { ok = 0; break; }
            if ((size_t)k <= room - m) { m += (size_t)k; break; }
            int32_t *g = realloc(cp, (room = 2 * room + (size_t)k) * sizeof *cp);
            if (!g) { ok = 0; break; }
            cp = g;
        }
    }
    if (ok && !(tmp = malloc((m ? m : 1) * sizeof *tmp))) ok = 0;
    for (size_t i = 0; ok && i < m;) {
        if (ccc(cp[i]) == 0) { i++; continue; }
        size_t j = i;
        while (j < m && ccc(cp[j]) != 0) j++;
        sort_marks(cp + i, tmp, j - i, work);
        i = j;
    }
    utf8proc_ssize_t k = ok ? utf8proc_normalize_utf32(cp, (utf8proc_ssize_t)m, opt) : -1;
    for (utf8proc_ssize_t i = 0; k >= 0 && i < k; i++) {
        unsigned char b[4];
        if (!append(out, len, cap, b, (size_t)mc_utf8_encode(cp[i], b))) k = -1;
    }
    free(cp);
    free(tmp);
    return k >= 0;
}

unsigned char *mc_nfc_counted(const unsigned char *text, size_t len, size_t *out_len, size_t *work) {
    size_t i = 0, unused = 0;
    if (!work) work = &unused;
    *work = 0;
    while (i < len && text[i] < 0x80) i++;
    unsigned char *out = NULL;
    size_t n = 0, cap = len + 1;
    out = malloc(cap);
    if (!out) return NULL;
    if (i == len) { /* ASCII is its own NFC */
        memcpy(out, text, len);
        *out_len = len;
        return out;
    }
    for (size_t p = 0; p < len;) {
        /* A maximal run of valid UTF-8, normalized as a whole; then invalid bytes as-is. */
        size_t q = p;
        int32_t cp;
        while (q < len) {
            int l = mc_utf8_decode(text + q, len - q, &cp);
            if (cp < 0) break;
            q += (size_t)l;
        }
        if (q > p && !nfc_valid(text + p, q - p, &out, &n, &cap, work)) {
            free(out);
            return NULL;
        }
        for (; q < len; q++) { /* invalid bytes until the next valid character */
            int l = mc_utf8_decode(text + q, len - q, &cp);
            if (cp >= 0) break;
            (void)l;
            if (!append(&out, &n, &cap, text + q, 1)) { free(out); return NULL; }
        }
        p = q;
    }
    *out_len = n;
    return out;
}

unsigned char *mc_nfc(const unsigned char *text, size_t len, size_t *out_len) {
    return mc_nfc_counted(text, len, out_len, NULL);
}

int32_t mc_byte_to_cp(unsigned char b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    /* The other 68 bytes take 256, 257, ... in byte order. */
    int32_t k = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) k++;
    return 256 + k;
}

int mc_cp_to_byte(int32_t cp) {
    if (cp < 0 || cp > 256 + 68) return -1;
    if (cp < 256) {
        unsigned char b = (unsigned char)cp;
        return mc_byte_to_cp(b) == cp ? b : -1;
    }
    for (int b = 0; b < 256; b++)
        if (mc_byte_to_cp((unsigned char)b) == cp) return b;
    return -1;
}

size_t mc_utf8_complete_prefix(const unsigned char *s, size_t n) {
    /* Look back at most 3 bytes for the start of a multi-byte sequence. */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = s[n - back];
        if ((c & 0xc0) == 0x80) continue; /* continuation byte: keep looking */
        int need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 1;
        if (need > (int)back && c >= 0xc2) {
            int32_t cp;
            /* Hold back only if what is there so far could still become valid. */
            unsigned char tmp[4] = {0};
            memcpy(tmp, s + n - back, back);
            for (size_t k = back; k < (size_t)need; k++) tmp[k] = 0x80 | (c == 0xe0 && k == 1 ? 0x20 : c == 0xf0 && k == 1 ? 0x10 : 0);
            mc_utf8_decode(tmp, (size_t)need, &cp);
            if (cp >= 0) return n - back;
        }
        return n;
    }
    return n;
}
