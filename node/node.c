/*
 * node.c - mt_node: the process-wide object. Owns the uv loop, the listener, the config
 * snapshots and the ingest pipeline.
 *
 * Start-up:  load the de-identification profile and site secret (deid.profile, deid.key_file:
 *            a bad profile, a missing or group/world-readable key refuses to start) -> open
 *            ingest (store + index; temp files of a crash removed, unverified rows checked)
 *            -> listen -> signal handlers.
 * SIGHUP:    reload the config file; new associations get the new snapshot, associations in
 *            flight keep theirs (snapshots are reference counted). Listening address/port and
 *            storage/index paths and deid.profile/deid.key_file need a restart (logged as a
 *            warning when they changed).
 * SIGTERM/SIGINT: stop accepting; let associations in flight finish for up to
 *            MT_NODE_DRAIN_MS, then abort the rest; close ingest (commits what is in flight);
 *            the loop ends and mt_node_run returns 0.
 */
#include "node.h"

#include <signal.h>
#include <stddef.h>
#include <signal.h>
#include <string.h>

#include "deid/load.h"
#include "forward.h"
#include "forward_orphans.h"
#include "http/web.h"
#include "listen.h"
#include "route/load.h"
#include "tagger.h"
#include "util/alloc.h"
#include "util/err.h"
#include "util/log.h"

#define MT_NODE_DRAIN_MS 10000

typedef struct conf_slot {
    mt_conf_t *conf;
    unsigned refs;
    struct conf_slot *next;
} conf_slot_t;

struct mt_node {
    uv_loop_t *loop;
    conf_slot_t *confs; /* head = the snapshot in force */
    char *conf_path;
    bool flag_aet, flag_port, flag_bind; /* serve's flags: they override the file on reload */
    mt_ingest_t *ingest;
    mt_tagger_t *tagger; /* CMR series tagging (issue 5) */
    mt_forward_t *fwd;   /* forwarding (issue 6), NULL without destinations */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uint64_t next_assoc_id;
    uint32_t n_assoc;
    mt_deid_profile_t *deid; /* NULL: deid.profile none */
    uint8_t *deid_key;
    size_t deid_key_len;
    bool stopping;
    int exit_code;
    mt_web_t *web; /* DICOMweb (http.enabled), NULL when off */
    bool web_idle; /* the HTTP server has stopped and its last connection closed */
};

int mt_node_new(uv_loop_t *loop, mt_conf_t *conf, const char *conf_path, mt_node_t **out)
{
    mt_node_t *n = mt_calloc(1, sizeof *n);
    n->loop = loop;
    n->confs = mt_calloc(1, sizeof *n->confs);
    n->confs->conf = conf;
    n->confs->refs = 1; /* the node's own reference to the snapshot in force */
    n->conf_path = conf_path ? mt_strdup(conf_path) : NULL;
    *out = n;
    return 0;
}

void mt_node_keep_flags(mt_node_t *node, bool ae_title, bool port, bool bind)
{
    node->flag_aet = ae_title;
    node->flag_port = port;
    node->flag_bind = bind;
}

const mt_conf_t *mt_node_conf_ref(mt_node_t *node)
{
    node->confs->refs++;
    return node->confs->conf;
}

static void release_slot(mt_node_t *node, conf_slot_t **pp)
{
    conf_slot_t *s = *pp;
    if (--s->refs)
        return;
    *pp = s->next;
    mt_conf_free(s->conf);
    mt_free(s);
    (void)node;
}

void mt_node_conf_unref(mt_node_t *node, const mt_conf_t *conf)
{
    for (conf_slot_t **pp = &node->confs; *pp; pp = &(*pp)->next)
        if ((*pp)->conf == conf) {
            release_slot(node, pp);
            return;
        }
}

uv_loop_t *mt_node_loop(mt_node_t *node)
{
    return node->loop;
}

mt_ingest_t *mt_node_ingest(mt_node_t *node)
{
    return node->ingest;
}

struct mt_forward *mt_node_forward(mt_node_t *node)
{
    return node->fwd;
}

struct mt_tagger *mt_node_tagger(mt_node_t *node)
{
    return node->tagger;
}

uint64_t mt_node_next_assoc_id(mt_node_t *node)
{
    return ++node->next_assoc_id;
}

uint32_t mt_node_assoc_count(const mt_node_t *node)
{
    return node->n_assoc;
}

static void on_ingest_closed(void *data)
{
    mt_node_t *node = data;
    node->ingest = NULL;
    uv_close((uv_handle_t *)&node->sig_term, NULL);
    uv_close((uv_handle_t *)&node->sig_int, NULL);
    uv_close((uv_handle_t *)&node->sig_hup, NULL);
    uv_close((uv_handle_t *)&node->drain_timer, NULL);
    mt_log(MT_LOG_INFO, NULL, "stopped");
}

