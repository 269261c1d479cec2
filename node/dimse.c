/*
 * dimse.c - PS3.7 §6.3 / §9.3 / §10.3 command sets: bytes <-> struct mt_dimse_cmd. PURE.
 *
 * A command set is group 0000 only, always Implicit VR Little Endian (PS3.7 §6.3.1), elements
 * in ascending tag order, starting with (0000,0000) CommandGroupLength = the number of bytes
 * that follow it:
 *
 *   +0  group  u16 LE (0x0000)
 *   +2  elem   u16 LE
 *   +4  length u32 LE (even; never undefined)
 *   +8  value  (US: 2 bytes; UL: 4; AT: 4 per tag as group,elem u16 LE; UI padded with NUL;
 *               AE, LO padded with space)
 *
 * Elements (PS3.7 Annex E, Table E.1-1) and where each is written by the encoder (M = always,
 * U/C = when the struct field is set), following PS3.7 Tables 9.3-1..9.3-13, 9.3-14..15 and
 * 10.3-1..10.3-2, 10.3-9..10.3-10:
 *
 *   (0000,0002) UI AffectedSOPClassUID       RQ: M (N-ACTION-RQ: none); RSP: U
 *   (0000,0003) UI RequestedSOPClassUID      N-ACTION-RQ: M
 *   (0000,0100) US CommandField              M
 *   (0000,0110) US MessageID                 RQ (not C-CANCEL): M
 *   (0000,0120) US MessageIDBeingRespondedTo RSP and C-CANCEL-RQ: M
 *   (0000,0600) AE MoveDestination           C-MOVE-RQ: M
 *   (0000,0700) US Priority                  C-STORE/FIND/GET/MOVE-RQ: M
 *   (0000,0800) US CommandDataSetType        M (0x0101 = no data set, anything else = one follows)
 *   (0000,0900) US Status                    RSP: M
 *   (0000,0901) AT OffendingElement          RSP: C (n_offending > 0)
 *   (0000,0902) LO ErrorComment              RSP: C (non-empty)
 *   (0000,1000) UI AffectedSOPInstanceUID    C-STORE-RQ, N-EVENT-REPORT-RQ: M; their RSPs and
 *                                            N-ACTION-RSP: U
 *   (0000,1001) UI RequestedSOPInstanceUID   N-ACTION-RQ: M
 *   (0000,1002) US EventTypeID               N-EVENT-REPORT-RQ: M; RSP: C (non-zero)
 *   (0000,1008) US ActionTypeID              N-ACTION-RQ: M; RSP: C (non-zero)
 *   (0000,1020) US NumberOfRemainingSubops   C-MOVE/GET-RSP: C (has_counts, Pending or Cancel)
 *   (0000,1021..1023) US Completed/Failed/Warning  C-MOVE/GET-RSP: C (has_counts)
 *   (0000,1030) AE MoveOriginatorAETitle     C-STORE-RQ: U (has_move_originator)
 *   (0000,1031) US MoveOriginatorMessageID   C-STORE-RQ: U (has_move_originator)
 *
 * The decoder accepts any group 0000 element (unknown and retired ones are skipped) and checks
 * every length against the bytes left and the element's VR; it refuses elements outside group
 * 0000, tags out of order or repeated, odd or undefined lengths, a CommandGroupLength that
 * does not match, and a command set without CommandField, CommandDataSetType, MessageID (RQ)
 * or MessageIDBeingRespondedTo + Status (RSP, C-CANCEL-RQ). Whether the command is known and
 * its other required elements are present is the dispatcher's business (STYLE §5).
 *
 * Called by assoc.c (decode a reassembled command stream, encode responses) and scu.c.
 */
#include "dimse.h"

#include <string.h>

#include "util/bytes.h"
#include "util/err.h"


