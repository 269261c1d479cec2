/*
 * rules_int.h - the compiled form of a rule set, shared by rules.c (compiler) and match.c
 * (matcher). Not a public header: everything outside node/route/ uses rules.h.
 */
#ifndef MT_ROUTE_RULES_INT_H
#define MT_ROUTE_RULES_INT_H

#include <regex.h>

#include "rules.h"

enum mt__route_subject {
    MT__RS_ATTR,
    MT__RS_CALLING_AE,
    MT__RS_CALLED_AE,
    MT__RS_PEER,
    MT__RS_CMR_SERIES,
    MT__RS_USER, /* the authenticated DICOMweb user (STOW-RS) */
};

enum mt__route_opkind {
    MT__RO_EQUALS,
    MT__RO_ONE_OF,
    MT__RO_GLOB,
    MT__RO_REGEX,
    MT__RO_RANGE,
    MT__RO_DATE_RANGE,
    MT__RO_PRESENT,
    MT__RO_ABSENT,
    MT__RO_CIDR, /* peer: one of these networks */
};

typedef struct mt__route_cidr {
    int family; /* AF_INET / AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
} mt__route_cidr_t;

typedef struct mt__route_op {
    enum mt__route_opkind kind;
    char **vals; /* equals (1), one_of (n), glob (1) */
    size_t n_vals;
    double *nums; /* equals / one_of on a numeric attribute (DS, IS, US ...): vals as numbers */
    regex_t re;
    bool has_re;
    bool has_lo, has_hi;
    double lo, hi;       /* range */
    char dlo[9], dhi[9]; /* date_range: YYYYMMDD, "" = open */
    mt__route_cidr_t *cidrs;
    size_t n_cidrs;
} mt__route_op_t;

typedef struct mt__route_cond {
    enum mt__route_subject subject;
    uint32_t tag; /* MT__RS_ATTR */
    mt__route_op_t *ops;
    size_t n_ops;
} mt__route_cond_t;

struct mt_route_rule {
    char *name;
    mt__route_cond_t *conds;
    size_t n_conds;
    char **projects;
    size_t n_projects;
    char **forward;
    size_t n_forward;
    char *deid;   /* NULL = not set */
    char *reject; /* NULL = not a reject rule */
    bool cont;
    /* a condition on cmr_series: the rule applies after tagging (match.c mt_route_after_tag);
     * its other conditions are tested at store time, which arms it for the instance */
    bool after_tag;
    char *where; /* "file:line" of the rule, for messages */
};

typedef struct mt__route_profile {
    char *name;
    mt_deid_profile_t *p;
} mt__route_profile_t;

struct mt_route_set {
    mt_route_rule_t *rules;
    size_t n_rules;
    bool has_default;
    mt_route_rule_t def;
    uint32_t *tags; /* sorted, unique: attributes any rule looks at */
    size_t n_tags;
    mt__route_profile_t *profiles;
    size_t n_profiles;
};

#endif
