/*
 * negotiate.h - association acceptance policy (PS3.8 §9.3.2-§9.3.4, PS3.7 Annex D): from a
 * decoded A-ASSOCIATE-RQ and a policy, build the A-ASSOCIATE-AC or A-ASSOCIATE-RJ to send and
 * record what was negotiated. PURE: no I/O; the caller (assoc.c via ul.c) encodes and sends.
 *
 * Checks, in this order; the first that fails gives the A-ASSOCIATE-RJ (PS3.8 Table 9-21):
 *   protocol version bit 0 clear                 -> 1 permanent, 2 ACSE,         2 protocol version
 *   application context != 1.2.840.10008.3.1.1.1 -> 1 permanent, 1 service-user, 2 app context
 *   called AE != policy ae_title                 -> 1 permanent, 1 service-user, 7 called AE
 *   calling AE not in the allow list (if any)    -> 1 permanent, 1 service-user, 3 calling AE
 *     (when the policy lists called_aes, the node's title and its projects' titles: the called
 *     AE must be one of them, and the calling AE in THAT entry's allow list; out->called_index
 *     says which entry was called)
 *   n_associations >= max_associations (if set)  -> 2 transient, 3 presentation, 2 local limit
 *   user identity refused by the authorize hook  -> 1 permanent, 1 service-user, 1 no reason
 * AE titles compare without leading/trailing spaces, case-sensitively (PS3.8 §9.3.2).
 *
 * Each presentation context (PS3.8 Table 9-18) gets a result:
 *   0 acceptance               abstract syntax supported, a transfer syntax chosen
 *   1 user rejection           the role selection asks the requestor to be SCP only (C-GET)
 *   3 abstract syntax not supported
 *   4 transfer syntaxes not supported   none of the proposed ones is known (mt_ts_find)
 * Supported abstract syntaxes by default: Verification, every storage SOP class
 * (mt_sop_is_storage), the Query/Retrieve FIND SOP classes (Patient Root, Study Root,
 * Patient/Study Only), MOVE and GET (Patient Root, Study Root) and Storage Commitment Push
 * Model; a policy hook can replace that. The transfer syntax chosen is the first
 * entry of the policy's preference list that the SCU proposed; otherwise the first proposed
 * syntax we know (mt_ts_find), so compressed instances are accepted and stored as sent.
 *
 * User information of the AC: Maximum Length = policy max_pdu (what we receive); implementation
 * class UID / version name = MT_IMPL_CLASS_UID / MT_IMPL_VERSION_NAME; asynchronous operations
 * window (only when proposed): each value the minimum of the proposal and ours, where 0 means
 * unlimited (PS3.7 D.3.3.3); SCP/SCU role selection (PS3.7 D.3.3.4), one answer per proposed
 * item whose SOP class is an accepted abstract syntax: the requestor keeps the SCU role it asked
 * for, we take no SCU role (we are SCP only); a context whose role item asks the requestor to be
 * SCP only is rejected (1), except for a storage SOP class when the RQ also proposes a C-GET
 * model (PS3.4 C.4.3.1: the C-GET SCU is the C-STORE SCP of the sub-operations): then the
 * requestor's SCP role is accepted (the answer echoes its SCU and SCP bits) and the context's
 * requestor_scp is set; mitral sends C-STORE-RQs on such a context. User identity (PS3.7 D.3.3.7): handed to the authorize hook (NULL =
 * accept all); when the RQ asked for a positive response and the identity is accepted, a 0x59
 * sub-item carries the hook's server response (empty for username types).
 * Extended negotiation items (0x56, 0x57) are tolerated and not answered.
 *
 * A request we cannot answer sensibly (a presentation context id that is even or 0, the same
 * id twice, more than 128 contexts) returns MT_EMALFORMED with diag = A-ABORT (2, 6).
 * An RQ without a user information item is tolerated (peer Maximum Length taken as 0, no limit).
 * The A-ASSOCIATE-AC answers every proposed context (rejected ones echo a proposed transfer
 * syntax, which PS3.8 §9.3.3.2 says is not significant).
 */
#ifndef MT_NEGOTIATE_H
#define MT_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dicom/ds.h"
#include "pdu.h"

#define MT_NEGO_MAX_PCS 128 /* odd ids 1..255 */

