/*
 * negotiate.c - association acceptance policy: A-ASSOCIATE-RQ + policy -> AC or RJ.
 * The rules, their order and the answers are listed in negotiate.h; this file applies them in
 * that order: association-level checks (reject), then one answer per presentation context, then
 * the user information of the AC.
 */
#include "negotiate.h"

#include <string.h>

#include "dicom/sop.h"
#include "util/err.h"

static void trim_copy(char out[MT_AE_MAX + 1], const char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        n--;
    if (n > MT_AE_MAX)
        n = MT_AE_MAX;
    memcpy(out, s, n);
    out[n] = 0;
}

static bool ae_equal(const char *wire, const char *conf)
{
    char a[MT_AE_MAX + 1], b[MT_AE_MAX + 1];
    trim_copy(a, wire);
    trim_copy(b, conf);
    return strcmp(a, b) == 0;
}

static bool default_abstract(const char *uid)
{
    return strcmp(uid, MT_UID_VERIFICATION) == 0 || mt_sop_is_storage(uid) ||
           strcmp(uid, MT_UID_PATIENT_ROOT_FIND) == 0 || strcmp(uid, MT_UID_STUDY_ROOT_FIND) == 0 ||
           strcmp(uid, MT_UID_PATIENT_STUDY_ONLY_FIND) == 0 ||
           strcmp(uid, MT_UID_PATIENT_ROOT_MOVE) == 0 || strcmp(uid, MT_UID_STUDY_ROOT_MOVE) == 0 ||
           strcmp(uid, MT_UID_PATIENT_ROOT_GET) == 0 || strcmp(uid, MT_UID_STUDY_ROOT_GET) == 0 ||
           strcmp(uid, MT_UID_STORAGE_COMMITMENT) == 0;
}

/* The RQ proposes a C-GET model: storage contexts may then make the requestor an SCP. */
static bool proposes_get(const mt_pdu_assoc_t *rq)
{
    for (size_t i = 0; i < rq->n_pcs; i++)
        if (strcmp(rq->pcs[i].abstract_syntax, MT_UID_PATIENT_ROOT_GET) == 0 ||
            strcmp(rq->pcs[i].abstract_syntax, MT_UID_STUDY_ROOT_GET) == 0)
            return true;
    return false;
}

static bool abstract_ok(const mt_nego_policy_t *pol, const char *uid)
{
    if (uid[0] == 0)
        return false;
    if (pol->abstract_supported)
        return pol->abstract_supported(pol->user, uid);
    return default_abstract(uid);
}

static bool proposed(const mt_pdu_pc_t *pc, const char *ts)
{
    for (size_t i = 0; i < pc->n_ts; i++)
        if (strcmp(pc->ts[i].s, ts) == 0)
            return true;
    return false;
}

/* PS3.7 D.3.3.3: 0 means unlimited. */
static uint16_t min_window(uint16_t proposed_n, uint16_t ours)
{
    if (proposed_n == 0)
        return ours;
    if (ours == 0)
        return proposed_n;
    return proposed_n < ours ? proposed_n : ours;
}

static const mt_pdu_role_t *find_role(const mt_pdu_assoc_t *rq, const char *uid)
{
    if (!rq->has_user_info)
        return NULL;
    for (size_t i = 0; i < rq->ui.n_roles; i++)
        if (strcmp(rq->ui.roles[i].sop_class_uid, uid) == 0)
            return &rq->ui.roles[i];
    return NULL;
}

static int reject(mt_negotiated_t *out, mt_pdu_t *reply, uint8_t result, uint8_t source,
                  uint8_t reason, const char *why)
{
    mt_pdu_dispose(reply);
    mt_pdu_init(reply, MT_PDU_A_ASSOCIATE_RJ);
    reply->u.rj.result = result;
    reply->u.rj.source = source;
    reply->u.rj.reason = reason;
    out->rj_result = result;
    out->rj_source = source;
    out->rj_reason = reason;
    out->rj_why = why;
    return MT_EREJECTED;
}

static int abort_with(mt_pdu_t *reply, mt_pdu_diag_t *diag, const char *why)
{
    mt_pdu_dispose(reply);
    mt_pdu_init(reply, 0);
    if (diag) {
        diag->offset = 0;
        diag->reason = why;
        diag->abort_source = MT_ABORT_SOURCE_SERVICE_PROVIDER;
        diag->abort_reason = MT_ABORT_INVALID_PDU_PARAMETER_VALUE;
    }
    return MT_EMALFORMED;
}

