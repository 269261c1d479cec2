/*
 * query_sql.c - mt_query_t -> SQL over the index tables (db/001_initial.sql, 002_projects.sql)
 * with bound text parameters. PURE: builds text, runs nothing.
 *
 * Shape:  SELECT <columns> FROM <level table> JOIN <parents up to patients>
 *         WHERE <one condition per matching key> [AND <project scope>] [LIMIT n]
 * Tables are aliased p (patients), st (studies), se (series), i (instances).
 *
 * Conditions are chosen so that SQLite can drive the search from an index (the migrations
 * create one for each key a workstation typically filters on), and mt_match() (query.c,
 * registered by query_exec.c) decides the exact semantics where SQL alone would be wrong:
 *   single, ASCII, not PN       col = ?                       (UNIQUE / plain index)
 *   single, non-ASCII           (col = ?utf8 OR col = ?latin1 OR mt_match(0, ?, col, cs))
 *                               (cs: the row's SpecificCharacterSet; mt_match converts the
 *                               stored value from it: no index, a scan of the level)
 *   PN (single or wildcard)     col >= ?lo AND col < ?hi AND mt_match(PN, ?, col)
 *                               lo/hi: the lowercased ASCII prefix of the first component
 *                               group before any wildcard (PN columns are COLLATE NOCASE)
 *   wildcard, not PN            col >= ?prefix AND col < ?prefix+1 AND mt_match(0, ?, col)
 *   multi-valued (MULTI)        mt_match(MULTI, ?, col)
 *   range DA                    col >= ?lo AND col <= ?hi
 *   range TM, DT                col >= ?lo AND col < ?hi+1    (hi is a prefix: "1000"
 *                               includes 10:00:59.99; lo in its shortest form:
 *                               "093000.000" -> "0930", so a stored "0930" matches)
 *   UID list                    col IN (?, ?, ...)
 *   ModalitiesInStudy           st.pk IN (SELECT study_pk FROM series WHERE modality ...)
 * Every mt_match() call also gets the row's stored SpecificCharacterSet (charset_expr()).
 * "+1" is the prefix with its last byte incremented: the smallest string above every string
 * that starts with the prefix.
 * Computed attributes: NumberOfStudyRelatedSeries/Instances, NumberOfSeriesRelatedInstances and
 * ModalitiesInStudy are columns kept by the triggers of db/003_query_counts.sql (no per-row
 * counting); patient-level counts sum them over the patient's (project's) studies;
 * SOPClassesInStudy is a DISTINCT over the study's instances.
 * Project scope: EXISTS (SELECT 1 FROM project_studies ps WHERE ps.project = ? AND
 * ps.study_uid = st.study_instance_uid) (its primary key), at PATIENT level through the
 * patient's studies; patient-level counts then count the project's studies only.
 */
#include "query.h"

#include <stdio.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/err.h"

static const char *const alias[MT_LEVEL_COUNT] = {"p", "st", "se", "i"};

static void put(mt_qsql_t *o, const char *s)
{
    mt_buf_append(&o->sql, s, strlen(s));
}

static void putf(mt_qsql_t *o, const char *fmt, const char *a, const char *b)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, fmt, a, b);
    put(o, tmp);
}

