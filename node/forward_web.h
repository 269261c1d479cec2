/*
 * forward_web.h - the DICOMweb side of the forwarder (node/forward.c): sends queued
 * instances to a STOW-RS destination (PS3.18 §10.5) over the HTTP/1.1 client
 * (node/http/client.h) and reports, per instance, what the response says
 * (node/http/stow_client.h).
 *
 *   mt_fwd_web_dest_*  per destination, made at start-up (blocking): the parsed stow_url, the
 *                      Authorization value read from token_file / password_file (mode 0600,
 *                      else refused like deid.key_file), the TLS context (CA file or the
 *                      system store; tls_insecure_skip_verify: no checks, logged loudly)
 *   mt_fwd_web_*       per forwarder worker: one keep-alive connection reused across its
 *                      batches; a batch goes out as requests of at most max_instances /
 *                      max_request_mb each, one after another (order kept), every body
 *                      multipart/related; type="application/dicom", streamed from the stored
 *                      files in 256 KiB pieces (never a whole batch in memory)
 * Loop-thread API.
 */
#ifndef MT_FORWARD_WEB_H
#define MT_FORWARD_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "conf/conf.h"
#include "http/stow_client.h"
#include "util/log.h"

typedef struct mt_fwd_web_dest mt_fwd_web_dest_t;
typedef struct mt_fwd_web mt_fwd_web_t;

/* MT_ECONF with a message in err (names the destination and the file, never a secret). */
int mt_fwd_web_dest_new(const mt_conf_destination_t *cfg, uint32_t connect_timeout_ms,
                        mt_fwd_web_dest_t **out, char *err, size_t errsz);
void mt_fwd_web_dest_free(mt_fwd_web_dest_t *d);

typedef struct mt_fwd_web_item {
    const char *path; /* the stored file (absolute) */
    const char *sop;  /* its SOP Instance UID */
} mt_fwd_web_item_t;

/* The verdict on items[i] (why: a static or short-lived string). */
typedef void (*mt_fwd_web_result_cb)(void *user, size_t i, mt_stowc_verdict_t v, const char *why);
/* The batch is over. connected: some request reached the server (false: the destination is
 * down: every item got RETRY with the connection error). Items without a result were not
 * sent because of mt_fwd_web_abort. */
typedef void (*mt_fwd_web_done_cb)(void *user, bool connected);

mt_fwd_web_t *mt_fwd_web_new(uv_loop_t *loop, mt_fwd_web_dest_t *d, mt_log_ctx_t *log);
/* Send a batch (items and their strings are copied). One batch at a time. */
void mt_fwd_web_send(mt_fwd_web_t *w, const mt_fwd_web_item_t *items, size_t n,
                     mt_fwd_web_result_cb on_result, mt_fwd_web_done_cb on_done, void *user);
/* Stop the running batch: no more results; on_done follows (maybe later, on the loop). */
void mt_fwd_web_abort(mt_fwd_web_t *w);
/* Free (aborts first); cb(data) once every handle and file request is finished. */
void mt_fwd_web_free(mt_fwd_web_t *w, void (*cb)(void *), void *data);

#endif
