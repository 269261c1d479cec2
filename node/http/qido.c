/*
 * qido.c - QIDO-RS (PS3.18 §10.6): search for studies, series and instances.
 *
 * The query string becomes a C-FIND identifier (QueryRetrieveLevel, SpecificCharacterSet
 * ISO_IR 192, one element per match key, empty elements for the return keys), planned by the
 * same query layer as C-FIND (mt_query_from_ds, relational model: keys of any level may be
 * matched) and run off the loop (uv_queue_work, pooled read-only connection) with the
 * caller's project as scope. So matching is exactly C-FIND's (node/index/query.h):
 * single value, wildcards '*' '?', DA/TM/DT ranges "lo-hi", UID lists "a\b" or "a,b",
 * case-insensitive PN by component group.
 *
 * Parameters: {attributeID}={value} (keyword, or 8 hex digits; repeated keys: last wins),
 *   includefield={attributeID}[,...] | all (repeatable), limit, offset, fuzzymatching
 *   (accepted; fuzzy matching is not performed: a Warning header says so; PN matching is
 *   case-insensitive anyway), accept (for the Accept header, PS3.18 §8.3.3.1). An unknown
 *   attribute or parameter is 400.
 *   CMR series tags (docs/tagging.md): cmrtag / cmrview / cmrconfidence / cmrversion name the
 *   private keys (4D49,1010..1013) (also usable as 4D491010...); a cmrtag / cmrview value may
 *   be a ','- or '\'-separated list, as may ModalitiesInStudy and UIDs. Whenever one of them is asked for, the private creator
 *   (4D49,0010) is too (so the JSON is valid); /studies matches them (studies having such a
 *   series) but never returns them. Not in the defaults; includefield=all adds them at
 *   series and instance level.
 * Response: 200 application/dicom+json, an array of objects (json.c, dcm2json's encoding),
 *   each with RetrieveURL; 204 when nothing matches. More matches than query.max_matches:
 *   the first max_matches and a Warning header.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../dicom/dict.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/log.h"
#include "json.h"
#include "web.h"

#define QIDO_MAX_JSON (512u << 20)

typedef struct qido {
    mt_web_req_t *wr;
    mt_query_t *q;
    mt_index_level_t level;
    char *index_path;
    uint32_t limit, offset, max;
    uint32_t seen, n;
    bool capped, fuzzy;
    int err;
    mt_buf_t out;
    uv_work_t work;
} qido_t;

static const uint32_t study_defaults[] = {
    MT_TAG(0x0008, 0x0005), MT_TAG(0x0008, 0x0020), MT_TAG(0x0008, 0x0030),
    MT_TAG(0x0008, 0x0050), MT_TAG(0x0008, 0x0056), MT_TAG(0x0008, 0x0061),
    MT_TAG(0x0008, 0x0090), MT_TAG(0x0010, 0x0010), MT_TAG(0x0010, 0x0020),
    MT_TAG(0x0010, 0x0030), MT_TAG(0x0010, 0x0040), MT_TAG(0x0020, 0x000D),
    MT_TAG(0x0020, 0x0010), MT_TAG(0x0020, 0x1206), MT_TAG(0x0020, 0x1208),
    MT_TAG(0x0008, 0x1030), 0};
static const uint32_t series_defaults[] = {
    MT_TAG(0x0008, 0x0005), MT_TAG(0x0008, 0x0060), MT_TAG(0x0008, 0x103E),
    MT_TAG(0x0020, 0x000D), MT_TAG(0x0020, 0x000E), MT_TAG(0x0020, 0x0011),
    MT_TAG(0x0020, 0x1209), MT_TAG(0x0040, 0x0244), MT_TAG(0x0040, 0x0245), 0};
static const uint32_t instance_defaults[] = {
    MT_TAG(0x0008, 0x0005), MT_TAG(0x0008, 0x0016), MT_TAG(0x0008, 0x0018),
    MT_TAG(0x0008, 0x0056), MT_TAG(0x0020, 0x000D), MT_TAG(0x0020, 0x000E),
    MT_TAG(0x0020, 0x0013), MT_TAG(0x0028, 0x0010), MT_TAG(0x0028, 0x0011),
    MT_TAG(0x0028, 0x0100), MT_TAG(0x0028, 0x0008), 0};
/* computed attributes includefield=all adds at each level */
static const uint32_t computed_all[] = {MT_TAG(0x0020, 0x1206), MT_TAG(0x0020, 0x1208),
                                        MT_TAG(0x0020, 0x1209), MT_TAG(0x0008, 0x0061),
                                        MT_TAG(0x0008, 0x0062), 0};

