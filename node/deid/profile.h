/*
 * profile.h - compiled PS3.15 Annex E de-identification profiles (deid-profiles/NAME.yaml).
 *
 * A profile file is YAML (libyaml), read from a string: this module is PURE. The caller supplies
 * a resolver that turns a profile name ("basic", "cmr-registry", a path) into text; the CLI and
 * the node read files, the tests pass strings. The format (docs/deid.md):
 *
 *   name: cmr-registry
 *   base: basic                     # another profile, loaded first (at most 4 deep)
 *   options: [retain-uids, ...]     # a SEQUENCE selects options of the base's catalogue
 *   default: K                      # action for attributes not in the table (basic: K)
 *   unknown: X                      # action for public attributes the dictionary lacks
 *   attributes:                     # per-attribute actions: "(gggg,eeee)", "(60xx,3000)",
 *     ProtocolName: C               #   a dictionary keyword, or "private" (odd groups)
 *   patient-id: pseudonym           # pseudonym | empty
 *   patient-name: empty             # pseudonym | empty
 *   pseudonym-prefix: "CMR"
 *   date-shift: {min-days: -730, max-days: -1}
 *   composite: valid                # valid | minimal (how X/Z, X/D, Z/D ... are resolved)
 *   burned-in-annotation: reject    # reject | quarantine (what the caller does on MT_EREJECTED)
 *
 * deid-profiles/basic.yaml (generated from PS3.15 Table E.1-1 by scripts/gen-deid-profile.py)
 * holds the Basic Profile column under `attributes` and, under `options` as a MAPPING, one
 * overlay per option column: {code: {value, meaning}, attributes: {...}, safe-private: [...]}.
 *
 * Compilation order: base (recursively) -> this file's option catalogue -> the selected options
 * (where several selected options act on one attribute, C wins over K: cleaning is the more
 * protective of the two) -> this file's `attributes` (overrides win over everything).
 * The result is an immutable lookup table: exact tags sorted for binary search, plus the few
 * masked rows (50xx, 60xx). Every error is reported as "file:line: message".
 */
#ifndef MT_DEID_PROFILE_H
#define MT_DEID_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PS3.15 Table E.1-1 action codes (E.1.1), plus MT_DEID_DEFAULT for "not in the table". */
typedef enum mt_deid_action {
    MT_DEID_DEFAULT = 0,
    MT_DEID_D,   /* dummy, non-zero length, valid for the VR */
    MT_DEID_Z,   /* zero length */
    MT_DEID_X,   /* remove */
    MT_DEID_K,   /* keep (sequences: keep and clean the items) */
    MT_DEID_C,   /* clean: dates shifted, text scrubbed of identifiers, sequences cleaned */
    MT_DEID_U,   /* replace UIDs with keyed 2.25 UIDs */
    MT_DEID_ZD,  /* Z/D */
    MT_DEID_XZ,  /* X/Z */
    MT_DEID_XD,  /* X/D */
    MT_DEID_XZD, /* X/Z/D */
    MT_DEID_XZU, /* X/Z/U* */
    MT_DEID_ACTION_COUNT
} mt_deid_action_t;

/* Options of Table E.1-1 (bit numbers of mt_deid_profile_t.options). */
typedef enum mt_deid_option {
    MT_DEID_OPT_RETAIN_SAFE_PRIVATE,
    MT_DEID_OPT_RETAIN_UIDS,
    MT_DEID_OPT_RETAIN_DEVICE_IDENTITY,
    MT_DEID_OPT_RETAIN_INSTITUTION_IDENTITY,
    MT_DEID_OPT_RETAIN_PATIENT_CHARACTERISTICS,
    MT_DEID_OPT_RETAIN_LONG_FULL_DATES,
    MT_DEID_OPT_RETAIN_LONG_MODIFIED_DATES,
    MT_DEID_OPT_CLEAN_DESCRIPTORS,
    MT_DEID_OPT_CLEAN_STRUCTURED_CONTENT,
    MT_DEID_OPT_CLEAN_GRAPHICS,
    MT_DEID_OPT_COUNT
} mt_deid_option_t;

