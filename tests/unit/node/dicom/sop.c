/* Unit tests for node/dicom/sop.c: the generated storage SOP class table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/sop.h"

static void test_sop(void **state)
{
    (void)state;
    assert_true(mt_sop_is_storage("1.2.840.10008.5.1.4.1.1.4"));   /* MR */
    assert_true(mt_sop_is_storage("1.2.840.10008.5.1.4.1.1.4.1")); /* Enhanced MR */
    assert_true(mt_sop_is_storage("1.2.840.10008.5.1.4.1.1.7"));   /* Secondary Capture */
    assert_true(mt_sop_is_storage("1.2.840.10008.5.1.4.1.1.2\0")); /* CT, padded */
    const mt_sop_class_t *c = mt_sop_storage_find("1.2.840.10008.5.1.4.1.1.6");
    assert_non_null(c);
    assert_true(c->retired);
    assert_false(mt_sop_is_storage(MT_UID_VERIFICATION));
    assert_false(mt_sop_is_storage("1.2.840.10008.5.1.4.1.2.2.1")); /* Study Root FIND */
    assert_false(mt_sop_is_storage("1.2.840.10008.5.1.4.1.1.4."));
    assert_false(mt_sop_is_storage(""));
    size_t n;
    const mt_sop_class_t *all = mt_sop_storage_all(&n);
    assert_true(n > 150);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(all[i - 1].uid, all[i].uid) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
