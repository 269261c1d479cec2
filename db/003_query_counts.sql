-- 003_query_counts.sql - counts and modalities kept with their study / series, so that C-FIND
-- answers NumberOfStudyRelatedSeries/Instances, NumberOfSeriesRelatedInstances and
-- ModalitiesInStudy from the row it matched instead of counting instances per response (at
-- 1,000,000 instances, a study-level query returning 300 studies would otherwise visit 30,000
-- instance index entries). Maintained by triggers, so every writer (ingest, rebuild, remove,
-- the bench's direct load) keeps them right:
--   instances insert / delete / move      +1 / -1 on the series and its study
--   series insert / delete / move, modality change
--                                          the study's num_series, num_instances and
--                                          modalities_in_study recomputed from its series
-- Recomputing at series level (rare: once per series) keeps the counts right whatever order
-- SQLite runs cascaded deletes in. Counts include instances not yet verified (in flight).

ALTER TABLE series ADD COLUMN num_instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN num_series INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN num_instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN modalities_in_study TEXT;

UPDATE series SET num_instances = (SELECT count(*) FROM instances WHERE series_pk = series.pk);
UPDATE studies SET
    num_series = (SELECT count(*) FROM series WHERE study_pk = studies.pk),
    num_instances = (SELECT coalesce(sum(num_instances), 0) FROM series
                     WHERE study_pk = studies.pk),
    modalities_in_study = (SELECT group_concat(m, '\') FROM (SELECT DISTINCT modality AS m
                           FROM series WHERE study_pk = studies.pk AND modality <> ''
                           ORDER BY modality));

CREATE TRIGGER instances_count_insert AFTER INSERT ON instances BEGIN
    UPDATE series SET num_instances = num_instances + 1 WHERE pk = NEW.series_pk;
    UPDATE studies SET num_instances = num_instances + 1
        WHERE pk = (SELECT study_pk FROM series WHERE pk = NEW.series_pk);
END;

CREATE TRIGGER instances_count_delete AFTER DELETE ON instances BEGIN
    UPDATE series SET num_instances = num_instances - 1 WHERE pk = OLD.series_pk;
    UPDATE studies SET num_instances = num_instances - 1
        WHERE pk = (SELECT study_pk FROM series WHERE pk = OLD.series_pk);
END;

CREATE TRIGGER instances_count_move AFTER UPDATE OF series_pk ON instances
WHEN OLD.series_pk IS NOT NEW.series_pk BEGIN
    UPDATE series SET num_instances = num_instances - 1 WHERE pk = OLD.series_pk;
    UPDATE studies SET num_instances = num_instances - 1
        WHERE pk = (SELECT study_pk FROM series WHERE pk = OLD.series_pk);
    UPDATE series SET num_instances = num_instances + 1 WHERE pk = NEW.series_pk;
    UPDATE studies SET num_instances = num_instances + 1
        WHERE pk = (SELECT study_pk FROM series WHERE pk = NEW.series_pk);
END;

CREATE TRIGGER series_count_insert AFTER INSERT ON series BEGIN
    UPDATE studies SET
        num_series = (SELECT count(*) FROM series WHERE study_pk = NEW.study_pk),
        num_instances = (SELECT coalesce(sum(num_instances), 0) FROM series
                         WHERE study_pk = NEW.study_pk),
        modalities_in_study = (SELECT group_concat(m, '\') FROM (SELECT DISTINCT modality AS m
                               FROM series WHERE study_pk = NEW.study_pk AND modality <> ''
                               ORDER BY modality))
        WHERE pk = NEW.study_pk;
END;

CREATE TRIGGER series_count_delete AFTER DELETE ON series BEGIN
    UPDATE studies SET
        num_series = (SELECT count(*) FROM series WHERE study_pk = OLD.study_pk),
        num_instances = (SELECT coalesce(sum(num_instances), 0) FROM series
                         WHERE study_pk = OLD.study_pk),
        modalities_in_study = (SELECT group_concat(m, '\') FROM (SELECT DISTINCT modality AS m
                               FROM series WHERE study_pk = OLD.study_pk AND modality <> ''
                               ORDER BY modality))
        WHERE pk = OLD.study_pk;
END;

CREATE TRIGGER series_count_move AFTER UPDATE OF study_pk, modality ON series
WHEN OLD.study_pk IS NOT NEW.study_pk OR OLD.modality IS NOT NEW.modality BEGIN
    UPDATE studies SET
        num_series = (SELECT count(*) FROM series WHERE study_pk = studies.pk),
        num_instances = (SELECT coalesce(sum(num_instances), 0) FROM series
                         WHERE study_pk = studies.pk),
        modalities_in_study = (SELECT group_concat(m, '\') FROM (SELECT DISTINCT modality AS m
                               FROM series WHERE study_pk = studies.pk AND modality <> ''
                               ORDER BY modality))
        WHERE pk IN (OLD.study_pk, NEW.study_pk);
END;
