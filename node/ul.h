/*
 * ul.h - the DICOM upper layer state machine (PS3.8 §9.2): states Sta1-Sta13, events Evt1-Evt19
 * (PS3.8 Table 9-10), actions AE-1..AE-8, DT-1..DT-2, AR-1..AR-10, AA-1..AA-8 (Tables 9-6..9-9).
 * PURE: no sockets, no timers, no clock. The only side effect is a trace line per transition.
 *
 * mt_ul_step() looks the (event, state) cell up in Table 9-10, runs the action and returns what
 * must happen as a list of effects; assoc.c (the only file doing I/O for the upper layer)
 * carries them out in order: send a PDU, (re)start or stop the ARTIM timer, close the transport
 * connection, or pass an indication/confirmation primitive to the service user.
 *
 *     transport connect indication    Evt5:  Sta1  -> Sta2   [AE-5]  accept, start ARTIM
 *     A-ASSOCIATE-RQ PDU              Evt6:  Sta2  -> Sta3   [AE-6]  indication to the user
 *                                                  (or -> Sta13, RJ sent, when the provider
 *                                                   cannot accept the RQ: in->rq_acceptable)
 *     A-ASSOCIATE response (accept)   Evt7:  Sta3  -> Sta6   [AE-7]  send A-ASSOCIATE-AC
 *     A-ASSOCIATE response (reject)   Evt8:  Sta3  -> Sta13  [AE-8]  send RJ, start ARTIM
 *     P-DATA-TF PDU / request   Evt10/Evt9:  Sta6  -> Sta6   [DT-2 / DT-1]
 *     A-RELEASE-RQ PDU               Evt12:  Sta6  -> Sta8   [AR-2]  indication to the user
 *     A-RELEASE response             Evt14:  Sta8  -> Sta13  [AR-4]  send RP, start ARTIM
 *     transport closed               Evt17:  Sta13 -> Sta1   [AR-5]
 *     anything unexpected            ...     -> Sta13 [AA-8] A-ABORT (provider), A-P-ABORT
 *
 * A zero cell of the table is a local-usage error (the caller fed an event that cannot happen
 * in that state: a bug, or a peer event in Sta1/Sta4 where no connection exists): mt_ul_step
 * returns MT_ESTATE and changes nothing. Peer input never hits a zero cell in Sta2..Sta13.
 */
#ifndef MT_UL_H
#define MT_UL_H

#include <stdbool.h>
#include <stdint.h>

#include "util/log.h"

/* PS3.8 §9.2.1, Tables 9-1..9-5. 0 is not a state. */
typedef enum mt_ul_state {
    MT_STA1 = 1, /* Idle */
    MT_STA2,     /* Transport connection open (awaiting A-ASSOCIATE-RQ PDU) */
    MT_STA3,     /* Awaiting local A-ASSOCIATE response primitive */
    MT_STA4,     /* Awaiting transport connection opening to complete */
    MT_STA5,     /* Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU */
    MT_STA6,     /* Association established and ready for data transfer */
    MT_STA7,     /* Awaiting A-RELEASE-RP PDU */
    MT_STA8,     /* Awaiting local A-RELEASE response primitive */
    MT_STA9,     /* Release collision requestor side; awaiting A-RELEASE response */
    MT_STA10,    /* Release collision acceptor side; awaiting A-RELEASE-RP PDU */
    MT_STA11,    /* Release collision requestor side; awaiting A-RELEASE-RP PDU */
    MT_STA12,    /* Release collision acceptor side; awaiting A-RELEASE response primitive */
    MT_STA13,    /* Awaiting transport connection close indication */
    MT_STA_COUNT
} mt_ul_state_t;

