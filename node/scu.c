/*
 * scu.c - one outgoing association (scu.h): owns a uv_tcp_t, one uv_timer_t (set-up, DIMSE,
 * release and flush timeouts), the read buffer and the requests waiting for their responses;
 * carries out the effects of ul.c's requestor transitions:
 *
 *   mt_scu_open --Evt1 [AE-1]--> resolve + connect --Evt2 [AE-2]--> A-ASSOCIATE-RQ sent (Sta5)
 *   A-ASSOCIATE-AC --Evt3 [AE-3]--> Sta6: on_open(0)      RJ --Evt4 [AE-4]--> on_open(REJECTED)
 *   send_command / send_data --Evt9 [DT-1]--> P-DATA-TF   P-DATA-TF --Evt10 [DT-2]--> pdv.c
 *       --> a response command set --> the pending table (link.h) --> its callback
 *   mt_scu_release --Evt11 [AR-1]--> Sta7 --A-RELEASE-RP Evt13 [AR-3]--> close, on_close(0)
 *   A-ABORT / closed / timeout --> [AA-*] --> close, callbacks failed, on_close(error)
 *
 * Lifetime: n_handles counts the open handles (tcp, timer); the object is freed in the last
 * close callback, after on_open (failure) or on_close has been called. A request arriving from
 * the peer (we are SCU only) aborts the association.
 */
#include "scu.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "pdu.h"
#include "pdv.h"
#include "ul.h"
#include "util/alloc.h"
#include "util/cachestat.h"
#include "util/err.h"

#define READ_CHUNK (64u * 1024u)
#define DEFAULT_MAX_PDU 262144u

typedef enum { TM_NONE, TM_SETUP, TM_DIMSE, TM_RELEASE, TM_FLUSH } timer_mode_t;

struct mt_scu {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai;
    unsigned n_handles;
    uv_loop_t *loop;
    mt_log_ctx_t log;
    mt_ul_t ul;
    timer_mode_t timer_mode;
    uint32_t connect_timeout_ms, dimse_timeout_ms, max_pdu;
    char host[256];
    uint16_t port;

    mt_pdu_t rq;
    mt_negotiated_t nego;
    mt_pdv_asm_t pdv;
    mt_link_pending_t pending;
    bool discard_data; /* a response's data set arriving: dropped */

    mt_buf_t rbuf;
    bool reading;
    bool discard_input;
    mt_buf_t *tx;          /* P-DATA-TF bytes for the DT-1 being carried out */
    struct txv *txv;       /* or the same as headers + data not copied (send_data_buf) */
    struct txf *txf;       /* or the same from a file (send_data_file) */
    mt_link_sent_cb tx_cb; /* its completion */
    void *tx_user;
    unsigned n_writes;
    unsigned n_rest; /* a data set's rest being read on the pool (txf_rest): at most 1 */

    mt_scu_open_cb on_open;
    mt_scu_close_cb on_close;
    void *user;
    bool opened;   /* on_open(0) was called */
    bool reported; /* on_open(error) or on_close was called */
    int status;    /* what to report: 0 released, else why it ended */
    bool closing, handles_closing;
    bool in_connect;
    bool in_gai;
};

static unsigned ul_event(mt_scu_t *s, mt_ul_event_t ev, const mt_ul_input_t *in);
static void close_transport(mt_scu_t *s, int status);

/* ---- lifetime ---- */

static void finish(mt_scu_t *s)
{
    if (s->n_handles || s->in_connect || s->in_gai || s->n_rest)
        return;
    mt_link_pending_fail(&s->pending, MT_ECANCELED);
    if (!s->reported) {
        s->reported = true;
        if (s->opened) {
            if (s->on_close)
                s->on_close(s, s->status, s->user);
        } else if (s->on_open) {
            s->on_open(s, s->status ? s->status : MT_ECANCELED, s->user);
        }
    }
    mt_pdu_dispose(&s->rq);
    mt_pdv_dispose(&s->pdv);
    mt_buf_dispose(&s->rbuf);
    mt_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    mt_scu_t *s = h->data;
    s->n_handles--;
    finish(s);
}

