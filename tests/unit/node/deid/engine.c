/*
 * tests/unit/node/deid/engine.c - node/deid/engine.c and pseudonym.c: each action per VR, the
 * composites, nested sequences, private tags, overlays, pseudonym determinism and key
 * dependence, date shifts, UID referential integrity, Burned In Annotation, added attributes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifndef MT_SOURCE_DIR
#define MT_SOURCE_DIR "."
#endif

#include "deid/engine.h"
#include "dicom/dict.h"
#include "dicom/ds.h"
#include "util/alloc.h"
#include "util/err.h"

static const uint8_t KEY1[32] = "0123456789abcdef0123456789abcde";
static const uint8_t KEY2[32] = "fedcba9876543210fedcba987654321";

/* A profile written for these tests: every action on a known tag. */
static const char test_profile[] =
    "name: t\n"
    "edition: test\n"
    "default: K\n"
    "unknown: X\n"
    "patient-id: pseudonym\n"
    "patient-name: pseudonym\n"
    "pseudonym-prefix: \"P-\"\n"
    "date-shift: {min-days: -100, max-days: -10}\n"
    "attributes:\n"
    "  \"(0008,0050)\": Z\n"     /* AccessionNumber SH */
    "  \"(0008,0080)\": X/Z/D\n" /* InstitutionName LO -> D */
    "  \"(0008,0090)\": Z\n"     /* ReferringPhysicianName PN */
    "  \"(0008,0012)\": X/D\n"   /* InstanceCreationDate DA -> D */
    "  \"(0008,0013)\": X/Z/D\n" /* InstanceCreationTime TM -> D */
    "  \"(0008,0018)\": U\n"
    "  \"(0008,1155)\": U\n"
    "  \"(0020,000D)\": U\n"
    "  \"(0020,0052)\": U\n"
    "  \"(0008,1140)\": X/Z/U*\n"
    "  \"(0008,1110)\": X/Z\n"
    "  \"(0008,1111)\": X/Z/D\n"
    "  \"(0010,0010)\": Z\n"
    "  \"(0010,0020)\": Z/D\n"
    "  \"(0010,0030)\": Z\n"
    "  \"(0010,1010)\": X\n" /* PatientAge AS */
    "  \"(0010,1030)\": D\n" /* PatientWeight DS */
    "  \"(0018,1000)\": D\n" /* DeviceSerialNumber LO */
    "  \"(0028,0011)\": K\n"
    "  \"(0008,0020)\": C\n" /* StudyDate DA */
    "  \"(0008,002A)\": C\n" /* AcquisitionDateTime DT */
    "  \"(0008,0030)\": C\n" /* StudyTime TM */
    "  \"(0008,103E)\": C\n" /* SeriesDescription LO */
    "  \"(0040,A730)\": C\n" /* ContentSequence: clean */
    "  \"(0018,9346)\": D\n" /* a sequence with D */
    "  \"(50xx,xxxx)\": X\n"
    "  \"(60xx,3000)\": X\n"
    "  private: X\n"
    "options:\n"
    "  retain-safe-private:\n"
    "    code: {value: \"113111\", meaning: \"Retain Safe Private Option\"}\n"
    "    attributes:\n"
    "      private: C\n"
    "    safe-private:\n"
    "      - {creator: \"SIEMENS MR HEADER\", group: \"0019\", element: \"0C\"}\n";

static const char *g_extra; /* a second profile "t2" deriving from "t" */

static int resolve(void *user, const char *name, mt_deid_source_t *out)
{
    (void)user;
    if (strcmp(name, "t") == 0)
        out->text = test_profile;
    else if (strcmp(name, "t2") == 0 && g_extra)
        out->text = g_extra;
    else
        return MT_ENOENT;
    out->len = strlen(out->text);
    out->filename = name;
    return 0;
}

static mt_deid_profile_t *load(const char *name)
{
    char err[256];
    mt_deid_profile_t *p = NULL;
    int rc = mt_deid_profile_load(name, resolve, NULL, &p, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    return p;
}

static void set(mt_ds_t *ds, uint16_t g, uint16_t e, const char *vr, const char *v)
{
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(g, e), MT_VR(vr[0], vr[1]), v), 0);
}

static const char *get(const mt_ds_t *ds, uint16_t g, uint16_t e)
{
    static char buf[8][256];
    static int k;
    char *b = buf[k++ & 7];
    if (!mt_ds_get_string(ds, MT_TAG(g, e), b, 256))
        return NULL;
    return b;
}

static mt_ds_t *add_item(mt_ds_t *ds, uint16_t g, uint16_t e)
{
    uint32_t tag = MT_TAG(g, e);
    mt_ds_elem_t *s = mt_ds_get(ds, tag);
    if (!s) {
        assert_int_equal(mt_ds_set(ds, tag, MT_VR('S', 'Q'), NULL, 0), 0);
        s = mt_ds_get(ds, tag);
    }
    assert_non_null(s);
    s->items = mt_realloc(s->items, (s->n_items + 1) * sizeof(*s->items));
    mt_ds_t *it = mt_ds_new();
    s->items[s->n_items++] = it;
    return it;
}

