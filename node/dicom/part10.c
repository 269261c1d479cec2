/*
 * part10.c - DICOM files (PS3.10 §7.1): the 128-byte preamble, "DICM", and the File Meta
 * Information group (0002,xxxx), always explicit VR little endian (PS3.10 §7.1, Table 7.1-1).
 * PURE: works on caller buffers.
 *
 *   offset 0    preamble (128 bytes, content ignored)
 *   offset 128  "DICM"
 *   offset 132  (0002,0000) UL group length, then the other (0002,xxxx) elements
 *   then        the data set, in the transfer syntax named by (0002,0010)
 *
 * Reading: the meta ends at the first tag outside group 0002. The group length, when present,
 * must be a 4-byte UL of a sane size, and a buffer that ends exactly where it says is a complete
 * meta (an empty data set); otherwise it is not trusted to say where the meta ends, because
 * wrong values are common in the wild (testdata: orthanc-tests/TransferSyntaxes/
 * 1.2.840.10008.1.2.4.50.dcm counts a (0008,0000) element that follows the meta; dcmtk reads
 * the same way and warns). A meta group written in implicit VR (a known writer bug) is tolerated
 * element by element (VR bytes that are not letters).
 *
 * Writing always produces a correct group: group length, version 00\01, the SOP class and
 * instance, the transfer syntax, our implementation class UID and version name, and the source
 * AE title when known.
 *
 * mt_part10_parse_file_buf parses a whole file (or a bare data set, guessing its encoding from
 * its first element) into a tree; the de-identification CLI uses it. mt_part10_parse_file_view
 * is the same with the values left in the caller's buffer (`mitral dump`, on a mapped file).
 */
#include "ds.h"

#include <string.h>

#include "../util/bytes.h"
#include "../util/err.h"
#include "ds_int.h"

#define PREAMBLE 128
#define MAX_META (64 * 1024) /* a meta group larger than this is not a real one */

static int malformed(mt_diag_t *diag, uint64_t off, const char *reason)
{
    if (diag) {
        diag->offset = off;
        diag->reason = reason;
    }
    return MT_EMALFORMED;
}

