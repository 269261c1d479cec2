/* tests for node/conf/conf.c: defaults, every value type, every error with its line, the
 * shipped conf/mitral.yaml. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "util/alloc.h"
#include "util/log.h"

static char err[512];

static mt_conf_t *load(const char *yaml)
{
    err[0] = '\0';
    return mt_conf_load_string(yaml, strlen(yaml), "t.yaml", err, sizeof err);
}

/* The load must fail with exactly this message. */
static void expect_error(const char *yaml, const char *msg)
{
    long live = mt_alloc_live();
    mt_conf_t *c = load(yaml);
    if (c)
        fail_msg("loaded, expected: %s", msg);
    assert_string_equal(err, msg);
    assert_int_equal(mt_alloc_live(), live);
}

static void assert_conf_equal(const mt_conf_t *a, const mt_conf_t *b)
{
    assert_string_equal(a->ae_title, b->ae_title);
    assert_string_equal(a->bind, b->bind);
    assert_int_equal(a->port, b->port);
    assert_string_equal(a->data_dir, b->data_dir);
    assert_string_equal(a->storage_root, b->storage_root);
    assert_string_equal(a->index_path, b->index_path);
    assert_int_equal(a->n_calling_ae_allow, b->n_calling_ae_allow);
    for (size_t i = 0; i < a->n_calling_ae_allow; i++)
        assert_string_equal(a->calling_ae_allow[i], b->calling_ae_allow[i]);
    assert_int_equal(a->max_associations, b->max_associations);
    assert_int_equal(a->max_pdu, b->max_pdu);
    assert_int_equal(a->artim_timeout_ms, b->artim_timeout_ms);
    assert_int_equal(a->idle_timeout_ms, b->idle_timeout_ms);
    assert_int_equal(a->max_async_ops, b->max_async_ops);
    assert_int_equal(a->n_ts_preference, b->n_ts_preference);
    for (size_t i = 0; i < a->n_ts_preference; i++)
        assert_string_equal(a->ts_preference[i], b->ts_preference[i]);
    assert_int_equal(a->duplicates, b->duplicates);
    assert_int_equal(a->max_batch, b->max_batch);
    assert_int_equal(a->log_level, b->log_level);
    assert_int_equal(a->max_matches, b->max_matches);
    assert_int_equal(a->n_projects, b->n_projects);
    assert_int_equal(a->storage_root_explicit, b->storage_root_explicit);
    assert_int_equal(a->index_path_explicit, b->index_path_explicit);
}

