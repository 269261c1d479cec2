/* tests for the query layer: node/index/query.c (matching semantics, identifier -> query,
 * query text), query_sql.c (SQL shape) and query_exec.c against a real SQLite index: every
 * level, the matching types, project scoping, computed attributes, the cap, and EXPLAIN QUERY
 * PLAN showing that no query scans the instances (or series) tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "index/index.h"
#include "index/query.h"
#include "util/alloc.h"
#include "util/err.h"

#define T_CHARSET MT_TAG(0x0008, 0x0005)
#define T_SOP_CLASS MT_TAG(0x0008, 0x0016)
#define T_SOP MT_TAG(0x0008, 0x0018)
#define T_STUDY_DATE MT_TAG(0x0008, 0x0020)
#define T_STUDY_TIME MT_TAG(0x0008, 0x0030)
#define T_QR_LEVEL MT_TAG(0x0008, 0x0052)
#define T_RETRIEVE_AE MT_TAG(0x0008, 0x0054)
#define T_MODALITIES MT_TAG(0x0008, 0x0061)
#define T_MODALITY MT_TAG(0x0008, 0x0060)
#define T_STUDY_DESC MT_TAG(0x0008, 0x1030)
#define T_PNAME MT_TAG(0x0010, 0x0010)
#define T_PID MT_TAG(0x0010, 0x0020)
#define T_STUDY MT_TAG(0x0020, 0x000D)
#define T_SERIES MT_TAG(0x0020, 0x000E)
#define T_SERIES_NUMBER MT_TAG(0x0020, 0x0011)
#define T_INSTANCE_NUMBER MT_TAG(0x0020, 0x0013)
#define T_ROWS MT_TAG(0x0028, 0x0010)
#define T_N_STUDY_INST MT_TAG(0x0020, 0x1208)
#define T_N_STUDY_SERIES MT_TAG(0x0020, 0x1206)
#define T_N_PAT_STUDIES MT_TAG(0x0020, 0x1200)
#define T_N_SERIES_INST MT_TAG(0x0020, 0x1209)
#define T_PROC_CODE_SEQ MT_TAG(0x0008, 0x1032)

/* ---- matching semantics ---- */

static void test_match_wildcards(void **state)
{
    (void)state;
    assert_true(mt_query_match(0, "MR", "MR"));
    assert_false(mt_query_match(0, "MR", "mr"));
    assert_false(mt_query_match(0, "MR", "MRI"));
    assert_true(mt_query_match(0, "M*", "MRI"));
    assert_true(mt_query_match(0, "*I", "MRI"));
    assert_true(mt_query_match(0, "M?I", "MRI"));
    assert_false(mt_query_match(0, "M?I", "MI"));
    assert_true(mt_query_match(0, "*", ""));
    assert_true(mt_query_match(0, "a*b*c", "axxbyyc"));
    assert_false(mt_query_match(0, "a*b*c", "axxbyy"));
    assert_true(mt_query_match(0, "**x", "abx"));
    /* '?' is one character, not one byte */
    assert_true(mt_query_match(0, "M?ller", "M\xc3\xbcller"));
    assert_true(mt_query_match(0, "", "anything")); /* universal */
}

static void test_match_pn(void **state)
{
    (void)state;
    assert_true(mt_query_match(MT_QF_PN, "smith^john", "SMITH^JOHN"));
    assert_true(mt_query_match(MT_QF_PN, "SMI*", "Smith^John"));
    assert_false(mt_query_match(MT_QF_PN, "SMITH", "SMITH^JOHN"));
    /* Latin-1 letters fold too; a stored Latin-1 value is read as such */
    assert_true(mt_query_match(MT_QF_PN, "\xc3\xa4neas*", "\xc4neas^R\xfc" "diger"));
    assert_true(mt_query_match(MT_QF_PN, "*R\xc3\xbc" "diger", "\xc4neas^R\xfc" "diger"));
    /* component groups: a one-group query matches the alphabetic group */
    const char *jp = "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e=";
    assert_true(mt_query_match(MT_QF_PN, "Yamada^Tarou", jp));
    assert_true(mt_query_match(MT_QF_PN, "yamada*", jp));
    assert_true(mt_query_match(MT_QF_PN, "=\xe5\xb1\xb1\xe7\x94\xb0*", jp));
    assert_false(mt_query_match(MT_QF_PN, "=Yamada*", jp));
    assert_true(mt_query_match(MT_QF_PN, "Yamada*=\xe5\xb1\xb1*", jp));
    assert_false(mt_query_match(MT_QF_PN, "Suzuki*=\xe5\xb1\xb1*", jp));
}

static void test_match_multi(void **state)
{
    (void)state;
    assert_true(mt_query_match(MT_QF_MULTI, "MR", "CT\\MR"));
    assert_true(mt_query_match(MT_QF_MULTI, "M*", "CT\\MR"));
    assert_false(mt_query_match(MT_QF_MULTI, "PT", "CT\\MR"));
    assert_true(mt_query_match(MT_QF_MULTI | MT_QF_PN, "doe*", "Smith^A\\Doe^B"));
}

static void test_charsets(void **state)
{
    (void)state;
    char *u = mt_query_latin1_to_utf8("M\xfcller", 6);
    assert_string_equal(u, "M\xc3\xbcller");
    char *l = mt_query_utf8_to_latin1(u);
    assert_string_equal(l, "M\xfcller");
    mt_free(u);
    mt_free(l);
    assert_null(mt_query_utf8_to_latin1("\xe5\xb1\xb1"));
    assert_true(mt_query_is_utf8("abc\xc3\xbc", 5));
    assert_false(mt_query_is_utf8("M\xfcller", 6));
    assert_false(mt_query_is_utf8("\xc3", 1));
    /* stored values in their own character set, matched against UTF-8 patterns */
    assert_true(mt_query_match_cs(MT_QF_PN, "Люк*", "\xbb\xee\xda" "ce\xdc\xd1" "yp\xd3", "ISO_IR 144"));
    assert_false(mt_query_match(MT_QF_PN, "Люк*", "\xbb\xee\xda" "ce\xdc\xd1" "yp\xd3"));
    assert_true(mt_query_match_cs(MT_QF_PN, "*=山田^太郎*",
                                  "Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=",
                                  "\\ISO 2022 IR 87"));
    assert_true(mt_query_match_cs(0, "王^小东", "\xcd\xf5^\xd0\xa1\xb6\xab", "GB18030"));
    /* no character set, or the default repertoire: as before (not UTF-8 -> Latin-1) */
    assert_true(mt_query_match_cs(MT_QF_PN, "Müller", "M\xfcller", NULL));
    assert_true(mt_query_match_cs(MT_QF_PN, "Müller", "M\xc3\xbcller", "ISO_IR 6"));
}

