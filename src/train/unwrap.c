/* unwrap.c — see unwrap.h. */
#include "train/unwrap.h"

size_t mc_unwrap_text(char *text, size_t len) {
    size_t joined = 0, line_start = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '\n') continue;
        const size_t line_len = i - line_start;
        const unsigned char next = i + 1 < len ? (unsigned char)text[i + 1] : '\n';
        if (line_len >= MC_UNWRAP_MIN_LINE && next > ' ') {
            text[i] = ' ';
            joined++;
        }
        line_start = i + 1; /* each printed line is judged by its own length */
    }
    return joined;
}
