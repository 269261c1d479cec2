/* tests for node/svc/retrieve.c: the pure parts (which presentation contexts are proposed for
 * a set of instances, the final C-MOVE/C-GET status for the sub-operation counts), and the
 * engine's asynchronous operations window driven over a scripted link (link.h) on a real libuv
 * loop with real files: how many C-STOREs are outstanding, responses in any order, one
 * failure among outstanding ones, the association lost with some outstanding, cancel; and a
 * link that sends from files (send_data_file): a cached file larger than the head goes from
 * the file with exactly its data set's bytes, one dropped from the page cache and a small one
 * through the buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dicom/ds.h"
#include "svc/retrieve.h"
#include "util/alloc.h"
#include "util/err.h"

#define MR "1.2.840.10008.5.1.4.1.1.4"
#define CT "1.2.840.10008.5.1.4.1.1.2"
#define ELE "1.2.840.10008.1.2.1"
#define ILE "1.2.840.10008.1.2"
#define BE "1.2.840.10008.1.2.2"
#define JPEG "1.2.840.10008.1.2.4.50"

static mt_subop_inst_t inst(const char *cls, const char *ts)
{
    mt_subop_inst_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.sop_class, sizeof s.sop_class, "%s", cls);
    snprintf(s.ts, sizeof s.ts, "%s", ts);
    return s;
}

static void test_proposals(void **state)
{
    (void)state;
    mt_subop_inst_t in[] = {inst(MR, ELE), inst(MR, ELE), inst(MR, ILE), inst(MR, JPEG),
                            inst(CT, BE)};
    mt_nego_proposal_t out[16];
    bool trunc;
    size_t n = mt_retrieve_proposals(in, 5, out, 16, &trunc);
    assert_false(trunc);
    /* MR [ELE, ILE], MR [ILE, ELE], MR [JPEG], CT [BE], CT [ELE, ILE] */
    assert_int_equal(n, 5);
    assert_string_equal(out[0].ts[0], ELE);
    assert_string_equal(out[0].ts[1], ILE);
    assert_string_equal(out[1].ts[0], ILE);
    assert_string_equal(out[2].ts[0], JPEG);
    assert_int_equal(out[2].n_ts, 1); /* compressed: only as stored */
    assert_string_equal(out[3].abstract_syntax, CT);
    assert_string_equal(out[3].ts[0], BE);
    assert_int_equal(out[3].n_ts, 1);
    assert_string_equal(out[4].ts[0], ELE); /* native big endian: the LE fallback too */
    assert_int_equal(out[4].n_ts, 2);
    n = mt_retrieve_proposals(in, 5, out, 2, &trunc);
    assert_int_equal(n, 2);
    assert_true(trunc);
}

static void test_final_status(void **state)
{
    (void)state;
    mt_retrieve_counts_t c = {0, 5, 0, 0};
    assert_int_equal(mt_retrieve_final_status(&c, false), 0x0000);
    c = (mt_retrieve_counts_t){0, 4, 1, 0};
    assert_int_equal(mt_retrieve_final_status(&c, false), 0xB000);
    c = (mt_retrieve_counts_t){0, 0, 5, 0};
    assert_int_equal(mt_retrieve_final_status(&c, false), 0xA702);
    c = (mt_retrieve_counts_t){0, 0, 0, 2};
    assert_int_equal(mt_retrieve_final_status(&c, false), 0xB000);
    c = (mt_retrieve_counts_t){3, 2, 0, 0};
    assert_int_equal(mt_retrieve_final_status(&c, true), 0xFE00);
}

/* ---- the engine over a scripted link ---- */

#define MAX_RQ 64
#define N_INST 10

typedef struct tlink {
    unsigned window;
    uint16_t last_id;
    struct {
        uint16_t id;
        mt_link_rsp_cb cb;
        void *user;
        char sop[65];
    } pend[MAX_RQ]; /* requests awaiting a response, in send order */
    unsigned n_pend, max_pend;
    bool data_open;        /* a data set started and its last fragment not written yet */
    char sent[N_INST][65]; /* SOP Instance UIDs in the order their C-STORE-RQs went out */
    size_t n_sent;
    struct {
        mt_link_sent_cb cb;
        void *user;
    } wq[MAX_RQ]; /* write completions to deliver */
    unsigned n_wq;
    const uint8_t *body; /* every instance's data set bytes (engine) */
    size_t body_len;
    unsigned n_from_file, n_copied; /* data sets sent by send_data_file / send_data */
} tlink_t;

