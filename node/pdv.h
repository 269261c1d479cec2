/*
 * pdv.h - P-DATA-TF PDVs -> DIMSE messages: a command stream and a data-set stream per
 * presentation context. PURE (links into libmitral_core): fed decoded PDVs, calls back.
 *
 * PS3.8 §9.3.5.1 and Annex E.2: each PDV carries one fragment of either the command set
 * (message control header bit 0 = 1) or the data set (bit 0 = 0) of a DIMSE message; bit 1 marks
 * the last fragment of that command set or data set. PS3.7 §6.3.1 / PS3.8 Annex E: a message is
 * its command set, then (when the command's Data Set Type says so) its data set, both on the same
 * presentation context, and the fragments of one message are not interleaved with those of
 * another. So at most one message is in progress on the association at any time:
 *
 *         command frag (not last)            command frag (last)
 *   IDLE ------------------------> COMMAND --------------------------> [on COMMAND event]
 *    ^  \__________ command frag (last) ______________________________/    |
 *    |                                                                     | cb sets
 *    |      expect_data == false                                           | expect_data
 *    +---------------------------------------------------------------------+
 *    |                                                                     | true
 *    |          data frag (last)                                           v
 *    +-------------------------------------------------------------- DATA (same pcid)
 *                                                          data frag (not last) loops here
 *
 * The command set is reassembled into an owned buffer, bounded by max_command (default 64 KiB),
 * and handed over whole in one MT_PDV_EV_COMMAND event. Data-set fragments are NEVER
 * accumulated: each one is passed through at once as an MT_PDV_EV_DATA event pointing into the
 * caller's PDU buffer.
 *
 * Errors (return MT_EPROTO, MT_ETOOBIG; diag says what to put in the A-ABORT, source 2):
 *   - PDV for a presentation context id that was not accepted        (reason 6, invalid value)
 *   - a data fragment when no command set announced a data set       (reason 5, unexpected)
 *   - a command fragment while a data set is in progress             (reason 5)
 *   - a fragment on another context while a message is in progress   (reason 5)
 *   - command set longer than max_command                            (MT_ETOOBIG, reason 6)
 *   - mt_pdv_finish (peer released/aborted) with a message open      (MT_EPROTO, reason 2)
 * A callback's negative return stops the feed and is returned as is.
 *
 * Caller: assoc.c. After negotiation it calls mt_pdv_allow() for each accepted context, then
 * mt_pdv_feed_pdu() for every P-DATA-TF the state machine lets through.
 */
#ifndef MT_PDV_H
#define MT_PDV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pdu.h"
#include "util/buf.h"

#define MT_PDV_DEFAULT_MAX_COMMAND (64u * 1024u)

typedef enum mt_pdv_event_type {
    MT_PDV_EV_COMMAND, /* a complete command set: data/len valid only during the callback */
    MT_PDV_EV_DATA,    /* one data-set fragment, as it arrived; last = final fragment */
} mt_pdv_event_type_t;

typedef struct mt_pdv_event {
    mt_pdv_event_type_t type;
    uint8_t pcid;
    const uint8_t *data; /* borrowed, valid during the callback only */
    size_t len;
    bool last; /* DATA: last fragment of the data set; COMMAND: always true */
    /* COMMAND only, set BY THE CALLBACK: true when the command's Data Set Type (0000,0800)
     * announces a data set (!= 0x0101). Initialised to false. */
    bool expect_data;
} mt_pdv_event_t;

/* Return 0 to go on, a negative code to stop (returned by mt_pdv_feed*). */
typedef int (*mt_pdv_cb)(void *user, mt_pdv_event_t *ev);

typedef enum mt_pdv_state {
    MT_PDV_IDLE,    /* between messages */
    MT_PDV_COMMAND, /* command fragments received, last one not yet */
    MT_PDV_DATA,    /* command complete, data set fragments expected/arriving */
} mt_pdv_state_t;

typedef struct mt_pdv_asm {
    mt_pdv_state_t state;
    uint8_t pcid;        /* context of the message in progress (state != IDLE) */
    uint8_t allowed[32]; /* bitmap of accepted presentation context ids */
    size_t max_command;
    mt_buf_t cmd;        /* command fragments so far */
    uint64_t data_bytes; /* data-set bytes of the message in progress (for logs) */
    mt_pdv_cb cb;
    void *user;
} mt_pdv_asm_t;

/* Init on caller storage. max_command 0 = MT_PDV_DEFAULT_MAX_COMMAND. No context allowed yet. */
void mt_pdv_init(mt_pdv_asm_t *a, size_t max_command, mt_pdv_cb cb, void *user);
void mt_pdv_dispose(mt_pdv_asm_t *a);
/* Mark presentation context id as accepted (PDVs on other ids are refused). */
void mt_pdv_allow(mt_pdv_asm_t *a, uint8_t pcid);
bool mt_pdv_is_allowed(const mt_pdv_asm_t *a, uint8_t pcid);

/* Feed one PDV. Returns 0, MT_EPROTO / MT_ETOOBIG with diag (offset = 0), or a callback's
 * error. After an error the assembler is back in IDLE (the association is being aborted). */
int mt_pdv_feed(mt_pdv_asm_t *a, const mt_pdv_t *pdv, mt_pdu_diag_t *diag);
/* Feed every PDV of a decoded P-DATA-TF in order (diag offset = PDU offset of the PDV). */
int mt_pdv_feed_pdu(mt_pdv_asm_t *a, const mt_pdu_t *pdata, mt_pdu_diag_t *diag);
/* True when no message is partly received (between messages). */
bool mt_pdv_idle(const mt_pdv_asm_t *a);
/* The association is ending: MT_EPROTO when a message is still open (state reset to IDLE). */
int mt_pdv_finish(mt_pdv_asm_t *a, mt_pdu_diag_t *diag);

#endif
