/*
 * pdu.h - PS3.8 §9.3 upper-layer PDU codec: bytes <-> mt_pdu_t, all seven PDU types and their
 * items and sub-items. PURE: no I/O, no clock (links into libmitral_core).
 *
 * Every PDU starts with the same 6-byte header (all multi-byte fields big endian, §9.3.1):
 *
 *   0  PDU-type   1  reserved   2..5  PDU-length (bytes that follow the header)
 *
 *   type  PDU                body
 *   0x01  A-ASSOCIATE-RQ     version(2) rsv(2) called-AE(16) calling-AE(16) rsv(32) items...
 *   0x02  A-ASSOCIATE-AC     same layout as RQ (the AE fields are echoed, never tested)
 *   0x03  A-ASSOCIATE-RJ     rsv(1) result(1) source(1) reason(1)
 *   0x04  P-DATA-TF          PDV items: length(4) pcid(1) message-control-header(1) value...
 *   0x05  A-RELEASE-RQ       rsv(4)
 *   0x06  A-RELEASE-RP       rsv(4)
 *   0x07  A-ABORT            rsv(1) rsv(1) source(1) reason(1)
 *
 * A-ASSOCIATE variable items: type(1) rsv(1) length(2) value:
 *   0x10 application context name           0x50 user information, sub-items:
 *   0x20 presentation context (RQ):            0x51 maximum length (4)
 *        id(1) rsv(3) 0x30 abstract syntax,    0x52 implementation class UID
 *        one or more 0x40 transfer syntaxes    0x53 asynchronous operations window (2+2)
 *   0x21 presentation context (AC):            0x54 SCP/SCU role selection (any number)
 *        id(1) rsv(1) result(1) rsv(1),        0x55 implementation version name
 *        one 0x40 transfer syntax              0x56 SOP class extended negotiation (kept raw)
 *                                              0x57 SOP class common extended neg. (kept raw)
 *                                              0x58 user identity (RQ), 0x59 (AC)
 *
 * Tolerance (what real peers send, and what PS3.8 asks of a receiver): reserved fields are not
 * tested; AE titles lose their leading and trailing spaces; a UID or AE title ends at its first
 * NUL (padding) and loses trailing spaces, so decode -> encode -> decode is stable; items and
 * sub-items of unknown type are skipped; the AC's AE fields are kept as received; the transfer
 * syntax of a rejected AC context is not checked (PS3.8 §9.3.3.2: not significant). Everything else
 * is checked: every length against the bytes remaining in its enclosing PDU/item, the PDU length
 * against a limit, UIDs against 64 characters, AE titles against 16. A malformed PDU returns
 * MT_EMALFORMED (MT_ETOOBIG for an oversized one) with a diagnostic that says what to tell the peer
 * (A-ABORT source/reason).
 *
 * Ownership: mt_pdu_decode fills caller storage; strings are fixed arrays in the struct, lists
 * (presentation contexts, transfer syntaxes, role selections, raw extended negotiation items,
 * user identity fields) are allocated with mt_malloc and released by mt_pdu_dispose(). For a
 * P-DATA-TF nothing is allocated: pdata.items points INTO the input buffer (valid while it is),
 * and mt_pdv_next() walks the PDVs without copying.
 *
 * Encoders sit next to decoders and always append one whole PDU (header + body) to an mt_buf_t,
 * so assoc.c sends each PDU with one write. Callers: ul.c (state machine), assoc.c (reader and
 * writer), negotiate.c (builds AC/RJ), tests and tests/fuzz/fuzz_pdu.c.
 */
#ifndef MT_PDU_H
#define MT_PDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define MT_PDU_HEADER_LEN 6
#define MT_PDV_HEADER_LEN 6 /* item length (4) + pcid (1) + message control header (1) */
#define MT_UID_MAX 64
#define MT_AE_MAX 16
#define MT_APP_CONTEXT_UID "1.2.840.10008.3.1.1.1" /* PS3.7 Annex A.2.1 */
/* Limit for every PDU type except P-DATA-TF (whose limit is the caller's max_pdata_len):
 * an A-ASSOCIATE-RQ proposing 128 contexts with many transfer syntaxes stays far below it. */