static uint8_t t_find_pc(void *impl, const char *as, const char *ts)
{
    (void)impl;
    return strcmp(as, MR) == 0 && strcmp(ts, ELE) == 0 ? 1 : 0;
}
static uint32_t t_peer_max(void *impl)
{
    (void)impl;
    return 16384;
}
static uint16_t t_next_id(void *impl)
{
    return ++((tlink_t *)impl)->last_id;
}
static int t_send_command(void *impl, uint8_t pcid, const mt_dimse_cmd_t *rq, mt_link_rsp_cb cb,
                          void *user)
{
    tlink_t *t = impl;
    (void)pcid;
    assert_false(t->data_open); /* data sets are never interleaved */
    assert_true(t->n_pend < t->window);
    assert_true(t->n_sent < N_INST);
    snprintf(t->sent[t->n_sent++], 65, "%s", rq->affected_sop_instance_uid);
    t->pend[t->n_pend].id = rq->message_id;
    t->pend[t->n_pend].cb = cb;
    t->pend[t->n_pend].user = user;
    snprintf(t->pend[t->n_pend].sop, 65, "%s", rq->affected_sop_instance_uid);
    if (++t->n_pend > t->max_pend)
        t->max_pend = t->n_pend;
    t->data_open = true;
    return 0;
}
static int t_send_data(void *impl, uint8_t pcid, const uint8_t *p, size_t n, bool last,
                       mt_link_sent_cb cb, void *user)
{
    tlink_t *t = impl;
    (void)pcid, (void)p, (void)n;
    assert_true(t->data_open);
    if (last) {
        t->data_open = false;
        t->n_copied++;
    }
    assert_true(t->n_wq < MAX_RQ);
    t->wq[t->n_wq].cb = cb;
    t->wq[t->n_wq].user = user;
    t->n_wq++;
    return 0;
}
static unsigned t_max_outstanding(void *impl)
{
    return ((tlink_t *)impl)->window;
}
/* The file's bytes [off, off + n) must be exactly the data set (read them back). */
static int t_send_data_file(void *impl, uint8_t pcid, int fd, uint64_t off, size_t n,
                            mt_link_sent_cb cb, void *user)
{
    tlink_t *t = impl;
    assert_int_equal(n, t->body_len);
    uint8_t *got = mt_malloc(n);
    assert_int_equal(pread(fd, got, n, (off_t)off), (ssize_t)n);
    assert_memory_equal(got, t->body, n);
    mt_free(got);
    t->n_from_file++;
    t->n_copied--; /* t_send_data counts it */
    return t_send_data(impl, pcid, NULL, n, true, cb, user);
}
static const mt_link_ops_t t_ops = {t_find_pc,      t_peer_max,  t_next_id,
                                    t_send_command, t_send_data, t_max_outstanding,
                                    NULL,           NULL}; /* the copying path */
static const mt_link_ops_t t_file_ops = {t_find_pc,      t_peer_max,  t_next_id,
                                         t_send_command, t_send_data, t_max_outstanding,
                                         NULL,           t_send_data_file};

typedef struct outcome {
    char sop[65];
    bool sent;
    uint16_t status;
    const char *why;
} outcome_t;

typedef struct fixture {
    uv_loop_t loop;
    tlink_t link;
    char dir[64];
    outcome_t out[N_INST];
    size_t n_out;
    bool done;
} fixture_t;

static void on_subop(void *user, const mt_subop_inst_t *in, bool sent, uint16_t status,
                     const char *why)
{
    fixture_t *f = user;
    assert_true(f->n_out < N_INST);
    outcome_t *o = &f->out[f->n_out++];
    snprintf(o->sop, sizeof o->sop, "%s", in->sop_inst);
    o->sent = sent;
    o->status = status;
    o->why = why;
}

static void on_done(mt_retrieve_t *r, void *user)
{
    (void)r;
    ((fixture_t *)user)->done = true;
}

/* Run the loop and deliver write completions until nothing moves: the engine then waits for
 * responses (or is done). */