/* ---- identifiers ---- */

static mt_ds_t *ident(const char *level)
{
    mt_ds_t *d = mt_ds_new();
    if (level)
        mt_ds_set_string(d, T_QR_LEVEL, MT_VR('C', 'S'), level);
    return d;
}

static const mt_qkey_t *key(const mt_query_t *q, uint32_t tag)
{
    for (size_t i = 0; i < q->n_keys; i++)
        if (q->keys[i].tag == tag)
            return &q->keys[i];
    return NULL;
}

/* PS3.4 C.2.2.2.4: no wild card matching on UI, DA, TM, DT: a '*' or '?' in their value is
 * a literal character of a single value (which no stored value has), also for multi-valued
 * columns (RelatedGeneralSOPClassUID), which are matched by mt_match, not by SQL '=' */
static void test_match_exact_vrs(void **state)
{
    (void)state;
    assert_false(mt_query_match(MT_QF_EXACT, "1.2.*", "1.2.3"));
    assert_false(mt_query_match(MT_QF_EXACT | MT_QF_MULTI, "1.2.*", "1.3\\1.2.3"));
    assert_false(mt_query_match(MT_QF_EXACT | MT_QF_MULTI, "1.2.?", "1.2.3"));
    assert_true(mt_query_match(MT_QF_EXACT | MT_QF_MULTI, "1.2.3", "1.3\\1.2.3"));
    assert_false(mt_query_match(MT_QF_EXACT | MT_QF_MULTI, "1.2", "1.2.3"));

    mt_ds_t *d = ident("IMAGE");
    mt_ds_set_string(d, MT_TAG(0x0008, 0x001A), MT_VR('U', 'I'), "1.2.*");
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, MT_QR_RELATIONAL, &q, &e), 0);
    assert_int_equal(key(q, MT_TAG(0x0008, 0x001A))->match, MT_QM_SINGLE);
    mt_qscope_t scope = {.retrieve_ae = "AE"};
    mt_qsql_t s;
    assert_int_equal(mt_query_sql(q, &scope, MT_QSEL_FIND, 0, &s), 0);
    char want[32];
    snprintf(want, sizeof want, "mt_match(%u, ", MT_QF_MULTI | MT_QF_EXACT);
    assert_non_null(strstr((const char *)s.sql.data, want));
    mt_qsql_dispose(&s);
    mt_query_free(q);
    mt_ds_free(d);
}

static void test_from_ds_classify(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_ds_t *d = ident("STUDY");
    mt_ds_set_string(d, T_PNAME, MT_VR('P', 'N'), "SMITH*");
    mt_ds_set_string(d, T_PID, MT_VR('L', 'O'), "P1");
    mt_ds_set_string(d, T_STUDY_DATE, MT_VR('D', 'A'), "20200101-20201231");
    mt_ds_set_string(d, T_STUDY_TIME, MT_VR('T', 'M'), "-1200");
    mt_ds_set_string(d, T_STUDY, MT_VR('U', 'I'), "1.2.3\\1.2.4");
    mt_ds_set_string(d, T_STUDY_DESC, MT_VR('L', 'O'), "");
    mt_ds_set_string(d, T_MODALITIES, MT_VR('C', 'S'), "MR\\CT");
    mt_ds_set(d, T_N_STUDY_INST, MT_VR('I', 'S'), NULL, 0);
    mt_ds_set(d, T_PROC_CODE_SEQ, MT_VR('S', 'Q'), NULL, 0);
    mt_ds_set(d, T_MODALITY, MT_VR('C', 'S'), NULL, 0); /* series key at study level */
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    assert_int_equal(q->level, MT_LEVEL_STUDY);
    assert_int_equal(key(q, T_PNAME)->match, MT_QM_WILDCARD);
    assert_true(key(q, T_PNAME)->matching);
    assert_int_equal(key(q, T_PID)->match, MT_QM_SINGLE);
    const mt_qkey_t *k = key(q, T_STUDY_DATE);
    assert_int_equal(k->match, MT_QM_RANGE);
    assert_string_equal(k->lo, "20200101");
    assert_string_equal(k->hi, "20201231");
    k = key(q, T_STUDY_TIME);
    assert_int_equal(k->match, MT_QM_RANGE);
    assert_null(k->lo);
    assert_string_equal(k->hi, "1200");
    k = key(q, T_STUDY);
    assert_int_equal(k->match, MT_QM_LIST);
    assert_int_equal(k->n_list, 2);
    assert_int_equal(key(q, T_STUDY_DESC)->match, MT_QM_UNIVERSAL);
    assert_false(key(q, T_STUDY_DESC)->matching);
    assert_int_equal(key(q, T_MODALITIES)->match, MT_QM_LIST);
    assert_true(key(q, T_MODALITIES)->matching);
    assert_int_equal(key(q, T_N_STUDY_INST)->computed, MT_QC_STUDY_INSTANCES);
    assert_int_equal(key(q, T_PROC_CODE_SEQ)->match, MT_QM_SEQUENCE);
    assert_true(key(q, T_MODALITY)->below_level);
    assert_false(q->any_unsupported);
    mt_query_free(q);
    mt_ds_free(d);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_from_ds_refusals(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_query_t *q = NULL;
    mt_query_err_t e;
    mt_ds_t *d = ident(NULL);
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), MT_EINVAL);
    assert_int_equal(e.status, 0xC000);
    assert_int_equal(e.tag, T_QR_LEVEL);
    mt_ds_free(d);

    d = ident("PATIENT"); /* not a level of Study Root */
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), MT_EINVAL);
    assert_int_equal(e.status, 0xA900);
    assert_int_equal(mt_query_from_ds(d, MT_QR_PATIENT_ROOT, &q, &e), 0);
    assert_int_equal(q->level, MT_LEVEL_PATIENT);
    assert_non_null(key(q, T_PID)); /* the level's unique key is always returned */
    mt_query_free(q);
    mt_ds_free(d);

    d = ident("BOGUS");
    assert_int_equal(mt_query_from_ds(d, MT_QR_PATIENT_ROOT, &q, &e), MT_EINVAL);
    assert_int_equal(e.status, 0xA900);
    mt_ds_free(d);

    /* hierarchical: SERIES needs StudyInstanceUID (Study Root) and also PatientID (Patient
     * Root) */
    d = ident("SERIES");
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), MT_EINVAL);
    assert_int_equal(e.tag, T_STUDY);
    mt_ds_set_string(d, T_STUDY, MT_VR('U', 'I'), "1.2.3");
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    mt_query_free(q);
    assert_int_equal(mt_query_from_ds(d, MT_QR_PATIENT_ROOT, &q, &e), MT_EINVAL);
    assert_int_equal(e.tag, T_PID);
    mt_ds_set_string(d, T_PID, MT_VR('L', 'O'), "P*"); /* wildcard: not a unique key value */
    assert_int_equal(mt_query_from_ds(d, MT_QR_PATIENT_ROOT, &q, &e), MT_EINVAL);
    mt_ds_set_string(d, T_PID, MT_VR('L', 'O'), "P1");
    assert_int_equal(mt_query_from_ds(d, MT_QR_PATIENT_ROOT, &q, &e), 0);
    mt_query_free(q);
    assert_int_equal(mt_query_from_ds(d, MT_QR_PATIENT_STUDY_ONLY, &q, &e), MT_EINVAL);
    mt_ds_free(d);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_from_ds_charset_and_unsupported(void **state)
{
    (void)state;
    mt_ds_t *d = ident("STUDY");
    mt_ds_set_string(d, T_CHARSET, MT_VR('C', 'S'), "ISO_IR 100");
    mt_ds_set_string(d, T_PNAME, MT_VR('P', 'N'), "M\xfcller*");
    /* an attribute we do not index, with a value: returned empty, flagged */
    mt_ds_set_string(d, MT_TAG(0x0032, 0x4000), MT_VR('L', 'T'), "comment");
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    assert_string_equal(q->charset, "ISO_IR 100");
    assert_string_equal(key(q, T_PNAME)->value, "M\xc3\xbcller*");
    assert_true(key(q, MT_TAG(0x0032, 0x4000))->unsupported);
    assert_true(q->any_unsupported);
    mt_query_free(q);
    mt_ds_free(d);

    /* a key of a level below the query level with a value (Modality=CT at STUDY level): not
     * matched, so the pending responses must say so (FF01), not pretend it was applied */
    d = ident("STUDY");
    mt_ds_set_string(d, T_MODALITY, MT_VR('C', 'S'), "CT");
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    assert_true(key(q, T_MODALITY)->below_level);
    assert_false(key(q, T_MODALITY)->matching);
    assert_true(q->any_unsupported);
    mt_query_free(q);
    mt_ds_free(d);
}

