/*
 * extract.c - features of one instance for the CMR tagger (spec §3.1, §7). PURE.
 *
 * Reads a parsed data set (node/dicom/ds.h tree) and fills an mt_tag_inst_t. Nothing
 * identifying leaves this file: descriptions become vocabulary bits, ProtocolName and
 * FrameOfReferenceUID become 64-bit hashes (used only to link companion series), times stay
 * times of day until the study pass makes them relative.
 *
 * Classic MR (and anything else with an MR header): one image plane per instance.
 * Enhanced MR / Legacy Converted Enhanced MR (§7): one plane per frame. For each frame the
 * Shared Functional Groups (5200,9229) are applied first, then that frame's item of the
 * Per-frame Functional Groups (5200,9230), so a per-frame value overrides the shared one:
 *   PlaneOrientation (0020,9116) -> IOP        PlanePosition (0020,9113) -> IPP
 *   CardiacSynchronization (0018,9118) -> NominalCardiacTriggerDelayTime (0020,9153)
 *   FrameContent (0020,9111) -> TemporalPositionIndex, StackID, FrameAcquisitionDateTime
 *   MRTimingAndRelatedParameters (0018,9112) -> TR, flip angle, echo train length
 *   MREcho (0018,9114) -> EffectiveEchoTime     MRModifier (0018,9115) -> InversionRecovery,
 *   InversionTimes, T2Preparation               MRVelocityEncoding (0018,9197) -> VENC
 *   MRImageFrameType (0018,9226) -> FrameType, ComplexImageComponent, AcquisitionContrast
 *   PixelMeasures (0028,9110) -> PixelSpacing, SliceThickness
 * Image-level Enhanced attributes (PulseSequenceName, SteadyStatePulseSequence,
 * SaturationRecovery, EchoPulseSequence, AcquisitionContrast) replace ScanningSequence and
 * SequenceVariant.
 *
 * The node's path (node/tag/capture.c) runs this over a tree of only the tags listed in
 * `wanted` (end of this file), built from the receiving service's own data set reader; the
 * features are the same as over the full tree (tests/unit/node/tag/capture.c checks it).
 *
 * Binary values (FD, FL, UL, US) are read in the tree's byte order (big_endian argument).
 * Vendor-private sequence names (GE (0019,xx9C) in GEMS_ACQU_01, Philips (2001,xx20) in
 * "Philips Imaging DD 001") only add weak seq_flags bits, never required (§3.1).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/err.h"
#include "../util/fnv.h"
#include "tag.h"

#define MAX_PLANES 8192

static const mt_ds_elem_t *get(const mt_ds_t *ds, uint32_t tag)
{
    return ds ? mt_ds_get(ds, tag) : NULL;
}

static bool get_str(const mt_ds_t *ds, uint32_t tag, char *out, size_t outsz)
{
    out[0] = '\0';
    if (!ds || !mt_ds_get_string(ds, tag, out, outsz))
        return false;
    /* trim leading spaces too */
    size_t k = 0;
    while (out[k] == ' ')
        k++;
    if (k)
        memmove(out, out + k, strlen(out + k) + 1);
    return out[0] != '\0';
}

/* strtod for the common DS/IS value, "-12.345" with at most 15 digits: the digits as an
 * integer m and the fraction length k, m / 10^k. Both are exact doubles (m < 2^53, k <= 22), so
 * the IEEE division is correctly rounded: the same double as strtod (Clinger's fast path).
 * Anything else (exponent, hex, inf/nan, '+', more digits) goes to strtod itself. */
static double parse_decimal(const char *s, char **end)
{
    static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    const char *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    uint64_t m = 0;
    unsigned digits = 0, frac = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        m = m * 10 + (uint64_t)(*p - '0');
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits++, frac++)
            m = m * 10 + (uint64_t)(*p - '0');
    if (digits == 0 || digits > 15 || (*p && strchr("eEpPxX", *p)))
        return strtod(s, end);
    *end = (char *)p;
    double d = (double)m / pow10[frac];
    return neg ? -d : d;
}

/* The i-th backslash-separated value of a string element, as a double. */
static bool get_ds_n(const mt_ds_t *ds, uint32_t tag, double *v, size_t nv)
{
    char buf[256];
    if (!get_str(ds, tag, buf, sizeof buf))
        return false;
    char *p = buf;
    for (size_t i = 0; i < nv; i++) {
        char *end;
        while (*p == ' ')
            p++;
        double d = parse_decimal(p, &end);
        if (end == p || !isfinite(d))
            return false;
        v[i] = d;
        p = end;
        while (*p == ' ')
            p++;
        if (i + 1 < nv) {
            if (*p != '\\')
                return false;
            p++;
        }
    }
    return true;
}

static float get_ds1(const mt_ds_t *ds, uint32_t tag)
{
    double v;
    return get_ds_n(ds, tag, &v, 1) ? (float)v : NAN;
}

static int32_t get_is1(const mt_ds_t *ds, uint32_t tag)
{
    double v;
    if (!get_ds_n(ds, tag, &v, 1) || v < -2147483647.0 || v > 2147483647.0)
        return -1;
    return (int32_t)v;
}

