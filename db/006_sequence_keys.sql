-- 006_sequence_keys.sql - stored values of the sequence keys of PS3.4 Annex C (issue 3).
--
-- One BLOB per level: the level's sequence keys (node/index/rec.c seq_keys[]: e.g.
-- ReferencedStudySequence, ProcedureCodeSequence at STUDY level, RequestAttributesSequence at
-- SERIES level, ConceptNameCodeSequence at IMAGE level) as a data set fragment in Explicit VR
-- Little Endian with undefined lengths, capped at MT_INDEX_SEQ_MAX bytes. Written by put() when
-- the instance carried some (a later instance without them keeps the stored blob); NULL for
-- rows indexed before this migration until `mitral index rebuild`. C-FIND responses parse it
-- and return the items, encoded in the association's transfer syntax.

ALTER TABLE patients ADD COLUMN seq_keys BLOB;
ALTER TABLE studies ADD COLUMN seq_keys BLOB;
ALTER TABLE series ADD COLUMN seq_keys BLOB;
ALTER TABLE instances ADD COLUMN seq_keys BLOB;
