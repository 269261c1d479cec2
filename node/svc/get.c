/*
 * get.c - C-GET SCP (PS3.4 C.4.3): Patient Root and Study Root. The request handling is
 * move.c's (identifier -> instances off the loop -> sub-operations -> pending and final
 * responses); the C-STORE sub-operations go on the requester's own association (assoc.c's
 * link: the contexts on which the requester took the SCP role in the role selection
 * negotiation, negotiate.c), and their C-STORE-RSPs come back on it.
 */
#include "svc.h"

static void get_on_request(mt_dimse_req_t *req)
{
    mt__qr_on_request(req, true);
}

const mt_svc_ops_t mt_svc_get = {get_on_request, mt__qr_on_data, mt__qr_on_abort, mt__qr_on_cancel};