/* Choose the context's answer; fills np. */
static void answer_pc(const mt_nego_policy_t *pol, const mt_pdu_assoc_t *rq, const mt_pdu_pc_t *pc,
                      mt_nego_pc_t *np)
{
    np->id = pc->id;
    memcpy(np->abstract_syntax, pc->abstract_syntax, sizeof(np->abstract_syntax));
    np->requestor_scu = true;
    np->requestor_scp = false;
    if (!abstract_ok(pol, pc->abstract_syntax)) {
        np->result = MT_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED;
        return;
    }
    const char *chosen = NULL;
    for (size_t i = 0; !chosen && i < pol->n_ts_preference; i++)
        if (proposed(pc, pol->ts_preference[i]) && mt_ts_find(pol->ts_preference[i]))
            chosen = pol->ts_preference[i];
    for (size_t i = 0; !chosen && i < pc->n_ts; i++)
        if (pc->ts[i].s[0] && mt_ts_find(pc->ts[i].s))
            chosen = pc->ts[i].s;
    if (!chosen) {
        np->result = MT_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED;
        return;
    }
    /* PS3.7 D.3.3.4: we are SCP only, so the requestor must keep the SCU role */
    const mt_pdu_role_t *r = find_role(rq, pc->abstract_syntax);
    if (r && r->scp_role == 1 && mt_sop_is_storage(pc->abstract_syntax) && proposes_get(rq)) {
        np->requestor_scp = true; /* C-GET: we send C-STORE-RQs on this context */
        np->requestor_scu = r->scu_role == 1;
    } else if (r && r->scu_role != 1) {
        np->result = MT_PC_USER_REJECTION;
        return;
    }
    np->result = MT_PC_ACCEPTANCE;
    size_t n = strlen(chosen);
    memcpy(np->transfer_syntax, chosen, n + 1);
    np->ts = mt_ts_find(chosen);
}

