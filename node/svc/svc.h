/*
 * svc.h - the DIMSE service table (node/dimse_cmds.def) and the services' entry points.
 * assoc.c looks a request's command field up here after the generic checks.
 */
#ifndef MT_SVC_H
#define MT_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../assoc.h"

/* The service for a request command field, or NULL when mitral does not perform it (the
 * caller answers with status 0x0211 Unrecognized Operation). */
const mt_svc_ops_t *mt_svc_lookup(uint16_t command_field);

extern const mt_svc_ops_t mt_svc_echo;
extern const mt_svc_ops_t mt_svc_store;
extern const mt_svc_ops_t mt_svc_find;
extern const mt_svc_ops_t mt_svc_move;
extern const mt_svc_ops_t mt_svc_get;
extern const mt_svc_ops_t mt_svc_commit;

/* move.c: the request handling C-MOVE and C-GET share (get.c uses it). */
void mt__qr_on_request(mt_dimse_req_t *req, bool is_get);
int mt__qr_on_data(mt_dimse_req_t *req, const uint8_t *p, size_t n, bool last);
void mt__qr_on_cancel(mt_dimse_req_t *req);
void mt__qr_on_abort(mt_dimse_req_t *req);

#endif
