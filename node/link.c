/*
 * link.c - the pure helpers of link.h: chunked P-DATA-TF encoding and the table of requests
 * waiting for their responses.
 */
#include "link.h"

#include <string.h>

#include "pdu.h"
#include "util/err.h"

int mt_link_encode_pdata(mt_buf_t *out, uint8_t pcid, bool command, const uint8_t *p, size_t n,
                         bool last, uint32_t peer_max)
{
    return mt_pdu_encode_pdata_frags(out, pcid, command, p, n, last, peer_max);
}

int mt_link_pending_add(mt_link_pending_t *t, uint16_t message_id, mt_link_rsp_cb cb, void *user)
{
    for (unsigned i = 0; i < MT_LINK_MAX_PENDING; i++)
        if (t->e[i].used && t->e[i].message_id == message_id)
            return MT_EEXIST;
    for (unsigned i = 0; i < MT_LINK_MAX_PENDING; i++)
        if (!t->e[i].used) {
            t->e[i].used = true;
            t->e[i].message_id = message_id;
            t->e[i].cb = cb;
            t->e[i].user = user;
            t->n++;
            return 0;
        }
    return MT_ETOOBIG;
}

bool mt_link_pending_take(mt_link_pending_t *t, uint16_t message_id, mt_link_rsp_cb *cb,
                          void **user)
{
    for (unsigned i = 0; i < MT_LINK_MAX_PENDING; i++)
        if (t->e[i].used && t->e[i].message_id == message_id) {
            *cb = t->e[i].cb;
            *user = t->e[i].user;
            t->e[i].used = false;
            t->n--;
            return true;
        }
    return false;
}

uint16_t mt_link_pending_next_id(mt_link_pending_t *t)
{
    for (;;) {
        uint16_t id = ++t->last_id;
        if (id == 0)
            continue;
        bool used = false;
        for (unsigned i = 0; i < MT_LINK_MAX_PENDING && !used; i++)
            used = t->e[i].used && t->e[i].message_id == id;
        if (!used)
            return id;
    }
}

void mt_link_pending_fail(mt_link_pending_t *t, int err)
{
    while (t->n) {
        for (unsigned i = 0; i < MT_LINK_MAX_PENDING; i++)
            if (t->e[i].used) {
                mt_link_rsp_cb cb = t->e[i].cb;
                void *user = t->e[i].user;
                t->e[i].used = false;
                t->n--;
                if (cb)
                    cb(user, err, NULL); /* may add entries: the loop goes on until empty */
                break;
            }
    }
}