/* Query/Retrieve information models, FIND (PS3.4 C.6) */
#define MT_UID_PATIENT_ROOT_FIND "1.2.840.10008.5.1.4.1.2.1.1"
#define MT_UID_STUDY_ROOT_FIND "1.2.840.10008.5.1.4.1.2.2.1"
#define MT_UID_PATIENT_STUDY_ONLY_FIND "1.2.840.10008.5.1.4.1.2.3.1" /* retired */
/* MOVE and GET (PS3.4 C.6.1.1, C.6.2.1) */
#define MT_UID_PATIENT_ROOT_MOVE "1.2.840.10008.5.1.4.1.2.1.2"
#define MT_UID_STUDY_ROOT_MOVE "1.2.840.10008.5.1.4.1.2.2.2"
#define MT_UID_PATIENT_ROOT_GET "1.2.840.10008.5.1.4.1.2.1.3"
#define MT_UID_STUDY_ROOT_GET "1.2.840.10008.5.1.4.1.2.2.3"
/* Storage Commitment Push Model (PS3.4 Annex J) and its well-known instance */
#define MT_UID_STORAGE_COMMITMENT "1.2.840.10008.1.20.1"
#define MT_UID_STORAGE_COMMITMENT_INSTANCE "1.2.840.10008.1.20.1.1"

/* One called AE title we answer to, with the calling AE titles it admits (n = 0: any). */
typedef struct mt_nego_ae {
    const char *ae_title;
    const char *const *calling_ae_allow;
    size_t n_calling_ae_allow;
} mt_nego_ae_t;

/* Authorisation hook for the user identity sub-item. Return 0 to accept, optionally setting
 * *response and *response_len to a server response (borrowed: must stay valid until the reply PDU
 * is built, i.e. the end of mt_negotiate; it is copied). Any other value refuses the
 * association (A-ASSOCIATE-RJ 1/1/1). Called only when the RQ carries a user identity. */
typedef int (*mt_nego_authorize_cb)(void *user, const char *calling_ae,
                                    const mt_pdu_user_info_t *ui, const uint8_t **response,
                                    size_t *response_len);
/* Abstract syntax hook: true when we support uid as SCP. NULL = Verification + storage. */
typedef bool (*mt_nego_abstract_cb)(void *user, const char *uid);

typedef struct mt_nego_policy {
    const char *ae_title;                /* our AE title (called AE must match) */
    const char *const *calling_ae_allow; /* allowed calling AE titles; n = 0: any */
    size_t n_calling_ae_allow;
    const char *const *ts_preference; /* transfer syntax UIDs, most preferred first */
    size_t n_ts_preference;
    uint32_t max_pdu;           /* our receive limit, sent as Maximum Length (0 = unlimited) */
    uint16_t max_ops_invoked;   /* ops the requestor may have outstanding on us (0 = unlimited) */
    uint16_t max_ops_performed; /* ops we would invoke on the requestor (mitral: 1) */
    uint32_t n_associations;    /* associations open now, not counting this one */
    uint32_t max_associations;  /* 0 = no limit */
    mt_nego_abstract_cb abstract_supported; /* NULL = default */
    mt_nego_authorize_cb authorize;         /* NULL = accept every identity */
    void *user;                             /* passed to the hooks */
    /* n_called_aes > 0: these called AE titles (each with its allow list) replace ae_title and
     * calling_ae_allow above (node AE + project AEs) */
    const mt_nego_ae_t *called_aes;
    size_t n_called_aes;
} mt_nego_policy_t;

/* One presentation context of the request with our answer. */
typedef struct mt_nego_pc {
    uint8_t id;
    uint8_t result; /* enum mt_pc_result */
    char abstract_syntax[MT_UID_MAX + 1];
    char transfer_syntax[MT_UID_MAX + 1]; /* accepted: chosen syntax; else "" */
    const mt_ts_t *ts;                    /* accepted: mt_ts_find(transfer_syntax); else NULL */
    bool requestor_scu; /* roles after role selection; default: requestor SCU, we SCP */
    bool requestor_scp;
} mt_nego_pc_t;

/* What was negotiated (caller storage, fixed size, nothing to free). */
typedef struct mt_negotiated {
    char calling_ae[MT_AE_MAX + 1];
    char called_ae[MT_AE_MAX + 1];
    mt_nego_pc_t pcs[MT_NEGO_MAX_PCS]; /* every proposed context in RQ order */
    size_t n_pcs;
    size_t n_accepted;
    uint32_t peer_max_pdu;    /* the requestor's Maximum Length: our P-DATA limit, 0 = unlimited */
    uint32_t our_max_pdu;     /* policy max_pdu: what we told the peer we receive */
    uint16_t max_ops_invoked; /* negotiated window (1/1 when not proposed) */
    uint16_t max_ops_performed;
    char peer_impl_class_uid[MT_UID_MAX + 1];
    char peer_impl_version_name[MT_AE_MAX + 1];
    bool has_identity;
    uint8_t identity_type;
    char identity_user[65]; /* primary field for username types (truncated), else "" */
    int called_index; /* entry of policy called_aes that was called (0 without that list) */
    /* set when the result is a rejection */
    uint8_t rj_result, rj_source, rj_reason;
    const char *rj_why; /* static, for logs: "called AE title not recognised" */
} mt_negotiated_t;