#define MT_PDU_MAX_CONTROL_LEN (1024u * 1024u)
/* Bounds on what one A-ASSOCIATE holds, so that a peer cannot make a 1 MiB PDU of tiny items
 * expand into many megabytes. Context ids are odd 1..255, so more than 128 contexts is
 * malformed; transfer syntaxes, role selections and extended negotiation items beyond these
 * bounds are ignored (dcmtk proposes at most ~30 syntaxes and one role item per SOP class). */
#define MT_PDU_MAX_PCS 128
#define MT_PDU_MAX_TS 64
#define MT_PDU_MAX_ROLES 256
#define MT_PDU_MAX_EXT 256

typedef enum mt_pdu_type {
    MT_PDU_A_ASSOCIATE_RQ = 0x01,
    MT_PDU_A_ASSOCIATE_AC = 0x02,
    MT_PDU_A_ASSOCIATE_RJ = 0x03,
    MT_PDU_P_DATA_TF = 0x04,
    MT_PDU_A_RELEASE_RQ = 0x05,
    MT_PDU_A_RELEASE_RP = 0x06,
    MT_PDU_A_ABORT = 0x07,
} mt_pdu_type_t;

/* PS3.8 Table 9-26: A-ABORT source and reason/diag (reason is significant for source 2 only). */
enum mt_abort_source {
    MT_ABORT_SOURCE_SERVICE_USER = 0,
    MT_ABORT_SOURCE_SERVICE_PROVIDER = 2,
};
enum mt_abort_reason {
    MT_ABORT_REASON_NOT_SPECIFIED = 0,
    MT_ABORT_UNRECOGNIZED_PDU = 1,
    MT_ABORT_UNEXPECTED_PDU = 2,
    MT_ABORT_UNRECOGNIZED_PDU_PARAMETER = 4,
    MT_ABORT_UNEXPECTED_PDU_PARAMETER = 5,
    MT_ABORT_INVALID_PDU_PARAMETER_VALUE = 6,
};

/* PS3.8 Table 9-21: A-ASSOCIATE-RJ result, source, reason/diag. */
enum mt_rj_result {
    MT_RJ_PERMANENT = 1,
    MT_RJ_TRANSIENT = 2,
};
enum mt_rj_source {
    MT_RJ_SOURCE_SERVICE_USER = 1,
    MT_RJ_SOURCE_PROVIDER_ACSE = 2,
    MT_RJ_SOURCE_PROVIDER_PRESENTATION = 3,
};
enum mt_rj_reason {
    /* source 1: service-user */
    MT_RJ_USER_NO_REASON = 1,
    MT_RJ_USER_APP_CONTEXT_NOT_SUPPORTED = 2,
    MT_RJ_USER_CALLING_AE_NOT_RECOGNIZED = 3,
    MT_RJ_USER_CALLED_AE_NOT_RECOGNIZED = 7,
    /* source 2: service-provider (ACSE related) */
    MT_RJ_ACSE_NO_REASON = 1,
    MT_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED = 2,
    /* source 3: service-provider (presentation related) */
    MT_RJ_PRES_TEMPORARY_CONGESTION = 1,
    MT_RJ_PRES_LOCAL_LIMIT_EXCEEDED = 2,
};

/* PS3.8 Table 9-18: presentation context result/reason (AC item 0x21). */
enum mt_pc_result {
    MT_PC_ACCEPTANCE = 0,
    MT_PC_USER_REJECTION = 1,
    MT_PC_NO_REASON = 2,
    MT_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED = 3,
    MT_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED = 4,
};

/* PS3.7 Table D.3.3.7-1: user identity type. */
enum mt_user_identity_type {
    MT_IDENTITY_USERNAME = 1,
    MT_IDENTITY_USERNAME_PASSCODE = 2,
    MT_IDENTITY_KERBEROS = 3,
    MT_IDENTITY_SAML = 4,
    MT_IDENTITY_JWT = 5,
};

