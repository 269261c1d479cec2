/*
 * cli.c - `mitral deid`: offline batch de-identification with the same engine the node uses.
 * NOT pure: this is the one deid file that touches the file system (profiles, key, inputs,
 * outputs). node/main.c dispatches "deid" here: mt_deid_cli(argc - 1, argv + 1), argv[0]=="deid".
 *
 *   mitral deid --profile NAME|FILE --key FILE [--profiles-dir DIR] [-v] IN... OUT_DIR
 *
 * - Profile: a NAME is DIR/NAME.yaml, DIR being --profiles-dir, else $MITRAL_DEID_PROFILES,
 *   else MT_DEID_PROFILES_DIR (a compile definition: the repo's deid-profiles/), else
 *   ./deid-profiles. A FILE (contains '/' or ends in .yaml) is read as is; its `base` is looked
 *   up beside it first, then in DIR.
 * - Key: the file's bytes are the secret (e.g. `head -c 32 /dev/urandom > key; chmod 600 key`).
 *   Refused if group or others have any permission on it, or if it holds fewer than 16 bytes.
 * - IN: files or directories (walked recursively, in name order; symlinked directories are not
 *   followed). Each DICOM file (Part 10, or a bare implicit-LE data set) is parsed, de-identified
 *   and written as OUT_DIR/<study>/<series>/<instance>.dcm, named by the MAPPED UIDs, through a
 *   temporary file and a rename; one syncfs(2) of the output file system at the end makes them
 *   all durable before the exit status says so (an fsync per file cost more than the
 *   de-identification itself). Deflated input is written as Explicit VR Little Endian;
 *   the File Meta Information is rebuilt (PS3.15 E.1.1 item 7), never copied.
 * - Output on stderr is counts only: nothing from a data set, and input paths only with -v.
 * - Burned In Annotation YES: with burned-in-annotation: reject the input is not written
 *   (counted rejected); with quarantine it is de-identified all the same and written as
 *   OUT_DIR/quarantine/<sop>.dcm (flat, named by the mapped SOP UID), apart from the
 *   releasable outputs, for a human to review the pixel data (counted quarantined).
 *   Exit status: 0 all written (quarantined included); 1 some input failed or was rejected;
 *   2 usage, profile or key error. DICOMDIR files are skipped (their records carry names and
 *   point at each other by offset; a de-identified set needs a new DICOMDIR, not an edited one).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../dicom/ds.h"
#include "../util/alloc.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../util/walk.h"
#include "cli.h"
#include "engine.h"
#include "load.h"
#include "profile.h"
#include "stream.h"

#define DEID_MAX_INPUT ((size_t)4 << 30)

static const char usage[] =
    "usage: mitral deid --profile NAME|FILE --key FILE [--profiles-dir DIR] [-v] IN... OUT_DIR\n"
    "  De-identify DICOM files (PS3.15 Annex E profiles, keyed pseudonyms). IN may be files or\n"
    "  directories (walked recursively); outputs go to OUT_DIR/<study>/<series>/<sop>.dcm.\n"
    "  The key file (>= 16 bytes, mode 0600) is the site secret.\n";

/* ---- one file ---- */
typedef struct run {
    const mt_deid_profile_t *p;
    const uint8_t *key;
    size_t key_len;
    const char *out_dir;
    int verbose;
    bool keep_pixels;    /* mt_deid_keeps_pixel_data(p): the header-only fast path applies */
    mt_buf_t in, out;    /* one input file, one output file: storage reused from file to file */
    char made_dir[8192]; /* the output directory made last (mkdirs once per series) */
    size_t n_in, n_written, n_rejected, n_quarantined, n_skipped, n_failed;
} run_t;

