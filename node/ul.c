/*
 * ul.c - PS3.8 §9.2 upper layer state machine: Table 9-10 as data, plus one function per
 * action of Tables 9-6 (AE), 9-7 (DT), 9-8 (AR) and 9-9 (AA). PURE (see ul.h).
 *
 * State diagram of the acceptor side (the path mitral takes for every association it accepts;
 * the requestor side Sta4/Sta5/Sta7 and the collision states Sta9-Sta12 are in the table for
 * completeness and for node/scu.c):
 *
 *            Evt5 AE-5            Evt6 AE-6             Evt7 AE-7
 *   Sta1 ----------------> Sta2 --------------> Sta3 ----------------> Sta6 <--+ Evt9 DT-1
 *    ^                      |  \ Evt18 AA-2       | Evt8 AE-8           |  |  --+ Evt10 DT-2
 *    |                      |   `-------> Sta1    v                     |  | Evt12 AR-2
 *    |  Evt17 AR-5          |  (AE-6 reject)   Sta13 <------------------+  v
 *    +-------------------- Sta13 <--------------------- AR-4 Evt14 --- Sta8
 *
 * Any PDU that does not fit the state is answered per the table, mostly AA-8: A-ABORT
 * (service-provider source, reason "unexpected PDU"), A-P-ABORT indication, ARTIM started,
 * Sta13; the peer then closes (Evt17, AR-5) or ARTIM expires (Evt18, AA-2).
 *
 * Invariant: ul->state changes only in set_state(), which writes the trace line
 * "Sta6 -> Sta8 [AR-2]".
 */
#include "ul.h"

#include <stddef.h>
#include <string.h>

#include "util/err.h"

struct ul_cell {
    mt_ul_action_t action;
    mt_ul_state_t next; /* 0: decided by the action (AE-6, AR-8) */
};

/* PS3.8 Table 9-10, one row per event in the standard's order. A zero cell is a local-usage
 * error (a bug), or a PDU in a state where there is no transport connection (Sta1, Sta4). */