#define CMR_CREATOR_TAG MT_TAG(MT_CMR_GROUP, 0x0010)
#define CMR_TAG_TAG MT_TAG(MT_CMR_GROUP, 0x1010)
#define CMR_VIEW_TAG MT_TAG(MT_CMR_GROUP, 0x1011)

/* the CMR series tag attributes (docs/tagging.md): private, not in the dictionary */
static bool is_cmr(uint32_t tag)
{
    return MT_TAG_GROUP(tag) == MT_CMR_GROUP &&
           (MT_TAG_ELEM(tag) == 0x0010 || (MT_TAG_ELEM(tag) >= 0x1010 && MT_TAG_ELEM(tag) <= 0x1013));
}

static uint16_t vr_of(uint32_t tag)
{
    switch (tag) {
    case CMR_VIEW_TAG:
        return MT_VR('C', 'S');
    case MT_TAG(MT_CMR_GROUP, 0x1012):
        return MT_VR('D', 'S');
    default:
        if (is_cmr(tag))
            return MT_VR('L', 'O');
    }
    const mt_dict_entry_t *d = mt_dict_by_tag(tag);
    return d ? d->vr : MT_VR('U', 'N');
}

static void want(mt_ds_t *id, uint32_t tag)
{
    if (is_cmr(tag) && tag != CMR_CREATOR_TAG && !mt_ds_get(id, CMR_CREATOR_TAG))
        mt_ds_set(id, CMR_CREATOR_TAG, MT_VR('L', 'O'), NULL, 0); /* valid DICOM JSON */
    if (!mt_ds_get(id, tag))
        mt_ds_set(id, tag, vr_of(tag), NULL, 0);
}

/* keyword, GGGGEEEE, or cmrtag / cmrview / cmrconfidence / cmrversion -> tag; 0 when
 * none. */
static uint32_t attr_tag(const char *s)
{
    static const struct {
        const char *name;
        uint32_t tag;
    } cmr[] = {{"cmrtag", CMR_TAG_TAG},
               {"cmrview", CMR_VIEW_TAG},
               {"cmrconfidence", MT_TAG(MT_CMR_GROUP, 0x1012)},
               {"cmrversion", MT_TAG(MT_CMR_GROUP, 0x1013)}};
    for (size_t i = 0; i < sizeof cmr / sizeof cmr[0]; i++)
        if (strcmp(s, cmr[i].name) == 0)
            return cmr[i].tag;
    size_t n = strlen(s);
    if (n == 8 && strspn(s, "0123456789abcdefABCDEF") == 8)
        return (uint32_t)strtoul(s, NULL, 16);
    const mt_dict_entry_t *d = mt_dict_by_keyword(s);
    return d ? d->tag : 0;
}

static void defaults(mt_ds_t *id, mt_index_level_t level, bool with_upper)
{
    const uint32_t *lists[3] = {study_defaults, series_defaults, instance_defaults};
    int from = with_upper ? 0 : (int)level - 1;
    for (int l = from; l <= (int)level - 1; l++)
        for (const uint32_t *t = lists[l]; *t; t++)
            want(id, *t);
}

static void include_all(mt_ds_t *id, mt_index_level_t level)
{
    size_t n;
    const mt_index_key_t *k = mt_index_keys(&n);
    for (size_t i = 0; i < n; i++)
        if (k[i].level <= level)
            want(id, k[i].tag);
    for (const uint32_t *t = computed_all; *t; t++)
        if ((*t == MT_TAG(0x0020, 0x1209) && level >= MT_LEVEL_SERIES) ||
            *t != MT_TAG(0x0020, 0x1209))
            want(id, *t);
    if (level >= MT_LEVEL_SERIES)
        for (uint16_t e = 0x1010; e <= 0x1013; e++)
            want(id, MT_TAG(MT_CMR_GROUP, e));
}

static int match_cb(void *user, const mt_ds_t *resp)
{
    qido_t *x = user;
    if (x->seen++ < x->offset)
        return 0;
    if (x->limit && x->n >= x->limit)
        return 1;
    mt_ds_t *d = (mt_ds_t *)resp;
    mt_ds_remove(d, MT_TAG(0x0008, 0x0052));
    if (x->level < MT_LEVEL_SERIES) { /* series attributes: matched, not returned */
        mt_ds_remove(d, CMR_CREATOR_TAG);
        for (uint16_t e = 0x1010; e <= 0x1013; e++)
            mt_ds_remove(d, MT_TAG(MT_CMR_GROUP, e));
    }
    char st[65] = "", se[65] = "", in[65] = "", url[1024];
    mt_ds_get_string(d, MT_TAG(0x0020, 0x000D), st, sizeof st);
    mt_ds_get_string(d, MT_TAG(0x0020, 0x000E), se, sizeof se);
    mt_ds_get_string(d, MT_TAG(0x0008, 0x0018), in, sizeof in);
    if (x->level == MT_LEVEL_STUDY)
        snprintf(url, sizeof url, "%s/studies/%s", x->wr->base, st);
    else if (x->level == MT_LEVEL_SERIES)
        snprintf(url, sizeof url, "%s/studies/%s/series/%s", x->wr->base, st, se);
    else
        snprintf(url, sizeof url, "%s/studies/%s/series/%s/instances/%s", x->wr->base, st, se,
                 in);
    mt_ds_set_string(d, MT_TAG(0x0008, 0x1190), MT_VR('U', 'R'), url);
    int rc = mt_buf_append(&x->out, x->n ? "," : "[", 1);
    mt_json_opts_t o = {.bulk_threshold = 0};
    rc = rc ? rc : mt_json_ds(d, &o, &x->out);
    if (rc)
        return rc;
    x->n++;
    return 0;
}

