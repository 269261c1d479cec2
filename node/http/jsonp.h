/*
 * jsonp.h - a small JSON reader (RFC 8259) for the DICOM JSON Model bodies STOW-RS receives
 * (node/http/dicomjson.c). PURE: no I/O; the whole text is parsed at once into a tree.
 * (The writer side is node/http/json.c.)
 *
 * Strict: one value with optional surrounding white space; no comments, trailing commas, NaN
 * or leading zeros; strings must be valid UTF-8 with no raw control characters; \uXXXX
 * escapes (surrogate pairs joined) become UTF-8; a lone surrogate or "\u0000" is refused
 * (DICOM text cannot carry NUL). Nesting is limited (MT_JSONP_MAX_DEPTH) so hostile input
 * cannot exhaust the stack; every size is bounded by the input length, which the caller
 * limits before parsing. Numbers keep their literal text (IS/DS are stored as sent) and a
 * double. Object members keep their order; a repeated name is kept (mt_jsonv_get finds the first;
 * the DICOM JSON reader refuses repeated tags itself, in O(n log n)). Errors: MT_EMALFORMED with
 * diag (byte offset, static reason).
 */
#ifndef MT_HTTP_JSONP_H
#define MT_HTTP_JSONP_H

#include <stddef.h>

#include "../dicom/ds.h"

#define MT_JSONP_MAX_DEPTH 64

typedef enum mt_jsonv_type {
    MT_JSON_NULL,
    MT_JSON_FALSE,
    MT_JSON_TRUE,
    MT_JSON_NUMBER,
    MT_JSON_STRING,
    MT_JSON_ARRAY,
    MT_JSON_OBJECT,
} mt_jsonv_type_t;

typedef struct mt_jsonv mt_jsonv_t;
struct mt_jsonv {
    mt_jsonv_type_t type;
    char *str;        /* STRING: decoded UTF-8, NUL-terminated; NUMBER: the literal */
    size_t len;       /* bytes at str */
    double num;       /* NUMBER */
    mt_jsonv_t *kids; /* ARRAY: the elements; OBJECT: the member values */
    char **keys;      /* OBJECT: the member names (decoded, NUL-terminated) */
    size_t n;         /* ARRAY/OBJECT: count */
};

/* Parse text[0..len). On success *out is the tree (free with mt_jsonv_free). */
int mt_jsonp_parse(const char *text, size_t len, mt_jsonv_t **out, mt_diag_t *diag);
/* The same with a budget of values (each number, string, literal, array and object counts
 * one; a tree costs about 56 bytes a value, so the budget bounds its memory whatever the
 * text): *budget is decreased by what the text used; more than it holds: MT_ETOOBIG (diag
 * "more values than allowed"). */
int mt_jsonp_parse_n(const char *text, size_t len, size_t *budget, mt_jsonv_t **out,
                     mt_diag_t *diag);
void mt_jsonv_free(mt_jsonv_t *v);
/* The member named key of an object, NULL when absent or v is not an object. */
const mt_jsonv_t *mt_jsonv_get(const mt_jsonv_t *v, const char *key);

#endif
