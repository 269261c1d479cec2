/*
 * tag.h - CMR series tagging (shared/spec/cmr-tagging.md, "the spec"). PURE: no I/O, no clock.
 *
 * Pipeline (one direction, each stage a plain struct that tests can build by hand):
 *
 *   mt_ds_t (one instance, original header)            extract.c  mt_tag_extract()
 *     -> mt_tag_inst_t   non-identifying features: vocabulary bits of the description, coded
 *                        sequence attributes, timing, geometry of each image plane (an
 *                        Enhanced MR instance gives one plane per frame, shared functional
 *                        groups overridden by per-frame ones, spec §7)
 *   mt_tag_series_add() x N, mt_tag_series_finish()    series.c
 *     -> mt_tag_series_t stats of §3.1 (npos, norients, n_tt, n_ti, n_te, n_dyn, spans, ...)
 *   mt_tag_series_classify()                            cmr.c
 *     -> family, family confidence, evidence (§3.2, §4.1, §4.2 precedence and conflicts)
 *   mt_tag_study_run()                                  cmr.c + geom.c
 *     -> the exam-level pass: companions (§7), contrast timeline (§4.3), SAX stack and long
 *        axis L, views by rotation about L with the joint fit (§5), stress/rest (§6),
 *        confidence and `unknown` (§8); writes mt_tag_result_t into each series and bumps
 *        its revision when the decision changes (§8: later series revise earlier tags).
 *
 * Evidence is a short text, rules separated by one space, each `rule(key=value key=value)`.
 * It never contains a comma, so the offline CSV needs no quoting.
 *
 * Times: the features carry seconds since midnight (AcquisitionTime / SeriesTime); the study
 * pass turns them into seconds since the study's first series and only relative times reach
 * the evidence. Dates are not used (an exam crossing midnight is handled by unwrapping times
 * that go back more than 12 h).
 */
#ifndef MT_TAG_TAG_H
#define MT_TAG_TAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dicom/ds.h"

/* Bumped whenever a rule, threshold or the vocabulary changes (re-tag with --reindex). */
#define MT_TAG_VERSION "cmr-1.0"

/* ---- vocabulary (vocab.def) ---- */
enum mt_tag_word {
#define MT_TAGW(id, s, k) MT_W_##id,
#include "vocab.def"
#undef MT_TAGW
    MT_W_COUNT
};

#define MT_TAG_WORD_WORDS ((MT_W_COUNT + 63) / 64)
typedef struct mt_tag_words {
    uint64_t w[MT_TAG_WORD_WORDS];
} mt_tag_words_t;

static inline bool mt_tag_words_has(const mt_tag_words_t *s, int id)
{
    return (s->w[id >> 6] >> (id & 63)) & 1u;
}
static inline void mt_tag_words_set(mt_tag_words_t *s, int id)
{
    s->w[id >> 6] |= (uint64_t)1 << (id & 63);
}
/* Tokenise a description (§3.1) and OR the matching vocabulary words into *out. */
void mt_tag_words_scan(const char *desc, mt_tag_words_t *out);
const char *mt_tag_word_str(int id);

