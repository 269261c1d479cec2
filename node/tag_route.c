/*
 * tag_route.c - fire the routing rules on the CMR series tag for one tagged series (contract:
 * tag_route.h; semantics: node/route/rules.h "Rules on the CMR series tag").
 *
 * For each instance of the series with armed rules (fired or not), the armed rules are
 * evaluated on the tag in the rule set's order (mt_route_after_tag: stop / continue as at store
 * time, fired rules included so that a rule that stopped the evaluation still stops it). The
 * rules that match and have not fired yet fire: their destinations and projects are written
 * with tag_route_fire, which marks them fired. Rules renamed or removed since the instance was
 * stored are ignored (mt_route_after_tag skips names it does not know).
 */
#include "tag_route.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"

typedef struct armed_row {
    char sop[65];
    char *rule;
    bool fired;
} armed_row_t;

typedef struct armed_list {
    armed_row_t *v;
    size_t n, cap;
} armed_list_t;

static int on_armed(void *u, const char *sop, const char *rule, bool fired)
{
    armed_list_t *l = u;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = mt_realloc(l->v, l->cap * sizeof *l->v);
    }
    armed_row_t *r = &l->v[l->n++];
    snprintf(r->sop, sizeof r->sop, "%s", sop);
    r->rule = mt_strdup(rule);
    r->fired = fired;
    return 0;
}

static bool fired_already(const armed_row_t *g, size_t n, const char *rule)
{
    for (size_t i = 0; i < n; i++)
        if (g[i].fired && !strcmp(g[i].rule, rule))
            return true;
    return false;
}

/* One instance: its armed rows g[0..n). */
static int route_instance(mt_index_t *ix, const mt_route_set_t *set, const char *study_uid,
                          const char *series_uid, const char *tag, const armed_row_t *g, size_t n,
                          size_t *n_queued)
{
    const char *names[MT_ROUTE_MAX_TARGETS];
    size_t k = 0;
    for (size_t i = 0; i < n && k < MT_ROUTE_MAX_TARGETS; i++)
        names[k++] = g[i].rule;
    mt_route_decision_t d;
    mt_route_after_tag(set, tag, names, k, &d);
    const char *fresh[MT_ROUTE_MAX_TARGETS];
    size_t n_fresh = 0;
    for (size_t i = 0; i < d.n_rules; i++)
        if (!fired_already(g, n, d.rules[i]))
            fresh[n_fresh++] = d.rules[i];
    if (!n_fresh)
        return 0;
    /* the actions of the new ones only: they all matched, in order, so evaluating them alone
     * gives the same stop / continue outcome */
    mt_route_decision_t a;
    mt_route_after_tag(set, tag, fresh, n_fresh, &a);
    if (n_queued)
        *n_queued += a.n_forward;
    return ix->ops->tag_route_fire(ix, g[0].sop, study_uid, series_uid, fresh, n_fresh, a.forward,
                                   a.n_forward, a.projects, a.n_projects);
}

int mt_tag_route_series(mt_index_t *ix, const mt_route_set_t *set, const char *study_uid,
                        const char *series_uid, const char *tag, size_t *n_queued)
{
    if (!set || !tag || !mt_route_set_after_tag(set, NULL))
        return 0;
    armed_list_t l = {NULL, 0, 0};
    int rc = ix->ops->tag_route_armed(ix, series_uid, on_armed, &l);
    for (size_t i = 0; rc == 0 && i < l.n;) {
        size_t j = i + 1;
        while (j < l.n && !strcmp(l.v[j].sop, l.v[i].sop))
            j++;
        rc = route_instance(ix, set, study_uid, series_uid, tag, l.v + i, j - i, n_queued);
        i = j;
    }
    for (size_t i = 0; i < l.n; i++)
        mt_free(l.v[i].rule);
    mt_free(l.v);
    return rc;
}
