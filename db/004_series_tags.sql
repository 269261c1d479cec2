-- 004_series_tags.sql - CMR series tags (issue 5, node/tag/, docs/tagging.md).
--
-- One row per tagged series: the tagger's last decision (tag, view, confidence, evidence,
-- tagger version) and a revision counter bumped each time a later pass changes the tag or
-- the view (spec section 8). Keyed by Series Instance UID, not by series pk, so that tags
-- survive `mitral index rebuild` (which re-creates the series rows); a row whose series is
-- absent joins nothing.

CREATE TABLE series_tags (
    series_uid  TEXT PRIMARY KEY,
    study_uid   TEXT NOT NULL,
    tag         TEXT NOT NULL,
    view        TEXT NOT NULL DEFAULT '',
    confidence  REAL NOT NULL,
    evidence    TEXT NOT NULL DEFAULT '',
    version     TEXT NOT NULL,
    revision    INTEGER NOT NULL DEFAULT 0,
    manufacturer INTEGER NOT NULL DEFAULT 0, -- enum mt_tag_vendor (manufacturer family)
    tagged_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
) WITHOUT ROWID;
CREATE INDEX series_tags_study ON series_tags (study_uid);
CREATE INDEX series_tags_tag ON series_tags (tag);
