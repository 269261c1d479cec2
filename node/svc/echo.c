/* echo.c - C-ECHO SCP (PS3.4 Annex A, Verification Service Class): always answers Success. */
#include "svc.h"

#include <string.h>

#include "../util/err.h"

static void echo_on_request(mt_dimse_req_t *req)
{
    mt_dimse_cmd_t rsp;
    mt_dimse_cmd_init(&rsp);
    rsp.command_field = MT_C_ECHO_RSP;
    rsp.message_id_responded_to = req->cmd.message_id;
    rsp.status = MT_STATUS_SUCCESS;
    rsp.has_status = true;
    strcpy(rsp.affected_sop_class_uid, req->cmd.affected_sop_class_uid);
    mt_assoc_respond(req, &rsp, NULL, 0);
}

static int echo_on_data(mt_dimse_req_t *req, const uint8_t *p, size_t n, bool last)
{
    (void)req, (void)p, (void)n, (void)last;
    return MT_EPROTO; /* C-ECHO-RQ carries no data set */
}

static void echo_on_abort(mt_dimse_req_t *req)
{
    mt_dimse_req_release(req);
}

const mt_svc_ops_t mt_svc_echo = {echo_on_request, echo_on_data, echo_on_abort, NULL};
