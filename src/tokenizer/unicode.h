/* unicode.h — the Unicode pieces the tokenizer needs, on top of utf8proc: UTF-8
 * decoding that tolerates invalid bytes, the character classes of the GPT-2 split
 * pattern (\p{L}, \p{N}, \s as Oniguruma defines them), NFC, and GPT-2's byte-level
 * alphabet (each byte shown as a printable code point). */
#ifndef MC_UNICODE_H
#define MC_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum { MC_CC_OTHER = 0, MC_CC_LETTER = 1, MC_CC_NUMBER = 2, MC_CC_SPACE = 3 };

/* Decodes one code point at s[0..n) (n >= 1). Returns its byte length; *cp is -1 for
 * an invalid or truncated sequence, which then counts as one byte. */
int mc_utf8_decode(const unsigned char *s, size_t n, int32_t *cp);
/* Encodes cp (valid scalar value) into out (4 bytes room); returns the length. */
int mc_utf8_encode(int32_t cp, unsigned char *out);

/* Class of a code point (-1 = invalid byte: MC_CC_OTHER). */
int mc_char_class(int32_t cp);

/* NFC of text[0..len) into a malloc'd buffer. Runs of invalid UTF-8 are kept byte for
 * byte (byte-level BPE encodes any bytes); ASCII-only input is returned as a copy
 * without calling utf8proc. Returns NULL on allocation failure. */
unsigned char *mc_nfc(const unsigned char *text, size_t len, size_t *out_len);
/* The same, counting into *work the comparisons of the canonical ordering (linear time:
 * n log n in a run of combining marks; tests measure it). */
unsigned char *mc_nfc_counted(const unsigned char *text, size_t len, size_t *out_len, size_t *work);

/* Byte-level alphabet: byte b ↔ code point. */
int32_t mc_byte_to_cp(unsigned char b);
/* The byte for a code point of the alphabet, or -1. */
int mc_cp_to_byte(int32_t cp);

/* Length of the longest prefix of s[0..n) that ends on a character boundary: a
 * trailing incomplete (but so far valid) UTF-8 sequence is left out, invalid bytes
 * are not held back. Used to stream text without splitting a character. */
size_t mc_utf8_complete_prefix(const unsigned char *s, size_t n);

#endif