/* C-MOVE / C-GET: the retrieve level's unique key must carry a value (single or UID list) */
static void test_check_retrieve(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_query_t *q = NULL;
    mt_query_err_t e;
    mt_ds_t *d = ident("STUDY");
    mt_ds_set_string(d, T_PID, MT_VR('L', 'O'), "P1"); /* not the unique key of STUDY */
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0); /* fine for C-FIND */
    assert_int_equal(mt_query_check_retrieve(q, &e), MT_EINVAL);
    assert_int_equal(e.status, 0xA900);
    assert_int_equal(e.tag, T_STUDY);
    assert_non_null(strstr(e.comment, "StudyInstanceUID"));
    mt_query_free(q);
    mt_ds_set_string(d, T_STUDY, MT_VR('U', 'I'), "");
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    assert_int_equal(mt_query_check_retrieve(q, &e), MT_EINVAL);
    mt_query_free(q);
    mt_ds_set_string(d, T_STUDY, MT_VR('U', 'I'), "1.2.3\\1.2.4");
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    assert_int_equal(mt_query_check_retrieve(q, &e), 0);
    mt_query_free(q);
    mt_ds_free(d);
    d = ident("PATIENT");
    assert_int_equal(mt_query_from_ds(d, MT_QR_PATIENT_ROOT, &q, &e), 0);
    assert_int_equal(mt_query_check_retrieve(q, &e), MT_EINVAL);
    assert_int_equal(e.tag, T_PID);
    mt_query_free(q);
    mt_ds_set_string(d, T_PID, MT_VR('L', 'O'), "P1");
    assert_int_equal(mt_query_from_ds(d, MT_QR_PATIENT_ROOT, &q, &e), 0);
    assert_int_equal(mt_query_check_retrieve(q, &e), 0);
    mt_query_free(q);
    mt_ds_free(d);

    /* an IMAGE-level retrieve of 150 instances by a UID list (6.8 KB): all 150 are kept */
    d = ident("IMAGE");
    mt_ds_set_string(d, T_STUDY, MT_VR('U', 'I'), "1.2.3");
    mt_ds_set_string(d, T_SERIES, MT_VR('U', 'I'), "1.2.3.4");
    char *list = mt_malloc(150 * 46 + 1);
    list[0] = 0;
    for (int i = 0; i < 150; i++)
        sprintf(list + strlen(list), "%s2.25.%040d", i ? "\\" : "", i);
    mt_ds_set_string(d, T_SOP, MT_VR('U', 'I'), list);
    mt_free(list);
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    const mt_qkey_t *k = key(q, T_SOP);
    assert_int_equal(k->match, MT_QM_LIST);
    assert_int_equal(k->n_list, 150);
    assert_string_equal(k->list[149], "2.25.0000000000000000000000000000000000000149");
    mt_query_free(q);
    mt_ds_free(d);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_from_text(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    char err[256];
    mt_query_t *q = NULL;
    assert_int_equal(
        mt_query_from_text("StudyDate>=20200101 Modality=MR PatientName=SMITH*", MT_LEVEL_STUDY,
                           &q, err, sizeof err),
        0);
    assert_int_equal(q->level, MT_LEVEL_SERIES); /* Modality is a series key */
    const mt_qkey_t *k = key(q, T_STUDY_DATE);
    assert_int_equal(k->match, MT_QM_RANGE);
    assert_string_equal(k->lo, "20200101");
    assert_null(k->hi);
    mt_query_free(q);
    assert_int_equal(mt_query_from_text("StudyDate>=2020 StudyDate<=2021", MT_LEVEL_STUDY, &q,
                                        err, sizeof err),
                     0);
    k = key(q, T_STUDY_DATE);
    assert_string_equal(k->lo, "2020");
    assert_string_equal(k->hi, "2021");
    mt_query_free(q);
    assert_int_equal(mt_query_from_text("Bogus=1", MT_LEVEL_STUDY, &q, err, sizeof err),
                     MT_EINVAL);
    assert_non_null(strstr(err, "Bogus"));
    assert_int_equal(mt_query_from_text("PatientName>=A", MT_LEVEL_STUDY, &q, err, sizeof err),
                     MT_EINVAL);
    assert_int_equal(mt_query_from_text("PatientName", MT_LEVEL_STUDY, &q, err, sizeof err),
                     MT_EINVAL);
    assert_int_equal(mt_query_from_text("AcquisitionDeviceProcessingCode=X", MT_LEVEL_STUDY, &q,
                                        err, sizeof err),
                     MT_EINVAL);
    /* a list of 40 Study Instance UIDs (`mitral project add --query`): every one is kept,
     * none silently cut off */
    char text[4096] = "StudyInstanceUID=";
    for (int i = 0; i < 40; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s2.25.%040d",
                 i ? "\\" : "", i);
    assert_int_equal(mt_query_from_text(text, MT_LEVEL_STUDY, &q, err, sizeof err), 0);
    k = key(q, T_STUDY);
    assert_int_equal(k->match, MT_QM_LIST);
    assert_int_equal(k->n_list, 40);
    assert_string_equal(k->list[39], "2.25.0000000000000000000000000000000000000039");
    mt_query_free(q);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_sql_shape(void **state)
{
    (void)state;
    mt_ds_t *d = ident("STUDY");
    mt_ds_set_string(d, T_PNAME, MT_VR('P', 'N'), "Smith*");
    mt_ds_set_string(d, T_PID, MT_VR('L', 'O'), "P1");
    mt_ds_set_string(d, T_STUDY_DATE, MT_VR('D', 'A'), "20200101-");
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    mt_qscope_t scope = {.project = "proj", .retrieve_ae = "AE"};
    mt_qsql_t s;
    assert_int_equal(mt_query_sql(q, &scope, MT_QSEL_FIND, 11, &s), 0);
    const char *sql = (const char *)s.sql.data;
    /* keys in tag order: StudyDate, PatientName, PatientID */
    assert_non_null(strstr(sql, "st.study_date >= ?1"));
    /* a patient attribute is matched in the patient row's character set (db/009) */
    assert_non_null(strstr(sql, "p.patient_name >= ?2 AND p.patient_name < ?3 AND mt_match(1, ?4, "
                                "p.patient_name, coalesce(nullif(p.specific_character_set, ''), "));
    assert_string_equal(s.params[1], "smith");
    assert_string_equal(s.params[2], "smiti");
    assert_non_null(strstr(sql, "p.patient_id = ?5"));
    assert_non_null(strstr(sql, "ps.project = ?6"));
    assert_non_null(strstr(sql, "LIMIT 11"));
    assert_int_equal(s.n_params, 6);
    mt_qsql_dispose(&s);
    mt_query_free(q);
    mt_ds_free(d);
}

/* ---- against a real index ---- */

typedef struct fx {
    char dir[64], path[128];
    mt_index_t *ix;
    mt_qdb_t *db;
} fx_t;

static void offer(mt_index_rec_t *r, uint32_t tag, uint16_t vr, const char *s)
{
    mt_index_rec_offer(r, tag, vr, (const uint8_t *)s, strlen(s), false);
}

static void put_instance(fx_t *f, const char *pid, const char *pname, const char *charset,
                         const char *study, const char *date, const char *time,
                         const char *series, const char *modality, int series_no,
                         const char *sop, int inst_no)
{
    mt_index_rec_t *r = mt_index_rec_new();
    if (charset)
        offer(r, T_CHARSET, MT_VR('C', 'S'), charset);
    offer(r, T_PID, MT_VR('L', 'O'), pid);
    offer(r, T_PNAME, MT_VR('P', 'N'), pname);
    offer(r, T_STUDY, MT_VR('U', 'I'), study);
    offer(r, T_STUDY_DATE, MT_VR('D', 'A'), date);
    offer(r, T_STUDY_TIME, MT_VR('T', 'M'), time);
    offer(r, T_STUDY_DESC, MT_VR('L', 'O'), "CMR study");
    offer(r, T_SERIES, MT_VR('U', 'I'), series);
    offer(r, T_MODALITY, MT_VR('C', 'S'), modality);
    char n[16];
    snprintf(n, sizeof n, "%d", series_no);
    offer(r, T_SERIES_NUMBER, MT_VR('I', 'S'), n);
    snprintf(n, sizeof n, "%d", inst_no);
    offer(r, T_INSTANCE_NUMBER, MT_VR('I', 'S'), n);
    uint8_t rows[2] = {0x00, 0x01}; /* 256, US little endian */
    mt_index_rec_offer(r, T_ROWS, MT_VR('U', 'S'), rows, 2, false);
    offer(r, T_SOP, MT_VR('U', 'I'), sop);
    offer(r, T_SOP_CLASS, MT_VR('U', 'I'), "1.2.840.10008.5.1.4.1.1.4");
    char path[128];
    snprintf(path, sizeof path, "x/%s.dcm", sop);
    mt_index_rec_set_file(r, path, 1000, "1.2.840.10008.1.2.1", "1.2.840.10008.5.1.4.1.1.4");
    mt_index_put_result_t res;
    assert_int_equal(f->ix->ops->put(f->ix, r, MT_DUP_OVERWRITE, &res, NULL, 0), 0);
    mt_index_rec_free(r);
}

static int setup_db(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mt-query-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/index.sqlite", f->dir);
    assert_int_equal(mt_index_sqlite_open(f->path, &f->ix), 0);
    assert_int_equal(f->ix->ops->begin(f->ix), 0);
    /* patient P1 (ASCII): study 1.1 (2 series: MR x3, SR x1) and study 1.2 (CT) */
    put_instance(f, "P1", "Smith^John", NULL, "1.1", "20200315", "093000", "1.1.1", "MR", 1,
                 "1.1.1.1", 1);
    put_instance(f, "P1", "Smith^John", NULL, "1.1", "20200315", "093000", "1.1.1", "MR", 1,
                 "1.1.1.2", 2);
    put_instance(f, "P1", "Smith^John", NULL, "1.1", "20200315", "093000", "1.1.1", "MR", 1,
                 "1.1.1.3", 3);
    put_instance(f, "P1", "Smith^John", NULL, "1.1", "20200315", "093000", "1.1.2", "SR", 2,
                 "1.1.2.1", 1);
    put_instance(f, "P1", "Smith^John", NULL, "1.2", "20190101", "140000", "1.2.1", "CT", 1,
                 "1.2.1.1", 1);
    /* patient P2, Latin-1 name */
    put_instance(f, "P2", "M\xfcller^J\xfcrgen", "ISO_IR 100", "2.1", "20210610", "100030",
                 "2.1.1", "MR", 1, "2.1.1.1", 1);
    /* patient P3, UTF-8 name with an ideographic group */
    put_instance(f, "P3", "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e",
                 "ISO_IR 192", "3.1", "20221231", "235959", "3.1.1", "MR", 1, "3.1.1.1", 1);
    assert_int_equal(f->ix->ops->commit(f->ix), 0);
    assert_int_equal(f->ix->ops->mark_verified(f->ix), 0);
    bool added;
    assert_int_equal(f->ix->ops->begin(f->ix), 0);
    assert_int_equal(f->ix->ops->project_add(f->ix, "proj", "1.1", &added), 0);
    assert_true(added);
    assert_int_equal(f->ix->ops->project_add(f->ix, "proj", "1.1", &added), 0);
    assert_false(added);
    assert_int_equal(f->ix->ops->project_add(f->ix, "proj", "3.1", &added), 0);
    assert_int_equal(f->ix->ops->project_add(f->ix, "proj", "9.9", &added), MT_ENOENT);
    assert_int_equal(f->ix->ops->commit(f->ix), 0);
    assert_int_equal(mt_qdb_open(f->path, &f->db), 0);
    *state = f;
    return 0;
}

static int teardown_db(void **state)
{
    fx_t *f = *state;
    mt_qdb_close(f->db);
    f->ix->ops->close(f->ix);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

typedef struct results {
    mt_ds_t *r[32];
    size_t n;
} results_t;

static int collect(void *u, const mt_ds_t *r)
{
    results_t *res = u;
    assert_true(res->n < 32);
    /* keep a copy: encode + parse */
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_ds_encode(r, mt_ts_explicit_le, &b), 0);
    mt_diag_t d;
    assert_int_equal(mt_ds_parse(b.data, b.len, mt_ts_explicit_le, &res->r[res->n++], &d), 0);
    mt_buf_dispose(&b);
    return 0;
}

static void results_free(results_t *res)
{
    for (size_t i = 0; i < res->n; i++)
        mt_ds_free(res->r[i]);
    res->n = 0;
}

static bool has_value(const results_t *res, uint32_t tag, const char *v)
{
    char buf[256];
    for (size_t i = 0; i < res->n; i++)
        if (mt_ds_get_string(res->r[i], tag, buf, sizeof buf) && strcmp(buf, v) == 0)
            return true;
    return false;
}

/* Run a query given as (tag, vr, value) triples. */
static size_t run(fx_t *f, mt_qr_model_t model, const char *level, const char *project,
                  results_t *res, uint32_t max, bool *capped, ...)
{
    mt_ds_t *d = ident(level);
    va_list ap;
    va_start(ap, capped);
    for (;;) {
        uint32_t tag = va_arg(ap, uint32_t);
        if (!tag)
            break;
        int vr = va_arg(ap, int);
        const char *v = va_arg(ap, const char *);
        if (vr == MT_VR('S', 'Q'))
            mt_ds_set(d, tag, (uint16_t)vr, NULL, 0);
        else
            mt_ds_set_string(d, tag, (uint16_t)vr, v);
    }
    va_end(ap);
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, model, &q, &e), 0);
    mt_qscope_t scope = {.project = project, .retrieve_ae = "MITRAL"};
    bool cap = false;
    results_free(res);
    assert_int_equal(mt_qdb_find(f->db, q, &scope, max, collect, res, &cap), 0);
    if (capped)
        *capped = cap;
    mt_query_free(q);
    mt_ds_free(d);
    return res->n;
}