static int mkdirs(char *path)
{
    for (char *s = path + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        int r = mkdir(path, 0700);
        *s = '/';
        if (r < 0 && errno != EEXIST)
            return MT_ERR_FROM_ERRNO();
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return MT_ERR_FROM_ERRNO();
    return 0;
}

/* mkdirs(dir) unless it is the directory made last (the files of a series follow each other
 * in a walk: one mkdir per series instead of three per file); again: make it whatever. */
static int make_dir(run_t *r, const char *dir, bool again)
{
    if (!again && strcmp(dir, r->made_dir) == 0)
        return 0;
    snprintf(r->made_dir, sizeof(r->made_dir), "%s", dir);
    int rc = mkdirs(r->made_dir);
    if (rc)
        r->made_dir[0] = '\0';
    return rc;
}

static void uid_component(const mt_ds_t *ds, uint32_t tag, char *out, size_t outsz)
{
    if (!mt_ds_get_string(ds, tag, out, outsz) || !out[0])
        snprintf(out, outsz, "unknown");
    for (char *s = out; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '.'))
            *s = '_';
}

/* Write head + bulk as dir/name, complete or not at all: a temporary name in the same
 * directory, then rename(2). Durability is the caller's one syncfs at the end of the batch. */
static int write_atomic(const char *dir, const char *name, const mt_buf_t *head,
                        const uint8_t *bulk, size_t bulk_len)
{
    char tmp[8192], dst[8192];
    int k1 = snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    int k2 = snprintf(tmp, sizeof(tmp), "%s/.%s.tmp%ld", dir, name, (long)getpid());
    if (k1 < 0 || k2 < 0 || (size_t)k1 >= sizeof(dst) || (size_t)k2 >= sizeof(tmp))
        return MT_ETOOBIG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return MT_ERR_FROM_ERRNO();
    size_t done = 0, total = head->len + bulk_len;
    int rc = 0;
    while (done < total) {
        struct iovec iov[2];
        int n = 0;
        size_t in_bulk = done > head->len ? done - head->len : 0;
        if (done < head->len)
            iov[n++] = (struct iovec){head->data + done, head->len - done};
        if (in_bulk < bulk_len)
            iov[n++] = (struct iovec){(void *)(bulk + in_bulk), bulk_len - in_bulk};
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? MT_ERR_FROM_ERRNO() : MT_EIO;
            break;
        }
        done += (size_t)w;
    }
    if (close(fd) < 0 && !rc)
        rc = MT_ERR_FROM_ERRNO();
    if (!rc && rename(tmp, dst) < 0)
        rc = MT_ERR_FROM_ERRNO();
    if (rc)
        unlink(tmp);
    return rc;
}

static void report(run_t *r, const char *path, const char *what)
{
    if (r->verbose)
        fprintf(stderr, "mitral deid: %s: %s\n", path, what);
    else
        fprintf(stderr, "mitral deid: input #%zu: %s\n", r->n_in, what);
}

/* Is the Pixel Data element in buf (a data set) written exactly as mt_ds_encode would write
 * it after parsing? ds_write.c reproduces values, odd lengths and fragments as parsed; what it
 * normalizes is the element's header: explicit VR as OB or OW with zero reserved bytes, and
 * encapsulated data closed by a zero-length sequence delimiter. Anything else: the slow path. */
static bool bulk_as_encoded(const uint8_t *ds, const mt_deid_bulk_t *b, const mt_ts_t *ts)
{
    const uint8_t *e = ds + b->start, *end = ds + b->end;
    if (b->encapsulated && (!ts->explicit_vr || !ts->encapsulated))
        return false;
    if (ts->explicit_vr && ((b->vr != MT_VR('O', 'B') && b->vr != MT_VR('O', 'W')) ||
                            b->end - b->start < 12 || e[6] || e[7]))
        return false;
    return !b->encapsulated || (end[-4] | end[-3] | end[-2] | end[-1]) == 0;
}

/* Parse one input file. The fast path, for a Part 10 file in a known non-deflated syntax whose
 * last element is a Pixel Data the profile keeps as it is (mt_deid_keeps_pixel_data) and that
 * re-encodes as read (bulk_as_encoded): only the header (every element before Pixel Data)
 * becomes a tree, and *bulk and *bulk_len are the Pixel Data element's bytes in buf, to be written
 * after the de-identified header. Its output is byte for byte what de-identifying and encoding
 * the whole tree gives, without the two copies of the pixels (tree, then output buffer) that
 * take most of the user time. Any other file is parsed whole (*bulk NULL). */
