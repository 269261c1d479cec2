/*
 * stow_client.c - per-instance verdicts from a STOW-RS response. PURE. The rules are the
 * table in stow_client.h; the DICOM JSON body (PS3.18 Annex F) is read with jsonp.c (the reader STOW-RS metadata requests use).
 */
#include "stow_client.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../util/alloc.h"
#include "jsonp.h"

#define T_FAILED_SOP_SEQ "00081198"
#define T_REFERENCED_SOP_SEQ "00081199"
#define T_REF_SOP_INSTANCE "00081155"
#define T_FAILURE_REASON "00081197"
#define T_WARNING_REASON "00081196"

const char *mt_stowc_reason_text(uint16_t r)
{
    switch (r) {
    case 0x0110:
        return "processing failure";
    case 0x0111:
        return "duplicate SOP instance refused";
    case 0x0122:
        return "SOP class not supported";
    case 0x0124:
        return "not authorized";
    case 0xB000:
        return "coercion of data elements";
    case 0xB006:
        return "elements discarded";
    case 0xB007:
        return "data set does not match SOP class";
    }
    if ((r & 0xFF00) == 0xA700)
        return "out of resources";
    if ((r & 0xFF00) == 0xA900)
        return "data set does not match SOP class";
    if ((r & 0xF000) == 0xC000)
        return "cannot understand";
    return NULL;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized: credentials refused (check token_file / password_file)";
    case 403:
        return "Forbidden: the user may not store here (check the user's projects)";
    case 404:
        return "Not Found (check stow_url)";
    case 409:
        return "Conflict: nothing stored";
    case 413:
        return "Payload Too Large (lower max_request_mb)";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    if (status >= 300 && status < 400)
        return "redirect (not followed: check stow_url)";
    return "";
}

static bool status_retry(int status)
{
    return status == 408 || status == 425 || status == 429 ||
           (status >= 500 && status < 600 && status != 501 && status != 505);
}

static bool status_per_instance(int status)
{
    return status >= 200 && status < 300 ? true : status == 409;
}

/* The first value of the element tag in a DICOM JSON object: its "Value"[0]. */
static const mt_jsonv_t *first_value(const mt_jsonv_t *obj, const char *tag)
{
    const mt_jsonv_t *v = mt_jsonv_get(mt_jsonv_get(obj, tag), "Value");
    return v && v->type == MT_JSON_ARRAY && v->n ? &v->kids[0] : NULL;
}

static uint16_t number16(const mt_jsonv_t *v)
{
    if (!v || v->type != MT_JSON_NUMBER || v->num < 0 || v->num > 65535)
        return 0;
    return (uint16_t)v->num;
}

static mt_stowc_item_t *find_item(mt_stowc_item_t *items, size_t n, const mt_jsonv_t *uid)
{
    if (!uid || uid->type != MT_JSON_STRING)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].sop_uid, uid->str) == 0)
            return &items[i];
    return NULL;
}

static void set_failed(mt_stowc_item_t *it, uint16_t reason, int status)
{
    const char *t = mt_stowc_reason_text(reason);
    it->reason = reason;
    it->verdict =
        (reason & 0xFF00) == 0xA700 || reason == 0x0110 ? MT_STOWC_RETRY : MT_STOWC_REFUSED;
    snprintf(it->why, sizeof it->why, "HTTP %d, FailureReason 0x%04X%s%s", status, reason,
             t ? ": " : "", t ? t : "");
}

/* Walk one sequence of the response object; failed: FailedSOPSequence. Returns true when
 * some item matched. */
static void walk_seq(const mt_jsonv_t *obj, const char *tag, bool failed, int status,
                     mt_stowc_item_t *items, size_t n, bool *named)
{
    const mt_jsonv_t *seq = mt_jsonv_get(mt_jsonv_get(obj, tag), "Value");
    if (!seq || seq->type != MT_JSON_ARRAY)
        return;
    for (size_t k = 0; k < seq->n; k++) {
        const mt_jsonv_t *e = &seq->kids[k];
        mt_stowc_item_t *it = find_item(items, n, first_value(e, T_REF_SOP_INSTANCE));
        if (!it)
            continue;
        named[it - items] = true;
        if (failed) {
            set_failed(it, number16(first_value(e, T_FAILURE_REASON)), status);
            continue;
        }
        it->verdict = MT_STOWC_DELIVERED;
        it->reason = number16(first_value(e, T_WARNING_REASON));
        it->why[0] = '\0';
        if (it->reason) {
            const char *t = mt_stowc_reason_text(it->reason);
            snprintf(it->why, sizeof it->why, "stored with WarningReason 0x%04X%s%s", it->reason,
                     t ? ": " : "", t ? t : "");
        }
    }
}

static bool json_type(const char *ctype, const uint8_t *body, size_t len)
{
    if (ctype) {
        size_t n = strcspn(ctype, "; \t");
        return (n == 22 && strncasecmp(ctype, "application/dicom+json", 22) == 0) ||
               (n == 16 && strncasecmp(ctype, "application/json", 16) == 0);
    }
    return len && (body[0] == '{' || body[0] == '[');
}

void mt_stowc_outcomes(int status, const char *ctype, const uint8_t *body, size_t len,
                       mt_stowc_item_t *items, size_t n)
{
    bool *named = mt_calloc(n ? n : 1, sizeof *named);
    mt_jsonv_t *doc = NULL;
    mt_diag_t diag;
    bool readable = false;
    if (status_per_instance(status) && len && json_type(ctype, body, len) &&
        mt_jsonp_parse((const char *)body, len, &doc, &diag) == 0) {
        const mt_jsonv_t *obj = doc;
        if (obj->type == MT_JSON_ARRAY && obj->n == 1)
            obj = &obj->kids[0];
        if (obj->type == MT_JSON_OBJECT) {
            readable = true;
            walk_seq(obj, T_FAILED_SOP_SEQ, true, status, items, n, named);
            walk_seq(obj, T_REFERENCED_SOP_SEQ, false, status, items, n, named);
        }
    }
    for (size_t i = 0; i < n; i++) {
        mt_stowc_item_t *it = &items[i];
        if (named[i])
            continue;
        it->reason = 0;
        if (status >= 200 && status < 300) {
            it->verdict = MT_STOWC_RETRY;
            snprintf(it->why, sizeof it->why, "HTTP %d but %s", status,
                     readable ? "the instance is not in the response"
                              : "no readable STOW-RS response body");
        } else {
            it->verdict = status_retry(status) ? MT_STOWC_RETRY : MT_STOWC_REFUSED;
            snprintf(it->why, sizeof it->why, "HTTP %d %s", status, reason_phrase(status));
        }
    }
    mt_jsonv_free(doc);
    mt_free(named);
}