#define PN MT_VR('P', 'N')
#define LO MT_VR('L', 'O')
#define UI MT_VR('U', 'I')
#define DA MT_VR('D', 'A')
#define TM MT_VR('T', 'M')
#define CS MT_VR('C', 'S')
#define IS MT_VR('I', 'S')
#define US MT_VR('U', 'S')
#define SQ MT_VR('S', 'Q')

static void test_exec_levels(void **state)
{
    fx_t *f = *state;
    results_t res = {.n = 0};
    /* PATIENT level, Patient Root, with computed counts */
    assert_int_equal(run(f, MT_QR_PATIENT_ROOT, "PATIENT", NULL, &res, 0, NULL, T_PID, LO, "P1",
                         T_PNAME, PN, "", T_N_PAT_STUDIES, IS, "", 0),
                     1);
    assert_true(has_value(&res, T_PNAME, "Smith^John"));
    assert_true(has_value(&res, T_N_PAT_STUDIES, "2"));
    assert_true(has_value(&res, T_QR_LEVEL, "PATIENT"));
    assert_true(has_value(&res, T_RETRIEVE_AE, "MITRAL"));
    /* STUDY level (Study Root): patient keys are study keys */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_PID, LO, "P1",
                         T_STUDY, UI, "", T_N_STUDY_INST, IS, "", T_N_STUDY_SERIES, IS, "",
                         T_MODALITIES, CS, "", T_PROC_CODE_SEQ, SQ, NULL, 0),
                     2);
    assert_true(has_value(&res, T_N_STUDY_INST, "4"));
    assert_true(has_value(&res, T_N_STUDY_SERIES, "2"));
    assert_true(has_value(&res, T_MODALITIES, "MR\\SR") || has_value(&res, T_MODALITIES, "SR\\MR"));
    for (size_t i = 0; i < res.n; i++) {
        mt_ds_elem_t *sq = mt_ds_get(res.r[i], T_PROC_CODE_SEQ);
        assert_non_null(sq); /* every requested key is in every response */
        assert_int_equal(sq->vr, SQ);
        assert_int_equal(sq->n_items, 0);
    }
    /* SERIES level within a study */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "SERIES", NULL, &res, 0, NULL, T_STUDY, UI, "1.1",
                         T_SERIES, UI, "", T_MODALITY, CS, "", T_N_SERIES_INST, IS, "", 0),
                     2);
    assert_true(has_value(&res, T_N_SERIES_INST, "3"));
    /* another vendor's private key: returned (empty) with its private creator, never an
     * orphan private element (PS3.5 7.8.1) */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "SERIES", NULL, &res, 0, NULL, T_STUDY, UI, "1.1",
                         MT_TAG(0x0009, 0x0010), LO, "ACME 1", MT_TAG(0x0009, 0x1001), LO, "", 0),
                     2);
    for (size_t i = 0; i < res.n; i++) {
        char creator[65];
        assert_non_null(mt_ds_get(res.r[i], MT_TAG(0x0009, 0x1001)));
        assert_true(mt_ds_get_string(res.r[i], MT_TAG(0x0009, 0x0010), creator, sizeof creator));
        assert_string_equal(creator, "ACME 1");
    }
    /* IMAGE level, Patient Root: binary VR re-encoded */
    assert_int_equal(run(f, MT_QR_PATIENT_ROOT, "IMAGE", NULL, &res, 0, NULL, T_PID, LO, "P1",
                         T_STUDY, UI, "1.1", T_SERIES, UI, "1.1.1", T_SOP, UI, "",
                         T_INSTANCE_NUMBER, IS, "2", T_ROWS, US, "", 0),
                     1);
    assert_true(has_value(&res, T_SOP, "1.1.1.2"));
    uint16_t rows = 0;
    assert_true(mt_ds_get_u16(res.r[0], T_ROWS, &rows));
    assert_int_equal(rows, 256);
    results_free(&res);
}