static int parse_input(const run_t *r, const uint8_t *buf, size_t len, mt_meta_t *meta,
                       mt_ds_t **ds, mt_diag_t *diag, const uint8_t **bulk, size_t *bulk_len)
{
    size_t off = 0;
    const mt_ts_t *ts;
    mt_deid_bulk_t b;
    *bulk = NULL;
    *bulk_len = 0;
    if (r->keep_pixels && mt_part10_read_meta(buf, len, meta, &off, diag) == 0 &&
        (ts = mt_ts_find(meta->transfer_syntax_uid)) && !ts->deflated &&
        mt_deid_bulk_span(buf + off, len - off, ts, &b) == 0 && b.found && b.end_known &&
        b.start > 0 && b.end == len - off && bulk_as_encoded(buf + off, &b, ts)) {
        if (mt_ds_parse(buf + off, (size_t)b.start, ts, ds, diag) == 0) {
            *bulk = buf + off + b.start;
            *bulk_len = (size_t)(b.end - b.start);
            return 0;
        }
        mt_ds_free(*ds);
        *ds = NULL;
    }
    memset(meta, 0, sizeof(*meta));
    return mt_part10_parse_file_buf(buf, len, meta, ds, diag);
}

static void do_file(run_t *r, const char *path)
{
    mt_meta_t meta;
    mt_ds_t *ds = NULL;
    mt_diag_t diag = {0, NULL};
    const uint8_t *bulk = NULL;
    size_t bulk_len = 0;
    mt_buf_reset(&r->out);
    r->n_in++;
    int rc = mt_deid_read_file_into(path, DEID_MAX_INPUT, &r->in);
    if (rc) {
        report(r, path, mt_strerror(rc));
        r->n_failed++;
        goto done;
    }
    memset(&meta, 0, sizeof(meta));
    rc = parse_input(r, r->in.data, r->in.len, &meta, &ds, &diag, &bulk, &bulk_len);
    if (!rc && mt_ds_count(ds) == 0)
        rc = MT_EMALFORMED;
    if (rc) {
        report(r, path, "skipped: not a DICOM file this codec reads");
        r->n_skipped++;
        goto done;
    }
    /* File Meta elements inside the data set (a file without preamble whose group 0002 the
     * reader took for data set elements): the transfer syntax is theirs, and they go. */
    if (!meta.transfer_syntax_uid[0])
        mt_ds_get_string(ds, MT_TAG(0x0002, 0x0010), meta.transfer_syntax_uid,
                         sizeof(meta.transfer_syntax_uid));
    for (size_t i = mt_ds_count(ds); i-- > 0;)
        if (MT_TAG_GROUP(mt_ds_at(ds, i)->tag) == 0x0002)
            mt_ds_remove(ds, mt_ds_at(ds, i)->tag);
    /* The input's transfer syntax is kept (compressed Pixel Data passes through untouched),
     * except that deflated input and bare data sets are written as Explicit VR Little Endian. */
    const mt_ts_t *ts = meta.transfer_syntax_uid[0] ? mt_ts_find(meta.transfer_syntax_uid) : NULL;
    char iuid[65];
    if (!mt_ds_get_string(ds, MT_TAG(0x0008, 0x0018), iuid, sizeof(iuid)) || !iuid[0]) {
        report(r, path, "skipped: no SOP Instance UID (not a composite instance)");
        r->n_skipped++;
        goto done;
    }
    const mt_ds_elem_t *px = mt_ds_get(ds, MT_TAG_PIXEL_DATA);
    if (px && px->encapsulated && (!ts || !ts->encapsulated)) {
        report(r, path, "skipped: encapsulated Pixel Data in an unknown transfer syntax");
        r->n_skipped++;
        goto done;
    }
    /* A DICOMDIR (PS3.10 media directory) is an index of other files, full of names, whose
     * records point at each other by byte offset: not an instance, never written. */
    if (strcmp(meta.sop_class_uid, "1.2.840.10008.1.3.10") == 0 ||
        mt_ds_get(ds, MT_TAG(0x0004, 0x1220))) {
        report(r, path, "skipped: DICOMDIR (media directory, not an instance)");
        r->n_skipped++;
        goto done;
    }
    mt_deid_result_t res;
    rc = mt_deid_apply(r->p, r->key, r->key_len, ds, &res);
    bool quarantined = false;
    if (rc == MT_EREJECTED && r->p->burned_in == MT_DEID_BURNED_IN_QUARANTINE) {
        /* de-identified all the same; written apart, for review of the pixel data */
        quarantined = true;
        rc = mt_deid_apply_quarantined(r->p, r->key, r->key_len, ds, &res);
    }
    if (rc == MT_EREJECTED) {
        report(r, path, "rejected: Burned In Annotation is YES");
        r->n_rejected++;
        goto done;
    }
    if (rc) {
        report(r, path, mt_strerror(rc));
        r->n_failed++;
        goto done;
    }
    const mt_ts_t *ots = !ts || ts->deflated ? mt_ts_explicit_le : ts;
    mt_meta_t om;
    memset(&om, 0, sizeof(om));
    if (!mt_ds_get_string(ds, MT_TAG(0x0008, 0x0016), om.sop_class_uid, sizeof(om.sop_class_uid)))
        snprintf(om.sop_class_uid, sizeof(om.sop_class_uid), "%s", meta.sop_class_uid);
    if (!mt_ds_get_string(ds, MT_TAG(0x0008, 0x0018), om.sop_instance_uid,
                          sizeof(om.sop_instance_uid)) &&
        mt_deid_map_uids(r->key, r->key_len, meta.sop_instance_uid, strlen(meta.sop_instance_uid),
                         om.sop_instance_uid, sizeof(om.sop_instance_uid)) < 0)
        om.sop_instance_uid[0] = '\0';
    snprintf(om.transfer_syntax_uid, sizeof(om.transfer_syntax_uid), "%s", ots->uid);
    snprintf(om.impl_class_uid, sizeof(om.impl_class_uid), "%s", MT_IMPL_CLASS_UID);
    snprintf(om.impl_version_name, sizeof(om.impl_version_name), "%s", MT_IMPL_VERSION_NAME);
    if ((rc = mt_part10_write_meta(&om, &r->out)) || (rc = mt_ds_encode(ds, ots, &r->out))) {
        report(r, path, mt_strerror(rc));
        r->n_failed++;
        goto done;
    }
    char study[65], series[65], sop[65], dir[8192], name[80];
    uid_component(ds, MT_TAG(0x0020, 0x000D), study, sizeof(study));
    uid_component(ds, MT_TAG(0x0020, 0x000E), series, sizeof(series));
    snprintf(sop, sizeof(sop), "%s", om.sop_instance_uid[0] ? om.sop_instance_uid : "unknown");
    for (char *s = sop; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '.'))
            *s = '_';
    int k = quarantined ? snprintf(dir, sizeof(dir), "%s/quarantine", r->out_dir)
                        : snprintf(dir, sizeof(dir), "%s/%s/%s", r->out_dir, study, series);
    if (k < 0 || (size_t)k >= sizeof(dir) - sizeof(name) - 16) {
        report(r, path, "output path too long");
        r->n_failed++;
        goto done;
    }
    snprintf(name, sizeof(name), "%s.dcm", sop);
    rc = make_dir(r, dir, false);
    if (!rc && (rc = write_atomic(dir, name, &r->out, bulk, bulk_len)) == MT_ENOENT &&
        !(rc = make_dir(r, dir, true))) /* the directory went away under us: make it again */
        rc = write_atomic(dir, name, &r->out, bulk, bulk_len);
    if (rc) {
        report(r, path, mt_strerror(rc));
        r->n_failed++;
        goto done;
    }
    if (quarantined) {
        report(r, path, "quarantined: Burned In Annotation is YES");
        r->n_quarantined++;
    } else {
        r->n_written++;
    }