/* clang-format off */
static const struct ul_cell ul_table[MT_UL_EV_COUNT][MT_STA_COUNT] = {
    [MT_UL_EV_A_ASSOCIATE_RQ] = { [MT_STA1] = {MT_AE_1, MT_STA4} },
    [MT_UL_EV_TRANSPORT_CONFIRM] = { [MT_STA4] = {MT_AE_2, MT_STA5} },
    [MT_UL_EV_A_ASSOCIATE_AC_PDU] = {
        [MT_STA2] = {MT_AA_1, MT_STA13},  [MT_STA3] = {MT_AA_8, MT_STA13},
        [MT_STA5] = {MT_AE_3, MT_STA6},   [MT_STA6] = {MT_AA_8, MT_STA13},
        [MT_STA7] = {MT_AA_8, MT_STA13},  [MT_STA8] = {MT_AA_8, MT_STA13},
        [MT_STA9] = {MT_AA_8, MT_STA13},  [MT_STA10] = {MT_AA_8, MT_STA13},
        [MT_STA11] = {MT_AA_8, MT_STA13}, [MT_STA12] = {MT_AA_8, MT_STA13},
        [MT_STA13] = {MT_AA_6, MT_STA13},
    },
    [MT_UL_EV_A_ASSOCIATE_RJ_PDU] = {
        [MT_STA2] = {MT_AA_1, MT_STA13},  [MT_STA3] = {MT_AA_8, MT_STA13},
        [MT_STA5] = {MT_AE_4, MT_STA1},   [MT_STA6] = {MT_AA_8, MT_STA13},
        [MT_STA7] = {MT_AA_8, MT_STA13},  [MT_STA8] = {MT_AA_8, MT_STA13},
        [MT_STA9] = {MT_AA_8, MT_STA13},  [MT_STA10] = {MT_AA_8, MT_STA13},
        [MT_STA11] = {MT_AA_8, MT_STA13}, [MT_STA12] = {MT_AA_8, MT_STA13},
        [MT_STA13] = {MT_AA_6, MT_STA13},
    },
    [MT_UL_EV_TRANSPORT_INDICATION] = { [MT_STA1] = {MT_AE_5, MT_STA2} },
    [MT_UL_EV_A_ASSOCIATE_RQ_PDU] = {
        [MT_STA2] = {MT_AE_6, 0},         [MT_STA3] = {MT_AA_8, MT_STA13},
        [MT_STA5] = {MT_AA_8, MT_STA13},  [MT_STA6] = {MT_AA_8, MT_STA13},
        [MT_STA7] = {MT_AA_8, MT_STA13},  [MT_STA8] = {MT_AA_8, MT_STA13},
        [MT_STA9] = {MT_AA_8, MT_STA13},  [MT_STA10] = {MT_AA_8, MT_STA13},
        [MT_STA11] = {MT_AA_8, MT_STA13}, [MT_STA12] = {MT_AA_8, MT_STA13},
        [MT_STA13] = {MT_AA_7, MT_STA13},
    },
    [MT_UL_EV_A_ASSOCIATE_RSP_AC] = { [MT_STA3] = {MT_AE_7, MT_STA6} },
    [MT_UL_EV_A_ASSOCIATE_RSP_RJ] = { [MT_STA3] = {MT_AE_8, MT_STA13} },
    [MT_UL_EV_P_DATA_RQ] = { [MT_STA6] = {MT_DT_1, MT_STA6}, [MT_STA8] = {MT_AR_7, MT_STA8} },
    [MT_UL_EV_P_DATA_TF_PDU] = {
        [MT_STA2] = {MT_AA_1, MT_STA13},  [MT_STA3] = {MT_AA_8, MT_STA13},
        [MT_STA5] = {MT_AA_8, MT_STA13},  [MT_STA6] = {MT_DT_2, MT_STA6},
        [MT_STA7] = {MT_AR_6, MT_STA7},   [MT_STA8] = {MT_AA_8, MT_STA13},
        [MT_STA9] = {MT_AA_8, MT_STA13},  [MT_STA10] = {MT_AA_8, MT_STA13},
        [MT_STA11] = {MT_AA_8, MT_STA13}, [MT_STA12] = {MT_AA_8, MT_STA13},
        [MT_STA13] = {MT_AA_6, MT_STA13},
    },
    [MT_UL_EV_A_RELEASE_RQ] = { [MT_STA6] = {MT_AR_1, MT_STA7} },
    [MT_UL_EV_A_RELEASE_RQ_PDU] = {
        [MT_STA2] = {MT_AA_1, MT_STA13},  [MT_STA3] = {MT_AA_8, MT_STA13},
        [MT_STA5] = {MT_AA_8, MT_STA13},  [MT_STA6] = {MT_AR_2, MT_STA8},
        [MT_STA7] = {MT_AR_8, 0},         [MT_STA8] = {MT_AA_8, MT_STA13},
        [MT_STA9] = {MT_AA_8, MT_STA13},  [MT_STA10] = {MT_AA_8, MT_STA13},
        [MT_STA11] = {MT_AA_8, MT_STA13}, [MT_STA12] = {MT_AA_8, MT_STA13},
        [MT_STA13] = {MT_AA_6, MT_STA13},
    },
    [MT_UL_EV_A_RELEASE_RP_PDU] = {
        [MT_STA2] = {MT_AA_1, MT_STA13},  [MT_STA3] = {MT_AA_8, MT_STA13},
        [MT_STA5] = {MT_AA_8, MT_STA13},  [MT_STA6] = {MT_AA_8, MT_STA13},
        [MT_STA7] = {MT_AR_3, MT_STA1},   [MT_STA8] = {MT_AA_8, MT_STA13},
        [MT_STA9] = {MT_AA_8, MT_STA13},  [MT_STA10] = {MT_AR_10, MT_STA12},
        [MT_STA11] = {MT_AR_3, MT_STA1},  [MT_STA12] = {MT_AA_8, MT_STA13},
        [MT_STA13] = {MT_AA_6, MT_STA13},
    },
    [MT_UL_EV_A_RELEASE_RSP] = {
        [MT_STA8] = {MT_AR_4, MT_STA13},  [MT_STA9] = {MT_AR_9, MT_STA11},
        [MT_STA12] = {MT_AR_4, MT_STA13},
    },
    [MT_UL_EV_A_ABORT_RQ] = {
        [MT_STA3] = {MT_AA_1, MT_STA13},  [MT_STA4] = {MT_AA_2, MT_STA1},
        [MT_STA5] = {MT_AA_1, MT_STA13},  [MT_STA6] = {MT_AA_1, MT_STA13},
        [MT_STA7] = {MT_AA_1, MT_STA13},  [MT_STA8] = {MT_AA_1, MT_STA13},
        [MT_STA9] = {MT_AA_1, MT_STA13},  [MT_STA10] = {MT_AA_1, MT_STA13},
        [MT_STA11] = {MT_AA_1, MT_STA13}, [MT_STA12] = {MT_AA_1, MT_STA13},
    },
    [MT_UL_EV_A_ABORT_PDU] = {
        [MT_STA2] = {MT_AA_2, MT_STA1},   [MT_STA3] = {MT_AA_3, MT_STA1},
        [MT_STA5] = {MT_AA_3, MT_STA1},   [MT_STA6] = {MT_AA_3, MT_STA1},
        [MT_STA7] = {MT_AA_3, MT_STA1},   [MT_STA8] = {MT_AA_3, MT_STA1},
        [MT_STA9] = {MT_AA_3, MT_STA1},   [MT_STA10] = {MT_AA_3, MT_STA1},
        [MT_STA11] = {MT_AA_3, MT_STA1},  [MT_STA12] = {MT_AA_3, MT_STA1},
        [MT_STA13] = {MT_AA_2, MT_STA1},
    },
    [MT_UL_EV_TRANSPORT_CLOSED] = {
        [MT_STA2] = {MT_AA_5, MT_STA1},   [MT_STA3] = {MT_AA_4, MT_STA1},
        [MT_STA4] = {MT_AA_4, MT_STA1},   [MT_STA5] = {MT_AA_4, MT_STA1},
        [MT_STA6] = {MT_AA_4, MT_STA1},   [MT_STA7] = {MT_AA_4, MT_STA1},
        [MT_STA8] = {MT_AA_4, MT_STA1},   [MT_STA9] = {MT_AA_4, MT_STA1},
        [MT_STA10] = {MT_AA_4, MT_STA1},  [MT_STA11] = {MT_AA_4, MT_STA1},
        [MT_STA12] = {MT_AA_4, MT_STA1},  [MT_STA13] = {MT_AR_5, MT_STA1},
    },
    [MT_UL_EV_ARTIM_EXPIRED] = { [MT_STA2] = {MT_AA_2, MT_STA1}, [MT_STA13] = {MT_AA_2, MT_STA1} },
    [MT_UL_EV_INVALID_PDU] = {
        [MT_STA2] = {MT_AA_1, MT_STA13},  [MT_STA3] = {MT_AA_8, MT_STA13},
        [MT_STA5] = {MT_AA_8, MT_STA13},  [MT_STA6] = {MT_AA_8, MT_STA13},
        [MT_STA7] = {MT_AA_8, MT_STA13},  [MT_STA8] = {MT_AA_8, MT_STA13},
        [MT_STA9] = {MT_AA_8, MT_STA13},  [MT_STA10] = {MT_AA_8, MT_STA13},
        [MT_STA11] = {MT_AA_8, MT_STA13}, [MT_STA12] = {MT_AA_8, MT_STA13},
        [MT_STA13] = {MT_AA_7, MT_STA13},
    },
};
/* clang-format on */

