/*
 * tag_thread.h - the CMR tagger's own worker thread: its jobs (extraction batches, exam passes,
 * opening its index connection) run there, one at a time in order, and their completions come
 * back on the event loop, like uv_queue_work.
 *
 * Why not the libuv pool: the pool's threads are ordinary threads, and one woken for a tagging
 * job takes the CPU from the thread running there. On a machine with no idle core that is
 * often the event loop or the ingest's commit thread, which then waits behind the other
 * processes for its next slice: tagging-on nodes were preempted 2-4x as often as tagging-off
 * ones and their ingest slowed by 8x the tagger's CPU (bench/tagging/interleave.py,
 * docs/tagging.md "Fourth round"). This thread runs under SCHED_BATCH (Linux): the same CPU
 * share as any other thread of the node (no starvation, so no priority inversion on the
 * SQLite write lock a pass holds), but its wake-ups do not preempt a running thread; it runs
 * on an idle core or at the next scheduling point. If the policy cannot be set, the thread
 * runs as an ordinary one (logged once).
 */
#ifndef MT_TAG_THREAD_H
#define MT_TAG_THREAD_H

#include <uv.h>

typedef struct mt_tag_thread mt_tag_thread_t;

/* Start the thread. Returns 0 or an error (then nothing is started). */
int mt_tag_thread_new(uv_loop_t *loop, mt_tag_thread_t **out);
/* Run work(w) on the thread, then after(w, 0) on the loop. w->data is the caller's. */
void mt_tag_thread_queue(mt_tag_thread_t *th, uv_work_t *w, uv_work_cb work,
                         uv_after_work_cb after);
/* With no job queued or running: stop and join the thread, close its loop handle, free it,
 * then cb(data) on the loop. */
void mt_tag_thread_close(mt_tag_thread_t *th, void (*cb)(void *), void *data);

#endif
