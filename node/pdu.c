/*
 * pdu.c - PS3.8 §9.3 PDU codec (the byte layouts are in pdu.h).
 *
 * Decoding reads through a cursor {base, pos, end}: `base` is the first byte of the PDU (so the
 * diagnostic offset is PDU-relative), `end` the end of the enclosing PDU, item or sub-item. Every
 * read first checks the bytes remaining (rd_*), every item length is checked against its
 * enclosing cursor before a sub-cursor is made from it (sub_cursor), so nothing can run past the
 * PDU whatever the peer sends. A failure fills the diagnostic with the A-ABORT the peer gets and
 * unwinds through one `fail:` exit that disposes of what was allocated so far.
 *
 * Encoding appends to an mt_buf_t: a header with a placeholder length is written first and
 * patched once the body is known (begin_len/end_len), for the PDU (32-bit length) and for every
 * item and sub-item (16-bit length). On any error the buffer is cut back to where it started.
 */
#include "pdu.h"

#include <string.h>

#include "util/alloc.h"
#include "util/bytes.h"
#include "util/err.h"

/* ------------------------------------------------------------------------------------------ */
/* byte order helpers                                                                         */

const char *mt_pdu_type_name(uint8_t type)
{
    switch (type) {
    case MT_PDU_A_ASSOCIATE_RQ:
        return "A-ASSOCIATE-RQ";
    case MT_PDU_A_ASSOCIATE_AC:
        return "A-ASSOCIATE-AC";
    case MT_PDU_A_ASSOCIATE_RJ:
        return "A-ASSOCIATE-RJ";
    case MT_PDU_P_DATA_TF:
        return "P-DATA-TF";
    case MT_PDU_A_RELEASE_RQ:
        return "A-RELEASE-RQ";
    case MT_PDU_A_RELEASE_RP:
        return "A-RELEASE-RP";
    case MT_PDU_A_ABORT:
        return "A-ABORT";
    default:
        return "unknown";
    }
}

/* ------------------------------------------------------------------------------------------ */
/* init / dispose                                                                             */

void mt_pdu_init(mt_pdu_t *p, mt_pdu_type_t type)
{
    memset(p, 0, sizeof(*p));
    p->type = type;
    if (type == MT_PDU_A_ASSOCIATE_RQ || type == MT_PDU_A_ASSOCIATE_AC)
        p->u.assoc.protocol_version = 1;
}

static void user_info_dispose(mt_pdu_user_info_t *ui)
{
    for (size_t i = 0; i < ui->n_ext; i++)
        mt_free(ui->ext[i].value);
    mt_free(ui->ext);
    mt_free(ui->roles);
    mt_free(ui->identity_primary);
    mt_free(ui->identity_secondary);
    mt_free(ui->identity_server_response);
    memset(ui, 0, sizeof(*ui));
}

void mt_pdu_dispose(mt_pdu_t *p)
{
    if (p->type == MT_PDU_A_ASSOCIATE_RQ || p->type == MT_PDU_A_ASSOCIATE_AC) {
        mt_pdu_assoc_t *a = &p->u.assoc;
        for (size_t i = 0; i < a->n_pcs; i++)
            mt_free(a->pcs[i].ts);
        mt_free(a->pcs);
        a->pcs = NULL;
        a->n_pcs = 0;
        user_info_dispose(&a->ui);
    }
    mt_pdu_type_t t = p->type;
    memset(p, 0, sizeof(*p));
    p->type = t;
}

/* ------------------------------------------------------------------------------------------ */
/* decoding                                                                                   */

typedef struct cursor {
    const uint8_t *base; /* start of the PDU: diagnostic offsets are relative to it */
    const uint8_t *pos;
    const uint8_t *end;
} cursor_t;

static size_t remaining(const cursor_t *c)
{
    return (size_t)(c->end - c->pos);
}

static int fail_at(mt_pdu_diag_t *d, const cursor_t *c, const uint8_t *at, uint8_t reason,
                   const char *why)
{
    if (d) {
        d->offset = (size_t)(at - c->base);
        d->reason = why;
        d->abort_source = MT_ABORT_SOURCE_SERVICE_PROVIDER;
        d->abort_reason = reason;
    }
    return MT_EMALFORMED;
}

#define BAD_VALUE(c, at, why) fail_at(diag, (c), (at), MT_ABORT_INVALID_PDU_PARAMETER_VALUE, why)
#define UNEXPECTED(c, at, why) fail_at(diag, (c), (at), MT_ABORT_UNEXPECTED_PDU_PARAMETER, why)

/* Item/sub-item header: type(1) reserved(1) length(2). On success *sub covers the value and
 * the parent cursor is advanced past it. */
