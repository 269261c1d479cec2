/*
 * report.h - the per-exam protocol report (spec §9.2), report.c. PURE.
 */
#ifndef MT_TAG_REPORT_H
#define MT_TAG_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "../util/buf.h"

typedef struct mt_tag_report mt_tag_report_t;
typedef enum { MT_TAG_REPORT_CSV, MT_TAG_REPORT_JSON, MT_TAG_REPORT_TABLE } mt_tag_report_fmt_t;

mt_tag_report_t *mt_tag_report_new(void);
void mt_tag_report_free(mt_tag_report_t *r);
/* One series: its exam (StudyInstanceUID or any exam key), manufacturer family (enum
 * mt_tag_vendor) and tag string. Unknown tag strings count as `unknown`. */
void mt_tag_report_add(mt_tag_report_t *r, const char *exam, int vendor, const char *tag);
/* The same; mr false: a series that is not MR (evidence `r1.non_mr`). Exams without an MR
 * series are out of scope (§9.2: the denominator is the exams with at least one MR series):
 * neither they nor their series are counted. mt_tag_report_add is mr true. */
void mt_tag_report_add_series(mt_tag_report_t *r, const char *exam, int vendor, const char *tag,
                              bool mr);
/* Row index of a tag in the report, -1 if it has no row. */
int mt_tag_report_row(const char *tag);
/* Append the report (overall, and per manufacturer family when by_vendor) to out. */
int mt_tag_report_format(const mt_tag_report_t *r, mt_tag_report_fmt_t fmt, bool by_vendor,
                         mt_buf_t *out);

#endif