static void test_defaults(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_conf_t *c = mt_conf_new_default();
    assert_string_equal(c->ae_title, "MITRAL");
    assert_string_equal(c->bind, "0.0.0.0");
    assert_int_equal(c->port, 11112);
    assert_string_equal(c->data_dir, "./data");
    assert_string_equal(c->storage_root, "./data/storage");
    assert_string_equal(c->index_path, "./data/index.sqlite");
    assert_int_equal(c->n_calling_ae_allow, 0);
    assert_int_equal(c->max_associations, 64);
    assert_int_equal(c->max_pdu, 262144);
    assert_int_equal(c->artim_timeout_ms, 30000);
    assert_int_equal(c->idle_timeout_ms, 300000);
    assert_int_equal(c->max_async_ops, 16);
    assert_int_equal(c->n_ts_preference, 2);
    assert_string_equal(c->ts_preference[0], "1.2.840.10008.1.2.1");
    assert_string_equal(c->ts_preference[1], "1.2.840.10008.1.2");
    assert_int_equal(c->duplicates, MT_DUP_OVERWRITE);
    assert_int_equal(c->max_batch, 256);
    assert_int_equal(c->log_level, MT_LOG_INFO);
    assert_false(c->storage_root_explicit);
    assert_false(c->index_path_explicit);
    mt_conf_free(c);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_empty_inputs_are_defaults(void **state)
{
    (void)state;
    mt_conf_t *d = mt_conf_new_default();
    const char *empties[] = {"", "# only a comment\n", "---\n", "---\n...\n", "log:\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        mt_conf_t *c = load(empties[i]);
        if (!c)
            fail_msg("'%s': %s", empties[i], err);
        assert_conf_equal(c, d);
        mt_conf_free(c);
    }
    mt_conf_free(d);
}

static void test_shipped_file_equals_defaults(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_conf_t *c = mt_conf_load(MT_SOURCE_DIR "/conf/mitral.yaml", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    mt_conf_t *d = mt_conf_new_default();
    assert_conf_equal(c, d);
    mt_conf_free(c);
    mt_conf_free(d);
    assert_int_equal(mt_alloc_live(), live);
}

static void test_every_type(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_conf_t *c = load("node:\n"
                        "  ae_title: '  CMR_NODE '\n" /* AE: outer spaces not significant */
                        "  bind: \"::1\"\n"           /* STRING + check */
                        "  port: 104\n"               /* PORT */
                        "  data_dir: /srv/mitral\n"   /* PATH */
                        "storage:\n"
                        "  duplicates: keep-first\n" /* ENUM */
                        "  max_batch: 1\n"           /* UINT at its minimum */
                        "index: {path: /db/ix.sqlite}\n"
                        "associations:\n"
                        "  allowed_calling_aes: [CT1, 'MR 2', PACS_A]\n" /* LIST_AE */
                        "  max: 100000\n"                                /* UINT at its maximum */
                        "  max_pdu: 16384\n"
                        "  artim_timeout: 250ms\n" /* DURATION units */
                        "  idle_timeout: 5m\n"
                        "  max_async_operations: 1\n"
                        "  transfer_syntax_preference:\n" /* LIST_UID */
                        "    - 1.2.840.10008.1.2.4.50\n"
                        "    - 1.2.840.10008.1.2\n"
                        "log:\n"
                        "  level: trace\n"); /* LOGLEVEL */
    if (!c)
        fail_msg("%s", err);
    assert_string_equal(c->ae_title, "CMR_NODE");
    assert_string_equal(c->bind, "::1");
    assert_int_equal(c->port, 104);
    assert_string_equal(c->data_dir, "/srv/mitral");
    assert_string_equal(c->storage_root, "/srv/mitral/storage"); /* derived */
    assert_false(c->storage_root_explicit);
    assert_string_equal(c->index_path, "/db/ix.sqlite"); /* explicit */
    assert_true(c->index_path_explicit);
    assert_int_equal(c->duplicates, MT_DUP_KEEP_FIRST);
    assert_int_equal(c->max_batch, 1);
    assert_int_equal(c->n_calling_ae_allow, 3);
    assert_string_equal(c->calling_ae_allow[0], "CT1");
    assert_string_equal(c->calling_ae_allow[1], "MR 2");
    assert_string_equal(c->calling_ae_allow[2], "PACS_A");
    assert_int_equal(c->max_associations, 100000);
    assert_int_equal(c->max_pdu, 16384);
    assert_int_equal(c->artim_timeout_ms, 250);
    assert_int_equal(c->idle_timeout_ms, 300000);
    assert_int_equal(c->max_async_ops, 1);
    assert_int_equal(c->n_ts_preference, 2);
    assert_string_equal(c->ts_preference[0], "1.2.840.10008.1.2.4.50");
    assert_int_equal(c->log_level, MT_LOG_TRACE);

    /* --data re-derives only what was not explicit */
    mt_conf_set_data_dir(c, "/tmp/x/");
    assert_string_equal(c->data_dir, "/tmp/x/");
    assert_string_equal(c->storage_root, "/tmp/x/storage");
    assert_string_equal(c->index_path, "/db/ix.sqlite");
    mt_conf_free(c);

    /* other spellings */
    c = load("associations:\n  artim_timeout: 45\n  idle_timeout: 1h\n"
             "  allowed_calling_aes:\n  transfer_syntax_preference: []\n"
             "storage: {duplicates: reject, root: ~}\nnode: {data_dir: d, bind: 10.0.0.1}\n"
             "log: {level: error}\n");
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->artim_timeout_ms, 45000);
    assert_int_equal(c->idle_timeout_ms, 3600000);
    assert_int_equal(c->n_calling_ae_allow, 0);
    assert_int_equal(c->n_ts_preference, 0);
    assert_int_equal(c->duplicates, MT_DUP_REJECT);
    assert_string_equal(c->storage_root, "d/storage");
    assert_string_equal(c->index_path, "d/index.sqlite");
    assert_string_equal(c->bind, "10.0.0.1");
    assert_int_equal(c->log_level, MT_LOG_ERROR);
    mt_conf_free(c);

    c = load("storage:\n  root: /data/store\n");
    assert_non_null(c);
    assert_true(c->storage_root_explicit);
    mt_conf_set_data_dir(c, "elsewhere");
    assert_string_equal(c->storage_root, "/data/store");
    assert_string_equal(c->index_path, "elsewhere/index.sqlite");
    mt_conf_free(c);

    /* 64 AE titles fit, 65 do not */
    char big[2048] = "associations:\n  allowed_calling_aes: [";
    for (int i = 0; i < MT_CONF_MAX_LIST; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%sA%d", i ? ", " : "", i);
    strcat(big, "]\n");
    c = load(big);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->n_calling_ae_allow, MT_CONF_MAX_LIST);
    assert_string_equal(c->calling_ae_allow[63], "A63");
    mt_conf_free(c);
    big[strlen(big) - 2] = '\0';
    strcat(big, ", TOO_MANY]\n");
    expect_error(big, "t.yaml:2: associations.allowed_calling_aes: more than 64 entries");
    assert_int_equal(mt_alloc_live(), live);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error("node:\n  ae_title: X\n  prot: 104\n",
                 "t.yaml:3: unknown key \"prot\" in section node");
    expect_error("node:\n  port: 1\nnetwork:\n  x: 1\n", "t.yaml:3: unknown section \"network\"");
    expect_error("\n\nae_title: X\n", "t.yaml:3: unknown section \"ae_title\"");
    /* a key that is a section elsewhere */
    expect_error("log:\n  node: 1\n", "t.yaml:2: unknown key \"node\" in section log");
    expect_error("node:\n  [a]: 1\n", "t.yaml:2: node: keys must be plain words");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("node:\n  port: [1, 2]\n", "t.yaml:2: node.port: expected a port number, got a list");
    expect_error("node:\n  ae_title:\n    a: b\n",
                 "t.yaml:3: node.ae_title: expected an AE title, got a mapping");
    expect_error("node: 12\n", "t.yaml:1: node: expected a mapping of keys (section)");
    expect_error("node: [a]\n", "t.yaml:1: node: expected a mapping of keys (section)");
    expect_error("associations:\n  allowed_calling_aes: CT1\n",
                 "t.yaml:2: associations.allowed_calling_aes: expected a list, e.g. [A, B]");
    expect_error("associations:\n  allowed_calling_aes:\n    - [CT1]\n",
                 "t.yaml:3: associations.allowed_calling_aes: list entries must be plain values");
    expect_error("node:\n  port:\n", "t.yaml:2: node.port: missing value (expected a port number)");
    expect_error("node:\n  data_dir: ~\n", "t.yaml:2: node.data_dir: missing value (expected a path)");
    expect_error("- a\n- b\n", "t.yaml:1: the top level must be a mapping of sections (node:, ...)");
    expect_error("node:\n  port: 1\n---\nnode:\n  port: 2\n",
                 "t.yaml:3: only one YAML document is allowed");
    expect_error("x: &a 1\nnode:\n  port: *a\n", "t.yaml:1: unknown section \"x\"");
    expect_error("node:\n  port: &p 1\n  max: *p\n", "t.yaml:3: unknown key \"max\" in section node");
    expect_error("node: {port: &p 1}\nstorage: {max_batch: *p}\n",
                 "t.yaml:2: storage.max_batch: YAML aliases are not supported");
    expect_error("node:\n  data_dir: \"a\\0b\"\n", "t.yaml:2: node.data_dir: contains a NUL character");
}

static void test_ranges(void **state)
{
    (void)state;
    expect_error("node:\n  port: 0\n", "t.yaml:2: node.port: \"0\" is not a port number (1-65535)");
    expect_error("node:\n  port: 65536\n",
                 "t.yaml:2: node.port: \"65536\" is not a port number (1-65535)");
    expect_error("node:\n  port: http\n",
                 "t.yaml:2: node.port: \"http\" is not a port number (1-65535)");
    expect_error("associations:\n  max: 0\n", "t.yaml:2: associations.max: 0 is out of range (1-100000)");
    expect_error("associations:\n  max_pdu: 99999999999999999999999\n",
                 "t.yaml:2: associations.max_pdu: 99999999999999999999999 is out of range "
                 "(4096-16777216)");
    expect_error("associations:\n  max_async_operations: -1\n",
                 "t.yaml:2: associations.max_async_operations: \"-1\" is not a whole number");
    expect_error("associations:\n  artim_timeout: 50ms\n",
                 "t.yaml:2: associations.artim_timeout: 50ms is out of range (100ms-1h)");
    expect_error("associations:\n  idle_timeout: 2d\n",
                 "t.yaml:2: associations.idle_timeout: \"2d\" is not a duration (e.g. 30s, 5m, "
                 "250ms, 1h)");
    expect_error("associations:\n  idle_timeout: 99999999999h\n",
                 "t.yaml:2: associations.idle_timeout: 99999999999h is out of range (1s-24h)");
    expect_error("associations:\n  idle_timeout: s\n",
                 "t.yaml:2: associations.idle_timeout: \"s\" is not a duration (e.g. 30s, 5m, "
                 "250ms, 1h)");
    expect_error("storage:\n  duplicates: ignore\n",
                 "t.yaml:2: storage.duplicates: \"ignore\" is not one of overwrite, keep-first, "
                 "reject");
    expect_error("log:\n  level: verbose\n",
                 "t.yaml:2: log.level: \"verbose\" is not one of error, warn, info, debug, trace");
    expect_error("node:\n  bind: localhost\n",
                 "t.yaml:2: node.bind: \"localhost\" is not an IPv4 or IPv6 address");
    expect_error("node:\n  bind: \"\"\n",
                 "t.yaml:2: node.bind: \"\" is not valid (1-63 characters, no control characters)");
    expect_error("node:\n  data_dir: \"\"\n",
                 "t.yaml:2: node.data_dir: \"\" is not a valid path (1-4095 characters, no control "
                 "characters)");
    expect_error("associations:\n  transfer_syntax_preference:\n    - 1.2.840.10008.1.2\n"
                 "    - 1.2.840.010008\n",
                 "t.yaml:4: associations.transfer_syntax_preference: \"1.2.840.010008\" is not a "
                 "UID (digits and dots, at most 64 characters)");
    /* a well-formed UID that names no transfer syntax could never take effect */
    expect_error("associations:\n  transfer_syntax_preference:\n    - 1.2.840.10008.1.2.4.50\n"
                 "    - 1.2.840.10008.1.2.4.5\n",
                 "t.yaml:4: associations.transfer_syntax_preference: \"1.2.840.10008.1.2.4.5\" is "
                 "not a transfer syntax mitral knows (docs/conformance.md 2.3)");
    expect_error("associations:\n  transfer_syntax_preference: [1..2]\n",
                 "t.yaml:2: associations.transfer_syntax_preference: \"1..2\" is not a UID (digits "
                 "and dots, at most 64 characters)");
    expect_error("associations:\n  transfer_syntax_preference: [1.2.]\n",
                 "t.yaml:2: associations.transfer_syntax_preference: \"1.2.\" is not a UID (digits "
                 "and dots, at most 64 characters)");
    expect_error("associations:\n  transfer_syntax_preference: [1.2.3x]\n",
                 "t.yaml:2: associations.transfer_syntax_preference: \"1.2.3x\" is not a UID "
                 "(digits and dots, at most 64 characters)");
    /* 65 characters */
    expect_error("associations:\n  transfer_syntax_preference: "
                 "[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.2]\n",
                 "t.yaml:2: associations.transfer_syntax_preference: \"1.2.3.4.5.6.7.8.9.10.11.12."
                 "13.14.15.16.17.18...\" is not a UID (digits and dots, at most 64 "
                 "characters)");
}

static void test_ae_titles(void **state)
{
    (void)state;
    const char *msg_tail = " is not an AE title (1-16 characters, no backslash or control "
                           "characters, not all spaces)";
    char want[256];
    snprintf(want, sizeof want, "t.yaml:2: node.ae_title: \"%s\"%s", "ABCDEFGHIJKLMNOPQ", msg_tail);
    expect_error("node:\n  ae_title: ABCDEFGHIJKLMNOPQ\n", want);
    snprintf(want, sizeof want, "t.yaml:2: node.ae_title: \"%s\"%s", "A\\\\B", msg_tail);
    snprintf(want, sizeof want, "t.yaml:2: node.ae_title: \"%s\"%s", "A\\B", msg_tail);
    expect_error("node:\n  ae_title: 'A\\B'\n", want);
    snprintf(want, sizeof want, "t.yaml:2: node.ae_title: \"%s\"%s", "    ", msg_tail);
    expect_error("node:\n  ae_title: '    '\n", want);
    snprintf(want, sizeof want, "t.yaml:2: node.ae_title: \"%s\"%s", "A?B", msg_tail);
    expect_error("node:\n  ae_title: \"A\\tB\"\n", want);
    snprintf(want, sizeof want, "t.yaml:2: node.ae_title: \"%s\"%s", "", msg_tail);
    expect_error("node:\n  ae_title: ''\n", want);
    snprintf(want, sizeof want, "t.yaml:3: associations.allowed_calling_aes: \"%s\"%s",
             "TOO_LONG_AE_TITLE_X", msg_tail);
    expect_error("associations:\n  allowed_calling_aes:\n    - TOO_LONG_AE_TITLE_X\n", want);

    mt_conf_t *c = load("node:\n  ae_title: ABCDEFGHIJKLMNOP\n"); /* exactly 16 */
    assert_non_null(c);
    assert_string_equal(c->ae_title, "ABCDEFGHIJKLMNOP");
    mt_conf_free(c);
}

static void test_duplicates(void **state)
{
    (void)state;
    expect_error("node:\n  port: 1\n  ae_title: A\n  port: 2\n", "t.yaml:4: duplicate key node.port");
    expect_error("node:\n  port: 1\nlog:\n  level: info\nnode:\n  ae_title: B\n",
                 "t.yaml:5: duplicate section node");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("node:\n  port: 1\n  - x\n",
                 "t.yaml:3: YAML syntax error: did not find expected key (while parsing a block "
                 "mapping)");
    expect_error("node:\n  port: 1\n\tae_title: X\n",
                 "t.yaml:3: YAML syntax error: found a tab character that violates indentation "
                 "(while scanning a plain scalar)");
    expect_error("node:\n  port: 1\n  ae_title: 'unterminated\n",
                 "t.yaml:4: YAML syntax error: found unexpected end of stream (while scanning a "
                 "quoted scalar)");
    expect_error("node: {port: 1\n\n", "t.yaml:3: YAML syntax error: did not find expected ',' or "
                                       "'}' (while parsing a flow mapping)");
    /* invalid UTF-8 is a reader error */
    mt_conf_t *c = load("node:\n  ae_title: \xff\xfe\n");
    assert_null(c);
    assert_non_null(strstr(err, "t.yaml:"));
    assert_non_null(strstr(err, "YAML syntax error"));
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/mt_conf_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *y = "node:\n  port: 4242\n\n  bogus: 1\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    mt_conf_t *c = mt_conf_load(path, err, sizeof err);
    assert_null(c);
    char want[256];
    snprintf(want, sizeof want, "%s:4: unknown key \"bogus\" in section node", path);
    assert_string_equal(err, want);
    unlink(path);
    c = mt_conf_load(path, err, sizeof err);
    assert_null(c);
    assert_non_null(strstr(err, "cannot open"));
    assert_null(mt_conf_for_command(path, "/d")); /* the error goes to stderr */

    /* a subcommand's --data DIR holds storage and index even where the file names others */
    char path2[] = "/tmp/mt_conf_test_XXXXXX";
    fd = mkstemp(path2);
    assert_true(fd >= 0);
    y = "storage:\n  root: /s\nindex:\n  path: /db/ix.sqlite\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    c = mt_conf_for_command(path2, NULL);
    assert_non_null(c);
    assert_string_equal(c->storage_root, "/s");
    assert_string_equal(c->index_path, "/db/ix.sqlite");
    mt_conf_free(c);
    c = mt_conf_for_command(path2, "/d");
    assert_non_null(c);
    assert_string_equal(c->storage_root, "/d/storage");
    assert_string_equal(c->index_path, "/d/index.sqlite");
    mt_conf_free(c);
    unlink(path2);
    c = mt_conf_for_command(NULL, "/e");
    assert_string_equal(c->storage_root, "/e/storage");
    assert_string_equal(c->index_path, "/e/index.sqlite");
    mt_conf_free(c);
}

static void test_projects(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_conf_t *c = load("node:\n  ae_title: MAIN\nprojects:\n"
                        "  - name: cmr-2020\n    ae_title: ' CMR_QR '\n"
                        "    description: CMR registry\n    allowed_calling_aes: [WS1, WS2]\n"
                        "  - name: open\n    ae_title: OPEN\nquery:\n  max_matches: 50\n");
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->n_projects, 2);
    assert_string_equal(c->projects[0].name, "cmr-2020");
    assert_string_equal(c->projects[0].ae_title, "CMR_QR");
    assert_string_equal(c->projects[0].description, "CMR registry");
    assert_int_equal(c->projects[0].n_calling_ae_allow, 2);
    assert_string_equal(c->projects[0].calling_ae_allow[1], "WS2");
    assert_null(c->projects[1].description);
    assert_int_equal(c->projects[1].n_calling_ae_allow, 0);
    assert_int_equal(c->max_matches, 50);
    assert_ptr_equal(mt_conf_project_by_ae(c, "CMR_QR  "), &c->projects[0]);
    assert_ptr_equal(mt_conf_project_by_name(c, "open"), &c->projects[1]);
    assert_null(mt_conf_project_by_ae(c, "MAIN"));
    mt_conf_free(c);
    c = load("projects: []\n");
    assert_non_null(c);
    assert_int_equal(c->n_projects, 0);
    mt_conf_free(c);
    c = load("projects:\n");
    assert_non_null(c);
    mt_conf_free(c);
    assert_int_equal(mt_alloc_live(), live);

    expect_error("projects:\n  - name: a\n", "t.yaml:2: projects[0]: ae_title is required");
    expect_error("projects:\n  - ae_title: A\n", "t.yaml:2: projects[0]: name is required");
    expect_error("projects:\n  - name: a b\n    ae_title: A\n",
                 "t.yaml:2: projects[0].name: \"a b\" is not a project name (1-64 characters: "
                 "letters, digits, '_', '-', '.')");
    expect_error("projects:\n  - name: a\n    ae_title: A\n    colour: red\n",
                 "t.yaml:4: unknown key \"colour\" in projects[0]");
    expect_error("projects:\n  - name: a\n    ae_title: A\n  - name: a\n    ae_title: B\n",
                 "t.yaml:4: projects[1]: duplicate project name a");
    expect_error("projects:\n  - name: a\n    ae_title: A\n  - name: b\n    ae_title: A\n",
                 "t.yaml:4: projects[1]: AE title A already used by project a");
    expect_error("projects:\n  - name: a\n    ae_title: MITRAL\n",
                 "t.yaml:2: project a: AE title MITRAL is node.ae_title");
    expect_error("projects: 3\n", "t.yaml:1: projects: expected a list of projects (- name: ...)");
    expect_error("projects:\n  - name: a\n    ae_title: A\n    allowed_calling_aes: WS\n",
                 "t.yaml:4: projects[0].allowed_calling_aes: expected a list, e.g. [A, B]");
    expect_error("projects:\n  - name: a\n    ae_title: A\n    name: b\n",
                 "t.yaml:4: duplicate key projects[0].name");
    expect_error("projects: []\nprojects: []\n", "t.yaml:2: duplicate section projects");
    expect_error("query:\n  max_matches: 0\n",
                 "t.yaml:2: query.max_matches: 0 is out of range (1-10000000)");
}