static void work(uv_work_t *w)
{
    qido_t *x = w->data;
    mt_qdb_t *db = mt_qdb_take(x->index_path);
    if (!db) {
        x->err = MT_EDB;
        return;
    }
    mt_qscope_t scope = {.project = x->wr->project, .retrieve_ae = x->wr->conf->ae_title};
    uint32_t cap = x->max;
    int rc = mt_qdb_find(db, x->q, &scope, cap, match_cb, x, &x->capped);
    if (rc < 0)
        x->err = rc;
    mt_qdb_give(x->index_path, db);
}

static void after(uv_work_t *w, int status)
{
    qido_t *x = w->data;
    mt_web_req_t *wr = x->wr;
    (void)status;
    if (x->err) {
        mt_log(MT_LOG_WARN, NULL, "http %s: qido failed: %s", wr->r->peer, mt_strerror(x->err));
        mt__web_fail(wr, x->err == MT_ETOOBIG ? 413 : 500, "query failed");
    } else if (x->n == 0) {
        mt_http_respond(wr->r, 204, NULL, NULL, NULL, 0);
        mt__web_req_free(wr);
    } else {
        mt_buf_append(&x->out, "]", 1);
        char extra[256] = "";
        size_t e = 0;
        if (x->fuzzy)
            e += (size_t)snprintf(extra + e, sizeof extra - e,
                                  "Warning: 299 mitral \"fuzzymatching not supported\"\r\n");
        if (x->capped && (!x->limit || x->n < x->limit))
            snprintf(extra + e, sizeof extra - e,
                     "Warning: 299 mitral \"The number of results exceeded the maximum "
                     "supported by the server. Additional results can be requested.\"\r\n");
        mt_http_respond(wr->r, 200, "application/dicom+json", extra[0] ? extra : NULL,
                        x->out.data, x->out.len);
        mt__web_req_free(wr);
    }
    mt_query_free(x->q);
    mt_free(x->index_path);
    mt_buf_dispose(&x->out);
    mt_free(x);
}

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    if (!*s || *s == '-')
        return false;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > 0xFFFFFFFFul)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* One side of a DA match: YYYYMMDD with a month 01-12 and a day 01-31 (or empty). */
static bool da_ok(const char *s, size_t n)
{
    return n == 0 || (n == 8 && digits(s, 8) && num2(s + 4) >= 1 && num2(s + 4) <= 12 &&
                      num2(s + 6) >= 1 && num2(s + 6) <= 31);
}

/* One side of a TM match: HH[MM[SS[.F{1,6}]]] within 23:59:60 (or empty). */
static bool tm_ok(const char *s, size_t n)
{
    if (n == 0)
        return true;
    size_t whole = n;
    const char *dot = memchr(s, '.', n);
    if (dot) {
        whole = (size_t)(dot - s);
        size_t nf = n - whole - 1;
        if (whole != 6 || nf < 1 || nf > 6 || !digits(dot + 1, nf))
            return false;
    }
    if ((whole != 2 && whole != 4 && whole != 6) || !digits(s, whole))
        return false;
    return num2(s) <= 23 && (whole < 4 || num2(s + 2) <= 59) && (whole < 6 || num2(s + 4) <= 60);
}

/* A DA or TM match value (PS3.4 C.2.2.2.1, C.2.2.2.5): a value, a range lo-hi, lo- or -hi,
 * or "*" (universal); anything else is a malformed query, not a value that matches nothing. */
static bool date_time_ok(uint16_t vr, const char *v)
{
    bool (*side)(const char *, size_t) = vr == MT_VR('D', 'A') ? da_ok : tm_ok;
    if (strcmp(v, "*") == 0)
        return true;
    const char *dash = strchr(v, '-');
    if (!dash)
        return side(v, strlen(v));
    if (strchr(dash + 1, '-') || (dash == v && !dash[1]))
        return false;
    return side(v, (size_t)(dash - v)) && side(dash + 1, strlen(dash + 1));
}