static void test_exec_matching(void **state)
{
    fx_t *f = *state;
    results_t res = {.n = 0};
    /* wildcard, case-insensitive PN */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_PNAME, PN, "smi*",
                         0),
                     2);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_PNAME, PN,
                         "*^J?HN", 0),
                     2);
    /* single value PN, exact but case-insensitive */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_PNAME, PN,
                         "SMITH^JOHN", 0),
                     2);
    /* UTF-8 query against a Latin-1 stored name, and the answer in the stored charset */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_CHARSET, CS,
                         "ISO_IR 192", T_PNAME, PN, "m\xc3\xbcller*", 0),
                     1);
    assert_true(has_value(&res, T_CHARSET, "ISO_IR 100"));
    assert_true(has_value(&res, T_PNAME, "M\xfcller^J\xfcrgen"));
    /* Latin-1 query, exact single value */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_CHARSET, CS,
                         "ISO_IR 100", T_PNAME, PN, "M\xfcller^J\xfcrgen", 0),
                     1);
    /* ideographic group */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_CHARSET, CS,
                         "ISO_IR 192", T_PNAME, PN, "=\xe5\xb1\xb1\xe7\x94\xb0*", 0),
                     1);
    assert_true(has_value(&res, T_CHARSET, "ISO_IR 192"));
    /* date ranges: closed, open both ways; single date */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY_DATE, DA,
                         "20200101-20211231", 0),
                     2);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY_DATE, DA,
                         "20210101-", 0),
                     2);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY_DATE, DA,
                         "-20191231", 0),
                     1);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY_DATE, DA,
                         "20200315", 0),
                     1);
    /* time range: the upper bound is a prefix */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY_TIME, TM,
                         "0900-1000", 0),
                     2); /* 093000 and 100030 */
    /* the lower bound compares by value: a zero fraction matches a stored 093000 (all 4
     * studies: 093000, 100030, 140000, 235959), a fraction above it does not */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY_TIME, TM,
                         "093000.000000-", 0),
                     4);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY_TIME, TM,
                         "093000.5-", 0),
                     3);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY_TIME, TM,
                         "093000.000-093000", 0),
                     1);
    /* UID list */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY, UI,
                         "1.2\\2.1\\9.9", 0),
                     2);
    /* ModalitiesInStudy matching */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_MODALITIES, CS,
                         "CT", 0),
                     1);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_MODALITIES, CS,
                         "SR\\CT", 0),
                     2);
    /* combined keys */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_PID, LO, "P1",
                         T_STUDY_DATE, DA, "2020-", T_MODALITIES, CS, "MR", 0),
                     1);
    results_free(&res);
}

