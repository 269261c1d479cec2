/* Unit tests for node/dicom/charset.c: Specific Character Set text to UTF-8, with the person
 * names of PS3.5 Annexes H (Japanese), I (Korean) and J (Chinese) and the single-byte sets
 * (the byte strings are those of pydicom's charset test files; the expected text is pydicom's
 * decoding of them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/charset.h"
#include "util/alloc.h"
#include "util/err.h"

static char *conv(const char *charset, const char *s, bool pn)
{
    mt_charset_t cs;
    assert_int_equal(mt_charset_parse(charset, strlen(charset), &cs), 0);
    static char out[512];
    char *u = mt_charset_to_utf8(&cs, s, strlen(s), pn);
    snprintf(out, sizeof out, "%s", u);
    mt_free(u);
    return out;
}

static void test_single_byte(void **st)
{
    (void)st;
    assert_string_equal(conv("ISO_IR 100", "Buc^J\xe9r\xf4me", true), "Buc^Jérôme");
    assert_string_equal(conv("ISO_IR 126", "\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2", true),
                        "Διονυσιος");
    assert_string_equal(conv("ISO_IR 144", "\xbb\xee\xda" "ce\xdc\xd1" "yp\xd3", true), "Люкceмбypг");
    assert_string_equal(conv("ISO_IR 127", "\xe2\xc8\xc7\xe6\xea^\xe4\xe6\xd2\xc7\xd1", true),
                        "قباني^لنزار");
    assert_string_equal(conv("ISO_IR 138", "\xf9\xf8\xe5\xef^\xe3\xe1\xe5\xf8\xe4", true),
                        "שרון^דבורה");
    /* no G1 set declared: 8-bit bytes as ISO 8859-1 */
    assert_string_equal(conv("", "M\xfcller", false), "Müller");
}

static void test_japanese(void **st)
{
    (void)st;
    /* PS3.5 H.3.1: \ISO 2022 IR 87 */
    assert_string_equal(
        conv("\\ISO 2022 IR 87",
             "Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
             true),
        "Yamada^Tarou=山田^太郎=やまだ^たろう");
    /* PS3.5 H.3.2: ISO 2022 IR 13\ISO 2022 IR 87: katakana in G1, JIS X 0201 Roman in G0 */
    assert_string_equal(
        conv("ISO 2022 IR 13\\ISO 2022 IR 87",
             "\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^"
             "\x1b$B$?$m$&\x1b(J",
             true),
        "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう");
    /* ISO_IR 13 without extensions */
    assert_string_equal(conv("ISO_IR 13", "\xd4\xcf\xc0\xde", false), "ﾔﾏﾀﾞ");
}

static void test_korean_chinese(void **st)
{
    (void)st;
    /* PS3.5 I.2: \ISO 2022 IR 149, G1 designated again in each component */
    assert_string_equal(conv("\\ISO 2022 IR 149",
                             "Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^"
                             "\x1b$)C\xb1\xe6\xb5\xbf",
                             true),
                        "Hong^Gildong=洪^吉洞=홍^길동");
    /* PS3.5 J.3: GB18030 */
    assert_string_equal(conv("GB18030", "Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=", true),
                        "Wang^XiaoDong=王^小东=");
    /* GB 2312 in G1 under code extensions (PS3.5 K) */
    assert_string_equal(conv("\\ISO 2022 IR 58", "\x1b$)A\xcd\xf5^\x1b$)A\xd0\xa1\xb6\xab", true),
                        "王^小东");
}

static void test_utf8_and_delimiters(void **st)
{
    (void)st;
    assert_string_equal(conv("ISO_IR 192", "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe6\x9d\xb1=",
                             true),
                        "Wang^XiaoDong=王^小東=");
    /* a byte that is not UTF-8 under ISO_IR 192: read as Latin-1, the rest kept */
    assert_string_equal(conv("ISO_IR 192", "A\xe9Z", false), "AéZ");
    /* the initial sets are back after a value delimiter: G1 (KS X 1001) is undone by the '\\',
     * so the second value's 8-bit bytes are Latin-1 again */
    assert_string_equal(conv("\\ISO 2022 IR 149", "\x1b$)C\xfb\xf3\\\xfb\xf3", false), "洪\\ûó");
    /* ... and in a PN after '^' */
    assert_string_equal(conv("\\ISO 2022 IR 149", "\x1b$)C\xfb\xf3^\xfb\xf3", true), "洪^ûó");
    /* a delimiter byte inside a two-byte G0 character is part of the character: "^$" (0x5E
     * 0x24) after ESC $ B is the kanji U+6CD9, not a component delimiter */
    mt_charset_t cs;
    mt_charset_parse("\\ISO 2022 IR 87", 15, &cs);
    char *u = mt_charset_to_utf8(&cs, "\x1b$B^$\x1b(B", 8, true);
    assert_string_equal(u, "泙");
    mt_free(u);
}

static void test_plain_and_errors(void **st)
{
    (void)st;
    mt_charset_t cs;
    assert_int_equal(mt_charset_parse("ISO_IR 100", 10, &cs), 0);
    assert_true(mt_charset_plain(&cs, "ASCII only", 10));
    assert_false(mt_charset_plain(&cs, "\xe9", 1));
    assert_int_equal(mt_charset_parse("ISO_IR 192 ", 11, &cs), 0);
    assert_true(mt_charset_plain(&cs, "\xc3\xa9", 2));
    assert_false(mt_charset_plain(&cs, "\xc3", 1));
    assert_false(mt_charset_plain(&cs, "\xe9t\xe9", 3));
    assert_int_equal(mt_charset_parse("\\ISO 2022 IR 87", 15, &cs), 0);
    assert_false(mt_charset_plain(&cs, "\x1b$B;3\x1b(B", 8)); /* ESC: not plain */
    assert_int_equal(mt_charset_parse("KLINGON", 7, &cs), MT_EINVAL);
    char *u = mt_charset_to_utf8(&cs, "abc\xe9", 4, false); /* unknown term: the default */
    assert_string_equal(u, "abcé");
    mt_free(u);
    /* an unknown escape sequence is dropped, the text goes on */
    assert_int_equal(mt_charset_parse("\\ISO 2022 IR 87", 15, &cs), 0);
    u = mt_charset_to_utf8(&cs, "a\x1b" "b", 3, false);
    assert_string_equal(u, "ab");
    mt_free(u);
    /* a lone ESC at the end, a truncated two-byte character */
    u = mt_charset_to_utf8(&cs, "\x1b$B;", 4, false);
    assert_string_equal(u, ";");
    mt_free(u);
    mt_charset_parse("\\ISO 2022 IR 149", 16, &cs);
    u = mt_charset_to_utf8(&cs, "\x1b$)C\xfb", 5, false);
    assert_string_equal(u, "\xef\xbf\xbd");
    mt_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_byte),
        cmocka_unit_test(test_japanese),
        cmocka_unit_test(test_korean_chinese),
        cmocka_unit_test(test_utf8_and_delimiters),
        cmocka_unit_test(test_plain_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