static void settle(fixture_t *f)
{
    for (;;) {
        while (f->link.n_wq) {
            mt_link_sent_cb cb = f->link.wq[0].cb;
            void *u = f->link.wq[0].user;
            memmove(f->link.wq, f->link.wq + 1, --f->link.n_wq * sizeof f->link.wq[0]);
            if (cb)
                cb(u, 0);
        }
        if (!uv_run(&f->loop, UV_RUN_ONCE) && !f->link.n_wq)
            return;
    }
}

/* Answer the k-th pending request (send order) with status. */
static void answer(fixture_t *f, unsigned k, uint16_t status)
{
    tlink_t *t = &f->link;
    assert_true(k < t->n_pend);
    mt_dimse_cmd_t rsp;
    mt_dimse_cmd_init(&rsp);
    rsp.command_field = 0x8001;
    rsp.message_id_responded_to = t->pend[k].id;
    rsp.status = status;
    mt_link_rsp_cb cb = t->pend[k].cb;
    void *u = t->pend[k].user;
    memmove(&t->pend[k], &t->pend[k + 1], (t->n_pend - k - 1) * sizeof t->pend[0]);
    t->n_pend--;
    cb(u, 0, &rsp);
}

/* The association ends: every pending callback fails, as mt_link_pending_fail does. */
static void lose(fixture_t *f)
{
    tlink_t *t = &f->link;
    while (t->n_pend) {
        mt_link_rsp_cb cb = t->pend[0].cb;
        void *u = t->pend[0].user;
        memmove(&t->pend[0], &t->pend[1], --t->n_pend * sizeof t->pend[0]);
        cb(u, MT_ECANCELED, NULL);
    }
    while (t->n_wq) {
        mt_link_sent_cb cb = t->wq[0].cb;
        void *u = t->wq[0].user;
        memmove(t->wq, t->wq + 1, --t->n_wq * sizeof t->wq[0]);
        if (cb)
            cb(u, MT_ECANCELED);
    }
}

/* N_INST files whose data set is body (body_len bytes), sent over ops. */
static mt_retrieve_t *engine_with(fixture_t *f, unsigned window, const mt_link_ops_t *ops,
                                  const uint8_t *body, size_t body_len)
{
    memset(f, 0, sizeof *f);
    f->link.body = body;
    f->link.body_len = body_len;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->link.window = window;
    snprintf(f->dir, sizeof f->dir, "/tmp/mt-unit-retrieve-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    mt_subop_inst_t *in = mt_calloc(N_INST, sizeof *in);
    for (size_t i = 0; i < N_INST; i++) {
        mt_meta_t m;
        memset(&m, 0, sizeof m);
        snprintf(m.sop_class_uid, sizeof m.sop_class_uid, "%s", MR);
        snprintf(m.sop_instance_uid, sizeof m.sop_instance_uid, "1.2.3.%zu", i + 1);
        snprintf(m.transfer_syntax_uid, sizeof m.transfer_syntax_uid, "%s", ELE);
        mt_buf_t b;
        mt_buf_init(&b, SIZE_MAX);
        assert_int_equal(mt_part10_write_meta(&m, &b), 0);
        mt_buf_append(&b, body, body_len);
        char path[128];
        snprintf(path, sizeof path, "%s/%zu.dcm", f->dir, i + 1);
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(b.data, 1, b.len, fp), b.len);
        fclose(fp);
        mt_buf_dispose(&b);
        snprintf(in[i].sop_class, sizeof in[i].sop_class, "%s", MR);
        snprintf(in[i].sop_inst, sizeof in[i].sop_inst, "%s", m.sop_instance_uid);
        snprintf(in[i].ts, sizeof in[i].ts, "%s", ELE);
        in[i].path = mt_strdup(path);
    }
    mt_retrieve_params_t p = {.loop = &f->loop,
                              .link = {ops, &f->link},
                              .on_done = on_done,
                              .on_subop = on_subop,
                              .user = f};
    return mt_retrieve_new(&p, in, N_INST);
}

static const uint8_t small_body[] = {0x08, 0x00, 0x60, 0x00, 'C', 'S', 2, 0, 'M', 'R'};

static mt_retrieve_t *engine(fixture_t *f, unsigned window)
{
    return engine_with(f, window, &t_ops, small_body, sizeof small_body);
}