static void close_handles(mt_scu_t *s)
{
    if (s->handles_closing)
        return;
    s->handles_closing = true;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

/* ---- timer ---- */

static void on_timer(uv_timer_t *t)
{
    mt_scu_t *s = t->data;
    timer_mode_t m = s->timer_mode;
    s->timer_mode = TM_NONE;
    switch (m) {
    case TM_SETUP:
    case TM_DIMSE:
    case TM_RELEASE:
        mt_log(MT_LOG_WARN, &s->log, "%s timed out in %s: A-ABORT",
               m == TM_SETUP   ? "association set-up"
               : m == TM_DIMSE ? "response"
                               : "release",
               mt_ul_state_name(s->ul.state));
        s->status = MT_ECANCELED;
        if (s->ul.state == MT_STA4 || s->ul.state == MT_STA1)
            close_transport(s, MT_ECANCELED);
        else
            ul_event(s, MT_UL_EV_A_ABORT_RQ, NULL);
        break;
    case TM_FLUSH:
        close_handles(s);
        break;
    case TM_NONE:
        break;
    }
}

static void start_timer(mt_scu_t *s, timer_mode_t m, uint32_t ms)
{
    if (s->closing)
        return;
    s->timer_mode = m;
    uv_timer_start(&s->timer, on_timer, ms, 0);
}

static void stop_timer(mt_scu_t *s)
{
    if (s->closing)
        return;
    s->timer_mode = TM_NONE;
    uv_timer_stop(&s->timer);
}

/* ---- writing ---- */

typedef struct wreq {
    uv_write_t w;
    mt_scu_t *s;
    uint8_t *data;
    uint8_t *hdrs; /* a vectored write's P-DATA-TF + PDV headers (write_txv), else NULL */
    mt_link_sent_cb cb;
    void *user;
} wreq_t;

/* A data set fragment as PDUs whose headers are in hdrs and whose values stay in data (owned,
 * freed after the write): iov alternates header (12 bytes) and value slices. */
typedef struct txv {
    uint8_t *data, *hdrs;
    uv_buf_t *iov;
    unsigned n_iov;
} txv_t;

static void on_write(uv_write_t *w, int status)
{
    wreq_t *wr = (wreq_t *)w;
    mt_scu_t *s = wr->s;
    mt_link_sent_cb cb = wr->cb;
    void *user = wr->user;
    mt_free(wr->data);
    mt_free(wr->hdrs);
    mt_free(wr);
    s->n_writes--;
    if (cb)
        cb(user, status < 0 ? MT_ECANCELED : 0);
    if (status == 0 && s->timer_mode == TM_DIMSE)
        start_timer(s, TM_DIMSE, s->dimse_timeout_ms); /* a data set still going out */
    if (status < 0 && !s->closing) {
        mt_log(MT_LOG_INFO, &s->log, "write failed: %s", uv_strerror(status));
        s->status = MT_EIO;
        ul_event(s, MT_UL_EV_TRANSPORT_CLOSED, NULL);
        return;
    }
    if (s->closing && s->n_writes == 0)
        close_handles(s);
}

static int write_buf(mt_scu_t *s, mt_buf_t *b, mt_link_sent_cb cb, void *user)
{
    if (s->n_rest && !s->closing) { /* a PDU is half sent (txf_rest): nothing may follow it */
        mt_log(MT_LOG_INFO, &s->log, "a PDU while a data set is half sent: closing");
        close_transport(s, MT_EIO);
    }
    if (s->closing || s->handles_closing) {
        mt_buf_dispose(b);
        return MT_ECANCELED;
    }
    wreq_t *wr = mt_malloc(sizeof *wr);
    wr->s = s;
    wr->data = b->data;
    wr->hdrs = NULL;
    wr->cb = cb;
    wr->user = user;
    uv_buf_t ub = uv_buf_init((char *)b->data, (unsigned)b->len);
    b->data = NULL;
    b->len = b->cap = 0;
    int rc = uv_write(&wr->w, (uv_stream_t *)&s->tcp, &ub, 1, on_write);
    if (rc < 0) {
        mt_free(wr->data);
        mt_free(wr);
        return MT_EIO;
    }
    s->n_writes++;
    return 0;
}

/* write_buf for a txv: takes its data and headers (freed after the write, or now). */
static int write_txv(mt_scu_t *s, txv_t *t, mt_link_sent_cb cb, void *user)
{
    wreq_t *wr = NULL;
    int rc = MT_ECANCELED;
    if (!s->closing && !s->handles_closing) {
        wr = mt_malloc(sizeof *wr);
        wr->s = s;
        wr->data = t->data;
        wr->hdrs = t->hdrs;
        wr->cb = cb;
        wr->user = user;
        rc = uv_write(&wr->w, (uv_stream_t *)&s->tcp, t->iov, t->n_iov, on_write) < 0 ? MT_EIO
                                                                                      : 0;
    }
    if (rc < 0) { /* not written (closing, or uv_write refused): freed now */
        mt_free(t->data);
        mt_free(t->hdrs);
        mt_free(wr);
    }
    t->data = t->hdrs = NULL; /* the request's now, or freed above */
    if (rc < 0)
        return rc;
    s->n_writes++;
    return 0;
}

/* A data set's last fragment from a file: the bytes [off, off + n) of fd on pcid. */
typedef struct txf {
    int fd;
    uint64_t off;
    size_t n;
    uint8_t pcid;
    int err; /* write_file: the rest could not be queued after part of it went out */
} txf_t;

/* Where write_file stopped writing straight to the socket: fragment i, with hdone bytes of
 * its header and vdone of its value written. */
typedef struct txf_pos {
    size_t i, hdone, vdone;
} txf_pos_t;

/* Fragment i's header and value length, of n_pdu fragments of at most frag bytes. */
static size_t txf_frag(const txf_t *t, size_t frag, size_t n_pdu, size_t i, uint8_t *hdr)
{
    size_t k = t->n - i * frag < frag ? t->n - i * frag : frag;
    mt_pdu_put_pdata_header(hdr, t->pcid, false, i + 1 == n_pdu, (uint32_t)k);
    return k;
}

/* Write the PDUs straight to the socket (headers with uv_try_write, values with sendfile(2)
 * from the page cache: no copy into our memory nor from it) while libuv has nothing queued
 * and the socket takes them without waiting. Returns true when all went out. */
static bool txf_direct(mt_scu_t *s, const txf_t *t, size_t frag, size_t n_pdu, txf_pos_t *at)
{
    uv_os_fd_t sock;
    if (s->closing || s->handles_closing || uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) ||
        uv_fileno((uv_handle_t *)&s->tcp, &sock) < 0)
        return false;
    uint64_t pos = t->off;
    for (at->i = 0; at->i < n_pdu; at->i++) {
        uint8_t h[MT_PDATA_HEADER_LEN];
        size_t k = txf_frag(t, frag, n_pdu, at->i, h);
        for (at->hdone = 0; at->hdone < sizeof h;) {
            uv_buf_t ub = uv_buf_init((char *)h + at->hdone, (unsigned)(sizeof h - at->hdone));
            int w = uv_try_write((uv_stream_t *)&s->tcp, &ub, 1);
            if (w <= 0)
                return false;
            at->hdone += (size_t)w;
        }
        for (at->vdone = 0; at->vdone < k;) {
            off_t o = (off_t)pos;
            ssize_t w = sendfile(sock, t->fd, &o, k - at->vdone);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) /* EAGAIN (socket full) or anything else: the rest by uv_write */
                return false;
            at->vdone += (size_t)w;
            pos += (uint64_t)w;
        }
    }
    return true;
}

