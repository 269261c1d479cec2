/* tests for node/store/store_fs.c: the layout, UID validation (no path escapes the root), temp
 * file -> publish / discard, clean_tmp, walk, remove, and fault injection (a failing write
 * leaves no partial object anywhere). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "util/alloc.h"
#include "util/err.h"

static char root[256];

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int n_tmp(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/.tmp", root);
    return count_dir(p);
}

static int rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/mt-store-XXXXXX");
    assert_non_null(mkdtemp(root));
    strcat(root, "/storage"); /* created by open */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *slash = strrchr(root, '/');
    *slash = '\0';
    rm_rf(root);
    mt_store_fs_fail_write_after(-1, 0);
    mt_store_fs_fail_sync_after(-1, 0);
    return 0;
}

typedef struct walked {
    int n;
    char rel[8][MT_STORE_PATH_MAX];
    uint64_t size[8];
} walked_t;

static int on_walk(void *u, const char *rel, const char *abs, uint64_t size)
{
    walked_t *w = u;
    assert_non_null(strstr(abs, rel));
    if (w->n < 8) {
        snprintf(w->rel[w->n], sizeof w->rel[0], "%s", rel);
        w->size[w->n] = size;
    }
    w->n++;
    return 0;
}

static void test_layout(void **state)
{
    (void)state;
    char p[MT_STORE_PATH_MAX];
    assert_int_equal(mt_store_path("1.2.3", "1.2.3.4", "1.2.3.4.5", p, sizeof p), 0);
    /* FNV-1a-32("1.2.3") = 0x18bc....: the two high bytes name the buckets */
    assert_string_equal(p, "18/bc/1.2.3/1.2.3.4/1.2.3.4.5.dcm");
    /* the bucket depends on the study only */
    char q[MT_STORE_PATH_MAX];
    assert_int_equal(mt_store_path("1.2.3", "9.9", "8.8", q, sizeof q), 0);
    assert_memory_equal(p, q, 6);
    /* 64-character UIDs always fit */
    char u[65];
    memset(u, '1', 64);
    u[64] = '\0';
    assert_int_equal(mt_store_path(u, u, u, p, sizeof p), 0);
    assert_true(strlen(p) < MT_STORE_PATH_MAX);
    assert_int_equal(mt_store_path("1.2.3", "1.2.3.4", "1.2.3.4.5", p, 10), MT_ETOOBIG);
}

