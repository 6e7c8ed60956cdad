/* unwrap.h — undoing the hard line wrapping of plain-text books (Project Gutenberg wraps
 * prose at ~70 columns), so that a model trained on them also reads text whose paragraphs
 * are single long lines, as modern prose and typed prompts are. */
#ifndef MC_UNWRAP_H
#define MC_UNWRAP_H

#include <stddef.h>

/* A line of at least this many bytes that runs on into the next line was wrapped. */
#define MC_UNWRAP_MIN_LINE 50

/* In place, length unchanged: every newline that ends a line of at least
 * MC_UNWRAP_MIN_LINE bytes and is followed by a line starting with a visible character
 * becomes a space. Blank lines (paragraph breaks), short lines (verse, headings, lists)
 * and indented continuation lines (quoted verse, tables) keep their newlines. Returns
 * how many newlines became spaces. */
size_t mc_unwrap_text(char *text, size_t len);

#endif
