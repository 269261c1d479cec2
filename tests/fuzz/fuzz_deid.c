/* fuzz_deid.c - libFuzzer target for the de-identification engine and its streaming adapter
 * (node/deid/engine.c, stream.c, pseudonym.c) and the profile compiler (profile.c).
 *  - Input starting with "#yaml\n": the rest is a profile (base: the built-in profile below);
 *    loading must succeed or fail with a message, never crash.
 *  - Otherwise the input is a data set (or a whole file: mt_part10_parse_file_buf). Each tree
 *    the codec parses is de-identified: the result is 0 or MT_EREJECTED; the output must encode
 *    and parse again, and de-identifying it again must succeed (idempotent in structure);
 *    the same bytes fed to the stream adapter in explicit LE, in feeds of sizes taken from the
 *    input, must succeed or fail as one feed does, and give the same bytes when they succeed.
 * Any violation aborts. Pure: the profile is a string. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deid/engine.h"
#include "deid/profile.h"
#include "deid/stream.h"
#include "dicom/ds.h"
#include "util/buf.h"
#include "util/err.h"

static const uint8_t KEY[32] = "fuzz-key-fuzz-key-fuzz-key-fuzz";

/* Every action, composites on sequences, masks, a safe private entry, modified dates. */
static const char PROFILE[] =
    "name: fuzz\nedition: fuzz\ndefault: K\nunknown: X\n"
    "patient-id: pseudonym\npatient-name: pseudonym\npseudonym-prefix: \"F\"\n"
    "date-shift: {min-days: -100, max-days: -1}\n"
    "attributes:\n"
    "  \"(0008,0018)\": U\n  \"(0008,1155)\": U\n  \"(0020,000D)\": U\n  \"(0020,000E)\": U\n"
    "  \"(0008,0020)\": C\n  \"(0008,0030)\": Z\n  \"(0008,0050)\": Z\n  \"(0008,0080)\": X/Z/D\n"
    "  \"(0008,0090)\": Z\n  \"(0008,103E)\": C\n  \"(0008,1110)\": X/Z\n  \"(0008,1111)\": X/Z/D\n"
    "  \"(0008,1140)\": X/Z/U*\n  \"(0010,0010)\": Z\n  \"(0010,0020)\": Z/D\n"
    "  \"(0010,0030)\": Z\n  \"(0010,1010)\": X\n  \"(0018,1030)\": X/D\n  \"(0040,A730)\": C\n"
    "  \"(0040,A073)\": D\n  \"(0020,4000)\": C\n  \"(50xx,xxxx)\": X\n  \"(60xx,3000)\": C\n"
    "  \"(60xx,4000)\": C\n  private: C\n"
    "options:\n"
    "  retain-safe-private:\n"
    "    code: {value: \"113111\", meaning: \"Retain Safe Private Option\"}\n"
    "    safe-private:\n"
    "      - {creator: \"SIEMENS MR HEADER\", group: \"0019\", element: \"0C\"}\n";

typedef struct src {
    const char *text;
    size_t len;
} src_t;

static int resolve(void *user, const char *name, mt_deid_source_t *out)
{
    const src_t *s = user;
    if (strcmp(name, "input") == 0 && s) {
        out->text = s->text;
        out->len = s->len;
    } else if (strcmp(name, "fuzz") == 0) {
        out->text = PROFILE;
        out->len = sizeof(PROFILE) - 1;
    } else {
        return MT_ENOENT;
    }
    out->filename = name;
    return 0;
}

static mt_deid_profile_t *g_profile;

static int to_buf(void *user, const uint8_t *p, size_t n)
{
    return mt_buf_append(user, p, n) ? MT_ENOMEM : 0;
}

static void check_tree(mt_ds_t *ds)
{
    int rc = mt_deid_apply(g_profile, KEY, sizeof(KEY), ds, NULL);
    if (rc == MT_EREJECTED)
        return;
    if (rc != 0 && rc != MT_EMALFORMED && rc != MT_ETOOBIG)
        abort();
    if (rc)
        return;
    mt_buf_t out;
    mt_buf_init(&out, (size_t)1 << 28);
    if (mt_ds_encode(ds, mt_ts_explicit_le, &out) != 0)
        abort();
    mt_ds_t *again = NULL;
    mt_diag_t diag;
    if (mt_ds_parse(out.data, out.len, mt_ts_explicit_le, &again, &diag) != 0)
        abort(); /* what we wrote must read back */
    if (mt_deid_apply(g_profile, KEY, sizeof(KEY), again, NULL) != 0)
        abort();
    mt_ds_free(again);
    mt_buf_dispose(&out);
}

static int stream(const uint8_t *data, size_t size, size_t step, mt_buf_t *out)
{
    mt_deid_stream_t *s =
        mt_deid_stream_new(g_profile, KEY, sizeof(KEY), mt_ts_explicit_le, 1 << 20, to_buf, out);
    if (!s)
        abort();
    int rc = 0;
    for (size_t i = 0; i < size && rc >= 0; i += step)
        rc = mt_deid_stream_feed(s, data + i, size - i < step ? size - i : step);
    if (rc >= 0)
        rc = mt_deid_stream_finish(s);
    mt_deid_stream_free(s);
    return rc < 0 ? rc : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (!g_profile && mt_deid_profile_load("fuzz", resolve, NULL, &g_profile, err, sizeof err))
        abort();
    if (size >= 6 && memcmp(data, "#yaml\n", 6) == 0) {
        src_t s = {(const char *)data + 6, size - 6};
        mt_deid_profile_t *p = NULL;
        int rc = mt_deid_profile_load("input", resolve, &s, &p, err, sizeof err);
        if (rc == 0 && !p)
            abort();
        if (rc != 0 && err[0] == '\0')
            abort(); /* every failure explains itself */
        mt_deid_profile_free(p);
        return 0;
    }
    static const mt_ts_t *const *tss[] = {&mt_ts_implicit_le, &mt_ts_explicit_le};
    for (size_t i = 0; i < 2; i++) {
        mt_ds_t *ds = NULL;
        mt_diag_t diag;
        if (mt_ds_parse(data, size, *tss[i], &ds, &diag) == 0)
            check_tree(ds);
        mt_ds_free(ds);
    }
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    mt_diag_t diag;
    if (mt_part10_parse_file_buf(data, size, &meta, &ds, &diag) == 0)
        check_tree(ds);
    mt_ds_free(ds);
    /* the stream adapter: one feed and small feeds give the same outcome and bytes */
    mt_buf_t a, b;
    mt_buf_init(&a, (size_t)1 << 28);
    mt_buf_init(&b, (size_t)1 << 28);
    size_t step = size ? 1 + data[size - 1] % 61 : 1;
    int ra = stream(data, size, size ? size : 1, &a), rb = stream(data, size, step, &b);
    /* One feed meets a malformed tail before the header is processed; small feeds may first
     * fail on the header itself: both must fail, with any error. */
    if ((ra == 0) != (rb == 0) || (ra == 0 && (a.len != b.len || memcmp(a.data, b.data, a.len))))
        abort();
    mt_buf_dispose(&a);
    mt_buf_dispose(&b);
    return 0;
}