/* PS3.8 Table 9-10, Evt1..Evt19 in the standard's order. 0 is not an event. */
typedef enum mt_ul_event {
    MT_UL_EV_A_ASSOCIATE_RQ = 1,   /* Evt1  A-ASSOCIATE request (local user) */
    MT_UL_EV_TRANSPORT_CONFIRM,    /* Evt2  transport connect confirmation */
    MT_UL_EV_A_ASSOCIATE_AC_PDU,   /* Evt3  A-ASSOCIATE-AC PDU received */
    MT_UL_EV_A_ASSOCIATE_RJ_PDU,   /* Evt4  A-ASSOCIATE-RJ PDU received */
    MT_UL_EV_TRANSPORT_INDICATION, /* Evt5  transport connection indication */
    MT_UL_EV_A_ASSOCIATE_RQ_PDU,   /* Evt6  A-ASSOCIATE-RQ PDU received */
    MT_UL_EV_A_ASSOCIATE_RSP_AC,   /* Evt7  A-ASSOCIATE response primitive (accept) */
    MT_UL_EV_A_ASSOCIATE_RSP_RJ,   /* Evt8  A-ASSOCIATE response primitive (reject) */
    MT_UL_EV_P_DATA_RQ,            /* Evt9  P-DATA request primitive */
    MT_UL_EV_P_DATA_TF_PDU,        /* Evt10 P-DATA-TF PDU received */
    MT_UL_EV_A_RELEASE_RQ,         /* Evt11 A-RELEASE request primitive */
    MT_UL_EV_A_RELEASE_RQ_PDU,     /* Evt12 A-RELEASE-RQ PDU received */
    MT_UL_EV_A_RELEASE_RP_PDU,     /* Evt13 A-RELEASE-RP PDU received */
    MT_UL_EV_A_RELEASE_RSP,        /* Evt14 A-RELEASE response primitive */
    MT_UL_EV_A_ABORT_RQ,           /* Evt15 A-ABORT request primitive */
    MT_UL_EV_A_ABORT_PDU,          /* Evt16 A-ABORT PDU received */
    MT_UL_EV_TRANSPORT_CLOSED,     /* Evt17 transport connection closed indication */
    MT_UL_EV_ARTIM_EXPIRED,        /* Evt18 ARTIM timer expired */
    MT_UL_EV_INVALID_PDU,          /* Evt19 unrecognized or invalid PDU received */
    MT_UL_EV_COUNT
} mt_ul_event_t;

/* PS3.8 Tables 9-6..9-9. 0 (MT_UL_NO_ACTION) marks an empty cell of Table 9-10. */
/* clang-format off */
typedef enum mt_ul_action {
    MT_UL_NO_ACTION = 0,
    MT_AE_1, MT_AE_2, MT_AE_3, MT_AE_4, MT_AE_5, MT_AE_6, MT_AE_7, MT_AE_8,
    MT_DT_1, MT_DT_2,
    MT_AR_1, MT_AR_2, MT_AR_3, MT_AR_4, MT_AR_5, MT_AR_6, MT_AR_7, MT_AR_8, MT_AR_9, MT_AR_10,
    MT_AA_1, MT_AA_2, MT_AA_3, MT_AA_4, MT_AA_5, MT_AA_6, MT_AA_7, MT_AA_8,
    MT_UL_ACTION_COUNT
} mt_ul_action_t;
/* clang-format on */

/* PDU types (PS3.8 Table 9-11 ff., the wire value of the PDU-type byte) named in effects. */
enum mt_ul_pdu_type {
    MT_UL_PDU_A_ASSOCIATE_RQ = 0x01,
    MT_UL_PDU_A_ASSOCIATE_AC = 0x02,
    MT_UL_PDU_A_ASSOCIATE_RJ = 0x03,
    MT_UL_PDU_P_DATA_TF = 0x04,
    MT_UL_PDU_A_RELEASE_RQ = 0x05,
    MT_UL_PDU_A_RELEASE_RP = 0x06,
    MT_UL_PDU_A_ABORT = 0x07,
};

/* A-ABORT source (PS3.8 §9.3.8) and the provider reasons (Table 9-26). */
#define MT_UL_ABORT_SOURCE_USER 0
#define MT_UL_ABORT_SOURCE_PROVIDER 2
#define MT_UL_ABORT_REASON_NOT_SPECIFIED 0
#define MT_UL_ABORT_REASON_UNRECOGNIZED_PDU 1
#define MT_UL_ABORT_REASON_UNEXPECTED_PDU 2
#define MT_UL_ABORT_REASON_UNRECOGNIZED_PARAM 4
#define MT_UL_ABORT_REASON_UNEXPECTED_PARAM 5
#define MT_UL_ABORT_REASON_INVALID_PARAM 6

