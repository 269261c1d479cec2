/* fuzz_tag.c - libFuzzer target for the CMR tagger (node/tag/): the input is a data set
 * (explicit VR LE, then implicit VR LE) or a Part 10 file; whatever parses is run through
 * feature extraction (both byte orders), the series statistics, the family rules and the
 * exam-level pass, twice (two series of one study: revision path), and formatted. The
 * description tokenizer also gets the raw bytes as a string. Must never crash, leak or read
 * out of bounds; the output line must never hold more than 4 commas. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/ds.h"
#include "tag/tag.h"

static void tag_ds(const mt_ds_t *ds)
{
    for (int be = 0; be < 2; be++) {
        mt_tag_inst_t in;
        int rc = mt_tag_extract(ds, be, &in);
        if (rc == 0) {
            mt_tag_series_t a, b;
            mt_tag_series_init(&a);
            mt_tag_series_init(&b);
            mt_tag_series_add(&a, &in);
            mt_tag_series_add(&a, &in);
            mt_tag_series_add(&b, &in);
            mt_tag_series_finish(&a);
            mt_tag_series_finish(&b);
            mt_tag_series_t *arr[2] = {&a, &b};
            mt_tag_study_t st = {arr, 2, false, false, {0, 0, 0}, false, -1, 0};
            mt_tag_study_run(&st);
            mt_tag_study_run(&st);
            char line[2048];
            if (mt_tag_format_line(&a, line, sizeof line) == 0) {
                int commas = 0;
                for (char *p = line; *p; p++)
                    commas += *p == ',';
                /* the series UID itself may not hold commas in valid data; count after it */
                const char *q = strchr(line, ',');
                int before = 0;
                for (const char *p = line; p < q; p++)
                    before += *p == ',';
                if (commas - before > 4)
                    abort();
            }
            mt_tag_series_dispose(&a);
            mt_tag_series_dispose(&b);
        }
        mt_tag_inst_dispose(&in);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    mt_tag_words_t w;
    memset(&w, 0, sizeof w);
    mt_tag_words_scan(s, &w);
    free(s);

    const mt_ts_t *ts[2] = {mt_ts_explicit_le, mt_ts_implicit_le};
    for (int i = 0; i < 2; i++) {
        mt_ds_t *ds = NULL;
        mt_diag_t diag = {0, NULL};
        if (mt_ds_parse(data, size, ts[i], &ds, &diag) == 0)
            tag_ds(ds);
        mt_ds_free(ds);
    }
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    mt_diag_t diag = {0, NULL};
    if (mt_part10_parse_file_buf(data, size, &meta, &ds, &diag) == 0)
        tag_ds(ds);
    mt_ds_free(ds);
    return 0;
}