/* ---- coded header attributes ---- */
enum { /* ScanningSequence */
    MT_SS_SE = 1, MT_SS_IR = 2, MT_SS_GR = 4, MT_SS_EP = 8, MT_SS_RM = 16
};
enum { /* SequenceVariant */
    MT_SV_SK = 1, MT_SV_SS = 2, MT_SV_TRSS = 4, MT_SV_SP = 8, MT_SV_MP = 16, MT_SV_OSP = 32
};
enum { /* ScanOptions */
    MT_SO_CG = 1, MT_SO_PPG = 2, MT_SO_RG = 4, MT_SO_FS = 8, MT_SO_SAT = 16, MT_SO_IR = 32
};
enum { /* SequenceName / PulseSequenceName / vendor private sequence names */
    MT_SQ_TFI = 1,      /* Siemens *tfi (TrueFISP), bSSFP names (FIESTA, BTFE, BFFE) */
    MT_SQ_FL = 2,       /* spoiled GRE: *fl, FGRE, FFE */
    MT_SQ_TFL = 4,      /* turbo FLASH (IR/SR prepared single shot): *tfl, TFE */
    MT_SQ_TSE = 8,      /* *tse, FSE, TSE, SE */
    MT_SQ_HASTE = 16,   /* *h2d, SSFSE */
    MT_SQ_VENC = 32,    /* *fl2d1_v<venc>in|through|rl|ap|fh: phase-contrast phase */
    MT_SQ_PCMAG = 64,   /* *fl2d1r<n>: phase-contrast magnitude partner */
    MT_SQ_3D = 128,     /* *..3d.. */
    MT_SQ_EPI = 256,    /* *epfid, EPI */
    MT_SQ_FL3D = 512,   /* *fl3d */
};
enum { /* ImageType values (classic and Enhanced), any position */
    MT_IT_ORIGINAL = 1u << 0,
    MT_IT_DERIVED = 1u << 1,
    MT_IT_SECONDARY = 1u << 2,
    MT_IT_M = 1u << 3,        /* M, MAG, MAGNITUDE, M_FFE, M_SE, M_IR ... */
    MT_IT_P = 1u << 4,        /* P, PHASE */
    MT_IT_R = 1u << 5,        /* R, REAL, R_IR (Philips PSIR real image) */
    MT_IT_PSIR = 1u << 6,
    MT_IT_MOCO = 1u << 7,
    MT_IT_T1MAP = 1u << 8,    /* T1 MAP, T1MAP, T1_MAP */
    MT_IT_T2MAP = 1u << 9,
    MT_IT_T2SMAP = 1u << 10,  /* T2*, T2STAR, R2*, T2_STAR_MAP, R2_STAR_MAP */
    MT_IT_VEL = 1u << 11,     /* VELOCITY, VELOCITY MAP, PHASE MAP */
    MT_IT_PCA = 1u << 12,     /* PCA, PHASE CONTRAST, M_PCA */
    MT_IT_LOCALIZER = 1u << 13,
    MT_IT_CINE = 1u << 14,
    MT_IT_PERFUSION = 1u << 15,
    MT_IT_STRESS = 1u << 16,
    MT_IT_REST = 1u << 17,
    MT_IT_FLOW_ENC = 1u << 18,
    MT_IT_ANGIO = 1u << 19,
    MT_IT_MIP = 1u << 20,     /* MIP, MPR, PROJECTION IMAGE */
    MT_IT_TAGGING = 1u << 21,
    MT_IT_IR = 1u << 22,      /* M_IR, R_IR */
    MT_IT_SUB = 1u << 23,     /* SUB, SUBTRACTION */
    MT_IT_T2STAR_W = 1u << 24, /* Enhanced value 3 T2_STAR (weighting) */
    MT_IT_SCREENSHOT = 1u << 25,
};
enum { /* Enhanced MR image-level / frame-level booleans */
    MT_EN_SSFP = 1,        /* SteadyStatePulseSequence FREE_PRECESSION / LONGITUDINAL... */
    MT_EN_SATREC = 2,      /* SaturationRecovery YES */
    MT_EN_IR = 4,          /* InversionRecovery YES */
    MT_EN_T2PREP = 8,      /* T2Preparation YES */
    MT_EN_SPIN = 16,       /* EchoPulseSequence SPIN (or BOTH) */
    MT_EN_GRADIENT = 32,   /* EchoPulseSequence GRADIENT (or BOTH) */
    MT_EN_VENC_SEQ = 64,   /* MRVelocityEncodingSequence present */
    MT_EN_FLOW_ENC = 128,  /* AcquisitionContrast FLOW_ENCODED */
    MT_EN_PHASE = 256,     /* ComplexImageComponent PHASE */
    MT_EN_PERF = 512,      /* AcquisitionContrast PERFUSION */
};
enum mt_tag_vendor { MT_VENDOR_OTHER, MT_VENDOR_SIEMENS, MT_VENDOR_GE, MT_VENDOR_PHILIPS,
                     MT_VENDOR_CANON };

/* One image plane: a classic instance, or one frame of an Enhanced MR instance. Fields that
 * are absent are NaN (float) or -1 (int). */
typedef struct mt_tag_img {
    float iop[6];
    float ipp[3];
    float tt;      /* TriggerTime / NominalCardiacTriggerDelayTime, ms */
    float ti;      /* InversionTime, ms (first of InversionTimes) */
    float te;      /* EchoTime / EffectiveEchoTime, ms */
    float acq;     /* AcquisitionTime / FrameAcquisitionDateTime, s since midnight */
    int32_t tpos;  /* TemporalPositionIdentifier / TemporalPositionIndex */
    int32_t stack; /* StackID (as a number when numeric, else a small hash) */
    uint32_t itype; /* this plane's ImageType / FrameType bits */
} mt_tag_img_t;