int mt_negotiate(const mt_nego_policy_t *pol, const mt_pdu_assoc_t *rq, mt_negotiated_t *out,
                 mt_pdu_t *reply, mt_pdu_diag_t *diag)
{
    memset(out, 0, sizeof(*out));
    mt_pdu_init(reply, 0);
    memcpy(out->calling_ae, rq->calling_ae, sizeof(out->calling_ae));
    memcpy(out->called_ae, rq->called_ae, sizeof(out->called_ae));
    out->our_max_pdu = pol->max_pdu;
    out->max_ops_invoked = 1;
    out->max_ops_performed = 1;
    if (rq->has_user_info) {
        const mt_pdu_user_info_t *ui = &rq->ui;
        out->peer_max_pdu = ui->has_max_len ? ui->max_len : 0;
        memcpy(out->peer_impl_class_uid, ui->impl_class_uid, sizeof(out->peer_impl_class_uid));
        memcpy(out->peer_impl_version_name, ui->impl_version_name,
               sizeof(out->peer_impl_version_name));
        if (ui->has_identity_rq) {
            out->has_identity = true;
            out->identity_type = ui->identity_type;
            if ((ui->identity_type == MT_IDENTITY_USERNAME ||
                 ui->identity_type == MT_IDENTITY_USERNAME_PASSCODE) &&
                ui->identity_primary) {
                size_t n = ui->identity_primary_len;
                if (n > sizeof(out->identity_user) - 1)
                    n = sizeof(out->identity_user) - 1;
                memcpy(out->identity_user, ui->identity_primary, n);
                out->identity_user[n] = 0;
            }
        }
    }

    /* association-level checks, PS3.8 Table 9-21 (order: negotiate.h) */
    if (!(rq->protocol_version & 1))
        return reject(out, reply, MT_RJ_PERMANENT, MT_RJ_SOURCE_PROVIDER_ACSE,
                      MT_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED, "protocol version not supported");
    if (strcmp(rq->app_context, MT_APP_CONTEXT_UID) != 0)
        return reject(out, reply, MT_RJ_PERMANENT, MT_RJ_SOURCE_SERVICE_USER,
                      MT_RJ_USER_APP_CONTEXT_NOT_SUPPORTED,
                      "application context name not supported");
    const char *const *allow = pol->calling_ae_allow;
    size_t n_allow = pol->n_calling_ae_allow;
    if (pol->n_called_aes) {
        size_t i = 0;
        while (i < pol->n_called_aes && !(pol->called_aes[i].ae_title &&
                                          ae_equal(rq->called_ae, pol->called_aes[i].ae_title)))
            i++;
        if (i == pol->n_called_aes)
            return reject(out, reply, MT_RJ_PERMANENT, MT_RJ_SOURCE_SERVICE_USER,
                          MT_RJ_USER_CALLED_AE_NOT_RECOGNIZED, "called AE title not recognised");
        out->called_index = (int)i;
        allow = pol->called_aes[i].calling_ae_allow;
        n_allow = pol->called_aes[i].n_calling_ae_allow;
    } else if (!pol->ae_title || !ae_equal(rq->called_ae, pol->ae_title)) {
        return reject(out, reply, MT_RJ_PERMANENT, MT_RJ_SOURCE_SERVICE_USER,
                      MT_RJ_USER_CALLED_AE_NOT_RECOGNIZED, "called AE title not recognised");
    }
    if (n_allow) {
        bool ok = false;
        for (size_t i = 0; !ok && i < n_allow; i++)
            ok = ae_equal(rq->calling_ae, allow[i]);
        if (!ok)
            return reject(out, reply, MT_RJ_PERMANENT, MT_RJ_SOURCE_SERVICE_USER,
                          MT_RJ_USER_CALLING_AE_NOT_RECOGNIZED, "calling AE title not recognised");
    }
    if (pol->max_associations && pol->n_associations >= pol->max_associations)
        return reject(out, reply, MT_RJ_TRANSIENT, MT_RJ_SOURCE_PROVIDER_PRESENTATION,
                      MT_RJ_PRES_LOCAL_LIMIT_EXCEEDED, "too many associations");

    /* PS3.8 §9.3.2.2: context ids are distinct odd integers 1..255 */
    if (rq->n_pcs > MT_NEGO_MAX_PCS)
        return abort_with(reply, diag, "more than 128 presentation contexts");
    uint8_t seen[32] = {0};
    for (size_t i = 0; i < rq->n_pcs; i++) {
        uint8_t id = rq->pcs[i].id;
        if ((id & 1) == 0)
            return abort_with(reply, diag, "even presentation context id");
        if (seen[id >> 3] & (1u << (id & 7)))
            return abort_with(reply, diag, "duplicate presentation context id");
        seen[id >> 3] |= (uint8_t)(1u << (id & 7));
    }

    /* PS3.7 D.3.3.7: user identity */
    const uint8_t *id_rsp = NULL;
    size_t id_rsp_len = 0;
    if (rq->has_user_info && rq->ui.has_identity_rq && pol->authorize) {
        if (pol->authorize(pol->user, rq->calling_ae, &rq->ui, &id_rsp, &id_rsp_len) != 0)
            return reject(out, reply, MT_RJ_PERMANENT, MT_RJ_SOURCE_SERVICE_USER,
                          MT_RJ_USER_NO_REASON, "user identity not accepted");
    }

    /* the A-ASSOCIATE-AC */
    mt_pdu_init(reply, MT_PDU_A_ASSOCIATE_AC);
    mt_pdu_assoc_t *ac = &reply->u.assoc;
    ac->protocol_version = 1;
    memcpy(ac->called_ae, rq->called_ae, sizeof(ac->called_ae));
    memcpy(ac->calling_ae, rq->calling_ae, sizeof(ac->calling_ae));
    memcpy(ac->app_context, MT_APP_CONTEXT_UID, sizeof(MT_APP_CONTEXT_UID));

    for (size_t i = 0; i < rq->n_pcs; i++) {
        const mt_pdu_pc_t *pc = &rq->pcs[i];
        mt_nego_pc_t *np = &out->pcs[out->n_pcs++];
        answer_pc(pol, rq, pc, np);
        mt_pdu_pc_t *apc = mt_pdu_pc_add(ac, pc->id, NULL);
        apc->result = np->result;
        if (np->result == MT_PC_ACCEPTANCE) {
            out->n_accepted++;
            mt_pdu_pc_add_ts(apc, np->transfer_syntax);
        } else {
            /* PS3.8 §9.3.3.2: not significant when rejected; echo a proposed one */
            mt_pdu_pc_add_ts(apc, pc->n_ts ? pc->ts[0].s : "1.2.840.10008.1.2");
        }
    }

    mt_pdu_user_info_t *ui = &ac->ui;
    ac->has_user_info = true;
    ui->has_max_len = true;
    ui->max_len = pol->max_pdu;
    memcpy(ui->impl_class_uid, MT_IMPL_CLASS_UID, sizeof(MT_IMPL_CLASS_UID));
    memcpy(ui->impl_version_name, MT_IMPL_VERSION_NAME, sizeof(MT_IMPL_VERSION_NAME));
    if (rq->has_user_info && rq->ui.has_async) {
        ui->has_async = true;
        ui->max_ops_invoked = min_window(rq->ui.max_ops_invoked, pol->max_ops_invoked);
        ui->max_ops_performed = min_window(rq->ui.max_ops_performed, pol->max_ops_performed);
        out->max_ops_invoked = ui->max_ops_invoked;
        out->max_ops_performed = ui->max_ops_performed;
    }
    if (rq->has_user_info) {
        for (size_t i = 0; i < rq->ui.n_roles; i++) {
            const mt_pdu_role_t *r = &rq->ui.roles[i];
            bool accepted = false;
            for (size_t k = 0; !accepted && k < out->n_pcs; k++)
                accepted = out->pcs[k].result == MT_PC_ACCEPTANCE &&
                           strcmp(out->pcs[k].abstract_syntax, r->sop_class_uid) == 0;
            bool answered = false;
            for (size_t k = 0; !answered && k < ui->n_roles; k++)
                answered = strcmp(ui->roles[k].sop_class_uid, r->sop_class_uid) == 0;
            bool get_role = r->scp_role == 1 && mt_sop_is_storage(r->sop_class_uid) &&
                            proposes_get(rq);
            if (accepted && !answered)
                mt_pdu_role_add(ui, r->sop_class_uid, r->scu_role, get_role ? 1 : 0);
        }
        if (rq->ui.has_identity_rq && rq->ui.identity_positive_response_requested)
            mt_pdu_identity_set_ac(ui, id_rsp, id_rsp_len);
    }
    return 0;
}