enum {
    TAG_GROUP_LENGTH = 0x0000,
    TAG_AFFECTED_SOP_CLASS_UID = 0x0002,
    TAG_REQUESTED_SOP_CLASS_UID = 0x0003,
    TAG_COMMAND_FIELD = 0x0100,
    TAG_MESSAGE_ID = 0x0110,
    TAG_MESSAGE_ID_RSP = 0x0120,
    TAG_MOVE_DESTINATION = 0x0600,
    TAG_PRIORITY = 0x0700,
    TAG_DATA_SET_TYPE = 0x0800,
    TAG_STATUS = 0x0900,
    TAG_OFFENDING_ELEMENT = 0x0901,
    TAG_ERROR_COMMENT = 0x0902,
    TAG_AFFECTED_SOP_INSTANCE_UID = 0x1000,
    TAG_REQUESTED_SOP_INSTANCE_UID = 0x1001,
    TAG_EVENT_TYPE_ID = 0x1002,
    TAG_ACTION_TYPE_ID = 0x1008,
    TAG_N_REMAINING = 0x1020,
    TAG_N_COMPLETED = 0x1021,
    TAG_N_FAILED = 0x1022,
    TAG_N_WARNING = 0x1023,
    TAG_MOVE_ORIGINATOR_AE = 0x1030,
    TAG_MOVE_ORIGINATOR_MSG_ID = 0x1031,
};

/* Which optional/mandatory elements a command carries (encoder). */
enum {
    F_AFF_CLASS = 1u << 0,
    F_REQ_CLASS = 1u << 1,
    F_MSG_ID = 1u << 2,
    F_MSG_ID_RSP = 1u << 3,
    F_MOVE_DEST = 1u << 4,
    F_PRIORITY = 1u << 5,
    F_STATUS = 1u << 6,
    F_OFFENDING = 1u << 7,
    F_ERROR_COMMENT = 1u << 8,
    F_AFF_INST = 1u << 9,
    F_REQ_INST = 1u << 10,
    F_EVENT_TYPE = 1u << 11,
    F_ACTION_TYPE = 1u << 12,
    F_COUNTS = 1u << 13,
    F_MOVE_ORIG = 1u << 14,
};

#define RSP_COMMON (F_MSG_ID_RSP | F_STATUS)
#define RSP_ERRORS (F_OFFENDING | F_ERROR_COMMENT)

static const struct cmd_shape {
    uint16_t field;
    const char *name;
    uint32_t must; /* written always (strings must be non-empty) */
    uint32_t may;  /* written when set */
} shapes[] = {
    {MT_C_STORE_RQ, "C-STORE-RQ", F_AFF_CLASS | F_MSG_ID | F_PRIORITY | F_AFF_INST, F_MOVE_ORIG},
    {MT_C_STORE_RSP, "C-STORE-RSP", RSP_COMMON, F_AFF_CLASS | F_AFF_INST | RSP_ERRORS},
    {MT_C_GET_RQ, "C-GET-RQ", F_AFF_CLASS | F_MSG_ID | F_PRIORITY, 0},
    {MT_C_GET_RSP, "C-GET-RSP", RSP_COMMON, F_AFF_CLASS | RSP_ERRORS | F_COUNTS},
    {MT_C_FIND_RQ, "C-FIND-RQ", F_AFF_CLASS | F_MSG_ID | F_PRIORITY, 0},
    {MT_C_FIND_RSP, "C-FIND-RSP", RSP_COMMON, F_AFF_CLASS | RSP_ERRORS},
    {MT_C_MOVE_RQ, "C-MOVE-RQ", F_AFF_CLASS | F_MSG_ID | F_PRIORITY | F_MOVE_DEST, 0},
    {MT_C_MOVE_RSP, "C-MOVE-RSP", RSP_COMMON, F_AFF_CLASS | RSP_ERRORS | F_COUNTS},
    {MT_C_ECHO_RQ, "C-ECHO-RQ", F_AFF_CLASS | F_MSG_ID, 0},
    {MT_C_ECHO_RSP, "C-ECHO-RSP", RSP_COMMON, F_AFF_CLASS | RSP_ERRORS},
    {MT_N_EVENT_REPORT_RQ, "N-EVENT-REPORT-RQ", F_AFF_CLASS | F_MSG_ID | F_AFF_INST | F_EVENT_TYPE,
     0},
    {MT_N_EVENT_REPORT_RSP, "N-EVENT-REPORT-RSP", RSP_COMMON,
     F_AFF_CLASS | F_AFF_INST | F_EVENT_TYPE | RSP_ERRORS},
    {MT_N_ACTION_RQ, "N-ACTION-RQ", F_REQ_CLASS | F_MSG_ID | F_REQ_INST | F_ACTION_TYPE, 0},
    {MT_N_ACTION_RSP, "N-ACTION-RSP", RSP_COMMON,
     F_AFF_CLASS | F_AFF_INST | F_ACTION_TYPE | RSP_ERRORS},
    {MT_C_CANCEL_RQ, "C-CANCEL-RQ", F_MSG_ID_RSP, 0},
};