static mt_ds_t *make_instance(const char *sop_uid, const char *ref_uid)
{
    mt_ds_t *ds = mt_ds_new();
    set(ds, 0x0008, 0x0005, "CS", "ISO_IR 100");
    set(ds, 0x0008, 0x0012, "DA", "20240229");
    set(ds, 0x0008, 0x0013, "TM", "101010");
    set(ds, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.4");
    set(ds, 0x0008, 0x0018, "UI", sop_uid);
    set(ds, 0x0008, 0x0020, "DA", "20240301");
    set(ds, 0x0008, 0x002A, "DT", "20240301123456.123456+0100");
    set(ds, 0x0008, 0x0030, "TM", "123000");
    set(ds, 0x0008, 0x0050, "SH", "ACC998877");
    set(ds, 0x0008, 0x0060, "CS", "MR");
    set(ds, 0x0008, 0x0080, "LO", "Hospital of Saint Elsewhere");
    set(ds, 0x0008, 0x0090, "PN", "Welby^Marcus^^Dr");
    set(ds, 0x0008, 0x103E, "LO", "SAX cine Welby 01.03.2024 retro");
    set(ds, 0x0010, 0x0010, "PN", "Doe^Jane");
    set(ds, 0x0010, 0x0020, "LO", "MRN-4711");
    set(ds, 0x0010, 0x0030, "DA", "19700101");
    set(ds, 0x0010, 0x1010, "AS", "054Y");
    set(ds, 0x0010, 0x1030, "DS", "71.5");
    set(ds, 0x0018, 0x1000, "LO", "SN12345");
    set(ds, 0x0018, 0x0087, "DS", "1.5");
    set(ds, 0x0020, 0x000D, "UI", "1.2.3.4.5.6.7.1");
    set(ds, 0x0020, 0x000E, "UI", "1.2.3.4.5.6.7.2"); /* not in the table: default K, mapped */
    set(ds, 0x0020, 0x0052, "UI", "1.2.3.4.5.6.7.3");
    assert_int_equal(mt_ds_set_u16(ds, MT_TAG(0x0028, 0x0011), 256), 0);
    /* References, nested: ReferencedImageSequence > item > ReferencedSOPInstanceUID. */
    mt_ds_t *ref = add_item(ds, 0x0008, 0x1140);
    set(ref, 0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.4");
    set(ref, 0x0008, 0x1155, "UI", ref_uid);
    /* Three levels deep: ContentSequence > item > ContentSequence > item > names. */
    mt_ds_t *c1 = add_item(ds, 0x0040, 0xA730);
    set(c1, 0x0040, 0xA160, "UT", "Patient Jane Doe seen by Dr Welby, MRN-4711");
    mt_ds_t *c2 = add_item(c1, 0x0040, 0xA730);
    set(c2, 0x0010, 0x0010, "PN", "Doe^Jane");
    set(c2, 0x0008, 0x1155, "UI", sop_uid);
    set(c2, 0x0040, 0xA160, "UT", "Jane");
    /* A sequence with D, and one with X/Z, one with X/Z/D. */
    set(add_item(ds, 0x0018, 0x9346), 0x0008, 0x0104, "LO", "Welby phantom");
    set(add_item(ds, 0x0008, 0x1110), 0x0008, 0x1155, "UI", "1.2.3.4.5.6.7.1");
    set(add_item(ds, 0x0008, 0x1111), 0x0008, 0x1155, "UI", "1.2.3.9");
    /* Private: a safe Siemens element, an unsafe one, a block with nothing safe. */
    set(ds, 0x0019, 0x0010, "LO", "SIEMENS MR HEADER");
    set(ds, 0x0019, 0x100C, "IS", "800");
    set(ds, 0x0019, 0x1010, "LO", "Jane Doe private");
    set(ds, 0x0029, 0x0010, "LO", "SIEMENS CSA HEADER");
    set(ds, 0x0029, 0x1010, "OB", "Doe^Jane");
    /* Overlay and curve groups; a group length; an unknown public tag. */
    assert_int_equal(mt_ds_set_u16(ds, MT_TAG(0x6000, 0x0010), 16), 0);
    set(ds, 0x6000, 0x3000, "OW", "bits");
    assert_int_equal(mt_ds_set_u16(ds, MT_TAG(0x5000, 0x0005), 1), 0);
    assert_int_equal(mt_ds_set_u32(ds, MT_TAG(0x0018, 0x0000), 4), 0);
    assert_int_equal(mt_ds_set_u32(ds, MT_TAG(0x0031, 0x0000), 4), 0);
    set(ds, 0x0009, 0x0003, "LO", "x");
    set(ds, 0x0077, 0x0000 | 0x0100, "LO", "unknown"); /* odd: private without creator */
    set(ds, 0x0044, 0x9999, "LO", "Doe");              /* even, not in the dictionary */
    return ds;
}

static void test_actions_per_vr(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load("t");
    mt_ds_t *ds = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.101");
    mt_deid_result_t res;
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, &res), 0);
    /* Z */
    assert_string_equal(get(ds, 0x0008, 0x0050), "");
    assert_string_equal(get(ds, 0x0008, 0x0090), "");
    assert_string_equal(get(ds, 0x0010, 0x0030), "");
    /* D per VR (composites resolved to D: X/Z/D on LO, X/D on DA, X/Z/D on TM) */
    assert_string_equal(get(ds, 0x0008, 0x0080), "DEIDENTIFIED");
    assert_string_equal(get(ds, 0x0008, 0x0012), "19000101");
    assert_string_equal(get(ds, 0x0008, 0x0013), "000000");
    assert_string_equal(get(ds, 0x0010, 0x1030), "0");
    assert_string_equal(get(ds, 0x0018, 0x1000), "DEIDENTIFIED");
    /* X */
    assert_null(mt_ds_get(ds, MT_TAG(0x0010, 0x1010)));
    /* K (explicit) and default K */
    uint16_t cols = 0;
    assert_true(mt_ds_get_u16(ds, MT_TAG(0x0028, 0x0011), &cols));
    assert_int_equal(cols, 256);
    assert_string_equal(get(ds, 0x0018, 0x0087), "1.5");
    assert_string_equal(get(ds, 0x0008, 0x0060), "MR");
    assert_string_equal(get(ds, 0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.4");
    /* U and default-K instance UIDs mapped to 2.25 */
    assert_memory_equal(get(ds, 0x0008, 0x0018), "2.25.", 5);
    assert_memory_equal(get(ds, 0x0020, 0x000E), "2.25.", 5);
    /* C: dates shifted by the patient's shift, time kept, text scrubbed */
    assert_true(res.shift_days >= -100 && res.shift_days <= -10);
    char want[64];
    assert_true(mt_deid_shift_dates("20240301", 8, 0, res.shift_days, want, sizeof(want)) == 8);
    assert_string_equal(get(ds, 0x0008, 0x0020), want);
    const char *dt = get(ds, 0x0008, 0x002A);
    assert_memory_equal(dt, want, 8);
    assert_string_equal(dt + 8, "123456.123456+0100");
    assert_string_equal(get(ds, 0x0008, 0x0030), "123000");
    assert_string_equal(get(ds, 0x0008, 0x103E), "SAX cine retro");
    /* pseudonyms */
    assert_memory_equal(get(ds, 0x0010, 0x0020), "P-", 2);
    assert_int_equal(strlen(get(ds, 0x0010, 0x0020)), 18);
    assert_string_equal(get(ds, 0x0010, 0x0010), get(ds, 0x0010, 0x0020));
    assert_string_equal(res.pseudonym, get(ds, 0x0010, 0x0020));
    /* group lengths, unknown public, private without creator: gone */
    assert_null(mt_ds_get(ds, MT_TAG(0x0018, 0x0000)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0044, 0x9999)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0009, 0x0003)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0077, 0x0100)));
    /* private: removed (no safe-private option), creators with them */
    assert_null(mt_ds_get(ds, MT_TAG(0x0019, 0x100C)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0019, 0x0010)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0029, 0x1010)));
    /* overlays (60xx,3000) X removes the group; curves (50xx) removed */
    assert_null(mt_ds_get(ds, MT_TAG(0x6000, 0x0010)));
    assert_null(mt_ds_get(ds, MT_TAG(0x6000, 0x3000)));
    assert_null(mt_ds_get(ds, MT_TAG(0x5000, 0x0005)));
    /* added attributes */
    assert_string_equal(get(ds, 0x0012, 0x0062), "YES");
    assert_string_equal(get(ds, 0x0012, 0x0063), "mitral t (PS3.15 test)");
    assert_string_equal(get(ds, 0x0028, 0x0303), "REMOVED");
    mt_ds_elem_t *codes = mt_ds_get(ds, MT_TAG(0x0012, 0x0064));
    assert_non_null(codes);
    assert_int_equal(codes->n_items, 1);
    assert_string_equal(get(codes->items[0], 0x0008, 0x0100), "113100");
    assert_string_equal(get(codes->items[0], 0x0008, 0x0102), "DCM");
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

static void test_sequences(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load("t");
    mt_ds_t *ds = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.101");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    /* X/Z/U*: kept, the contained instance UID mapped, the class UID kept */
    mt_ds_elem_t *ris = mt_ds_get(ds, MT_TAG(0x0008, 0x1140));
    assert_non_null(ris);
    assert_int_equal(ris->n_items, 1);
    assert_string_equal(get(ris->items[0], 0x0008, 0x1150), "1.2.840.10008.5.1.4.1.1.4");
    assert_memory_equal(get(ris->items[0], 0x0008, 0x1155), "2.25.", 5);
    /* X/Z (valid) on a sequence: removed (an empty Type 3 sequence is invalid); X/Z/D and D
     * on a sequence: the items stay (Type 1 contents present), their UIDs mapped and their
     * text replaced by dummies */
    assert_null(mt_ds_get(ds, MT_TAG(0x0008, 0x1110)));
    mt_ds_elem_t *d = mt_ds_get(ds, MT_TAG(0x0008, 0x1111));
    assert_non_null(d);
    assert_int_equal(d->n_items, 1);
    assert_memory_equal(get(d->items[0], 0x0008, 0x1155), "2.25.", 5);
    d = mt_ds_get(ds, MT_TAG(0x0018, 0x9346));
    assert_int_equal(d->n_items, 1);
    assert_string_equal(get(d->items[0], 0x0008, 0x0104), "DEIDENTIFIED");
    /* D on a sequence without items: left empty (an empty item would break the IOD) */
    mt_ds_t *e2 = mt_ds_new();
    assert_int_equal(mt_ds_set(e2, MT_TAG(0x0018, 0x9346), MT_VR('S', 'Q'), NULL, 0), 0);
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), e2, NULL), 0);
    d = mt_ds_get(e2, MT_TAG(0x0018, 0x9346));
    assert_non_null(d);
    assert_int_equal(d->n_items, 0);
    mt_ds_free(e2);
    /* C on a sequence: nested levels cleaned; PatientName two levels down is Z -> pseudonym */
    mt_ds_elem_t *c1 = mt_ds_get(ds, MT_TAG(0x0040, 0xA730));
    assert_non_null(c1);
    mt_ds_t *i1 = c1->items[0];
    /* "Dr" goes too: it is a component of ReferringPhysicianName */
    assert_string_equal(get(i1, 0x0040, 0xA160), "Patient seen by ,");
    mt_ds_t *i2 = mt_ds_get(i1, MT_TAG(0x0040, 0xA730))->items[0];
    assert_string_equal(get(i2, 0x0010, 0x0010), get(ds, 0x0010, 0x0020));
    assert_string_equal(get(i2, 0x0040, 0xA160), "DEIDENTIFIED"); /* all scrubbed: dummy */
    /* the reference three levels down points at this instance's mapped SOP Instance UID */
    assert_string_equal(get(i2, 0x0008, 0x1155), get(ds, 0x0008, 0x0018));
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