static uint64_t rd(const uint8_t *p, unsigned n, bool be)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

/* First value of a binary FD/FL element (also accepts a DS string). */
static double get_fd1(const mt_ds_t *ds, uint32_t tag, bool be)
{
    const mt_ds_elem_t *e = get(ds, tag);
    if (!e || !e->value)
        return NAN;
    if (e->vr == MT_VR('F', 'D') && e->len >= 8) {
        uint64_t u = rd(e->value, 8, be);
        double d;
        memcpy(&d, &u, 8);
        return isfinite(d) ? d : NAN;
    }
    if (e->vr == MT_VR('F', 'L') && e->len >= 4) {
        uint32_t u = (uint32_t)rd(e->value, 4, be);
        float f;
        memcpy(&f, &u, 4);
        return isfinite(f) ? f : NAN;
    }
    if (e->vr == MT_VR('D', 'S') || e->vr == MT_VR('I', 'S'))
        return get_ds1(ds, tag);
    if (e->len == 8) { /* UN: assume FD */
        uint64_t u = rd(e->value, 8, be);
        double d;
        memcpy(&d, &u, 8);
        return isfinite(d) ? d : NAN;
    }
    return NAN;
}

static int64_t get_uint1(const mt_ds_t *ds, uint32_t tag, bool be)
{
    const mt_ds_elem_t *e = get(ds, tag);
    if (!e || !e->value)
        return -1;
    if (e->vr == MT_VR('U', 'S') && e->len >= 2)
        return (int64_t)rd(e->value, 2, be);
    if ((e->vr == MT_VR('U', 'L') || e->vr == MT_VR('S', 'L')) && e->len >= 4)
        return (int64_t)rd(e->value, 4, be);
    if (e->vr == MT_VR('I', 'S'))
        return get_is1(ds, tag);
    if (e->len == 4)
        return (int64_t)rd(e->value, 4, be);
    return -1;
}

/* First item of a sequence, or NULL. */
static const mt_ds_t *item0(const mt_ds_t *ds, uint32_t tag)
{
    const mt_ds_elem_t *e = get(ds, tag);
    if (!e || e->n_items == 0 || !e->items)
        return NULL;
    return e->items[0];
}

/* TM "HHMMSS.FFF" (or "HH:MM:SS") -> seconds since midnight. */
static float parse_tm(const char *s)
{
    int f[3] = {0, 0, 0};
    int nf = 0;
    const char *p = s;
    while (nf < 3 && isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
        f[nf++] = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':')
            p++;
    }
    if (nf == 0 || f[0] > 24 || f[1] > 59 || f[2] > 60)
        return NAN;
    double frac = 0;
    if (nf == 3 && *p == '.') {
        double scale = 0.1;
        for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    return (float)(f[0] * 3600.0 + f[1] * 60.0 + f[2] + frac);
}

static float get_tm(const mt_ds_t *ds, uint32_t tag)
{
    char buf[40];
    return get_str(ds, tag, buf, sizeof buf) ? parse_tm(buf) : NAN;
}

static float get_dt_time(const mt_ds_t *ds, uint32_t tag)
{
    char buf[40];
    if (!get_str(ds, tag, buf, sizeof buf) || strlen(buf) < 10)
        return NAN;
    return parse_tm(buf + 8);
}

/* Iterate the backslash-separated values of a CS string, upper-cased and trimmed. */
typedef void (*value_fn)(const char *v, void *user);
static void each_value(const char *s, value_fn fn, void *user)
{
    char v[80];
    while (*s) {
        size_t n = 0;
        while (*s == ' ')
            s++;
        while (*s && *s != '\\') {
            if (n < sizeof v - 1)
                v[n++] = (char)toupper((unsigned char)*s);
            s++;
        }
        while (n && v[n - 1] == ' ')
            n--;
        v[n] = '\0';
        if (n)
            fn(v, user);
        if (*s == '\\')
            s++;
    }
}