static void on_tagger_closed(void *data)
{
    mt_node_t *node = data;
    if (node->ingest)
        mt_ingest_close(node->ingest, on_ingest_closed, node);
}

/* Every association has closed (or was aborted) and the HTTP connections are gone: finish
 * the shutdown (the tagger tags what is still pending, then the ingest commits what is in
 * flight). */
static void on_forward_stopped(void *data);

static void finish_stop(mt_node_t *node)
{
    if (!node->web_idle || node->n_assoc)
        return;
    uv_timer_stop(&node->drain_timer);
    if (node->fwd) { /* the forwarder first: it reads the index the ingest closes */
        mt_forward_t *f = node->fwd;
        node->fwd = NULL;
        mt_forward_stop(f, on_forward_stopped, node);
        return;
    }
    if (node->tagger) {
        mt_tagger_t *t = node->tagger;
        node->tagger = NULL;
        mt_tagger_close(t, on_tagger_closed, node);
    } else if (node->ingest) {
        mt_ingest_close(node->ingest, on_ingest_closed, node);
    }
}

static void on_forward_stopped(void *data)
{
    finish_stop(data);
}

void mt_node_assoc_opened(mt_node_t *node)
{
    node->n_assoc++;
}

void mt_node_assoc_closed(mt_node_t *node)
{
    node->n_assoc--;
    if (node->stopping && node->n_assoc == 0)
        finish_stop(node);
}

static void on_drain_timeout(uv_timer_t *t)
{
    mt_node_t *node = t->data;
    mt_log(MT_LOG_WARN, NULL, "shutdown: aborting %u association(s) still open", node->n_assoc);
    mt_listen_abort_all(node);
    mt_web_abort_all(node->web);
}

static void on_web_idle(void *data)
{
    mt_node_t *node = data;
    node->web_idle = true;
    if (node->stopping)
        finish_stop(node);
}

static void stop(mt_node_t *node)
{
    if (node->stopping)
        return;
    node->stopping = true;
    mt_log(MT_LOG_INFO, NULL, "stopping: %u association(s) in flight", node->n_assoc);
    mt_listen_stop(node);
    if (node->web) {
        mt_web_stop(node->web);
        mt_web_on_idle(node->web, on_web_idle, node);
    }
    if (node->n_assoc == 0 && node->web_idle) {
        finish_stop(node);
        return;
    }
    uv_timer_start(&node->drain_timer, on_drain_timeout, MT_NODE_DRAIN_MS, 0);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(s->data);
}

