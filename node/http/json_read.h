/*
 * json_read.h - a small JSON (RFC 8259) reader into a tree. PURE.
 *
 * Used for what peers answer us (the STOW-RS response of a destination, node/http/
 * stow_client.c); json.c is the encoder. The input is bounded by the caller (the HTTP client
 * keeps at most its body limit) and nesting by MT_JSONR_MAX_DEPTH, so a hostile body costs at
 * most a few times its size. Strings are decoded (escapes, \uXXXX with surrogate pairs ->
 * UTF-8); a string with a NUL is refused. Numbers keep their text and a double.
 *
 * The tree is one heap block list owned by the document: mt_jsonr_free releases it.
 */
#ifndef MT_HTTP_JSON_READ_H
#define MT_HTTP_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>

#define MT_JSONR_MAX_DEPTH 32

typedef enum {
    MT_JSON_NULL,
    MT_JSON_FALSE,
    MT_JSON_TRUE,
    MT_JSON_NUMBER,
    MT_JSON_STRING,
    MT_JSON_ARRAY,
    MT_JSON_OBJECT
} mt_json_type_t;

typedef struct mt_jsonv mt_jsonv_t;
struct mt_jsonv {
    mt_json_type_t type;
    char *key;                /* member name when inside an object, else NULL */
    char *str;                /* STRING: decoded text; NUMBER: the literal */
    double num;               /* NUMBER */
    mt_jsonv_t *child, *next; /* ARRAY/OBJECT: first element; next sibling */
    size_t n;                 /* ARRAY/OBJECT: number of elements */
};

/* Parse len bytes (the whole text; leading/trailing white space allowed). 0 and *out, or
 * MT_EMALFORMED with *at = the byte offset and *why a static reason. */
int mt_jsonr_parse(const char *text, size_t len, mt_jsonv_t **out, size_t *at, const char **why);
void mt_jsonr_free(mt_jsonv_t *v);
/* The member key of an object, or NULL (also when v is not an object). */
const mt_jsonv_t *mt_jsonr_get(const mt_jsonv_t *obj, const char *key);

#endif