static void itype_value(const char *v, void *user)
{
    uint32_t *f = user;
    static const struct {
        const char *s;
        uint32_t bits;
    } map[] = {
        {"ORIGINAL", MT_IT_ORIGINAL}, {"DERIVED", MT_IT_DERIVED},
        {"SECONDARY", MT_IT_SECONDARY}, {"M", MT_IT_M}, {"MAG", MT_IT_M},
        {"MAGNITUDE", MT_IT_M}, {"M_FFE", MT_IT_M}, {"M_SE", MT_IT_M},
        {"M_IR", MT_IT_M | MT_IT_IR}, {"R_IR", MT_IT_R | MT_IT_IR}, {"R", MT_IT_R},
        {"REAL", MT_IT_R}, {"P", MT_IT_P}, {"PHASE", MT_IT_P}, {"PSIR", MT_IT_PSIR},
        {"MOCO", MT_IT_MOCO}, {"T1 MAP", MT_IT_T1MAP}, {"T1MAP", MT_IT_T1MAP},
        {"T1_MAP", MT_IT_T1MAP}, {"T2 MAP", MT_IT_T2MAP}, {"T2MAP", MT_IT_T2MAP},
        {"T2_MAP", MT_IT_T2MAP}, {"T2*", MT_IT_T2SMAP}, {"T2STAR", MT_IT_T2SMAP},
        {"T2* MAP", MT_IT_T2SMAP}, {"R2*", MT_IT_T2SMAP}, {"T2_STAR_MAP", MT_IT_T2SMAP},
        {"R2_STAR_MAP", MT_IT_T2SMAP}, {"VELOCITY", MT_IT_VEL}, {"VELOCITY MAP", MT_IT_VEL},
        {"PHASE MAP", MT_IT_VEL}, {"PCA", MT_IT_PCA}, {"M_PCA", MT_IT_PCA | MT_IT_M},
        {"PHASE CONTRAST", MT_IT_PCA}, {"PHASE CONTRAST M", MT_IT_PCA | MT_IT_M},
        {"LOCALIZER", MT_IT_LOCALIZER}, {"CINE", MT_IT_CINE}, {"PERFUSION", MT_IT_PERFUSION},
        {"STRESS", MT_IT_STRESS}, {"REST", MT_IT_REST}, {"FLOW_ENCODED", MT_IT_FLOW_ENC},
        {"ANGIO", MT_IT_ANGIO}, {"MIP", MT_IT_MIP}, {"MPR", MT_IT_MIP},
        {"PROJECTION IMAGE", MT_IT_MIP}, {"TAGGING", MT_IT_TAGGING}, {"SUB", MT_IT_SUB},
        {"SUBTRACTION", MT_IT_SUB}, {"T2_STAR", MT_IT_T2STAR_W}, {"SCREENSHOT", MT_IT_SCREENSHOT},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(v, map[i].s) == 0)
            *f |= map[i].bits;
}

/* The instances of a series repeat a few ImageType values (M / P, MAG / PHASE...): the last
 * ITYPE_MEMO ones parsed on this thread are remembered with their bits (the ~50 comparisons
 * per value were a tenth of the extraction). The result depends on the text alone. */
#define ITYPE_MEMO 4
#define ITYPE_MEMO_LEN 128
static uint32_t parse_itype(const char *s)
{
    static _Thread_local struct {
        char text[ITYPE_MEMO_LEN];
        uint32_t bits;
        bool used;
    } memo[ITYPE_MEMO];
    static _Thread_local unsigned next;
    size_t len = strnlen(s, ITYPE_MEMO_LEN);
    for (int i = 0; len < ITYPE_MEMO_LEN && i < ITYPE_MEMO; i++)
        if (memo[i].used && !memcmp(memo[i].text, s, len + 1))
            return memo[i].bits;
    uint32_t f = 0;
    each_value(s, itype_value, &f);
    if (len < ITYPE_MEMO_LEN) {
        unsigned k = next++ % ITYPE_MEMO;
        memcpy(memo[k].text, s, len + 1);
        memo[k].bits = f;
        memo[k].used = true;
    }
    return f;
}

struct codes {
    const char *const *names;
    uint16_t *out;
};
static void code_value(const char *v, void *user)
{
    struct codes *c = user;
    for (unsigned i = 0; c->names[i]; i++)
        if (strcmp(v, c->names[i]) == 0)
            *c->out |= (uint16_t)(1u << i);
}
static uint16_t parse_codes(const char *s, const char *const *names)
{
    uint16_t out = 0;
    struct codes c = {names, &out};
    each_value(s, code_value, &c);
    return out;
}

static void scan_opt_value(const char *v, void *user)
{
    uint16_t *f = user;
    if (strcmp(v, "CG") == 0 || strcmp(v, "CARD_GEMS") == 0 || strstr(v, "ECG"))
        *f |= MT_SO_CG;
    else if (strcmp(v, "PPG") == 0 || strstr(v, "PPG"))
        *f |= MT_SO_PPG;
    else if (strcmp(v, "RG") == 0 || strcmp(v, "RESP_GEMS") == 0)
        *f |= MT_SO_RG;
    else if (strcmp(v, "FS") == 0 || strstr(v, "FS_GEMS") || strstr(v, "FAT"))
        *f |= MT_SO_FS;
    else if (strncmp(v, "SAT", 3) == 0 || strcmp(v, "SP") == 0)
        *f |= MT_SO_SAT;
    if (strcmp(v, "IR") == 0 || strstr(v, "IR_GEMS"))
        *f |= MT_SO_IR;
}