const mt_nego_pc_t *mt_negotiated_pc(const mt_negotiated_t *n, uint8_t pcid)
{
    for (size_t i = 0; i < n->n_pcs; i++)
        if (n->pcs[i].id == pcid)
            return n->pcs[i].result == MT_PC_ACCEPTANCE ? &n->pcs[i] : NULL;
    return NULL;
}

size_t mt_negotiated_max_pdv(const mt_negotiated_t *n, size_t limit_when_unlimited)
{
    if (n->peer_max_pdu == 0)
        return limit_when_unlimited;
    if (n->peer_max_pdu < 8)
        return 2;
    return n->peer_max_pdu - MT_PDV_HEADER_LEN;
}

/* ---- requestor side ---- */

int mt_nego_build_rq(const mt_nego_rq_params_t *p, mt_pdu_t *rq)
{
    mt_pdu_init(rq, MT_PDU_A_ASSOCIATE_RQ);
    if (!p->calling_ae || !p->called_ae || strlen(p->calling_ae) > MT_AE_MAX ||
        strlen(p->called_ae) > MT_AE_MAX || p->n_pcs == 0 || p->n_pcs > MT_NEGO_MAX_PCS)
        return MT_EINVAL;
    mt_pdu_assoc_t *a = &rq->u.assoc;
    a->protocol_version = 1;
    trim_copy(a->called_ae, p->called_ae);
    trim_copy(a->calling_ae, p->calling_ae);
    memcpy(a->app_context, MT_APP_CONTEXT_UID, sizeof(MT_APP_CONTEXT_UID));
    a->has_user_info = true;
    mt_pdu_user_info_t *ui = &a->ui;
    ui->has_max_len = true;
    ui->max_len = p->max_pdu;
    memcpy(ui->impl_class_uid, MT_IMPL_CLASS_UID, sizeof(MT_IMPL_CLASS_UID));
    memcpy(ui->impl_version_name, MT_IMPL_VERSION_NAME, sizeof(MT_IMPL_VERSION_NAME));
    if (p->max_ops_invoked) {
        ui->has_async = true;
        ui->max_ops_invoked = p->max_ops_invoked;
        ui->max_ops_performed = 1; /* we perform nothing on the acceptor's behalf */
    }
    for (size_t i = 0; i < p->n_pcs; i++) {
        const mt_nego_proposal_t *pp = &p->pcs[i];
        if (!pp->abstract_syntax || pp->n_ts == 0 || pp->n_ts > 8)
            goto fail;
        mt_pdu_pc_t *pc = mt_pdu_pc_add(a, (uint8_t)(2 * i + 1), pp->abstract_syntax);
        if (!pc)
            goto fail;
        for (size_t k = 0; k < pp->n_ts; k++)
            if (mt_pdu_pc_add_ts(pc, pp->ts[k]) != 0)
                goto fail;
        if (pp->role_item) {
            bool dup = false;
            for (size_t k = 0; k < ui->n_roles && !dup; k++)
                dup = strcmp(ui->roles[k].sop_class_uid, pp->abstract_syntax) == 0;
            if (!dup && mt_pdu_role_add(ui, pp->abstract_syntax, pp->we_scu, pp->we_scp) != 0)
                goto fail;
        }
    }
    return 0;
fail:
    mt_pdu_dispose(rq);
    mt_pdu_init(rq, MT_PDU_A_ASSOCIATE_RQ);
    return MT_EINVAL;
}

