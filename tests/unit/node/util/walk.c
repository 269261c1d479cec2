/* Unit tests for node/util/walk.c: files in name order below a directory, dot-names only with
 * hidden, a symlink given on the command line followed, below it symlinks to files followed and
 * symlinked directories not (a link back to the top makes no cycle), unreadable paths reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/walk.h"

typedef struct {
    char seen[2048];
    int errors;
} seen_t;

static char root[256];

static void on_file(void *u, const char *path)
{
    seen_t *s = u;
    const char *rel = strncmp(path, root, strlen(root)) ? path : path + strlen(root) + 1;
    strncat(s->seen, rel, sizeof s->seen - strlen(s->seen) - 2);
    strcat(s->seen, " ");
}

static void on_error(void *u, const char *path, int errnum)
{
    (void)path;
    (void)errnum;
    ((seen_t *)u)->errors++;
}

static void touch(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
}

static void in_root(const char *rel, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", root, rel);
}

static int make_tree(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/mt-walk-XXXXXX");
    assert_non_null(mkdtemp(root));
    char p[512], q[512];
    in_root("b", p, sizeof p);
    assert_int_equal(mkdir(p, 0700), 0);
    touch("b/2.dcm");
    touch("b/1.dcm");
    touch("a.dcm");
    touch(".hidden.dcm");
    in_root("b/loop", p, sizeof p); /* a symlinked directory below the top: not followed */
    assert_int_equal(symlink(root, p), 0);
    in_root("b/1.dcm", q, sizeof q);
    in_root("c.lnk", p, sizeof p); /* a symlink to a file: followed */
    assert_int_equal(symlink(q, p), 0);
    return 0;
}

static int remove_tree(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd);
}

static void test_order_hidden_links(void **state)
{
    (void)state;
    seen_t s = {"", 0};
    mt_walk_cb_t cb = {.file = on_file, .error = on_error, .u = &s};
    mt_walk_files(root, &cb);
    assert_string_equal(s.seen, "a.dcm b/1.dcm b/2.dcm c.lnk ");
    assert_int_equal(s.errors, 0);

    memset(&s, 0, sizeof s);
    cb.hidden = true;
    mt_walk_files(root, &cb);
    assert_string_equal(s.seen, ".hidden.dcm a.dcm b/1.dcm b/2.dcm c.lnk ");
}

static void test_top_link_and_errors(void **state)
{
    (void)state;
    seen_t s = {"", 0};
    mt_walk_cb_t cb = {.file = on_file, .error = on_error, .u = &s};
    char p[512];
    in_root("b/loop", p, sizeof p); /* given on the command line: followed, once */
    mt_walk_files(p, &cb);
    assert_true(strstr(s.seen, "b/loop/a.dcm ") != NULL);
    assert_null(strstr(s.seen, "loop/b/loop"));
    assert_int_equal(s.errors, 0);
    in_root("absent", p, sizeof p);
    mt_walk_files(p, &cb);
    assert_int_equal(s.errors, 1);
    in_root("a.dcm", p, sizeof p); /* a file given as such */
    memset(&s, 0, sizeof s);
    mt_walk_files(p, &cb);
    assert_string_equal(s.seen, "a.dcm ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_hidden_links),
        cmocka_unit_test(test_top_link_and_errors),
    };
    return cmocka_run_group_tests(tests, make_tree, remove_tree);
}
