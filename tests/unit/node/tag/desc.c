/* Unit tests for node/tag/desc.c: every vocabulary entry is found by the tokenizer (the T
 * entries through the by-length index), alone, in lower case, and among other words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tag/tag.h"

static void test_every_word_matches_itself(void **state)
{
    (void)state;
    for (int id = 0; id < MT_W_COUNT; id++) {
        if (id == MT_W_V_BN)
            continue; /* not a literal: set by a B<digits> token (below) */
        const char *w = mt_tag_word_str(id);
        char lower[128], framed[160];
        size_t n = strlen(w);
        assert_true(n < sizeof lower);
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] - 'A' + 'a' : w[i]);
        snprintf(framed, sizeof framed, "zzq %s qzz", w);
        const char *texts[] = {w, lower, framed};
        for (size_t t = 0; t < 3; t++) {
            mt_tag_words_t got;
            memset(&got, 0, sizeof got);
            mt_tag_words_scan(texts[t], &got);
            if (!mt_tag_words_has(&got, id))
                fail_msg("word %d \"%s\" not found in \"%s\"", id, w, texts[t]);
        }
    }
    mt_tag_words_t bn;
    memset(&bn, 0, sizeof bn);
    mt_tag_words_scan("CINE_segmented_SAX_b7", &bn);
    assert_true(mt_tag_words_has(&bn, MT_W_V_BN));
}

static void test_no_word_in_unrelated_text(void **state)
{
    (void)state;
    mt_tag_words_t got;
    memset(&got, 0, sizeof got);
    mt_tag_words_scan("zzq qzz xyzzy", &got);
    for (int id = 0; id < MT_W_COUNT; id++)
        assert_false(mt_tag_words_has(&got, id));
    /* a token longer than any entry is compared with none */
    memset(&got, 0, sizeof got);
    mt_tag_words_scan("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOP", &got);
    for (int id = 0; id < MT_W_COUNT; id++)
        assert_false(mt_tag_words_has(&got, id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_word_matches_itself),
        cmocka_unit_test(test_no_word_in_unrelated_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