static void copy_str(const uint8_t *v, uint32_t n, char *out, size_t outsz, bool trim_leading)
{
    while (n > 0 && (v[n - 1] == '\0' || v[n - 1] == ' '))
        n--;
    while (trim_leading && n > 0 && v[0] == ' ')
        v++, n--;
    if (n >= outsz)
        n = (uint32_t)outsz - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

int mt_part10_read_meta(const uint8_t *buf, size_t len, mt_meta_t *meta, size_t *consumed,
                        mt_diag_t *diag)
{
    memset(meta, 0, sizeof *meta);
    *consumed = 0;
    if (len < PREAMBLE + 4 || memcmp(buf + PREAMBLE, "DICM", 4) != 0)
        return MT_EUNSUPPORTED;
    size_t pos = PREAMBLE + 4, end = SIZE_MAX;
    bool first = true;
    for (;;) {
        if (len - pos < 4) {
            if (pos == end)
                break; /* a file with an empty data set */
            return MT_EAGAIN;
        }
        uint16_t group = mt_le16(buf + pos), el = mt_le16(buf + pos + 2);
        if (group != 0x0002) {
            if (first)
                return malformed(diag, pos, "no file meta elements after DICM");
            break;
        }
        if (len - pos < 8)
            return MT_EAGAIN;
        size_t hdr;
        uint32_t vlen;
        uint16_t vr = MT_VR(buf[pos + 4], buf[pos + 5]);
        if (!mt__vr_valid(vr)) { /* implicit VR meta (writer bug) */
            hdr = 8;
            vlen = mt_le32(buf + pos + 4);
            vr = el == 0x0000 ? MT__VR_UL : el == 0x0001 ? MT__VR_OB : MT__VR_UI;
        } else if (mt__vr_long(vr)) {
            if (len - pos < 12)
                return MT_EAGAIN;
            hdr = 12;
            vlen = mt_le32(buf + pos + 8);
        } else {
            hdr = 8;
            vlen = mt_le16(buf + pos + 6);
        }
        if (vlen == MT_UNDEFINED_LENGTH || vlen > MAX_META)
            return malformed(diag, pos, "meta element with an impossible length");
        if (len - pos - hdr < vlen)
            return MT_EAGAIN;
        const uint8_t *v = buf + pos + hdr;
        switch (el) {
        case 0x0000:
            if (vlen != 4)
                return malformed(diag, pos, "meta group length is not 4 bytes");
            if (first) {
                uint32_t gl = mt_le32(v);
                if (gl > MAX_META)
                    return malformed(diag, pos, "meta group length too large");
                end = pos + hdr + vlen + gl;
            }
            break;
        case 0x0002:
            copy_str(v, vlen, meta->sop_class_uid, sizeof meta->sop_class_uid, false);
            break;
        case 0x0003:
            copy_str(v, vlen, meta->sop_instance_uid, sizeof meta->sop_instance_uid, false);
            break;
        case 0x0010:
            copy_str(v, vlen, meta->transfer_syntax_uid, sizeof meta->transfer_syntax_uid, false);
            break;
        case 0x0012:
            copy_str(v, vlen, meta->impl_class_uid, sizeof meta->impl_class_uid, false);
            break;
        case 0x0013:
            copy_str(v, vlen, meta->impl_version_name, sizeof meta->impl_version_name, false);
            break;
        case 0x0016:
            copy_str(v, vlen, meta->source_ae, sizeof meta->source_ae, true);
            break;
        default:
            break;
        }
        pos += hdr + vlen;
        first = false;
        if (pos - PREAMBLE > MAX_META)
            return malformed(diag, pos, "meta group too large");
    }
    *consumed = pos;
    return 0;
}

static int put_elem(mt_buf_t *out, uint16_t el, const char vr[2], const void *v, size_t n,
                    uint8_t pad)
{
    size_t padded = n + (n & 1);
    int rc;
    if ((rc = mt_buf_put_u16le(out, 0x0002)) || (rc = mt_buf_put_u16le(out, el)) ||
        (rc = mt_buf_append(out, vr, 2)))
        return rc;
    if (vr[0] == 'O') { /* OB: 4-byte length */
        if ((rc = mt_buf_put_u16le(out, 0)) || (rc = mt_buf_put_u32le(out, (uint32_t)padded)))
            return rc;
    } else if ((rc = mt_buf_put_u16le(out, (uint16_t)padded))) {
        return rc;
    }
    if ((rc = mt_buf_append(out, v, n)))
        return rc;
    return (n & 1) ? mt_buf_put_u8(out, pad) : 0;
}

int mt_part10_write_meta(const mt_meta_t *meta, mt_buf_t *out)
{
    static const uint8_t preamble[PREAMBLE];
    static const uint8_t version[2] = {0x00, 0x01};
    if (!meta || !meta->transfer_syntax_uid[0])
        return MT_EINVAL;
    size_t mark = out->len;
    int rc;
    if ((rc = mt_buf_append(out, preamble, sizeof preamble)) ||
        (rc = mt_buf_append(out, "DICM", 4)) ||
        (rc = put_elem(out, 0x0000, "UL", "\0\0\0\0", 4, 0)))
        goto fail;
    size_t gl_at = out->len - 4, start = out->len;
    char ae[17];
    copy_str((const uint8_t *)meta->source_ae, (uint32_t)strnlen(meta->source_ae, 16), ae,
             sizeof ae, true);
    if ((rc = put_elem(out, 0x0001, "OB", version, 2, 0)) ||
        (rc = put_elem(out, 0x0002, "UI", meta->sop_class_uid, strnlen(meta->sop_class_uid, 64),
                       0)) ||
        (rc = put_elem(out, 0x0003, "UI", meta->sop_instance_uid,
                       strnlen(meta->sop_instance_uid, 64), 0)) ||
        (rc = put_elem(out, 0x0010, "UI", meta->transfer_syntax_uid,
                       strnlen(meta->transfer_syntax_uid, 64), 0)) ||
        (rc = put_elem(out, 0x0012, "UI", MT_IMPL_CLASS_UID, strlen(MT_IMPL_CLASS_UID), 0)) ||
        (rc = put_elem(out, 0x0013, "SH", MT_IMPL_VERSION_NAME, strlen(MT_IMPL_VERSION_NAME),
                       ' ')) ||
        (ae[0] && (rc = put_elem(out, 0x0016, "AE", ae, strlen(ae), ' '))))
        goto fail;
    uint32_t gl = (uint32_t)(out->len - start);
    uint8_t *p = out->data + gl_at;
    p[0] = (uint8_t)gl, p[1] = (uint8_t)(gl >> 8), p[2] = (uint8_t)(gl >> 16),
    p[3] = (uint8_t)(gl >> 24);
    return 0;
fail:
    out->len = mark;
    return rc;
}

/* PS3.5 has no marker for a bare data set: look at the first element. An explicit VR header
 * has two upper-case letters of a known VR after the tag; big endian if the group reads as a
 * plausible small group only when taken big endian. */
static const mt_ts_t *guess_ts(const uint8_t *buf, size_t len)
{
    if (len < 8)
        return mt_ts_implicit_le;
    uint16_t vr = MT_VR(buf[4], buf[5]);
    if (!mt__vr_known(vr))
        return mt_ts_implicit_le;
    uint16_t g_le = mt_le16(buf), g_be = (uint16_t)(buf[0] << 8 | buf[1]);
    if (g_be < g_le && g_be <= 0x0010 && g_le > 0x00FF) {
        const mt_ts_t *be = mt_ts_find("1.2.840.10008.1.2.2");
        if (be)
            return be;
    }
    return mt_ts_explicit_le;
}

static bool keep_all(void *user, uint32_t tag)
{
    (void)user;
    (void)tag;
    return true;
}

static int parse_file(const uint8_t *buf, size_t len, mt_meta_t *meta, mt_ds_t **ds,
                      mt_diag_t *diag, bool view)
{
    *ds = NULL;
    size_t off = 0;
    int rc = mt_part10_read_meta(buf, len, meta, &off, diag);
    if (rc == MT_EAGAIN)
        return malformed(diag, len, "file truncated inside the meta group");
    if (rc == MT_EUNSUPPORTED) {
        memset(meta, 0, sizeof *meta);
        off = 0;
    } else if (rc) {
        return rc;
    }
    const mt_ts_t *ts;
    if (meta->transfer_syntax_uid[0]) {
        ts = mt_ts_find(meta->transfer_syntax_uid);
        if (!ts) {
            if (diag) {
                diag->offset = 0;
                diag->reason = "unknown transfer syntax";
            }
            return MT_EUNSUPPORTED;
        }
    } else {
        ts = guess_ts(buf + off, len - off);
    }
    rc = view ? mt_ds_parse_filtered(buf + off, len - off, ts, keep_all, NULL, ds, diag)
              : mt_ds_parse(buf + off, len - off, ts, ds, diag);
    if (rc && diag && !ts->deflated)
        diag->offset += off;
    return rc;
}

int mt_part10_parse_file_buf(const uint8_t *buf, size_t len, mt_meta_t *meta, mt_ds_t **ds,
                             mt_diag_t *diag)
{
    return parse_file(buf, len, meta, ds, diag, false);
}

int mt_part10_parse_file_view(const uint8_t *buf, size_t len, mt_meta_t *meta, mt_ds_t **ds,
                              mt_diag_t *diag)
{
    return parse_file(buf, len, meta, ds, diag, true);
}