/* Append "?N" bound to v (copied). */
static void param(mt_qsql_t *o, const char *v)
{
    o->params = mt_realloc(o->params, (o->n_params + 1) * sizeof *o->params);
    o->params[o->n_params++] = mt_strdup(v);
    char tmp[16];
    snprintf(tmp, sizeof tmp, "?%zu", o->n_params);
    put(o, tmp);
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* The ASCII prefix of s before the first wildcard, '=' (PN group end) or non-ASCII byte. */
static size_t plain_prefix(const char *s, bool pn)
{
    size_t n = 0;
    while (s[n] && s[n] != '*' && s[n] != '?' && (unsigned char)s[n] < 0x80 &&
           !(pn && (s[n] == '=' || s[n] == '\\')))
        n++;
    return n;
}

/* "col >= lo AND col < lo+1 AND " for a prefix (lowercased for NOCASE columns). */
static void prefix_range(mt_qsql_t *o, const char *col, const char *s, size_t n, bool lower)
{
    if (n == 0)
        return;
    char lo[256];
    if (n > sizeof lo - 1)
        n = sizeof lo - 1;
    for (size_t i = 0; i < n; i++)
        lo[i] = (char)(lower && s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    lo[n] = 0;
    char hi[256];
    memcpy(hi, lo, n + 1);
    hi[n - 1] = (char)(hi[n - 1] + 1);
    put(o, col);
    put(o, " >= ");
    param(o, lo);
    put(o, " AND ");
    put(o, col);
    put(o, " < ");
    param(o, hi);
    put(o, " AND ");
}

static void incremented(const char *s, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s", s);
    size_t n = strlen(out);
    if (n)
        out[n - 1] = (char)(out[n - 1] + 1);
}

/* The lower bound of a TM or DT range in its shortest form of the same value: a zero
 * fraction and trailing "00" fields dropped ("093000.000000" -> "0930"; never
 * below HH / YYYY), so that the string comparison also takes a stored value written with
 * fewer fields ("0930" or "093000" >= "0930"). A DT with a UTC offset is left as it is. */
static void shortest_lower_bound(const char *s, bool dt, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s", s);
    if (strpbrk(out, "+-"))
        return;
    size_t n = strlen(out);
    char *dot = strchr(out, '.');
    if (dot) {
        while (n > (size_t)(dot - out) + 1 && out[n - 1] == '0')
            out[--n] = '\0';
        if (out[n - 1] == '.')
            out[--n] = '\0';
    }
    size_t keep = dt ? 4 : 2;
    while (!strchr(out, '.') && n >= keep + 2 && n % 2 == 0 && out[n - 1] == '0' &&
           out[n - 2] == '0')
        out[n -= 2] = '\0';
}

static unsigned match_flags(const mt_qkey_t *k)
{
    unsigned f = 0;
    if (k->vr == MT_VR('P', 'N') || (k->col && k->col->kind == MT_KIND_PN))
        f |= MT_QF_PN;
    if (k->col && k->col->kind == MT_KIND_MULTI)
        f |= MT_QF_MULTI;
    if (k->vr == MT_VR('U', 'I') || k->vr == MT_VR('D', 'A') || k->vr == MT_VR('T', 'M') ||
        k->vr == MT_VR('D', 'T'))
        f |= MT_QF_EXACT; /* no wild card matching (PS3.4 C.2.2.2.4) */
    return f;
}

/* mt_match(flags, ?pattern, col, <the row's character set>) */
static void match_fn(mt_qsql_t *o, unsigned flags, const char *pattern, const char *col)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "mt_match(%u, ", flags);
    put(o, tmp);
    param(o, pattern);
    put(o, ", ");
    put(o, col);
    put(o, ", ");
    put(o, o->charset_expr ? o->charset_expr : "NULL");
    put(o, ")");
}

/* The character set of the patient row's text (db/009; rows indexed before it: the patient's
 * first study that declares one). */
#define PATIENT_CHARSET                                                                          \
    "coalesce(nullif(p.specific_character_set, ''), (SELECT s2.specific_character_set FROM "    \
    "studies s2 WHERE s2.patient_pk = p.pk AND s2.specific_character_set <> '' LIMIT 1))"

/* The stored SpecificCharacterSet of a row of a query whose FROM reaches level fl: the
 * patient's (above), its study's, or an instance's own (else its study's). The patient's
 * attributes are in the patient's (cond() matches them in it; responses convert them). */
static const char *charset_expr(mt_index_level_t fl)
{
    switch (fl) {
    case MT_LEVEL_PATIENT:
        return PATIENT_CHARSET;
    case MT_LEVEL_INSTANCE:
        return "coalesce(i.specific_character_set, st.specific_character_set)";
    default:
        return "st.specific_character_set";
    }
}

static void cond_modalities(mt_qsql_t *o, const mt_qkey_t *k)
{
    put(o, "st.pk IN (SELECT study_pk FROM series WHERE ");
    if (k->match == MT_QM_LIST) {
        put(o, "modality IN (");
        for (size_t i = 0; i < k->n_list; i++) {
            if (i)
                put(o, ", ");
            param(o, k->list[i]);
        }
        put(o, ")");
    } else if (k->match == MT_QM_WILDCARD) {
        const char *cs = o->charset_expr;
        o->charset_expr = NULL; /* CS values: no character set */
        match_fn(o, 0, k->value, "modality");
        o->charset_expr = cs;
    } else {
        put(o, "modality = ");
        param(o, k->value);
    }
    put(o, ")");
}