static void test_move_destinations(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_conf_t *c = load("move_destinations:\n  - ae_title: WS1\n    host: 10.0.0.2\n    port: 104\n"
                        "  - ae_title: ' WS2 '\n    host: ws2.example\n    port: 11112\n");
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->n_dests, 2);
    assert_string_equal(c->dests[0].host, "10.0.0.2");
    assert_int_equal(c->dests[0].port, 104);
    assert_ptr_equal(mt_conf_dest_by_ae(c, "WS2 "), &c->dests[1]);
    assert_null(mt_conf_dest_by_ae(c, "WS3"));
    mt_conf_free(c);
    c = load("move_destinations: []\n");
    assert_non_null(c);
    assert_int_equal(c->n_dests, 0);
    mt_conf_free(c);
    assert_int_equal(mt_alloc_live(), live);
    expect_error("move_destinations:\n  - ae_title: A\n    host: h\n",
                 "t.yaml:2: move_destinations[0]: ae_title, host and port are required");
    expect_error("move_destinations:\n  - ae_title: A\n    host: h\n    port: 0\n",
                 "t.yaml:4: move_destinations[0].port: expected 1-65535");
    expect_error("move_destinations:\n  - ae_title: A\n    host: h\n    port: 1\n"
                 "  - ae_title: A\n    host: g\n    port: 2\n",
                 "t.yaml:5: move_destinations[1]: duplicate AE title A");
    expect_error("move_destinations:\n  - ae_title: A\n    hots: h\n",
                 "t.yaml:3: unknown key \"hots\" in move_destinations[0] (ae_title, host, port)");
    expect_error("move_destinations: 3\n",
                 "t.yaml:1: move_destinations: expected a list (- ae_title: ..., host: ..., "
                 "port: ...)");
}