/* What txf_direct left (everything when the file is no longer wholly in the page cache): the
 * rest of fragment at.i and the fragments after it, read from the file on a pool thread (the
 * loop never waits for the disk) and then queued as a txv behind the headers that went out.
 * Until then a PDU may be half sent, so nothing else may be written on the association
 * (write_buf closes it instead) and the scu stays alive (n_rest, finish). */
typedef struct rest {
    uv_work_t w;
    mt_scu_t *s;
    txf_t t;
    size_t frag, n_pdu;
    txf_pos_t at;
    txv_t v;
    size_t left, got;
    mt_link_sent_cb cb;
    void *user;
} rest_t;

static void rest_read(uv_work_t *w)
{
    rest_t *r = (rest_t *)w;
    uint64_t start = r->t.off + r->at.i * r->frag + r->at.vdone;
    while (r->got < r->left) {
        ssize_t k = pread(r->t.fd, r->v.data + r->got, r->left - r->got, (off_t)(start + r->got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        r->got += (size_t)k;
    }
}

/* The rest's P-DATA-TF headers (the first without the part txf_direct wrote) and values. */
static void rest_iov(rest_t *r)
{
    size_t pos = 0;
    for (size_t i = r->at.i; i < r->n_pdu; i++) {
        uint8_t *h = r->v.hdrs + (i - r->at.i) * MT_PDATA_HEADER_LEN;
        size_t k = txf_frag(&r->t, r->frag, r->n_pdu, i, h), hskip = 0;
        if (i == r->at.i) {
            hskip = r->at.hdone;
            k -= r->at.vdone;
        }
        if (hskip < MT_PDATA_HEADER_LEN)
            r->v.iov[r->v.n_iov++] =
                uv_buf_init((char *)h + hskip, (unsigned)(MT_PDATA_HEADER_LEN - hskip));
        r->v.iov[r->v.n_iov++] = uv_buf_init((char *)r->v.data + pos, (unsigned)k);
        pos += k;
    }
}

static void rest_read_done(uv_work_t *w, int status)
{
    rest_t *r = (rest_t *)w;
    mt_scu_t *s = r->s;
    s->n_rest--;
    s->n_writes--; /* the read's hold; the write below takes its own */
    int rc = status == 0 && r->got == r->left ? 0 : MT_EIO;
    if (rc == 0) {
        rest_iov(r);
        rc = write_txv(s, &r->v, r->cb, r->user); /* MT_ECANCELED once closing */
    } else {
        mt_log(MT_LOG_WARN, &s->log, "cannot read the file being sent: %s", mt_strerror(rc));
    }
    mt_free(r->v.data); /* NULL once taken */
    mt_free(r->v.hdrs);
    mt_free(r->v.iov);
    if (rc < 0) {
        close_transport(s, MT_EIO); /* the command went out without its data set */
        if (r->cb)
            r->cb(r->user, MT_ECANCELED);
    }
    mt_free(r);
    if (s->handles_closing && s->n_handles == 0)
        finish(s); /* the handles closed while the read ran */
    else if (s->closing && s->n_writes == 0)
        close_handles(s);
}

static int txf_rest(mt_scu_t *s, const txf_t *t, size_t frag, size_t n_pdu, const txf_pos_t *at,
                    mt_link_sent_cb cb, void *user)
{
    rest_t *r = mt_calloc(1, sizeof *r);
    r->s = s;
    r->t = *t;
    r->frag = frag;
    r->n_pdu = n_pdu;
    r->at = *at;
    r->left = (size_t)(t->n - at->i * frag - at->vdone);
    size_t m = n_pdu - at->i;
    r->v = (txv_t){mt_malloc(r->left ? r->left : 1), mt_malloc(m * MT_PDATA_HEADER_LEN),
                   mt_malloc(2 * m * sizeof(uv_buf_t)), 0};
    r->cb = cb;
    r->user = user;
    if (uv_queue_work(s->loop, &r->w, rest_read, rest_read_done) < 0) {
        mt_free(r->v.data);
        mt_free(r->v.hdrs);
        mt_free(r->v.iov);
        mt_free(r);
        return MT_EIO;
    }
    s->n_rest++;
    s->n_writes++; /* close_transport waits for it like for a write */
    return 0;
}

/* send_pdu for a txf: straight from the page cache while the socket takes it, the rest read on
 * the pool (txf_rest); when all went out directly, an empty write completes it in order
 * (on_write). The cache is checked again here, on the loop, right before sendfile: a page
 * evicted since the pool's check (retrieve.c) would make sendfile wait for the disk. */
static int write_file(mt_scu_t *s, txf_t *t, mt_link_sent_cb cb, void *user)
{
    size_t frag = mt_pdu_pdv_max_value(s->nego.peer_max_pdu);
    size_t n_pdu = t->n ? (t->n + frag - 1) / frag : 1;
    txf_pos_t at = {0, 0, 0};
    if (s->n_rest)
        return MT_ESTATE; /* the previous data set is not out yet (never: on_sent comes after) */
    bool cached = mt_in_page_cache(t->fd, t->off, t->n);
    if (!cached || !txf_direct(s, t, frag, n_pdu, &at)) {
        mt_log(MT_LOG_DEBUG, &s->log, "data set from a file%s: fragment %zu/%zu stopped after "
               "%zu+%zu bytes, the rest queued (read on the pool)",
               cached ? "" : " no longer in the page cache", at.i + 1, n_pdu, at.hdone, at.vdone);
        int rc = txf_rest(s, t, frag, n_pdu, &at, cb, user);
        if (rc < 0 && (at.i || at.hdone))
            t->err = rc; /* part of a PDU went out: the association cannot go on */
        return rc;
    }
    uv_buf_t none = uv_buf_init(NULL, 0);
    txv_t v = {NULL, NULL, &none, 1};
    return write_txv(s, &v, cb, user);
}

/* The DT-1 of a data set that is not in our P-DATA-TF buffer: from a file (txf) or headers
 * plus the caller's bytes (txv). The write takes the completion; when it fails, the
 * completion stays with the caller (as for the buffered case in send_pdu). */
static void send_pdata_unbuffered(mt_scu_t *s)
{
    mt_link_sent_cb cb = s->tx_cb;
    void *user = s->tx_user;
    s->tx_cb = NULL;
    int rc = s->txf ? write_file(s, s->txf, cb, user) : write_txv(s, s->txv, cb, user);
    if (rc < 0 && cb)
        s->tx_cb = cb, s->tx_user = user;
}

static void send_pdu(mt_scu_t *s, const mt_ul_fx_t *f)
{
    mt_buf_t b;
    mt_buf_init(&b, SIZE_MAX);
    int rc = 0;
    mt_link_sent_cb cb = NULL;
    void *user = NULL;
    switch (f->pdu_type) {
    case MT_UL_PDU_A_ASSOCIATE_RQ:
        rc = mt_pdu_encode(&s->rq, &b);
        break;
    case MT_UL_PDU_P_DATA_TF:
        if (s->txf || s->txv) {
            mt_buf_dispose(&b);
            send_pdata_unbuffered(s);
            return;
        }
        if (!s->tx) {
            rc = MT_ESTATE;
            break;
        }
        mt_buf_dispose(&b);
        b = *s->tx;
        mt_buf_init(s->tx, SIZE_MAX);
        cb = s->tx_cb;
        user = s->tx_user;
        s->tx_cb = NULL; /* taken: the write owns the callback now */
        break;
    case MT_UL_PDU_A_RELEASE_RQ:
        rc = mt_pdu_encode_release_rq(&b);
        break;
    case MT_UL_PDU_A_RELEASE_RP:
        rc = mt_pdu_encode_release_rp(&b);
        break;
    case MT_UL_PDU_A_ABORT:
        rc = mt_pdu_encode_abort(&b, f->abort_source, f->abort_reason);
        break;
    default:
        rc = MT_ESTATE;
        break;
    }
    if (rc < 0) {
        mt_log(MT_LOG_ERROR, &s->log, "cannot encode %s: %s", mt_pdu_type_name(f->pdu_type),
               mt_strerror(rc));
        mt_buf_dispose(&b);
        return;
    }
    if (write_buf(s, &b, cb, user) < 0 && cb)
        s->tx_cb = cb, s->tx_user = user; /* not written: the caller reports the error */
}

/* ---- the state machine's effects ---- */

static void do_connect(mt_scu_t *s);

static unsigned ul_event(mt_scu_t *s, mt_ul_event_t ev, const mt_ul_input_t *in)
{
    if (s->handles_closing)
        return 0;
    mt_ul_effects_t fx;
    if (mt_ul_step(&s->ul, ev, in, &fx) < 0) {
        mt_log(MT_LOG_DEBUG, &s->log, "upper layer: %s ignored in %s", mt_ul_event_desc(ev),
               mt_ul_state_name(s->ul.state));
        return 0;
    }
    unsigned ind = 0;
    for (unsigned i = 0; i < fx.n; i++) {
        const mt_ul_fx_t *f = &fx.fx[i];
        switch (f->kind) {
        case MT_UL_FX_TRANSPORT_CONNECT:
            do_connect(s);
            break;
        case MT_UL_FX_SEND_PDU:
            send_pdu(s, f);
            break;
        case MT_UL_FX_START_ARTIM:
            start_timer(s, TM_RELEASE, s->connect_timeout_ms);
            break;
        case MT_UL_FX_STOP_ARTIM:
            break;
        case MT_UL_FX_CLOSE_TRANSPORT:
            close_transport(s, s->status);
            break;
        case MT_UL_FX_INDICATE_ABORT:
        case MT_UL_FX_INDICATE_P_ABORT:
            if (!s->status)
                s->status = MT_ECANCELED;
            mt_link_pending_fail(&s->pending, MT_ECANCELED);
            ind |= 1u << f->kind;
            break;
        default:
            ind |= 1u << f->kind;
            break;
        }
    }
    if (s->ul.state == MT_STA1 || s->ul.state == MT_STA13) {
        if (s->ul.state == MT_STA13 && !s->status)
            s->status = MT_ECANCELED;
        mt_link_pending_fail(&s->pending, MT_ECANCELED);
        if (s->ul.state == MT_STA13 && s->timer_mode != TM_RELEASE)
            start_timer(s, TM_RELEASE, s->connect_timeout_ms); /* wait for the peer to close */
    }
    if (s->ul.state == MT_STA1)
        close_transport(s, s->status);
    return ind;
}

/* ---- closing ---- */

static void close_transport(mt_scu_t *s, int status)
{
    if (s->closing)
        return;
    if (status && !s->status)
        s->status = status;
    s->closing = true;
    if (s->reading) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = false;
    }
    mt_link_pending_fail(&s->pending, MT_ECANCELED);
    if (s->n_writes == 0) {
        close_handles(s);
        return;
    }
    s->timer_mode = TM_FLUSH;
    uv_timer_start(&s->timer, on_timer, s->connect_timeout_ms, 0);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mt_scu_t *s = h->data;
    (void)suggested;
    if (s->discard_input)
        s->rbuf.len = 0;
    size_t room = s->rbuf.limit - s->rbuf.len;
    size_t want = room < READ_CHUNK ? room : READ_CHUNK;
    if (want == 0 || mt_buf_reserve(&s->rbuf, want) < 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)s->rbuf.data + s->rbuf.len, (unsigned)(s->rbuf.cap - s->rbuf.len));
}