static void engine_end(fixture_t *f, mt_retrieve_t *r)
{
    mt_retrieve_free(r);
    settle(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
}

static const outcome_t *outcome_of(const fixture_t *f, const char *sop)
{
    for (size_t i = 0; i < f->n_out; i++)
        if (!strcmp(f->out[i].sop, sop))
            return &f->out[i];
    return NULL;
}

static void test_window_out_of_order(void **state)
{
    (void)state;
    fixture_t f;
    mt_retrieve_t *r = engine(&f, 4);
    mt_retrieve_start(r);
    settle(&f);
    assert_int_equal(f.link.n_pend, 4); /* the window filled, nothing more */
    assert_int_equal(f.link.n_sent, 4);
    answer(&f, 2, 0x0000); /* the third one first */
    settle(&f);
    assert_int_equal(f.link.n_sent, 5);
    assert_int_equal(f.link.n_pend, 4);
    answer(&f, 0, 0xA700); /* one failure among the outstanding ones */
    settle(&f);
    while (f.link.n_pend) {
        answer(&f, f.link.n_pend - 1, 0x0000); /* newest first */
        settle(&f);
    }
    assert_true(f.done);
    assert_int_equal(f.link.max_pend, 4);
    for (size_t i = 0; i < N_INST; i++) { /* sent in instance order */
        char want[16];
        snprintf(want, sizeof want, "1.2.3.%zu", i + 1);
        assert_string_equal(f.link.sent[i], want);
    }
    mt_retrieve_counts_t c = mt_retrieve_counts(r);
    assert_int_equal(c.completed, 9);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.remaining, 0);
    assert_string_equal(mt_retrieve_failed_uids(r), "1.2.3.1");
    assert_int_equal(outcome_of(&f, "1.2.3.1")->status, 0xA700);
    assert_true(outcome_of(&f, "1.2.3.1")->sent);
    engine_end(&f, r);
}

/* Modality (CS "MR") and 40,000 bytes of OB pixel data. */
static size_t big_body(uint8_t *out)
{
    static const uint8_t head[] = {0x08, 0x00, 0x60, 0x00, 'C',  'S',  2,    0,    'M', 'R',
                                   0xE0, 0x7F, 0x10, 0x00, 'O',  'B',  0,    0,    0x40, 0x9C,
                                   0x00, 0x00};
    memcpy(out, head, sizeof head);
    for (size_t i = 0; i < 40000; i++)
        out[sizeof head + i] = (uint8_t)(i * 7 + 3);
    return sizeof head + 40000;
}

static void run_all(fixture_t *f)
{
    settle(f);
    while (f->link.n_pend) {
        answer(f, 0, 0x0000);
        settle(f);
    }
    assert_true(f->done);
}

/* Whether this kernel has cachestat(2) (Linux 6.5; Debian 12's own kernel is 6.1): without it
 * the engine never sends from the page cache and reads every file instead. */
static bool kernel_has_cachestat(void)
{
    errno = 0;
    return !(syscall(451, -1, NULL, NULL, 0u) != 0 && errno == ENOSYS);
}

static void test_from_file(void **state)
{
    (void)state;
    static uint8_t body[40100];
    size_t n = big_body(body);
    unsigned want_from_file = kernel_has_cachestat() ? N_INST : 0;
    fixture_t f;
    mt_retrieve_t *r = engine_with(&f, 4, &t_file_ops, body, n);
    mt_retrieve_start(r);
    run_all(&f); /* just written, so in the page cache: every data set from the file */
    assert_int_equal(f.link.n_from_file, want_from_file);
    assert_int_equal(f.link.n_copied, N_INST - want_from_file);
    assert_int_equal(mt_retrieve_counts(r).completed, N_INST);
    engine_end(&f, r);

    /* dropped from the page cache before the engine starts: prepared on the pool (not on the
     * loop, which only takes files it can open and read without waiting for the disk) and
     * read into the buffer */
    r = engine_with(&f, 4, &t_file_ops, body, n);
    for (size_t i = 0; i < N_INST; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%zu.dcm", f.dir, i + 1);
        int fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(fsync(fd), 0);
        assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
        close(fd);
    }
    mt_retrieve_start(r);
    run_all(&f);
    assert_int_equal(f.link.n_from_file, 0);
    assert_int_equal(f.link.n_copied, N_INST);
    assert_int_equal(mt_retrieve_counts(r).completed, N_INST);
    engine_end(&f, r);

    r = engine_with(&f, 4, &t_file_ops, small_body, sizeof small_body);
    mt_retrieve_start(r);
    run_all(&f); /* within the head: read once, sent from the buffer */
    assert_int_equal(f.link.n_from_file, 0);
    assert_int_equal(f.link.n_copied, N_INST);
    assert_int_equal(mt_retrieve_counts(r).completed, N_INST);
    engine_end(&f, r);
}

