-- 009_patient_charset.sql - the Specific Character Set of a patient row's text (issue 3).
--
-- A patient's attributes (PatientName, OtherPatientNames, ResponsiblePerson ...) are kept once,
-- from the instance indexed last, in the bytes of that instance's character set, while each
-- study keeps its own (studies.specific_character_set). Written with the patient row from
-- keys.def (the value of (0008,0005) offered once goes to every level listing it; an instance
-- without one keeps the stored value). C-FIND matches patient attributes in this character set
-- and, when a study's differs, answers in ISO_IR 192 with every value converted
-- (query_exec.c). NULL for rows indexed before this migration (the patient's first study
-- that declares one is used, as before) until `mitral index rebuild`.

ALTER TABLE patients ADD COLUMN specific_character_set TEXT;