/* Apply the policy to rq.
 *   0             accepted: *reply is the A-ASSOCIATE-AC (encode with mt_pdu_encode, then
 *                 mt_pdu_dispose it); *out describes every context (some may be rejected).
 *   MT_EREJECTED  *reply is the A-ASSOCIATE-RJ; out->rj_* and rj_why say why.
 *   MT_EMALFORMED nothing to reply but an A-ABORT: diag has its source/reason; *reply is empty.
 * *reply is always safe to mt_pdu_dispose. */
int mt_negotiate(const mt_nego_policy_t *pol, const mt_pdu_assoc_t *rq, mt_negotiated_t *out,
                 mt_pdu_t *reply, mt_pdu_diag_t *diag);

/* The accepted context with this id, or NULL (not proposed or not accepted). */
const mt_nego_pc_t *mt_negotiated_pc(const mt_negotiated_t *n, uint8_t pcid);

/* ---- the requestor side (node/scu.c): build the A-ASSOCIATE-RQ, read the answer ---- */

typedef struct mt_nego_proposal {
    const char *abstract_syntax;
    const char *ts[8]; /* proposed transfer syntaxes, most preferred first */
    size_t n_ts;
    bool role_item;    /* send an SCP/SCU role selection item for the abstract syntax: */
    bool we_scu;       /*   we (the requestor) may be SCU */
    bool we_scp;       /*   we may be SCP (N-EVENT-REPORT of storage commitment) */
} mt_nego_proposal_t;

typedef struct mt_nego_rq_params {
    const char *calling_ae, *called_ae;
    const mt_nego_proposal_t *pcs; /* context ids 1, 3, 5 ... in this order */
    size_t n_pcs;                  /* at most MT_NEGO_MAX_PCS */
    uint32_t max_pdu;              /* our receive limit (Maximum Length sub-item) */
    uint16_t max_ops_invoked;      /* > 0: propose an asynchronous operations window (PS3.7
                                    * D.3.3.3) of this many outstanding requests, performed 1;
                                    * 0: no window item (one request at a time) */
} mt_nego_rq_params_t;

/* Build the A-ASSOCIATE-RQ (mt_pdu_dispose it). MT_EINVAL for bad parameters (AE too long, no
 * context, too many contexts or syntaxes). */
int mt_nego_build_rq(const mt_nego_rq_params_t *p, mt_pdu_t *rq);
/* Read the peer's A-ASSOCIATE-AC answering rq into out (requestor view): every proposed
 * context with the peer's result and chosen syntax (an accepted context whose syntax was not
 * proposed, or is unknown, counts as rejected), peer_max_pdu, the async window and, from the
 * role items, requestor_scu/requestor_scp (defaults: we are SCU, not SCP). out->n_accepted 0 is
 * not an error (the caller decides). MT_EPROTO when the AC is not an answer to rq (a context
 * id we did not propose).
 * The window (out->max_ops_invoked: requests we may have outstanding) is 1 unless rq proposed
 * one and the AC answers it (PS3.7 D.3.3.3: no item in the AC = the default 1/1); the AC's
 * value, where 0 (unlimited) or more than we proposed counts as what we proposed. */
int mt_nego_read_ac(const mt_pdu_assoc_t *rq, const mt_pdu_assoc_t *ac, mt_negotiated_t *out);

/* The accepted context with this abstract syntax and transfer syntax (ts NULL: any) on which the
 * association requestor is SCU (requestor_scp false) or SCP (true: C-GET sub-operations);
 * 0 when none. */
uint8_t mt_nego_find_pc(const mt_negotiated_t *n, const char *abstract_syntax, const char *ts,
                        bool requestor_scp);

/* Largest PDV value we may put in one P-DATA-TF to this peer (peer_max - 6; 0 = unlimited is
 * mapped to limit_when_unlimited). */
size_t mt_negotiated_max_pdv(const mt_negotiated_t *n, size_t limit_when_unlimited);

#endif