/* Sequence names (Siemens SequenceName, Enhanced PulseSequenceName, vendor private names). */
static uint16_t seq_flags_parse(const char *name, float *venc)
{
    char s[96];
    size_t n = 0;
    for (; name[n] && n < sizeof s - 1; n++)
        s[n] = (char)tolower((unsigned char)name[n]);
    s[n] = '\0';
    uint16_t f = 0;
    if (strstr(s, "tfi") || strstr(s, "fiesta") || strstr(s, "bffe") || strstr(s, "btfe") ||
        strstr(s, "b-tfe") || strstr(s, "ssfp") || strstr(s, "trufi"))
        f |= MT_SQ_TFI;
    if (strstr(s, "tfl") || (strstr(s, "tfe") && !(f & MT_SQ_TFI)))
        f |= MT_SQ_TFL;
    const char *p = s;
    while ((p = strstr(p, "fl")) != NULL) {
        if (p == s || p[-1] != 't')
            f |= MT_SQ_FL;
        p += 2;
    }
    if (strstr(s, "fgre") || strstr(s, "spgr") || (strstr(s, "ffe") && !strstr(s, "bffe")))
        f |= MT_SQ_FL;
    if (strstr(s, "tse") || strstr(s, "fse") || strcmp(s, "se") == 0)
        f |= MT_SQ_TSE;
    if (strstr(s, "h2d") || strstr(s, "ssfse") || strstr(s, "haste"))
        f |= MT_SQ_HASTE;
    if (strstr(s, "3d"))
        f |= MT_SQ_3D;
    if (strstr(s, "fl3d"))
        f |= MT_SQ_FL3D;
    if (strstr(s, "epfid") || strstr(s, "epi"))
        f |= MT_SQ_EPI;
    /* *fl2d1_v120in : VENC phase image; *fl2d1r3 : its magnitude partner */
    const char *v = strstr(s, "_v");
    if (v && isdigit((unsigned char)v[2]) && (f & MT_SQ_FL)) {
        f |= MT_SQ_VENC;
        if (venc)
            *venc = (float)strtod(v + 2, NULL);
    }
    const char *fl = strstr(s, "fl2d");
    if (fl) {
        const char *q = fl + 4;
        while (isdigit((unsigned char)*q))
            q++;
        if (*q == 'r' && isdigit((unsigned char)q[1]))
            f |= MT_SQ_PCMAG;
    }
    return f;
}

/* The instances of a series repeat their sequence names: the last SEQ_MEMO names met on this
 * thread are remembered with their flags and VENC (the ~25 substring searches per name were a
 * twentieth of the extraction). The result depends on the text alone. */
#define SEQ_MEMO 4
#define SEQ_MEMO_LEN 96
static uint16_t seq_flags(const char *name, float *venc)
{
    static _Thread_local struct {
        char text[SEQ_MEMO_LEN];
        uint16_t flags;
        bool used, has_venc;
        float venc;
    } memo[SEQ_MEMO];
    static _Thread_local unsigned next;
    size_t len = strnlen(name, SEQ_MEMO_LEN);
    for (int i = 0; len < SEQ_MEMO_LEN && i < SEQ_MEMO; i++)
        if (memo[i].used && !memcmp(memo[i].text, name, len + 1)) {
            if (venc && memo[i].has_venc)
                *venc = memo[i].venc;
            return memo[i].flags;
        }
    float v = NAN;
    uint16_t f = seq_flags_parse(name, &v);
    bool has_venc = (f & MT_SQ_VENC) != 0; /* seq_flags_parse sets *venc exactly then */
    if (venc && has_venc)
        *venc = v;
    if (len < SEQ_MEMO_LEN) {
        unsigned k = next++ % SEQ_MEMO;
        memcpy(memo[k].text, name, len + 1);
        memo[k].flags = f;
        memo[k].has_venc = has_venc;
        memo[k].venc = v;
        memo[k].used = true;
    }
    return f;
}

