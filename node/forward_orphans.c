/*
 * forward_orphans.c - see forward_orphans.h: a queue entry whose destination is not in the
 * config waits for ever (the forwarder only scans the destinations it has), so the admin who
 * removed or renamed one hears of it at start-up instead of finding the rows months later.
 */
#include "forward_orphans.h"

#include "index/index.h"
#include "util/err.h"
#include "util/log.h"

typedef struct {
    const mt_conf_t *c;
    size_t n;
} orphans_t;

static int on_destination(void *u, const char *destination, size_t pending, size_t dead)
{
    orphans_t *o = u;
    if (mt_conf_destination_by_name(o->c, destination))
        return 0;
    o->n++;
    mt_log(MT_LOG_WARN, NULL,
           "forward queue: %zu pending and %zu dead entries for destination '%s', which the "
           "config does not name: nothing sends them (configure it again, or `mitral queue "
           "purge --dest %s --all`)",
           pending, dead, destination, destination);
    return 0;
}

size_t mt_forward_warn_orphans(const mt_conf_t *c)
{
    mt_index_t *ix = NULL;
    int rc = mt_index_sqlite_open(c->index_path, &ix);
    orphans_t o = {c, 0};
    if (!rc)
        rc = ix->ops->queue_destinations(ix, on_destination, &o);
    if (rc)
        mt_log(MT_LOG_WARN, NULL, "forward queue: cannot check its destinations: %s",
               mt_strerror(rc));
    if (ix)
        ix->ops->close(ix);
    return o.n;
}