int mt_nego_read_ac(const mt_pdu_assoc_t *rq, const mt_pdu_assoc_t *ac, mt_negotiated_t *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->calling_ae, rq->calling_ae, sizeof(out->calling_ae));
    memcpy(out->called_ae, rq->called_ae, sizeof(out->called_ae));
    out->our_max_pdu = rq->has_user_info ? rq->ui.max_len : 0;
    out->max_ops_invoked = 1;
    out->max_ops_performed = 1;
    if (ac->has_user_info) {
        out->peer_max_pdu = ac->ui.has_max_len ? ac->ui.max_len : 0;
        memcpy(out->peer_impl_class_uid, ac->ui.impl_class_uid, sizeof(out->peer_impl_class_uid));
        memcpy(out->peer_impl_version_name, ac->ui.impl_version_name,
               sizeof(out->peer_impl_version_name));
        if (ac->ui.has_async && rq->has_user_info && rq->ui.has_async) {
            uint16_t ours = rq->ui.max_ops_invoked, theirs = ac->ui.max_ops_invoked;
            out->max_ops_invoked = theirs == 0 || (ours && theirs > ours) ? ours : theirs;
            out->max_ops_performed = ac->ui.max_ops_performed;
        }
    }
    for (size_t i = 0; i < ac->n_pcs; i++) {
        bool known = false;
        for (size_t k = 0; k < rq->n_pcs && !known; k++)
            known = rq->pcs[k].id == ac->pcs[i].id;
        if (!known)
            return MT_EPROTO;
    }
    for (size_t k = 0; k < rq->n_pcs && out->n_pcs < MT_NEGO_MAX_PCS; k++) {
        const mt_pdu_pc_t *q = &rq->pcs[k];
        mt_nego_pc_t *np = &out->pcs[out->n_pcs++];
        np->id = q->id;
        memcpy(np->abstract_syntax, q->abstract_syntax, sizeof(np->abstract_syntax));
        np->result = MT_PC_NO_REASON;
        np->requestor_scu = true;
        const mt_pdu_pc_t *a = NULL;
        for (size_t i = 0; i < ac->n_pcs && !a; i++)
            if (ac->pcs[i].id == q->id)
                a = &ac->pcs[i];
        if (!a)
            continue; /* not answered: not usable */
        np->result = a->result;
        if (a->result != MT_PC_ACCEPTANCE)
            continue;
        if (a->n_ts < 1 || !proposed(q, a->ts[0].s) || !mt_ts_find(a->ts[0].s)) {
            np->result = MT_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED;
            continue;
        }
        memcpy(np->transfer_syntax, a->ts[0].s, sizeof(np->transfer_syntax));
        np->ts = mt_ts_find(a->ts[0].s);
        const mt_pdu_role_t *ours = find_role(rq, q->abstract_syntax);
        if (ours) {
            /* PS3.7 D.3.3.4: a role is granted when we proposed it and the AC accepts it; no
             * answer item means the defaults (requestor SCU only) */
            const mt_pdu_role_t *ans = find_role(ac, q->abstract_syntax);
            np->requestor_scu = ans ? (ours->scu_role && ans->scu_role) : true;
            np->requestor_scp = ans ? (ours->scp_role && ans->scp_role) : false;
            if (!np->requestor_scu && !np->requestor_scp) {
                np->result = MT_PC_USER_REJECTION;
                np->transfer_syntax[0] = 0;
                np->ts = NULL;
                continue;
            }
        }
        out->n_accepted++;
    }
    return 0;
}

uint8_t mt_nego_find_pc(const mt_negotiated_t *n, const char *abstract_syntax, const char *ts,
                        bool requestor_scp)
{
    for (size_t i = 0; i < n->n_pcs; i++) {
        const mt_nego_pc_t *pc = &n->pcs[i];
        if (pc->result != MT_PC_ACCEPTANCE || strcmp(pc->abstract_syntax, abstract_syntax) != 0)
            continue;
        if (ts && strcmp(pc->transfer_syntax, ts) != 0)
            continue;
        if (requestor_scp ? pc->requestor_scp : pc->requestor_scu)
            return pc->id;
    }
    return 0;
}
