/*
 * tests/unit/node/deid/cli.c - node/deid/cli.c (included, to reach its static helpers) and
 * load.c: the key file is refused when group or others may read it or when it is short; a whole
 * run of
 * `mitral deid` in process on generated Part 10 files (output named by mapped UIDs, readable,
 * identifiers gone, same bytes on a second run, Burned In Annotation rejected).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../../../node/deid/cli.c"

#ifndef MT_SOURCE_DIR
#define MT_SOURCE_DIR "."
#endif

static char g_dir[256];

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_key_file_permissions(void **state)
{
    (void)state;
    char path[512];
    uint8_t *key = NULL;
    size_t len = 0;
    char err[512];
#define load_key(p, k, l) (mt_deid_load_key(p, k, l, err, sizeof(err)) ? -1 : 0)
    snprintf(path, sizeof(path), "%s/key", g_dir);
    write_file(path, "0123456789abcdef0123456789abcdef", 32, 0644);
    assert_int_equal(load_key(path, &key, &len), -1); /* world readable */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(load_key(path, &key, &len), -1); /* group readable */
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(load_key(path, &key, &len), -1); /* others only */
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(load_key(path, &key, &len), 0);
    assert_int_equal(len, 32);
    mt_deid_key_free(key, len);
    write_file(path, "short", 5, 0600);
    assert_int_equal(load_key(path, &key, &len), -1); /* fewer than 16 bytes */
    snprintf(path, sizeof(path), "%s/nokey", g_dir);
    assert_int_equal(load_key(path, &key, &len), -1);
#undef load_key
}

static void make_file(const char *path, const char *sop, const char *burned)
{
    mt_ds_t *ds = mt_ds_new();
    assert_int_equal(
        mt_ds_set_string(ds, MT_TAG(0x0008, 0x0016), MT_VR('U', 'I'), "1.2.840.10008.5.1.4.1.1.4"),
        0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0008, 0x0018), MT_VR('U', 'I'), sop), 0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0008, 0x0020), MT_VR('D', 'A'), "20240301"), 0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0010, 0x0010), MT_VR('P', 'N'), "Doe^Jane"), 0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0010, 0x0020), MT_VR('L', 'O'), "MRN-4711"), 0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0020, 0x000D), MT_VR('U', 'I'), "1.2.3.4.1"), 0);
    assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0020, 0x000E), MT_VR('U', 'I'), "1.2.3.4.2"), 0);
    if (burned)
        assert_int_equal(mt_ds_set_string(ds, MT_TAG(0x0028, 0x0301), MT_VR('C', 'S'), burned), 0);
    mt_meta_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.sop_class_uid, sizeof(m.sop_class_uid), "1.2.840.10008.5.1.4.1.1.4");
    snprintf(m.sop_instance_uid, sizeof(m.sop_instance_uid), "%s", sop);
    snprintf(m.transfer_syntax_uid, sizeof(m.transfer_syntax_uid), "1.2.840.10008.1.2.1");
    mt_buf_t b;
    mt_buf_init(&b, 1 << 20);
    assert_int_equal(mt_part10_write_meta(&m, &b), 0);
    assert_int_equal(mt_ds_encode(ds, mt_ts_explicit_le, &b), 0);
    write_file(path, b.data, b.len, 0600);
    mt_buf_dispose(&b);
    mt_ds_free(ds);
}

/* The one output file under dir (recursively); its bytes, or NULL. */
static uint8_t *find_output(const char *dir, size_t *len, int *count)
{
    DIR *d = opendir(dir);
    uint8_t *found = NULL;
    if (!d)
        return NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            uint8_t *f = find_output(p, len, count);
            if (f) {
                mt_free(found);
                found = f;
            }
        } else {
            (*count)++;
            mt_free(found);
            assert_int_equal(mt_deid_read_file(p, 1 << 20, &found, len), 0);
            assert_memory_equal(de->d_name, "2.25.", 5); /* named by the mapped UID */
        }
    }
    closedir(d);
    return found;
}