static void test_referential_integrity_and_determinism(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load("t");
    /* Instance B references instance A. */
    mt_ds_t *a = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.999");
    mt_ds_t *b = make_instance("1.2.3.4.5.6.7.101", "1.2.3.4.5.6.7.100");
    mt_ds_t *a2 = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.999");
    mt_deid_result_t ra, rb;
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), a, &ra), 0);
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), b, &rb), 0);
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), a2, NULL), 0);
    mt_ds_t *bref = mt_ds_get(b, MT_TAG(0x0008, 0x1140))->items[0];
    assert_string_equal(get(bref, 0x0008, 0x1155), get(a, 0x0008, 0x0018));
    assert_string_not_equal(get(a, 0x0008, 0x0018), get(b, 0x0008, 0x0018));
    /* Same study, frame of reference and patient -> same mapped values and same shift. */
    assert_string_equal(get(a, 0x0020, 0x000D), get(b, 0x0020, 0x000D));
    assert_string_equal(get(a, 0x0020, 0x0052), get(b, 0x0020, 0x0052));
    assert_string_equal(get(a, 0x0010, 0x0020), get(b, 0x0010, 0x0020));
    assert_int_equal(ra.shift_days, rb.shift_days);
    assert_string_equal(get(a, 0x0008, 0x0020), get(b, 0x0008, 0x0020));
    /* Determinism: the same input and key give the same tree, value by value. */
    assert_int_equal(mt_ds_count(a), mt_ds_count(a2));
    for (size_t i = 0; i < mt_ds_count(a); i++) {
        mt_ds_elem_t *x = mt_ds_at(a, i), *y = mt_ds_at(a2, i);
        assert_int_equal(x->tag, y->tag);
        assert_int_equal(x->len == MT_UNDEFINED_LENGTH ? 0 : (x->value ? x->len : 0),
                         y->len == MT_UNDEFINED_LENGTH ? 0 : (y->value ? y->len : 0));
        if (x->value && y->value && x->vr != MT_VR('S', 'Q'))
            assert_memory_equal(x->value, y->value, x->len);
    }
    mt_ds_free(a);
    mt_ds_free(b);
    mt_ds_free(a2);
    mt_deid_profile_free(p);
}

static void test_key_dependence(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load("t");
    mt_ds_t *a = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.101");
    mt_ds_t *b = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.101");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), a, NULL), 0);
    assert_int_equal(mt_deid_apply(p, KEY2, sizeof(KEY2), b, NULL), 0);
    assert_string_not_equal(get(a, 0x0010, 0x0020), get(b, 0x0010, 0x0020));
    assert_string_not_equal(get(a, 0x0008, 0x0018), get(b, 0x0008, 0x0018));
    /* a short key is refused */
    assert_int_equal(mt_deid_apply(p, KEY1, 8, a, NULL), MT_EINVAL);
    /* pseudonyms: different patients differ; the same one is stable */
    char x[MT_DEID_PSEUDONYM_MAX], y[MT_DEID_PSEUDONYM_MAX], z[MT_DEID_PSEUDONYM_MAX];
    assert_int_equal(mt_deid_pseudonym(KEY1, 32, "", "A1", 2, x, sizeof(x)), 0);
    assert_int_equal(mt_deid_pseudonym(KEY1, 32, "", "A2", 2, y, sizeof(y)), 0);
    assert_int_equal(mt_deid_pseudonym(KEY1, 32, "", "A1", 2, z, sizeof(z)), 0);
    assert_string_not_equal(x, y);
    assert_string_equal(x, z);
    mt_ds_free(a);
    mt_ds_free(b);
    mt_deid_profile_free(p);
}

static void test_uid_form(void **state)
{
    (void)state;
    char u[MT_DEID_UID_MAX];
    for (int i = 0; i < 200; i++) {
        char in[32];
        int n = snprintf(in, sizeof(in), "1.2.3.%d", i);
        assert_int_equal(mt_deid_uid(KEY1, 32, in, (size_t)n, u, sizeof(u)), 0);
        size_t l = strlen(u);
        assert_true(l > 5 && l <= 44);
        assert_memory_equal(u, "2.25.", 5);
        assert_true(u[5] != '0' || l == 6); /* no leading zero */
        for (size_t k = 5; k < l; k++)
            assert_true(u[k] >= '0' && u[k] <= '9');
    }
    /* multi-valued, padded, with a well-known value kept */
    char out[256];
    int n = mt_deid_map_uids(KEY1, 32, "1.2.3\\1.2.840.10008.1.2\0", 24, out, sizeof(out));
    assert_true(n > 0);
    assert_non_null(strstr(out, "\\1.2.840.10008.1.2"));
    assert_memory_equal(out, "2.25.", 5);
    assert_true(mt_deid_uid_is_well_known("1.2.840.10008.5.1.4.1.1.4", 25));
    assert_false(mt_deid_uid_is_well_known("1.2.840.113619.2", 16));
}

/* Known answers (Python's hmac over the same bytes): the keyed context kept between calls
 * gives the bytes of a one-shot HMAC, and a change of key between calls is noticed. */