/* What went wrong, where, and what the peer must be told (STYLE.md §3). reason is static.
 * After a decode error, abort_source/abort_reason are always filled (A-ABORT parameters). */
typedef struct mt_pdu_diag {
    size_t offset;      /* offset of the offending byte from the start of the PDU */
    const char *reason; /* static string, e.g. "presentation context item length past PDU" */
    uint8_t abort_source;
    uint8_t abort_reason;
} mt_pdu_diag_t;

typedef struct mt_uid_str {
    char s[MT_UID_MAX + 1];
} mt_uid_str_t;

/* Presentation context item: RQ (0x20) or AC (0x21). */
typedef struct mt_pdu_pc {
    uint8_t id;     /* odd, 1..255 (§9.3.2.2); not checked by the decoder, negotiate.c answers */
    uint8_t result; /* AC only: enum mt_pc_result */
    char abstract_syntax[MT_UID_MAX + 1]; /* RQ only; "" when the sub-item is absent */
    mt_uid_str_t *ts; /* RQ: proposed transfer syntaxes in order; AC: one (or 0 if absent) */
    size_t n_ts;
} mt_pdu_pc_t;

/* SCP/SCU role selection sub-item 0x54 (PS3.7 D.3.3.4). */
typedef struct mt_pdu_role {
    char sop_class_uid[MT_UID_MAX + 1];
    uint8_t scu_role; /* RQ: 1 = proposes it may be SCU; AC: 1 = accepted */
    uint8_t scp_role;
} mt_pdu_role_t;

/* Sub-items 0x56/0x57, kept raw (value after the 4-byte sub-item header), tolerated. */
typedef struct mt_pdu_raw_item {
    uint8_t type;
    uint8_t *value; /* mt_malloc'd */
    size_t len;
    char sop_class_uid[MT_UID_MAX + 1]; /* parsed from the value when it fits; else "" */
} mt_pdu_raw_item_t;

/* User information item 0x50. */
typedef struct mt_pdu_user_info {
    bool has_max_len;
    uint32_t max_len; /* PS3.8 D.1: 0 = no limit; absent item is decoded as 0 */
    char impl_class_uid[MT_UID_MAX + 1];
    char impl_version_name[MT_AE_MAX + 1]; /* "" when absent */
    bool has_async;
    uint16_t max_ops_invoked;
    uint16_t max_ops_performed;
    mt_pdu_role_t *roles;
    size_t n_roles;
    mt_pdu_raw_item_t *ext; /* 0x56 and 0x57 items in order */
    size_t n_ext;
    /* user identity: RQ (0x58) */
    bool has_identity_rq;
    uint8_t identity_type; /* enum mt_user_identity_type */
    bool identity_positive_response_requested;
    uint8_t *identity_primary; /* mt_malloc'd, may contain any bytes (NUL added after len) */
    size_t identity_primary_len;
    uint8_t *identity_secondary; /* NULL when secondary length is 0 */
    size_t identity_secondary_len;
    /* user identity: AC (0x59) */
    bool has_identity_ac;
    uint8_t *identity_server_response; /* mt_malloc'd; NULL when length 0 */
    size_t identity_server_response_len;
} mt_pdu_user_info_t;

/* A-ASSOCIATE-RQ and -AC. */
typedef struct mt_pdu_assoc {
    uint16_t protocol_version;     /* bit 0 set = version 1 (§9.3.2); negotiate.c checks it */
    char called_ae[MT_AE_MAX + 1]; /* leading/trailing spaces removed */
    char calling_ae[MT_AE_MAX + 1];
    char app_context[MT_UID_MAX + 1]; /* "" when absent: negotiate.c rejects (1,1,2) */
    mt_pdu_pc_t *pcs;
    size_t n_pcs;
    bool has_user_info;
    mt_pdu_user_info_t ui;
} mt_pdu_assoc_t;

