/*
 * svc.h - the DIMSE service table (node/dimse_cmds.def) and the services' entry points.
 * assoc.c looks a request's command field up here after the generic checks.
 */
#ifndef MT_SVC_H
#define MT_SVC_H

#include <stdint.h>

#include "../assoc.h"

/* The service for a request command field, or NULL when mitral does not perform it (the
 * caller answers with status 0x0211 Unrecognized Operation). */
const mt_svc_ops_t *mt_svc_lookup(uint16_t command_field);

extern const mt_svc_ops_t mt_svc_echo;
extern const mt_svc_ops_t mt_svc_store;
extern const mt_svc_ops_t mt_svc_find;

#endif
