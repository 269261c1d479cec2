/* Unit tests for node/dicom/ts.c: the transfer syntax table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/ds.h"

static void test_ts_find(void **state)
{
    (void)state;
    const mt_ts_t *ts = mt_ts_find("1.2.840.10008.1.2");
    assert_ptr_equal(ts, mt_ts_implicit_le);
    assert_false(ts->explicit_vr);
    ts = mt_ts_find("1.2.840.10008.1.2.1");
    assert_ptr_equal(ts, mt_ts_explicit_le);
    assert_true(ts->explicit_vr);
    ts = mt_ts_find("1.2.840.10008.1.2.2");
    assert_true(ts->big_endian);
    assert_true(ts->retired);
    ts = mt_ts_find("1.2.840.10008.1.2.1.99");
    assert_true(ts->deflated);
    ts = mt_ts_find("1.2.840.10008.1.2.4.70");
    assert_true(ts->encapsulated);
    assert_true(ts->explicit_vr);
    assert_null(mt_ts_find("1.2.840.10008.1.2.4.9"));
    assert_null(mt_ts_find("1.2.840.10008.1.2.1.9"));
    assert_null(mt_ts_find(""));
    assert_null(mt_ts_find(NULL));
}

static void test_ts_padding(void **state)
{
    (void)state;
    /* UI values are NUL padded to even length on the wire; "1.2.840.10008.1.2" is 17 chars. */
    char padded[] = "1.2.840.10008.1.2\0";
    assert_ptr_equal(mt_ts_find(padded), mt_ts_implicit_le);
    assert_ptr_equal(mt_ts_find("1.2.840.10008.1.2.1 "), mt_ts_explicit_le);
}

static void test_ts_all_unique(void **state)
{
    (void)state;
    size_t n;
    const mt_ts_t *all = mt_ts_all(&n);
    assert_true(n > 40);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(mt_ts_find(all[i].uid), &all[i]);
        /* only native syntaxes are deflated or big endian */
        if (all[i].encapsulated)
            assert_false(all[i].deflated || all[i].big_endian);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ts_find),
        cmocka_unit_test(test_ts_padding),
        cmocka_unit_test(test_ts_all_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
