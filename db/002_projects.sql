-- 002_projects.sql - project folders, and the indexes the C-FIND / QIDO query builder
-- (node/index/query_sql.c) relies on.
--
-- A project is declared in the config (projects: name, AE title, ...); its membership is this
-- study-level table: a study can belong to several projects. Rows name the study by its
-- Study Instance UID, not its pk, so that memberships survive `mitral index rebuild` (which
-- re-creates every study row) and a study deleted and received again; queries join on
-- studies.study_instance_uid (UNIQUE), so a row whose study is absent selects nothing.

CREATE TABLE project_studies (
    project     TEXT NOT NULL,
    study_uid   TEXT NOT NULL,
    added_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (project, study_uid)
) WITHOUT ROWID;
CREATE INDEX project_studies_study ON project_studies (study_uid);

-- ModalitiesInStudy matching (studies having a series of a modality) without touching rows.
CREATE INDEX series_modality_study ON series (modality, study_pk);
-- PatientName is NOCASE: range/LIKE prefix matching uses patients_name (001). The same for the
-- other person-name and description keys a workstation filters on at study level.
CREATE INDEX studies_description ON studies (study_description);
CREATE INDEX series_description ON series (series_description);
CREATE INDEX patients_sex_birth ON patients (patient_sex, patient_birth_date);