/* A private element (gggg,xxEE) in the block reserved by `creator`; NULL if absent. */
/* Index of the first element with a tag >= tag (elements are sorted by tag). */
static size_t lower_bound(const mt_ds_t *ds, uint32_t tag)
{
    size_t lo = 0, hi = mt_ds_count(ds);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mt_ds_at(ds, mid)->tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* PS3.5 §7.8.1: the private creator elements (gggg,0010-00FF) present are walked in order
 * (one search, not one lookup per possible block: this runs for every instance). */
static bool get_private_str(const mt_ds_t *ds, uint16_t group, const char *creator, uint8_t el,
                            char *out, size_t outsz)
{
    char buf[80];
    size_t n = mt_ds_count(ds);
    for (size_t i = lower_bound(ds, MT_TAG(group, 0x0010)); i < n; i++) {
        uint32_t tag = mt_ds_at(ds, i)->tag;
        if (tag > MT_TAG(group, 0x00FF))
            break;
        if (!get_str(ds, tag, buf, sizeof buf))
            continue;
        if (strcasecmp(buf, creator) == 0)
            return get_str(ds, MT_TAG(group, ((tag & 0xFF) << 8) | el), out, outsz);
    }
    return false;
}

/* Classic per-image attributes (also present at top level in some Enhanced files). */
static void classic_img(const mt_ds_t *ds, bool be, mt_tag_img_t *img)
{
    double v[6];
    if (get_ds_n(ds, MT_TAG(0x0020, 0x0037), v, 6))
        for (int i = 0; i < 6; i++)
            img->iop[i] = (float)v[i];
    if (get_ds_n(ds, MT_TAG(0x0020, 0x0032), v, 3))
        for (int i = 0; i < 3; i++)
            img->ipp[i] = (float)v[i];
    img->tt = get_ds1(ds, MT_TAG(0x0018, 0x1060));
    img->ti = get_ds1(ds, MT_TAG(0x0018, 0x0082));
    img->te = get_ds1(ds, MT_TAG(0x0018, 0x0081));
    img->acq = get_tm(ds, MT_TAG(0x0008, 0x0032));
    if (isnan(img->acq))
        img->acq = get_dt_time(ds, MT_TAG(0x0008, 0x002A));
    img->tpos = get_is1(ds, MT_TAG(0x0020, 0x0100));
    (void)be;
}

static void cs_enh(const mt_ds_t *ds, mt_tag_inst_t *in)
{
    char b[64];
    if (get_str(ds, MT_TAG(0x0018, 0x9017), b, sizeof b) && strcasecmp(b, "NONE") != 0)
        in->enh |= MT_EN_SSFP;
    if (get_str(ds, MT_TAG(0x0018, 0x9024), b, sizeof b) && strcasecmp(b, "YES") == 0)
        in->enh |= MT_EN_SATREC;
    if (get_str(ds, MT_TAG(0x0018, 0x9009), b, sizeof b) && strcasecmp(b, "YES") == 0)
        in->enh |= MT_EN_IR;
    if (get_str(ds, MT_TAG(0x0018, 0x9021), b, sizeof b) && strcasecmp(b, "YES") == 0)
        in->enh |= MT_EN_T2PREP;
    if (get_str(ds, MT_TAG(0x0018, 0x9008), b, sizeof b)) {
        if (strcasecmp(b, "SPIN") == 0 || strcasecmp(b, "BOTH") == 0)
            in->enh |= MT_EN_SPIN;
        if (strcasecmp(b, "GRADIENT") == 0 || strcasecmp(b, "BOTH") == 0)
            in->enh |= MT_EN_GRADIENT;
    }
    if (get_str(ds, MT_TAG(0x0008, 0x9209), b, sizeof b)) {
        if (strcasecmp(b, "FLOW_ENCODED") == 0)
            in->enh |= MT_EN_FLOW_ENC;
        if (strcasecmp(b, "PERFUSION") == 0)
            in->enh |= MT_EN_PERF;
    }
    if (get_str(ds, MT_TAG(0x0008, 0x9208), b, sizeof b) && strcasecmp(b, "PHASE") == 0)
        in->enh |= MT_EN_PHASE;
}

/* Apply one functional-groups item (shared or per-frame) to a plane. */
static void apply_fg(const mt_ds_t *fg, bool be, mt_tag_img_t *img, mt_tag_inst_t *in)
{
    const mt_ds_t *it;
    double v[6];
    char b[80];
    if ((it = item0(fg, MT_TAG(0x0020, 0x9116))) && get_ds_n(it, MT_TAG(0x0020, 0x0037), v, 6))
        for (int i = 0; i < 6; i++)
            img->iop[i] = (float)v[i];
    if ((it = item0(fg, MT_TAG(0x0020, 0x9113))) && get_ds_n(it, MT_TAG(0x0020, 0x0032), v, 3))
        for (int i = 0; i < 3; i++)
            img->ipp[i] = (float)v[i];
    if ((it = item0(fg, MT_TAG(0x0018, 0x9118)))) {
        double d = get_fd1(it, MT_TAG(0x0020, 0x9153), be);
        if (!isnan(d))
            img->tt = (float)d;
    }
    if ((it = item0(fg, MT_TAG(0x0020, 0x9111)))) {
        int64_t t = get_uint1(it, MT_TAG(0x0020, 0x9128), be);
        if (t >= 0 && t < 0x7FFFFFFF)
            img->tpos = (int32_t)t;
        if (get_str(it, MT_TAG(0x0020, 0x9056), b, sizeof b)) {
            char *end;
            long k = strtol(b, &end, 10);
            img->stack = (*end == '\0' && k >= 0 && k < 0x7FFFFFFF)
                             ? (int32_t)k
                             : (int32_t)(mt_fnv1a64_str(b) & 0x7FFFFFF);
        }
        float t2 = get_dt_time(it, MT_TAG(0x0018, 0x9074));
        if (!isnan(t2))
            img->acq = t2;
    }
    if ((it = item0(fg, MT_TAG(0x0018, 0x9112)))) {
        float f = get_ds1(it, MT_TAG(0x0018, 0x0080));
        if (isnan(f))
            f = (float)get_fd1(it, MT_TAG(0x0018, 0x0080), be);
        if (!isnan(f))
            in->tr = f;
        f = get_ds1(it, MT_TAG(0x0018, 0x1314));
        if (isnan(f))
            f = (float)get_fd1(it, MT_TAG(0x0018, 0x1314), be);
        if (!isnan(f))
            in->flip = f;
        int32_t e = get_is1(it, MT_TAG(0x0018, 0x0091));
        if (e >= 0)
            in->etl = e;
    }
    if ((it = item0(fg, MT_TAG(0x0018, 0x9114)))) {
        double d = get_fd1(it, MT_TAG(0x0018, 0x9082), be);
        if (!isnan(d))
            img->te = (float)d;
    }
    if ((it = item0(fg, MT_TAG(0x0018, 0x9115)))) {
        cs_enh(it, in);
        double d = get_fd1(it, MT_TAG(0x0018, 0x9079), be);
        if (!isnan(d))
            img->ti = (float)d;
    }
    if ((it = item0(fg, MT_TAG(0x0018, 0x9197)))) {
        in->enh |= MT_EN_VENC_SEQ;
        double d = get_fd1(it, MT_TAG(0x0018, 0x9217), be);
        if (!isnan(d))
            in->venc = (float)d;
    }
    if ((it = item0(fg, MT_TAG(0x0018, 0x9226)))) {
        if (get_str(it, MT_TAG(0x0008, 0x9007), b, sizeof b))
            img->itype |= parse_itype(b);
        if (get_str(it, MT_TAG(0x0008, 0x9208), b, sizeof b) && strcasecmp(b, "PHASE") == 0) {
            img->itype |= MT_IT_P;
            in->enh |= MT_EN_PHASE;
        }
        cs_enh(it, in);
    }
    /* Philips keeps the classic per-frame ImageType (e.g. "T1 MAP" frames of a MOLLI
     * series) in its private per-frame item (2005,140F); weak vendor evidence (§3.1) */
    if (in->vendor == MT_VENDOR_PHILIPS && (it = item0(fg, MT_TAG(0x2005, 0x140F))) &&
        get_str(it, MT_TAG(0x0008, 0x0008), b, sizeof b))
        img->itype |= parse_itype(b) & (MT_IT_T1MAP | MT_IT_T2MAP | MT_IT_T2SMAP | MT_IT_VEL |
                                        MT_IT_PCA | MT_IT_P | MT_IT_R | MT_IT_IR);
    if ((it = item0(fg, MT_TAG(0x0028, 0x9110)))) {
        if (get_ds_n(it, MT_TAG(0x0028, 0x0030), v, 1))
            in->pix_sp = (float)v[0];
        float f = get_ds1(it, MT_TAG(0x0018, 0x0050));
        if (!isnan(f))
            in->slice_th = f;
    }
}

int mt_tag_extract(const mt_ds_t *ds, bool be, mt_tag_inst_t *in)
{
    mt_tag_inst_init(in);
    char b[512], p[256];
    if (!get_str(ds, MT_TAG(0x0020, 0x000E), in->series_uid, sizeof in->series_uid))
        return MT_EINVAL;
    get_str(ds, MT_TAG(0x0020, 0x000D), in->study_uid, sizeof in->study_uid);
    in->series_number = get_is1(ds, MT_TAG(0x0020, 0x0011));
    if (get_str(ds, MT_TAG(0x0020, 0x0052), b, sizeof b))
        in->for_hash = mt_fnv1a64_str(b);

    /* description tokens: SeriesDescription + " " + ProtocolName */
    in->has_desc = get_str(ds, MT_TAG(0x0008, 0x103E), b, 256);
    if (get_str(ds, MT_TAG(0x0018, 0x1030), p, sizeof p)) {
        in->protocol_hash = mt_fnv1a64_str(p);
        size_t l = strlen(b), pl = strlen(p); /* b + " " + p: at most 255 + 1 + 255 < 512 */
        if (l)
            b[l++] = ' ';
        memcpy(b + l, p, pl + 1);
    }
    mt_tag_words_scan(b, &in->desc);
    if (get_str(ds, MT_TAG(0x0008, 0x1030), b, sizeof b))
        mt_tag_words_scan(b, &in->study_desc);

    char sop[80] = "", mod[20] = "";
    get_str(ds, MT_TAG(0x0008, 0x0016), sop, sizeof sop);
    get_str(ds, MT_TAG(0x0008, 0x0060), mod, sizeof mod);
    in->secondary_capture = strncmp(sop, "1.2.840.10008.5.1.4.1.1.7", 25) == 0;
    in->enhanced = strcmp(sop, "1.2.840.10008.5.1.4.1.1.4.1") == 0 ||
                   strcmp(sop, "1.2.840.10008.5.1.4.1.1.4.4") == 0;
    in->not_mr = (mod[0] && strcmp(mod, "MR") != 0) ||
                 (sop[0] && !in->secondary_capture &&
                  strncmp(sop, "1.2.840.10008.5.1.4.1.1.4", 25) != 0);

    if (get_str(ds, MT_TAG(0x0008, 0x0070), b, sizeof b)) {
        for (char *q = b; *q; q++)
            *q = (char)toupper((unsigned char)*q);
        if (strstr(b, "SIEMENS"))
            in->vendor = MT_VENDOR_SIEMENS;
        else if (strncmp(b, "GE ", 3) == 0 || strstr(b, "GE MEDICAL") || strstr(b, "GE HEALTH") ||
                 strstr(b, "G.E."))
            in->vendor = MT_VENDOR_GE;
        else if (strstr(b, "PHILIPS"))
            in->vendor = MT_VENDOR_PHILIPS;
        else if (strstr(b, "TOSHIBA") || strstr(b, "CANON"))
            in->vendor = MT_VENDOR_CANON;
    }

    static const char *const ss_names[] = {"SE", "IR", "GR", "EP", "RM", NULL};
    static const char *const sv_names[] = {"SK", "SS", "TRSS", "SP", "MP", "OSP", NULL};
    if (get_str(ds, MT_TAG(0x0018, 0x0020), b, sizeof b))
        in->scan_seq = parse_codes(b, ss_names);
    if (get_str(ds, MT_TAG(0x0018, 0x0021), b, sizeof b))
        in->seq_var = parse_codes(b, sv_names);
    if (get_str(ds, MT_TAG(0x0018, 0x0022), b, sizeof b))
        each_value(b, scan_opt_value, &in->scan_opt);
    if (get_str(ds, MT_TAG(0x0018, 0x0023), b, sizeof b))
        in->acq3d = strcasecmp(b, "3D") == 0;
    if (get_str(ds, MT_TAG(0x0018, 0x0024), b, sizeof b))
        in->seq_flags |= seq_flags(b, &in->venc);
    if (get_str(ds, MT_TAG(0x0018, 0x9005), b, sizeof b))
        in->seq_flags |= seq_flags(b, NULL);
    if (get_private_str(ds, 0x0019, "GEMS_ACQU_01", 0x9C, b, sizeof b))
        in->seq_flags |= seq_flags(b, NULL) & (uint16_t)~(MT_SQ_VENC | MT_SQ_PCMAG);
    if (get_private_str(ds, 0x2001, "Philips Imaging DD 001", 0x20, b, sizeof b))
        in->seq_flags |= seq_flags(b, NULL) & (uint16_t)~(MT_SQ_VENC | MT_SQ_PCMAG);
    if (get_str(ds, MT_TAG(0x0018, 0x0025), b, sizeof b))
        in->angio = toupper((unsigned char)b[0]) == 'Y';
    cs_enh(ds, in);

    in->tr = get_ds1(ds, MT_TAG(0x0018, 0x0080));
    in->flip = get_ds1(ds, MT_TAG(0x0018, 0x1314));
    in->slice_th = get_ds1(ds, MT_TAG(0x0018, 0x0050));
    in->field_t = get_ds1(ds, MT_TAG(0x0018, 0x0087));
    in->hr = get_ds1(ds, MT_TAG(0x0018, 0x1088));
    in->nominal_rr = get_ds1(ds, MT_TAG(0x0018, 0x1062));
    in->cardiac_n = get_is1(ds, MT_TAG(0x0018, 0x1090));
    in->n_temporal = get_is1(ds, MT_TAG(0x0020, 0x0105));
    in->etl = get_is1(ds, MT_TAG(0x0018, 0x0091));
    double ps[2];
    if (get_ds_n(ds, MT_TAG(0x0028, 0x0030), ps, 1))
        in->pix_sp = (float)ps[0];
    in->contrast = get_str(ds, MT_TAG(0x0018, 0x0010), b, sizeof b);
    in->bolus_start = get_tm(ds, MT_TAG(0x0018, 0x1042));
    in->series_time = get_tm(ds, MT_TAG(0x0008, 0x0031));
    uint32_t top_itype = 0;
    if (get_str(ds, MT_TAG(0x0008, 0x0008), b, sizeof b))
        top_itype = parse_itype(b);
    in->itype |= top_itype;

    mt_tag_img_t base;
    mt_tag_img_init(&base);
    classic_img(ds, be, &base);
    base.itype = top_itype;

    const mt_ds_elem_t *pf = get(ds, MT_TAG(0x5200, 0x9230));
    const mt_ds_t *shared = item0(ds, MT_TAG(0x5200, 0x9229));
    if (pf && pf->n_items > 0) {
        size_t nf = pf->n_items < MAX_PLANES ? pf->n_items : MAX_PLANES;
        for (size_t f = 0; f < nf; f++) {
            mt_tag_img_t img = base;
            if (shared)
                apply_fg(shared, be, &img, in);
            if (pf->items[f])
                apply_fg(pf->items[f], be, &img, in);
            mt_tag_inst_add_img(in, &img);
        }
    } else {
        if (shared)
            apply_fg(shared, be, &base, in);
        mt_tag_inst_add_img(in, &base);
    }

    /* Enhanced image-level attributes stand in for ScanningSequence / SequenceVariant */
    if (in->enhanced || in->enh) {
        if (in->enh & MT_EN_SPIN)
            in->scan_seq |= MT_SS_SE;
        if (in->enh & MT_EN_GRADIENT)
            in->scan_seq |= MT_SS_GR;
        if (in->enh & MT_EN_IR)
            in->scan_seq |= MT_SS_IR;
        if (in->enh & MT_EN_SSFP)
            in->seq_var |= MT_SV_SS;
        if (in->enh & MT_EN_SATREC)
            in->seq_var |= MT_SV_MP;
    }
    if (in->scan_opt & MT_SO_IR)
        in->scan_seq |= MT_SS_IR;
    int64_t rows = get_uint1(ds, MT_TAG(0x0028, 0x0010), be);
    if (rows > 0 && !isnan(in->pix_sp))
        in->fov = (float)(rows * in->pix_sp);
    return 0;
}

/* ---- what the extractor reads (mt_tag_wanted) ----
 * Every tag the functions above look up, at any depth, sorted. The node keeps only these of
 * each incoming header (tag/capture.c): a full tree of a CMR header is ~100-200 elements, of
 * which the extractor reads a few dozen. A tag read above but missing here would silently
 * change the features: tests/unit/node/tag/capture.c compares the features of the capture and
 * of the full parse. */
static const uint32_t wanted[] = {
    MT_TAG(0x0008, 0x0008), MT_TAG(0x0008, 0x0016), MT_TAG(0x0008, 0x002A),
    MT_TAG(0x0008, 0x0031), MT_TAG(0x0008, 0x0032), MT_TAG(0x0008, 0x0060),
    MT_TAG(0x0008, 0x0070), MT_TAG(0x0008, 0x1030), MT_TAG(0x0008, 0x103E),
    MT_TAG(0x0008, 0x9007), MT_TAG(0x0008, 0x9208), MT_TAG(0x0008, 0x9209),
    MT_TAG(0x0018, 0x0010), MT_TAG(0x0018, 0x0020), MT_TAG(0x0018, 0x0021),
    MT_TAG(0x0018, 0x0022), MT_TAG(0x0018, 0x0023), MT_TAG(0x0018, 0x0024),
    MT_TAG(0x0018, 0x0025), MT_TAG(0x0018, 0x0050), MT_TAG(0x0018, 0x0080),
    MT_TAG(0x0018, 0x0081), MT_TAG(0x0018, 0x0082), MT_TAG(0x0018, 0x0087),
    MT_TAG(0x0018, 0x0091), MT_TAG(0x0018, 0x1030), MT_TAG(0x0018, 0x1042),
    MT_TAG(0x0018, 0x1060), MT_TAG(0x0018, 0x1062), MT_TAG(0x0018, 0x1088),
    MT_TAG(0x0018, 0x1090), MT_TAG(0x0018, 0x1314), MT_TAG(0x0018, 0x9005),
    MT_TAG(0x0018, 0x9008), MT_TAG(0x0018, 0x9009), MT_TAG(0x0018, 0x9017),
    MT_TAG(0x0018, 0x9021), MT_TAG(0x0018, 0x9024), MT_TAG(0x0018, 0x9074),
    MT_TAG(0x0018, 0x9079), MT_TAG(0x0018, 0x9082), MT_TAG(0x0018, 0x9112),
    MT_TAG(0x0018, 0x9114), MT_TAG(0x0018, 0x9115), MT_TAG(0x0018, 0x9118),
    MT_TAG(0x0018, 0x9197), MT_TAG(0x0018, 0x9217), MT_TAG(0x0018, 0x9226),
    MT_TAG(0x0020, 0x000D), MT_TAG(0x0020, 0x000E), MT_TAG(0x0020, 0x0011),
    MT_TAG(0x0020, 0x0032), MT_TAG(0x0020, 0x0037), MT_TAG(0x0020, 0x0052),
    MT_TAG(0x0020, 0x0100), MT_TAG(0x0020, 0x0105), MT_TAG(0x0020, 0x9056),
    MT_TAG(0x0020, 0x9111), MT_TAG(0x0020, 0x9113), MT_TAG(0x0020, 0x9116),
    MT_TAG(0x0020, 0x9128), MT_TAG(0x0020, 0x9153), MT_TAG(0x0028, 0x0010),
    MT_TAG(0x0028, 0x0030), MT_TAG(0x0028, 0x9110), MT_TAG(0x2005, 0x140F),
    MT_TAG(0x5200, 0x9229), MT_TAG(0x5200, 0x9230),
};

/* PS3.5 §7.8.1: the private blocks get_private_str searches, creators and the elements. */
static bool wanted_private(uint32_t tag)
{
    uint16_t g = MT_TAG_GROUP(tag), el = MT_TAG_ELEM(tag);
    if (g != 0x0019 && g != 0x2001)
        return false;
    if (el >= 0x0010 && el <= 0x00FF)
        return true; /* private creators */
    return (el >> 8) >= 0x10 && (el & 0xFF) == (g == 0x0019 ? 0x9C : 0x20);
}

bool mt_tag_wanted_next(uint32_t tag, uint32_t *prev, unsigned *cursor)
{
    const unsigned n = sizeof wanted / sizeof wanted[0];
    if (tag < *prev)
        return mt_tag_wanted(NULL, tag); /* out of order: the cursor is past it */
    *prev = tag;
    unsigned i = *cursor;
    while (i < n && wanted[i] < tag)
        i++;
    *cursor = i;
    return (i < n && wanted[i] == tag) || wanted_private(tag);
}

bool mt_tag_wanted(void *user, uint32_t tag)
{
    (void)user;
    size_t lo = 0, hi = sizeof wanted / sizeof wanted[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (wanted[mid] == tag)
            return true;
        if (wanted[mid] < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return wanted_private(tag);
}
