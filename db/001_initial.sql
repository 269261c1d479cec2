-- 001_initial.sql - the catalogue: patients / studies / series / instances.
--
-- Columns named after node/index/keys.def (the conformance suite checks that every key has its
-- column). Values are the text that node/index/rec.c keeps; INTEGER/REAL columns get numbers
-- through SQLite's column affinity. PN columns collate NOCASE (PS3.4 C.2.2.2.1: case-insensitive
-- person-name matching; LIKE prefix queries can use their index).
--
-- Patient identity is (patient_id, issuer_of_patient_id), both NOT NULL ('' when absent) so the
-- UNIQUE constraint holds. An instance row carries its file (path relative to the storage root,
-- size, transfer syntax, checksum: CRC-32C, or adler32 in rows of versions before 2026-12-01),
-- `verified` (docs/internals/durability.md): 0 from the index commit until the batch that wrote
-- it has been made durable, 2 instead of 0 when the batch took the one-flush path (its data may
-- be torn by a crash: start-up checks the checksum), 1 once durable; and `replaces_path`: while
-- not verified, the file of the instance this row replaced when it lived at another path
-- (deleted once the new file is durable).
-- Start-up reconciles the rows not at 1 with the files.

CREATE TABLE schema_version (
    version     INTEGER NOT NULL PRIMARY KEY,
    applied_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE patients (
    pk                              INTEGER PRIMARY KEY,
    patient_id                      TEXT NOT NULL DEFAULT '',   -- (0010,0020)
    issuer_of_patient_id            TEXT NOT NULL DEFAULT '',   -- (0010,0021)
    patient_name                    TEXT COLLATE NOCASE,        -- (0010,0010)
    type_of_patient_id              TEXT,                       -- (0010,0022)
    patient_birth_date              TEXT,                       -- (0010,0030)
    patient_birth_time              TEXT,                       -- (0010,0032)
    patient_sex                     TEXT,                       -- (0010,0040)
    other_patient_ids               TEXT,                       -- (0010,1000)
    other_patient_names             TEXT COLLATE NOCASE,        -- (0010,1001)
    ethnic_group                    TEXT,                       -- (0010,2160)
    patient_species_description     TEXT,                       -- (0010,2201)
    patient_sex_neutered            TEXT,                       -- (0010,2203)
    anatomical_orientation_type     TEXT,                       -- (0010,2210)
    responsible_person              TEXT COLLATE NOCASE,        -- (0010,2297)
    responsible_person_role         TEXT,                       -- (0010,2298)
    responsible_organization        TEXT,                       -- (0010,2299)
    patient_comments                TEXT,                       -- (0010,4000)
    patient_breed_description       TEXT,                       -- (0010,2292)
    UNIQUE (patient_id, issuer_of_patient_id)
);
CREATE INDEX patients_name ON patients (patient_name);
CREATE INDEX patients_birth_date ON patients (patient_birth_date);
-- patient_id lookups use the UNIQUE (patient_id, issuer_of_patient_id) index; UIDs their
-- UNIQUE indexes.

CREATE TABLE studies (
    pk                              INTEGER PRIMARY KEY,
    patient_pk                      INTEGER NOT NULL REFERENCES patients (pk) ON DELETE CASCADE,
    study_instance_uid              TEXT NOT NULL UNIQUE,       -- (0020,000D)
    specific_character_set          TEXT,                       -- (0008,0005)
    study_date                      TEXT,                       -- (0008,0020)
    study_time                      TEXT,                       -- (0008,0030)
    accession_number                TEXT,                       -- (0008,0050)
    referring_physician_name        TEXT COLLATE NOCASE,        -- (0008,0090)
    study_description               TEXT,                       -- (0008,1030)
    name_of_physicians_reading_study TEXT COLLATE NOCASE,       -- (0008,1060)
    admitting_diagnoses_description TEXT,                       -- (0008,1080)
    patient_age                     TEXT,                       -- (0010,1010)
    patient_size                    REAL,                       -- (0010,1020)
    patient_weight                  REAL,                       -- (0010,1030)
    occupation                      TEXT,                       -- (0010,2180)
    additional_patient_history      TEXT,                       -- (0010,21B0)
    study_id                        TEXT,                       -- (0020,0010)
    other_study_numbers             TEXT,                       -- (0020,1070)
    requesting_physician            TEXT COLLATE NOCASE,        -- (0032,1032)
    requested_procedure_description TEXT,                       -- (0032,1060)
    timezone_offset_from_utc        TEXT                        -- (0008,0201)
);
CREATE INDEX studies_patient ON studies (patient_pk);
CREATE INDEX studies_date ON studies (study_date, study_time);
CREATE INDEX studies_accession ON studies (accession_number);
CREATE INDEX studies_study_id ON studies (study_id);
CREATE INDEX studies_referring ON studies (referring_physician_name);

CREATE TABLE series (
    pk                              INTEGER PRIMARY KEY,
    study_pk                        INTEGER NOT NULL REFERENCES studies (pk) ON DELETE CASCADE,
    series_instance_uid             TEXT NOT NULL UNIQUE,       -- (0020,000E)
    series_date                     TEXT,                       -- (0008,0021)
    series_time                     TEXT,                       -- (0008,0031)
    modality                        TEXT,                       -- (0008,0060)
    manufacturer                    TEXT,                       -- (0008,0070)
    institution_name                TEXT,                       -- (0008,0080)
    station_name                    TEXT,                       -- (0008,1010)
    series_description              TEXT,                       -- (0008,103E)
    institutional_department_name   TEXT,                       -- (0008,1040)
    performing_physician_name       TEXT COLLATE NOCASE,        -- (0008,1050)
    operators_name                  TEXT COLLATE NOCASE,        -- (0008,1070)
    manufacturer_model_name         TEXT,                       -- (0008,1090)
    contrast_bolus_agent            TEXT,                       -- (0018,0010)
    body_part_examined              TEXT,                       -- (0018,0015)
    scanning_sequence               TEXT,                       -- (0018,0020)
    sequence_variant                TEXT,                       -- (0018,0021)
    sequence_name                   TEXT,                       -- (0018,0024)
    magnetic_field_strength         REAL,                       -- (0018,0087)
    device_serial_number            TEXT,                       -- (0018,1000)
    software_versions               TEXT,                       -- (0018,1020)
    protocol_name                   TEXT,                       -- (0018,1030)
    patient_position                TEXT,                       -- (0018,5100)
    series_number                   INTEGER,                    -- (0020,0011)
    frame_of_reference_uid          TEXT,                       -- (0020,0052)
    laterality                      TEXT,                       -- (0020,0060)
    performed_procedure_step_start_date TEXT,                   -- (0040,0244)
    performed_procedure_step_start_time TEXT,                   -- (0040,0245)
    performed_procedure_step_id     TEXT,                       -- (0040,0253)
    performed_procedure_step_description TEXT,                  -- (0040,0254)
    scan_options                    TEXT,                       -- (0018,0022)
    mr_acquisition_type             TEXT,                       -- (0018,0023)
    angio_flag                      TEXT,                       -- (0018,0025)
    contrast_bolus_volume           REAL,                       -- (0018,1041)
    contrast_bolus_start_time       TEXT,                       -- (0018,1042)
    receive_coil_name               TEXT,                       -- (0018,1250)
    pulse_sequence_name             TEXT,                       -- (0018,9005)
    echo_pulse_sequence             TEXT,                       -- (0018,9008)
    inversion_recovery              TEXT,                       -- (0018,9009)
    steady_state_pulse_sequence     TEXT,                       -- (0018,9017)
    t2_preparation                  TEXT,                       -- (0018,9021)
    saturation_recovery             TEXT                        -- (0018,9024)
);
CREATE INDEX series_study ON series (study_pk);
CREATE INDEX series_modality ON series (modality);
CREATE INDEX series_date ON series (series_date, series_time);
CREATE INDEX series_number ON series (study_pk, series_number);

CREATE TABLE instances (
    pk                              INTEGER PRIMARY KEY,
    series_pk                       INTEGER NOT NULL REFERENCES series (pk) ON DELETE CASCADE,
    sop_instance_uid                TEXT NOT NULL UNIQUE,       -- (0008,0018)
    sop_class_uid                   TEXT,                       -- (0008,0016)
    specific_character_set          TEXT,                       -- (0008,0005)
    image_type                      TEXT,                       -- (0008,0008)
    acquisition_date                TEXT,                       -- (0008,0022)
    content_date                    TEXT,                       -- (0008,0023)
    acquisition_date_time           TEXT,                       -- (0008,002A)
    acquisition_time                TEXT,                       -- (0008,0032)
    content_time                    TEXT,                       -- (0008,0033)
    slice_thickness                 REAL,                       -- (0018,0050)
    repetition_time                 REAL,                       -- (0018,0080)
    echo_time                       REAL,                       -- (0018,0081)
    inversion_time                  REAL,                       -- (0018,0082)
    trigger_time                    REAL,                       -- (0018,1060)
    cardiac_number_of_images        INTEGER,                    -- (0018,1090)
    flip_angle                      REAL,                       -- (0018,1314)
    acquisition_number              INTEGER,                    -- (0020,0012)
    instance_number                 INTEGER,                    -- (0020,0013)
    image_position_patient          TEXT,                       -- (0020,0032)
    image_orientation_patient       TEXT,                       -- (0020,0037)
    temporal_position_identifier    INTEGER,                    -- (0020,0100)
    slice_location                  REAL,                       -- (0020,1041)
    photometric_interpretation      TEXT,                       -- (0028,0004)
    number_of_frames                INTEGER,                    -- (0028,0008)
    n_rows                          INTEGER,                    -- (0028,0010)
    n_columns                       INTEGER,                    -- (0028,0011)
    pixel_spacing                   TEXT,                       -- (0028,0030)
    bits_allocated                  INTEGER,                    -- (0028,0100)
    related_general_sop_class_uid   TEXT,                       -- (0008,001A)
    timezone_offset_from_utc        TEXT,                       -- (0008,0201)
    complex_image_component         TEXT,                       -- (0008,9208)
    acquisition_contrast            TEXT,                       -- (0008,9209)
    echo_numbers                    TEXT,                       -- (0018,0086)
    spacing_between_slices          REAL,                       -- (0018,0088)
    echo_train_length               INTEGER,                    -- (0018,0091)
    nominal_interval                INTEGER,                    -- (0018,1062)
    heart_rate                      INTEGER,                    -- (0018,1088)
    number_of_temporal_positions    INTEGER,                    -- (0020,0105)
    image_comments                  TEXT,                       -- (0020,4000)
    burned_in_annotation            TEXT,                       -- (0028,0301)
    lossy_image_compression         TEXT,                       -- (0028,2110)
    container_identifier            TEXT,                       -- (0040,0512)
    completion_flag                 TEXT,                       -- (0040,A491)
    verification_flag               TEXT,                       -- (0040,A493)
    -- the stored file
    path                            TEXT NOT NULL,              -- relative to the storage root
    size                            INTEGER NOT NULL,
    transfer_syntax_uid             TEXT NOT NULL,
    verified                        INTEGER NOT NULL DEFAULT 0,
    replaces_path                   TEXT,                       -- older file of this SOP instance
    checksum                        INTEGER,                    -- CRC-32C (older rows: adler32) of the file
    stored_at                       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX instances_series ON instances (series_pk, instance_number);
CREATE INDEX instances_acquisition ON instances (acquisition_date, acquisition_time);
CREATE INDEX instances_content ON instances (content_date, content_time);
CREATE INDEX instances_sop_class ON instances (sop_class_uid);
CREATE INDEX instances_unverified ON instances (pk) WHERE verified <> 1;

-- Directories that may hold renames not yet durable (the ingest's one-flush path,
-- docs/internals/durability.md): marked durably before the first rename into them, scanned
-- for files without rows at start-up, unmarked once nothing in them is in flight.
CREATE TABLE dirty_dirs (
    path                            TEXT NOT NULL PRIMARY KEY   -- relative to the storage root
) WITHOUT ROWID;
