/*
 * rules.h - routing rules (issue 6): routing/NAME.yaml compiled into an immutable rule set, and the
 * matcher that turns one incoming instance into a decision. PURE: YAML text in (libyaml document
 * API, so every error carries a line), no files, no clock; rules.c compiles, match.c decides.
 * node/route/load.c reads the files and loads the deid profiles the rules name.
 *
 * A rules file:
 *
 *   rules:                                  # evaluated in order, first file first
 *     - name: no-sr                         # optional; default "<file>:<line>"
 *       match:                              # every condition must hold (empty = always)
 *         Modality: [SR, PR]                #   a list = one of
 *       reject: "structured reports are not accepted"   # Error Comment: <= 64 ASCII, no '\'
 *     - name: cmr
 *       match:
 *         calling_ae: PACS1                 #   a scalar = equals (AE titles without padding)
 *         called_ae: {glob: "MITRAL*"}
 *         peer: [10.0.0.0/8, "::1"]         #   addresses / CIDRs, IPv4 or IPv6
 *         user: {one_of: [ai-team]}         #   DICOMweb user (STOW-RS; absent for DIMSE)
 *         StudyDescription: {glob: "*HEART*"}
 *         PatientID: {regex: "^H[0-9]+$"}   #   POSIX extended regex, searched (anchor it)
 *         "(0018,0087)": {range: [1.4, 3.1]}  #  numeric, inclusive; ~ for an open end
 *         StudyDate: {date_range: [2020-01-01, ~]}  # DA / DT, first 8 digits compared
 *         InstitutionName: {present: true}
 *         "(0009,0010)": {absent: true}
 *     - name: lge-to-core                   # a rule on the CMR series tag (see below)
 *       match: {cmr_series: lge, calling_ae: PACS1}
 *       forward: [core-lab]
 *       projects: [cmr-registry]            # actions
 *       deid: basic                         # a profile NAME or FILE, or none
 *       forward: [central]                  # destination names (destinations: in the config)
 *       continue: true                      # fall through to later rules (default: stop)
 *   default:                                # actions when no rule matched (optional)
 *     projects: [unsorted]
 *
 * Operators (a mapping may hold several: all must hold): equals, one_of, glob (fnmatch), regex,
 * range, date_range, present, absent. Attributes are top-level elements named by dictionary
 * keyword or tag ("(gggg,eeee)" or "ggggeeee"). A multi-valued attribute matches when any of its
 * values does (leading/trailing spaces ignored); a numeric binary VR (US, SS, UL, SL, FL, FD) is
 * matched as decimal text, and equals / one_of on any numeric VR (those and DS, IS) compare as
 * numbers (SliceThickness: 5 matches "5.000000"; a value that is no number is a load error);
 * text VRs of the Specific Character Set are matched as UTF-8 (the
 * rules file's encoding), converted from the data set's (0008,0005).
 *
 * Decision (match.c): rules are tried in order. A matching rule with reject ends evaluation:
 * the instance is refused. Otherwise its projects and forward destinations are added (union, in
 * order), and its deid profile is taken if no earlier matching rule named one (earlier rules
 * take precedence). Without continue, evaluation stops at the first match. When no rule matched
 * at all, the default actions apply. A decision with no deid means the node-wide deid.profile.
 *
 * Rules on the CMR series tag (cmr_series): the tag exists only once the series has been tagged
 * (node/tagger.c: series idle, then the study pass), long after its instances were stored and
 * answered. Such a rule is evaluated in two steps. At store time, in its place in the order,
 * its other conditions are tested on the instance; when they hold, the rule is ARMED for the
 * instance (d->armed: kept in the index with the instance, db/007). It neither counts as a
 * match nor stops the store-time evaluation. When the series is tagged (and each time a pass
 * writes its tag again), mt_route_after_tag evaluates the rules armed for each instance, in
 * order, on the tag alone: a matching one adds its projects and forward destinations and,
 * without continue, ends that evaluation. An armed rule fires at most once per stored copy of
 * an instance. Equals / one_of on cmr_series compare by family: "lge" matches "lge", "lge.sax"
 * and every lge.* tag, "lge.sax" only that tag; glob and regex see the full tag. Such a rule
 * may only forward and add projects (deid or reject with cmr_series: a compile error), and
 * needs a name unique among these rules (its default "<file>:<line>" is).
 *
 * Validation at compile time, "file:line: message": unknown keys, unknown attribute keywords,
 * bad tags, bad regex, bad ranges, bad CIDRs, and (through the caller's checker) unknown
 * destinations, projects and deid profiles.
 */
#ifndef MT_ROUTE_RULES_H
#define MT_ROUTE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../deid/profile.h"

#define MT_ROUTE_MAX_TARGETS 32 /* projects / destinations in one decision */
#define MT_ROUTE_MAX_RULES 4096
#define MT_ROUTE_MAX_FILE (1u << 20)

typedef struct mt_route_set mt_route_set_t;
typedef struct mt_route_rule mt_route_rule_t;

/* What the compiler asks its caller about names. Each returns 0 when the name is acceptable,
 * else nonzero with why filled ("no such destination"). Any of them may be NULL (accept all).
 * profile() may also load the profile and hand it to the set (mt_route_set_adopt_profile). */
