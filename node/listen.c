/*
 * listen.c - the DICOM listener (see listen.h): uv_tcp_t on bind:port, accept -> mt_assoc_t.
 *
 * node.c owns no listener field, so the listeners live in a small list keyed by node (one
 * per node; a process normally has one node). Lifetime: created by mt_listen_start; the server
 * handle is closed by mt_listen_stop; the struct is freed when the handle has closed and no
 * association is linked any more (the last unlink, or the close callback, frees it).
 */
#include "listen.h"

#include <string.h>
#include <uv.h>

#include "node.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

#define MT_LISTEN_BACKLOG 128

struct mt__listener {
    uv_tcp_t server;
    mt_node_t *node;
    bool listening;          /* server handle open */
    bool closed;             /* server handle's close callback has run */
    mt__assoc_link_t assocs; /* list head: prev/next of the open associations */
    struct mt__listener *next;
};

static mt__listener_t *listeners;

static mt__listener_t *find(mt_node_t *node)
{
    for (mt__listener_t *l = listeners; l; l = l->next)
        if (l->node == node)
            return l;
    return NULL;
}

static void maybe_free(mt__listener_t *l)
{
    if (!l->closed || l->assocs.next != &l->assocs)
        return;
    for (mt__listener_t **pp = &listeners; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    mt_free(l);
}

static void on_server_closed(uv_handle_t *h)
{
    mt__listener_t *l = h->data;
    l->closed = true;
    maybe_free(l);
}

static void on_connection(uv_stream_t *server, int status)
{
    mt__listener_t *l = server->data;
    if (status < 0) {
        mt_log(MT_LOG_WARN, NULL, "accept failed: %s", uv_strerror(status));
        return;
    }
    int rc = mt__assoc_accept(l->node, l, server);
    if (rc < 0)
        mt_log(MT_LOG_WARN, NULL, "cannot accept a connection: %s", mt_strerror(rc));
}

int mt_listen_start(mt_node_t *node, const char *bind, uint16_t port)
{
    if (find(node))
        return MT_ESTATE;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int rc = uv_ip4_addr(bind, port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        rc = uv_ip6_addr(bind, port, (struct sockaddr_in6 *)&ss);
    if (rc < 0)
        return MT_EINVAL;

    mt__listener_t *l = mt_calloc(1, sizeof *l);
    l->node = node;
    l->assocs.prev = l->assocs.next = &l->assocs;
    uv_tcp_init(mt_node_loop(node), &l->server);
    l->server.data = l;
    l->listening = true;
    l->next = listeners;
    listeners = l;

    uv_tcp_nodelay(&l->server, 1);
    rc = uv_tcp_bind(&l->server, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->server, MT_LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        l->listening = false;
        uv_close((uv_handle_t *)&l->server, on_server_closed);
        return rc;
    }
    return 0;
}

void mt_listen_stop(mt_node_t *node)
{
    mt__listener_t *l = find(node);
    if (!l || !l->listening)
        return;
    l->listening = false;
    uv_close((uv_handle_t *)&l->server, on_server_closed);
}

void mt_listen_abort_all(mt_node_t *node)
{
    mt__listener_t *l = find(node);
    if (!l)
        return;
    /* mt__assoc_abort never unlinks synchronously (unlink waits for the close callbacks), but
     * take the next link first anyway. */
    for (mt__assoc_link_t *k = l->assocs.next, *next; k != &l->assocs; k = next) {
        next = k->next;
        mt__assoc_abort(mt__assoc_of_link(k));
    }
}

void mt__listen_link(mt__listener_t *l, mt__assoc_link_t *link)
{
    link->next = l->assocs.next;
    link->prev = &l->assocs;
    l->assocs.next->prev = link;
    l->assocs.next = link;
}

void mt__listen_unlink(mt__listener_t *l, mt__assoc_link_t *link)
{
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->prev = link->next = link;
    maybe_free(l);
}
