/* tests for node/dimse.c: round trip of every command type, command sets captured from dcmtk
 * 3.6.7 (echoscu, storescu, findscu, movescu sending to a fake SCP that dumped the command
 * PDVs), and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dimse.h"
#include "util/err.h"

/* echoscu -aet ECHOSCU: C-ECHO-RQ, message ID 1 */
static const uint8_t dcmtk_echo[] = {
    0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00, 0x31, 0x2e, 0x32, 0x2e,
    0x38, 0x34, 0x30, 0x2e, 0x31, 0x30, 0x30, 0x30, 0x38, 0x2e, 0x31, 0x2e,
    0x31, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00,
    0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
};
/* storescu MR_small.dcm: C-STORE-RQ, MR Image Storage, priority medium, data set type 0x0001 */
static const uint8_t dcmtk_store[] = {
    0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x00, 0x1a, 0x00, 0x00, 0x00, 0x31, 0x2e, 0x32, 0x2e,
    0x38, 0x34, 0x30, 0x2e, 0x31, 0x30, 0x30, 0x30, 0x38, 0x2e, 0x35, 0x2e,
    0x31, 0x2e, 0x34, 0x2e, 0x31, 0x2e, 0x31, 0x2e, 0x34, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x01,
    0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x10, 0x2e, 0x00, 0x00, 0x00, 0x31, 0x2e,
    0x33, 0x2e, 0x36, 0x2e, 0x31, 0x2e, 0x34, 0x2e, 0x31, 0x2e, 0x35, 0x39,
    0x36, 0x32, 0x2e, 0x31, 0x2e, 0x31, 0x2e, 0x34, 0x2e, 0x31, 0x2e, 0x31,
    0x2e, 0x32, 0x30, 0x30, 0x34, 0x30, 0x38, 0x32, 0x36, 0x31, 0x38, 0x35,
    0x30, 0x35, 0x39, 0x2e, 0x35, 0x34, 0x35, 0x37,
};
/* findscu -S: C-FIND-RQ, Study Root FIND */
static const uint8_t dcmtk_find[] = {
    0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x4c, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x31, 0x2e, 0x32, 0x2e,
    0x38, 0x34, 0x30, 0x2e, 0x31, 0x30, 0x30, 0x30, 0x38, 0x2e, 0x35, 0x2e,
    0x31, 0x2e, 0x34, 0x2e, 0x31, 0x2e, 0x32, 0x2e, 0x32, 0x2e, 0x31, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00,
    0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x02, 0x00,
    0x00, 0x00, 0x01, 0x00,
};
/* movescu -S -aem DEST_AE: C-MOVE-RQ, Study Root MOVE */
static const uint8_t dcmtk_move[] = {
    0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x5c, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x31, 0x2e, 0x32, 0x2e,
    0x38, 0x34, 0x30, 0x2e, 0x31, 0x30, 0x30, 0x30, 0x38, 0x2e, 0x35, 0x2e,
    0x31, 0x2e, 0x34, 0x2e, 0x31, 0x2e, 0x32, 0x2e, 0x32, 0x2e, 0x32, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x21, 0x00, 0x00, 0x00,
    0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x06,
    0x08, 0x00, 0x00, 0x00, 0x44, 0x45, 0x53, 0x54, 0x5f, 0x41, 0x45, 0x20,
    0x00, 0x00, 0x00, 0x07, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,
};

static int decode(const uint8_t *b, size_t n, mt_dimse_cmd_t *c, mt_diag_t *d)
{
    d->offset = 0;
    d->reason = NULL;
    return mt_dimse_decode(b, n, c, d);
}

static void test_dcmtk_echo(void **state)
{
    (void)state;
    mt_dimse_cmd_t c;
    mt_diag_t d;
    assert_int_equal(decode(dcmtk_echo, sizeof dcmtk_echo, &c, &d), 0);
    assert_int_equal(c.command_field, MT_C_ECHO_RQ);
    assert_int_equal(c.message_id, 1);
    assert_string_equal(c.affected_sop_class_uid, "1.2.840.10008.1.1");
    assert_false(mt_dimse_has_dataset(&c));
    assert_false(c.has_status);
    /* our encoder writes the same bytes */
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    assert_int_equal(mt_dimse_encode(&c, &b), 0);
    assert_int_equal(b.len, sizeof dcmtk_echo);
    assert_memory_equal(b.data, dcmtk_echo, sizeof dcmtk_echo);
    mt_buf_dispose(&b);
}