static void test_web_destinations(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_conf_t *c = load("destinations:\n"
                        "  - name: central-web\n"
                        "    stow_url: https://central.example:8443/projects/reg/dicomweb/studies\n"
                        "    token_file: /etc/mitral/central.token\n"
                        "    ca_file: /etc/mitral/ca.pem\n"
                        "    connections: 3\n"
                        "    request_timeout: 5m\n"
                        "    max_instances_per_request: 8\n"
                        "    max_request_mb: 32\n"
                        "  - name: basic\n"
                        "    stow_url: http://127.0.0.1:8042/dicomweb/studies\n"
                        "    user: site-a\n"
                        "    password_file: pw\n"
                        "  - name: dicom\n    ae_title: B\n    host: h\n    port: 104\n");
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->n_destinations, 3);
    const mt_conf_destination_t *d = mt_conf_destination_by_name(c, "central-web");
    assert_true(MT_CONF_DEST_IS_WEB(d));
    assert_string_equal(d->token_file, "/etc/mitral/central.token");
    assert_string_equal(d->ca_file, "/etc/mitral/ca.pem");
    assert_int_equal(d->associations, 3);
    assert_int_equal(d->request_timeout_ms, 300000);
    assert_int_equal(d->max_instances, 8);
    assert_int_equal(d->max_request_mb, 32);
    d = mt_conf_destination_by_name(c, "basic");
    assert_string_equal(d->auth_user, "site-a");
    assert_int_equal(d->request_timeout_ms, 120000); /* defaults */
    assert_int_equal(d->max_instances, 16);
    assert_int_equal(d->max_request_mb, 64);
    assert_false(MT_CONF_DEST_IS_WEB(mt_conf_destination_by_name(c, "dicom")));
    mt_conf_free(c);
    assert_int_equal(mt_alloc_live(), live);
    expect_error("destinations:\n  - name: w\n    stow_url: ftp://h/studies\n",
                 "t.yaml:3: destinations[0].stow_url: \"ftp://h/studies\": not an http:// or "
                 "https:// URL");
    expect_error("destinations:\n  - name: w\n    stow_url: https://u:p@h/studies\n",
                 "t.yaml:3: destinations[0].stow_url: \"https://u:p@h/studies\": user "
                 "information in the URL (credentials belong in a file)");
    expect_error("destinations:\n  - name: w\n    stow_url: http://h/s\n    ae_title: X\n",
                 "t.yaml:2: destinations[0].ae_title: a DICOMweb destination (stow_url) has no "
                 "ae_title");
    expect_error("destinations:\n  - name: w\n    stow_url: http://h/s\n    associations: 2\n",
                 "t.yaml:2: destinations[0].associations: a DICOMweb destination (stow_url) has "
                 "no associations (use connections)");
    expect_error("destinations:\n  - name: w\n    ae_title: X\n    host: h\n    port: 1\n"
                 "    token_file: t\n",
                 "t.yaml:2: destinations[0].token_file: only for a DICOMweb destination "
                 "(stow_url)");
    expect_error("destinations:\n  - name: w\n    stow_url: http://h/s\n    token_file: t\n"
                 "    user: u\n    password_file: p\n",
                 "t.yaml:2: destinations[0]: token_file (Bearer) and user/password_file (Basic) "
                 "are two ways to authenticate: give one");
    expect_error("destinations:\n  - name: w\n    stow_url: http://h/s\n    user: u\n",
                 "t.yaml:2: destinations[0]: HTTP Basic needs both user and password_file");
    expect_error("destinations:\n  - name: w\n    stow_url: http://h/s\n    ca_file: c\n",
                 "t.yaml:2: destinations[0]: ca_file and tls_insecure_skip_verify need an "
                 "https:// stow_url");
    expect_error("destinations:\n  - name: w\n    stow_url: https://h/s\n    ca_file: c\n"
                 "    tls_insecure_skip_verify: true\n",
                 "t.yaml:2: destinations[0]: ca_file with tls_insecure_skip_verify: true "
                 "(nothing would be verified)");
    expect_error("destinations:\n  - name: w\n    stow_url: https://h/s\n"
                 "    tls_insecure_skip_verify: yes\n",
                 "t.yaml:4: destinations[0].tls_insecure_skip_verify: expected true or false");
    expect_error("destinations:\n  - name: w\n    stow_url: https://h/s\n"
                 "    request_timeout: 10x\n",
                 "t.yaml:4: destinations[0].request_timeout: \"10x\" is not a duration of 1s-1h "
                 "(e.g. 120s, 5m)");
    expect_error("destinations:\n  - name: w\n    stow_url: https://h/s\n    connections: 0\n",
                 "t.yaml:4: destinations[0].connections: \"0\" is out of range (1-64)");
    expect_error("destinations:\n  - name: w\n    stow_url: https://h/s\n"
                 "    max_instances_per_request: 1001\n",
                 "t.yaml:4: destinations[0].max_instances_per_request: \"1001\" is out of range "
                 "(1-1000)");
    expect_error("destinations:\n  - name: w\n    stow_url: http://h/s\n    user: a:b\n",
                 "t.yaml:4: destinations[0].user: \"a:b\" is not a user name (1-64 characters, "
                 "no ':')");
    expect_error("destinations:\n  - name: w\n",
                 "t.yaml:2: destinations[0]: ae_title, host and port (a DICOM destination) or "
                 "stow_url (DICOMweb) are required");
}