static void hex32(const uint8_t h[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void test_hmac_known_answers(void **state)
{
    (void)state;
    static const char k1_uid[] = "d11d324fff9070c3c8a8adcf997bd176422e026f2885783035e5b83a45dab0ec";
    static const char k2_uid[] = "bb13e388d51bd0f991f371d8da8a20e8c4dc8318c6a5b4a37b05d8ee02fb96c3";
    static const char k1_long[] =
        "71610c58eae4a1b1bc808bbdddac5fa4dfc74f2fd1e15cbcc05e91974973de7d";
    uint8_t h[32];
    char hex[65], u[MT_DEID_UID_MAX];
    for (int round = 0; round < 2; round++) { /* key 1, key 2, key 1 again, ... */
        assert_int_equal(mt_deid_hmac(KEY1, 32, "uid", "1.2.3", 5, h), 0);
        hex32(h, hex);
        assert_string_equal(hex, k1_uid);
        assert_int_equal(mt_deid_hmac(KEY2, 32, "uid", "1.2.3", 5, h), 0);
        hex32(h, hex);
        assert_string_equal(hex, k2_uid);
    }
    char msg[600];
    memset(msg, 'x', sizeof(msg));
    assert_int_equal(mt_deid_hmac(KEY1, 32, "pid", msg, sizeof(msg), h), 0);
    hex32(h, hex);
    assert_string_equal(hex, k1_long);
    assert_int_equal(mt_deid_uid(KEY1, 32, "1.2.3", 5, u, sizeof(u)), 0);
    assert_string_equal(u, "2.25.277960248186543243987614599855096975734");
    /* a key of the same length differing in one byte is another key */
    uint8_t k3[32];
    memcpy(k3, KEY1, 32);
    k3[31] ^= 1;
    assert_int_equal(mt_deid_hmac(k3, 32, "uid", "1.2.3", 5, h), 0);
    hex32(h, hex);
    assert_string_not_equal(hex, k1_uid);
    assert_int_equal(mt_deid_hmac(KEY1, 0, "uid", "1", 1, h), MT_EINVAL);
}

/* mt_deid_uid keeps the 2.25 text in the MAC cache's slot: a hit, a slot whose MAC came from
 * mt_deid_hmac (no text yet), a slot evicted and refilled, and a change of key all give the
 * known answers (Python's hmac and int over the same bytes). */
static void test_uid_cache_known_answers(void **state)
{
    (void)state;
    static const char k1[] = "2.25.277960248186543243987614599855096975734";
    static const char k2[] = "2.25.248668903800055495772150829047710621928";
    static const char k1_long[] = "2.25.25191755042085653806391487280261650580";
    static const char long_uid[] = "1.2.840.113619.2.55.3.604688119.971.1234567890.123";
    char u[MT_DEID_UID_MAX], other[MT_DEID_UID_MAX], in[32];
    uint8_t h[32];
    for (int round = 0; round < 3; round++) {
        assert_int_equal(mt_deid_hmac(KEY1, 32, "uid", "1.2.3", 5, h), 0); /* MAC, no text */
        for (int twice = 0; twice < 2; twice++) { /* made, then from the slot */
            assert_int_equal(mt_deid_uid(KEY1, 32, "1.2.3", 5, u, sizeof(u)), 0);
            assert_string_equal(u, k1);
            assert_int_equal(mt_deid_uid(KEY1, 32, long_uid, strlen(long_uid), u, sizeof(u)), 0);
            assert_string_equal(u, k1_long);
        }
        for (int i = 0; i < 300; i++) { /* every slot refilled with other UIDs */
            int n = snprintf(in, sizeof(in), "1.2.3.%d", i);
            assert_int_equal(mt_deid_uid(KEY1, 32, in, (size_t)n, other, sizeof(other)), 0);
            assert_string_not_equal(other, k1);
        }
        assert_int_equal(mt_deid_uid(KEY1, 32, "1.2.3", 5, u, sizeof(u)), 0);
        assert_string_equal(u, k1);
        for (int twice = 0; twice < 2; twice++) { /* the other key: the cache is not its */
            assert_int_equal(mt_deid_uid(KEY2, 32, "1.2.3", 5, u, sizeof(u)), 0);
            assert_string_equal(u, k2);
        }
    }
}

static void test_date_shift(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(mt_deid_shift_dates("20240301", 8, 0, -1, out, sizeof(out)), 8);
    assert_string_equal(out, "20240229");
    assert_int_equal(mt_deid_shift_dates("20230301 ", 9, 0, -1, out, sizeof(out)), 8);
    assert_string_equal(out, "20230228");
    assert_int_equal(mt_deid_shift_dates("20001231\\19991231", 17, 0, 1, out, sizeof(out)), 17);
    assert_string_equal(out, "20010101\\20000101");
    assert_int_equal(mt_deid_shift_dates("20200101-20200131", 17, 0, -366, out, sizeof(out)), 17);
    assert_string_equal(out, "20181231-20190130");
    /* invalid dates are dropped, not kept */
    assert_int_equal(mt_deid_shift_dates("2024-03-01", 10, 0, -1, out, sizeof(out)), 0);
    assert_int_equal(mt_deid_shift_dates("20240230", 8, 0, -1, out, sizeof(out)), 0);
    /* DT keeps its time and offset; partial precision stays partial */
    assert_true(mt_deid_shift_dates("20240101000000.5-0500", 21, 1, -1, out, sizeof(out)) > 0);
    assert_string_equal(out, "20231231000000.5-0500");
    assert_true(mt_deid_shift_dates("202401", 6, 1, -1, out, sizeof(out)) > 0);
    assert_string_equal(out, "202312");
    /* the shift is in the configured range and depends on the patient */
    int32_t s1 = mt_deid_date_shift(KEY1, 32, "A", 1, -30, -20);
    assert_true(s1 >= -30 && s1 <= -20);
    int diff = 0;
    for (int i = 0; i < 20; i++) {
        char pid[8];
        int n = snprintf(pid, sizeof(pid), "P%d", i);
        int32_t s = mt_deid_date_shift(KEY1, 32, pid, (size_t)n, -1000, 1000);
        assert_true(s >= -1000 && s <= 1000);
        diff |= s != s1;
    }
    assert_true(diff);
    /* a range that holds 0 never gives 0 (the real dates, labelled MODIFIED); its other
     * values all occur */
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < 200; i++) {
        char pid[8];
        int n = snprintf(pid, sizeof(pid), "Z%d", i);
        int32_t s = mt_deid_date_shift(KEY1, 32, pid, (size_t)n, -1, 1);
        assert_true(s >= -1 && s <= 1);
        seen[s + 1]++;
    }
    assert_int_equal(seen[1], 0);
    assert_true(seen[0] > 0 && seen[2] > 0);
    assert_int_equal(mt_deid_date_shift(KEY1, 32, "A", 1, 0, 5) > 0, 1);
    assert_int_equal(mt_deid_date_shift(KEY1, 32, "A", 1, -5, 0) < 0, 1);
}

static void test_safe_private_and_retain(void **state)
{
    (void)state;
    g_extra = "base: t\nname: t2\noptions: [retain-safe-private]\n"
              "attributes:\n  \"(0008,0018)\": K\n";
    mt_deid_profile_t *p = load("t2");
    mt_ds_t *ds = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.101");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    assert_string_equal(get(ds, 0x0019, 0x0010), "SIEMENS MR HEADER");
    assert_string_equal(get(ds, 0x0019, 0x100C), "800");
    assert_null(mt_ds_get(ds, MT_TAG(0x0019, 0x1010)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0029, 0x1010)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0029, 0x0010)));
    /* the override keeps SOP Instance UID as is */
    assert_string_equal(get(ds, 0x0008, 0x0018), "1.2.3.4.5.6.7.100");
    mt_ds_elem_t *codes = mt_ds_get(ds, MT_TAG(0x0012, 0x0064));
    assert_int_equal(codes->n_items, 2);
    assert_string_equal(get(codes->items[1], 0x0008, 0x0100), "113111");
    mt_ds_free(ds);
    mt_deid_profile_free(p);

    /* minimal composites: X/Z/D removes, X/Z removes, Z/D empties */
    g_extra = "base: t\nname: t3\ncomposite: minimal\npatient-id: empty\n";
    p = load("t2");
    ds = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.101");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    assert_null(mt_ds_get(ds, MT_TAG(0x0008, 0x0080)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0008, 0x1110)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0008, 0x1140)));
    assert_string_equal(get(ds, 0x0010, 0x0020), "");
    mt_ds_free(ds);
    mt_deid_profile_free(p);
    g_extra = NULL;
}

static void test_burned_in_annotation(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load("t");
    mt_ds_t *ds = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.101");
    set(ds, 0x0028, 0x0301, "CS", "YES");
    size_t n = mt_ds_count(ds);
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), MT_EREJECTED);
    assert_int_equal(mt_ds_count(ds), n);
    assert_string_equal(get(ds, 0x0010, 0x0020), "MRN-4711"); /* untouched: caller decides */
    /* CS: leading spaces are not significant; a modality writing lower case or a second
     * value still says the pixels carry text: refused too (the safe reading) */
    static const char *const yes[] = {" YES", "  YES ", "yes", "Yes", "YES\\NO", "NO\\YES"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        set(ds, 0x0028, 0x0301, "CS", yes[i]);
        if (mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL) != MT_EREJECTED)
            fail_msg("Burned In Annotation '%s' was not refused", yes[i]);
    }
    set(ds, 0x0028, 0x0301, "CS", "NO");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

