/* tests for node/tag_thread.c: jobs run in order on one thread that is not the loop's (under
 * SCHED_BATCH where Linux allows it), their completions come back on the loop in the same
 * order, a completion may queue the next job, jobs out keep the loop alive, and close joins the
 * thread and calls back once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <uv.h>

#include "tag_thread.h"

#define N_JOBS 40

typedef struct {
    uv_work_t w;
    int id;
    uv_thread_t ran_on;
    int policy;
} job_t;

static struct {
    mt_tag_thread_t *th;
    uv_thread_t loop_thread;
    job_t jobs[N_JOBS];
    int ran[N_JOBS], n_ran;     /* order of work() calls (the worker thread writes) */
    int after[N_JOBS], n_after; /* order of after() calls (the loop) */
    int closed;
    int chained; /* queued from an after() */
} g;

static void work(uv_work_t *w)
{
    job_t *j = w->data;
    j->ran_on = uv_thread_self();
    struct sched_param sp;
    pthread_getschedparam(pthread_self(), &j->policy, &sp);
    g.ran[g.n_ran++] = j->id; /* one worker: no concurrent writer */
}

static void after(uv_work_t *w, int status)
{
    job_t *j = w->data;
    assert_int_equal(status, 0);
    assert_true(uv_thread_equal(&g.loop_thread, &(uv_thread_t){uv_thread_self()}));
    assert_false(uv_thread_equal(&g.loop_thread, &j->ran_on));
#ifdef SCHED_BATCH
    assert_int_equal(j->policy, SCHED_BATCH);
#endif
    g.after[g.n_after++] = j->id;
    /* the first half queues the second half from its completions */
    if (j->id < N_JOBS / 2) {
        job_t *next = &g.jobs[j->id + N_JOBS / 2];
        mt_tag_thread_queue(g.th, &next->w, work, after);
        g.chained++;
    }
}

static void on_close(void *data)
{
    assert_ptr_equal(data, &g);
    g.closed++;
}

static void test_order_loop_and_close(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    g.loop_thread = uv_thread_self();
    assert_int_equal(mt_tag_thread_new(&loop, &g.th), 0);
    /* nothing out: the thread does not keep the loop alive */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < N_JOBS; i++) {
        g.jobs[i].id = i;
        g.jobs[i].w.data = &g.jobs[i];
    }
    for (int i = 0; i < N_JOBS / 2; i++)
        mt_tag_thread_queue(g.th, &g.jobs[i].w, work, after);
    /* runs until every job, the chained ones too, has completed */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(g.n_ran, N_JOBS);
    assert_int_equal(g.n_after, N_JOBS);
    assert_int_equal(g.chained, N_JOBS / 2);
    for (int i = 0; i < N_JOBS / 2; i++) { /* the first half in order, then the second */
        assert_int_equal(g.ran[i], i);
        assert_int_equal(g.after[i], i);
        assert_int_equal(g.ran[N_JOBS / 2 + i], N_JOBS / 2 + i);
        assert_int_equal(g.after[N_JOBS / 2 + i], N_JOBS / 2 + i);
    }
    for (int i = 1; i < N_JOBS; i++) /* one worker thread */
        assert_true(uv_thread_equal(&g.jobs[0].ran_on, &g.jobs[i].ran_on));
    mt_tag_thread_close(g.th, on_close, &g);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(g.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_loop_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
