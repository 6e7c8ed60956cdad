/* test_text_stream.c — the streaming rules of `generate`: a UTF-8 character split
 * across tokens is released whole; a stop string split across tokens is never
 * printed, nor anything after it; text that only looked like the start of a stop
 * string is released once it diverges; the final flush releases the rest. */
#include <string.h>

#include "check.h"
#include "infer/text_stream.h"

/* Pushes pieces one by one, collecting what is released; returns the output. */
static const char *run(const char *const *pieces, size_t n, const char *const *stops, size_t n_stops, int *stopped) {
    static char out[256];
    size_t o = 0;
    mc_text_stream s;
    mc_text_stream_init(&s, stops, n_stops);
    for (size_t i = 0; i < n && !s.stopped; i++) {
        mc_text_stream_push(&s, pieces[i], strlen(pieces[i]));
        size_t k = mc_text_stream_ready(&s, 0);
        memcpy(out + o, s.buf, k), o += k;
        mc_text_stream_consume(&s, k);
    }
    size_t k = mc_text_stream_ready(&s, 1);
    memcpy(out + o, s.buf, k), o += k;
    out[o] = 0;
    *stopped = s.stopped;
    mc_text_stream_free(&s);
    return out;
}

int main(void) {
    int stopped;
    /* "é" = C3 A9 split across two tokens: nothing of it shows until both are in. */
    mc_text_stream s;
    mc_text_stream_init(&s, NULL, 0);
    mc_text_stream_push(&s, "ab\xc3", 3);
    CHECK(mc_text_stream_ready(&s, 0) == 2, "holds back the first half of a character");
    mc_text_stream_push(&s, "\xa9", 1);
    CHECK(mc_text_stream_ready(&s, 0) == 4, "releases it once complete");
    mc_text_stream_free(&s);
    /* Invalid bytes are not held forever. */
    mc_text_stream_init(&s, NULL, 0);
    mc_text_stream_push(&s, "x\xff", 2);
    CHECK(mc_text_stream_ready(&s, 0) == 2, "invalid byte released");
    mc_text_stream_free(&s);

    const char *stops[] = {"END", "\n\n"};
    const char *p1[] = {"Hello E", "N", "D and more"};
    CHECK(strcmp(run(p1, 3, stops, 2, &stopped), "Hello ") == 0 && stopped, "stop split across tokens: '%s'", run(p1, 3, stops, 2, &stopped));
    const char *p2[] = {"an EN", "TRY here"};
    CHECK(strcmp(run(p2, 2, stops, 2, &stopped), "an ENTRY here") == 0 && !stopped, "near-stop released");
    const char *p3[] = {"line\n", "\nnext"};
    CHECK(strcmp(run(p3, 2, stops, 2, &stopped), "line") == 0 && stopped, "second stop string");
    const char *p4[] = {"ends with E"};
    CHECK(strcmp(run(p4, 1, stops, 2, &stopped), "ends with E") == 0 && !stopped, "final flush releases a held prefix");
    const char *p5[] = {"xEND"};
    CHECK(strcmp(run(p5, 1, stops, 2, &stopped), "x") == 0 && stopped, "stop inside one token");
    return check_summary();
}
