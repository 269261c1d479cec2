/*
 * tag_thread.c - the CMR tagger's worker thread (tag_thread.h): a FIFO of jobs under a mutex,
 * run in order at SCHED_BATCH; finished jobs go back to the loop through a uv_async_t.
 */
#include "tag_thread.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>

#include "util/alloc.h"
#include "util/log.h"

typedef struct tt_job {
    struct tt_job *next;
    uv_work_t *w;
    uv_work_cb work;
    uv_after_work_cb after;
} tt_job_t;

struct mt_tag_thread {
    uv_loop_t *loop;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    tt_job_t *todo, **todo_tail;
    tt_job_t *done, **done_tail;
    bool stop;
    uv_async_t async; /* a job is done; referenced while jobs are out, as libuv's work
                       * requests keep the loop alive */
    unsigned n_out;   /* jobs queued and not yet completed on the loop (loop thread only) */
    void (*close_cb)(void *);
    void *close_data;
};

static void set_batch_policy(void)
{
#ifdef SCHED_BATCH
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    int rc = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    if (rc != 0)
        mt_log(MT_LOG_INFO, NULL, "tagger: SCHED_BATCH not set (%s): an ordinary thread",
               strerror(rc));
#endif
}

static void thread_main(void *arg)
{
    mt_tag_thread_t *th = arg;
    set_batch_policy();
    uv_mutex_lock(&th->mu);
    for (;;) {
        while (!th->todo && !th->stop)
            uv_cond_wait(&th->cv, &th->mu);
        if (!th->todo)
            break; /* stop, and nothing left */
        tt_job_t *j = th->todo;
        th->todo = j->next;
        if (!th->todo)
            th->todo_tail = &th->todo;
        uv_mutex_unlock(&th->mu);
        j->work(j->w);
        uv_mutex_lock(&th->mu);
        j->next = NULL;
        *th->done_tail = j;
        th->done_tail = &j->next;
        /* under the mutex: the loop takes the done list (and may then close the handle) only
         * after this returns */
        uv_async_send(&th->async);
    }
    uv_mutex_unlock(&th->mu);
}

static void on_done(uv_async_t *h)
{
    mt_tag_thread_t *th = h->data;
    uv_mutex_lock(&th->mu);
    tt_job_t *j = th->done;
    th->done = NULL;
    th->done_tail = &th->done;
    uv_mutex_unlock(&th->mu);
    while (j) {
        tt_job_t *next = j->next;
        uv_after_work_cb after = j->after;
        uv_work_t *w = j->w;
        mt_free(j);
        if (--th->n_out == 0)
            uv_unref((uv_handle_t *)&th->async);
        after(w, 0); /* may queue more jobs */
        j = next;
    }
}

static void on_async_closed(uv_handle_t *h)
{
    mt_tag_thread_t *th = h->data;
    void (*cb)(void *) = th->close_cb;
    void *data = th->close_data;
    uv_cond_destroy(&th->cv);
    uv_mutex_destroy(&th->mu);
    mt_free(th);
    if (cb)
        cb(data);
}

int mt_tag_thread_new(uv_loop_t *loop, mt_tag_thread_t **out)
{
    mt_tag_thread_t *th = mt_calloc(1, sizeof *th);
    th->loop = loop;
    th->todo_tail = &th->todo;
    th->done_tail = &th->done;
    int rc = uv_mutex_init(&th->mu);
    if (rc == 0 && (rc = uv_cond_init(&th->cv)) != 0)
        uv_mutex_destroy(&th->mu);
    if (rc == 0 && (rc = uv_async_init(loop, &th->async, on_done)) != 0) {
        uv_cond_destroy(&th->cv);
        uv_mutex_destroy(&th->mu);
    }
    if (rc != 0) {
        mt_free(th);
        return rc;
    }
    th->async.data = th;
    uv_unref((uv_handle_t *)&th->async); /* referenced only while jobs are out */
    if ((rc = uv_thread_create(&th->thread, thread_main, th)) != 0) {
        uv_close((uv_handle_t *)&th->async, on_async_closed); /* frees th; no callback */
        return rc;
    }
    *out = th;
    return 0;
}

void mt_tag_thread_queue(mt_tag_thread_t *th, uv_work_t *w, uv_work_cb work,
                         uv_after_work_cb after)
{
    tt_job_t *j = mt_calloc(1, sizeof *j);
    j->w = w;
    j->work = work;
    j->after = after;
    if (th->n_out++ == 0)
        uv_ref((uv_handle_t *)&th->async);
    uv_mutex_lock(&th->mu);
    *th->todo_tail = j;
    th->todo_tail = &j->next;
    uv_cond_signal(&th->cv);
    uv_mutex_unlock(&th->mu);
}

void mt_tag_thread_close(mt_tag_thread_t *th, void (*cb)(void *), void *data)
{
    uv_mutex_lock(&th->mu);
    th->stop = true;
    uv_cond_signal(&th->cv);
    uv_mutex_unlock(&th->mu);
    uv_thread_join(&th->thread);
    th->close_cb = cb;
    th->close_data = data;
    uv_close((uv_handle_t *)&th->async, on_async_closed);
}