/* Per-instance features (non-identifying; no names, dates or free text). */
typedef struct mt_tag_inst {
    char study_uid[65];
    char series_uid[65];
    int32_t series_number;
    uint64_t for_hash;      /* FrameOfReferenceUID, hashed */
    uint64_t protocol_hash; /* ProtocolName, hashed: links companions (§7) */
    mt_tag_words_t desc;    /* SeriesDescription + ProtocolName */
    mt_tag_words_t study_desc;
    bool has_desc;          /* SeriesDescription non-empty */
    bool secondary_capture; /* SOP Class is a Secondary Capture */
    bool enhanced;          /* Enhanced / Legacy Converted Enhanced MR */
    bool not_mr;            /* not an MR image SOP class / modality */
    uint8_t vendor;
    uint16_t scan_seq, seq_var, scan_opt, seq_flags, enh;
    uint32_t itype; /* union over frames */
    bool acq3d;     /* MRAcquisitionType 3D */
    bool angio;     /* AngioFlag Y */
    float venc;     /* cm/s from SequenceName or VelocityEncodingMaximumValue; NaN */
    float tr, flip, slice_th, pix_sp, fov, field_t, hr, nominal_rr;
    int32_t cardiac_n;      /* CardiacNumberOfImages, -1 */
    int32_t n_temporal;     /* NumberOfTemporalPositions, -1 */
    int32_t etl;            /* EchoTrainLength, -1 */
    bool contrast;          /* ContrastBolusAgent non-empty */
    float bolus_start;      /* ContrastBolusStartTime, s since midnight; NaN */
    float series_time;      /* SeriesTime, s since midnight; NaN */
    size_t n_img;
    mt_tag_img_t *img;      /* owned (mt_malloc); n_img >= 1 for an image */
} mt_tag_inst_t;

/* Extract the features of one instance from its (original, not de-identified) header.
 * big_endian: the tree holds values in big endian byte order (Explicit VR Big Endian file).
 * Returns 0, or MT_EINVAL when there is no SeriesInstanceUID. Caller disposes. */
int mt_tag_extract(const mt_ds_t *ds, bool big_endian, mt_tag_inst_t *out);
/* Whether the extractor reads tag (an mt_ds_keep_fn; user unused): a tree of only these gives
 * the same features as the full one (node/tag/capture.c builds it). */
bool mt_tag_wanted(void *user, uint32_t tag);
/* mt_tag_wanted for tags met in ascending order (a data set's top level): *cursor (0 at the
 * start) remembers where the last one was in the sorted list, so each call costs a step or two
 * instead of a binary search. A tag below the previous one falls back to the search. */
bool mt_tag_wanted_next(uint32_t tag, uint32_t *prev, unsigned *cursor);
void mt_tag_inst_init(mt_tag_inst_t *in); /* zero + NaN/-1 defaults, no planes */
void mt_tag_inst_dispose(mt_tag_inst_t *in);
/* Append one image plane (copied) to an instance (tests and the extractor). */
void mt_tag_inst_add_img(mt_tag_inst_t *in, const mt_tag_img_t *img);
void mt_tag_img_init(mt_tag_img_t *img);

/* ---- tags ---- */
enum mt_tag_family {
    MT_FAM_NONE = 0, /* unknown */
    MT_FAM_OTHER, MT_FAM_LOCALIZER, MT_FAM_FLOW, MT_FAM_PERF, MT_FAM_T1MAP, MT_FAM_TISCOUT,
    MT_FAM_T2MAP, MT_FAM_T2STAR, MT_FAM_LGE, MT_FAM_CINE, MT_FAM_MRA, MT_FAM_BLACKBLOOD,
    MT_FAM_COUNT
};
enum mt_tag_view { MT_VIEW_NONE = 0, MT_VIEW_SAX, MT_VIEW_2CH, MT_VIEW_3CH, MT_VIEW_4CH,
                   MT_VIEW_OTHER, MT_VIEW_COUNT };
enum mt_tag_sub { MT_SUB_NONE = 0, MT_SUB_STRESS, MT_SUB_REST, MT_SUB_NATIVE, MT_SUB_POST,
                  MT_SUB_UNDECIDED };

const char *mt_tag_family_name(int fam); /* "cine", "lge", ... ; "unknown" for NONE */
const char *mt_tag_view_name(int view);  /* "sax", "2ch", ... ; "" for NONE */

/* The final per-series decision (§9.1). tag is one of the exact strings of §2. */
typedef struct mt_tag_result {
    char tag[24];
    int family, view, sub;
    float confidence; /* 0..1, 2 decimals */
    bool multi_view;
    unsigned revision; /* bumped each time tag or view changes after the first decision */
    char evidence[768];
} mt_tag_result_t;