static void test_window_one(void **state)
{
    (void)state;
    fixture_t f;
    mt_retrieve_t *r = engine(&f, 1);
    mt_retrieve_start(r);
    for (int k = 0; k < N_INST; k++) {
        settle(&f);
        assert_int_equal(f.link.n_pend, 1);
        answer(&f, 0, 0x0000);
    }
    settle(&f);
    assert_true(f.done);
    assert_int_equal(f.link.max_pend, 1);
    assert_int_equal(mt_retrieve_counts(r).completed, N_INST);
    engine_end(&f, r);
}

static void test_window_link_lost(void **state)
{
    (void)state;
    fixture_t f;
    mt_retrieve_t *r = engine(&f, 4);
    mt_retrieve_start(r);
    settle(&f);
    answer(&f, 0, 0x0000);
    settle(&f); /* 1 answered, 2..5 outstanding */
    assert_int_equal(f.link.n_sent, 5);
    lose(&f);
    settle(&f);
    assert_true(f.done);
    assert_int_equal(f.n_out, N_INST);
    const outcome_t *o = outcome_of(&f, "1.2.3.1");
    assert_true(o->sent && o->status == 0x0000);
    for (int i = 2; i <= 5; i++) { /* went out, no response: sent, no status */
        char sop[16];
        snprintf(sop, sizeof sop, "1.2.3.%d", i);
        o = outcome_of(&f, sop);
        assert_true(o->sent);
        assert_int_equal(o->status, MT_RETRIEVE_NO_RSP);
    }
    for (int i = 6; i <= N_INST; i++) { /* never sent */
        char sop[16];
        snprintf(sop, sizeof sop, "1.2.3.%d", i);
        o = outcome_of(&f, sop);
        assert_false(o->sent);
        assert_ptr_equal(o->why, mt_retrieve_why_link_lost);
    }
    mt_retrieve_counts_t c = mt_retrieve_counts(r);
    assert_int_equal(c.completed, 1);
    assert_int_equal(c.failed, N_INST - 1);
    engine_end(&f, r);
}

/* A success response read before our own write completion was delivered, then the
 * association ends: the instance was acknowledged, it must count as delivered (a retry would
 * send an acknowledged instance again). */
static void test_window_rsp_before_write_done(void **state)
{
    (void)state;
    fixture_t f;
    mt_retrieve_t *r = engine(&f, 4);
    mt_retrieve_start(r);
    while (f.link.n_sent == 0) /* the first C-STORE goes out; its write completion is held */
        assert_true(uv_run(&f.loop, UV_RUN_ONCE) || f.link.n_sent);
    answer(&f, 0, 0x0000);
    lose(&f); /* the write completion now fails: the link is gone */
    settle(&f);
    assert_true(f.done);
    const outcome_t *o = outcome_of(&f, "1.2.3.1");
    assert_non_null(o);
    assert_true(o->sent);
    assert_int_equal(o->status, 0x0000);
    assert_int_equal(mt_retrieve_counts(r).completed, 1);
    engine_end(&f, r);
}

static void test_window_cancel(void **state)
{
    (void)state;
    fixture_t f;
    mt_retrieve_t *r = engine(&f, 4);
    mt_retrieve_start(r);
    settle(&f);
    mt_retrieve_cancel(r);
    while (f.link.n_pend) {
        answer(&f, 0, 0x0000);
        settle(&f);
    }
    assert_true(f.done);
    assert_int_equal(f.link.n_sent, 4); /* nothing new after the cancel */
    mt_retrieve_counts_t c = mt_retrieve_counts(r);
    assert_int_equal(c.completed, 4);
    assert_int_equal(c.remaining, N_INST - 4);
    assert_true(mt_retrieve_cancelled(r));
    assert_int_equal(mt_retrieve_final_status(&c, true), 0xFE00);
    engine_end(&f, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proposals),
        cmocka_unit_test(test_final_status),
        cmocka_unit_test(test_window_out_of_order),
        cmocka_unit_test(test_window_one),
        cmocka_unit_test(test_window_link_lost),
        cmocka_unit_test(test_window_cancel),
        cmocka_unit_test(test_window_rsp_before_write_done),
        cmocka_unit_test(test_from_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