/* CMR tag / view keys: EXISTS over series_tags; a '\'-separated value is a list of
 * alternatives (each may have wildcards): "only the series with these tags". */
static void cond_cmr(mt_qsql_t *o, const mt_qkey_t *k, mt_index_level_t fl)
{
    const char *col = k->computed == MT_QC_CMR_TAG ? "t.tag" : "t.view";
    /* at STUDY / PATIENT level (no series in the FROM): at least one series of the entity */
    if (fl == MT_LEVEL_STUDY)
        put(o, "EXISTS (SELECT 1 FROM series s5 JOIN series_tags t ON t.series_uid = "
               "s5.series_instance_uid WHERE s5.study_pk = st.pk AND (");
    else if (fl == MT_LEVEL_PATIENT)
        put(o, "EXISTS (SELECT 1 FROM studies s6 JOIN series s5 ON s5.study_pk = s6.pk "
               "JOIN series_tags t ON t.series_uid = s5.series_instance_uid "
               "WHERE s6.patient_pk = p.pk AND (");
    else
        put(o, "EXISTS (SELECT 1 FROM series_tags t WHERE t.series_uid = "
               "se.series_instance_uid AND (");
    const char *v = k->value ? k->value : "";
    bool first = true;
    while (true) {
        const char *e = strchr(v, '\\');
        size_t n = e ? (size_t)(e - v) : strlen(v);
        char alt[256];
        if (n >= sizeof alt)
            n = sizeof alt - 1;
        memcpy(alt, v, n);
        alt[n] = 0;
        if (!first)
            put(o, " OR ");
        first = false;
        match_fn(o, MT_QF_ICASE, alt, col);
        if (!e)
            break;
        v = e + 1;
    }
    put(o, "))");
}

static void cond(mt_qsql_t *o, const mt_qkey_t *k, mt_index_level_t fl)
{
    if (k->computed == MT_QC_MODALITIES) {
        cond_modalities(o, k);
        return;
    }
    if (k->computed == MT_QC_CMR_TAG || k->computed == MT_QC_CMR_VIEW) {
        cond_cmr(o, k, fl);
        return;
    }
    char col[96];
    snprintf(col, sizeof col, "%s.%s", alias[k->col->level], k->col->column);
    unsigned flags = match_flags(k);
    const char *row_charset = o->charset_expr;
    if (k->col->level == MT_LEVEL_PATIENT)
        o->charset_expr = PATIENT_CHARSET; /* the patient row's text is in the patient's */
    switch (k->match) {
    case MT_QM_SINGLE:
    case MT_QM_WILDCARD:
        if (flags & MT_QF_MULTI) {
            match_fn(o, flags, k->value, col);
        } else if (flags & MT_QF_PN) {
            prefix_range(o, col, k->value, plain_prefix(k->value, true), true);
            match_fn(o, flags, k->value, col);
        } else if (k->match == MT_QM_WILDCARD) {
            prefix_range(o, col, k->value, plain_prefix(k->value, false), false);
            match_fn(o, flags, k->value, col);
        } else if (is_ascii(k->value)) {
            put(o, col);
            put(o, " = ");
            param(o, k->value);
        } else {
            char *l1 = mt_query_utf8_to_latin1(k->value);
            put(o, "(");
            put(o, col);
            put(o, " = ");
            param(o, k->value);
            if (l1) {
                put(o, " OR ");
                put(o, col);
                put(o, " = ");
                param(o, l1);
            }
            put(o, " OR ");
            match_fn(o, flags, k->value, col); /* stored in another character set */
            put(o, ")");
            mt_free(l1);
        }
        break;
    case MT_QM_RANGE: {
        bool first = true;
        if (k->lo) {
            put(o, col);
            put(o, " >= ");
            if (k->col->kind == MT_KIND_TIME || k->col->kind == MT_KIND_DT) {
                char lo[96];
                shortest_lower_bound(k->lo, k->col->kind == MT_KIND_DT, lo, sizeof lo);
                param(o, lo);
            } else {
                param(o, k->lo);
            }
            first = false;
        }
        if (k->hi) {
            if (!first)
                put(o, " AND ");
            put(o, col);
            if (k->col->kind == MT_KIND_DATE) {
                put(o, " <= ");
                param(o, k->hi);
            } else {
                char hi[96];
                incremented(k->hi, hi, sizeof hi);
                put(o, " < ");
                param(o, hi);
            }
        }
        break;
    }
    case MT_QM_LIST:
        put(o, col);
        put(o, " IN (");
        for (size_t i = 0; i < k->n_list; i++) {
            if (i)
                put(o, ", ");
            param(o, k->list[i]);
        }
        put(o, ")");
        break;
    default:
        put(o, "1");
        break;
    }
    o->charset_expr = row_charset;
}