/* ---- name tables (tracing) ---- */

/* clang-format off */
static const char *const state_names[MT_STA_COUNT] = {
    [MT_STA1] = "Sta1",   [MT_STA2] = "Sta2",   [MT_STA3] = "Sta3",   [MT_STA4] = "Sta4",
    [MT_STA5] = "Sta5",   [MT_STA6] = "Sta6",   [MT_STA7] = "Sta7",   [MT_STA8] = "Sta8",
    [MT_STA9] = "Sta9",   [MT_STA10] = "Sta10", [MT_STA11] = "Sta11", [MT_STA12] = "Sta12",
    [MT_STA13] = "Sta13",
};
/* clang-format on */

static const struct {
    const char *name, *desc;
} event_names[MT_UL_EV_COUNT] = {
    [MT_UL_EV_A_ASSOCIATE_RQ] = {"Evt1", "A-ASSOCIATE request"},
    [MT_UL_EV_TRANSPORT_CONFIRM] = {"Evt2", "transport connect confirmation"},
    [MT_UL_EV_A_ASSOCIATE_AC_PDU] = {"Evt3", "A-ASSOCIATE-AC PDU"},
    [MT_UL_EV_A_ASSOCIATE_RJ_PDU] = {"Evt4", "A-ASSOCIATE-RJ PDU"},
    [MT_UL_EV_TRANSPORT_INDICATION] = {"Evt5", "transport connection indication"},
    [MT_UL_EV_A_ASSOCIATE_RQ_PDU] = {"Evt6", "A-ASSOCIATE-RQ PDU"},
    [MT_UL_EV_A_ASSOCIATE_RSP_AC] = {"Evt7", "A-ASSOCIATE response (accept)"},
    [MT_UL_EV_A_ASSOCIATE_RSP_RJ] = {"Evt8", "A-ASSOCIATE response (reject)"},
    [MT_UL_EV_P_DATA_RQ] = {"Evt9", "P-DATA request"},
    [MT_UL_EV_P_DATA_TF_PDU] = {"Evt10", "P-DATA-TF PDU"},
    [MT_UL_EV_A_RELEASE_RQ] = {"Evt11", "A-RELEASE request"},
    [MT_UL_EV_A_RELEASE_RQ_PDU] = {"Evt12", "A-RELEASE-RQ PDU"},
    [MT_UL_EV_A_RELEASE_RP_PDU] = {"Evt13", "A-RELEASE-RP PDU"},
    [MT_UL_EV_A_RELEASE_RSP] = {"Evt14", "A-RELEASE response"},
    [MT_UL_EV_A_ABORT_RQ] = {"Evt15", "A-ABORT request"},
    [MT_UL_EV_A_ABORT_PDU] = {"Evt16", "A-ABORT PDU"},
    [MT_UL_EV_TRANSPORT_CLOSED] = {"Evt17", "transport connection closed"},
    [MT_UL_EV_ARTIM_EXPIRED] = {"Evt18", "ARTIM timer expired"},
    [MT_UL_EV_INVALID_PDU] = {"Evt19", "unrecognized or invalid PDU"},
};

