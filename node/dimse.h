/*
 * dimse.h - PS3.7 §9.3/§10.3 DIMSE command sets: struct <-> bytes (always Implicit VR Little
 * Endian, group 0000 with its group length). PURE. Encoder next to decoder, tested round trip.
 */
#ifndef MT_DIMSE_H
#define MT_DIMSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dicom/ds.h"
#include "util/buf.h"

enum mt_dimse_command_field {
    MT_C_STORE_RQ = 0x0001, MT_C_STORE_RSP = 0x8001,
    MT_C_GET_RQ = 0x0010, MT_C_GET_RSP = 0x8010,
    MT_C_FIND_RQ = 0x0020, MT_C_FIND_RSP = 0x8020,
    MT_C_MOVE_RQ = 0x0021, MT_C_MOVE_RSP = 0x8021,
    MT_C_ECHO_RQ = 0x0030, MT_C_ECHO_RSP = 0x8030,
    MT_N_EVENT_REPORT_RQ = 0x0100, MT_N_EVENT_REPORT_RSP = 0x8100,
    MT_N_ACTION_RQ = 0x0130, MT_N_ACTION_RSP = 0x8130,
    MT_C_CANCEL_RQ = 0x0FFF,
};

#define MT_DIMSE_NO_DATASET 0x0101

/* DIMSE status codes used by mitral (PS3.7 Annex C, PS3.4 B.2.3) */
enum mt_dimse_status {
    MT_STATUS_SUCCESS = 0x0000,
    MT_STATUS_CANCEL = 0xFE00,
    MT_STATUS_PENDING = 0xFF00,
    MT_STATUS_PENDING_WARN = 0xFF01,
    MT_STATUS_WARN_COERCION = 0xB000,
    MT_STATUS_WARN_ELEMENTS_DISCARDED = 0xB006,
    MT_STATUS_WARN_DS_MISMATCH = 0xB007,
    MT_STATUS_REFUSED_OUT_OF_RESOURCES = 0xA700,
    MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS = 0xA900,
    MT_STATUS_CANNOT_UNDERSTAND = 0xC000,
    MT_STATUS_DUPLICATE_SOP_INSTANCE = 0x0111,
    MT_STATUS_SOP_CLASS_NOT_SUPPORTED = 0x0122,
    MT_STATUS_NOT_AUTHORIZED = 0x0124,
    MT_STATUS_PROCESSING_FAILURE = 0x0110,
    MT_STATUS_UNRECOGNIZED_OPERATION = 0x0211,
    MT_STATUS_MISTYPED_ARGUMENT = 0x0212,
    MT_STATUS_MOVE_DEST_UNKNOWN = 0xA801,
};

/* Parsed command set. Strings are NUL-terminated, trailing padding removed; "" when absent. */
typedef struct mt_dimse_cmd {
    uint16_t command_field;
    uint16_t message_id;
    uint16_t message_id_responded_to;
    uint16_t data_set_type; /* MT_DIMSE_NO_DATASET when no data set follows */
    uint16_t priority;
    uint16_t status;
    bool has_status;
    char affected_sop_class_uid[65];
    char affected_sop_instance_uid[65];
    char requested_sop_class_uid[65];
    char requested_sop_instance_uid[65];
    char move_destination[17];
    char move_originator_ae[17];
    uint16_t move_originator_message_id;
    bool has_move_originator;
    char error_comment[65];
    uint32_t offending_element[8];
    size_t n_offending;
    uint16_t action_type_id;
    uint16_t event_type_id;
    bool has_counts;
    uint16_t n_remaining, n_completed, n_failed, n_warning;
} mt_dimse_cmd_t;

void mt_dimse_cmd_init(mt_dimse_cmd_t *c);
/* Decode a complete command set. MT_EMALFORMED with diag when it is not a valid command set. */
int mt_dimse_decode(const uint8_t *buf, size_t len, mt_dimse_cmd_t *out, mt_diag_t *diag);
/* Encode (appends to out) including (0000,0000) group length; only fields that apply to the
 * command field are written. */
int mt_dimse_encode(const mt_dimse_cmd_t *c, mt_buf_t *out);
bool mt_dimse_has_dataset(const mt_dimse_cmd_t *c);
const char *mt_dimse_command_name(uint16_t command_field);

/* Flags of a request in node/dimse_cmds.def (the dispatch table). */
#define MT_CMD_DATASET 0x1    /* a data set must follow the command */
#define MT_CMD_NO_DATASET 0x2 /* no data set may follow */
#define MT_CMD_CANCEL 0x4     /* the operation can be cancelled by C-CANCEL-RQ */
/* The flags of a request command field from dimse_cmds.def; 0 when it is not in the table. */
int mt_dimse_cmd_flags(uint16_t command_field);

#endif
