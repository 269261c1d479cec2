/*
 * listen.h - the DICOM listener: a uv_tcp_t bound to bind:port; each accepted connection
 * becomes an mt_assoc_t (node/assoc.c) that runs the upper layer on it.
 *
 * Called by node/node.c:
 *   mt_listen_start     at start-up (after ingest is open)
 *   mt_listen_stop      SIGTERM: stop accepting; associations in flight go on
 *   mt_listen_abort_all drain timeout: A-ABORT every association still open and close it
 *
 * The listener keeps the list of its open associations (for mt_listen_abort_all). It frees
 * itself once stopped and its last association has gone.
 */
#ifndef MT_LISTEN_H
#define MT_LISTEN_H

#include <stdint.h>

typedef struct mt_node mt_node_t;
typedef struct mt_assoc mt_assoc_t;

/* Bind and listen. 0, or a negative libuv/MT_E* code (address in use, bad address). */
int mt_listen_start(mt_node_t *node, const char *bind, uint16_t port);
/* Stop accepting (no-op when not listening). */
void mt_listen_stop(mt_node_t *node);
/* A-ABORT (service-user source) every open association and close its connection. */
void mt_listen_abort_all(mt_node_t *node);

/* ---- between listen.c and assoc.c (internal) ---- */

/* Intrusive list of a listener's associations. */
typedef struct mt__assoc_link {
    struct mt__assoc_link *prev, *next;
} mt__assoc_link_t;

typedef struct mt__listener mt__listener_t;

/* assoc.c: accept a pending connection on server into a new association linked into the
 * listener's list. 0 or a negative code (the connection is refused and closed). */
int mt__assoc_accept(mt_node_t *node, mt__listener_t *l, void *server_stream);
/* assoc.c: abort (node shutdown): A-ABORT if an association exists, then close. */
void mt__assoc_abort(mt_assoc_t *a);
/* assoc.c: the association of a list link. */
mt_assoc_t *mt__assoc_of_link(mt__assoc_link_t *link);

/* listen.c: link/unlink an association (unlink is called once its handles have closed). */
void mt__listen_link(mt__listener_t *l, mt__assoc_link_t *link);
void mt__listen_unlink(mt__listener_t *l, mt__assoc_link_t *link);

#endif
