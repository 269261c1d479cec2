/* tests for node/http/stowjson.c: parts of a metadata + bulk data request -> instances: the
 * callback order and contents, per-instance failures beside good instances, the refusals of
 * the whole request (no metadata part, malformed JSON in any metadata part, not an array,
 * too many values, too many instances), the hold limit, unreferenced bulk parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/stowjson.h"
#include "util/err.h"

#define INST(n)                                                                                    \
    "{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.4\"]},"                     \
    "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"2.25." #n "\"]}"

typedef struct seen {
    size_t n, ok;
    int status[8];
    char inst[8][65];
    size_t len[8];
} seen_t;

static void on_inst(void *user, const mt_stowjson_inst_t *in)
{
    seen_t *s = user;
    if (s->n < 8) {
        s->status[s->n] = in->status;
        snprintf(s->inst[s->n], sizeof s->inst[0], "%s", in->inst);
        s->len[s->n] = in->len;
        if (!in->status)
            assert_non_null(in->ds);
        else
            assert_non_null(in->why);
    }
    s->ok += !in->status;
    s->n++;
}

static void part(mt_stowjson_t *j, const char *type, const char *loc, const char *data, size_t n)
{
    mt_mp_part_t p;
    memset(&p, 0, sizeof p);
    snprintf(p.content_type, sizeof p.content_type, "%s", type);
    snprintf(p.content_location, sizeof p.content_location, "%s", loc);
    assert_int_equal(mt_stowjson_part(j, &p), 0);
    assert_int_equal(mt_stowjson_data(j, (const uint8_t *)data, n), 0);
}

static void test_instances(void **st)
{
    (void)st;
    mt_stowjson_t *j = mt_stowjson_new(1 << 20);
    const char *meta = "[" INST(1) ",\"7FE00010\":{\"vr\":\"OW\",\"BulkDataURI\":\"u/px\"}}," INST(
        2) ",\"00280010\":{\"vr\":\"US\",\"Value\":[\"x\"]}}," INST(3) "}]";
    part(j, "application/dicom+json; charset=utf-8", "", meta, strlen(meta));
    part(j, "application/octet-stream", "u/px", "\1\0\2\0", 4);
    part(j, "application/octet-stream", "u/unused", "zz", 2);
    part(j, "Application/DICOM+JSON", "", INST(4) "}", strlen(INST(4) "}"));
    seen_t s = {0};
    const char *why = NULL;
    assert_int_equal(mt_stowjson_finish(j, on_inst, &s, &why), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.ok, 3);
    assert_string_equal(s.inst[0], "2.25.1");
    assert_int_equal(s.status[0], 0);
    assert_true(s.len[0] > s.len[2]); /* the Pixel Data from its part is in */
    assert_string_equal(s.inst[1], "2.25.2");
    assert_int_equal(s.status[1], MT_EMALFORMED);
    assert_string_equal(s.inst[3], "2.25.4"); /* a lone object is one instance */
    assert_int_equal(mt_stowjson_unused(j), 1);
    mt_stowjson_free(j);
}

/* a compressed media type without transfer-syntax: its default syntax (PS3.18 8.7.3-5) */
static void on_rle(void *user, const mt_stowjson_inst_t *in)
{
    assert_int_equal(in->status, 0);
    assert_string_equal(in->ts->uid, "1.2.840.10008.1.2.5");
    ++*(int *)user;
}

static void test_default_syntax(void **st)
{
    (void)st;
    mt_stowjson_t *j = mt_stowjson_new(1 << 20);
    const char *meta = "[" INST(1) ",\"7FE00010\":{\"vr\":\"OB\",\"BulkDataURI\":\"f\"}}]";
    part(j, "application/dicom+json", "", meta, strlen(meta));
    part(j, "image/dicom-rle", "f", "\0\0", 2);
    int n = 0;
    const char *why;
    assert_int_equal(mt_stowjson_finish(j, on_rle, &n, &why), 0);
    assert_int_equal(n, 1);
    mt_stowjson_free(j);
}

static const char *refused(const char *const *metas, size_t n, int want)
{
    mt_stowjson_t *j = mt_stowjson_new(64 << 20);
    for (size_t i = 0; i < n; i++)
        part(j, "application/dicom+json", "", metas[i], strlen(metas[i]));
    part(j, "application/octet-stream", "u/x", "ab", 2);
    seen_t s = {0};
    const char *why = NULL;
    assert_int_equal(mt_stowjson_finish(j, on_inst, &s, &why), want);
    assert_int_equal(s.n, 0); /* nothing built: nothing stored */
    assert_non_null(why);
    mt_stowjson_free(j);
    return why;
}

/* "[e,e,...]" with n elements (malloc'd) */
static char *json_array(const char *e, size_t n)
{
    size_t len = strlen(e), k = 0;
    char *out = malloc(n * (len + 1) + 2);
    out[k++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[k++] = ',';
        memcpy(out + k, e, len);
        k += len;
    }
    out[k++] = ']';
    out[k] = 0;
    return out;
}

static void test_refused(void **st)
{
    (void)st;
    const char *good = "[" INST(1) "}]";
    const char *a[] = {good, "[{]"};
    assert_string_equal(refused(a, 2, MT_EMALFORMED), "object member name expected");
    const char *b[] = {"\"just a string\""};
    assert_string_equal(refused(b, 1, MT_EMALFORMED), "metadata is not a JSON array of instances");
    assert_string_equal(refused(NULL, 0, MT_EMALFORMED), "no application/dicom+json metadata part");
    /* too many instances: empty objects are cheap to send */
    char *many = json_array("{}", MT_STOWJSON_MAX_INSTANCES + 1);
    const char *c[] = {many};
    assert_string_equal(refused(c, 1, MT_ETOOBIG),
                        "metadata has more instances than a request may hold");
    free(many);
    /* too many values, over two parts (the budget is per request) */
    char *vals = json_array("0", MT_STOWJSON_MAX_VALUES / 2 + 1);
    const char *d[] = {vals, vals};
    assert_string_equal(refused(d, 2, MT_ETOOBIG),
                        "metadata has more JSON values than a request may hold");
    free(vals);
}

static void test_hold_limit(void **st)
{
    (void)st;
    mt_stowjson_t *j = mt_stowjson_new(10);
    mt_mp_part_t p = {{0}, {0}};
    assert_int_equal(mt_stowjson_part(j, &p), 0);
    assert_int_equal(mt_stowjson_data(j, (const uint8_t *)"123456", 6), 0);
    assert_int_equal(mt_stowjson_part(j, &p), 0);
    assert_int_equal(mt_stowjson_data(j, (const uint8_t *)"1234", 4), 0);
    assert_int_equal(mt_stowjson_data(j, (const uint8_t *)"1", 1), MT_ETOOBIG);
    mt_stowjson_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instances),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_hold_limit),
        cmocka_unit_test(test_default_syntax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