/* clang-format off */
static const char *const action_names[MT_UL_ACTION_COUNT] = {
    [MT_UL_NO_ACTION] = "-",
    [MT_AE_1] = "AE-1",  [MT_AE_2] = "AE-2",  [MT_AE_3] = "AE-3",  [MT_AE_4] = "AE-4",
    [MT_AE_5] = "AE-5",  [MT_AE_6] = "AE-6",  [MT_AE_7] = "AE-7",  [MT_AE_8] = "AE-8",
    [MT_DT_1] = "DT-1",  [MT_DT_2] = "DT-2",
    [MT_AR_1] = "AR-1",  [MT_AR_2] = "AR-2",  [MT_AR_3] = "AR-3",  [MT_AR_4] = "AR-4",
    [MT_AR_5] = "AR-5",  [MT_AR_6] = "AR-6",  [MT_AR_7] = "AR-7",  [MT_AR_8] = "AR-8",
    [MT_AR_9] = "AR-9",  [MT_AR_10] = "AR-10",
    [MT_AA_1] = "AA-1",  [MT_AA_2] = "AA-2",  [MT_AA_3] = "AA-3",  [MT_AA_4] = "AA-4",
    [MT_AA_5] = "AA-5",  [MT_AA_6] = "AA-6",  [MT_AA_7] = "AA-7",  [MT_AA_8] = "AA-8",
};
/* clang-format on */