static void reload(mt_node_t *node)
{
    if (!node->conf_path) {
        mt_log(MT_LOG_INFO, NULL, "SIGHUP: no config file, nothing to reload");
        return;
    }
    char err[512];
    mt_conf_t *c = mt_conf_load(node->conf_path, err, sizeof err);
    if (!c) {
        mt_log(MT_LOG_ERROR, NULL, "SIGHUP: config not reloaded: %s", err);
        return;
    }
    const mt_conf_t *old = node->confs->conf;
    /* The command line overrides the file, now as at start-up. */
    if (node->flag_aet)
        memcpy(c->ae_title, old->ae_title, sizeof c->ae_title);
    if (node->flag_port)
        c->port = old->port;
    if (node->flag_bind)
        memcpy(c->bind, old->bind, sizeof c->bind);
    const mt_conf_project_t *clash = mt_conf_project_by_ae(c, c->ae_title);
    if (clash) { /* only with --aet: the file's own node.ae_title was checked when it loaded */
        mt_log(MT_LOG_ERROR, NULL, "SIGHUP: config not reloaded: project %s has the node's "
               "AE title %s (serve --aet)", clash->name, clash->ae_title);
        mt_conf_free(c);
        return;
    }
    /* Paths and the listening socket belong to the running node: keep them. */
    mt_conf_set_data_dir(c, old->data_dir);
    mt_free(c->storage_root);
    c->storage_root = mt_strdup(old->storage_root);
    mt_free(c->index_path);
    c->index_path = mt_strdup(old->index_path);
    if (c->port != old->port || strcmp(c->bind, old->bind) != 0)
        mt_log(MT_LOG_WARN, NULL, "SIGHUP: bind/port changes need a restart");
    c->port = old->port;
    memcpy(c->bind, old->bind, sizeof c->bind);
    if (c->http_port != old->http_port || strcmp(c->http_bind, old->http_bind) != 0 ||
        c->http_enabled != old->http_enabled)
        mt_log(MT_LOG_WARN, NULL, "SIGHUP: http.enabled/bind/port changes need a restart");
    c->http_port = old->http_port;
    c->http_enabled = old->http_enabled;
    memcpy(c->http_bind, old->http_bind, sizeof c->http_bind);
    /* The profile and the secret in force were loaded at start-up: keep them (and say so). */
    if (strcmp(c->deid_profile, old->deid_profile) != 0 ||
        strcmp(c->deid_key_file, old->deid_key_file) != 0)
        mt_log(MT_LOG_WARN, NULL, "SIGHUP: deid.profile/deid.key_file changes need a restart");
    mt_free(c->deid_profile);
    c->deid_profile = mt_strdup(old->deid_profile);
    mt_free(c->deid_key_file);
    c->deid_key_file = mt_strdup(old->deid_key_file);
    /* The forwarder keeps the destinations it started with. */
    bool same_dests = c->n_destinations == old->n_destinations;
    for (size_t i = 0; same_dests && i < c->n_destinations; i++)
        same_dests =
            memcmp(&c->destinations[i], &old->destinations[i],
                   offsetof(mt_conf_destination_t, ts)) == 0 &&
            memcmp(c->destinations[i].stow_url, old->destinations[i].stow_url,
                   sizeof(mt_conf_destination_t) - offsetof(mt_conf_destination_t, stow_url)) == 0;
    if (!same_dests) {
        mt_log(MT_LOG_WARN, NULL, "SIGHUP: destinations changes need a restart (forwarding "
               "keeps the destinations it started with; rules may name only those)");
        /* so the rules are checked against what the forwarder has: a rule naming a new
         * destination is refused below, instead of queueing entries nobody sends */
        mt_conf_copy_destinations(c, old);
    }
    /* The routing rules are part of the snapshot: a bad rules file keeps the config in force. */
    if (mt_route_load_conf(c, err, sizeof err) != 0) {
        mt_log(MT_LOG_ERROR, NULL, "SIGHUP: config not reloaded: %s", err);
        mt_conf_free(c);
        return;
    }
    mt_log_level = (mt_log_level_t)c->log_level;

    conf_slot_t *s = mt_calloc(1, sizeof *s);
    s->conf = c;
    s->refs = 1;
    s->next = node->confs;
    node->confs = s;
    release_slot(node, &s->next); /* drop the node's reference to the old snapshot */
    mt_log(MT_LOG_INFO, NULL, "SIGHUP: config reloaded from %s", node->conf_path);
}

static void on_hup(uv_signal_t *s, int signum)
{
    (void)signum;
    reload(s->data);
}

const mt_deid_profile_t *mt_node_deid(mt_node_t *node, const uint8_t **key, size_t *key_len)
{
    if (key)
        *key = node->deid_key;
    if (key_len)
        *key_len = node->deid_key_len;
    return node->deid;
}

/* deid.profile / deid.key_file. Messages name files and lines, never a secret or a value. */
static int deid_open(mt_node_t *node, const mt_conf_t *c)
{
    char err[512];
    if (strcmp(c->deid_profile, "none") == 0) {
        mt_log(MT_LOG_INFO, NULL, "de-identification: none (instances are stored as received "
               "unless a routing rule names a profile)");
        if (strcmp(c->deid_key_file, "none") == 0)
            return 0;
        /* the secret for the profiles that routing rules name */
        int rc = mt_deid_load_key(c->deid_key_file, &node->deid_key, &node->deid_key_len, err,
                                  sizeof err);
        if (rc)
            mt_log(MT_LOG_ERROR, NULL, "deid.key_file: %s", err);
        return rc;
    }
    if (strcmp(c->deid_key_file, "none") == 0) {
        mt_log(MT_LOG_ERROR, NULL,
               "deid.profile is %s but deid.key_file is none: the site secret is required",
               c->deid_profile);
        return MT_ECONF;
    }
    int rc = mt_deid_load_profile(c->deid_profile, NULL, &node->deid, err, sizeof err);
    if (rc) {
        mt_log(MT_LOG_ERROR, NULL, "deid.profile: %s", err);
        return rc;
    }
    rc = mt_deid_load_key(c->deid_key_file, &node->deid_key, &node->deid_key_len, err,
                          sizeof err);
    if (rc) {
        mt_log(MT_LOG_ERROR, NULL, "deid.key_file: %s", err);
        mt_deid_profile_free(node->deid);
        node->deid = NULL;
        return rc;
    }
    mt_log(MT_LOG_INFO, NULL, "de-identification: profile %s, every instance is de-identified "
           "before it is stored", node->deid->name);
    return 0;
}