static const struct cmd_shape *shape_of(uint16_t field)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (shapes[i].field == field)
            return &shapes[i];
    return NULL;
}

const char *mt_dimse_command_name(uint16_t command_field)
{
    const struct cmd_shape *s = shape_of(command_field);
    return s ? s->name : "unknown";
}

int mt_dimse_cmd_flags(uint16_t command_field)
{
    switch (command_field) {
#define MT_DIMSE_CMD(name, field, flags, handler)                                                  \
    case field:                                                                                    \
        return (flags);
#include "dimse_cmds.def"
#undef MT_DIMSE_CMD
    }
    return 0;
}

void mt_dimse_cmd_init(mt_dimse_cmd_t *c)
{
    memset(c, 0, sizeof *c);
    c->data_set_type = MT_DIMSE_NO_DATASET;
}

bool mt_dimse_has_dataset(const mt_dimse_cmd_t *c)
{
    return c->data_set_type != MT_DIMSE_NO_DATASET;
}

/* ---- decoding ---- */

static int malformed(mt_diag_t *diag, size_t offset, const char *reason)
{
    if (diag) {
        diag->offset = offset;
        diag->reason = reason;
    }
    return MT_EMALFORMED;
}

/* Copy a string value into out[outsz] without its padding: trailing NULs and spaces, and for
 * AE titles leading spaces too (PS3.5 §6.2: not significant). */