static int dimse_abort(mt_scu_t *s, const char *why)
{
    mt_log(MT_LOG_WARN, &s->log, "DIMSE protocol violation: %s", why);
    s->status = MT_EPROTO;
    ul_event(s, MT_UL_EV_A_ABORT_RQ, NULL);
    return MT_ECANCELED;
}

static int on_pdv(void *user, mt_pdv_event_t *ev)
{
    mt_scu_t *s = user;
    if (s->ul.state != MT_STA6 && s->ul.state != MT_STA7)
        return MT_ECANCELED;
    if (ev->type == MT_PDV_EV_DATA) {
        if (ev->last)
            s->discard_data = false;
        return 0; /* responses' data sets are not used (C-STORE-RSP has none) */
    }
    mt_dimse_cmd_t cmd;
    mt_diag_t d = {0, NULL};
    if (mt_dimse_decode(ev->data, ev->len, &cmd, &d) < 0)
        return dimse_abort(s, d.reason ? d.reason : "malformed command set");
    ev->expect_data = mt_dimse_has_dataset(&cmd);
    s->discard_data = ev->expect_data;
    if (!(cmd.command_field & 0x8000))
        return dimse_abort(s, "request received on an association mitral opened as SCU");
    mt_link_rsp_cb cb;
    void *cu;
    if (!mt_link_pending_take(&s->pending, cmd.message_id_responded_to, &cb, &cu))
        return dimse_abort(s, "response to a request mitral did not send");
    mt_log(MT_LOG_DEBUG, &s->log, "recv %s msgid=%u status=0x%04X",
           mt_dimse_command_name(cmd.command_field), cmd.message_id_responded_to, cmd.status);
    if (s->pending.n == 0 && s->timer_mode == TM_DIMSE)
        stop_timer(s);
    cb(cu, 0, &cmd);
    return 0;
}

