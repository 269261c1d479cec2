-- 005_queue.sql - the outbound forwarding queue (issue 6, node/forward.c).
--
-- A row is written in the transaction that indexes the instance (index_sqlite.c put(), from
-- the routing decision carried by the index record), so an instance is never indexed without
-- its queue entries, and a crash cannot lose them. A row is deleted only once the destination
-- answered the C-STORE with success; a failure reschedules it (next_at, exponential backoff)
-- or, after forward.max_attempts / forward.max_age, marks it dead (state 1, kept for
-- `mitral queue list|retry|purge`). The file sent is looked up by SOP Instance UID at send
-- time: what is forwarded is what is stored (de-identified), and a newer copy replaces an older
-- one. Rows name the instance by UID (not pk) so they survive `mitral index rebuild`.
-- Times are Unix milliseconds. id orders the queue (arrival order, so order within a series).
-- A newer copy of an instance already queued for a destination replaces its row (INSERT OR
-- REPLACE: a new id), so a send of the older copy that is in flight deletes nothing when it
-- succeeds, and the newer copy is sent after it.

CREATE TABLE forward_queue (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    destination       TEXT NOT NULL,
    sop_instance_uid  TEXT NOT NULL,
    study_uid         TEXT NOT NULL,
    series_uid        TEXT NOT NULL,
    state             INTEGER NOT NULL DEFAULT 0, -- 0 pending, 1 dead
    attempts          INTEGER NOT NULL DEFAULT 0,
    queued_at         INTEGER NOT NULL,
    next_at           INTEGER NOT NULL,
    last_error        TEXT,
    UNIQUE (destination, sop_instance_uid)
);
CREATE INDEX forward_queue_due ON forward_queue (state, destination, next_at, id);
