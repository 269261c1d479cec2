/*
 * engine.h - apply a compiled PS3.15 Annex E profile (profile.h) to a data set tree, in place,
 * with keyed pseudonyms (pseudonym.h). PURE: no I/O, no clock, and nothing is logged (a value
 * from the data set must never reach a log).
 *
 * Callers: the C-STORE path (the original never reaches the disk: the de-identified tree is what
 * gets encoded and stored) and `mitral deid` (node/deid/cli.c). Both pass the site secret.
 *
 * What mt_deid_apply does, in order:
 *  1. Burned In Annotation (0028,0301) = YES: returns MT_EREJECTED before touching anything; the
 *     caller answers with an error status (profile->burned_in == REJECT) or quarantines: it
 *     calls mt_deid_apply_quarantined, which de-identifies the header all the same.
 *  2. Decodes sequences that came as UN with a defined length (undecodable ones are removed),
 *     then collects the identifying values of the instance (names, IDs, institution, addresses...:
 *     every PN and a fixed list of identifier attributes whose action is not K); the C action
 *     scrubs them, and any run of 6+ digits (dates, numbers), out of retained text.
 *  3. Walks the tree at every depth (items of sequences are data sets), each element getting the
 *     action of its row, of "private", or the profile's default/unknown action; composites are
 *     resolved per profile->composite (valid: Z/D->D, X/Z->Z (a sequence: X, since an empty
 *     sequence is invalid where it is Type 3), X/D->D, X/Z/D->D, X/Z/U*->U for sequences and
 *     UIDs else Z; minimal: the first letter). Then:
 *       X remove; Z zero length (a sequence: no items); D a dummy valid for the VR (UI: the
 *       mapped UID; a sequence: its items are kept and walked with the table, and every text,
 *       date and time the table does not name is replaced by a dummy, so Type 1 contents
 *       stay present but carry nothing; a sequence without items stays empty);
 *       K keep (a sequence: its items are walked);
 *       C clean (DA/DT shifted by the patient's shift, TM kept, text scrubbed (a dummy when
 *       nothing is left), UI mapped,
 *       sequences walked with text cleaning on); U every value -> 2.25 UID (sequences walked).
 *     An attribute no rule names takes the keep list's action (profile.h: K, Z or C), else
 *     the profile's default (X for basic) or, unknown to the dictionary, its unknown action.
 *     Attributes kept that way (keep list or default K) are still made safe: UI values that
 *     are not well known (the 1.2.840.10008 root, and class/scheme attributes such as SOP
 *     Class UID) are mapped unless Retain UIDs is selected, and DA/DT values are shifted when
 *     Modified Dates is.
 *     PatientID -> the keyed pseudonym (or empty), PatientName -> the pseudonym or empty.
 *     Private data elements: removed, unless the private action is C (Retain Safe Private) and
 *     (group, element, creator) is on Table E.3.10-1, or the private action is K. Private
 *     creators are dropped when nothing of their block is left. Group lengths are dropped.
 *     Overlays (60xx): the whole group goes when (60xx,3000)'s action removes it.
 *     A replacement that the element's VR cannot hold (malformed input) removes the element;
 *     values written into UN elements take the dictionary VR.
 *  4. Adds PatientIdentityRemoved YES, DeidentificationMethod, DeidentificationMethodCodeSequence
 *     (CID 7050, DCM: the profile's code and each selected option's) and
 *     LongitudinalTemporalInformationModified (MODIFIED, UNMODIFIED or REMOVED).
 *
 * Determinism: same key + same input -> same output tree; the UID map is a pure function of the
 * key and the UID, so references between instances (ReferencedSOPInstanceUID, FrameOfReference)
 * stay consistent with no state kept between calls.
 */
#ifndef MT_DEID_ENGINE_H
#define MT_DEID_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"
#include "profile.h"
#include "pseudonym.h"

typedef struct mt_deid_result {
    char pseudonym[MT_DEID_PSEUDONYM_MAX]; /* the PatientID pseudonym; "" when none */
    int32_t shift_days;                    /* applied to DA/DT values that were shifted */
    size_t n_removed, n_replaced, n_uids, n_shifted, n_cleaned; /* counts, safe to log */
} mt_deid_result_t;

/* De-identify ds in place. key: the site secret (at least 16 bytes). res may be NULL.
 * Returns 0; MT_EREJECTED when Burned In Annotation is YES (ds unchanged); MT_EINVAL for a bad
 * key. On other errors the tree may be partly processed and must not be stored. */
int mt_deid_apply(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len, mt_ds_t *ds,
                  mt_deid_result_t *res);

/* The same, for an instance the caller quarantines (profile->burned_in == QUARANTINE): the
 * Burned In Annotation check is skipped and the header is de-identified exactly as any other
 * (the pixel data, which the engine never touches, is why the result is held back). */
int mt_deid_apply_quarantined(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len,
                              mt_ds_t *ds, mt_deid_result_t *res);

/* The SOP Instance UID (0008,0018) that mt_deid_apply would leave in a data set holding uid
 * (mapped; kept with Retain UIDs; whatever an override says), in out; "" when the profile
 * removes or empties it. For the File Meta's (0002,0003) (stream.c). Returns 0 or MT_E*. */
int mt_deid_sop_instance_uid(const mt_deid_profile_t *p, const uint8_t *key, size_t key_len,
                             const char *uid, char *out, size_t outsz);

/* Does the profile leave a top-level Pixel Data (7FE0,0010) exactly as it is (its action, or
 * the keep list's, or the default, is K or C, which keep binary values)? Then de-identifying
 * the data set without it and appending its bytes as read gives the same output as
 * de-identifying the whole data set (cli.c's fast path). */
bool mt_deid_keeps_pixel_data(const mt_deid_profile_t *p);

/* Is this UID well known (left alone by U and by the default UID mapping)? */
int mt_deid_uid_is_well_known(const char *uid, size_t len);

/* Map every value of a (possibly multi-valued, padded) UI value; well-known values are kept.
 * out gets the new value, NUL terminated; returns its length or MT_ETOOBIG. */
int mt_deid_map_uids(const uint8_t *key, size_t key_len, const char *val, size_t len, char *out,
                     size_t outsz);

/* Shift every DA (is_dt = 0) or DT (is_dt = 1) value by days; invalid values are dropped.
 * Returns the new length in out (NUL terminated) or MT_ETOOBIG. */
int mt_deid_shift_dates(const char *val, size_t len, int is_dt, int32_t days, char *out,
                        size_t outsz);

#endif