static void handle_pdu(mt_scu_t *s, const mt_pdu_t *pdu)
{
    switch (pdu->type) {
    case MT_PDU_A_ASSOCIATE_AC: {
        unsigned ind = ul_event(s, MT_UL_EV_A_ASSOCIATE_AC_PDU, NULL);
        if (!(ind & (1u << MT_UL_FX_CONFIRM_ASSOCIATE_AC)))
            return;
        stop_timer(s);
        if (mt_nego_read_ac(&s->rq.u.assoc, &pdu->u.assoc, &s->nego) < 0) {
            mt_log(MT_LOG_WARN, &s->log, "A-ASSOCIATE-AC answers contexts we did not propose");
            s->status = MT_EPROTO;
            ul_event(s, MT_UL_EV_A_ABORT_RQ, NULL);
            return;
        }
        for (size_t i = 0; i < s->nego.n_pcs; i++)
            if (s->nego.pcs[i].result == MT_PC_ACCEPTANCE)
                mt_pdv_allow(&s->pdv, s->nego.pcs[i].id);
        mt_log(MT_LOG_INFO, &s->log,
               "association to %s:%u accepted: contexts=%zu/%zu peer_max_pdu=%u impl=%s", s->host,
               s->port, s->nego.n_accepted, s->nego.n_pcs, s->nego.peer_max_pdu,
               s->nego.peer_impl_class_uid);
        s->opened = true;
        if (s->on_open)
            s->on_open(s, 0, s->user);
        break;
    }
    case MT_PDU_A_ASSOCIATE_RJ:
        s->nego.rj_result = pdu->u.rj.result;
        s->nego.rj_source = pdu->u.rj.source;
        s->nego.rj_reason = pdu->u.rj.reason;
        mt_log(MT_LOG_WARN, &s->log, "association to %s:%u rejected: result=%u source=%u reason=%u",
               s->host, s->port, pdu->u.rj.result, pdu->u.rj.source, pdu->u.rj.reason);
        s->status = MT_EREJECTED;
        ul_event(s, MT_UL_EV_A_ASSOCIATE_RJ_PDU, NULL);
        break;
    case MT_PDU_P_DATA_TF: {
        unsigned ind = ul_event(s, MT_UL_EV_P_DATA_TF_PDU, NULL);
        if (!(ind & (1u << MT_UL_FX_INDICATE_P_DATA)))
            return;
        mt_pdu_diag_t diag = {0, NULL, 0, 0};
        int rc = mt_pdv_feed_pdu(&s->pdv, pdu, &diag);
        if (rc < 0 && rc != MT_ECANCELED && (s->ul.state == MT_STA6 || s->ul.state == MT_STA7)) {
            mt_log(MT_LOG_WARN, &s->log, "invalid P-DATA-TF: %s",
                   diag.reason ? diag.reason : mt_strerror(rc));
            s->status = MT_EPROTO;
            mt_ul_input_t in = {.abort_reason = diag.abort_reason};
            ul_event(s, MT_UL_EV_INVALID_PDU, &in);
        }
        break;
    }
    case MT_PDU_A_RELEASE_RQ:
        ul_event(s, MT_UL_EV_A_RELEASE_RQ_PDU, NULL);
        if (s->ul.state == MT_STA8 || s->ul.state == MT_STA9) /* answer at once: no work */
            ul_event(s, MT_UL_EV_A_RELEASE_RSP, NULL);
        break;
    case MT_PDU_A_RELEASE_RP:
        ul_event(s, MT_UL_EV_A_RELEASE_RP_PDU, NULL);
        break;
    case MT_PDU_A_ABORT: {
        mt_log(MT_LOG_WARN, &s->log, "association aborted by %s:%u: source=%u reason=%u", s->host,
               s->port, pdu->u.abort.source, pdu->u.abort.reason);
        s->status = MT_ECANCELED;
        mt_ul_input_t in = {.abort_source = pdu->u.abort.source};
        ul_event(s, MT_UL_EV_A_ABORT_PDU, &in);
        break;
    }
    default:
        ul_event(s, MT_UL_EV_A_ASSOCIATE_RQ_PDU, NULL); /* an RQ to a requestor: AA-8 */
        break;
    }
}