static void from(mt_qsql_t *o, mt_index_level_t l)
{
    switch (l) {
    case MT_LEVEL_PATIENT:
        put(o, " FROM patients p");
        break;
    case MT_LEVEL_STUDY:
        put(o, " FROM studies st JOIN patients p ON p.pk = st.patient_pk");
        break;
    case MT_LEVEL_SERIES:
        put(o, " FROM series se JOIN studies st ON st.pk = se.study_pk"
               " JOIN patients p ON p.pk = st.patient_pk");
        break;
    default:
        put(o, " FROM instances i JOIN series se ON se.pk = i.series_pk"
               " JOIN studies st ON st.pk = se.study_pk JOIN patients p ON p.pk = st.patient_pk");
        break;
    }
}

static void project_exists(mt_qsql_t *o, const char *project, const char *study_alias)
{
    putf(o, "EXISTS (SELECT 1 FROM project_studies ps WHERE ps.project = ", "", "");
    param(o, project);
    putf(o, " AND ps.study_uid = %s.study_instance_uid)", study_alias, "");
}

/* Select-list expression of a computed key; false when it has none (filled by the caller
 * of the SQL, or empty). */
static bool computed_expr(mt_qsql_t *o, const mt_qkey_t *k, const mt_qscope_t *scope)
{
    switch (k->computed) {
    case MT_QC_PATIENT_STUDIES:
    case MT_QC_PATIENT_SERIES:
    case MT_QC_PATIENT_INSTANCES:
        put(o, k->computed == MT_QC_PATIENT_STUDIES   ? "(SELECT count(*)"
               : k->computed == MT_QC_PATIENT_SERIES ? "(SELECT coalesce(sum(s2.num_series), 0)"
                                                     : "(SELECT coalesce(sum(s2.num_instances), 0)");
        put(o, " FROM studies s2 WHERE s2.patient_pk = p.pk");
        if (scope && scope->project) {
            put(o, " AND ");
            project_exists(o, scope->project, "s2");
        }
        put(o, ")");
        return true;
    /* kept by the triggers of db/003_query_counts.sql */
    case MT_QC_STUDY_SERIES:
        put(o, "st.num_series");
        return true;
    case MT_QC_STUDY_INSTANCES:
        put(o, "st.num_instances");
        return true;
    case MT_QC_SERIES_INSTANCES:
        put(o, "se.num_instances");
        return true;
    case MT_QC_MODALITIES:
        put(o, "st.modalities_in_study");
        return true;
    case MT_QC_SOP_CLASSES:
        put(o, "(SELECT group_concat(c, '\\') FROM (SELECT DISTINCT i2.sop_class_uid AS c FROM "
               "series e2 JOIN instances i2 ON i2.series_pk = e2.pk WHERE e2.study_pk = st.pk))");
        return true;
    case MT_QC_TS:
        put(o, "i.transfer_syntax_uid");
        return true;
    case MT_QC_CMR_TAG:
        put(o, "(SELECT t.tag FROM series_tags t WHERE t.series_uid = se.series_instance_uid)");
        return true;
    case MT_QC_CMR_VIEW:
        put(o, "(SELECT t.view FROM series_tags t WHERE t.series_uid = se.series_instance_uid)");
        return true;
    case MT_QC_CMR_CONFIDENCE:
        put(o, "(SELECT printf('%.2f', t.confidence) FROM series_tags t WHERE "
               "t.series_uid = se.series_instance_uid)");
        return true;
    case MT_QC_CMR_VERSION:
        put(o, "(SELECT t.version FROM series_tags t WHERE t.series_uid = se.series_instance_uid)");
        return true;
    default:
        return false;
    }
}