int mt_node_run(mt_node_t *node)
{
    /* a write to a connection the peer has closed must be an EPIPE error for that
     * association (libuv reports it), not a process-wide SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    const mt_conf_t *c = node->confs->conf;
    /* A peer that closes while we write must cost an EPIPE, not the process (libuv writes
     * with write(2), which raises SIGPIPE). */
    signal(SIGPIPE, SIG_IGN);
    mt_log_level = (mt_log_level_t)c->log_level;
    int rc = deid_open(node, c);
    if (rc)
        return rc;
    char err[512];
    if ((rc = mt_route_load_conf(node->confs->conf, err, sizeof err)) != 0) {
        mt_log(MT_LOG_ERROR, NULL, "routing.rules: %s", err);
        return rc;
    }
    if (c->routes)
        mt_log(MT_LOG_INFO, NULL, "routing: %zu rule(s) from %s", mt_route_set_count(c->routes),
               c->routing_rules);
    mt_ingest_opts_t io = {
        .storage_root = c->storage_root,
        .index_path = c->index_path,
        .dup_policy = c->duplicates,
        .max_batch = c->max_batch,
    };
    rc = mt_ingest_open(node->loop, &io, &node->ingest);
    if (rc) {
        mt_log(MT_LOG_ERROR, NULL, "cannot open storage %s / index %s: %s", c->storage_root,
               c->index_path, mt_strerror(rc));
        return rc;
    }
    /* Before the listeners: a destination's unusable credentials file stops the start-up (as
     * deid.key_file does), before anything is accepted that could not be forwarded. */
    if ((rc = mt_forward_start(node->loop, c, &node->fwd)) == MT_ECONF) {
        mt_ingest_close(node->ingest, NULL, NULL);
        uv_run(node->loop, UV_RUN_DEFAULT);
        return rc;
    } else if (rc != 0) {
        mt_log(MT_LOG_ERROR, NULL, "forwarding not started: %s (the queue keeps filling)",
               mt_strerror(rc));
    }
    mt_forward_warn_orphans(c);
    rc = mt_listen_start(node, c->bind, c->port);
    if (rc) {
        mt_log(MT_LOG_ERROR, NULL, "cannot listen on %s:%u: %s", c->bind, c->port,
               mt_strerror(rc));
        if (node->fwd)
            mt_forward_stop(node->fwd, NULL, NULL);
        node->fwd = NULL;
        mt_ingest_close(node->ingest, NULL, NULL);
        uv_run(node->loop, UV_RUN_DEFAULT);
        return rc;
    }
    if (c->tag_enabled) {
        mt_tagger_new(node->loop, c->index_path, c->tag_series_idle_ms, c->tag_study_idle_ms,
                      &node->tagger);
        mt_tagger_route(node->tagger, node);
    }
    node->web_idle = true;
    if (c->http_enabled) {
        node->web_idle = false;
        rc = mt_web_start(node, c, &node->web);
        if (rc) {
            mt_log(MT_LOG_ERROR, NULL, "cannot listen for DICOMweb on %s:%u: %s", c->http_bind,
                   c->http_port, mt_strerror(rc));
            mt_listen_stop(node);
            mt_ingest_close(node->ingest, NULL, NULL);
            uv_run(node->loop, UV_RUN_DEFAULT);
            return rc;
        }
        mt_log(MT_LOG_INFO, NULL, "DICOMweb on http://%s:%u/dicomweb", c->http_bind,
               c->http_port);
    }
    uv_signal_init(node->loop, &node->sig_term);
    uv_signal_init(node->loop, &node->sig_int);
    uv_signal_init(node->loop, &node->sig_hup);
    uv_timer_init(node->loop, &node->drain_timer);
    node->sig_term.data = node->sig_int.data = node->sig_hup.data = node;
    node->drain_timer.data = node;
    uv_signal_start(&node->sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&node->sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&node->sig_hup, on_hup, SIGHUP);
    mt_log(MT_LOG_INFO, NULL, "listening on %s:%u ae=%s storage=%s index=%s", c->bind, c->port,
           c->ae_title, c->storage_root, c->index_path);
    uv_run(node->loop, UV_RUN_DEFAULT);
    return node->exit_code;
}

void mt_node_free(mt_node_t *node)
{
    while (node->confs) {
        conf_slot_t *s = node->confs;
        node->confs = s->next;
        mt_conf_free(s->conf);
        mt_free(s);
    }
    mt_free(node->conf_path);
    mt_deid_profile_free(node->deid);
    mt_deid_key_free(node->deid_key, node->deid_key_len);
    mt_web_free(node->web);
    mt_free(node);
}