static void process_input(mt_scu_t *s)
{
    size_t pos = 0;
    while (!s->closing && !s->discard_input) {
        const uint8_t *p = s->rbuf.data + pos;
        size_t n = s->rbuf.len - pos;
        if (n < MT_PDU_HEADER_LEN)
            break;
        mt_pdu_t pdu;
        size_t used = 0;
        mt_pdu_diag_t diag = {0, NULL, 0, 0};
        int rc = mt_pdu_decode(p, n, s->max_pdu, &pdu, &used, &diag);
        if (rc == MT_EAGAIN)
            break;
        if (rc < 0) {
            mt_log(MT_LOG_WARN, &s->log, "invalid PDU from %s:%u: %s", s->host, s->port,
                   diag.reason ? diag.reason : mt_strerror(rc));
            s->discard_input = true;
            s->status = MT_EPROTO;
            mt_ul_input_t in = {.abort_reason = diag.abort_reason};
            ul_event(s, MT_UL_EV_INVALID_PDU, &in);
            break;
        }
        handle_pdu(s, &pdu);
        mt_pdu_dispose(&pdu);
        pos += used;
    }
    if (s->discard_input)
        s->rbuf.len = 0;
    else if (pos)
        mt_buf_consume(&s->rbuf, pos);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    mt_scu_t *s = st->data;
    (void)buf;
    if (nread < 0) {
        if (s->reading) {
            uv_read_stop(st);
            s->reading = false;
        }
        if (s->closing)
            return;
        if (s->ul.state != MT_STA13 && s->ul.state != MT_STA7)
            mt_log(MT_LOG_WARN, &s->log, "connection to %s:%u lost in %s: %s", s->host, s->port,
                   mt_ul_state_name(s->ul.state),
                   nread == UV_EOF ? "closed by the peer" : uv_strerror((int)nread));
        if (!s->status && s->ul.state != MT_STA13)
            s->status = MT_EIO;
        ul_event(s, MT_UL_EV_TRANSPORT_CLOSED, NULL);
        return;
    }
    if (nread == 0 || s->closing)
        return;
    if (s->discard_input)
        return;
    s->rbuf.len += (size_t)nread;
    if (s->timer_mode == TM_DIMSE)
        start_timer(s, TM_DIMSE, s->dimse_timeout_ms);
    process_input(s);
}

/* ---- connecting ---- */

static void on_connect(uv_connect_t *c, int status)
{
    mt_scu_t *s = c->data;
    s->in_connect = false;
    if (s->handles_closing) {
        finish(s);
        return;
    }
    if (status < 0) {
        mt_log(MT_LOG_WARN, &s->log, "cannot connect to %s:%u: %s", s->host, s->port,
               uv_strerror(status));
        s->status = status == UV_ECONNREFUSED ? MT_EIO : MT_EIO;
        ul_event(s, MT_UL_EV_TRANSPORT_CLOSED, NULL); /* Sta4, AA-4 -> Sta1 */
        close_transport(s, MT_EIO);
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) == 0)
        s->reading = true;
    ul_event(s, MT_UL_EV_TRANSPORT_CONFIRM, NULL); /* AE-2: the A-ASSOCIATE-RQ */
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    mt_scu_t *s = g->data;
    s->in_gai = false;
    if (s->handles_closing) {
        uv_freeaddrinfo(res);
        finish(s);
        return;
    }
    if (status < 0 || !res) {
        mt_log(MT_LOG_WARN, &s->log, "cannot resolve %s: %s", s->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        ul_event(s, MT_UL_EV_TRANSPORT_CLOSED, NULL);
        close_transport(s, MT_ENOENT);
        return;
    }
    s->connect_req.data = s;
    int rc = uv_tcp_connect(&s->connect_req, &s->tcp, res->ai_addr, on_connect);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        mt_log(MT_LOG_WARN, &s->log, "cannot connect to %s:%u: %s", s->host, s->port,
               uv_strerror(rc));
        ul_event(s, MT_UL_EV_TRANSPORT_CLOSED, NULL);
        close_transport(s, MT_EIO);
        return;
    }
    s->in_connect = true;
}