static int run_cli(const char *in, const char *out, const char *profile)
{
    char key[512], pdir[512];
    snprintf(key, sizeof(key), "%s/key", g_dir);
    snprintf(pdir, sizeof(pdir), "%s/deid-profiles", MT_SOURCE_DIR);
    char *argv[] = {"deid",           "--profile", (char *)profile, "--key",     key,
                    "--profiles-dir", pdir,        (char *)in,      (char *)out, NULL};
    return mt_deid_cli(9, argv);
}

static void test_cli_run(void **state)
{
    (void)state;
    char key[512], in[512], out1[512], out2[512], out3[512], bad[512];
    snprintf(key, sizeof(key), "%s/key", g_dir);
    write_file(key, "0123456789abcdef0123456789abcdef", 32, 0600);
    snprintf(in, sizeof(in), "%s/in", g_dir);
    assert_int_equal(mkdir(in, 0700), 0);
    char f[600];
    snprintf(f, sizeof(f), "%s/a.dcm", in);
    make_file(f, "1.2.3.4.3", NULL);
    snprintf(out1, sizeof(out1), "%s/out1", g_dir);
    snprintf(out2, sizeof(out2), "%s/out2", g_dir);
    assert_int_equal(run_cli(in, out1, "cmr-registry"), 0);
    assert_int_equal(run_cli(in, out2, "cmr-registry"), 0);
    size_t n1 = 0, n2 = 0;
    int c1 = 0, c2 = 0;
    uint8_t *b1 = find_output(out1, &n1, &c1), *b2 = find_output(out2, &n2, &c2);
    assert_int_equal(c1, 1);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_int_equal(n1, n2); /* determinism: same key and input, same bytes */
    assert_memory_equal(b1, b2, n1);
    static const char *const secrets[] = {"Doe",       "Jane",      "MRN-4711", "20240301",
                                          "1.2.3.4.3", "1.2.3.4.1", NULL};
    for (const char *const *s = secrets; *s; s++)
        if (memmem(b1, n1, *s, strlen(*s)))
            fail_msg("'%s' survived", *s);
    mt_meta_t m;
    mt_ds_t *ds = NULL;
    mt_diag_t diag;
    assert_int_equal(mt_part10_parse_file_buf(b1, n1, &m, &ds, &diag), 0);
    char v[80];
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0012, 0x0062), v, sizeof(v)));
    assert_string_equal(v, "YES");
    assert_true(mt_ds_get_string(ds, MT_TAG(0x0008, 0x0018), v, sizeof(v)));
    assert_string_equal(v, m.sop_instance_uid); /* meta rebuilt from the mapped UID */
    mt_ds_free(ds);
    mt_free(b1);
    mt_free(b2);

    /* Burned In Annotation YES: rejected, nothing written, exit status 1 */
    snprintf(bad, sizeof(bad), "%s/bad.dcm", g_dir);
    make_file(bad, "1.2.3.4.9", "YES");
    snprintf(out3, sizeof(out3), "%s/out3", g_dir);
    assert_int_equal(run_cli(bad, out3, "basic"), 1);
    int c3 = 0;
    size_t n3;
    uint8_t *b3 = find_output(out3, &n3, &c3);
    assert_null(b3);
    assert_int_equal(c3, 0);

    /* a world-readable key, an unknown profile: exit status 2 */
    assert_int_equal(chmod(key, 0644), 0);
    assert_int_equal(run_cli(in, out3, "basic"), 2);
    assert_int_equal(chmod(key, 0600), 0);
    assert_int_equal(run_cli(in, out3, "no-such-profile"), 2);

    /* OUT_DIR inside an input directory (or the same): its outputs would be walked as inputs
     * and de-identified again under other UIDs (4 inputs gave 8 outputs): refused, exit 2 */
    char inner[600], again[600];
    snprintf(inner, sizeof(inner), "%s/deid-out", in);
    assert_int_equal(run_cli(in, inner, "basic"), 2);
    int c4 = 0;
    size_t n4;
    assert_null(find_output(inner, &n4, &c4));
    assert_int_equal(c4, 0);
    assert_int_equal(run_cli(in, in, "basic"), 2);
    snprintf(again, sizeof(again), "%s/./", in);
    assert_int_equal(run_cli(again, inner, "basic"), 2);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/mt-deid-cli-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_file_permissions),
        cmocka_unit_test(test_cli_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
