/*
 * charset.h - DICOM text in any Specific Character Set (0008,0005) to UTF-8. PURE.
 *
 * PS3.5 6.1 and Tables C.12-2 to C.12-5 (PS3.3): the default repertoire, the single-byte sets
 * without code extensions (ISO_IR 100 ... 203, 13, 166), the ISO 2022 code extensions (the same
 * sets and the multi-byte ones: JIS X 0208 / 0212, KS X 1001, GB 2312) switched by escape
 * sequences into G0 or G1, ISO_IR 192 (UTF-8), GB18030 and GBK.
 *
 * With code extensions the initial sets (value 1, or the default repertoire when value 1 is
 * empty) are active again after every value delimiter ('\'), CR, LF, FF, TAB, and in PN after
 * '^' and '=' (PS3.5 6.1.2.5.3); the whole value is converted before it is split, since a
 * two-byte set in G0 uses the same bytes as the delimiters.
 *
 * JIS X 0201 Roman in G0 (ISO_IR 13, ESC ( J) is read as ASCII, as pydicom and most readers do:
 * it differs only at 0x5C, the value delimiter, and 0x7E.
 * Bytes a set cannot map become U+FFFD; an unknown escape sequence is dropped with its ESC;
 * a byte >= 0x80 with nothing designated to G1 is taken as ISO 8859-1 (what this node did for
 * every non-UTF-8 text before, and what most archives do with undeclared 8-bit text).
 * Conversions go through glibc's iconv, which only converts memory.
 */
#ifndef MT_DICOM_CHARSET_H
#define MT_DICOM_CHARSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mt_charset {
    uint8_t g0, g1;     /* initial code elements (charset.c's table; 0 = none in G1) */
    bool utf8;          /* ISO_IR 192 */
    bool ext;           /* ISO 2022 code extensions named (escape sequences may switch sets) */
    const char *whole;  /* GB18030 / GBK: the iconv name of a whole-value decoder, else NULL */
} mt_charset_t;

/* The default repertoire (ASCII, 8-bit bytes read as ISO 8859-1). */
void mt_charset_default(mt_charset_t *cs);

/* Parse a Specific Character Set value (backslash-separated defined terms, padding allowed).
 * Returns 0, or MT_EINVAL for a term this table does not know (*cs is then the default, with
 * every term it did know applied). */
int mt_charset_parse(const char *value, size_t len, mt_charset_t *cs);

/* True when the set declares more than the default repertoire (a G1 set, an ISO 2022 extension,
 * UTF-8, GB18030/GBK). */
bool mt_charset_declared(const mt_charset_t *cs);

/* True when the bytes are already UTF-8 in this character set (ASCII only, or a valid UTF-8
 * string under ISO_IR 192): no conversion needed. */
bool mt_charset_plain(const mt_charset_t *cs, const char *s, size_t n);

/* The value as a NUL-terminated UTF-8 string (mt_malloc'd; NULL only when out of memory).
 * pn: the value is a Person Name ('^' and '=' also reset the code extensions). */
char *mt_charset_to_utf8(const mt_charset_t *cs, const char *s, size_t n, bool pn);

#endif