void mt__qido(mt_web_req_t *wr, mt_index_level_t level, const char *study, const char *series)
{
    if (!mt__web_accepts_json(wr)) {
        mt__web_fail(wr, 406, "QIDO-RS answers application/dicom+json only");
        return;
    }
    mt_ds_t *id = mt__web_identifier(level, study, series, NULL);
    qido_t *x = mt_calloc(1, sizeof *x);
    x->wr = wr;
    x->level = level;
    x->max = wr->conf->max_matches;
    mt_buf_init(&x->out, QIDO_MAX_JSON);
    char err[160] = "";
    bool all = false;
    for (size_t i = 0; i < wr->n_params && !err[0]; i++) {
        const char *k = wr->params[i].key, *v = wr->params[i].value;
        if (strcmp(k, "limit") == 0) {
            if (!parse_u32(v, &x->limit))
                snprintf(err, sizeof err, "limit: not a number");
        } else if (strcmp(k, "offset") == 0) {
            if (!parse_u32(v, &x->offset))
                snprintf(err, sizeof err, "offset: not a number");
        } else if (strcmp(k, "fuzzymatching") == 0) {
            if (strcmp(v, "true") == 0)
                x->fuzzy = true;
            else if (strcmp(v, "false") != 0)
                snprintf(err, sizeof err, "fuzzymatching: true or false");
        } else if (strcmp(k, "accept") == 0) {
            continue; /* the Accept header's stand-in, read above */
        } else if (strcmp(k, "includefield") == 0) {
            char *dup = mt_strdup(v), *save = NULL;
            for (char *t = strtok_r(dup, ",", &save); t && !err[0];
                 t = strtok_r(NULL, ",", &save)) {
                if (strcmp(t, "all") == 0) {
                    all = true;
                    continue;
                }
                uint32_t tag = attr_tag(t);
                if (!tag)
                    snprintf(err, sizeof err, "includefield: unknown attribute %.60s", t);
                else
                    want(id, tag);
            }
            mt_free(dup);
        } else {
            uint32_t tag = attr_tag(k);
            if (!tag || MT_TAG_GROUP(tag) == 0x0002 || tag == MT_TAG(0x0008, 0x0052) ||
                tag == MT_TAG(0x0008, 0x0005)) {
                snprintf(err, sizeof err, "unknown query parameter %.60s", k);
                break;
            }
            /* UID lists may be comma-separated (PS3.18 §8.3.4.1) */
            uint16_t vr = vr_of(tag);
            char *val = mt_strdup(v);
            bool cmr = tag == CMR_TAG_TAG || tag == CMR_VIEW_TAG;
            if (cmr)
                want(id, CMR_CREATOR_TAG);
            /* value lists where C-FIND matches one: UIDs, ModalitiesInStudy (PS3.4 C.6.2.1.2)
             * and the CMR keys; no ',' can be part of those values (UI and CS repertoires);
             * elsewhere a ',' is data ("Smith, J" in a description) */
            bool list = vr == MT_VR('U', 'I') || cmr || tag == MT_TAG(0x0008, 0x0061);
            if (list)
                for (char *c = val; *c; c++)
                    if (*c == ',')
                        *c = '\\';
            if (vr == MT_VR('S', 'Q'))
                snprintf(err, sizeof err, "sequence matching is not supported (%.40s)", k);
            else if ((vr == MT_VR('D', 'A') || vr == MT_VR('T', 'M')) && !date_time_ok(vr, val))
                snprintf(err, sizeof err, "%.40s: not a %s or a range of them", k,
                         vr == MT_VR('D', 'A') ? "date YYYYMMDD" : "time HHMMSS.FFFFFF");
            else if (strlen(val) > 1024)
                snprintf(err, sizeof err, "value of %.40s too long", k);
            else
                mt_ds_set_string(id, tag, vr, val);
            mt_free(val);
        }
    }
    if (x->limit && x->offset + (uint64_t)x->limit < x->max)
        x->max = x->offset + x->limit;
    if (!err[0]) {
        defaults(id, level, study == NULL);
        if (all)
            include_all(id, level);
        mt_query_err_t qe;
        if (mt_query_from_ds(id, MT_QR_RELATIONAL, &x->q, &qe) != 0)
            snprintf(err, sizeof err, "query refused: %s", qe.comment);
    }
    mt_ds_free(id);
    if (err[0]) {
        mt_buf_dispose(&x->out);
        mt_free(x);
        mt__web_fail(wr, 400, err);
        return;
    }
    x->index_path = mt_strdup(wr->conf->index_path);
    x->work.data = x;
    uv_queue_work(mt_node_loop(wr->node), &x->work, work, after);
}
