/*
 * forward_orphans.h - the start-up check of the forwarding queue against the configured
 * destinations: entries queued for a destination that the config no longer names (removed or
 * renamed) are never sent, so the node says so once when it starts.
 */
#ifndef MT_FORWARD_ORPHANS_H
#define MT_FORWARD_ORPHANS_H

#include "conf/conf.h"

/* Logs a warning for each destination the queue in c's index names and c does not, with its
 * pending and dead counts and the command that clears them. Blocking (start-up only); a
 * failure to read the queue is logged and otherwise ignored. Returns how many it found. */
size_t mt_forward_warn_orphans(const mt_conf_t *c);

#endif
