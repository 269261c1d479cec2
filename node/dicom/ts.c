/*
 * ts.c - the transfer syntaxes mitral knows (PS3.5 §10, PS3.6 Table A-1), with how each encodes
 * the data set: VR explicit or implicit, byte order, deflated, pixel data encapsulated. PURE.
 *
 * The association layer accepts any of these for a storage context (stored as sent, pixel data
 * passed through untouched); the data set codec (ds_read.c, ds_write.c) reads them all.
 * Retired syntaxes are kept so that old archives can still be received.
 */
#include <string.h>

#include "ds.h"

#define TS_NATIVE(uid, name, expl, be, defl, ret) {uid, name, expl, be, defl, false, ret}
#define TS_ENCAP(uid, name, ret) {uid, name, true, false, false, true, ret}

static const mt_ts_t ts_table[] = {
    TS_NATIVE("1.2.840.10008.1.2", "Implicit VR Little Endian", false, false, false, false),
    TS_NATIVE("1.2.840.10008.1.2.1", "Explicit VR Little Endian", true, false, false, false),
    TS_ENCAP("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian",
             false),
    TS_NATIVE("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", true, false, true,
              false),
    TS_NATIVE("1.2.840.10008.1.2.2", "Explicit VR Big Endian", true, true, false, true),
    TS_ENCAP("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", false),
    TS_ENCAP("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", false),
    TS_ENCAP("1.2.840.10008.1.2.4.52", "JPEG Extended (Process 3 & 5)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.53", "JPEG Spectral Selection, Non-Hierarchical (6 & 8)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.54", "JPEG Spectral Selection, Non-Hierarchical (7 & 9)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.55", "JPEG Full Progression, Non-Hierarchical (10 & 12)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.56", "JPEG Full Progression, Non-Hierarchical (11 & 13)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", false),
    TS_ENCAP("1.2.840.10008.1.2.4.58", "JPEG Lossless, Non-Hierarchical (Process 15)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.59", "JPEG Extended, Hierarchical (16 & 18)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.60", "JPEG Extended, Hierarchical (17 & 19)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.61", "JPEG Spectral Selection, Hierarchical (20 & 22)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.62", "JPEG Spectral Selection, Hierarchical (21 & 23)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.63", "JPEG Full Progression, Hierarchical (24 & 26)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.64", "JPEG Full Progression, Hierarchical (25 & 27)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.65", "JPEG Lossless, Hierarchical (Process 28)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.66", "JPEG Lossless, Hierarchical (Process 29)", true),
    TS_ENCAP("1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction",
             false),
    TS_ENCAP("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", false),
    TS_ENCAP("1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression", false),
    TS_ENCAP("1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)", false),
    TS_ENCAP("1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", false),
    TS_ENCAP("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component (Lossless Only)", false),
    TS_ENCAP("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component", false),
    TS_NATIVE("1.2.840.10008.1.2.4.94", "JPIP Referenced", true, false, false, false),
    TS_NATIVE("1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate", true, false, true, false),
    TS_ENCAP("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", false),
    TS_ENCAP("1.2.840.10008.1.2.4.100.1", "Fragmentable MPEG2 Main Profile / Main Level", false),
    TS_ENCAP("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", false),
    TS_ENCAP("1.2.840.10008.1.2.4.101.1", "Fragmentable MPEG2 Main Profile / High Level", false),
    TS_ENCAP("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", false),
    TS_ENCAP("1.2.840.10008.1.2.4.102.1", "Fragmentable MPEG-4 AVC/H.264 High Profile 4.1", false),
    TS_ENCAP("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile 4.1", false),
    TS_ENCAP("1.2.840.10008.1.2.4.103.1", "Fragmentable MPEG-4 AVC/H.264 BD-compatible 4.1",
             false),
    TS_ENCAP("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile 4.2 For 2D Video", false),
    TS_ENCAP("1.2.840.10008.1.2.4.104.1", "Fragmentable MPEG-4 AVC/H.264 4.2 For 2D Video",
             false),
    TS_ENCAP("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile 4.2 For 3D Video", false),
    TS_ENCAP("1.2.840.10008.1.2.4.105.1", "Fragmentable MPEG-4 AVC/H.264 4.2 For 3D Video",
             false),
    TS_ENCAP("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile 4.2", false),
    TS_ENCAP("1.2.840.10008.1.2.4.106.1", "Fragmentable MPEG-4 AVC/H.264 Stereo 4.2", false),
    TS_ENCAP("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", false),
    TS_ENCAP("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", false),
    TS_ENCAP("1.2.840.10008.1.2.4.110", "JPEG XL Lossless", false),
    TS_ENCAP("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", false),
    TS_ENCAP("1.2.840.10008.1.2.4.112", "JPEG XL", false),
    TS_ENCAP("1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 (Lossless Only)", false),
    TS_ENCAP("1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL (Lossless Only)",
             false),
    TS_ENCAP("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression", false),
    TS_NATIVE("1.2.840.10008.1.2.4.204", "JPIP HTJ2K Referenced", true, false, false, false),
    TS_NATIVE("1.2.840.10008.1.2.4.205", "JPIP HTJ2K Referenced Deflate", true, false, true,
              false),
    TS_ENCAP("1.2.840.10008.1.2.5", "RLE Lossless", false),
    TS_ENCAP("1.2.840.10008.1.2.8.1", "Deflated Image Frame Compression", false),
};

#define TS_COUNT (sizeof ts_table / sizeof ts_table[0])

const mt_ts_t *const mt_ts_implicit_le = &ts_table[0];
const mt_ts_t *const mt_ts_explicit_le = &ts_table[1];

/* Length of uid without the NUL/space padding a UI value may carry. */
static size_t uid_len(const char *uid)
{
    size_t n = strlen(uid);
    while (n && (uid[n - 1] == ' ' || uid[n - 1] == '\0'))
        n--;
    return n;
}

const mt_ts_t *mt_ts_find(const char *uid)
{
    if (!uid)
        return NULL;
    size_t n = uid_len(uid);
    for (size_t i = 0; i < TS_COUNT; i++)
        if (strlen(ts_table[i].uid) == n && memcmp(ts_table[i].uid, uid, n) == 0)
            return &ts_table[i];
    return NULL;
}

const mt_ts_t *mt_ts_all(size_t *n)
{
    *n = TS_COUNT;
    return ts_table;
}