typedef enum { MT_DEID_PSEUDONYM, MT_DEID_EMPTY } mt_deid_ident_mode_t;
typedef enum { MT_DEID_COMPOSITE_VALID, MT_DEID_COMPOSITE_MINIMAL } mt_deid_composite_t;
typedef enum { MT_DEID_BURNED_IN_REJECT, MT_DEID_BURNED_IN_QUARANTINE } mt_deid_burned_in_t;

typedef struct mt_deid_rule {
    uint32_t tag;
    uint32_t mask; /* 0xFFFFFFFF for an exact tag; (60xx,3000) -> 0xFF00FFFF */
    uint8_t action;
} mt_deid_rule_t;

typedef struct mt_deid_safe_private {
    uint16_t group;
    uint8_t element; /* low byte: the element within the private block */
    char *creator;
} mt_deid_safe_private_t;

typedef struct mt_deid_code {
    char value[17];
    char meaning[65];
} mt_deid_code_t;

typedef struct mt_deid_profile {
    char name[65];
    char edition[33];
    uint32_t options;       /* 1u << mt_deid_option_t, the options selected */
    uint8_t default_action; /* attributes absent from the table */
    uint8_t unknown_action; /* public attributes absent from the dictionary */
    uint8_t private_action; /* "private": odd groups (C = keep the safe-private list) */
    mt_deid_rule_t *exact;  /* sorted by tag */
    size_t n_exact;
    mt_deid_rule_t *masked; /* tried in order after the exact rules */
    size_t n_masked;
    mt_deid_safe_private_t *safe;
    size_t n_safe;
    mt_deid_code_t codes[1 + MT_DEID_OPT_COUNT]; /* CID 7050: profile code, then each option */
    size_t n_codes;
    mt_deid_ident_mode_t patient_id;
    mt_deid_ident_mode_t patient_name;
    char pseudonym_prefix[17];
    int32_t shift_min_days, shift_max_days;
    bool shift_dates; /* retain-long-modified-dates selected: C on DA/DT shifts */
    mt_deid_composite_t composite;
    mt_deid_burned_in_t burned_in;
} mt_deid_profile_t;

/* Text of a profile, as the resolver returns it. The resolver owns text and filename: they must
 * stay valid until mt_deid_profile_load returns; it is called once per name, with the same
 * user pointer. Return 0 or a negative MT_E* code (MT_ENOENT: no such profile). */
typedef struct mt_deid_source {
    const char *text;
    size_t len;
    const char *filename; /* used in "file:line: message" */
} mt_deid_source_t;
typedef int (*mt_deid_resolve_cb)(void *user, const char *name, mt_deid_source_t *out);

/* Compile profile `name` (and its bases). On success *out is a new profile the caller frees
 * with mt_deid_profile_free. On failure returns MT_ECONF (or the resolver's error) and writes
 * "file:line: message" to err. */
int mt_deid_profile_load(const char *name, mt_deid_resolve_cb resolve, void *user,
                         mt_deid_profile_t **out, char *err, size_t errsz);
void mt_deid_profile_free(mt_deid_profile_t *p);

/* The table's action for a tag (exact rules, then masked rules, then "private" for odd
 * groups); MT_DEID_DEFAULT when no row applies. */
mt_deid_action_t mt_deid_profile_lookup(const mt_deid_profile_t *p, uint32_t tag);
/* Is (group, element-in-block, creator) on the safe-private list? */
bool mt_deid_profile_safe_private(const mt_deid_profile_t *p, uint16_t group, uint8_t element,
                                  const char *creator);

const char *mt_deid_action_name(mt_deid_action_t a);
const char *mt_deid_option_name(mt_deid_option_t o);

#endif