static void copy_str(const uint8_t *v, uint32_t n, char *out, size_t outsz, bool trim_leading)
{
    while (n > 0 && (v[n - 1] == '\0' || v[n - 1] == ' '))
        n--;
    while (trim_leading && n > 0 && v[0] == ' ')
        v++, n--;
    if (n >= outsz) /* callers checked n against the VR's maximum */
        n = (uint32_t)outsz - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

int mt_dimse_decode(const uint8_t *buf, size_t len, mt_dimse_cmd_t *out, mt_diag_t *diag)
{
    mt_dimse_cmd_init(out);
    bool seen_field = false, seen_msg_id = false, seen_rsp_id = false, seen_ds = false;
    size_t pos = 0;
    long prev_elem = -1;
    if (len == 0)
        return malformed(diag, 0, "empty command set");
    while (pos < len) {
        if (len - pos < 8)
            return malformed(diag, pos, "truncated element header");
        const uint8_t *h = buf + pos;
        uint16_t group = mt_le16(h), elem = mt_le16(h + 2);
        uint32_t n = mt_le32(h + 4);
        if (group != 0x0000)
            return malformed(diag, pos, "element outside group 0000 in a command set");
        if ((long)elem <= prev_elem)
            return malformed(diag, pos, "command elements out of order or repeated");
        prev_elem = elem;
        if (n == 0xFFFFFFFFu)
            return malformed(diag, pos, "undefined length in a command set");
        if (n > len - pos - 8)
            return malformed(diag, pos, "element length past the end of the command set");
        if (n & 1)
            return malformed(diag, pos, "odd element length");
        const uint8_t *v = h + 8;
        switch (elem) {
        case TAG_GROUP_LENGTH:
            if (n != 4)
                return malformed(diag, pos, "CommandGroupLength is not 4 bytes");
            if (pos != 0 || mt_le32(v) != len - 12)
                return malformed(diag, pos, "CommandGroupLength does not match the command set");
            break;
        case TAG_COMMAND_FIELD:
        case TAG_MESSAGE_ID:
        case TAG_MESSAGE_ID_RSP:
        case TAG_PRIORITY:
        case TAG_DATA_SET_TYPE:
        case TAG_STATUS:
        case TAG_EVENT_TYPE_ID:
        case TAG_ACTION_TYPE_ID:
        case TAG_N_REMAINING:
        case TAG_N_COMPLETED:
        case TAG_N_FAILED:
        case TAG_N_WARNING:
        case TAG_MOVE_ORIGINATOR_MSG_ID: {
            if (n != 2)
                return malformed(diag, pos, "US command element is not 2 bytes");
            uint16_t x = mt_le16(v);
            switch (elem) {
            case TAG_COMMAND_FIELD: out->command_field = x, seen_field = true; break;
            case TAG_MESSAGE_ID: out->message_id = x, seen_msg_id = true; break;
            case TAG_MESSAGE_ID_RSP: out->message_id_responded_to = x, seen_rsp_id = true; break;
            case TAG_PRIORITY: out->priority = x; break;
            case TAG_DATA_SET_TYPE: out->data_set_type = x, seen_ds = true; break;
            case TAG_STATUS: out->status = x, out->has_status = true; break;
            case TAG_EVENT_TYPE_ID: out->event_type_id = x; break;
            case TAG_ACTION_TYPE_ID: out->action_type_id = x; break;
            case TAG_N_REMAINING: out->n_remaining = x, out->has_counts = true; break;
            case TAG_N_COMPLETED: out->n_completed = x, out->has_counts = true; break;
            case TAG_N_FAILED: out->n_failed = x, out->has_counts = true; break;
            case TAG_N_WARNING: out->n_warning = x, out->has_counts = true; break;
            default:
                out->move_originator_message_id = x;
                out->has_move_originator = true;
                break;
            }
            break;
        }
        case TAG_AFFECTED_SOP_CLASS_UID:
        case TAG_REQUESTED_SOP_CLASS_UID:
        case TAG_AFFECTED_SOP_INSTANCE_UID:
        case TAG_REQUESTED_SOP_INSTANCE_UID: {
            if (n > 64)
                return malformed(diag, pos, "UID longer than 64 bytes");
            char *dst = elem == TAG_AFFECTED_SOP_CLASS_UID    ? out->affected_sop_class_uid
                        : elem == TAG_REQUESTED_SOP_CLASS_UID ? out->requested_sop_class_uid
                        : elem == TAG_AFFECTED_SOP_INSTANCE_UID
                            ? out->affected_sop_instance_uid
                            : out->requested_sop_instance_uid;
            copy_str(v, n, dst, 65, false);
            break;
        }
        case TAG_MOVE_DESTINATION:
        case TAG_MOVE_ORIGINATOR_AE:
            if (n > 16)
                return malformed(diag, pos, "AE title longer than 16 bytes");
            if (elem == TAG_MOVE_DESTINATION) {
                copy_str(v, n, out->move_destination, sizeof out->move_destination, true);
            } else {
                copy_str(v, n, out->move_originator_ae, sizeof out->move_originator_ae, true);
                out->has_move_originator = true;
            }
            break;
        case TAG_ERROR_COMMENT:
            if (n > 64)
                return malformed(diag, pos, "ErrorComment longer than 64 bytes");
            copy_str(v, n, out->error_comment, sizeof out->error_comment, false);
            break;
        case TAG_OFFENDING_ELEMENT:
            if (n % 4)
                return malformed(diag, pos, "OffendingElement is not a list of tags");
            for (uint32_t i = 0; i < n / 4 && out->n_offending < 8; i++)
                out->offending_element[out->n_offending++] =
                    (uint32_t)mt_le16(v + 4 * i) << 16 | mt_le16(v + 4 * i + 2);
            break;
        default: /* other group 0000 elements (ErrorID, retired ones...) are skipped */
            break;
        }
        pos += 8 + (size_t)n;
    }
    if (!seen_field)
        return malformed(diag, len, "command set without CommandField (0000,0100)");
    if (!seen_ds)
        return malformed(diag, len, "command set without CommandDataSetType (0000,0800)");
    bool rsp = (out->command_field & 0x8000) != 0;
    if (rsp || out->command_field == MT_C_CANCEL_RQ) {
        if (!seen_rsp_id)
            return malformed(diag, len,
                             "command set without MessageIDBeingRespondedTo (0000,0120)");
        if (rsp && !out->has_status)
            return malformed(diag, len, "response without Status (0000,0900)");
    } else if (!seen_msg_id) {
        return malformed(diag, len, "request without MessageID (0000,0110)");
    }
    return 0;
}

/* ---- encoding ---- */

/* The largest command set we write: 4 UIDs, 2 AEs, 1 LO, 8 ATs, ~15 USs and their headers. */
#define CMD_MAX 1024

struct wr {
    uint8_t b[CMD_MAX];
    size_t n;
};

static void put16(struct wr *w, uint16_t v)
{
    w->b[w->n++] = (uint8_t)v;
    w->b[w->n++] = (uint8_t)(v >> 8);
}

static void put32(struct wr *w, uint32_t v)
{
    put16(w, (uint16_t)v);
    put16(w, (uint16_t)(v >> 16));
}

static void put_hdr(struct wr *w, uint16_t elem, uint32_t n)
{
    put16(w, 0x0000);
    put16(w, elem);
    put32(w, n);
}

static void put_us(struct wr *w, uint16_t elem, uint16_t v)
{
    put_hdr(w, elem, 2);
    put16(w, v);
}

/* A string padded to even length with pad (NUL for UI, space for AE/LO); s has at most max
 * bytes before its NUL (the struct's array size). */
static void put_str(struct wr *w, uint16_t elem, const char *s, size_t max, char pad)
{
    size_t n = strnlen(s, max);
    size_t padded = n + (n & 1);
    put_hdr(w, elem, (uint32_t)padded);
    memcpy(w->b + w->n, s, n);
    w->n += n;
    if (n & 1)
        w->b[w->n++] = (uint8_t)pad;
}

#define STR_SET(s) ((s)[0] != '\0')

int mt_dimse_encode(const mt_dimse_cmd_t *c, mt_buf_t *out)
{
    const struct cmd_shape *sh = shape_of(c->command_field);
    if (!sh)
        return MT_EINVAL;
    uint32_t must = sh->must, may = sh->may, f = must;
    /* mandatory strings must be present: a bug in the caller, not the peer */
    if (((must & F_AFF_CLASS) && !STR_SET(c->affected_sop_class_uid)) ||
        ((must & F_REQ_CLASS) && !STR_SET(c->requested_sop_class_uid)) ||
        ((must & F_AFF_INST) && !STR_SET(c->affected_sop_instance_uid)) ||
        ((must & F_REQ_INST) && !STR_SET(c->requested_sop_instance_uid)) ||
        ((must & F_MOVE_DEST) && !STR_SET(c->move_destination)))
        return MT_EINVAL;
    if ((may & F_AFF_CLASS) && STR_SET(c->affected_sop_class_uid))
        f |= F_AFF_CLASS;
    if ((may & F_AFF_INST) && STR_SET(c->affected_sop_instance_uid))
        f |= F_AFF_INST;
    if ((may & F_ERROR_COMMENT) && STR_SET(c->error_comment))
        f |= F_ERROR_COMMENT;
    if ((may & F_OFFENDING) && c->n_offending > 0)
        f |= F_OFFENDING;
    if ((may & F_COUNTS) && c->has_counts)
        f |= F_COUNTS;
    if ((may & F_MOVE_ORIG) && c->has_move_originator)
        f |= F_MOVE_ORIG;
    if ((may & F_EVENT_TYPE) && c->event_type_id != 0)
        f |= F_EVENT_TYPE;
    if ((may & F_ACTION_TYPE) && c->action_type_id != 0)
        f |= F_ACTION_TYPE;

    struct wr w = {.n = 0};
    put_hdr(&w, TAG_GROUP_LENGTH, 4);
    put32(&w, 0); /* patched below */
    if (f & F_AFF_CLASS)
        put_str(&w, TAG_AFFECTED_SOP_CLASS_UID, c->affected_sop_class_uid, 64, '\0');
    if (f & F_REQ_CLASS)
        put_str(&w, TAG_REQUESTED_SOP_CLASS_UID, c->requested_sop_class_uid, 64, '\0');
    put_us(&w, TAG_COMMAND_FIELD, c->command_field);
    if (f & F_MSG_ID)
        put_us(&w, TAG_MESSAGE_ID, c->message_id);
    if (f & F_MSG_ID_RSP)
        put_us(&w, TAG_MESSAGE_ID_RSP, c->message_id_responded_to);
    if (f & F_MOVE_DEST)
        put_str(&w, TAG_MOVE_DESTINATION, c->move_destination, 16, ' ');
    if (f & F_PRIORITY)
        put_us(&w, TAG_PRIORITY, c->priority);
    put_us(&w, TAG_DATA_SET_TYPE, c->data_set_type);
    if (f & F_STATUS)
        put_us(&w, TAG_STATUS, c->status);
    if (f & F_OFFENDING) {
        size_t k = c->n_offending < 8 ? c->n_offending : 8;
        put_hdr(&w, TAG_OFFENDING_ELEMENT, (uint32_t)(4 * k));
        for (size_t i = 0; i < k; i++) {
            put16(&w, (uint16_t)(c->offending_element[i] >> 16));
            put16(&w, (uint16_t)c->offending_element[i]);
        }
    }
    if (f & F_ERROR_COMMENT)
        put_str(&w, TAG_ERROR_COMMENT, c->error_comment, 64, ' ');
    if (f & F_AFF_INST)
        put_str(&w, TAG_AFFECTED_SOP_INSTANCE_UID, c->affected_sop_instance_uid, 64, '\0');
    if (f & F_REQ_INST)
        put_str(&w, TAG_REQUESTED_SOP_INSTANCE_UID, c->requested_sop_instance_uid, 64, '\0');
    if (f & F_EVENT_TYPE)
        put_us(&w, TAG_EVENT_TYPE_ID, c->event_type_id);
    if (f & F_ACTION_TYPE)
        put_us(&w, TAG_ACTION_TYPE_ID, c->action_type_id);
    if (f & F_COUNTS) {
        /* PS3.4 C.4.2.1.6: Remaining only with Pending (or Cancel) status */
        bool pending = c->status == MT_STATUS_PENDING || c->status == MT_STATUS_PENDING_WARN ||
                       c->status == MT_STATUS_CANCEL;
        if (pending)
            put_us(&w, TAG_N_REMAINING, c->n_remaining);
        put_us(&w, TAG_N_COMPLETED, c->n_completed);
        put_us(&w, TAG_N_FAILED, c->n_failed);
        put_us(&w, TAG_N_WARNING, c->n_warning);
    }
    if (f & F_MOVE_ORIG) {
        put_str(&w, TAG_MOVE_ORIGINATOR_AE, c->move_originator_ae, 16, ' ');
        put_us(&w, TAG_MOVE_ORIGINATOR_MSG_ID, c->move_originator_message_id);
    }
    uint32_t glen = (uint32_t)(w.n - 12);
    w.b[8] = (uint8_t)glen;
    w.b[9] = (uint8_t)(glen >> 8);
    w.b[10] = (uint8_t)(glen >> 16);
    w.b[11] = (uint8_t)(glen >> 24);
    return mt_buf_append(out, w.b, w.n);
}