/* The list keys inside items (allowed_calling_aes, a user's projects, a destination's
 * transfer_syntaxes) and the key errors every item shares. */
static void test_item_lists(void **state)
{
    (void)state;
    long live = mt_alloc_live();
    mt_conf_t *c = load("users:\n  - name: u\n    token: sha256$ab\n    projects: [p1, p-2]\n"
                        "destinations:\n  - name: d\n    ae_title: B\n    host: h\n    port: 1\n"
                        "    transfer_syntaxes: [1.2.840.10008.1.2.1, 1.2.840.10008.1.2]\n"
                        "projects:\n  - name: p1\n    ae_title: P1\n"
                        "    allowed_calling_aes: [' WS1 ']\n"
                        "  - name: p-2\n    ae_title: P2\n");
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->users[0].n_projects, 2);
    assert_string_equal(c->users[0].projects[1], "p-2");
    assert_int_equal(c->destinations[0].n_ts, 2);
    assert_string_equal(c->destinations[0].ts[1], "1.2.840.10008.1.2");
    assert_int_equal(c->projects[0].n_calling_ae_allow, 1);
    assert_string_equal(c->projects[0].calling_ae_allow[0], "WS1");
    mt_conf_free(c);
    assert_int_equal(mt_alloc_live(), live);

    expect_error("users:\n  - name: u\n    token: sha256$ab\n    projects: p\n",
                 "t.yaml:4: users[0].projects: expected a list, e.g. [a, b]");
    expect_error("users:\n  - name: u\n    token: sha256$ab\n    projects: [[p]]\n",
                 "t.yaml:4: users[0].projects: entries must be project names");
    expect_error("users:\n  - name: u\n    token: sha256$ab\n    projects: [a b]\n",
                 "t.yaml:4: users[0].projects: \"a b\" is not a project name");
    expect_error("destinations:\n  - name: d\n    transfer_syntaxes: 1.2\n",
                 "t.yaml:3: destinations[0].transfer_syntaxes: expected a list of UIDs");
    expect_error("destinations:\n  - name: d\n    transfer_syntaxes: [{a: 1}]\n",
                 "t.yaml:3: destinations[0].transfer_syntaxes: entries must be UIDs");
    expect_error("projects:\n  - name: a\n    ae_title: A\n    allowed_calling_aes: [[X]]\n",
                 "t.yaml:4: projects[0].allowed_calling_aes: list entries must be plain values");
    expect_error("users:\n  - name: u\n    [k]: 1\n", "t.yaml:3: users[0]: keys must be plain words");
    expect_error("move_destinations:\n  - ae_title: A\n    host: h\n    host: g\n",
                 "t.yaml:4: duplicate key move_destinations[0].host");
    expect_error("destinations:\n  - name: d\n    colour: red\n",
                 "t.yaml:3: unknown key \"colour\" in destinations[0]");

    char big[4096];
    size_t w = (size_t)snprintf(big, sizeof big, "users:\n  - name: u\n    token: sha256$ab\n"
                                "    projects: [");
    for (int i = 0; i <= MT_CONF_MAX_LIST; i++)
        w += (size_t)snprintf(big + w, sizeof big - w, "%sp%d", i ? ", " : "", i);
    snprintf(big + w, sizeof big - w, "]\n");
    expect_error(big, "t.yaml:4: users[0].projects: more than 64 entries");
    assert_int_equal(mt_alloc_live(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_move_destinations),
        cmocka_unit_test(test_web_destinations),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_inputs_are_defaults),
        cmocka_unit_test(test_shipped_file_equals_defaults),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_ae_titles),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_projects),
        cmocka_unit_test(test_item_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