static void test_dcmtk_store(void **state)
{
    (void)state;
    mt_dimse_cmd_t c;
    mt_diag_t d;
    assert_int_equal(decode(dcmtk_store, sizeof dcmtk_store, &c, &d), 0);
    assert_int_equal(c.command_field, MT_C_STORE_RQ);
    assert_int_equal(c.message_id, 1);
    assert_int_equal(c.priority, 0);
    assert_int_equal(c.data_set_type, 0x0001);
    assert_true(mt_dimse_has_dataset(&c));
    assert_string_equal(c.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.1.4");
    assert_string_equal(c.affected_sop_instance_uid,
                        "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457");
    assert_false(c.has_move_originator);
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    assert_int_equal(mt_dimse_encode(&c, &b), 0);
    assert_int_equal(b.len, sizeof dcmtk_store);
    assert_memory_equal(b.data, dcmtk_store, sizeof dcmtk_store);
    mt_buf_dispose(&b);
}

static void test_dcmtk_find_move(void **state)
{
    (void)state;
    mt_dimse_cmd_t c;
    mt_diag_t d;
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    assert_int_equal(decode(dcmtk_find, sizeof dcmtk_find, &c, &d), 0);
    assert_int_equal(c.command_field, MT_C_FIND_RQ);
    assert_string_equal(c.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.2.2.1");
    assert_true(mt_dimse_has_dataset(&c));
    assert_int_equal(mt_dimse_encode(&c, &b), 0);
    assert_int_equal(b.len, sizeof dcmtk_find);
    assert_memory_equal(b.data, dcmtk_find, sizeof dcmtk_find);

    mt_buf_reset(&b);
    assert_int_equal(decode(dcmtk_move, sizeof dcmtk_move, &c, &d), 0);
    assert_int_equal(c.command_field, MT_C_MOVE_RQ);
    assert_string_equal(c.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.2.2.2");
    assert_string_equal(c.move_destination, "DEST_AE");
    assert_int_equal(mt_dimse_encode(&c, &b), 0);
    assert_int_equal(b.len, sizeof dcmtk_move);
    assert_memory_equal(b.data, dcmtk_move, sizeof dcmtk_move);
    mt_buf_dispose(&b);
}

/* Encode, check the group length and even lengths, decode, compare every field. */
static void round_trip(const mt_dimse_cmd_t *in, mt_dimse_cmd_t *out)
{
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    assert_int_equal(mt_dimse_encode(in, &b), 0);
    assert_true(b.len >= 12);
    uint32_t glen = b.data[8] | b.data[9] << 8 | b.data[10] << 16 | (uint32_t)b.data[11] << 24;
    assert_int_equal(glen, b.len - 12);
    for (size_t p = 0; p < b.len;) { /* walk: group 0000, even lengths, ascending */
        assert_int_equal(b.data[p] | b.data[p + 1] << 8, 0);
        uint32_t n = b.data[p + 4] | b.data[p + 5] << 8 | b.data[p + 6] << 16 |
                     (uint32_t)b.data[p + 7] << 24;
        assert_int_equal(n % 2, 0);
        p += 8 + n;
        assert_true(p <= b.len);
    }
    mt_diag_t d;
    int rc = mt_dimse_decode(b.data, b.len, out, &d);
    if (rc)
        fail_msg("%s: %s at %llu", mt_dimse_command_name(in->command_field), d.reason,
                 (unsigned long long)d.offset);
    assert_int_equal(out->command_field, in->command_field);
    assert_int_equal(out->data_set_type, in->data_set_type);
    mt_buf_dispose(&b);
}

static void test_round_trip_requests(void **state)
{
    (void)state;
    mt_dimse_cmd_t c, o;

    mt_dimse_cmd_init(&c);
    c.command_field = MT_C_ECHO_RQ;
    c.message_id = 7;
    strcpy(c.affected_sop_class_uid, "1.2.840.10008.1.1");
    round_trip(&c, &o);
    assert_int_equal(o.message_id, 7);
    assert_string_equal(o.affected_sop_class_uid, "1.2.840.10008.1.1");

    mt_dimse_cmd_init(&c);
    c.command_field = MT_C_STORE_RQ;
    c.message_id = 65535;
    c.priority = 1;
    c.data_set_type = 0x0000;
    strcpy(c.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.1.4"); /* odd length: NUL pad */
    strcpy(c.affected_sop_instance_uid, "1.2.3.4");
    c.has_move_originator = true;
    strcpy(c.move_originator_ae, "MOVER"); /* odd: space pad */
    c.move_originator_message_id = 42;
    round_trip(&c, &o);
    assert_int_equal(o.message_id, 65535);
    assert_int_equal(o.priority, 1);
    assert_true(mt_dimse_has_dataset(&o));
    assert_string_equal(o.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.1.4");
    assert_string_equal(o.affected_sop_instance_uid, "1.2.3.4");
    assert_true(o.has_move_originator);
    assert_string_equal(o.move_originator_ae, "MOVER");
    assert_int_equal(o.move_originator_message_id, 42);

    uint16_t qr[] = {MT_C_FIND_RQ, MT_C_GET_RQ, MT_C_MOVE_RQ};
    for (size_t i = 0; i < 3; i++) {
        mt_dimse_cmd_init(&c);
        c.command_field = qr[i];
        c.message_id = (uint16_t)(10 + i);
        c.priority = 2;
        c.data_set_type = 0x0001;
        strcpy(c.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.2.1.1");
        strcpy(c.move_destination, "STORESCP");
        round_trip(&c, &o);
        assert_int_equal(o.message_id, 10 + i);
        assert_int_equal(o.priority, 2);
        assert_string_equal(o.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.2.1.1");
        /* MoveDestination only in C-MOVE-RQ */
        assert_string_equal(o.move_destination, qr[i] == MT_C_MOVE_RQ ? "STORESCP" : "");
    }

    mt_dimse_cmd_init(&c);
    c.command_field = MT_N_EVENT_REPORT_RQ;
    c.message_id = 3;
    c.data_set_type = 0x0001;
    strcpy(c.affected_sop_class_uid, "1.2.840.10008.1.20.1");
    strcpy(c.affected_sop_instance_uid, "1.2.840.10008.1.20.1.1");
    c.event_type_id = 1;
    round_trip(&c, &o);
    assert_int_equal(o.event_type_id, 1);
    assert_string_equal(o.affected_sop_instance_uid, "1.2.840.10008.1.20.1.1");

    mt_dimse_cmd_init(&c);
    c.command_field = MT_N_ACTION_RQ;
    c.message_id = 4;
    c.data_set_type = 0x0001;
    strcpy(c.requested_sop_class_uid, "1.2.840.10008.1.20.1");
    strcpy(c.requested_sop_instance_uid, "1.2.840.10008.1.20.1.1");
    strcpy(c.affected_sop_class_uid, "9.9"); /* not part of N-ACTION-RQ: not written */
    c.action_type_id = 1;
    round_trip(&c, &o);
    assert_string_equal(o.requested_sop_class_uid, "1.2.840.10008.1.20.1");
    assert_string_equal(o.requested_sop_instance_uid, "1.2.840.10008.1.20.1.1");
    assert_string_equal(o.affected_sop_class_uid, "");
    assert_int_equal(o.action_type_id, 1);

    mt_dimse_cmd_init(&c);
    c.command_field = MT_C_CANCEL_RQ;
    c.message_id_responded_to = 11;
    c.message_id = 99; /* C-CANCEL-RQ has no MessageID */
    round_trip(&c, &o);
    assert_int_equal(o.message_id_responded_to, 11);
    assert_int_equal(o.message_id, 0);
    assert_false(mt_dimse_has_dataset(&o));
}

static void test_round_trip_responses(void **state)
{
    (void)state;
    mt_dimse_cmd_t c, o;

    mt_dimse_cmd_init(&c); /* what svc/echo.c sends */
    c.command_field = MT_C_ECHO_RSP;
    c.message_id_responded_to = 1;
    c.status = MT_STATUS_SUCCESS;
    c.has_status = true;
    strcpy(c.affected_sop_class_uid, "1.2.840.10008.1.1");
    round_trip(&c, &o);
    assert_true(o.has_status);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.message_id_responded_to, 1);
    assert_string_equal(o.affected_sop_class_uid, "1.2.840.10008.1.1");

    mt_dimse_cmd_init(&c);
    c.command_field = MT_C_STORE_RSP;
    c.message_id_responded_to = 9;
    c.status = MT_STATUS_DS_DOES_NOT_MATCH_SOP_CLASS;
    strcpy(c.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.1.4");
    strcpy(c.affected_sop_instance_uid, "1.2.3");
    strcpy(c.error_comment, "missing SOP Instance UID"); /* even */
    c.offending_element[0] = 0x00080018;
    c.offending_element[1] = 0x7FE00010;
    c.n_offending = 2;
    round_trip(&c, &o);
    assert_int_equal(o.status, 0xA900);
    assert_string_equal(o.error_comment, "missing SOP Instance UID");
    assert_string_equal(o.affected_sop_instance_uid, "1.2.3");
    assert_int_equal(o.n_offending, 2);
    assert_int_equal(o.offending_element[0], 0x00080018);
    assert_int_equal(o.offending_element[1], 0x7FE00010);
    strcpy(c.error_comment, "odd");
    round_trip(&c, &o);
    assert_string_equal(o.error_comment, "odd");

    /* AffectedSOPClassUID is optional in responses */
    mt_dimse_cmd_init(&c);
    c.command_field = MT_C_FIND_RSP;
    c.message_id_responded_to = 5;
    c.status = MT_STATUS_PENDING;
    c.data_set_type = 0x0001;
    round_trip(&c, &o);
    assert_int_equal(o.status, MT_STATUS_PENDING);
    assert_true(mt_dimse_has_dataset(&o));
    assert_string_equal(o.affected_sop_class_uid, "");

    uint16_t sub[] = {MT_C_MOVE_RSP, MT_C_GET_RSP};
    for (size_t i = 0; i < 2; i++) {
        mt_dimse_cmd_init(&c);
        c.command_field = sub[i];
        c.message_id_responded_to = 6;
        strcpy(c.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.2.2.2");
        c.status = MT_STATUS_PENDING;
        c.has_counts = true;
        c.n_remaining = 10;
        c.n_completed = 3;
        c.n_failed = 1;
        c.n_warning = 2;
        round_trip(&c, &o);
        assert_true(o.has_counts);
        assert_int_equal(o.n_remaining, 10);
        assert_int_equal(o.n_completed, 3);
        assert_int_equal(o.n_failed, 1);
        assert_int_equal(o.n_warning, 2);
        /* final response: no Remaining */
        c.status = MT_STATUS_SUCCESS;
        round_trip(&c, &o);
        assert_int_equal(o.n_remaining, 0);
        assert_int_equal(o.n_completed, 3);
        /* counts not set: none written */
        c.has_counts = false;
        round_trip(&c, &o);
        assert_false(o.has_counts);
    }

    mt_dimse_cmd_init(&c);
    c.command_field = MT_N_EVENT_REPORT_RSP;
    c.message_id_responded_to = 2;
    c.status = 0;
    strcpy(c.affected_sop_instance_uid, "1.2.840.10008.1.20.1.1");
    c.event_type_id = 2;
    round_trip(&c, &o);
    assert_int_equal(o.event_type_id, 2);
    assert_string_equal(o.affected_sop_instance_uid, "1.2.840.10008.1.20.1.1");

    mt_dimse_cmd_init(&c);
    c.command_field = MT_N_ACTION_RSP;
    c.message_id_responded_to = 2;
    c.status = MT_STATUS_PROCESSING_FAILURE;
    c.action_type_id = 1;
    strcpy(c.error_comment, "nope");
    round_trip(&c, &o);
    assert_int_equal(o.status, 0x0110);
    assert_int_equal(o.action_type_id, 1);
    assert_string_equal(o.error_comment, "nope");
}

static void test_encode_refuses(void **state)
{
    (void)state;
    mt_dimse_cmd_t c;
    mt_buf_t b;
    mt_buf_init(&b, 4096);
    mt_dimse_cmd_init(&c);
    c.command_field = 0x1234; /* unknown */
    assert_int_equal(mt_dimse_encode(&c, &b), MT_EINVAL);
    c.command_field = MT_C_STORE_RQ; /* no SOP class / instance */
    assert_int_equal(mt_dimse_encode(&c, &b), MT_EINVAL);
    strcpy(c.affected_sop_class_uid, "1.2");
    assert_int_equal(mt_dimse_encode(&c, &b), MT_EINVAL);
    c.command_field = MT_C_MOVE_RQ; /* no destination */
    assert_int_equal(mt_dimse_encode(&c, &b), MT_EINVAL);
    assert_int_equal(b.len, 0);
    mt_buf_dispose(&b);
    mt_buf_init(&b, 20); /* the buffer's limit */
    c.command_field = MT_C_ECHO_RQ;
    assert_int_equal(mt_dimse_encode(&c, &b), MT_ETOOBIG);
    mt_buf_dispose(&b);
}

static void test_names_and_flags(void **state)
{
    (void)state;
    assert_string_equal(mt_dimse_command_name(MT_C_STORE_RQ), "C-STORE-RQ");
    assert_string_equal(mt_dimse_command_name(MT_C_ECHO_RSP), "C-ECHO-RSP");
    assert_string_equal(mt_dimse_command_name(MT_N_ACTION_RQ), "N-ACTION-RQ");
    assert_string_equal(mt_dimse_command_name(MT_C_CANCEL_RQ), "C-CANCEL-RQ");
    assert_string_equal(mt_dimse_command_name(0x4242), "unknown");
    assert_int_equal(mt_dimse_cmd_flags(MT_C_ECHO_RQ), MT_CMD_NO_DATASET);
    assert_int_equal(mt_dimse_cmd_flags(MT_C_STORE_RQ), MT_CMD_DATASET);
    assert_int_equal(mt_dimse_cmd_flags(MT_C_FIND_RQ), MT_CMD_DATASET | MT_CMD_CANCEL);
    assert_int_equal(mt_dimse_cmd_flags(MT_C_CANCEL_RQ), MT_CMD_NO_DATASET);
    assert_int_equal(mt_dimse_cmd_flags(MT_C_STORE_RSP), 0);
}

static void expect_malformed(const uint8_t *b, size_t n, const char *reason, size_t offset)
{
    mt_dimse_cmd_t c;
    mt_diag_t d;
    assert_int_equal(decode(b, n, &c, &d), MT_EMALFORMED);
    assert_non_null(d.reason);
    if (strstr(d.reason, reason) == NULL)
        fail_msg("reason '%s', expected '%s'", d.reason, reason);
    assert_int_equal(d.offset, offset);
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t b[256];
    memcpy(b, dcmtk_echo, sizeof dcmtk_echo);
    size_t n = sizeof dcmtk_echo;

    expect_malformed(b, 0, "empty", 0);
    /* every truncation of a valid command set is refused */
    for (size_t i = 1; i < n; i++) {
        mt_dimse_cmd_t c;
        mt_diag_t d;
        assert_int_equal(decode(b, i, &c, &d), MT_EMALFORMED);
    }
    /* group length wrong */
    b[8] = 0x39;
    expect_malformed(b, n, "CommandGroupLength does not match", 0);
    b[8] = 0x38;
    /* SOP class element (offset 12) length past the end */
    b[16] = 0xF0;
    expect_malformed(b, n, "past the end", 12);
    b[16] = 0xFF, b[17] = 0xFF, b[18] = 0xFF, b[19] = 0xFF;
    expect_malformed(b, n, "undefined length", 12);
    b[17] = b[18] = b[19] = 0;
    b[16] = 0x11; /* odd */
    expect_malformed(b, n, "odd", 12);
    b[16] = 0x12;
    /* CommandField (offset 38) with length 4 */
    b[42] = 4;
    expect_malformed(b, n, "not 2 bytes", 38);
    b[42] = 2;
    /* an element of group 0008 */
    b[38] = 8;
    expect_malformed(b, n, "outside group 0000", 38);
    b[38] = 0;
    /* MessageID (offset 48) changed into a second CommandField: out of order */
    b[50] = 0x00;
    expect_malformed(b, n, "out of order", 48);
    b[50] = 0x10;
    {
        mt_dimse_cmd_t c;
        mt_diag_t d;
        assert_int_equal(decode(b, n, &c, &d), 0); /* restored */
    }

    /* missing required elements: build without group length (allowed) */
    static const uint8_t no_field[] = {0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,
                                       0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01};
    expect_malformed(no_field, sizeof no_field, "without CommandField", sizeof no_field);
    static const uint8_t no_ds[] = {0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00,
                                    0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00};
    expect_malformed(no_ds, sizeof no_ds, "without CommandDataSetType", sizeof no_ds);
    static const uint8_t no_msgid[] = {0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00,
                                       0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01};
    expect_malformed(no_msgid, sizeof no_msgid, "without MessageID", sizeof no_msgid);
    /* a response needs MessageIDBeingRespondedTo and Status */
    static const uint8_t rsp_no_status[] = {
        0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x80, 0x00, 0x00, 0x20, 0x01, 0x02,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01};
    expect_malformed(rsp_no_status, sizeof rsp_no_status, "without Status", sizeof rsp_no_status);
    static const uint8_t rsp_no_id[] = {
        0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x80, 0x00, 0x00, 0x00, 0x08, 0x02,
        0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00};
    expect_malformed(rsp_no_id, sizeof rsp_no_id, "without MessageIDBeingRespondedTo",
                     sizeof rsp_no_id);

    /* oversized string values */
    uint8_t big[8 + 66 + 30];
    memset(big, 0, sizeof big);
    big[2] = 0x02, big[4] = 66; /* (0000,0002) UI, 66 bytes */
    memset(big + 8, '1', 66);
    expect_malformed(big, sizeof big, "UID longer than 64", 0);
    big[2] = 0x00, big[3] = 0x06, big[4] = 18; /* (0000,0600) AE, 18 bytes */
    expect_malformed(big, 8 + 18, "AE title longer than 16", 0);
    big[2] = 0x02, big[3] = 0x09, big[4] = 66; /* (0000,0902) LO */
    expect_malformed(big, 8 + 66, "ErrorComment longer than 64", 0);
    big[2] = 0x01, big[3] = 0x09, big[4] = 6; /* (0000,0901) AT, not a multiple of 4 */
    expect_malformed(big, 8 + 6, "not a list of tags", 0);
    expect_malformed(big, 7, "truncated element header", 0);
}

static void test_decode_tolerates(void **state)
{
    (void)state;
    /* unknown/retired group 0000 elements are skipped; padding and AE spaces are trimmed;
     * no group length is fine; OffendingElement keeps the first 8 tags */
    uint8_t b[256];
    size_t n = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        const uint8_t x_[] = {__VA_ARGS__};                                                        \
        memcpy(b + n, x_, sizeof x_);                                                              \
        n += sizeof x_;                                                                            \
    } while (0)
    PUT(0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, '1', '.', '2', 0);
    PUT(0x00, 0x00, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, 'X', 'Y'); /* retired Recognition Code */
    PUT(0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x21, 0x80);
    PUT(0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x05, 0x00);
    PUT(0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01);
    PUT(0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0xC0);
    PUT(0x00, 0x00, 0x01, 0x09, 0x24, 0x00, 0x00, 0x00); /* 9 tags */
    for (int i = 0; i < 9; i++)
        PUT(0x08, 0x00, (uint8_t)(0x10 + i), 0x00);
    PUT(0x00, 0x00, 0x02, 0x09, 0x04, 0x00, 0x00, 0x00, 'b', 'a', 'd', ' ');
    PUT(0x00, 0x00, 0x03, 0x09, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00); /* ErrorID: skipped */
    PUT(0x00, 0x00, 0x21, 0x10, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00);
    PUT(0x00, 0x00, 0x30, 0x10, 0x06, 0x00, 0x00, 0x00, ' ', 'A', 'B', ' ', ' ', ' ');
    assert_true(n <= sizeof b);
    mt_dimse_cmd_t c;
    mt_diag_t d;
    if (decode(b, n, &c, &d))
        fail_msg("%s at %llu", d.reason, (unsigned long long)d.offset);
    assert_int_equal(c.command_field, MT_C_MOVE_RSP);
    assert_string_equal(c.affected_sop_class_uid, "1.2");
    assert_int_equal(c.status, 0xC000);
    assert_int_equal(c.n_offending, 8);
    assert_int_equal(c.offending_element[7], 0x00080017);
    assert_string_equal(c.error_comment, "bad");
    assert_true(c.has_counts);
    assert_int_equal(c.n_completed, 7);
    assert_true(c.has_move_originator);
    assert_string_equal(c.move_originator_ae, "AB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dcmtk_echo),          cmocka_unit_test(test_dcmtk_store),
        cmocka_unit_test(test_dcmtk_find_move),     cmocka_unit_test(test_round_trip_requests),
        cmocka_unit_test(test_round_trip_responses), cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_names_and_flags),     cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_decode_tolerates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