static const char *const fx_names[MT_UL_FX_KIND_COUNT] = {
    [MT_UL_FX_TRANSPORT_CONNECT] = "TRANSPORT_CONNECT",
    [MT_UL_FX_TRANSPORT_ACCEPT] = "TRANSPORT_ACCEPT",
    [MT_UL_FX_SEND_PDU] = "SEND_PDU",
    [MT_UL_FX_START_ARTIM] = "START_ARTIM",
    [MT_UL_FX_STOP_ARTIM] = "STOP_ARTIM",
    [MT_UL_FX_CLOSE_TRANSPORT] = "CLOSE_TRANSPORT",
    [MT_UL_FX_INDICATE_ASSOCIATE] = "INDICATE_ASSOCIATE",
    [MT_UL_FX_CONFIRM_ASSOCIATE_AC] = "CONFIRM_ASSOCIATE_AC",
    [MT_UL_FX_CONFIRM_ASSOCIATE_RJ] = "CONFIRM_ASSOCIATE_RJ",
    [MT_UL_FX_INDICATE_P_DATA] = "INDICATE_P_DATA",
    [MT_UL_FX_INDICATE_RELEASE] = "INDICATE_RELEASE",
    [MT_UL_FX_CONFIRM_RELEASE] = "CONFIRM_RELEASE",
    [MT_UL_FX_INDICATE_ABORT] = "INDICATE_ABORT",
    [MT_UL_FX_INDICATE_P_ABORT] = "INDICATE_P_ABORT",
};

const char *mt_ul_state_name(mt_ul_state_t st)
{
    return st > 0 && st < MT_STA_COUNT ? state_names[st] : "?";
}

const char *mt_ul_event_name(mt_ul_event_t ev)
{
    return ev > 0 && ev < MT_UL_EV_COUNT ? event_names[ev].name : "?";
}

const char *mt_ul_event_desc(mt_ul_event_t ev)
{
    return ev > 0 && ev < MT_UL_EV_COUNT ? event_names[ev].desc : "?";
}

const char *mt_ul_action_name(mt_ul_action_t a)
{
    return a >= 0 && a < MT_UL_ACTION_COUNT ? action_names[a] : "?";
}

const char *mt_ul_fx_name(mt_ul_fx_kind_t k)
{
    return k > 0 && k < MT_UL_FX_KIND_COUNT ? fx_names[k] : "?";
}

/* ---- effects ---- */

static void emit(mt_ul_effects_t *fx, mt_ul_fx_kind_t kind)
{
    /* MT_UL_MAX_FX bounds the longest action (AE-6 reject, AA-8: three effects) */
    fx->fx[fx->n] = (mt_ul_fx_t){.kind = kind};
    fx->n++;
}

static void emit_pdu(mt_ul_effects_t *fx, uint8_t pdu_type)
{
    emit(fx, MT_UL_FX_SEND_PDU);
    fx->fx[fx->n - 1].pdu_type = pdu_type;
}

static void emit_abort(mt_ul_effects_t *fx, uint8_t source, uint8_t reason)
{
    emit_pdu(fx, MT_UL_PDU_A_ABORT);
    fx->fx[fx->n - 1].abort_source = source;
    fx->fx[fx->n - 1].abort_reason = source == MT_UL_ABORT_SOURCE_USER ? 0 : reason;
}

/* "Always use this function to change state" (curl lib/multi.c mstate()). */
static void set_state(mt_ul_t *ul, mt_ul_state_t to, mt_ul_event_t ev, mt_ul_action_t a)
{
    mt_log(MT_LOG_TRACE, ul->log, "%s -> %s [%s] on %s (%s)", mt_ul_state_name(ul->state),
           mt_ul_state_name(to), mt_ul_action_name(a), mt_ul_event_name(ev), mt_ul_event_desc(ev));
    ul->state = to;
}

/* The provider reason for an A-ABORT we send because of ev. */
static uint8_t abort_reason(mt_ul_event_t ev, const mt_ul_input_t *in)
{
    if (ev == MT_UL_EV_INVALID_PDU)
        return in->abort_reason;
    return MT_UL_ABORT_REASON_UNEXPECTED_PDU; /* a valid PDU that this state does not expect */
}

/*
 * The actions (PS3.8 Tables 9-6..9-9). Each appends its effects and returns the next state;
 * only AE-6 and AR-8 choose it, the others return the table's.
 */
