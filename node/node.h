/*
 * node.h - mt_node: owns the uv_loop_t, the listener, the config snapshot and the ingest
 * pipeline; start-up and shutdown order; SIGTERM (graceful stop) and SIGHUP (reload config).
 */
#ifndef MT_NODE_H
#define MT_NODE_H

#include <stdint.h>
#include <uv.h>

#include "conf/conf.h"
#include "deid/profile.h"
#include "store/ingest.h"

typedef struct mt_node mt_node_t;

/* Takes ownership of conf. conf_path may be NULL (no file: SIGHUP keeps the current config). */
int mt_node_new(uv_loop_t *loop, mt_conf_t *conf, const char *conf_path, mt_node_t **out);
/* The command line set these (serve --aet / --port / --bind): a SIGHUP keeps them instead of
 * taking the file's value (and does not warn that the file's differs). */
#define MT_NODE_CLI_AET 1u
#define MT_NODE_CLI_PORT 2u
#define MT_NODE_CLI_BIND 4u
void mt_node_keep_cli(mt_node_t *node, unsigned flags);
/* Open the store, start listening; returns when the node has stopped (SIGTERM/SIGINT). */
int mt_node_run(mt_node_t *node);
void mt_node_free(mt_node_t *node);

/* The config snapshot in force now. An association keeps the pointer it got at its start: a
 * snapshot lives until every association that holds it has closed (mt_node_conf_ref/unref). */
const mt_conf_t *mt_node_conf_ref(mt_node_t *node);
void mt_node_conf_unref(mt_node_t *node, const mt_conf_t *conf);

uv_loop_t *mt_node_loop(mt_node_t *node);
/* The de-identification profile C-STORE applies (deid.profile, loaded at start-up with the
 * site secret from deid.key_file), or NULL when deid.profile is none: instances are then
 * stored exactly as received. key/key_len may be NULL. Changes need a restart. */
const mt_deid_profile_t *mt_node_deid(mt_node_t *node, const uint8_t **key, size_t *key_len);
mt_ingest_t *mt_node_ingest(mt_node_t *node);
/* The CMR tagger (node/tagger.h), NULL before start-up and after shutdown began. */
struct mt_tagger *mt_node_tagger(mt_node_t *node);
/* The forwarder (node/forward.c), or NULL when no destinations are configured. */
struct mt_forward *mt_node_forward(mt_node_t *node);

/* Association bookkeeping (limit on concurrent associations, graceful shutdown). */
uint64_t mt_node_next_assoc_id(mt_node_t *node);
uint32_t mt_node_assoc_count(const mt_node_t *node);
/* Called by assoc.c when an association is created / fully closed. */
void mt_node_assoc_opened(mt_node_t *node);
void mt_node_assoc_closed(mt_node_t *node);

#endif