/* One PDV (PS3.8 §9.3.5.1, Annex E.2): a fragment of a command or of a data set. */
typedef struct mt_pdv {
    uint8_t pcid;
    bool command;        /* message control header bit 0 */
    bool last;           /* message control header bit 1 */
    const uint8_t *data; /* borrowed: points into the input (decode) or the caller (encode) */
    size_t len;
} mt_pdv_t;

typedef struct mt_pdu {
    mt_pdu_type_t type;
    union {
        mt_pdu_assoc_t assoc; /* A-ASSOCIATE-RQ / AC */
        struct {
            uint8_t result, source, reason;
        } rj; /* A-ASSOCIATE-RJ */
        struct {
            uint8_t source, reason;
        } abort; /* A-ABORT */
        struct {
            const uint8_t *items; /* the PDV items, borrowed from the input buffer */
            size_t len;
            size_t n_pdvs; /* validated by the decoder */
        } pdata;           /* P-DATA-TF */
    } u;
} mt_pdu_t;

/* Zero a PDU of the given type (lists empty). */
void mt_pdu_init(mt_pdu_t *p, mt_pdu_type_t type);
/* Free what mt_pdu_decode or the mt_pdu_*_add helpers allocated; p can be reused after. */
void mt_pdu_dispose(mt_pdu_t *p);

/* Cheap header look for a reader: with at least 6 bytes, sets *type (raw byte, maybe unknown)
 * and *total_len (6 + PDU-length) and returns 0; MT_EAGAIN with fewer than 6 bytes. No checks:
 * mt_pdu_decode checks type and limits from the header alone. */
int mt_pdu_peek(const uint8_t *buf, size_t len, uint8_t *type, size_t *total_len);

/* Decode one PDU from buf.
 *   max_pdata_len: limit on the PDU-length of a P-DATA-TF (our advertised Maximum Length;
 *                  0 = MT_PDU_MAX_CONTROL_LEN); every other type is limited by
 *                  MT_PDU_MAX_CONTROL_LEN.
 * Returns:
 *   0             *out filled, *consumed = bytes of this PDU (more may follow in buf);
 *                 call mt_pdu_dispose(out) when done.
 *   MT_EAGAIN     buf holds a valid header (known type, length within limits) but not the
 *                 whole PDU yet: read more and call again. Checked from the first 6 bytes, so
 *                 an oversized or unknown PDU is refused before it is buffered.
 *   MT_ETOOBIG    the PDU-length exceeds the limit (diag: abort 2 / invalid parameter value).
 *   MT_EMALFORMED diag filled: offset, reason, A-ABORT source/reason (unknown PDU type ->
 *                 reason 1 unrecognized PDU; lengths past their enclosing item, bad fixed
 *                 lengths, over-long UIDs -> 6 invalid PDU parameter value; duplicate
 *                 singleton items, items in the wrong PDU -> 5 unexpected PDU parameter; a
 *                 P-DATA-TF without any PDV -> 6).
 * On error *out holds nothing to dispose (it is always safe to mt_pdu_dispose). */
int mt_pdu_decode(const uint8_t *buf, size_t len, size_t max_pdata_len, mt_pdu_t *out,
                  size_t *consumed, mt_pdu_diag_t *diag);

/* Append the whole encoded PDU (header + body) to out. For A-ASSOCIATE-RQ/AC the application
 * context is p->u.assoc.app_context or MT_APP_CONTEXT_UID when empty; AE titles are space
 * padded to 16; the user information item is written when has_user_info (max length always,
 * then impl class UID, async window, roles, impl version name, raw ext items, identity).
 * For P-DATA-TF, the pdata.items bytes are copied as they are (see mt_pdu_encode_pdata).
 * Returns 0, MT_ETOOBIG (out's limit, or an item longer than its 16-bit length field),
 * MT_EINVAL (a string longer than its field). On error out's length is restored. */
int mt_pdu_encode(const mt_pdu_t *p, mt_buf_t *out);

/* Builders for the fixed PDUs (append one PDU to out). */
int mt_pdu_encode_abort(mt_buf_t *out, uint8_t source, uint8_t reason);
int mt_pdu_encode_rj(mt_buf_t *out, uint8_t result, uint8_t source, uint8_t reason);
int mt_pdu_encode_release_rq(mt_buf_t *out);
int mt_pdu_encode_release_rp(mt_buf_t *out);