typedef struct mt_route_check {
    int (*destination)(void *user, const char *name, char *why, size_t whysz);
    int (*project)(void *user, const char *name, char *why, size_t whysz);
    int (*profile)(void *user, mt_route_set_t *set, const char *name, char *why, size_t whysz);
    void *user;
} mt_route_check_t;

mt_route_set_t *mt_route_set_new(void);
void mt_route_set_free(mt_route_set_t *set);
/* Compile one file's text and append its rules to set (name is used in messages). A second
 * `default:` across files is an error. Returns 0, or MT_ECONF with err = "name:line: message"
 * (the set is then unchanged... except for profiles already adopted, which is harmless). */
int mt_route_set_add(mt_route_set_t *set, const char *yaml, size_t len, const char *name,
                     const mt_route_check_t *check, char *err, size_t errsz);
size_t mt_route_set_count(const mt_route_set_t *set);
/* Keep a compiled profile under name (the set frees it). A name adopted twice keeps the first. */
void mt_route_set_adopt_profile(mt_route_set_t *set, const char *name, mt_deid_profile_t *p);
const mt_deid_profile_t *mt_route_set_profile(const mt_route_set_t *set, const char *name);
/* The number of rules on cmr_series; *where (may be NULL) = "file:line" of the first. */
size_t mt_route_set_after_tag(const mt_route_set_t *set, const char **where);
/* Does every decision of the set de-identify, given whether the node has a deid.profile
 * (node_deid)? True when the node has one and no rule says `deid: none` (a rule's profile
 * that failed to load makes the instance fail, never stored as received). NULL set: node_deid.
 * store.c then keeps of the original header only what it checks. */
bool mt_route_set_always_deid(const mt_route_set_t *set, bool node_deid);
/* Does any rule look at this attribute tag? (store.c keeps only those values) */
bool mt_route_set_wants(const mt_route_set_t *set, uint32_t tag);

/* ---- matching ---- */

/* The attribute values of the instance, collected from its top-level elements. */
typedef struct mt_route_attrs mt_route_attrs_t;
/* wants: keep only the tags the set looks at (NULL: keep all). */
mt_route_attrs_t *mt_route_attrs_new(const mt_route_set_t *wants);
void mt_route_attrs_free(mt_route_attrs_t *a);
/* Offer a top-level element (value NULL: present, value not kept, e.g. a sequence or bulk
 * data). Values in the data set's byte order (big_endian for Explicit VR Big Endian). */
void mt_route_attrs_offer(mt_route_attrs_t *a, uint32_t tag, uint16_t vr, const uint8_t *value,
                          size_t len, bool big_endian);
/* Text value ("" for present without value) or NULL when absent. */
const char *mt_route_attrs_get(const mt_route_attrs_t *a, uint32_t tag);

/* Who sent the instance. A NULL subject is absent: every operator but `absent` fails on it.
 * C-STORE: calling/called AE of the association, peer its address, no user. STOW-RS: no
 * calling AE, called AE = the AE title of the project of the URL (/projects/P/dicomweb) or
 * node.ae_title (/dicomweb), peer the HTTP client's address, user the authenticated user. */
typedef struct mt_route_input {
    const char *calling_ae; /* without padding; NULL = unknown (conditions on it fail) */
    const char *called_ae;
    const char *peer;       /* numeric address text, IPv4 or IPv6; NULL = unknown */
    const char *cmr_series; /* CMR series tag (node/tag); NULL = not known (store time) */
    const mt_route_attrs_t *attrs;
    const char *user; /* DICOMweb user name (users: in the config); NULL = none (DIMSE) */
} mt_route_input_t;

typedef struct mt_route_decision {
    bool matched_any; /* some rule matched (else: the default applied, if any) */
    bool used_default;
    bool reject;
    const char *reject_reason;             /* for ErrorComment (from the rules file, never PHI) */
    const char *deid;                      /* profile name, "none", or NULL = node-wide default */
    const mt_deid_profile_t *deid_profile; /* compiled profile for deid (NULL for none/NULL) */
    const char *projects[MT_ROUTE_MAX_TARGETS];
    size_t n_projects;
    const char *forward[MT_ROUTE_MAX_TARGETS];
    size_t n_forward;
    const char *rules[MT_ROUTE_MAX_TARGETS]; /* names of the rules that matched, in order */
    size_t n_rules;
    /* rules on cmr_series whose other conditions held: evaluated once tagged */
    const char *armed[MT_ROUTE_MAX_TARGETS];
    size_t n_armed;
} mt_route_decision_t;

/* Decide for one instance. Strings in d point into set (valid while set lives). Rules on
 * cmr_series are only armed (d->armed), whatever in->cmr_series says. */
void mt_route_decide(const mt_route_set_t *set, const mt_route_input_t *in, mt_route_decision_t *d);
/* The series of an instance has been tagged tag: evaluate the rules armed for it (names, as
 * d->armed gave them; names no longer in set are ignored) in set's order. d gets the projects,
 * forward destinations and the names of the rules that matched (never deid or reject).
 * armed must not point into d. */
void mt_route_after_tag(const mt_route_set_t *set, const char *tag, const char *const *armed,
                        size_t n_armed, mt_route_decision_t *d);

#endif
