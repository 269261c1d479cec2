/* Unit tests for node/util/crc32c.c: known CRC-32C values, both implementations agree at every
 * length and alignment, and a crc continued over pieces equals the crc of the whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/crc32c.h"

static void test_known_values(void **state)
{
    (void)state;
    assert_int_equal(mt_crc32c(0, "123456789", 9), 0xE3069283u); /* the check value */
    assert_int_equal(mt_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(mt_crc32c(0, "", 0), 0);
    uint8_t z[32] = {0}, f[32];
    memset(f, 0xFF, sizeof f);
    assert_int_equal(mt_crc32c(0, z, sizeof z), 0x8A9136AAu); /* RFC 3720 B.4 */
    assert_int_equal(mt_crc32c(0, f, sizeof f), 0x62A8AB43u);
    uint8_t inc[32];
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    assert_int_equal(mt_crc32c_sw(0, inc, sizeof inc), 0x46DD794Eu);
    assert_int_equal(mt_crc32c(0, inc, sizeof inc), 0x46DD794Eu);
}

static void test_implementations_agree(void **state)
{
    (void)state;
    static uint8_t buf[4096 + 16];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n < 200; n++)
            assert_int_equal(mt_crc32c(0, buf + off, n), mt_crc32c_sw(0, buf + off, n));
    assert_int_equal(mt_crc32c(0, buf + 3, 4096), mt_crc32c_sw(0, buf + 3, 4096));
    /* pieces of every size continue to the crc of the whole */
    uint32_t whole = mt_crc32c(0, buf, 4096);
    for (size_t cut = 0; cut <= 4096; cut += 97) {
        assert_int_equal(mt_crc32c(mt_crc32c(0, buf, cut), buf + cut, 4096 - cut), whole);
        assert_int_equal(mt_crc32c_sw(mt_crc32c(0, buf, cut), buf + cut, 4096 - cut), whole);
    }
    /* one flipped bit or one zeroed block changes it */
    buf[1000] ^= 0x10;
    assert_true(mt_crc32c(0, buf, 4096) != whole);
    buf[1000] ^= 0x10;
    memset(buf + 512, 0, 512);
    assert_true(mt_crc32c(0, buf, 4096) != whole);
}

/* Lengths around the interleaved lanes' block (3 x 1 KiB) and well past it, at every
 * alignment, and pieces of a large buffer: the same values as the table version. */
static void test_large_buffers(void **state)
{
    (void)state;
    static uint8_t buf[140000 + 16];
    uint32_t x = 777;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    static const size_t lens[] = {3071, 3072, 3073, 3079, 6143, 6144, 6151, 9216, 40000,
                                  132684, 140000};
    for (size_t off = 0; off < 9; off++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            assert_int_equal(mt_crc32c(0, buf + off, lens[i]),
                             mt_crc32c_sw(0, buf + off, lens[i]));
    uint32_t whole = mt_crc32c_sw(0, buf, 140000);
    for (size_t cut = 0; cut <= 140000; cut += 4999)
        assert_int_equal(mt_crc32c(mt_crc32c(0, buf, cut), buf + cut, 140000 - cut), whole);
    buf[70000] ^= 1;
    assert_true(mt_crc32c(0, buf, 140000) != whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_implementations_agree),
        cmocka_unit_test(test_large_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
