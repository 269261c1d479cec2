-- 007_tag_routes.sql - routing rules on the CMR series tag (issue 6 + 5, node/route/rules.h).
--
-- A rule whose match uses cmr_series cannot be decided at store time (the series is tagged
-- when it goes idle). When its other conditions held for an instance, the rule is ARMED for
-- it: put() writes one row here, in the transaction that indexes the instance (a newer copy of
-- the instance re-arms it: fired back to 0). When the tagger writes the series' tag (node/
-- tagger.c pass job), in that same transaction it evaluates the armed rules of the series'
-- instances (fired = 0), queues the instances of the rules that match in forward_queue, joins
-- their projects, and sets fired = 1. So an instance is queued at most once per armed rule
-- and stored copy, whether the tag is revised later or the node restarts between tagging and
-- sending: tag, queue rows and fired flags commit together. Only the rule's name (from the
-- rules file) and UIDs as stored (de-identified) are kept, no attribute value. Rows name the
-- instance by UID (not pk) so they survive `mitral index rebuild`, like forward_queue.

CREATE TABLE tag_routes (
    sop_instance_uid  TEXT NOT NULL,
    rule              TEXT NOT NULL,
    series_uid        TEXT NOT NULL,
    fired             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sop_instance_uid, rule)
) WITHOUT ROWID;
CREATE INDEX tag_routes_series ON tag_routes (series_uid, fired);
