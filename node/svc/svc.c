/*
 * svc.c - the DIMSE service table, built from node/dimse_cmds.def: command field -> service.
 * assoc.c has already made the generic checks (known command, accepted context, SOP class
 * matches) when it looks one up; a NULL handler (a service not performed yet) is answered
 * 0x0211 Unrecognized Operation by assoc.c.
 */
#include "svc.h"

#include <stddef.h>

static const struct {
    uint16_t command_field;
    const mt_svc_ops_t *ops;
} services[] = {
#define MT_DIMSE_CMD(name, field, flags, handler) {field, MT_SVC_OPS_##handler},
#define MT_SVC_OPS_mt_svc_echo (&mt_svc_echo)
#define MT_SVC_OPS_mt_svc_store (&mt_svc_store)
#define MT_SVC_OPS_mt_svc_find (&mt_svc_find)
#define MT_SVC_OPS_mt_svc_move (&mt_svc_move)
#define MT_SVC_OPS_mt_svc_get (&mt_svc_get)
#define MT_SVC_OPS_mt_svc_commit (&mt_svc_commit)
#define MT_SVC_OPS_NULL NULL
#include "../dimse_cmds.def"
#undef MT_DIMSE_CMD
};

const mt_svc_ops_t *mt_svc_lookup(uint16_t command_field)
{
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
        if (services[i].command_field == command_field)
            return services[i].ops;
    return NULL;
}
