/* fuzz_json.c - libFuzzer target for node/http/jsonp.c and node/http/dicomjson.c: the input
 * is the text of a STOW-RS metadata part. Invariants: the parser accepts or refuses with a
 * reason and an offset inside the input; a tree it returns has well-formed strings (NUL-
 * terminated at len); every instance the converter builds has its SOP UIDs, encodes in the
 * syntax it names, and that encoding parses back (what we would store is readable); a refused
 * instance leaves no tree and says why. Two bulk parts are offered: "b1" (4 native bytes) and
 * "px" (a frame with the RLE Lossless transfer-syntax parameter). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/dicomjson.h"
#include "http/jsonp.h"
#include "util/err.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_tree(const mt_jsonv_t *v, unsigned depth)
{
    CHECK(depth <= MT_JSONP_MAX_DEPTH + 1);
    if (v->type == MT_JSON_STRING || v->type == MT_JSON_NUMBER)
        CHECK(v->str && v->str[v->len] == 0 && strlen(v->str) == v->len);
    for (size_t i = 0; i < v->n; i++) {
        if (v->type == MT_JSON_OBJECT)
            CHECK(v->keys[i] != NULL);
        check_tree(&v->kids[i], depth + 1);
    }
}

static void instance(const mt_jsonv_t *obj)
{
    static const uint8_t b1[4] = {1, 2, 3, 4}, px[6] = {0, 0, 0, 0, 0, 0};
    mt_dj_bulk_t bulk[2] = {{"b1", "", b1, sizeof b1, false},
                            {"px", "1.2.840.10008.1.2.5", px, sizeof px, false}};
    mt_ds_t *ds = NULL;
    const mt_ts_t *ts = NULL;
    mt_dj_err_t err;
    int rc = mt_dicomjson_instance(obj, bulk, 2, &ds, &ts, &err);
    if (rc) {
        CHECK(ds == NULL && err.reason != NULL);
        CHECK(rc == MT_EMALFORMED || rc == MT_ENOENT || rc == MT_EUNSUPPORTED);
        return;
    }
    CHECK(ds && ts);
    char uid[65];
    CHECK(mt_ds_get_string(ds, MT_TAG(0x0008, 0x0016), uid, sizeof uid) && uid[0]);
    CHECK(mt_ds_get_string(ds, MT_TAG(0x0008, 0x0018), uid, sizeof uid) && uid[0]);
    mt_buf_t b;
    mt_buf_init(&b, 1u << 28);
    if (mt_ds_encode(ds, ts, &b) == 0) {
        mt_ds_t *back = NULL;
        mt_diag_t d;
        CHECK(mt_ds_parse(b.data, b.len, ts, &back, &d) == 0);
        mt_ds_free(back);
    }
    mt_buf_dispose(&b);
    mt_ds_free(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_jsonv_t *v = NULL;
    mt_diag_t d = {0};
    int rc = mt_jsonp_parse((const char *)data, size, &v, &d);
    if (rc) {
        CHECK(rc == MT_EMALFORMED && v == NULL && d.reason && d.offset <= size);
        return 0;
    }
    check_tree(v, 0);
    if (v->type == MT_JSON_OBJECT)
        instance(v);
    for (size_t i = 0; v->type == MT_JSON_ARRAY && i < v->n && i < 64; i++)
        instance(&v->kids[i]);
    mt_jsonv_free(v);
    return 0;
}