static void do_connect(mt_scu_t *s)
{
    char port[8];
    snprintf(port, sizeof port, "%u", s->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->gai.data = s;
    int rc = uv_getaddrinfo(s->loop, &s->gai, on_resolved, s->host, port, &hints);
    if (rc < 0) {
        s->status = MT_ENOENT;
        return; /* the caller sees Sta4 and closes */
    }
    s->in_gai = true;
}

int mt_scu_open(uv_loop_t *loop, const mt_scu_params_t *p, mt_scu_open_cb on_open,
                mt_scu_close_cb on_close, void *user, mt_scu_t **out)
{
    *out = NULL;
    if (!p->host || strlen(p->host) >= 256 || p->port == 0)
        return MT_EINVAL;
    mt_scu_t *s = mt_calloc(1, sizeof *s);
    mt_nego_rq_params_t rp = {p->calling_ae,
                              p->called_ae,
                              p->pcs,
                              p->n_pcs,
                              p->max_pdu ? p->max_pdu : DEFAULT_MAX_PDU,
                              p->max_ops_invoked};
    int rc = mt_nego_build_rq(&rp, &s->rq);
    if (rc < 0) {
        mt_pdu_dispose(&s->rq);
        mt_free(s);
        return rc;
    }
    s->loop = loop;
    s->max_pdu = rp.max_pdu;
    s->connect_timeout_ms = p->connect_timeout_ms ? p->connect_timeout_ms : 30000;
    s->dimse_timeout_ms = p->dimse_timeout_ms ? p->dimse_timeout_ms : 300000;
    snprintf(s->host, sizeof s->host, "%s", p->host);
    s->port = p->port;
    s->on_open = on_open;
    s->on_close = on_close;
    s->user = user;
    s->log.assoc_id = p->log_parent_id;
    snprintf(s->log.peer, sizeof s->log.peer, "%s:%u", p->host, p->port);
    snprintf(s->log.calling, sizeof s->log.calling, "%s", p->calling_ae);
    snprintf(s->log.called, sizeof s->log.called, "%s", p->called_ae);
    mt_ul_init(&s->ul, true, &s->log);
    mt_pdv_init(&s->pdv, 0, on_pdv, s);
    mt_buf_init(&s->rbuf,
                MT_PDU_HEADER_LEN +
                    (s->max_pdu > MT_PDU_MAX_CONTROL_LEN ? s->max_pdu : MT_PDU_MAX_CONTROL_LEN));
    uv_tcp_init(loop, &s->tcp);
    uv_timer_init(loop, &s->timer);
    s->tcp.data = s->timer.data = s;
    s->n_handles = 2;
    start_timer(s, TM_SETUP, s->connect_timeout_ms);
    ul_event(s, MT_UL_EV_A_ASSOCIATE_RQ, NULL); /* AE-1: resolve + connect */
    if (!s->in_gai) {
        ul_event(s, MT_UL_EV_TRANSPORT_CLOSED, NULL);
        close_transport(s, MT_ENOENT);
    }
    *out = s;
    return 0;
}

/* ---- the link ---- */

static uint8_t link_find_pc(void *impl, const char *as, const char *ts)
{
    mt_scu_t *s = impl;
    uint8_t id = mt_nego_find_pc(&s->nego, as, ts, false);
    return id ? id : mt_nego_find_pc(&s->nego, as, ts, true); /* SCP role: commitment report */
}

static uint32_t link_peer_max(void *impl)
{
    return ((mt_scu_t *)impl)->nego.peer_max_pdu;
}

static uint16_t link_next_id(void *impl)
{
    return mt_link_pending_next_id(&((mt_scu_t *)impl)->pending);
}

static int send_pdata(mt_scu_t *s, mt_buf_t *b, mt_link_sent_cb cb, void *user)
{
    if (s->closing || s->ul.state != MT_STA6) {
        mt_buf_dispose(b);
        return MT_ECANCELED;
    }
    s->tx = b;
    s->tx_cb = cb;
    s->tx_user = user;
    ul_event(s, MT_UL_EV_P_DATA_RQ, NULL);
    bool unsent = s->tx_cb != NULL;
    s->tx = NULL;
    s->tx_cb = NULL;
    mt_buf_dispose(b);
    return unsent ? MT_ECANCELED : 0;
}

static int link_send_command(void *impl, uint8_t pcid, const mt_dimse_cmd_t *rq,
                             mt_link_rsp_cb on_rsp, void *user)
{
    mt_scu_t *s = impl;
    if (s->closing || s->ul.state != MT_STA6)
        return MT_ECANCELED;
    mt_buf_t cmd, out;
    mt_buf_init(&cmd, MT_PDV_DEFAULT_MAX_COMMAND);
    mt_buf_init(&out, SIZE_MAX);
    int rc = mt_dimse_encode(rq, &cmd);
    if (rc == 0)
        rc = mt_link_encode_pdata(&out, pcid, true, cmd.data, cmd.len, true, s->nego.peer_max_pdu);
    mt_buf_dispose(&cmd);
    if (rc == 0)
        rc = mt_link_pending_add(&s->pending, rq->message_id, on_rsp, user);
    if (rc < 0) {
        mt_buf_dispose(&out);
        return rc;
    }
    mt_log(MT_LOG_DEBUG, &s->log, "send %s msgid=%u pcid=%u",
           mt_dimse_command_name(rq->command_field), rq->message_id, pcid);
    rc = send_pdata(s, &out, NULL, NULL);
    if (rc < 0) {
        mt_link_rsp_cb cb;
        void *u;
        mt_link_pending_take(&s->pending, rq->message_id, &cb, &u);
        return rc;
    }
    if (s->timer_mode == TM_NONE)
        start_timer(s, TM_DIMSE, s->dimse_timeout_ms);
    return 0;
}

static int link_send_data(void *impl, uint8_t pcid, const uint8_t *p, size_t n, bool last,
                          mt_link_sent_cb on_sent, void *user)
{
    mt_scu_t *s = impl;
    if (s->closing || s->ul.state != MT_STA6)
        return MT_ECANCELED;
    mt_buf_t out;
    mt_buf_init(&out, SIZE_MAX);
    int rc = mt_link_encode_pdata(&out, pcid, false, p, n, last, s->nego.peer_max_pdu);
    if (rc < 0) {
        mt_buf_dispose(&out);
        return rc;
    }
    return send_pdata(s, &out, on_sent, user);
}

/* send_data without the copy (link.h): b's storage goes out behind per-PDU headers. */
static int link_send_data_buf(void *impl, uint8_t pcid, mt_buf_t *b, size_t off, bool last,
                              mt_link_sent_cb on_sent, void *user)
{
    mt_scu_t *s = impl;
    txv_t t = {b->data, NULL, NULL, 0};
    size_t n = b->len > off ? b->len - off : 0;
    mt_buf_init(b, b->limit); /* taken, in every case */
    if (s->closing || s->ul.state != MT_STA6) {
        mt_free(t.data);
        return MT_ECANCELED;
    }
    size_t frag = mt_pdu_pdv_max_value(s->nego.peer_max_pdu);
    size_t n_pdu = n ? (n + frag - 1) / frag : 1;
    if (n_pdu > UINT_MAX / 2) {
        mt_free(t.data);
        return MT_ETOOBIG;
    }
    t.hdrs = mt_malloc(n_pdu * MT_PDATA_HEADER_LEN);
    t.iov = mt_malloc(2 * n_pdu * sizeof *t.iov);
    for (size_t i = 0; i < n_pdu; i++) {
        size_t k = n - i * frag < frag ? n - i * frag : frag;
        uint8_t *h = t.hdrs + i * MT_PDATA_HEADER_LEN;
        mt_pdu_put_pdata_header(h, pcid, false, last && i + 1 == n_pdu, (uint32_t)k);
        t.iov[2 * i] = uv_buf_init((char *)h, MT_PDATA_HEADER_LEN);
        t.iov[2 * i + 1] = uv_buf_init((char *)t.data + off + i * frag, (unsigned)k);
    }
    t.n_iov = (unsigned)(2 * n_pdu);
    s->txv = &t;
    s->tx_cb = on_sent;
    s->tx_user = user;
    ul_event(s, MT_UL_EV_P_DATA_RQ, NULL); /* DT-1: send_pdu -> write_txv takes data, hdrs */
    bool unsent = s->tx_cb != NULL;
    s->txv = NULL;
    s->tx_cb = NULL;
    mt_free(t.data); /* NULL once taken */
    mt_free(t.hdrs);
    mt_free(t.iov); /* uv_write copied the array */
    return unsent ? MT_ECANCELED : 0;
}

/* send_data_buf for the bytes [off, off + n) of a file, the data set's end (link.h). */
static int link_send_data_file(void *impl, uint8_t pcid, int fd, uint64_t off, size_t n,
                               mt_link_sent_cb on_sent, void *user)
{
    mt_scu_t *s = impl;
    if (s->closing || s->ul.state != MT_STA6)
        return MT_ECANCELED;
    if (n / mt_pdu_pdv_max_value(s->nego.peer_max_pdu) > UINT_MAX / 2)
        return MT_ETOOBIG;
    txf_t t = {fd, off, n, pcid, 0};
    s->txf = &t;
    s->tx_cb = on_sent;
    s->tx_user = user;
    ul_event(s, MT_UL_EV_P_DATA_RQ, NULL); /* DT-1: send_pdu -> write_file */
    bool unsent = s->tx_cb != NULL;
    s->txf = NULL;
    s->tx_cb = NULL;
    if (t.err < 0) {
        mt_log(MT_LOG_WARN, &s->log, "cannot read the file being sent: %s", mt_strerror(t.err));
        close_transport(s, MT_EIO); /* a PDU half sent: no A-ABORT can follow it */
        return t.err;
    }
    return unsent ? MT_ECANCELED : 0;
}

/* The negotiated window (0 = unlimited), bounded by the pending table. */
static unsigned link_max_outstanding(void *impl)
{
    uint16_t w = ((mt_scu_t *)impl)->nego.max_ops_invoked;
    return w == 0 || w > MT_LINK_MAX_PENDING ? MT_LINK_MAX_PENDING : w;
}

static const mt_link_ops_t scu_link_ops = {link_find_pc,      link_peer_max,  link_next_id,
                                           link_send_command, link_send_data, link_max_outstanding,
                                           link_send_data_buf, link_send_data_file};

mt_link_t mt_scu_link(mt_scu_t *s)
{
    mt_link_t l = {&scu_link_ops, s};
    return l;
}

const mt_negotiated_t *mt_scu_negotiated(const mt_scu_t *s)
{
    return &s->nego;
}

const mt_log_ctx_t *mt_scu_log(const mt_scu_t *s)
{
    return &s->log;
}

bool mt_scu_ready(const mt_scu_t *s)
{
    return s->opened && !s->closing && s->ul.state == MT_STA6;
}

void mt_scu_release(mt_scu_t *s)
{
    if (s->closing)
        return;
    if (s->ul.state != MT_STA6) {
        mt_scu_abort(s);
        return;
    }
    ul_event(s, MT_UL_EV_A_RELEASE_RQ, NULL);
    start_timer(s, TM_RELEASE, s->connect_timeout_ms);
}

void mt_scu_abort(mt_scu_t *s)
{
    if (s->closing)
        return;
    if (!s->status)
        s->status = MT_ECANCELED;
    mt_ul_state_t st = s->ul.state;
    if (st == MT_STA4 || st == MT_STA1) {
        if (s->in_gai)
            uv_cancel((uv_req_t *)&s->gai);
        close_transport(s, MT_ECANCELED);
        return;
    }
    ul_event(s, MT_UL_EV_A_ABORT_RQ, NULL);
    close_transport(s, MT_ECANCELED);
}
