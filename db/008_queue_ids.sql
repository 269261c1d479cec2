-- 008_queue_ids.sql - forward_queue rebuilt without AUTOINCREMENT and without forward_queue_due
-- (session 8, bench/README.md "A's queue and forwarder, session 8").
--
-- Every instance a relay indexes writes its queue row in the ingest's commit, and each commit
-- wrote four pages more than a node without forwarding: the table's leaf, the UNIQUE index's
-- leaf, forward_queue_due's leaf and sqlite_sequence (AUTOINCREMENT's counter). No query uses
-- forward_queue_due (the forwarder's scan is a rowid range ordered by id; the CLI's list,
-- retry and purge take ORs SQLite cannot serve from it), and the counter's only job, ids never
-- given twice, is done by put() (index_sqlite.c queue_row): a new row's id is above both the
-- largest id in the table and every id this process gave before, so an id is never reused
-- while a send of it may be in flight, and the rows of a stream still come in id order (the
-- forwarder's kick scans read only ids above the last one they settled). Two pages an
-- instance instead of four. Rows, ids and the UNIQUE (destination, sop_instance_uid) that lets
-- a newer copy replace an older one are as in 005_queue.sql.

CREATE TABLE forward_queue_008 (
    id                INTEGER PRIMARY KEY,
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
INSERT INTO forward_queue_008 (id, destination, sop_instance_uid, study_uid, series_uid, state,
                               attempts, queued_at, next_at, last_error)
    SELECT id, destination, sop_instance_uid, study_uid, series_uid, state, attempts, queued_at,
           next_at, last_error FROM forward_queue;
DROP TABLE forward_queue; -- and forward_queue_due with it
ALTER TABLE forward_queue_008 RENAME TO forward_queue;
