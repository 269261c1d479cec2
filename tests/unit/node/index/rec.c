/* tests for node/index/rec.c: the record keeps the index keys of an instance; the values of
 * charset-dependent VRs are stored as UTF-8 (every charset of David Clunie's samples in
 * /work/shared/testdata/pydicom/charset_files, expected strings as pydicom 2.3 decodes them,
 * trailing empty component groups kept as received),
 * undeclared or undecodable bytes as ISO 8859-1, and cut at the cap on a character boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dicom/ds.h"
#include "index/index.h"
#include "index/rebuild.h"
#include "util/alloc.h"
#include "util/err.h"

#define CHARSETS MT_SOURCE_DIR "/../shared/testdata/pydicom/charset_files/"
#define T_CS MT_TAG(0x0008, 0x0005)
#define T_PNAME MT_TAG(0x0010, 0x0010)
#define T_PID MT_TAG(0x0010, 0x0020)
#define T_COMMENTS MT_TAG(0x0010, 0x4000)
#define T_MODALITY MT_TAG(0x0008, 0x0060)

static void offer(mt_index_rec_t *r, uint32_t tag, uint16_t vr, const char *s)
{
    mt_index_rec_offer(r, tag, vr, (const uint8_t *)s, strlen(s), false);
}

static void test_charset_files(void **state)
{
    (void)state;
    static const struct {
        const char *file, *name;
    } cases[] = {
        {"chrArab.dcm", "قباني^لنزار"},
        {"chrFren.dcm", "Buc^Jérôme"},
        {"chrFrenMulti.dcm", "Buc^Jérôme"},
        {"chrGerm.dcm", "Äneas^Rüdiger"},
        {"chrGreek.dcm", "Διονυσιος"},
        {"chrH31.dcm", "Yamada^Tarou=山田^太郎=やまだ^たろう"},
        {"chrH32.dcm", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"},
        {"chrHbrw.dcm", "שרון^דבורה"},
        {"chrI2.dcm", "Hong^Gildong=洪^吉洞=홍^길동"},
        {"chrJapMulti.dcm", "やまだ^たろう"},
        {"chrJapMultiExplicitIR6.dcm", "やまだ^たろう"},
        {"chrKoreanMulti.dcm", "김희중"},
        {"chrRuss.dcm", "Люкceмбypг"},
        {"chrX1.dcm", "Wang^XiaoDong=王^小東="},
        {"chrX2.dcm", "Wang^XiaoDong=王^小东="},
    };
    if (access(CHARSETS "chrX2.dcm", R_OK) != 0)
        skip();
    long live = mt_alloc_live();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s%s", CHARSETS, cases[i].file);
        mt_index_rec_t *r = mt_index_rec_new();
        mt_meta_t meta;
        int rc = mt_index_read_file(p, &meta, r, NULL);
        if (rc)
            fail_msg("%s: %s", cases[i].file, mt_strerror(rc));
        const char *got = mt_index_rec_get(r, T_PNAME);
        if (!got || strcmp(got, cases[i].name) != 0)
            fail_msg("%s: PatientName '%s', want '%s'", cases[i].file, got ? got : "(none)",
                     cases[i].name);
        mt_index_rec_free(r);
    }
    assert_int_equal(mt_alloc_live(), live);
}

static void test_fallbacks(void **state)
{
    (void)state;
    mt_index_rec_t *r = mt_index_rec_new();
    /* no Specific Character Set, Latin-1 bytes (common in the wild) */
    offer(r, T_PNAME, MT_VR('P', 'N'), "M\xfcller^J\xf6rg");
    assert_string_equal(mt_index_rec_get(r, T_PNAME), "Müller^Jörg");
    /* undeclared but UTF-8: kept */
    offer(r, T_PNAME, MT_VR('P', 'N'), "Müller");
    assert_string_equal(mt_index_rec_get(r, T_PNAME), "Müller");
    /* declared UTF-8 that is not: read as Latin-1 */
    offer(r, T_CS, MT_VR('C', 'S'), "ISO_IR 192");
    offer(r, T_PNAME, MT_VR('P', 'N'), "Caf\xe9");
    assert_string_equal(mt_index_rec_get(r, T_PNAME), "Café");
    /* an unknown escape sequence: Latin-1 too, still valid UTF-8 */
    offer(r, T_CS, MT_VR('C', 'S'), "\\ISO 2022 IR 87");
    offer(r, T_PNAME, MT_VR('P', 'N'), "a\x1b$Zb");
    assert_string_equal(mt_index_rec_get(r, T_PNAME), "a\x1b$Zb");
    /* ISO 2022 IR 100: Latin-1 in G1 */
    offer(r, T_CS, MT_VR('C', 'S'), "ISO 2022 IR 100");
    offer(r, T_PNAME, MT_VR('P', 'N'), "Buc^J\xe9r\xf4me");
    assert_string_equal(mt_index_rec_get(r, T_PNAME), "Buc^Jérôme");
    /* the charset applies to text VRs only: a CS value is not converted (ASCII anyway) */
    offer(r, T_MODALITY, MT_VR('C', 'S'), "MR");
    assert_string_equal(mt_index_rec_get(r, T_MODALITY), "MR");
    /* Latin-1 PatientID (LO) and multi-valued names */
    offer(r, T_CS, MT_VR('C', 'S'), "ISO_IR 100");
    offer(r, T_PID, MT_VR('L', 'O'), "\xc5se ");
    assert_string_equal(mt_index_rec_get(r, T_PID), "Åse");
    /* the cap never cuts a character in two */
    char big[2100];
    for (size_t i = 0; i + 1 < sizeof big; i++)
        big[i] = (char)0xe9; /* é: two bytes each in UTF-8 */
    big[sizeof big - 1] = '\0';
    offer(r, T_COMMENTS, MT_VR('L', 'T'), big);
    const char *v = mt_index_rec_get(r, T_COMMENTS);
    assert_int_equal(strlen(v), 1024);
    assert_int_equal((uint8_t)v[1022], 0xc3);
    mt_index_rec_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_charset_files),
        cmocka_unit_test(test_fallbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