/* ---- series ---- */
#define MT_TAG_MAX_CLUSTERS 8

typedef struct mt_tag_cluster { /* images of one orientation (normals within 5 degrees) */
    double n[3];                /* mean unit normal */
    unsigned n_img, npos;
    double pos_min, pos_max, spacing; /* positions along n (mm); median slice spacing */
    int view;                   /* assigned by the study pass */
    double alpha, nl;           /* rotation about L and |n.L| (study pass) */
} mt_tag_cluster_t;

typedef struct mt_tag_series {
    /* constants (from the first instance) and unions */
    mt_tag_inst_t h;      /* header features; h.img/h.n_img hold every plane of the series */
    size_t n_inst;
    /* §3.1 statistics (mt_tag_series_finish) */
    unsigned n_img, npos, norients, n_tt, n_ti, n_te, n_dyn;
    unsigned n_tt_pos, n_ti_pos, n_te_pos; /* max distinct values at one position */
    unsigned n_pos_dyn;        /* positions repeated in the dynamic series */
    double tt_span, ti_min, ti_max, te_min, te_max, rr;
    bool ti_even_step;         /* sorted distinct TIs at one position: near-constant step */
    double dyn_dt;             /* median AcquisitionTime step between repeats (s), NaN */
    double t_start;            /* earliest AcquisitionTime, else SeriesTime (s since midnight) */
    unsigned n_mag, n_phase, n_real;
    bool orthogonal_planes;    /* >= 2 orientations near two different patient axes */
    mt_tag_cluster_t cl[MT_TAG_MAX_CLUSTERS];
    unsigned n_cl;
    /* per-series decision (mt_tag_series_classify) */
    int fam;
    float fam_conf;
    bool physics;              /* a physics rule decided the family */
    bool name_conflict;
    char ev[512];
    /* study pass */
    double t_rel;              /* seconds since the study's first series */
    int link;                  /* companion group id (index of the group's first series) */
    mt_tag_result_t res;
    bool decided;              /* res holds a previous decision */
} mt_tag_series_t;

void mt_tag_series_init(mt_tag_series_t *s);
void mt_tag_series_dispose(mt_tag_series_t *s);
/* Add an instance's features (copied) to the series; the first instance sets the constants. */
void mt_tag_series_add(mt_tag_series_t *s, const mt_tag_inst_t *in);
/* Compute the §3.1 statistics. Call after the last add (and again after more adds). */
void mt_tag_series_finish(mt_tag_series_t *s);
/* Family rules and precedence (§3.2, §4.1, §4.2) on one finished series. */
void mt_tag_series_classify(mt_tag_series_t *s);

/* ---- geometry (§5), geom.c ---- */
/* Unit normal r x c of an IOP; false when degenerate. */
bool mt_tag_normal(const float iop[6], double n[3]);
/* §5.1: 'A'xial, 'S'agittal, 'C'oronal or 'O'blique; *dbl set for double-oblique. */
char mt_tag_patient_plane(const double n[3], bool *dbl);
/* §5.4: the rotation alpha (degrees, [0,180)) of a long-axis plane normal about L. */
double mt_tag_alpha(const double L[3], const double n[3]);
/* §5.4 rule 1: view of a single LAX plane from alpha; *conf set. */
int mt_tag_view_from_alpha(double alpha, float *conf);
/* §5.4 rule 2, joint fit: alphas of k clusters -> views[k], fitted delta, confidence.
 * Returns false when k == 0. At most MT_TAG_MAX_LAX clusters. */
#define MT_TAG_MAX_LAX 16
bool mt_tag_joint_fit(const double *alpha, size_t k, int *views, double *delta, float *conf);

/* ---- study ---- */
typedef struct mt_tag_study {
    mt_tag_series_t **s; /* not owned */
    size_t n;
    bool stress_exam;    /* StudyDescription says stress (set by the caller or from words) */
    bool has_L;
    double L[3];
    bool L_from_lax;
    int sax_series;      /* index of the SAX stack series, -1 */
    double t_contrast;   /* relative seconds; NaN when none */
} mt_tag_study_t;

/* Run the exam-level pass over finished, classified series (classify is called for any
 * series whose fam is still unset). Fills each series' res. */
void mt_tag_study_run(mt_tag_study_t *st);

/* One CSV line "SeriesInstanceUID,tag,view,confidence,evidence" (no newline) into out. */
int mt_tag_format_line(const mt_tag_series_t *s, char *out, size_t outsz);

#endif
