/*
 * stow_client.h - what a STOW-RS response (PS3.18 §10.5.3) says about each instance we sent.
 * PURE: the HTTP status, Content-Type and body in; one verdict per instance out. Used by the
 * forwarder's DICOMweb destinations (node/forward_web.c).
 *
 * An instance is DELIVERED only when the response body names it in ReferencedSOPSequence
 * (0008,1199), with or without a WarningReason (0008,1196): the HTTP status alone never
 * removes an instance from the queue. The body is read as DICOM JSON (we send Accept:
 * application/dicom+json; a one-element array around the object is accepted too).
 *
 *   status            instance in FailedSOPSequence   instance named nowhere / no body
 *   200, 202, 2xx     by FailureReason (below)         RETRY  (not confirmed)
 *   409               by FailureReason                 REFUSED
 *   408, 425, 429     RETRY                            RETRY
 *   5xx but 501, 505  RETRY                            RETRY  (server trouble, try later)
 *   other 4xx, 3xx,   REFUSED                          REFUSED (the same request would get
 *   501, 505, 1xx                                               the same answer: 401/403
 *                                                               credentials, 404 URL, 413 size,
 *                                                               415 media type, redirects are
 *                                                               not followed)
 * FailureReason (PS3.4 Annex B / PS3.18 Table 10.5.3-1): 0xA7xx out of resources and 0x0110
 * processing failure are RETRY (transient on the origin server); everything else (0xA9xx
 * data set does not match, 0xCxxx cannot understand, 0x0122 SOP class not supported, 0x0124
 * not authorized, 0x0111 duplicate refused) is REFUSED: resending the same bytes cannot help.
 * REFUSED entries are dead-lettered at once (`mitral queue list` shows why); RETRY entries
 * back off and count towards forward.max_attempts.
 */
#ifndef MT_HTTP_STOW_CLIENT_H
#define MT_HTTP_STOW_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { MT_STOWC_DELIVERED, MT_STOWC_RETRY, MT_STOWC_REFUSED } mt_stowc_verdict_t;

typedef struct mt_stowc_item {
    const char *sop_uid;        /* in: the SOP Instance UID sent */
    mt_stowc_verdict_t verdict; /* out */
    uint16_t reason;            /* out: FailureReason or WarningReason, 0 when none */
    char why[96];               /* out: for the queue's last_error and the log ("" when
                                 * delivered without warning) */
} mt_stowc_item_t;

/* Fill verdict/reason/why of every item. ctype may be NULL; body may be empty. */
void mt_stowc_outcomes(int status, const char *ctype, const uint8_t *body, size_t len,
                       mt_stowc_item_t *items, size_t n);

/* A static description of a FailureReason / WarningReason ("out of resources"), or NULL. */
const char *mt_stowc_reason_text(uint16_t reason);

#endif