static void test_exec_project_and_cap(void **state)
{
    fx_t *f = *state;
    results_t res = {.n = 0};
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", "proj", &res, 0, NULL, T_STUDY, UI, "", 0),
                     2);
    assert_true(has_value(&res, T_STUDY, "1.1"));
    assert_true(has_value(&res, T_STUDY, "3.1"));
    assert_false(has_value(&res, T_STUDY, "1.2"));
    /* a study outside the project is invisible even by its UID */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", "proj", &res, 0, NULL, T_STUDY, UI, "1.2",
                         0),
                     0);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "SERIES", "proj", &res, 0, NULL, T_STUDY, UI,
                         "1.2", 0),
                     0);
    /* patient level: only patients with a study in the project; counts restricted */
    assert_int_equal(run(f, MT_QR_PATIENT_ROOT, "PATIENT", "proj", &res, 0, NULL, T_PID, LO, "",
                         T_N_PAT_STUDIES, IS, "", 0),
                     2);
    assert_true(has_value(&res, T_N_PAT_STUDIES, "1"));
    assert_false(has_value(&res, T_PID, "P2"));
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", "other", &res, 0, NULL, 0), 0);
    /* the cap */
    bool capped = false;
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 3, &capped, 0), 3);
    assert_true(capped);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 4, &capped, 0), 4);
    assert_false(capped);
    /* project stats */
    mt_index_stats_t st;
    assert_int_equal(f->ix->ops->project_stats(f->ix, "proj", &st), 0);
    assert_int_equal(st.studies, 2);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.instances, 5);
    assert_int_equal(st.patients, 2);
    assert_int_equal(st.bytes, 5000);
    results_free(&res);
}

/* The counts kept by the triggers of db/003 follow removals (and the pruning of an emptied
 * series) and re-ingest. */
static void test_counts_follow_changes(void **state)
{
    fx_t *f = *state;
    results_t res = {.n = 0};
    assert_int_equal(f->ix->ops->remove(f->ix, "1.1.1.3"), 0);
    assert_int_equal(f->ix->ops->remove(f->ix, "1.1.2.1"), 0); /* the SR series goes too */
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY, UI, "1.1",
                         T_N_STUDY_INST, IS, "", T_N_STUDY_SERIES, IS, "", T_MODALITIES, CS, "",
                         0),
                     1);
    assert_true(has_value(&res, T_N_STUDY_INST, "2"));
    assert_true(has_value(&res, T_N_STUDY_SERIES, "1"));
    assert_true(has_value(&res, T_MODALITIES, "MR"));
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "SERIES", NULL, &res, 0, NULL, T_STUDY, UI, "1.1",
                         T_N_SERIES_INST, IS, "", 0),
                     1);
    assert_true(has_value(&res, T_N_SERIES_INST, "2"));
    /* the same instance again (overwrite): counted once */
    assert_int_equal(f->ix->ops->begin(f->ix), 0);
    put_instance(f, "P1", "Smith^John", NULL, "1.1", "20200315", "093000", "1.1.1", "MR", 1,
                 "1.1.1.2", 2);
    put_instance(f, "P1", "Smith^John", NULL, "1.1", "20200315", "093000", "1.1.3", "CT", 3,
                 "1.1.3.1", 1);
    assert_int_equal(f->ix->ops->commit(f->ix), 0);
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY, UI, "1.1",
                         T_N_STUDY_INST, IS, "", T_N_STUDY_SERIES, IS, "", T_MODALITIES, CS, "",
                         T_N_PAT_STUDIES, IS, "", 0),
                     1);
    assert_true(has_value(&res, T_N_STUDY_INST, "3"));
    assert_true(has_value(&res, T_N_STUDY_SERIES, "2"));
    assert_true(has_value(&res, T_MODALITIES, "CT\\MR"));
    results_free(&res);
}