static mt_ul_state_t run_action(const mt_ul_t *ul, mt_ul_action_t a, mt_ul_event_t ev,
                                const mt_ul_input_t *in, mt_ul_state_t next, mt_ul_effects_t *fx)
{
    switch (a) {
    case MT_AE_1: /* issue TRANSPORT CONNECT request primitive to local transport service */
        emit(fx, MT_UL_FX_TRANSPORT_CONNECT);
        return next;
    case MT_AE_2: /* send A-ASSOCIATE-RQ PDU */
        emit_pdu(fx, MT_UL_PDU_A_ASSOCIATE_RQ);
        return next;
    case MT_AE_3: /* issue A-ASSOCIATE confirmation (accept) primitive */
        emit(fx, MT_UL_FX_CONFIRM_ASSOCIATE_AC);
        return next;
    case MT_AE_4: /* issue A-ASSOCIATE confirmation (reject) primitive, close transport */
        emit(fx, MT_UL_FX_CONFIRM_ASSOCIATE_RJ);
        emit(fx, MT_UL_FX_CLOSE_TRANSPORT);
        return next;
    case MT_AE_5: /* issue transport connection response primitive; start ARTIM timer */
        emit(fx, MT_UL_FX_TRANSPORT_ACCEPT);
        emit(fx, MT_UL_FX_START_ARTIM);
        return next;
    case MT_AE_6: /* stop ARTIM; if acceptable by the provider: A-ASSOCIATE indication, Sta3;
                     otherwise send A-ASSOCIATE-RJ PDU, start ARTIM, Sta13 */
        emit(fx, MT_UL_FX_STOP_ARTIM);
        if (!in->rq_unacceptable) {
            emit(fx, MT_UL_FX_INDICATE_ASSOCIATE);
            return MT_STA3;
        }
        emit_pdu(fx, MT_UL_PDU_A_ASSOCIATE_RJ);
        emit(fx, MT_UL_FX_START_ARTIM);
        return MT_STA13;
    case MT_AE_7: /* send A-ASSOCIATE-AC PDU */
        emit_pdu(fx, MT_UL_PDU_A_ASSOCIATE_AC);
        return next;
    case MT_AE_8: /* send A-ASSOCIATE-RJ PDU and start ARTIM timer */
        emit_pdu(fx, MT_UL_PDU_A_ASSOCIATE_RJ);
        emit(fx, MT_UL_FX_START_ARTIM);
        return next;

    case MT_DT_1: /* send P-DATA-TF PDU */
        emit_pdu(fx, MT_UL_PDU_P_DATA_TF);
        return next;
    case MT_DT_2: /* send P-DATA indication primitive */
        emit(fx, MT_UL_FX_INDICATE_P_DATA);
        return next;

    case MT_AR_1: /* send A-RELEASE-RQ PDU */
        emit_pdu(fx, MT_UL_PDU_A_RELEASE_RQ);
        return next;
    case MT_AR_2: /* issue A-RELEASE indication primitive */
        emit(fx, MT_UL_FX_INDICATE_RELEASE);
        return next;
    case MT_AR_3: /* issue A-RELEASE confirmation primitive, close transport connection */
        emit(fx, MT_UL_FX_CONFIRM_RELEASE);
        emit(fx, MT_UL_FX_CLOSE_TRANSPORT);
        return next;
    case MT_AR_4: /* issue A-RELEASE-RP PDU and start ARTIM timer */
        emit_pdu(fx, MT_UL_PDU_A_RELEASE_RP);
        emit(fx, MT_UL_FX_START_ARTIM);
        return next;
    case MT_AR_5: /* stop ARTIM timer */
        emit(fx, MT_UL_FX_STOP_ARTIM);
        return next;
    case MT_AR_6: /* issue P-DATA indication */
        emit(fx, MT_UL_FX_INDICATE_P_DATA);
        return next;
    case MT_AR_7: /* issue P-DATA-TF PDU */
        emit_pdu(fx, MT_UL_PDU_P_DATA_TF);
        return next;
    case MT_AR_8: /* A-RELEASE indication (release collision): requestor Sta9, else Sta10 */
        emit(fx, MT_UL_FX_INDICATE_RELEASE);
        fx->fx[fx->n - 1].collision = true;
        return ul->requestor ? MT_STA9 : MT_STA10;
    case MT_AR_9: /* send A-RELEASE-RP PDU */
        emit_pdu(fx, MT_UL_PDU_A_RELEASE_RP);
        return next;
    case MT_AR_10: /* issue A-RELEASE confirmation primitive */
        emit(fx, MT_UL_FX_CONFIRM_RELEASE);
        return next;

    case MT_AA_1: /* send A-ABORT PDU (service-user source), start (or restart) ARTIM timer.
                     Table 9-9 names the service-user source, which fits Evt15 (our user
                     aborts). Reached from a PDU received in Sta2 (Evt3/4/10/12/13/19) it is the
                     provider that objects to the peer's PDU, so the A-ABORT carries source 2
                     and a reason (PS3.8 §9.3.8 defines reasons for source 2 only). */
        if (ev == MT_UL_EV_A_ABORT_RQ)
            emit_abort(fx, MT_UL_ABORT_SOURCE_USER, 0);
        else
            emit_abort(fx, MT_UL_ABORT_SOURCE_PROVIDER, abort_reason(ev, in));
        emit(fx, MT_UL_FX_START_ARTIM);
        return next;
    case MT_AA_2: /* stop ARTIM timer if running; close transport connection */
        emit(fx, MT_UL_FX_STOP_ARTIM);
        emit(fx, MT_UL_FX_CLOSE_TRANSPORT);
        return next;
    case MT_AA_3: /* service-user initiated: A-ABORT indication, else A-P-ABORT indication;
                     close transport connection */
        emit(fx, in->abort_source == MT_UL_ABORT_SOURCE_PROVIDER ? MT_UL_FX_INDICATE_P_ABORT
                                                                 : MT_UL_FX_INDICATE_ABORT);
        emit(fx, MT_UL_FX_CLOSE_TRANSPORT);
        return next;
    case MT_AA_4: /* issue A-P-ABORT indication primitive */
        emit(fx, MT_UL_FX_INDICATE_P_ABORT);
        return next;
    case MT_AA_5: /* stop ARTIM timer */
        emit(fx, MT_UL_FX_STOP_ARTIM);
        return next;
    case MT_AA_6: /* ignore PDU */
        return next;
    case MT_AA_7: /* send A-ABORT PDU */
        emit_abort(fx, MT_UL_ABORT_SOURCE_PROVIDER, abort_reason(ev, in));
        return next;
    case MT_AA_8: /* send A-ABORT PDU (service-provider source), issue A-P-ABORT indication,
                     start ARTIM timer */
        emit_abort(fx, MT_UL_ABORT_SOURCE_PROVIDER, abort_reason(ev, in));
        emit(fx, MT_UL_FX_INDICATE_P_ABORT);
        emit(fx, MT_UL_FX_START_ARTIM);
        return next;

    case MT_UL_NO_ACTION:
    case MT_UL_ACTION_COUNT:
        break;
    }
    return 0;
}