static void test_no_leak_of_values(void **state)
{
    (void)state;
    static const char *secrets[] = {
        "Jane",     "JANE",     "Doe",     "Welby", "MRN-4711",        "ACC998877", "Elsewhere",
        "19700101", "20240301", "SN12345", "054Y",  "1.2.3.4.5.6.7.1", NULL};
    mt_deid_profile_t *p = load("t");
    mt_ds_t *ds = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.101");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    mt_buf_t out;
    mt_buf_init(&out, 1 << 20);
    assert_int_equal(mt_ds_encode(ds, mt_ts_explicit_le, &out), 0);
    for (const char **s = secrets; *s; s++)
        if (memmem(out.data, out.len, *s, strlen(*s)))
            fail_msg("'%s' survived de-identification", *s);
    mt_buf_dispose(&out);
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

/* ---- PS3.15 Table E.1-1, row by row, expectations read from the standard's JSON ----
 *
 * For the Basic Profile column and for each option column, every row of
 * ../shared/standard/innolitics/confidentiality_profile_attributes.json is put in a small data
 * set (a value valid for its dictionary VR; a sequence gets one item holding a reference), the
 * committed deid-profiles/basic.yaml (plus the option) is applied, and the outcome is checked
 * against the cell's action: X absent; Z empty; D non-empty and changed; U a 2.25 UID; K
 * unchanged; C dates shifted, text scrubbed, UIDs mapped; composites: one of their parts. */

typedef struct row {
    char tag[48], action[16];
} row_t;

/* Value of "key":"value" inside [p, end) (no nested objects in this file). */
static bool json_field(const char *p, const char *end, const char *key, char *out, size_t outsz)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    size_t lp = strlen(pat);
    for (const char *q = p; q + lp < end; q++) {
        if (memcmp(q, pat, lp) != 0)
            continue;
        q += lp;
        while (q < end && (*q == ' ' || *q == ':' || *q == '\n' || *q == '\t'))
            q++;
        if (q >= end || *q != '"')
            return false;
        q++;
        size_t o = 0;
        while (q < end && *q != '"' && o + 1 < outsz) {
            if (*q == '\\' && q + 1 < end)
                q++;
            out[o++] = *q++;
        }
        out[o] = '\0';
        return true;
    }
    return false;
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = malloc((size_t)n + 1);
    size_t got = fread(t, 1, (size_t)n, f);
    fclose(f);
    t[got] = '\0';
    if (len)
        *len = got;
    return t;
}

/* Rows of the table that have a cell in `column`. */
static row_t *table_rows(const char *json, const char *column, size_t *n)
{
    row_t *rows = NULL;
    *n = 0;
    for (const char *p = json; (p = strchr(p, '{'));) {
        const char *end = strchr(p, '}');
        if (!end)
            break;
        row_t r;
        if (json_field(p, end, "tag", r.tag, sizeof(r.tag)) &&
            json_field(p, end, column, r.action, sizeof(r.action))) {
            rows = realloc(rows, (*n + 1) * sizeof(*rows));
            rows[(*n)++] = r;
        }
        p = end;
    }
    return rows;
}

static char *g_profile_texts[8];
static size_t g_n_profile_texts;
static const char *g_option; /* the option for profile "opt" */

static int resolve_repo(void *user, const char *name, mt_deid_source_t *out)
{
    (void)user;
    static char opt_text[256];
    if (strcmp(name, "opt") == 0) {
        snprintf(opt_text, sizeof(opt_text), "name: opt\nbase: basic\noptions: [%s]\n", g_option);
        out->text = opt_text;
        out->len = strlen(opt_text);
        out->filename = "opt";
        return 0;
    }
    char path[1024];
    snprintf(path, sizeof(path), "%s/deid-profiles/%s.yaml", MT_SOURCE_DIR, name);
    size_t len;
    char *t = read_text(path, &len);
    if (!t)
        return MT_ENOENT;
    g_profile_texts[g_n_profile_texts++] = t;
    out->text = t;
    out->len = len;
    out->filename = name;
    return 0;
}

static mt_deid_profile_t *load_repo(const char *name)
{
    char err[256];
    mt_deid_profile_t *p = NULL;
    int rc = mt_deid_profile_load(name, resolve_repo, NULL, &p, err, sizeof(err));
    for (size_t i = 0; i < g_n_profile_texts; i++)
        free(g_profile_texts[i]);
    g_n_profile_texts = 0;
    if (rc)
        fail_msg("%s", err);
    return p;
}

static bool parse_row_tag(const char *s, uint32_t *tag)
{
    unsigned g, e;
    if (sscanf(s, "(%4x,%4x)", &g, &e) != 2 || strchr(s, 'X') || strchr(s, 'x'))
        return false;
    *tag = MT_TAG(g, e);
    return true;
}

#define ROW_SECRET_UID "1.2.3.4.5.987654"
#define ROW_TEXT "Smith 12345678 scan"

