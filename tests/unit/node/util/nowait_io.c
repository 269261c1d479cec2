/* Unit tests for node/util/nowait_io.c: a file just written opens from the lookup cache and
 * reads without blocking (its bytes, a short read at the end); a missing file is an error,
 * never an fd; a kernel without openat2 RESOLVE_CACHED (before 5.12) skips the open part. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/nowait_io.h"

static char dir[64], path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mt-nowait-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/f.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 20000; i++)
        fputc(i & 0xFF, f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static void test_cached_file(void **state)
{
    (void)state;
    int fd = mt_open_cached(path);
    if (fd < 0 && errno == ENOSYS)
        skip(); /* the kernel lacks openat2 RESOLVE_CACHED */
    assert_true(fd >= 0);
    unsigned char buf[16384];
    assert_int_equal(mt_pread_nowait(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], i & 0xFF);
    /* at the end of the file: what is left */
    assert_int_equal(mt_pread_nowait(fd, buf, sizeof buf, 16384), 20000 - 16384);
    assert_int_equal(buf[0], 16384 & 0xFF);
    assert_int_equal(mt_pread_nowait(fd, buf, sizeof buf, 20000), 0);
    close(fd);
}

static void test_missing_file(void **state)
{
    (void)state;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.bin", dir);
    errno = 0;
    assert_int_equal(mt_open_cached(missing), -1);
    assert_true(errno == ENOENT || errno == EAGAIN || errno == ENOSYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cached_file),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
