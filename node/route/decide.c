/*
 * decide.c - routing one incoming instance while it streams in (contract and state diagram:
 * decide.h). PURE.
 */
#include "decide.h"

#include <stdio.h>
#include <string.h>

#include "../util/err.h"

void mt_route_pending_init(mt_route_pending_t *p, const mt_route_set_t *routes)
{
    memset(p, 0, sizeof *p);
    mt_buf_init(&p->held, MT_ROUTE_MAX_HELD);
    p->routes = routes;
    if (routes)
        p->attrs = mt_route_attrs_new(routes);
    else
        p->decided = true;
}

void mt_route_pending_dispose(mt_route_pending_t *p)
{
    mt_route_attrs_free(p->attrs);
    p->attrs = NULL;
    mt_buf_dispose(&p->held);
}

int mt_route_pending_hold(mt_route_pending_t *p, const uint8_t *b, size_t n)
{
    return n && mt_buf_append(&p->held, b, n) != 0 ? MT_ETOOBIG : 0;
}

void mt_route_pending_event(mt_route_pending_t *p, mt_ds_event_t ev, const mt_elem_t *e,
                            bool big_endian)
{
    if (p->decided || p->ready || e->depth != 0 ||
        (ev != MT_DS_EV_ELEMENT && ev != MT_DS_EV_SEQ_START))
        return;
    if (e->tag >= MT_TAG_PIXEL_DATA)
        p->ready = true; /* the bulk data starts: decide before it is written */
    else if (ev == MT_DS_EV_ELEMENT)
        mt_route_attrs_offer(p->attrs, e->tag, e->vr, e->value, e->value_len, big_endian);
    else
        mt_route_attrs_offer(p->attrs, e->tag, e->vr, NULL, 0, false);
}

void mt_route_pending_decide(mt_route_pending_t *p, const mt_route_input_t *in)
{
    if (p->decided)
        return;
    mt_route_input_t mine = *in;
    mine.attrs = p->attrs;
    mt_route_decide(p->routes, &mine, &p->dec);
    p->decided = true;
    mt_route_attrs_free(p->attrs);
    p->attrs = NULL;
}

const uint8_t *mt_route_pending_held(const mt_route_pending_t *p, size_t *len)
{
    *len = p->held.len;
    return p->held.data;
}

void mt_route_pending_drop_held(mt_route_pending_t *p)
{
    mt_buf_dispose(&p->held);
}

int mt_route_profile(const mt_route_decision_t *d, const mt_deid_profile_t *node_dp,
                     const mt_deid_profile_t **dp)
{
    *dp = NULL;
    if (!d->deid) {
        *dp = node_dp;
        return 0;
    }
    if (strcmp(d->deid, "none") == 0)
        return 0;
    *dp = d->deid_profile;
    return *dp ? 0 : MT_ENOENT;
}

void mt_route_summary(const mt_route_decision_t *d, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s%s%zu rule(s), projects=%zu forward=%zu deid=%s armed=%zu",
             d->reject ? "reject " : "", d->used_default ? "default " : "", d->n_rules,
             d->n_projects, d->n_forward, d->deid ? d->deid : "(node)", d->n_armed);
}

void mt_route_peer_addr(const char *peer, char *out, size_t outsz)
{
    const char *b = peer, *e;
    if (*peer == '[') {
        b = peer + 1;
        e = strchr(b, ']');
    } else {
        e = strrchr(peer, ':');
    }
    size_t n = e ? (size_t)(e - b) : strlen(b);
    snprintf(out, outsz, "%.*s", (int)n, b);
}