/* Helpers to build an A-ASSOCIATE-RQ/AC for encoding (allocations freed by mt_pdu_dispose).
 * Strings are copied; MT_EINVAL when longer than the field, MT_ETOOBIG past the MT_PDU_MAX_*
 * bounds. mt_pdu_pc_add returns the new context (ts list empty) or NULL on either. */
mt_pdu_pc_t *mt_pdu_pc_add(mt_pdu_assoc_t *a, uint8_t id, const char *abstract_syntax);
int mt_pdu_pc_add_ts(mt_pdu_pc_t *pc, const char *ts_uid);
int mt_pdu_role_add(mt_pdu_user_info_t *ui, const char *sop_class_uid, uint8_t scu, uint8_t scp);
/* Set the user identity fields (copies); for an AC pass the server response as primary. */
int mt_pdu_identity_set_rq(mt_pdu_user_info_t *ui, uint8_t type, bool positive_requested,
                           const uint8_t *primary, size_t primary_len, const uint8_t *secondary,
                           size_t secondary_len);
int mt_pdu_identity_set_ac(mt_pdu_user_info_t *ui, const uint8_t *response, size_t len);

/* ---- P-DATA-TF fast path: no copies ---- */

/* Iterator over the PDVs of a decoded P-DATA-TF (or any PDV item list). */
typedef struct mt_pdv_iter {
    const uint8_t *pos, *end;
} mt_pdv_iter_t;

void mt_pdv_iter_init(mt_pdv_iter_t *it, const mt_pdu_t *pdata);
/* 1 and *pdv filled (data points into the PDU's buffer); 0 at the end; MT_EMALFORMED (diag
 * offset relative to the iterator start) when an item is truncated or shorter than 2. A list
 * validated by mt_pdu_decode never fails. */
int mt_pdv_next(mt_pdv_iter_t *it, mt_pdv_t *pdv, mt_pdu_diag_t *diag);

/* Append one P-DATA-TF PDU holding the n PDVs (data copied from the caller's buffers). */
int mt_pdu_encode_pdata(mt_buf_t *out, const mt_pdv_t *pdvs, size_t n);

/* Append as many P-DATA-TF PDUs as needed to carry one whole command set or data set of n bytes
 * (n may be 0: one empty PDV) on context pcid, one PDV per PDU, each PDU-length <= peer_max
 * (the peer's Maximum Length; 0 = no limit, in which case 1 MiB fragments are used). The last
 * PDV has the last-fragment bit. peer_max below 8 is treated as 8 (a PDV of 2 value bytes). */
int mt_pdu_encode_pdata_split(mt_buf_t *out, uint8_t pcid, bool command, const uint8_t *p, size_t n,
                              uint32_t peer_max);
/* The same, the last PDV's last-fragment bit set only when last (a data set sent in chunks). */
int mt_pdu_encode_pdata_frags(mt_buf_t *out, uint8_t pcid, bool command, const uint8_t *p,
                              size_t n, bool last, uint32_t peer_max);
/* The most value bytes of one PDV in a P-DATA-TF of at most peer_max bytes, as the two above
 * fragment (0: 1 MiB; below 8 treated as 8; even). */
size_t mt_pdu_pdv_max_value(uint32_t peer_max);
/* The MT_PDATA_HEADER_LEN bytes before the value of a P-DATA-TF holding one PDV of len value
 * bytes: the PDU header, then the PDV's (for a vectored write that sends the value in place). */
#define MT_PDATA_HEADER_LEN (MT_PDU_HEADER_LEN + MT_PDV_HEADER_LEN)
void mt_pdu_put_pdata_header(uint8_t *h, uint8_t pcid, bool command, bool last, uint32_t len);

/* Names for logs: "A-ASSOCIATE-RQ", ..., "unknown". */
const char *mt_pdu_type_name(uint8_t type);

#endif
