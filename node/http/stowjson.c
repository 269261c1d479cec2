/*
 * stowjson.c - STOW-RS metadata + bulk data requests -> Part 10 data sets. Contract:
 * stowjson.h. PURE.
 */
#include "stowjson.h"

#include <stdio.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "dicomjson.h"
#include "jsonp.h"

typedef struct jpart {
    bool meta;
    char location[512];
    char ts[65];
    mt_buf_t data;
} jpart_t;

struct mt_stowjson {
    jpart_t *parts;
    size_t n, cap;
    size_t max_bytes, held;
    mt_dj_bulk_t *bulk;
    size_t n_bulk;
};

mt_stowjson_t *mt_stowjson_new(size_t max_bytes)
{
    mt_stowjson_t *j = mt_calloc(1, sizeof *j);
    j->max_bytes = max_bytes;
    return j;
}

void mt_stowjson_free(mt_stowjson_t *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++)
        mt_buf_dispose(&j->parts[i].data);
    mt_free(j->parts);
    mt_free(j->bulk);
    mt_free(j);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

/* PS3.18 Table 8.7.3-5: the default transfer syntax of a compressed bulk data media type sent
 * without a transfer-syntax parameter. */
static const char *default_ts(const char *type)
{
    static const char *const map[][2] = {
        {"image/jpeg", "1.2.840.10008.1.2.4.70"}, {"image/dicom-rle", "1.2.840.10008.1.2.5"},
        {"image/jls", "1.2.840.10008.1.2.4.80"},  {"image/jp2", "1.2.840.10008.1.2.4.90"},
        {"image/jpx", "1.2.840.10008.1.2.4.92"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(type, map[i][0]) == 0)
            return map[i][1];
    return "";
}

int mt_stowjson_part(mt_stowjson_t *j, const mt_mp_part_t *part)
{
    if (j->n == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 8;
        j->parts = mt_realloc(j->parts, j->cap * sizeof *j->parts);
    }
    jpart_t *p = &j->parts[j->n++];
    memset(p, 0, sizeof *p);
    char type[96];
    mt_mp_param(part->content_type, "transfer-syntax", type, sizeof type, p->ts, sizeof p->ts);
    lower(type);
    if (!p->ts[0])
        snprintf(p->ts, sizeof p->ts, "%s", default_ts(type));
    p->meta =
        strcmp(type, "application/dicom+json") == 0 || (strcmp(type, "application/json") == 0);
    snprintf(p->location, sizeof p->location, "%s", part->content_location);
    mt_buf_init(&p->data, j->max_bytes);
    return 0;
}

int mt_stowjson_data(mt_stowjson_t *j, const uint8_t *b, size_t n)
{
    if (!j->n)
        return 0;
    if (n > j->max_bytes - j->held)
        return MT_ETOOBIG;
    j->held += n;
    return mt_buf_append(&j->parts[j->n - 1].data, b, n) ? MT_ETOOBIG : 0;
}

size_t mt_stowjson_unused(const mt_stowjson_t *j)
{
    size_t n = 0;
    for (size_t i = 0; i < j->n_bulk; i++)
        n += !j->bulk[i].used;
    return n;
}

static void uid_of(const mt_jsonv_t *obj, const char *key, char *out, size_t outsz)
{
    const mt_jsonv_t *v = mt_jsonv_get(mt_jsonv_get(obj, key), "Value");
    out[0] = 0;
    if (v && v->type == MT_JSON_ARRAY && v->n && v->kids[0].type == MT_JSON_STRING &&
        v->kids[0].len < outsz)
        snprintf(out, outsz, "%s", v->kids[0].str);
}

static void one_instance(mt_stowjson_t *j, const mt_jsonv_t *obj, mt_stowjson_cb cb, void *user)
{
    mt_stowjson_inst_t in;
    memset(&in, 0, sizeof in);
    uid_of(obj, "00080016", in.cls, sizeof in.cls);
    uid_of(obj, "00080018", in.inst, sizeof in.inst);
    mt_ds_t *ds = NULL;
    mt_dj_err_t err;
    in.status = mt_dicomjson_instance(obj, j->bulk, j->n_bulk, &ds, &in.ts, &err);
    mt_buf_t out;
    mt_buf_init(&out, 0xFFFFFFFFu);
    if (!in.status && mt_ds_encode(ds, in.ts, &out) != 0) {
        in.status = MT_ETOOBIG;
        err.reason = "cannot encode the data set";
        err.tag = 0;
    }
    mt_ds_free(ds);
    in.why = err.reason;
    in.tag = err.tag;
    in.ds = out.data;
    in.len = out.len;
    cb(user, &in);
    mt_buf_dispose(&out);
}

int mt_stowjson_finish(mt_stowjson_t *j, mt_stowjson_cb cb, void *user, const char **why)
{
    *why = NULL;
    size_t n_meta = 0;
    for (size_t i = 0; i < j->n; i++)
        n_meta += j->parts[i].meta;
    if (!n_meta) {
        *why = "no application/dicom+json metadata part";
        return MT_EMALFORMED;
    }
    mt_jsonv_t **docs = mt_calloc(n_meta, sizeof *docs);
    j->bulk = mt_calloc(j->n - n_meta + 1, sizeof *j->bulk);
    size_t k = 0, budget = MT_STOWJSON_MAX_VALUES, n_inst = 0;
    int rc = 0;
    for (size_t i = 0; i < j->n; i++) {
        jpart_t *p = &j->parts[i];
        if (!p->meta) {
            j->bulk[j->n_bulk++] =
                (mt_dj_bulk_t){p->location, p->ts, p->data.data, p->data.len, false};
            continue;
        }
        mt_diag_t d = {0};
        rc = mt_jsonp_parse_n((const char *)p->data.data, p->data.len, &budget, &docs[k], &d);
        if (rc) {
            *why = rc == MT_ETOOBIG ? "metadata has more JSON values than a request may hold"
                   : d.reason       ? d.reason
                                    : "malformed JSON";
            break;
        }
        mt_buf_dispose(&p->data); /* the tree holds what is needed */
        if (docs[k]->type != MT_JSON_ARRAY && docs[k]->type != MT_JSON_OBJECT) {
            *why = "metadata is not a JSON array of instances";
            rc = MT_EMALFORMED;
            k++;
            break;
        }
        n_inst += docs[k]->type == MT_JSON_OBJECT ? 1 : docs[k]->n;
        k++;
    }
    if (!rc && n_inst > MT_STOWJSON_MAX_INSTANCES) {
        *why = "metadata has more instances than a request may hold";
        rc = MT_ETOOBIG;
    }
    for (size_t i = 0; i < k && !rc; i++) {
        if (docs[i]->type == MT_JSON_OBJECT) {
            one_instance(j, docs[i], cb, user);
            continue;
        }
        for (size_t e = 0; e < docs[i]->n; e++)
            one_instance(j, &docs[i]->kids[e], cb, user);
    }
    for (size_t i = 0; i < k; i++)
        mt_jsonv_free(docs[i]);
    mt_free(docs);
    return rc;
}
