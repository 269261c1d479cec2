/* tests for the pure parts of node/svc/retrieve.c: which presentation contexts are proposed for
 * a set of instances, and the final C-MOVE/C-GET status for the sub-operation counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "svc/retrieve.h"

#define MR "1.2.840.10008.5.1.4.1.1.4"
#define CT "1.2.840.10008.5.1.4.1.1.2"
#define ELE "1.2.840.10008.1.2.1"
#define ILE "1.2.840.10008.1.2"
#define BE "1.2.840.10008.1.2.2"
#define JPEG "1.2.840.10008.1.2.4.50"

static mt_subop_inst_t inst(const char *cls, const char *ts)
{
    mt_subop_inst_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.sop_class, sizeof s.sop_class, "%s", cls);
    snprintf(s.ts, sizeof s.ts, "%s", ts);
    return s;
}

static void test_proposals(void **state)
{
    (void)state;
    mt_subop_inst_t in[] = {inst(MR, ELE), inst(MR, ELE), inst(MR, ILE), inst(MR, JPEG),
                            inst(CT, BE)};
    mt_nego_proposal_t out[16];
    bool trunc;
    size_t n = mt_retrieve_proposals(in, 5, out, 16, &trunc);
    assert_false(trunc);
    /* MR [ELE, ILE], MR [ILE, ELE], MR [JPEG], CT [BE], CT [ELE, ILE] */
    assert_int_equal(n, 5);
    assert_string_equal(out[0].ts[0], ELE);
    assert_string_equal(out[0].ts[1], ILE);
    assert_string_equal(out[1].ts[0], ILE);
    assert_string_equal(out[2].ts[0], JPEG);
    assert_int_equal(out[2].n_ts, 1); /* compressed: only as stored */
    assert_string_equal(out[3].abstract_syntax, CT);
    assert_string_equal(out[3].ts[0], BE);
    assert_int_equal(out[3].n_ts, 1);
    assert_string_equal(out[4].ts[0], ELE); /* native big endian: the LE fallback too */
    assert_int_equal(out[4].n_ts, 2);
    n = mt_retrieve_proposals(in, 5, out, 2, &trunc);
    assert_int_equal(n, 2);
    assert_true(trunc);
}

static void test_final_status(void **state)
{
    (void)state;
    mt_retrieve_counts_t c = {0, 5, 0, 0};
    assert_int_equal(mt_retrieve_final_status(&c, false), 0x0000);
    c = (mt_retrieve_counts_t){0, 4, 1, 0};
    assert_int_equal(mt_retrieve_final_status(&c, false), 0xB000);
    c = (mt_retrieve_counts_t){0, 0, 5, 0};
    assert_int_equal(mt_retrieve_final_status(&c, false), 0xA702);
    c = (mt_retrieve_counts_t){0, 0, 0, 2};
    assert_int_equal(mt_retrieve_final_status(&c, false), 0xB000);
    c = (mt_retrieve_counts_t){3, 2, 0, 0};
    assert_int_equal(mt_retrieve_final_status(&c, true), 0xFE00);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proposals),
        cmocka_unit_test(test_final_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