typedef enum mt_ul_fx_kind {
    MT_UL_FX_TRANSPORT_CONNECT = 1, /* AE-1: open a transport connection to the peer */
    MT_UL_FX_TRANSPORT_ACCEPT,      /* AE-5: transport connection response */
    MT_UL_FX_SEND_PDU,              /* .pdu_type (+ .abort_source/.abort_reason for A-ABORT) */
    MT_UL_FX_START_ARTIM,           /* start, or restart when running */
    MT_UL_FX_STOP_ARTIM,
    MT_UL_FX_CLOSE_TRANSPORT,
    MT_UL_FX_INDICATE_ASSOCIATE,   /* A-ASSOCIATE indication (AE-6) */
    MT_UL_FX_CONFIRM_ASSOCIATE_AC, /* A-ASSOCIATE confirmation, accept (AE-3) */
    MT_UL_FX_CONFIRM_ASSOCIATE_RJ, /* A-ASSOCIATE confirmation, reject (AE-4) */
    MT_UL_FX_INDICATE_P_DATA,      /* P-DATA indication (DT-2, AR-6) */
    MT_UL_FX_INDICATE_RELEASE,     /* A-RELEASE indication (AR-2; AR-8 with .collision) */
    MT_UL_FX_CONFIRM_RELEASE,      /* A-RELEASE confirmation (AR-3, AR-10) */
    MT_UL_FX_INDICATE_ABORT,       /* A-ABORT indication: the peer's user aborted (AA-3) */
    MT_UL_FX_INDICATE_P_ABORT,     /* A-P-ABORT indication (AA-3 provider, AA-4, AA-8) */
    MT_UL_FX_KIND_COUNT
} mt_ul_fx_kind_t;

typedef struct mt_ul_fx {
    mt_ul_fx_kind_t kind;
    uint8_t pdu_type;     /* SEND_PDU: enum mt_ul_pdu_type */
    uint8_t abort_source; /* SEND_PDU A-ABORT */
    uint8_t abort_reason; /* SEND_PDU A-ABORT */
    bool collision;       /* INDICATE_RELEASE from AR-8 */
} mt_ul_fx_t;

#define MT_UL_MAX_FX 4

typedef struct mt_ul_effects {
    mt_ul_action_t action;
    mt_ul_state_t from, to;
    unsigned n;
    mt_ul_fx_t fx[MT_UL_MAX_FX];
} mt_ul_effects_t;

/* What some actions need to know about the event beyond its number. NULL input: defaults
 * (RQ acceptable, abort source user, reason not specified). */
typedef struct mt_ul_input {
    bool rq_unacceptable; /* Evt6 / AE-6: the provider cannot accept the A-ASSOCIATE-RQ
                             (e.g. protocol version): RJ is sent and Sta13 follows */
    uint8_t abort_source; /* Evt16 / AA-3: source field of the received A-ABORT PDU */
    uint8_t abort_reason; /* Evt19 / AA-1, AA-7, AA-8: provider reason for the A-ABORT we send */
} mt_ul_input_t;

typedef struct mt_ul {
    mt_ul_state_t state;
    bool requestor;          /* AR-8: Sta9 on the association-requestor side, else Sta10 */
    const mt_log_ctx_t *log; /* context of the trace lines; may be NULL */
} mt_ul_t;

/* Sta1, acceptor side. log may be NULL. */
void mt_ul_init(mt_ul_t *ul, bool requestor, const mt_log_ctx_t *log);

/* Feed one event. Fills *fx (action, from, to, effects in the order to carry them out) and
 * moves ul to the next state. Returns 0, or MT_ESTATE for an empty cell (ul unchanged, fx->n 0). */
int mt_ul_step(mt_ul_t *ul, mt_ul_event_t ev, const mt_ul_input_t *in, mt_ul_effects_t *fx);

/* The cell of Table 9-10 as data: action and next state (0 when the action decides: AE-6 and
 * AR-8). MT_UL_NO_ACTION for an empty cell or out-of-range arguments. */
mt_ul_action_t mt_ul_cell(mt_ul_state_t st, mt_ul_event_t ev, mt_ul_state_t *next);

/* Names for tracing: "Sta6", "Evt12", "A-RELEASE-RQ PDU", "AR-2", "SEND_PDU"; "?" when out of
 * range. */
const char *mt_ul_state_name(mt_ul_state_t st);
const char *mt_ul_event_name(mt_ul_event_t ev);
const char *mt_ul_event_desc(mt_ul_event_t ev);
const char *mt_ul_action_name(mt_ul_action_t a);
const char *mt_ul_fx_name(mt_ul_fx_kind_t k);

#endif
