/*
 * pdv.c - PDV reassembly: command sets reassembled (bounded), data sets streamed through.
 * The state diagram, the rules (PS3.8 §9.3.5.1 / Annex E.2, PS3.7 §6.3.1) and the error list are
 * in pdv.h. One message at a time: every transition is in mt_pdv_feed.
 */
#include "pdv.h"

#include <string.h>

#include "util/err.h"

void mt_pdv_init(mt_pdv_asm_t *a, size_t max_command, mt_pdv_cb cb, void *user)
{
    memset(a, 0, sizeof(*a));
    a->state = MT_PDV_IDLE;
    a->max_command = max_command ? max_command : MT_PDV_DEFAULT_MAX_COMMAND;
    mt_buf_init(&a->cmd, a->max_command);
    a->cb = cb;
    a->user = user;
}

void mt_pdv_dispose(mt_pdv_asm_t *a)
{
    mt_buf_dispose(&a->cmd);
    a->state = MT_PDV_IDLE;
}

void mt_pdv_allow(mt_pdv_asm_t *a, uint8_t pcid)
{
    a->allowed[pcid >> 3] |= (uint8_t)(1u << (pcid & 7));
}

bool mt_pdv_is_allowed(const mt_pdv_asm_t *a, uint8_t pcid)
{
    return (a->allowed[pcid >> 3] >> (pcid & 7)) & 1u;
}

bool mt_pdv_idle(const mt_pdv_asm_t *a)
{
    return a->state == MT_PDV_IDLE;
}

static void reset(mt_pdv_asm_t *a)
{
    a->state = MT_PDV_IDLE;
    a->pcid = 0;
    a->data_bytes = 0;
    mt_buf_reset(&a->cmd);
}

static int fail(mt_pdv_asm_t *a, mt_pdu_diag_t *diag, int err, uint8_t reason, const char *why)
{
    reset(a);
    if (diag) {
        diag->offset = 0;
        diag->reason = why;
        diag->abort_source = MT_ABORT_SOURCE_SERVICE_PROVIDER;
        diag->abort_reason = reason;
    }
    return err;
}

#define UNEXPECTED(why) fail(a, diag, MT_EPROTO, MT_ABORT_UNEXPECTED_PDU_PARAMETER, why)

int mt_pdv_feed(mt_pdv_asm_t *a, const mt_pdv_t *pdv, mt_pdu_diag_t *diag)
{
    if (!mt_pdv_is_allowed(a, pdv->pcid))
        return fail(a, diag, MT_EPROTO, MT_ABORT_INVALID_PDU_PARAMETER_VALUE,
                    "PDV for a presentation context that was not accepted");
    switch (a->state) {
    case MT_PDV_IDLE:
        if (!pdv->command)
            return UNEXPECTED("data set fragment without a command set before it");
        a->state = MT_PDV_COMMAND;
        a->pcid = pdv->pcid;
        mt_buf_reset(&a->cmd);
        /* fall through */
    case MT_PDV_COMMAND: {
        if (pdv->pcid != a->pcid)
            return UNEXPECTED("fragment on another presentation context inside a command set");
        if (!pdv->command)
            return UNEXPECTED("data set fragment before the last command fragment");
        if (mt_buf_append(&a->cmd, pdv->data, pdv->len))
            return fail(a, diag, MT_ETOOBIG, MT_ABORT_INVALID_PDU_PARAMETER_VALUE,
                        "command set longer than the limit");
        if (!pdv->last)
            return 0;
        mt_pdv_event_t ev = {MT_PDV_EV_COMMAND, a->pcid, a->cmd.data, a->cmd.len, true, false};
        int rc = a->cb(a->user, &ev);
        if (rc < 0) {
            reset(a);
            return rc;
        }
        mt_buf_reset(&a->cmd);
        if (ev.expect_data) {
            a->state = MT_PDV_DATA;
            a->data_bytes = 0;
        } else {
            a->state = MT_PDV_IDLE;
        }
        return 0;
    }
    case MT_PDV_DATA: {
        if (pdv->command)
            return UNEXPECTED("command fragment while a data set is in progress");
        if (pdv->pcid != a->pcid)
            return UNEXPECTED("data set fragment on another presentation context");
        a->data_bytes += pdv->len;
        if (pdv->last)
            a->state = MT_PDV_IDLE;
        mt_pdv_event_t ev = {MT_PDV_EV_DATA, pdv->pcid, pdv->data, pdv->len, pdv->last, false};
        int rc = a->cb(a->user, &ev);
        if (rc < 0) {
            reset(a);
            return rc;
        }
        if (pdv->last)
            a->data_bytes = 0;
        return 0;
    }
    }
    return fail(a, diag, MT_EPROTO, MT_ABORT_REASON_NOT_SPECIFIED, "bad assembler state");
}

int mt_pdv_feed_pdu(mt_pdv_asm_t *a, const mt_pdu_t *pdata, mt_pdu_diag_t *diag)
{
    if (pdata->type != MT_PDU_P_DATA_TF)
        return MT_EINVAL;
    mt_pdv_iter_t it;
    mt_pdv_iter_init(&it, pdata);
    for (;;) {
        size_t off = MT_PDU_HEADER_LEN + (size_t)(it.pos - pdata->u.pdata.items);
        mt_pdv_t pdv;
        int rc = mt_pdv_next(&it, &pdv, diag);
        if (rc == 0)
            return 0;
        if (rc < 0) {
            reset(a);
            if (diag)
                diag->offset += off;
            return rc;
        }
        if (diag)
            diag->reason = NULL; /* set again only by an assembler error, not a callback's */
        rc = mt_pdv_feed(a, &pdv, diag);
        if (rc < 0) {
            if (diag && diag->reason)
                diag->offset = off;
            return rc;
        }
    }
}

int mt_pdv_finish(mt_pdv_asm_t *a, mt_pdu_diag_t *diag)
{
    if (a->state == MT_PDV_IDLE)
        return 0;
    return fail(a, diag, MT_EPROTO, MT_ABORT_UNEXPECTED_PDU,
                "association ended inside a DIMSE message");
}