/* Put a value valid for the tag's VR into ds; returns the VR used (0 when skipped). */
static uint16_t put_row_value(mt_ds_t *ds, uint32_t tag)
{
    const mt_dict_entry_t *d = mt_dict_by_tag(tag);
    uint16_t vr = d ? d->vr : MT_VR('L', 'O');
    if (vr == MT_VR('S', 'Q')) {
        mt_ds_t *it = add_item(ds, MT_TAG_GROUP(tag), MT_TAG_ELEM(tag));
        set(it, 0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.4");
        set(it, 0x0008, 0x1155, "UI", ROW_SECRET_UID);
        return vr;
    }
    const char *v;
    static const uint8_t bin[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    switch (vr) {
    case MT_VR('D', 'A'):
        v = "20200115";
        break;
    case MT_VR('D', 'T'):
        v = "20200115101010";
        break;
    case MT_VR('T', 'M'):
        v = "101010";
        break;
    case MT_VR('U', 'I'):
        v = ROW_SECRET_UID;
        break;
    case MT_VR('A', 'S'):
        v = "042Y";
        break;
    case MT_VR('D', 'S'):
        v = "12.5";
        break;
    case MT_VR('I', 'S'):
        v = "7";
        break;
    case MT_VR('C', 'S'):
        v = "ABC";
        break;
    case MT_VR('P', 'N'):
        v = "Smith^John";
        break;
    case MT_VR('U', 'R'):
        v = "http://example.org/smith";
        break;
    case MT_VR('A', 'E'):
        v = "SMITHAE";
        break;
    case MT_VR('L', 'O'):
    case MT_VR('S', 'H'):
    case MT_VR('S', 'T'):
    case MT_VR('L', 'T'):
    case MT_VR('U', 'T'):
    case MT_VR('U', 'C'):
        v = ROW_TEXT;
        break;
    default: {
        size_t n = vr == MT_VR('F', 'D') || vr == MT_VR('S', 'V') || vr == MT_VR('U', 'V') ? 8
                   : vr == MT_VR('U', 'S') || vr == MT_VR('S', 'S')                        ? 2
                                                                                           : 4;
        assert_int_equal(mt_ds_set(ds, tag, vr, bin, (uint32_t)n), 0);
        return vr;
    }
    }
    assert_int_equal(mt_ds_set_string(ds, tag, vr, v), 0);
    return vr;
}

/* What became of the row's element: one letter of X Z D U K C, or '?' */
static char outcome(const mt_ds_t *ds, uint32_t tag, uint16_t vr, const uint8_t *orig,
                    size_t orig_len, int32_t shift)
{
    const mt_ds_elem_t *e = mt_ds_get(ds, tag);
    if (!e)
        return 'X';
    if (vr == MT_VR('S', 'Q')) {
        if (e->n_items == 0)
            return 'Z';
        const mt_ds_t *it = e->items[0];
        char uid[128];
        if (!mt_ds_get_string(it, MT_TAG(0x0008, 0x1155), uid, sizeof(uid)))
            return 'D'; /* one dummy item */
        if (strcmp(uid, ROW_SECRET_UID) == 0)
            return 'K';                                   /* kept, with its UIDs (retain-uids) */
        return strncmp(uid, "2.25.", 5) == 0 ? 'U' : '?'; /* kept, contained UIDs replaced */
    }
    size_t len = e->value ? e->len : 0;
    if (len == 0)
        return 'Z';
    if (len == orig_len && memcmp(e->value, orig, len) == 0)
        return 'K';
    char v[256];
    size_t n = len < sizeof(v) - 1 ? len : sizeof(v) - 1;
    memcpy(v, e->value, n);
    v[n] = '\0';
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\0'))
        v[--n] = '\0';
    if (vr == MT_VR('U', 'I'))
        return strncmp(v, "2.25.", 5) == 0 ? 'U' : '?';
    if (vr == MT_VR('D', 'A') || vr == MT_VR('D', 'T')) {
        char want[64];
        mt_deid_shift_dates(vr == MT_VR('D', 'A') ? "20200115" : "20200115101010",
                            vr == MT_VR('D', 'A') ? 8 : 14, vr == MT_VR('D', 'T'), shift, want,
                            sizeof(want));
        return strcmp(v, want) == 0 ? 'C' : 'D';
    }
    if (strstr((const char *)v, "Smith") || strstr(v, "SMITH") || strstr(v, "12345678"))
        return '?'; /* changed but an identifier survived */
    if (strcmp(v, "scan") == 0)
        return 'C'; /* ROW_TEXT with the name and the number scrubbed */
    return 'D';
}

/* Is outcome o allowed by the cell's action? U on a non-UI/SQ value means a dummy; C on a value
 * with nothing to clean (numbers, codes, TM) may keep it. */
static bool allowed(const char *action, char o, uint16_t vr)
{
    if (strcmp(action, "X/Z/U*") == 0 || strcmp(action, "X/Z/U") == 0)
        return o == 'X' || o == 'Z' || o == 'U';
    if (strcmp(action, "C") == 0) {
        bool text = vr == MT_VR('L', 'O') || vr == MT_VR('S', 'H') || vr == MT_VR('S', 'T') ||
                    vr == MT_VR('L', 'T') || vr == MT_VR('U', 'T') || vr == MT_VR('U', 'C') ||
                    vr == MT_VR('P', 'N');
        if (vr == MT_VR('D', 'A') || vr == MT_VR('D', 'T'))
            return o == 'C';
        if (vr == MT_VR('U', 'I'))
            return o == 'U';
        if (text)
            return o == 'C' || o == 'D'; /* scrubbed; a dummy when nothing was left */
        if (vr == MT_VR('S', 'Q'))
            return o == 'U' || o == 'K';
        return o == 'K'; /* nothing identifying to clean in TM, numbers, codes */
    }
    if (strcmp(action, "K") == 0)
        return o == 'K' || (vr == MT_VR('S', 'Q') && o == 'U'); /* K cleans sequences */
    if (strcmp(action, "U") == 0)
        return vr == MT_VR('U', 'I') ? o == 'U' : (o == 'U' || o == 'D');
    if (strcmp(action, "D") == 0)
        return o == 'D' || ((vr == MT_VR('U', 'I') || vr == MT_VR('S', 'Q')) && o == 'U');
    for (const char *a = action; *a; a++)
        if (*a == o || (*a == 'D' && (vr == MT_VR('U', 'I') || vr == MT_VR('S', 'Q')) && o == 'U'))
            return true;
    return false;
}

static void check_column(const char *json, const char *column, const char *option)
{
    size_t n;
    row_t *rows = table_rows(json, column, &n);
    assert_true(n > 0);
    g_option = option;
    mt_deid_profile_t *p = load_repo(option ? "opt" : "basic");
    size_t checked = 0, failures = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t tag;
        if (!parse_row_tag(rows[i].tag, &tag))
            continue; /* repeating groups and the private row: tested on their own */
        mt_ds_t *ds = mt_ds_new();
        set(ds, 0x0010, 0x0010, "PN", "Smith^John");
        set(ds, 0x0010, 0x0020, "LO", "PID-778899");
        uint16_t vr = put_row_value(ds, tag);
        const mt_ds_elem_t *e = mt_ds_get(ds, tag);
        assert_non_null(e);
        size_t olen = e->value ? e->len : 0;
        uint8_t *orig = malloc(olen + 1);
        if (olen)
            memcpy(orig, e->value, olen);
        mt_deid_result_t res;
        assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, &res), 0);
        char o = outcome(ds, tag, vr, orig, olen, res.shift_days);
        /* Patient ID and Patient's Name follow the profile's pseudonym rules (D or Z). */
        if (!allowed(rows[i].action, o, vr)) {
            print_error("%s %s: %s (%s, VR %c%c) gave %c\n", column, rows[i].tag, rows[i].action,
                        option ? option : "basic", vr >> 8, vr & 0xFF, o);
            failures++;
        }
        checked++;
        free(orig);
        mt_ds_free(ds);
    }
    print_message("Table E.1-1 column %s: %zu rows checked\n", column, checked);
    assert_int_equal(failures, 0);
    assert_true(checked + 4 >= n);
    free(rows);
    mt_deid_profile_free(p);
}

static void test_table_e1_1(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path),
             "%s/../shared/standard/innolitics/confidentiality_profile_attributes.json",
             MT_SOURCE_DIR);
    char *json = read_text(path, NULL);
    if (!json) {
        print_message("skipped: %s not found\n", path);
        skip();
    }
    static const char *const cols[][2] = {
        {"basicProfile", NULL},
        {"rtnUIDsOpt", "retain-uids"},
        {"rtnDevIdOpt", "retain-device-identity"},
        {"rtnInstIdOpt", "retain-institution-identity"},
        {"rtnPatCharsOpt", "retain-patient-characteristics"},
        {"rtnLongFullDatesOpt", "retain-long-full-dates"},
        {"rtnLongModifDatesOpt", "retain-long-modified-dates"},
        {"cleanDescOpt", "clean-descriptors"},
        {"cleanStructContOpt", "clean-structured-content"},
        {"cleanGraphOpt", "clean-graphics"},
    };
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        check_column(json, cols[i][0], cols[i][1]);
    free(json);
}

/* Repeating groups: 50xx curves and 60xx overlays, removed by the basic profile and kept
 * (overlay comments cleaned) with Clean Graphics; the private row, with and without Retain
 * Safe Private. */
static mt_ds_t *graphics_instance(void)
{
    mt_ds_t *ds = mt_ds_new();
    set(ds, 0x0010, 0x0010, "PN", "Smith^John");
    assert_int_equal(mt_ds_set_u16(ds, MT_TAG(0x6002, 0x0010), 16), 0);
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x6002, 0x3000), MT_VR('O', 'W'), "\xff\x00\xff\x00", 4),
                     0);
    set(ds, 0x6002, 0x4000, "LT", "overlay by Smith");
    assert_int_equal(mt_ds_set_u16(ds, MT_TAG(0x5000, 0x0005), 1), 0);
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x5000, 0x3000), MT_VR('O', 'W'), "\x01\x00", 2), 0);
    /* private: a safe Siemens element, an unsafe one; and an odd 60xx group (private) */
    set(ds, 0x0019, 0x0010, "LO", "SIEMENS MR HEADER");
    set(ds, 0x0019, 0x100C, "IS", "800");
    set(ds, 0x0019, 0x1010, "LO", "Smith private");
    set(ds, 0x6003, 0x0010, "LO", "SOME VENDOR");
    set(ds, 0x6003, 0x1000, "LO", "Smith");
    return ds;
}

static void test_graphics_and_private_rows(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load_repo("basic");
    mt_ds_t *ds = graphics_instance();
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    for (size_t i = 0; i < mt_ds_count(ds); i++) {
        uint16_t g = MT_TAG_GROUP(mt_ds_at(ds, i)->tag);
        assert_false(g >= 0x5000 && g <= 0x60FF);
        assert_false(g & 1); /* every private element and creator removed */
    }
    mt_ds_free(ds);
    mt_deid_profile_free(p);

    g_option = "clean-graphics";
    p = load_repo("opt");
    ds = graphics_instance();
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    assert_non_null(mt_ds_get(ds, MT_TAG(0x6002, 0x3000)));
    assert_non_null(mt_ds_get(ds, MT_TAG(0x6002, 0x0010)));
    assert_string_equal(get(ds, 0x6002, 0x4000), "overlay by");
    assert_non_null(mt_ds_get(ds, MT_TAG(0x5000, 0x3000)));
    assert_null(mt_ds_get(ds, MT_TAG(0x6003, 0x1000)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0019, 0x100C)));
    mt_ds_elem_t *codes = mt_ds_get(ds, MT_TAG(0x0012, 0x0064));
    assert_int_equal(codes->n_items, 2);
    assert_string_equal(get(codes->items[1], 0x0008, 0x0100), "113103");
    mt_ds_free(ds);
    mt_deid_profile_free(p);

    g_option = "retain-safe-private";
    p = load_repo("opt");
    ds = graphics_instance();
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    assert_string_equal(get(ds, 0x0019, 0x0010), "SIEMENS MR HEADER");
    assert_string_equal(get(ds, 0x0019, 0x100C), "800");
    assert_null(mt_ds_get(ds, MT_TAG(0x0019, 0x1010)));
    assert_null(mt_ds_get(ds, MT_TAG(0x6003, 0x1000)));
    assert_null(mt_ds_get(ds, MT_TAG(0x6003, 0x0010)));
    assert_null(mt_ds_get(ds, MT_TAG(0x6002, 0x3000))); /* graphics still removed */
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