static int count_uid(void *u, const char *uid)
{
    (void)uid;
    (*(int *)u)++;
    return 0;
}

static int count_inst(void *u, const mt_qdb_instance_t *in)
{
    assert_non_null(in->path);
    (*(int *)u)++;
    return 0;
}

static void test_exec_instances_and_text(void **state)
{
    fx_t *f = *state;
    mt_ds_t *d = ident("STUDY");
    mt_ds_set_string(d, T_STUDY, MT_VR('U', 'I'), "1.1");
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    int n = 0;
    mt_qscope_t all = {NULL, NULL}, proj = {"proj", NULL}, other = {"other", NULL};
    assert_int_equal(mt_qdb_instances(f->db, q, &all, count_inst, &n), 0);
    assert_int_equal(n, 4);
    n = 0;
    assert_int_equal(mt_qdb_instances(f->db, q, &proj, count_inst, &n), 0);
    assert_int_equal(n, 4);
    n = 0;
    assert_int_equal(mt_qdb_instances(f->db, q, &other, count_inst, &n), 0);
    assert_int_equal(n, 0);
    mt_query_free(q);
    mt_ds_free(d);

    char err[256];
    assert_int_equal(mt_query_from_text("StudyDate>=20200101 Modality=MR", MT_LEVEL_STUDY, &q,
                                        err, sizeof err),
                     0);
    n = 0;
    assert_int_equal(mt_qdb_study_uids(f->db, q, &all, count_uid, &n), 0);
    assert_int_equal(n, 3); /* 1.1, 2.1, 3.1 */
    mt_query_free(q);
}

/* CMR tag / view keys (issue 5): at STUDY level of a hierarchical model they are matched
 * (studies having such a series) and C-MOVE / C-GET get the instances of those series only;
 * at PATIENT and STUDY level of C-FIND the entities having at least one such series. */
#define T_CMR_CREATOR MT_TAG(MT_CMR_GROUP, 0x0010)
#define T_CMR_TAG MT_TAG(MT_CMR_GROUP, 0x1010)
#define T_CMR_VIEW MT_TAG(MT_CMR_GROUP, 0x1011)

static void put_tag(fx_t *f, const char *study, const char *series, const char *tag,
                    const char *view)
{
    mt_index_tag_t t = {.study_uid = study, .series_uid = series, .tag = tag, .view = view,
                        .evidence = "", .version = "cmr-test", .confidence = 0.9};
    assert_int_equal(f->ix->ops->tag_put(f->ix, &t, NULL), 0);
}

static int cmr_instances(fx_t *f, const char *level, const char *study, const char *series,
                         const char *tag, const char *view)
{
    mt_ds_t *d = ident(level);
    mt_ds_set_string(d, T_STUDY, UI, study);
    if (series)
        mt_ds_set_string(d, T_SERIES, UI, series);
    mt_ds_set_string(d, T_CMR_CREATOR, LO, MT_CMR_CREATOR);
    if (tag)
        mt_ds_set_string(d, T_CMR_TAG, LO, tag);
    if (view)
        mt_ds_set_string(d, T_CMR_VIEW, CS, view);
    mt_query_t *q = NULL;
    mt_query_err_t e;
    assert_int_equal(mt_query_from_ds(d, MT_QR_STUDY_ROOT, &q, &e), 0);
    assert_false(q->any_unsupported);
    const mt_qkey_t *k = key(q, tag ? T_CMR_TAG : T_CMR_VIEW);
    assert_non_null(k);
    assert_int_equal(k->matching, strcmp(tag ? tag : view, "*") != 0); /* '*': universal */
    assert_false(key(q, T_CMR_CREATOR)->matching);
    mt_qscope_t all = {NULL, NULL};
    int n = 0;
    assert_int_equal(mt_qdb_instances(f->db, q, &all, count_inst, &n), 0);
    mt_query_free(q);
    mt_ds_free(d);
    return n;
}

static void test_exec_cmr_keys(void **state)
{
    fx_t *f = *state;
    assert_int_equal(f->ix->ops->begin(f->ix), 0);
    put_tag(f, "1.1", "1.1.1", "cine.sax", "sax");
    put_tag(f, "1.1", "1.1.2", "lge.psir", "4ch");
    put_tag(f, "2.1", "2.1.1", "cine.4ch", "4ch");
    assert_int_equal(f->ix->ops->commit(f->ix), 0);

    /* C-MOVE / C-GET at STUDY level: only the series whose tag matches */
    assert_int_equal(cmr_instances(f, "STUDY", "1.1", NULL, "cine.sax", NULL), 3);
    assert_int_equal(cmr_instances(f, "STUDY", "1.1", NULL, "LGE.*", NULL), 1);
    assert_int_equal(cmr_instances(f, "STUDY", "1.1", NULL, "cine.sax\\lge.*", NULL), 4);
    assert_int_equal(cmr_instances(f, "STUDY", "1.1", NULL, "cine.4ch", NULL), 0);
    assert_int_equal(cmr_instances(f, "STUDY", "1.1\\2.1", NULL, "cine.*", NULL), 4);
    assert_int_equal(cmr_instances(f, "STUDY", "1.1\\2.1", NULL, NULL, "4ch"), 2);
    assert_int_equal(cmr_instances(f, "STUDY", "1.2", NULL, "*", NULL), 1); /* universal */
    /* SERIES level: the listed series that match */
    assert_int_equal(cmr_instances(f, "SERIES", "1.1", "1.1.1\\1.1.2", "lge.?sir", NULL), 1);

    /* C-FIND / QIDO at STUDY and PATIENT level: entities having such a series */
    results_t res = {0};
    assert_int_equal(run(f, MT_QR_STUDY_ROOT, "STUDY", NULL, &res, 0, NULL, T_STUDY, UI, "",
                         T_CMR_CREATOR, LO, MT_CMR_CREATOR, T_CMR_TAG, LO, "cine.*", 0),
                     2);
    assert_true(has_value(&res, T_STUDY, "1.1"));
    assert_true(has_value(&res, T_STUDY, "2.1"));
    assert_int_equal(run(f, MT_QR_RELATIONAL, "STUDY", NULL, &res, 0, NULL, T_CMR_VIEW, CS,
                         "sax", 0),
                     1);
    assert_int_equal(run(f, MT_QR_PATIENT_ROOT, "PATIENT", NULL, &res, 0, NULL, T_PID, LO, "",
                         T_CMR_TAG, LO, "lge.*", 0),
                     1);
    assert_true(has_value(&res, T_PID, "P1"));
    /* INSTANCE level: the instances of the matching series, tag returned */
    assert_int_equal(run(f, MT_QR_RELATIONAL, "IMAGE", NULL, &res, 0, NULL, T_CMR_CREATOR, LO,
                         "", T_CMR_TAG, LO, "cine.4ch", 0),
                     1);
    assert_true(has_value(&res, T_CMR_TAG, "cine.4ch"));
    assert_true(has_value(&res, T_CMR_CREATOR, MT_CMR_CREATOR));
    results_free(&res);
}

