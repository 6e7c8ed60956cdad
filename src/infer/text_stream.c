/* text_stream.c — see text_stream.h. */
#include "infer/text_stream.h"

#include <stdlib.h>
#include <string.h>

#include "mambac.h"

void mc_text_stream_init(mc_text_stream *s, const char *const *stops, size_t n_stops) {
    memset(s, 0, sizeof *s);
    s->stops = stops;
    s->n_stops = n_stops;
}

void mc_text_stream_free(mc_text_stream *s) {
    free(s->buf);
    memset(s, 0, sizeof *s);
}

int mc_text_stream_push(mc_text_stream *s, const char *bytes, size_t n) {
    if (s->len + n > s->cap) {
        size_t c = s->cap ? s->cap * 2 : 256;
        while (c < s->len + n) c *= 2;
        char *b = realloc(s->buf, c);
        if (!b) return 0;
        s->buf = b;
        s->cap = c;
    }
    memcpy(s->buf + s->len, bytes, n);
    s->len += n;
    return 1;
}

/* First occurrence of any stop string in buf, or len. */
static size_t find_stop(const mc_text_stream *s) {
    size_t best = s->len;
    for (size_t k = 0; k < s->n_stops; k++) {
        size_t m = strlen(s->stops[k]);
        if (m == 0 || m > s->len) continue;
        for (size_t i = 0; i + m <= s->len && i < best; i++)
            if (memcmp(s->buf + i, s->stops[k], m) == 0) {
                best = i;
                break;
            }
    }
    return best;
}

/* Length of the longest suffix of buf that is a proper prefix of some stop string. */
static size_t partial_stop(const mc_text_stream *s) {
    size_t hold = 0;
    for (size_t k = 0; k < s->n_stops; k++) {
        size_t m = strlen(s->stops[k]);
        for (size_t l = m > 0 ? m - 1 : 0; l > hold; l--)
            if (l <= s->len && memcmp(s->buf + s->len - l, s->stops[k], l) == 0) {
                hold = l;
                break;
            }
    }
    return hold;
}

size_t mc_text_stream_ready(mc_text_stream *s, int final) {
    if (s->stopped) return 0;
    size_t at = find_stop(s);
    if (at < s->len) {
        s->stopped = 1;
        return at;
    }
    if (final) return s->len;
    size_t n = s->len - partial_stop(s);
    return mambac_utf8_complete_prefix(s->buf, n);
}

void mc_text_stream_consume(mc_text_stream *s, size_t n) {
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
}