void mt_ul_init(mt_ul_t *ul, bool requestor, const mt_log_ctx_t *log)
{
    ul->state = MT_STA1;
    ul->requestor = requestor;
    ul->log = log;
}

mt_ul_action_t mt_ul_cell(mt_ul_state_t st, mt_ul_event_t ev, mt_ul_state_t *next)
{
    if (next)
        *next = 0;
    if (st <= 0 || st >= MT_STA_COUNT || ev <= 0 || ev >= MT_UL_EV_COUNT)
        return MT_UL_NO_ACTION;
    if (next)
        *next = ul_table[ev][st].next;
    return ul_table[ev][st].action;
}

int mt_ul_step(mt_ul_t *ul, mt_ul_event_t ev, const mt_ul_input_t *in, mt_ul_effects_t *fx)
{
    static const mt_ul_input_t defaults;
    if (!in)
        in = &defaults;
    memset(fx, 0, sizeof *fx);
    fx->from = ul->state;
    mt_ul_state_t next;
    mt_ul_action_t a = mt_ul_cell(ul->state, ev, &next);
    if (a == MT_UL_NO_ACTION) {
        mt_log(MT_LOG_DEBUG, ul->log, "ul: %s (%s) not allowed in %s", mt_ul_event_name(ev),
               mt_ul_event_desc(ev), mt_ul_state_name(ul->state));
        fx->to = ul->state;
        return MT_ESTATE;
    }
    fx->action = a;
    fx->to = run_action(ul, a, ev, in, next, fx);
    set_state(ul, fx->to, ev, a);
    return 0;
}