static void test_uid_validation(void **state)
{
    (void)state;
    static const char *good[] = {"0", "1.2.840.10008.5.1.4.1.1.4", "1.2.3", "1.02.3"};
    static const char *bad[] = {"",      ".",       "..",     "1..2",    ".1",   "1.",
                                "1/2",   "../1",    "1.2/..", "a.1",     "1.2 ", " 1.2",
                                "1.2\n", "1.2.3.*", "-1",     "1.2.3\\4"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(mt_store_uid_ok(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (mt_store_uid_ok(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
        char p[MT_STORE_PATH_MAX];
        assert_int_equal(mt_store_path(bad[i], "1.2", "1.3", p, sizeof p), MT_EMALFORMED);
        assert_int_equal(mt_store_path("1.2", bad[i], "1.3", p, sizeof p), MT_EMALFORMED);
        assert_int_equal(mt_store_path("1.2", "1.3", bad[i], p, sizeof p), MT_EMALFORMED);
    }
    char u[66];
    memset(u, '1', 65);
    u[65] = '\0';
    assert_false(mt_store_uid_ok(u)); /* 65 characters */
    u[64] = '\0';
    assert_true(mt_store_uid_ok(u));
    char p[MT_STORE_PATH_MAX];
    assert_int_equal(mt_store_path(NULL, "1", "1", p, sizeof p), MT_EMALFORMED);
}

static void test_publish_discard(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_store_t *s;
    assert_int_equal(mt_store_fs_open(root, &s), 0);
    assert_string_equal(s->ops->name, "fs");
    assert_int_equal(n_tmp(), 0);

    mt_store_tmp_t t;
    assert_int_equal(s->ops->tmp_create(s, &t), 0);
    assert_true(t.fd >= 0);
    assert_int_equal(n_tmp(), 1);
    assert_int_equal(s->ops->tmp_write(s, &t, "hello ", 6), 0);
    assert_int_equal(s->ops->tmp_write(s, &t, "world", 5), 0);
    assert_int_equal(t.size, 11);
    walked_t w = {0};
    assert_int_equal(s->ops->walk(s, on_walk, &w), 0);
    assert_int_equal(w.n, 0); /* temp files are never objects */
    assert_int_equal(s->ops->tmp_close(s, &t), 0);
    assert_int_equal(t.fd, -1);

    char rel[MT_STORE_PATH_MAX], abs[1024];
    assert_int_equal(mt_store_path("1.2.3", "1.2.3.4", "1.2.3.4.5", rel, sizeof rel), 0);
    assert_int_equal(s->ops->publish(s, &t, rel), 0);
    assert_string_equal(t.name, "");
    assert_int_equal(n_tmp(), 0);
    assert_int_equal(s->ops->abs_path(s, rel, abs, sizeof abs), 0);
    FILE *f = fopen(abs, "rb");
    assert_non_null(f);
    char got[32] = {0};
    assert_int_equal(fread(got, 1, sizeof got, f), 11);
    fclose(f);
    assert_string_equal(got, "hello world");
    assert_int_equal(s->ops->sync(s), 0);

    /* publish over an existing object replaces it; publish closes an open temp file */
    assert_int_equal(s->ops->tmp_create(s, &t), 0);
    assert_int_equal(s->ops->tmp_write(s, &t, "v2", 2), 0);
    assert_int_equal(s->ops->publish(s, &t, rel), 0);
    memset(&w, 0, sizeof w);
    assert_int_equal(s->ops->walk(s, on_walk, &w), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.rel[0], rel);
    assert_int_equal(w.size[0], 2);

    /* discard: closed or open, nothing stays */
    assert_int_equal(s->ops->tmp_create(s, &t), 0);
    assert_int_equal(s->ops->tmp_write(s, &t, "x", 1), 0);
    s->ops->tmp_discard(s, &t);
    assert_int_equal(t.fd, -1);
    assert_string_equal(t.name, "");
    assert_int_equal(s->ops->tmp_create(s, &t), 0);
    assert_int_equal(s->ops->tmp_close(s, &t), 0);
    s->ops->tmp_discard(s, &t);
    s->ops->tmp_discard(s, &t); /* twice is harmless */
    assert_int_equal(n_tmp(), 0);
    assert_int_equal(s->ops->tmp_write(s, &t, "x", 1), MT_ESTATE);

    /* list: the files of one directory only */
    char rel2[MT_STORE_PATH_MAX];
    assert_int_equal(mt_store_path("1.2.3", "1.2.3.9", "1.2.3.9.1", rel2, sizeof rel2), 0);
    assert_int_equal(s->ops->tmp_create(s, &t), 0);
    assert_int_equal(s->ops->publish(s, &t, rel2), 0);
    char dir[MT_STORE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", rel);
    *strrchr(dir, '/') = '\0';
    memset(&w, 0, sizeof w);
    assert_int_equal(s->ops->list(s, dir, on_walk, &w), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.rel[0], rel);
    *strrchr(dir, '/') = '\0'; /* the study directory: only subdirectories */
    memset(&w, 0, sizeof w);
    assert_int_equal(s->ops->list(s, dir, on_walk, &w), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(s->ops->list(s, "no/such/dir", on_walk, &w), 0);
    assert_int_equal(s->ops->remove(s, rel2), 0);

    /* remove */
    assert_int_equal(s->ops->remove(s, rel), 0);
    assert_int_equal(s->ops->remove(s, rel), MT_ENOENT);
    memset(&w, 0, sizeof w);
    assert_int_equal(s->ops->walk(s, on_walk, &w), 0);
    assert_int_equal(w.n, 0);

    /* another file system path to sync: the same file system is counted once */
    char other[512];
    snprintf(other, sizeof other, "%s/idx", root);
    f = fopen(other, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(mt_store_fs_add_sync_path(s, other), 0);
    assert_int_equal(mt_store_fs_add_sync_path(s, "/nonexistent/x"), MT_ENOENT);
    assert_int_equal(s->ops->sync(s), 0);
    s->ops->close(s);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_clean_tmp(void **state)
{
    (void)state;
    mt_store_t *s;
    assert_int_equal(mt_store_fs_open(root, &s), 0);
    mt_store_tmp_t t[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s->ops->tmp_create(s, &t[i]), 0);
        assert_int_equal(s->ops->tmp_write(s, &t[i], "partial", 7), 0);
        assert_int_equal(s->ops->tmp_close(s, &t[i]), 0);
    }
    /* names are unique */
    assert_string_not_equal(t[0].name, t[1].name);
    assert_string_not_equal(t[1].name, t[2].name);
    assert_int_equal(n_tmp(), 3);
    s->ops->close(s); /* a "crash": the temp files stay */

    assert_int_equal(mt_store_fs_open(root, &s), 0);
    assert_int_equal(n_tmp(), 3);
    assert_int_equal(s->ops->clean_tmp(s), 3);
    assert_int_equal(n_tmp(), 0);
    assert_int_equal(s->ops->clean_tmp(s), 0);
    s->ops->close(s);
}

/* tmp_prepare: the spare inode is invisible in .tmp until tmp_create names it; it then behaves
 * as any temp file (write, publish, discard); a spare left at close leaves nothing behind. */
static void test_spare_inode(void **state)
{
    (void)state;
    mt_store_t *s;
    assert_int_equal(mt_store_fs_open(root, &s), 0);
    int rc = s->ops->tmp_prepare(s);
    if (rc == MT_EUNSUPPORTED || rc == -EOPNOTSUPP) { /* no O_TMPFILE here: nothing to test */
        s->ops->close(s);
        skip();
    }
    assert_int_equal(rc, 0);
    assert_int_equal(s->ops->tmp_prepare(s), 0); /* a spare exists: no-op */
    assert_int_equal(n_tmp(), 0);                /* unnamed */

    mt_store_tmp_t t, u;
    assert_int_equal(s->ops->tmp_create(s, &t), 0); /* takes the spare */
    assert_true(t.fd >= 0);
    assert_int_equal(n_tmp(), 1);
    assert_int_equal(s->ops->tmp_write(s, &t, "spare", 5), 0);
    assert_int_equal(s->ops->tmp_create(s, &u), 0); /* no spare left: an ordinary create */
    assert_string_not_equal(t.name, u.name);
    assert_int_equal(n_tmp(), 2);
    s->ops->tmp_discard(s, &u);
    assert_int_equal(n_tmp(), 1);

    char rel[MT_STORE_PATH_MAX], abs[1024];
    assert_int_equal(mt_store_path("1.2.3", "1.2.3.4", "1.2.3.4.6", rel, sizeof rel), 0);
    assert_int_equal(s->ops->publish(s, &t, rel), 0);
    assert_int_equal(s->ops->sync(s), 0);
    assert_int_equal(n_tmp(), 0);
    assert_int_equal(s->ops->abs_path(s, rel, abs, sizeof abs), 0);
    FILE *f = fopen(abs, "rb");
    assert_non_null(f);
    char got[16] = {0};
    assert_int_equal(fread(got, 1, sizeof got, f), 5);
    fclose(f);
    assert_string_equal(got, "spare");

    assert_int_equal(s->ops->tmp_prepare(s), 0);
    s->ops->close(s); /* with a spare: it goes with the store, nothing named in .tmp */
    assert_int_equal(n_tmp(), 0);
}

static void test_fault_injection(void **state)
{
    (void)state;
    mt_store_t *s;
    assert_int_equal(mt_store_fs_open(root, &s), 0);
    mt_store_tmp_t t;
    mt_store_fs_fail_write_after(1, MT_ENOSPC); /* one write succeeds, the second fails */
    assert_int_equal(s->ops->tmp_create(s, &t), 0);
    assert_int_equal(s->ops->tmp_write(s, &t, "abc", 3), 0);
    assert_int_equal(s->ops->tmp_write(s, &t, "def", 3), MT_ENOSPC);
    assert_int_equal(t.size, 3); /* the failed write wrote nothing */
    s->ops->tmp_discard(s, &t);
    assert_int_equal(n_tmp(), 0);
    walked_t w = {0};
    assert_int_equal(s->ops->walk(s, on_walk, &w), 0);
    assert_int_equal(w.n, 0);
    /* one shot: writes work again */
    assert_int_equal(s->ops->tmp_create(s, &t), 0);
    assert_int_equal(s->ops->tmp_write(s, &t, "abc", 3), 0);
    assert_int_equal(s->ops->tmp_write(s, &t, "def", 3), 0);
    /* n = 0: the very next write fails */
    mt_store_fs_fail_write_after(0, MT_EIO);
    assert_int_equal(s->ops->tmp_write(s, &t, "ghi", 3), MT_EIO);
    s->ops->tmp_discard(s, &t);
    assert_int_equal(n_tmp(), 0);
    s->ops->close(s);
}

static void test_lock_and_sync_fault(void **state)
{
    (void)state;
    mt_store_t *s, *s2;
    assert_int_equal(mt_store_fs_open(root, &s), 0);
    assert_int_equal(mt_store_fs_open(root, &s2), MT_ESTATE); /* one owner at a time */
    assert_null(s2);
    mt_store_fs_fail_sync_after(1, MT_EIO);
    assert_int_equal(s->ops->sync(s), 0);
    assert_int_equal(s->ops->sync(s), MT_EIO);
    assert_int_equal(s->ops->sync(s), 0); /* one shot */
    s->ops->close(s);
    assert_int_equal(mt_store_fs_open(root, &s2), 0); /* released by close */
    s2->ops->close(s2);
    walked_t w = {0};
    assert_int_equal(mt_store_fs_open(root, &s), 0);
    assert_int_equal(s->ops->walk(s, on_walk, &w), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(count_dir(root), 1); /* only .tmp: no lock file */
    s->ops->close(s);
}

static void test_open_errors(void **state)
{
    (void)state;
    mt_store_t *s;
    assert_int_equal(mt_store_fs_open("", &s), MT_EINVAL);
    assert_null(s);
    /* a root below a regular file cannot be created */
    char p[512];
    assert_int_equal(mt_store_fs_open(root, &s), 0);
    s->ops->close(s);
    snprintf(p, sizeof p, "%s/file", root);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    strcat(p, "/below");
    assert_true(mt_store_fs_open(p, &s) < 0);
    assert_null(s);
    /* trailing slashes are tolerated */
    snprintf(p, sizeof p, "%s///", root);
    assert_int_equal(mt_store_fs_open(p, &s), 0);
    char abs[1024];
    assert_int_equal(s->ops->abs_path(s, "a/b.dcm", abs, sizeof abs), 0);
    assert_null(strstr(abs, "//"));
    s->ops->close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_uid_validation),
        cmocka_unit_test_setup_teardown(test_publish_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spare_inode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_sync_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