static int item_header(cursor_t *c, uint8_t *type, cursor_t *sub, mt_pdu_diag_t *diag)
{
    if (remaining(c) < 4)
        return BAD_VALUE(c, c->pos, "item header truncated");
    uint16_t n = mt_be16(c->pos + 2);
    *type = c->pos[0];
    if (n > remaining(c) - 4)
        return BAD_VALUE(c, c->pos + 2, "item length past the end of its enclosing item");
    sub->base = c->base;
    sub->pos = c->pos + 4;
    sub->end = sub->pos + n;
    c->pos = sub->end;
    return 0;
}

/* Copy a UID value: it ends at the first NUL (padding, PS3.5 §9.1) and loses trailing spaces;
 * then at most 64 characters. */
static int copy_uid(char out[MT_UID_MAX + 1], const cursor_t *c, const uint8_t *p, size_t n,
                    mt_pdu_diag_t *diag)
{
    const uint8_t *nul = memchr(p, 0, n);
    if (nul) /* NUL padding, or an embedded NUL: the string ends there */
        n = (size_t)(nul - p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n > MT_UID_MAX)
        return BAD_VALUE(c, p, "UID longer than 64 characters");
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* AE title, or a version name: leading and trailing spaces are not significant, a NUL ends
 * it; truncated to max characters. */
static void copy_trimmed(char *out, size_t max, const uint8_t *p, size_t n)
{
    while (n > 0 && p[0] == ' ') {
        p++;
        n--;
    }
    const uint8_t *nul = memchr(p, 0, n);
    if (nul)
        n = (size_t)(nul - p);
    if (n > max)
        n = max;
    while (n > 0 && p[n - 1] == ' ')
        n--;
    memcpy(out, p, n);
    out[n] = 0;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    if (n == 0)
        return NULL;
    uint8_t *d = mt_malloc(n + 1);
    memcpy(d, p, n);
    d[n] = 0;
    return d;
}

static mt_uid_str_t *ts_append(mt_pdu_pc_t *pc)
{
    pc->ts = mt_realloc(pc->ts, (pc->n_ts + 1) * sizeof(*pc->ts));
    mt_uid_str_t *u = &pc->ts[pc->n_ts++];
    u->s[0] = 0;
    return u;
}

static mt_pdu_pc_t *pc_append(mt_pdu_assoc_t *a)
{
    a->pcs = mt_realloc(a->pcs, (a->n_pcs + 1) * sizeof(*a->pcs));
    mt_pdu_pc_t *pc = &a->pcs[a->n_pcs++];
    memset(pc, 0, sizeof(*pc));
    return pc;
}

/* 0x20 (RQ) / 0x21 (AC) presentation context item, value in *c. */
static int decode_pc(cursor_t *c, bool rq, mt_pdu_assoc_t *a, mt_pdu_diag_t *diag)
{
    const uint8_t *start = c->pos;
    if (remaining(c) < 4)
        return BAD_VALUE(c, start, "presentation context item shorter than 4 bytes");
    if (a->n_pcs >= MT_PDU_MAX_PCS)
        return BAD_VALUE(c, start - 4, "more than 128 presentation context items");
    mt_pdu_pc_t *pc = pc_append(a);
    pc->id = c->pos[0];
    if (!rq)
        pc->result = c->pos[2];
    c->pos += 4;
    bool have_as = false;
    while (remaining(c) > 0) {
        const uint8_t *at = c->pos;
        uint8_t type;
        cursor_t v;
        int rc = item_header(c, &type, &v, diag);
        if (rc)
            return rc;
        if (type == 0x30 && rq) {
            if (have_as)
                return UNEXPECTED(c, at, "second abstract syntax sub-item");
            have_as = true;
            rc = copy_uid(pc->abstract_syntax, &v, v.pos, remaining(&v), diag);
        } else if (type == 0x40) {
            if (!rq && pc->n_ts == 1)
                return UNEXPECTED(c, at, "second transfer syntax sub-item in an AC");
            if (pc->n_ts >= MT_PDU_MAX_TS)
                continue; /* ignored (pdu.h) */
            rc = copy_uid(ts_append(pc)->s, &v, v.pos, remaining(&v), diag);
            /* PS3.8 §9.3.3.2: in a rejected AC context the syntax is not significant */
            if (rc && !rq && pc->result != MT_PC_ACCEPTANCE) {
                pc->ts[pc->n_ts - 1].s[0] = 0;
                rc = 0;
            }
        } else if (type == 0x30) {
            return UNEXPECTED(c, at, "abstract syntax sub-item in an A-ASSOCIATE-AC");
        }
        /* other sub-item types: skipped (PS3.8 §9.3.1: unrecognised items are ignored) */
        if (rc)
            return rc;
    }
    return 0;
}

static int decode_role(cursor_t *v, mt_pdu_user_info_t *ui, mt_pdu_diag_t *diag)
{
    const uint8_t *at = v->pos;
    if (remaining(v) < 2)
        return BAD_VALUE(v, at, "role selection sub-item shorter than 2 bytes");
    uint16_t ul = mt_be16(v->pos);
    if ((size_t)ul + 4 > remaining(v))
        return BAD_VALUE(v, at, "role selection UID length past the sub-item");
    mt_pdu_role_t r;
    memset(&r, 0, sizeof(r));
    int rc = copy_uid(r.sop_class_uid, v, v->pos + 2, ul, diag);
    if (rc)
        return rc;
    r.scu_role = v->pos[2 + ul];
    r.scp_role = v->pos[3 + ul];
    if (ui->n_roles >= MT_PDU_MAX_ROLES)
        return 0; /* ignored (pdu.h) */
    ui->roles = mt_realloc(ui->roles, (ui->n_roles + 1) * sizeof(*ui->roles));
    ui->roles[ui->n_roles++] = r;
    return 0;
}

static int decode_ext(cursor_t *v, uint8_t type, mt_pdu_user_info_t *ui)
{
    if (ui->n_ext >= MT_PDU_MAX_EXT)
        return 0; /* ignored (pdu.h) */
    mt_pdu_raw_item_t r;
    memset(&r, 0, sizeof(r));
    size_t n = remaining(v);
    r.type = type;
    r.len = n;
    r.value = dup_bytes(v->pos, n);
    /* both 0x56 and 0x57 start with SOP-class-uid-length(2) + SOP class UID */
    if (n >= 2) {
        uint16_t ul = mt_be16(v->pos);
        if ((size_t)ul + 2 <= n)
            (void)copy_uid(r.sop_class_uid, v, v->pos + 2, ul, NULL); /* "" if too long */
    }
    ui->ext = mt_realloc(ui->ext, (ui->n_ext + 1) * sizeof(*ui->ext));
    ui->ext[ui->n_ext++] = r;
    return 0;
}

static int decode_identity_rq(cursor_t *v, mt_pdu_user_info_t *ui, mt_pdu_diag_t *diag)
{
    const uint8_t *at = v->pos;
    if (ui->has_identity_rq)
        return UNEXPECTED(v, at, "second user identity sub-item");
    if (remaining(v) < 4)
        return BAD_VALUE(v, at, "user identity sub-item shorter than 4 bytes");
    uint8_t type = v->pos[0];
    bool pos_rsp = v->pos[1] == 1;
    uint16_t n1 = mt_be16(v->pos + 2);
    if ((size_t)n1 + 6 > remaining(v))
        return BAD_VALUE(v, at + 2, "user identity primary field length past the sub-item");
    const uint8_t *p1 = v->pos + 4;
    uint16_t n2 = mt_be16(p1 + n1);
    if ((size_t)n1 + 6 + n2 > remaining(v))
        return BAD_VALUE(v, p1 + n1, "user identity secondary field length past the sub-item");
    ui->has_identity_rq = true;
    ui->identity_type = type;
    ui->identity_positive_response_requested = pos_rsp;
    ui->identity_primary = dup_bytes(p1, n1);
    ui->identity_primary_len = n1;
    ui->identity_secondary = dup_bytes(p1 + n1 + 2, n2);
    ui->identity_secondary_len = n2;
    return 0;
}

static int decode_identity_ac(cursor_t *v, mt_pdu_user_info_t *ui, mt_pdu_diag_t *diag)
{
    const uint8_t *at = v->pos;
    if (ui->has_identity_ac)
        return UNEXPECTED(v, at, "second user identity sub-item");
    if (remaining(v) < 2)
        return BAD_VALUE(v, at, "user identity response sub-item shorter than 2 bytes");
    uint16_t n = mt_be16(v->pos);
    if ((size_t)n + 2 > remaining(v))
        return BAD_VALUE(v, at, "server response length past the sub-item");
    ui->has_identity_ac = true;
    ui->identity_server_response = dup_bytes(v->pos + 2, n);
    ui->identity_server_response_len = n;
    return 0;
}

/* 0x50 user information item, value in *c. */
static int decode_user_info(cursor_t *c, bool rq, mt_pdu_user_info_t *ui, mt_pdu_diag_t *diag)
{
    bool have_impl = false, have_ver = false;
    while (remaining(c) > 0) {
        const uint8_t *at = c->pos;
        uint8_t type;
        cursor_t v;
        int rc = item_header(c, &type, &v, diag);
        if (rc)
            return rc;
        size_t n = remaining(&v);
        switch (type) {
        case 0x51: /* PS3.8 D.1 maximum length */
            if (ui->has_max_len)
                return UNEXPECTED(c, at, "second maximum length sub-item");
            if (n != 4)
                return BAD_VALUE(c, at + 2, "maximum length sub-item length is not 4");
            ui->has_max_len = true;
            ui->max_len = mt_be32(v.pos);
            break;
        case 0x52: /* PS3.7 D.3.3.2 implementation class UID */
            if (have_impl)
                return UNEXPECTED(c, at, "second implementation class UID sub-item");
            have_impl = true;
            rc = copy_uid(ui->impl_class_uid, &v, v.pos, n, diag);
            break;
        case 0x53: /* PS3.7 D.3.3.3 asynchronous operations window */
            if (ui->has_async)
                return UNEXPECTED(c, at, "second asynchronous operations window sub-item");
            if (n != 4)
                return BAD_VALUE(c, at + 2, "asynchronous operations window length is not 4");
            ui->has_async = true;
            ui->max_ops_invoked = mt_be16(v.pos);
            ui->max_ops_performed = mt_be16(v.pos + 2);
            break;
        case 0x54: /* PS3.7 D.3.3.4 SCP/SCU role selection */
            rc = decode_role(&v, ui, diag);
            break;
        case 0x55: /* PS3.7 D.3.3.2 implementation version name */
            if (have_ver)
                return UNEXPECTED(c, at, "second implementation version name sub-item");
            have_ver = true;
            copy_trimmed(ui->impl_version_name, MT_AE_MAX, v.pos, n);
            break;
        case 0x56: /* PS3.7 D.3.3.5 SOP class extended negotiation: kept raw */
        case 0x57: /* PS3.7 D.3.3.6 SOP class common extended negotiation: kept raw */
            rc = decode_ext(&v, type, ui);
            break;
        case 0x58: /* PS3.7 D.3.3.7.1 user identity (RQ) */
            if (!rq)
                return UNEXPECTED(c, at, "user identity request sub-item in an AC");
            rc = decode_identity_rq(&v, ui, diag);
            break;
        case 0x59: /* PS3.7 D.3.3.7.2 user identity (AC) */
            if (rq)
                return UNEXPECTED(c, at, "user identity response sub-item in an RQ");
            rc = decode_identity_ac(&v, ui, diag);
            break;
        default: /* unknown sub-item: skipped */
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int decode_assoc(cursor_t *c, bool rq, mt_pdu_assoc_t *a, mt_pdu_diag_t *diag)
{
    if (remaining(c) < 68)
        return BAD_VALUE(c, c->pos, "A-ASSOCIATE shorter than its 68 fixed bytes");
    a->protocol_version = mt_be16(c->pos);
    copy_trimmed(a->called_ae, MT_AE_MAX, c->pos + 4, 16);
    copy_trimmed(a->calling_ae, MT_AE_MAX, c->pos + 20, 16);
    c->pos += 68; /* + 32 reserved bytes, not tested */
    bool have_ctx = false;
    while (remaining(c) > 0) {
        const uint8_t *at = c->pos;
        uint8_t type;
        cursor_t v;
        int rc = item_header(c, &type, &v, diag);
        if (rc)
            return rc;
        switch (type) {
        case 0x10:
            if (have_ctx)
                return UNEXPECTED(c, at, "second application context item");
            have_ctx = true;
            rc = copy_uid(a->app_context, &v, v.pos, remaining(&v), diag);
            break;
        case 0x20:
            if (!rq)
                return UNEXPECTED(c, at, "RQ presentation context item in an A-ASSOCIATE-AC");
            rc = decode_pc(&v, true, a, diag);
            break;
        case 0x21:
            if (rq)
                return UNEXPECTED(c, at, "AC presentation context item in an A-ASSOCIATE-RQ");
            rc = decode_pc(&v, false, a, diag);
            break;
        case 0x50:
            if (a->has_user_info)
                return UNEXPECTED(c, at, "second user information item");
            a->has_user_info = true;
            rc = decode_user_info(&v, rq, &a->ui, diag);
            break;
        default: /* PS3.8 §9.3.1: items of unrecognised type are ignored */
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int pdv_item(cursor_t *c, mt_pdv_t *pdv, mt_pdu_diag_t *diag)
{
    if (remaining(c) < 4)
        return BAD_VALUE(c, c->pos, "PDV item header truncated");
    uint32_t n = mt_be32(c->pos);
    if (n < 2)
        return BAD_VALUE(c, c->pos, "PDV item length below 2");
    if (n > remaining(c) - 4)
        return BAD_VALUE(c, c->pos, "PDV item length past the end of the PDU");
    pdv->pcid = c->pos[4];
    pdv->command = (c->pos[5] & 0x01) != 0;
    pdv->last = (c->pos[5] & 0x02) != 0;
    pdv->data = c->pos + 6;
    pdv->len = n - 2;
    c->pos += 4 + (size_t)n;
    return 0;
}

int mt_pdu_peek(const uint8_t *buf, size_t len, uint8_t *type, size_t *total_len)
{
    if (len < MT_PDU_HEADER_LEN)
        return MT_EAGAIN;
    *type = buf[0];
    *total_len = MT_PDU_HEADER_LEN + (size_t)mt_be32(buf + 2);
    return 0;
}

int mt_pdu_decode(const uint8_t *buf, size_t len, size_t max_pdata_len, mt_pdu_t *out,
                  size_t *consumed, mt_pdu_diag_t *diag)
{
    mt_pdu_init(out, 0); /* always safe to dispose */
    if (len < MT_PDU_HEADER_LEN)
        return MT_EAGAIN;
    cursor_t c = {buf, buf, buf + len};
    uint8_t type = buf[0];
    uint32_t n = mt_be32(buf + 2);
    if (type < MT_PDU_A_ASSOCIATE_RQ || type > MT_PDU_A_ABORT)
        return fail_at(diag, &c, buf, MT_ABORT_UNRECOGNIZED_PDU, "unrecognised PDU type");
    size_t limit = MT_PDU_MAX_CONTROL_LEN;
    if (type == MT_PDU_P_DATA_TF && max_pdata_len)
        limit = max_pdata_len;
    if (n > limit) {
        fail_at(diag, &c, buf + 2, MT_ABORT_INVALID_PDU_PARAMETER_VALUE,
                "PDU length exceeds the maximum");
        return MT_ETOOBIG;
    }
    bool fixed4 = type == MT_PDU_A_ASSOCIATE_RJ || type == MT_PDU_A_RELEASE_RQ ||
                  type == MT_PDU_A_RELEASE_RP || type == MT_PDU_A_ABORT;
    if (fixed4 && n != 4)
        return BAD_VALUE(&c, buf + 2, "PDU length is not 4");
    if (type == MT_PDU_A_ASSOCIATE_RQ || type == MT_PDU_A_ASSOCIATE_AC) {
        if (n < 68)
            return BAD_VALUE(&c, buf + 2, "A-ASSOCIATE shorter than its 68 fixed bytes");
    }
    if (n > len - MT_PDU_HEADER_LEN)
        return MT_EAGAIN;
    c.pos = buf + MT_PDU_HEADER_LEN;
    c.end = c.pos + n;

    mt_pdu_init(out, (mt_pdu_type_t)type);
    int rc = 0;
    const uint8_t *b = c.pos;
    switch (type) {
    case MT_PDU_A_ASSOCIATE_RQ:
    case MT_PDU_A_ASSOCIATE_AC:
        rc = decode_assoc(&c, type == MT_PDU_A_ASSOCIATE_RQ, &out->u.assoc, diag);
        break;
    case MT_PDU_A_ASSOCIATE_RJ:
        out->u.rj.result = b[1];
        out->u.rj.source = b[2];
        out->u.rj.reason = b[3];
        break;
    case MT_PDU_A_ABORT:
        out->u.abort.source = b[2];
        out->u.abort.reason = b[3];
        break;
    case MT_PDU_A_RELEASE_RQ:
    case MT_PDU_A_RELEASE_RP:
        break;
    case MT_PDU_P_DATA_TF: {
        out->u.pdata.items = b;
        out->u.pdata.len = n;
        size_t count = 0;
        while (remaining(&c) > 0) {
            mt_pdv_t pdv;
            rc = pdv_item(&c, &pdv, diag);
            if (rc)
                break;
            count++;
        }
        if (!rc && count == 0)
            rc = BAD_VALUE(&c, buf + 2, "P-DATA-TF without a PDV item");
        out->u.pdata.n_pdvs = count;
        break;
    }
    }
    if (rc)
        goto fail;
    *consumed = MT_PDU_HEADER_LEN + (size_t)n;
    return 0;

fail:
    mt_pdu_dispose(out);
    return rc;
}

void mt_pdv_iter_init(mt_pdv_iter_t *it, const mt_pdu_t *pdata)
{
    it->pos = pdata->u.pdata.items;
    it->end = it->pos + pdata->u.pdata.len;
}

int mt_pdv_next(mt_pdv_iter_t *it, mt_pdv_t *pdv, mt_pdu_diag_t *diag)
{
    if (it->pos >= it->end)
        return 0;
    cursor_t c = {it->pos, it->pos, it->end};
    int rc = pdv_item(&c, pdv, diag);
    if (rc)
        return rc;
    it->pos = c.pos;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* encoding                                                                                   */

/* Open an item with a 16-bit length: returns the offset of the length field. */
static int begin_item(mt_buf_t *b, uint8_t type, size_t *len_at)
{
    uint8_t h[4] = {type, 0, 0, 0};
    int rc = mt_buf_append(b, h, 4);
    *len_at = b->len - 2;
    return rc;
}

static int end_item(mt_buf_t *b, size_t len_at)
{
    size_t n = b->len - len_at - 2;
    if (n > 0xFFFF)
        return MT_ETOOBIG;
    mt_put_be16(b->data + len_at, (uint16_t)n);
    return 0;
}

static int put_item_bytes(mt_buf_t *b, uint8_t type, const void *p, size_t n)
{
    if (n > 0xFFFF)
        return MT_ETOOBIG;
    uint8_t h[4] = {type, 0, (uint8_t)(n >> 8), (uint8_t)n};
    int rc = mt_buf_append(b, h, 4);
    if (!rc)
        rc = mt_buf_append(b, p, n);
    return rc;
}

static int put_item_uid(mt_buf_t *b, uint8_t type, const char *uid)
{
    size_t n = strlen(uid);
    if (n > MT_UID_MAX)
        return MT_EINVAL;
    return put_item_bytes(b, type, uid, n);
}

static int put_u16_prefixed(mt_buf_t *b, const void *p, size_t n)
{
    if (n > 0xFFFF)
        return MT_ETOOBIG;
    int rc = mt_buf_put_u16be(b, (uint16_t)n);
    if (!rc)
        rc = mt_buf_append(b, p, n);
    return rc;
}

static int put_ae(mt_buf_t *b, const char *ae)
{
    size_t n = strlen(ae);
    if (n > MT_AE_MAX)
        return MT_EINVAL;
    uint8_t f[16];
    memset(f, ' ', sizeof(f));
    memcpy(f, ae, n);
    return mt_buf_append(b, f, 16);
}

static int encode_user_info(mt_buf_t *b, const mt_pdu_user_info_t *ui)
{
    size_t at;
    int rc = begin_item(b, 0x50, &at);
    if (rc)
        return rc;
    uint8_t ml[8] = {0x51, 0, 0, 4};
    mt_put_be32(ml + 4, ui->max_len);
    if ((rc = mt_buf_append(b, ml, 8)))
        return rc;
    if (ui->impl_class_uid[0] && (rc = put_item_uid(b, 0x52, ui->impl_class_uid)))
        return rc;
    if (ui->has_async) {
        uint8_t w[8] = {0x53, 0, 0, 4};
        mt_put_be16(w + 4, ui->max_ops_invoked);
        mt_put_be16(w + 6, ui->max_ops_performed);
        if ((rc = mt_buf_append(b, w, 8)))
            return rc;
    }
    for (size_t i = 0; i < ui->n_roles; i++) {
        const mt_pdu_role_t *r = &ui->roles[i];
        size_t n = strlen(r->sop_class_uid), ra;
        if (n > MT_UID_MAX)
            return MT_EINVAL;
        if ((rc = begin_item(b, 0x54, &ra)) || (rc = put_u16_prefixed(b, r->sop_class_uid, n)) ||
            (rc = mt_buf_put_u8(b, r->scu_role)) || (rc = mt_buf_put_u8(b, r->scp_role)) ||
            (rc = end_item(b, ra)))
            return rc;
    }
    if (ui->impl_version_name[0]) {
        size_t n = strlen(ui->impl_version_name);
        if (n > MT_AE_MAX)
            return MT_EINVAL;
        if ((rc = put_item_bytes(b, 0x55, ui->impl_version_name, n)))
            return rc;
    }
    for (size_t i = 0; i < ui->n_ext; i++)
        if ((rc = put_item_bytes(b, ui->ext[i].type, ui->ext[i].value, ui->ext[i].len)))
            return rc;
    if (ui->has_identity_rq) {
        size_t ia;
        if ((rc = begin_item(b, 0x58, &ia)) || (rc = mt_buf_put_u8(b, ui->identity_type)) ||
            (rc = mt_buf_put_u8(b, ui->identity_positive_response_requested ? 1 : 0)) ||
            (rc = put_u16_prefixed(b, ui->identity_primary, ui->identity_primary_len)) ||
            (rc = put_u16_prefixed(b, ui->identity_secondary, ui->identity_secondary_len)) ||
            (rc = end_item(b, ia)))
            return rc;
    }
    if (ui->has_identity_ac) {
        size_t ia;
        if ((rc = begin_item(b, 0x59, &ia)) ||
            (rc = put_u16_prefixed(b, ui->identity_server_response,
                                   ui->identity_server_response_len)) ||
            (rc = end_item(b, ia)))
            return rc;
    }
    return end_item(b, at);
}

static int encode_assoc(mt_buf_t *b, bool rq, const mt_pdu_assoc_t *a)
{
    int rc;
    static const uint8_t zeros[32];
    if ((rc = mt_buf_put_u16be(b, a->protocol_version)) || (rc = mt_buf_append(b, zeros, 2)) ||
        (rc = put_ae(b, a->called_ae)) || (rc = put_ae(b, a->calling_ae)) ||
        (rc = mt_buf_append(b, zeros, 32)))
        return rc;
    if ((rc = put_item_uid(b, 0x10, a->app_context[0] ? a->app_context : MT_APP_CONTEXT_UID)))
        return rc;
    for (size_t i = 0; i < a->n_pcs; i++) {
        const mt_pdu_pc_t *pc = &a->pcs[i];
        size_t at;
        uint8_t fixed[4] = {pc->id, 0, rq ? 0 : pc->result, 0};
        if ((rc = begin_item(b, rq ? 0x20 : 0x21, &at)) || (rc = mt_buf_append(b, fixed, 4)))
            return rc;
        if (rq && (rc = put_item_uid(b, 0x30, pc->abstract_syntax)))
            return rc;
        for (size_t t = 0; t < pc->n_ts; t++)
            if ((rc = put_item_uid(b, 0x40, pc->ts[t].s)))
                return rc;
        /* PS3.8 §9.3.3.2: an AC context item always has a transfer syntax sub-item */
        if (!rq && pc->n_ts == 0 && (rc = put_item_uid(b, 0x40, "")))
            return rc;
        if ((rc = end_item(b, at)))
            return rc;
    }
    if (a->has_user_info)
        return encode_user_info(b, &a->ui);
    return 0;
}

int mt_pdu_encode(const mt_pdu_t *p, mt_buf_t *out)
{
    size_t start = out->len;
    uint8_t h[6] = {(uint8_t)p->type, 0, 0, 0, 0, 0};
    int rc = mt_buf_append(out, h, 6);
    if (rc)
        return rc;
    switch (p->type) {
    case MT_PDU_A_ASSOCIATE_RQ:
    case MT_PDU_A_ASSOCIATE_AC:
        rc = encode_assoc(out, p->type == MT_PDU_A_ASSOCIATE_RQ, &p->u.assoc);
        break;
    case MT_PDU_A_ASSOCIATE_RJ: {
        uint8_t v[4] = {0, p->u.rj.result, p->u.rj.source, p->u.rj.reason};
        rc = mt_buf_append(out, v, 4);
        break;
    }
    case MT_PDU_A_ABORT: {
        uint8_t v[4] = {0, 0, p->u.abort.source, p->u.abort.reason};
        rc = mt_buf_append(out, v, 4);
        break;
    }
    case MT_PDU_A_RELEASE_RQ:
    case MT_PDU_A_RELEASE_RP: {
        uint8_t v[4] = {0};
        rc = mt_buf_append(out, v, 4);
        break;
    }
    case MT_PDU_P_DATA_TF:
        rc = mt_buf_append(out, p->u.pdata.items, p->u.pdata.len);
        break;
    default:
        rc = MT_EINVAL;
        break;
    }
    if (!rc) {
        size_t n = out->len - start - MT_PDU_HEADER_LEN;
        if (n > 0xFFFFFFFFu)
            rc = MT_ETOOBIG;
        else
            mt_put_be32(out->data + start + 2, (uint32_t)n);
    }
    if (rc)
        out->len = start;
    return rc;
}

int mt_pdu_encode_abort(mt_buf_t *out, uint8_t source, uint8_t reason)
{
    uint8_t v[10] = {MT_PDU_A_ABORT, 0, 0, 0, 0, 4, 0, 0, source, reason};
    return mt_buf_append(out, v, sizeof(v));
}

int mt_pdu_encode_rj(mt_buf_t *out, uint8_t result, uint8_t source, uint8_t reason)
{
    uint8_t v[10] = {MT_PDU_A_ASSOCIATE_RJ, 0, 0, 0, 0, 4, 0, result, source, reason};
    return mt_buf_append(out, v, sizeof(v));
}

int mt_pdu_encode_release_rq(mt_buf_t *out)
{
    uint8_t v[10] = {MT_PDU_A_RELEASE_RQ, 0, 0, 0, 0, 4};
    return mt_buf_append(out, v, sizeof(v));
}

int mt_pdu_encode_release_rp(mt_buf_t *out)
{
    uint8_t v[10] = {MT_PDU_A_RELEASE_RP, 0, 0, 0, 0, 4};
    return mt_buf_append(out, v, sizeof(v));
}

int mt_pdu_encode_pdata(mt_buf_t *out, const mt_pdv_t *pdvs, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += MT_PDV_HEADER_LEN + (uint64_t)pdvs[i].len;
    if (total > 0xFFFFFFFFu)
        return MT_ETOOBIG;
    size_t start = out->len;
    int rc = mt_buf_reserve(out, MT_PDU_HEADER_LEN + (size_t)total);
    if (rc)
        return rc;
    uint8_t h[6] = {MT_PDU_P_DATA_TF, 0};
    mt_put_be32(h + 2, (uint32_t)total);
    rc = mt_buf_append(out, h, 6);
    for (size_t i = 0; !rc && i < n; i++) {
        uint8_t ph[6];
        mt_put_be32(ph, (uint32_t)(pdvs[i].len + 2));
        ph[4] = pdvs[i].pcid;
        ph[5] = (uint8_t)((pdvs[i].command ? 0x01 : 0) | (pdvs[i].last ? 0x02 : 0));
        rc = mt_buf_append(out, ph, 6);
        if (!rc)
            rc = mt_buf_append(out, pdvs[i].data, pdvs[i].len);
    }
    if (rc)
        out->len = start;
    return rc;
}

size_t mt_pdu_pdv_max_value(uint32_t peer_max)
{
    size_t frag = peer_max == 0 ? 1024u * 1024u : (peer_max < 8 ? 8 : peer_max) - MT_PDV_HEADER_LEN;
    return frag & ~(size_t)1; /* keep fragments even */
}

void mt_pdu_put_pdata_header(uint8_t *h, uint8_t pcid, bool command, bool last, uint32_t len)
{
    h[0] = MT_PDU_P_DATA_TF;
    h[1] = 0;
    mt_put_be32(h + 2, MT_PDV_HEADER_LEN + len);
    mt_put_be32(h + 6, len + 2);
    h[10] = pcid;
    h[11] = (uint8_t)((command ? 0x01 : 0) | (last ? 0x02 : 0));
}

int mt_pdu_encode_pdata_frags(mt_buf_t *out, uint8_t pcid, bool command, const uint8_t *p,
                              size_t n, bool last, uint32_t peer_max)
{
    size_t frag = mt_pdu_pdv_max_value(peer_max);
    size_t start = out->len;
    size_t off = 0;
    int rc;
    do {
        size_t k = n - off < frag ? n - off : frag;
        mt_pdv_t pdv = {pcid, command, last && off + k == n, p ? p + off : NULL, k};
        rc = mt_pdu_encode_pdata(out, &pdv, 1);
        off += k;
    } while (!rc && off < n);
    if (rc)
        out->len = start;
    return rc;
}

int mt_pdu_encode_pdata_split(mt_buf_t *out, uint8_t pcid, bool command, const uint8_t *p, size_t n,
                              uint32_t peer_max)
{
    return mt_pdu_encode_pdata_frags(out, pcid, command, p, n, true, peer_max);
}

/* ------------------------------------------------------------------------------------------ */
/* builders                                                                                   */

static int copy_str(char *dst, size_t max, const char *src)
{
    size_t n = strlen(src);
    if (n > max)
        return MT_EINVAL;
    memcpy(dst, src, n + 1);
    return 0;
}

mt_pdu_pc_t *mt_pdu_pc_add(mt_pdu_assoc_t *a, uint8_t id, const char *abstract_syntax)
{
    if ((abstract_syntax && strlen(abstract_syntax) > MT_UID_MAX) || a->n_pcs >= MT_PDU_MAX_PCS)
        return NULL;
    mt_pdu_pc_t *pc = pc_append(a);
    pc->id = id;
    if (abstract_syntax)
        copy_str(pc->abstract_syntax, MT_UID_MAX, abstract_syntax);
    return pc;
}

int mt_pdu_pc_add_ts(mt_pdu_pc_t *pc, const char *ts_uid)
{
    if (strlen(ts_uid) > MT_UID_MAX)
        return MT_EINVAL;
    if (pc->n_ts >= MT_PDU_MAX_TS)
        return MT_ETOOBIG;
    return copy_str(ts_append(pc)->s, MT_UID_MAX, ts_uid);
}

int mt_pdu_role_add(mt_pdu_user_info_t *ui, const char *sop_class_uid, uint8_t scu, uint8_t scp)
{
    if (strlen(sop_class_uid) > MT_UID_MAX)
        return MT_EINVAL;
    if (ui->n_roles >= MT_PDU_MAX_ROLES)
        return MT_ETOOBIG;
    ui->roles = mt_realloc(ui->roles, (ui->n_roles + 1) * sizeof(*ui->roles));
    mt_pdu_role_t *r = &ui->roles[ui->n_roles++];
    memset(r, 0, sizeof(*r));
    copy_str(r->sop_class_uid, MT_UID_MAX, sop_class_uid);
    r->scu_role = scu;
    r->scp_role = scp;
    return 0;
}

int mt_pdu_identity_set_rq(mt_pdu_user_info_t *ui, uint8_t type, bool positive_requested,
                           const uint8_t *primary, size_t primary_len, const uint8_t *secondary,
                           size_t secondary_len)
{
    if (primary_len > 0xFFFF || secondary_len > 0xFFFF)
        return MT_ETOOBIG;
    mt_free(ui->identity_primary);
    mt_free(ui->identity_secondary);
    ui->has_identity_rq = true;
    ui->identity_type = type;
    ui->identity_positive_response_requested = positive_requested;
    ui->identity_primary = dup_bytes(primary, primary_len);
    ui->identity_primary_len = primary_len;
    ui->identity_secondary = dup_bytes(secondary, secondary_len);
    ui->identity_secondary_len = secondary_len;
    return 0;
}

int mt_pdu_identity_set_ac(mt_pdu_user_info_t *ui, const uint8_t *response, size_t len)
{
    if (len > 0xFFFF)
        return MT_ETOOBIG;
    mt_free(ui->identity_server_response);
    ui->has_identity_ac = true;
    ui->identity_server_response = dup_bytes(response, len);
    ui->identity_server_response_len = len;
    return 0;
}
