/*
 * multipart.h - multipart/related codec (RFC 2387 over RFC 2046 §5.1) for STOW-RS request
 * bodies and WADO-RS responses. PURE: no I/O; push-fed in any fragmentation.
 *
 * Decoder states:  PREAMBLE --"--B"--> AFTER_DELIM --CRLF--> HEADERS --CRLFCRLF--> BODY
 *                  BODY --"CRLF--B"--> AFTER_DELIM;  AFTER_DELIM --"--"--> EPILOGUE
 * The body scan holds back at most len("\r\n--" + boundary) - 1 bytes that might start a
 * delimiter, so a part of any size streams through in bounded memory. The boundary may not
 * contain CR or LF (RFC 2046 bchars), which is what makes the one-character restart of the
 * delimiter match correct. Part headers are limited to MT_MP_MAX_HEADER bytes.
 * Errors: MT_EMALFORMED with diag (offset into the body, static reason); MT_ETOOBIG for
 * headers over the limit; a callback's negative return is passed back.
 */
#ifndef MT_HTTP_MULTIPART_H
#define MT_HTTP_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"

#define MT_MP_MAX_HEADER 8192
#define MT_MP_MAX_BOUNDARY 70

typedef struct mt_mp_part {
    char content_type[256];     /* "" when absent */
    char content_location[512]; /* "" when absent */
} mt_mp_part_t;

typedef struct mt_mp_cb {
    int (*part_begin)(void *user, const mt_mp_part_t *part);
    int (*part_data)(void *user, const uint8_t *p, size_t n);
    int (*part_end)(void *user);
} mt_mp_cb_t;

typedef struct mt_mp mt_mp_t;

/* NULL when the boundary is empty, too long or has characters RFC 2046 does not allow. */
mt_mp_t *mt_mp_new(const char *boundary, const mt_mp_cb_t *cb, void *user);
void mt_mp_free(mt_mp_t *m);
/* 0, the largest positive value part_data returned (a hint such as "pause"), or negative. */
int mt_mp_feed(mt_mp_t *m, const uint8_t *p, size_t n);
/* End of body: MT_EMALFORMED unless the close delimiter was seen. */
int mt_mp_finish(mt_mp_t *m);
const mt_diag_t *mt_mp_diag(const mt_mp_t *m);
size_t mt_mp_parts(const mt_mp_t *m);

/* Media type parameters: from a Content-Type value, the media type (lower case, no
 * parameters) into type and the value of parameter name (unquoted) into val. Returns 0, or
 * MT_ENOENT when the parameter is absent. */
int mt_mp_param(const char *content_type, const char *name, char *type, size_t typesz,
                char *val, size_t valsz);

#endif