/* cmr-registry: the CID 7050 codes of the profile and its options, in a fixed order, and the
 * attributes PS3.15 E.1.1 has a de-identifier add. */
static void test_cmr_registry_method(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load_repo("cmr-registry");
    mt_ds_t *ds = make_instance("1.2.3.4.5.6.7.100", "1.2.3.4.5.6.7.101");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    assert_string_equal(get(ds, 0x0012, 0x0062), "YES");
    assert_string_equal(get(ds, 0x0028, 0x0303), "MODIFIED");
    assert_non_null(strstr(get(ds, 0x0012, 0x0063), "cmr-registry"));
    mt_ds_elem_t *codes = mt_ds_get(ds, MT_TAG(0x0012, 0x0064));
    static const char *const want[] = {"113100", "113109", "113108", "113107", "113105"};
    assert_int_equal(codes->n_items, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(get(codes->items[i], 0x0008, 0x0100), want[i]);
        assert_string_equal(get(codes->items[i], 0x0008, 0x0102), "DCM");
        assert_non_null(get(codes->items[i], 0x0008, 0x0104));
    }
    /* retained: age, weight, field strength, modality; cleaned: the series description */
    assert_string_equal(get(ds, 0x0010, 0x1010), "054Y");
    assert_string_equal(get(ds, 0x0010, 0x1030), "71.5");
    assert_string_equal(get(ds, 0x0018, 0x0087), "1.5");
    assert_string_equal(get(ds, 0x0018, 0x1000), "SN12345"); /* device identity retained */
    assert_string_equal(get(ds, 0x0008, 0x103E), "SAX cine retro");
    assert_memory_equal(get(ds, 0x0010, 0x0020), "CMR", 3);
    assert_string_equal(get(ds, 0x0010, 0x0010), get(ds, 0x0010, 0x0020));
    /* the birth date has no Modified Dates cell: Z */
    assert_string_equal(get(ds, 0x0010, 0x0030), "");
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

/* A sequence that came as UN with a defined length (implicit VR LE items inside) is decoded and
 * handled like any sequence; one that does not decode is removed. */
/* The committed basic profile: outside Table E.1-1, the default X removes, the keep list
 * (deid-profiles/basic-keep.yaml) keeps, also inside kept sequences; UIDs are mapped. */
static void test_default_remove_and_keep_list(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load_repo("basic");
    mt_ds_t *ds = make_instance("1.2.3.4.5.6.7.10", "1.2.3.4.5.6.7.11");
    set(ds, 0x0018, 0x0081, "DS", "1.23");               /* EchoTime: number */
    set(ds, 0x0018, 0x0023, "CS", "2D");                 /* MRAcquisitionType: coded */
    set(ds, 0x0018, 0x0024, "SH", "*tfi2d1_25");         /* SequenceName: curated */
    set(ds, 0x0020, 0x1040, "LO", "Welby landmark");     /* Z: present, empty */
    set(ds, 0x0010, 0x0033, "LO", "Doe alt birth 1381"); /* not listed, text: X */
    set(ds, 0x0018, 0x1003, "LO", "DEV-Welby");          /* DeviceID: X */
    set(ds, 0x0018, 0x1042, "TM", "101500");             /* in the table: X */
    set(ds, 0x0028, 0x0304, "UI", "1.2.3.4.5.6.7.12");   /* UI outside the table: mapped */
    mt_ds_t *shared = add_item(ds, 0x5200, 0x9229);      /* functional groups: kept */
    mt_ds_t *po = add_item(shared, 0x0020, 0x9116);
    set(po, 0x0020, 0x0037, "DS", "1\\0\\0\\0\\1\\0");
    set(po, 0x0018, 0x1003, "LO", "DEV-Welby inside"); /* the same rules inside */
    set(add_item(ds, 0x0008, 0x0051), 0x0040, 0x0031, "UT", "ISSUER Welby");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    assert_string_equal(get(ds, 0x0018, 0x0081), "1.23");
    assert_string_equal(get(ds, 0x0018, 0x0023), "2D");
    assert_string_equal(get(ds, 0x0018, 0x0024), "*tfi2d1_25");
    assert_string_equal(get(ds, 0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.4");
    assert_non_null(mt_ds_get(ds, MT_TAG(0x0020, 0x1040)));
    assert_int_equal(mt_ds_get(ds, MT_TAG(0x0020, 0x1040))->len, 0);
    assert_null(mt_ds_get(ds, MT_TAG(0x0010, 0x0033)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0018, 0x1003)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0018, 0x1042)));
    assert_null(mt_ds_get(ds, MT_TAG(0x0008, 0x0051)));
    const char *pal = get(ds, 0x0028, 0x0304);
    assert_non_null(pal);
    assert_memory_equal(pal, "2.25.", 5);
    mt_ds_elem_t *sh = mt_ds_get(ds, MT_TAG(0x5200, 0x9229));
    assert_non_null(sh);
    assert_int_equal(sh->n_items, 1);
    mt_ds_elem_t *pos = mt_ds_get(sh->items[0], MT_TAG(0x0020, 0x9116));
    assert_non_null(pos);
    assert_string_equal(get(pos->items[0], 0x0020, 0x0037), "1\\0\\0\\0\\1\\0");
    assert_null(mt_ds_get(pos->items[0], MT_TAG(0x0018, 0x1003)));
    assert_non_null(mt_ds_get(ds, MT_TAG(0x0028, 0x0011))); /* Columns */
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

static size_t implicit_elem(uint8_t *p, uint16_t g, uint16_t e, const char *v)
{
    size_t n = strlen(v);
    p[0] = (uint8_t)g, p[1] = (uint8_t)(g >> 8), p[2] = (uint8_t)e, p[3] = (uint8_t)(e >> 8);
    put_le32(p + 4, (uint32_t)n);
    memcpy(p + 8, v, n);
    return 8 + n;
}

static void test_un_sequence(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load("t");
    uint8_t v[256];
    size_t n = 8;
    n += implicit_elem(v + n, 0x0008, 0x1155, "1.2.3.4.5.66");
    n += implicit_elem(v + n, 0x0010, 0x0010, "Doe^Jane");
    v[0] = 0xFE, v[1] = 0xFF, v[2] = 0x00, v[3] = 0xE0; /* item (FFFE,E000) */
    put_le32(v + 4, (uint32_t)(n - 8));
    mt_ds_t *ds = mt_ds_new();
    set(ds, 0x0010, 0x0020, "LO", "MRN-4711");
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0008, 0x1115), MT_VR('U', 'N'), v, (uint32_t)n), 0);
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0008, 0x1199), MT_VR('U', 'N'), "garbage!", 8), 0);
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    mt_ds_elem_t *sq = mt_ds_get(ds, MT_TAG(0x0008, 0x1115));
    assert_non_null(sq);
    assert_int_equal(sq->vr, MT_VR('S', 'Q'));
    assert_int_equal(sq->n_items, 1);
    assert_memory_equal(get(sq->items[0], 0x0008, 0x1155), "2.25.", 5);
    assert_string_equal(get(sq->items[0], 0x0010, 0x0010), get(ds, 0x0010, 0x0020));
    assert_null(mt_ds_get(ds, MT_TAG(0x0008, 0x1199))); /* undecodable: removed */
    mt_buf_t out;
    mt_buf_init(&out, 1 << 20);
    assert_int_equal(mt_ds_encode(ds, mt_ts_explicit_le, &out), 0);
    assert_null(memmem(out.data, out.len, "Doe", 3));
    assert_null(memmem(out.data, out.len, "1.2.3.4.5.66", 12));
    mt_buf_dispose(&out);
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