/* No query of the usual kinds may scan the instances or series tables. */
static void test_explain_uses_indexes(void **state)
{
    fx_t *f = *state;
    struct {
        const char *level;
        mt_qr_model_t model;
        uint32_t tag1;
        uint16_t vr1;
        const char *v1;
        uint32_t tag2;
        uint16_t vr2;
        const char *v2;
    } cases[] = {
        {"STUDY", MT_QR_STUDY_ROOT, T_PID, LO, "P1", 0, 0, NULL},
        {"STUDY", MT_QR_STUDY_ROOT, T_STUDY_DATE, DA, "20200101-20201231", 0, 0, NULL},
        {"STUDY", MT_QR_STUDY_ROOT, T_PNAME, PN, "SMI*", 0, 0, NULL},
        {"STUDY", MT_QR_STUDY_ROOT, T_STUDY, UI, "1.1", 0, 0, NULL},
        {"STUDY", MT_QR_STUDY_ROOT, T_MODALITIES, CS, "MR", T_STUDY_DATE, DA, "2020-"},
        {"SERIES", MT_QR_STUDY_ROOT, T_STUDY, UI, "1.1", 0, 0, NULL},
        {"IMAGE", MT_QR_STUDY_ROOT, T_STUDY, UI, "1.1", T_SERIES, UI, "1.1.1"},
        {"PATIENT", MT_QR_PATIENT_ROOT, T_PNAME, PN, "SMI*", 0, 0, NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int with_project = 0; with_project < 2; with_project++) {
            mt_ds_t *d = ident(cases[c].level);
            mt_ds_set_string(d, cases[c].tag1, cases[c].vr1, cases[c].v1);
            if (cases[c].tag2)
                mt_ds_set_string(d, cases[c].tag2, cases[c].vr2, cases[c].v2);
            /* the returned keys of a typical workstation query, with counts */
            mt_ds_set(d, T_PNAME, PN, NULL, 0);
            if (strcmp(cases[c].level, "STUDY") == 0) {
                mt_ds_set(d, T_N_STUDY_INST, IS, NULL, 0);
                mt_ds_set(d, T_MODALITIES, CS, NULL, 0);
                if (cases[c].tag1 != T_MODALITIES)
                    mt_ds_set(d, T_MODALITIES, CS, NULL, 0);
            }
            if (strcmp(cases[c].level, "SERIES") == 0)
                mt_ds_set(d, T_N_SERIES_INST, IS, NULL, 0);
            if (strcmp(cases[c].level, "STUDY") == 0 && cases[c].tag1 == T_PNAME)
                mt_ds_set_string(d, T_PNAME, PN, cases[c].v1);
            if (cases[c].tag1 == T_PNAME || cases[c].tag1 == T_PID || cases[c].tag2 == T_PID) {
                /* keep the matching value set above */
                mt_ds_set_string(d, cases[c].tag1, cases[c].vr1, cases[c].v1);
            }
            mt_query_t *q = NULL;
            mt_query_err_t e;
            if (strcmp(cases[c].level, "IMAGE") == 0 || strcmp(cases[c].level, "SERIES") == 0) {
                /* Study Root: StudyInstanceUID given above */
            }
            assert_int_equal(mt_query_from_ds(d, cases[c].model, &q, &e), 0);
            mt_qscope_t scope = {with_project ? "proj" : NULL, NULL};
            mt_buf_t plan;
            mt_buf_init(&plan, 1 << 20);
            assert_int_equal(mt_qdb_explain(f->db, q, &scope, MT_QSEL_FIND, &plan), 0);
            mt_buf_append(&plan, "", 1);
            const char *p = (const char *)plan.data;
            /* "SCAN i" / "SCAN instances" / "SCAN se" would mean reading every row */
            if (strstr(p, "SCAN i ") || strstr(p, "SCAN i\n") || strstr(p, "SCAN instances") ||
                strstr(p, "SCAN se ") || strstr(p, "SCAN se\n") || strstr(p, "SCAN series") ||
                strstr(p, "SCAN i2") || strstr(p, "SCAN e2"))
                fail_msg("case %zu (project %d) scans a big table:\n%s", c, with_project, p);
            if (cases[c].tag1 != T_PNAME || strcmp(cases[c].level, "PATIENT") != 0) {
                if (strstr(p, "SCAN st") && cases[c].tag1 != T_MODALITIES)
                    fail_msg("case %zu (project %d) scans studies:\n%s", c, with_project, p);
            }
            mt_buf_dispose(&plan);
            mt_query_free(q);
            mt_ds_free(d);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_wildcards),
        cmocka_unit_test(test_match_pn),
        cmocka_unit_test(test_match_multi),
        cmocka_unit_test(test_match_exact_vrs),
        cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_from_ds_classify),
        cmocka_unit_test(test_from_ds_refusals),
        cmocka_unit_test(test_from_ds_charset_and_unsupported),
        cmocka_unit_test(test_check_retrieve),
        cmocka_unit_test(test_from_text),
        cmocka_unit_test(test_sql_shape),
        cmocka_unit_test_setup_teardown(test_exec_levels, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_exec_matching, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_exec_project_and_cap, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_exec_instances_and_text, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_explain_uses_indexes, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_exec_cmr_keys, setup_db, teardown_db),
        cmocka_unit_test_setup_teardown(test_counts_follow_changes, setup_db, teardown_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
