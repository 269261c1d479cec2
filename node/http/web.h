/*
 * web.h - DICOMweb (PS3.18) on top of http.h: what web.c (routing, authentication, scope)
 * hands to the services qido.c, wado.c and stow.c. Internal to node/http/ (mt__ names).
 *
 * Base URLs: /dicomweb (every study; admin users) and /projects/NAME/dicomweb (the studies
 * of project NAME; users holding the project, or admins). Everything a service reads goes
 * through the query layer (node/index/query.h) with scope.project set, so nothing outside
 * the caller's scope can be returned: an unknown or out-of-scope UID is 404.
 */
#ifndef MT_HTTP_WEB_H
#define MT_HTTP_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "../conf/conf.h"
#include "../dicom/pixel.h"
#include "../index/query.h"
#include "../node.h"
#include "http.h"

#define MT_WEB_MAX_SEGS 40 /* bulkdata/T then 16 levels of S/N nested sequence items */
#define MT_WEB_MAX_PARAMS 64

typedef struct mt_web mt_web_t;

typedef struct mt_web_param {
    char *key, *value; /* percent-decoded ('+' is a space) */
} mt_web_param_t;

/* One DICOMweb request, owned by its service once dispatched. */
typedef struct mt_web_req {
    mt_web_t *web;
    mt_node_t *node;
    mt_http_req_t *r;
    const mt_conf_t *conf; /* snapshot held for the request (mt_node_conf_ref) */
    const char *project;   /* NULL: every study */
    const char *user;      /* the authenticated user's name (in conf), NULL: none */
    char project_buf[65];
    char base[512];        /* absolute base URL, e.g. http://host:8042/projects/x/dicomweb */
    char *segs[MT_WEB_MAX_SEGS]; /* path segments after the base */
    size_t n_segs;
    mt_web_param_t params[MT_WEB_MAX_PARAMS];
    size_t n_params;
} mt_web_req_t;

/* Start/stop the DICOMweb server of a node (http.enabled). */
int mt_web_start(mt_node_t *node, const mt_conf_t *c, mt_web_t **out);
void mt_web_stop(mt_web_t *w);
void mt_web_abort_all(mt_web_t *w);
void mt_web_on_idle(mt_web_t *w, void (*cb)(void *), void *data);
/* After the idle callback (or when never started). */
void mt_web_free(mt_web_t *w);

/* Release a request's resources (after its response has ended). */
void mt__web_req_free(mt_web_req_t *wr);
/* Respond with a short text body and end; frees wr. */
void mt__web_fail(mt_web_req_t *wr, int status, const char *msg);
/* The value of query parameter key (first occurrence), or NULL. */
const char *mt__web_param(const mt_web_req_t *wr, const char *key);
/* The media ranges the client accepts: the accept query parameter (PS3.18 §8.3.3.1) when
 * given (it replaces the header), else the Accept header; NULL when neither. */
const char *mt__web_accept_of(mt_web_req_t *wr);
/* Does the client accept application/dicom+json (also application/json, * / *)? */
bool mt__web_accepts_json(mt_web_req_t *wr);

/* Services: each takes over wr (responds, then frees it). */
void mt__qido(mt_web_req_t *wr, mt_index_level_t level, const char *study, const char *series);
/* what: "" (instances), "metadata", "frames", "rendered", "thumbnail", "bulkdata" */
void mt__wado(mt_web_req_t *wr, const char *study, const char *series, const char *instance,
              const char *what, const char *arg);
void mt__wado_uri(mt_web_req_t *wr);
void mt__stow(mt_web_req_t *wr, const char *study);

/* Rendered resources (rendered.c): the parsed query parameters, the pixel description of a
 * data set, and rendering one frame into JPEG/PNG. */
typedef struct mt_render_opts {
    mt_window_t win;        /* window= / windowCenter+windowWidth (set: given) */
    int vw, vh;             /* viewport (or WADO-URI columns/rows); <= 0: unconstrained */
    bool region;            /* viewport source region sx,sy,sw,sh */
    int sx, sy, sw, sh;
    bool frac_region;       /* WADO-URI region=x1,y1,x2,y2 as fractions */
    double frac[4];
    int quality;            /* JPEG 1-100 */
    bool png, thumb, uri;
    bool annotation_ignored; /* annotation= was given: answer with a Warning */
} mt_render_opts_t;
/* Parse the rendering parameters of wr (uri: WADO-URI names). 0, or 400 with msg. */
int mt__render_opts(const mt_web_req_t *wr, bool thumb, bool uri, mt_render_opts_t *o,
                    char *msg, size_t msgsz);
/* The Image Pixel module of ds (palette LUTs point into ds). */
void mt__render_desc(const mt_ds_t *ds, bool big_endian, mt_pixel_desc_t *d);
/* Render one frame (native, little-endian samples) into out (image/png when o->png, else
 * image/jpeg). 0, or an HTTP status (400, 406, 500) with msg. */
int mt__render(const mt_ds_t *ds, const mt_pixel_desc_t *d, const uint8_t *frame, size_t n,
               const mt_render_opts_t *o, mt_buf_t *out, char *msg, size_t msgsz);

/* Helpers shared by the services */
/* An identifier for the query layer: QueryRetrieveLevel, ISO_IR 192, the UIDs given. */
mt_ds_t *mt__web_identifier(mt_index_level_t level, const char *study, const char *series,
                            const char *instance);
/* One media range of an Accept header. */
typedef struct mt_web_accept {
    char type[96];      /* lower case, e.g. "multipart/related", "application/dicom+json" */
    char part_type[96]; /* multipart: its type= parameter ("" when absent) */
    char ts[72];        /* transfer-syntax= parameter ("" when absent) */
    float q;
} mt_web_accept_t;
/* Parse Accept (NULL or empty = any type); at most max ranges, ordered by q (stable). */
size_t mt__web_accept(const char *accept, mt_web_accept_t *out, size_t max);
/* Does media range `range` accept the concrete type t (wildcards: any, image/any)? */
bool mt__web_type_ok(const char *range, const char *t);
#endif