/* C scrubs a name that the instance names elsewhere even when the two differ in the case of
 * non-ASCII letters (ISO_IR 100 and UTF-8 "Grünwälder" in a description written "GRÜNWÄLDER"). */
static void scrub_case(mt_deid_profile_t *p, const char *cs, const char *name, const char *desc,
                       const char *gone)
{
    mt_ds_t *ds = mt_ds_new();
    set(ds, 0x0008, 0x0005, "CS", cs);
    set(ds, 0x0010, 0x0020, "LO", "MRN-4711");
    set(ds, 0x0010, 0x0010, "PN", name);
    set(ds, 0x0008, 0x103E, "LO", desc);
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    const char *out = get(ds, 0x0008, 0x103E);
    assert_non_null(out);
    if (strstr(out, gone))
        fail_msg("%s: '%s' survives in '%s'", cs, gone, out);
    mt_ds_free(ds);
}

static void test_clean_non_ascii_case(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load("t");
    scrub_case(p, "ISO_IR 100", "Gr\xfcnw\xe4lder^J\xfcrgen", "CMR GR\xdcNW\xc4LDER", "NW");
    scrub_case(p, "ISO_IR 100", "GR\xdcNW\xc4LDER^J\xdcRGEN", "cine gr\xfcnw\xe4lder", "nw");
    scrub_case(p, "ISO_IR 192", "Gr\xc3\xbcnw\xc3\xa4lder^J\xc3\xbcrgen",
               "CMR GR\xc3\x9cNW\xc3\x84LDER", "NW");
    scrub_case(p, "ISO_IR 192",
               "\xc3\x98"
               "degaard^Bj\xc3\xb8rn",
               "sax \xc3\xb8"
               "DEGAARD",
               "DEGAARD");

    mt_deid_profile_free(p);
}

/* A person name that came as UN (explicit VR UN, PS3.5 6.2.2) is still a name: its words go
 * from the cleaned descriptions like those of a PN (the UN ReferringPhysicianName's did not). */
static void test_clean_un_person_name(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load("t");
    mt_ds_t *ds = mt_ds_new();
    set(ds, 0x0010, 0x0020, "LO", "MRN-4711");
    assert_int_equal(mt_ds_set(ds, MT_TAG(0x0008, 0x0090), MT_VR('U', 'N'), "Unbekannt^Ulrich", 16),
                     0);
    set(ds, 0x0008, 0x103E, "LO", "cine Unbekannt ULRICH");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    const char *out = get(ds, 0x0008, 0x103E);
    assert_non_null(out);
    assert_null(strstr(out, "Unbekannt"));
    assert_null(strstr(out, "ULRICH"));
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

/* Free text that the keep list keeps as it is (the Code Sequence Macro's Code Meaning of a local
 * coding scheme, Sequence Name) still loses the names and IDs of the instance's people: a code
 * meaning "protocol of Codename Conrad" kept the patient's name under the basic profile. Only
 * what names a person or the patient goes, and nothing when nothing matches (values unchanged
 * byte for byte); digit runs stay (code values are digits). */
static void test_keep_list_text_loses_names(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load_repo("basic");
    mt_ds_t *ds = mt_ds_new();
    set(ds, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.4");
    set(ds, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7.200");
    set(ds, 0x0010, 0x0010, "PN", "Codename^Conrad^99LOCAL");
    set(ds, 0x0010, 0x0020, "LO", "P6PID-7-11-05");
    set(ds, 0x0008, 0x0090, "PN", "Refdoc^Rita");
    set(ds, 0x0008, 0x0080, "LO", "SIEMENS HOSPITAL");
    set(ds, 0x0008, 0x0070, "LO", "SIEMENS");
    set(ds, 0x0018, 0x0024, "SH", "tfl Codename");
    set(ds, 0x0018, 0x1020, "LO", "VE11C 2011/05/13 P6PID-7-11-05"); /* "11" is no name */
    mt_ds_t *c = add_item(ds, 0x0040, 0x0260); /* Performed Protocol Code Sequence */
    set(c, 0x0008, 0x0100, "SH", "121311");
    set(c, 0x0008, 0x0102, "SH", "99LOCAL");
    set(c, 0x0008, 0x0104, "LO", "protocol of CODENAME conrad for P6PID-7-11-05");
    mt_ds_t *a = add_item(ds, 0x0008, 0x2218); /* Anatomic Region Sequence */
    set(a, 0x0008, 0x0100, "SH", "T-32000");
    set(a, 0x0008, 0x0102, "SH", "SRT");
    set(a, 0x0008, 0x0104, "LO", "Refdoc");
    assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, NULL), 0);
    c = mt_ds_get(ds, MT_TAG(0x0040, 0x0260))->items[0];
    a = mt_ds_get(ds, MT_TAG(0x0008, 0x2218))->items[0];
    assert_string_equal(get(c, 0x0008, 0x0104), "protocol of for");
    assert_string_equal(get(c, 0x0008, 0x0100), "121311");
    assert_string_equal(get(c, 0x0008, 0x0102), "99LOCAL");      /* a code, even if a name's */
    assert_string_equal(get(a, 0x0008, 0x0104), "DEIDENTIFIED"); /* Type 1: present */
    assert_string_equal(get(a, 0x0008, 0x0100), "T-32000");
    assert_string_equal(get(ds, 0x0018, 0x0024), "tfl");
    assert_string_equal(get(ds, 0x0018, 0x1020), "VE11C 2011/05/13");
    assert_string_equal(get(ds, 0x0008, 0x0070), "SIEMENS"); /* an institution's word stays */
    mt_ds_free(ds);
    mt_deid_profile_free(p);
}

/* LO pads with leading and trailing spaces (PS3.5 Table 6.2-1): " MRN-4711" is the Patient ID
 * "MRN-4711", so the same pseudonym and the same date shift (a leading space made another
 * patient of it, and the registry lost the link between the two studies). */
static void test_patient_id_padding(void **state)
{
    (void)state;
    mt_deid_profile_t *p = load("t");
    static const char *const ids[] = {"MRN-4711", " MRN-4711", "  MRN-4711 "};
    char first[64] = "";
    int32_t shift = 0;
    for (size_t i = 0; i < 3; i++) {
        mt_ds_t *ds = mt_ds_new();
        set(ds, 0x0010, 0x0020, "LO", ids[i]);
        set(ds, 0x0010, 0x0010, "PN", "Doe^Jane");
        mt_deid_result_t res;
        assert_int_equal(mt_deid_apply(p, KEY1, sizeof(KEY1), ds, &res), 0);
        if (i == 0) {
            snprintf(first, sizeof(first), "%s", get(ds, 0x0010, 0x0020));
            shift = res.shift_days;
        } else {
            assert_string_equal(get(ds, 0x0010, 0x0020), first);
            assert_string_equal(get(ds, 0x0010, 0x0010), first);
            assert_int_equal(res.shift_days, shift);
        }
        mt_ds_free(ds);
    }
    mt_deid_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions_per_vr),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_referential_integrity_and_determinism),
        cmocka_unit_test(test_key_dependence),
        cmocka_unit_test(test_uid_form),
        cmocka_unit_test(test_hmac_known_answers),
        cmocka_unit_test(test_uid_cache_known_answers),
        cmocka_unit_test(test_date_shift),
        cmocka_unit_test(test_safe_private_and_retain),
        cmocka_unit_test(test_burned_in_annotation),
        cmocka_unit_test(test_no_leak_of_values),
        cmocka_unit_test(test_un_sequence),
        cmocka_unit_test(test_clean_non_ascii_case),
        cmocka_unit_test(test_clean_un_person_name),
        cmocka_unit_test(test_keep_list_text_loses_names),
        cmocka_unit_test(test_patient_id_padding),
        cmocka_unit_test(test_table_e1_1),
        cmocka_unit_test(test_graphics_and_private_rows),
        cmocka_unit_test(test_cmr_registry_method),
        cmocka_unit_test(test_default_remove_and_keep_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