void mt_qsql_dispose(mt_qsql_t *s)
{
    mt_buf_dispose(&s->sql);
    for (size_t i = 0; i < s->n_params; i++)
        mt_free(s->params[i]);
    mt_free(s->params);
    mt_free(s->col_of_key);
    memset(s, 0, sizeof *s);
}

int mt_query_sql(const mt_query_t *q, const mt_qscope_t *scope, mt_qsel_t sel, uint32_t limit,
                 mt_qsql_t *o)
{
    memset(o, 0, sizeof *o);
    mt_buf_init(&o->sql, 1u << 20);
    mt_index_level_t fl = q->level;
    if (sel == MT_QSEL_INSTANCES)
        fl = MT_LEVEL_INSTANCE;
    if (sel == MT_QSEL_STUDY_UIDS && fl < MT_LEVEL_STUDY)
        fl = MT_LEVEL_STUDY;
    o->col_of_key = mt_malloc((q->n_keys ? q->n_keys : 1) * sizeof *o->col_of_key);
    for (size_t i = 0; i < q->n_keys; i++)
        o->col_of_key[i] = -1;
    o->col_charset = -1;
    o->col_patient_charset = -1;
    o->charset_expr = charset_expr(fl);

    switch (sel) {
    case MT_QSEL_FIND: {
        put(o, "SELECT ");
        put(o, charset_expr(q->level));
        o->col_charset = 0;
        int col = 1;
        if (q->level > MT_LEVEL_PATIENT) {
            put(o, ", " PATIENT_CHARSET);
            o->col_patient_charset = col++;
        }
        for (size_t i = 0; i < q->n_keys; i++) {
            const mt_qkey_t *k = &q->keys[i];
            if (!k->returned || k->below_level || k->level > q->level)
                continue;
            size_t before = o->sql.len;
            put(o, ", ");
            bool have;
            if (k->computed)
                have = computed_expr(o, k, scope);
            else if (k->col) {
                putf(o, "%s.%s", alias[k->col->level], k->col->column);
                have = true;
            } else if (mt_index_seq_level(k->tag) >= 0) {
                putf(o, "%s.%s", alias[k->level], "seq_keys");
                have = true;
            } else {
                have = false;
            }
            if (!have) {
                o->sql.len = before;
                continue;
            }
            o->col_of_key[i] = col++;
        }
        o->n_cols = (size_t)col;
        break;
    }
    case MT_QSEL_INSTANCES:
        put(o, "SELECT st.study_instance_uid, se.series_instance_uid, i.sop_instance_uid, "
               "i.sop_class_uid, i.transfer_syntax_uid, i.path, i.size");
        o->n_cols = 7;
        break;
    case MT_QSEL_STUDY_UIDS:
        put(o, "SELECT DISTINCT st.study_instance_uid");
        o->n_cols = 1;
        break;
    }
    from(o, fl);
    put(o, " WHERE 1");
    for (size_t i = 0; i < q->n_keys; i++) {
        const mt_qkey_t *k = &q->keys[i];
        if (!k->matching)
            continue;
        put(o, " AND ");
        cond(o, k, fl);
    }
    if (fl == MT_LEVEL_INSTANCE)
        put(o, " AND i.verified = 1");
    if (scope && scope->project) {
        put(o, " AND ");
        if (fl == MT_LEVEL_PATIENT) {
            put(o, "EXISTS (SELECT 1 FROM studies s3 JOIN project_studies ps ON ps.study_uid = "
                   "s3.study_instance_uid AND ps.project = ");
            param(o, scope->project);
            put(o, " WHERE s3.patient_pk = p.pk)");
        } else {
            project_exists(o, scope->project, "st");
        }
    }
    if (sel == MT_QSEL_INSTANCES)
        put(o, " ORDER BY st.pk, se.series_number, se.pk, i.instance_number, i.pk");
    if (limit) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, " LIMIT %u", limit);
        put(o, tmp);
    }
    if (o->sql.len == 0 || mt_buf_append(&o->sql, "", 1) != 0) {
        mt_qsql_dispose(o);
        return MT_ENOMEM;
    }
    o->sql.len--; /* NUL-terminated, not counted */
    return 0;
}