done:
    mt_ds_free(ds);
}

/* The input directory that holds OUT_DIR (or is it), or NULL: its walk would read the outputs
 * being written as inputs and de-identify them again, under other UIDs. */
static const char *input_holding_output(char **in, int n_in, const char *out_dir)
{
    char out[PATH_MAX], dir[PATH_MAX];
    if (!realpath(out_dir, out))
        return NULL;
    for (int i = 0; i < n_in; i++) {
        struct stat st;
        if (stat(in[i], &st) || !S_ISDIR(st.st_mode) || !realpath(in[i], dir))
            continue;
        size_t n = strlen(dir);
        if (strncmp(out, dir, n) == 0 && (out[n] == '\0' || out[n] == '/' || n == 1))
            return in[i];
    }
    return NULL;
}

static void walked_file(void *u, const char *path)
{
    do_file(u, path);
}

static void walked_error(void *u, const char *path, int errnum)
{
    run_t *r = u;
    r->n_in++;
    report(r, path, strerror(errnum));
    r->n_failed++;
}

int mt_deid_cli(int argc, char **argv)
{
    const char *profile = NULL, *keyfile = NULL, *dir = NULL;
    int verbose = 0, first = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--profile") && i + 1 < argc) {
            profile = argv[++i];
        } else if (!strcmp(a, "--key") && i + 1 < argc) {
            keyfile = argv[++i];
        } else if (!strcmp(a, "--profiles-dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "--")) {
            first = i + 1;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mitral deid: unknown or incomplete option %s\n%s", a, usage);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (!profile || !keyfile || first < 0 || argc - first < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!dir)
        dir = getenv("MITRAL_DEID_PROFILES");

    char err[512];
    mt_deid_profile_t *p = NULL;
    if (mt_deid_load_profile(profile, dir, &p, err, sizeof(err))) {
        fprintf(stderr, "mitral deid: %s\n", err);
        return 2;
    }
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (mt_deid_load_key(keyfile, &key, &key_len, err, sizeof(err))) {
        fprintf(stderr, "mitral deid: %s\n", err);
        mt_deid_profile_free(p);
        return 2;
    }
    run_t r;
    memset(&r, 0, sizeof(r));
    r.p = p;
    r.key = key;
    r.key_len = key_len;
    r.out_dir = argv[argc - 1];
    r.verbose = verbose;
    r.keep_pixels = mt_deid_keeps_pixel_data(p);
    mt_buf_init(&r.in, DEID_MAX_INPUT + 1);
    mt_buf_init(&r.out, DEID_MAX_INPUT + ((size_t)1 << 20));
    char *od = mt_strdup(r.out_dir);
    int rc = mkdirs(od);
    mt_free(od);
    const char *holder =
        rc ? NULL : input_holding_output(argv + first, argc - 1 - first, r.out_dir);
    if (rc) {
        fprintf(stderr, "mitral deid: output directory: %s\n", mt_strerror(rc));
    } else if (holder) {
        fprintf(stderr,
                "mitral deid: output directory %s is inside the input %s: its outputs "
                "would be read as inputs; write them elsewhere\n",
                r.out_dir, holder);
        rc = MT_EINVAL;
    } else {
        const mt_walk_cb_t walk = {
            .file = walked_file, .error = walked_error, .u = &r, .hidden = true};
        for (int i = first; i < argc - 1; i++)
            mt_walk_files(argv[i], &walk);
        int dfd = open(r.out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || syncfs(dfd) < 0) {
            fprintf(stderr, "mitral deid: output directory: cannot sync: %s\n", strerror(errno));
            r.n_failed++;
        }
        if (dfd >= 0)
            close(dfd);
        fprintf(stderr,
                "mitral deid: profile %s: %zu inputs, %zu written, %zu rejected (burned-in "
                "annotation), %zu quarantined (burned-in annotation), %zu skipped (not DICOM), "
                "%zu failed\n",
                p->name, r.n_in, r.n_written, r.n_rejected, r.n_quarantined, r.n_skipped,
                r.n_failed);
    }
    mt_buf_dispose(&r.in);
    mt_buf_dispose(&r.out);
    mt_deid_key_free(key, key_len);
    mt_deid_profile_free(p);
    if (rc)
        return 2;
    return r.n_failed || r.n_rejected ? 1 : 0;
}
