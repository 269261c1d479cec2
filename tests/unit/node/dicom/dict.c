/* Unit tests for node/dicom/dict.c: the generated dictionary, by tag and by keyword. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/dict.h"
#include "dicom/ds.h"

static void test_by_tag(void **state)
{
    (void)state;
    const mt_dict_entry_t *e = mt_dict_by_tag(MT_TAG(0x0010, 0x0010));
    assert_non_null(e);
    assert_string_equal(e->keyword, "PatientName");
    assert_int_equal(e->vr, MT_VR('P', 'N'));
    assert_false(e->retired);
    e = mt_dict_by_tag(MT_TAG(0x0020, 0x0037));
    assert_string_equal(e->keyword, "ImageOrientationPatient");
    assert_string_equal(e->vm, "6");
    e = mt_dict_by_tag(MT_TAG(0x0008, 0x1110));
    assert_int_equal(e->vr, MT_VR('S', 'Q'));
}

static void test_pseudo_vrs(void **state)
{
    (void)state;
    /* "US or SS" (xs) resolves to US, "OB or OW" pixel data to OW: the implicit VR choices. */
    const mt_dict_entry_t *e = mt_dict_by_tag(MT_TAG(0x0028, 0x0106)); /* SmallestImagePixelValue */
    assert_int_equal(e->vr, MT_VR('U', 'S'));
    assert_string_equal(e->vr_str, "xs");
    e = mt_dict_by_tag(MT_TAG_PIXEL_DATA);
    assert_int_equal(e->vr, MT_VR('O', 'W'));
}

static void test_rules(void **state)
{
    (void)state;
    const mt_dict_entry_t *e = mt_dict_by_tag(MT_TAG(0x0029, 0x0010)); /* private creator */
    assert_non_null(e);
    assert_int_equal(e->vr, MT_VR('L', 'O'));
    assert_null(mt_dict_by_tag(MT_TAG(0x0029, 0x1010))); /* private element: unknown */
    e = mt_dict_by_tag(MT_TAG(0x0018, 0x0000));
    assert_int_equal(e->vr, MT_VR('U', 'L'));
    assert_null(mt_dict_by_tag(MT_TAG(0x0018, 0xFFFE)));
}

static void test_repeating_groups(void **state)
{
    (void)state;
    const mt_dict_entry_t *e = mt_dict_by_tag(MT_TAG(0x6002, 0x3000));
    assert_non_null(e);
    assert_string_equal(e->keyword, "OverlayData");
    e = mt_dict_by_tag(MT_TAG(0x601E, 0x0010));
    assert_string_equal(e->keyword, "OverlayRows");
    e = mt_dict_by_tag(MT_TAG(0x5004, 0x3000));
    assert_non_null(e);
    assert_true(e->retired);
}

static void test_by_keyword(void **state)
{
    (void)state;
    const mt_dict_entry_t *e = mt_dict_by_keyword("StudyInstanceUID");
    assert_non_null(e);
    assert_int_equal(e->tag, MT_TAG(0x0020, 0x000D));
    assert_null(mt_dict_by_keyword("NoSuchKeyword"));
    assert_null(mt_dict_by_keyword(""));
    e = mt_dict_by_keyword("OverlayData");
    assert_non_null(e);
    assert_true(mt_dict_count() > 4000);
}

/* Every exact row is found again by its tag and by its keyword: the tables are sorted. */
static void test_sorted(void **state)
{
    (void)state;
    static const char *kws[] = {"AccessionNumber", "SOPClassUID",  "MagneticFieldStrength",
                                "SequenceName",    "TriggerTime",  "ZeroVelocityPixelValue",
                                "AbortFlag",       "ZOffsetInSlice"};
    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
        const mt_dict_entry_t *e = mt_dict_by_keyword(kws[i]);
        if (!e)
            continue; /* older dictionaries may lack a newer keyword */
        assert_ptr_equal(mt_dict_by_tag(e->tag), e);
    }
    assert_non_null(mt_dict_by_keyword("AccessionNumber"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_tag),        cmocka_unit_test(test_pseudo_vrs),
        cmocka_unit_test(test_rules),         cmocka_unit_test(test_repeating_groups),
        cmocka_unit_test(test_by_keyword),    cmocka_unit_test(test_sorted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
