/*
 * pixel.h - native (uncompressed) pixel data to an 8-bit display image: the part of the PS3.4
 * Annex N / PS3.3 C.11 pipeline a rendered DICOMweb response needs. PURE: no I/O.
 *
 *   grayscale  MONOCHROME1/2, 8 or 16 bits allocated, signed or not, any Bits Stored:
 *              Modality LUT (Rescale Slope/Intercept), then a VOI window (PS3.3 C.11.2.1.2:
 *              LINEAR, LINEAR_EXACT, SIGMOID) or, without one, the frame's value range;
 *              MONOCHROME1 inverted. Output: 1 channel.
 *   colour     RGB (planar configuration 0 or 1), YBR_FULL (0 or 1) and YBR_FULL_422 (its native
 *              form: Y1 Y2 Cb Cr per pixel pair, PS3.3 C.7.6.3.1.2) converted to RGB with the
 *              PS3.3 C.7.6.3.1.2 (ITU-R BT.601 full range) equations; PALETTE COLOR through its
 *              Red/Green/Blue Palette Color LUTs (8- or 16-bit entries; an index below the first
 *              mapped value takes entry 0, above the last the last entry). 8 or 16 bits
 *              allocated; 16-bit samples are shifted down to their 8 most significant stored
 *              bits. Output: 3 channels, interleaved. The VOI window does not apply to colour.
 *   not here   segmented palettes, YBR_PARTIAL_*, YBR_ICT/RCT (compressed only), bit depths
 *              other than 8/16 allocated, more than 1 or 3 samples: mt_pixel_render says why.
 *
 * Geometry: mt_pixel_region crops (sx, sy, sw, sh; a negative sw/sh flips, as PS3.18
 * §8.3.5.1.3's viewport source region does) and scales by area averaging (down) or nearest
 * neighbour (up).
 */
#ifndef MT_DICOM_PIXEL_H
#define MT_DICOM_PIXEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MT_PI_MONOCHROME1,
    MT_PI_MONOCHROME2,
    MT_PI_RGB,
    MT_PI_YBR_FULL,
    MT_PI_YBR_FULL_422,
    MT_PI_PALETTE_COLOR,
    MT_PI_UNSUPPORTED,
} mt_pi_t;

/* Photometric Interpretation (0028,0004) text (padding tolerated) to mt_pi_t. */
mt_pi_t mt_pixel_pi(const char *s);

typedef struct mt_palette {
    const uint8_t *data[3]; /* Red, Green, Blue Palette Color LUT Data (0028,1201-1203) */
    size_t len[3];          /* their byte lengths */
    uint32_t n;             /* descriptor value 1: entries (0 means 65536) */
    int32_t first;          /* descriptor value 2: first mapped pixel value */
    int bits;               /* descriptor value 3: 8 or 16 bits per entry */
    bool big_endian;        /* 16-bit entries in big-endian byte order */
} mt_palette_t;

typedef struct mt_pixel_desc {
    int rows, cols;
    int spp;            /* Samples per Pixel */
    int bits_allocated; /* 8 or 16 */
    int bits_stored;    /* <= bits_allocated; 0 = bits_allocated */
    bool is_signed;     /* Pixel Representation 1 */
    int planar;         /* Planar Configuration: 0 interleaved, 1 by plane */
    mt_pi_t pi;
    double slope, intercept; /* Modality LUT; slope 0 is taken as 1 */
    mt_palette_t palette;    /* PALETTE COLOR only */
} mt_pixel_desc_t;

typedef enum { MT_VOI_LINEAR, MT_VOI_LINEAR_EXACT, MT_VOI_SIGMOID } mt_voi_fn_t;

typedef struct mt_window {
    bool set; /* false: the frame's value range (after the Modality LUT) */
    double center, width;
    mt_voi_fn_t fn;
} mt_window_t;

/* Bytes of one frame of native pixel data (YBR_FULL_422: 2 samples per pixel); 0 when the
 * description is not one mt_pixel_render can render (why says what). */
size_t mt_pixel_frame_bytes(const mt_pixel_desc_t *d, const char **why);

/* Render one frame (little-endian samples, n >= mt_pixel_frame_bytes) into out, which holds
 * rows * cols * 3 bytes. *channels is set to 1 (grey) or 3 (RGB interleaved). Returns 0, or
 * MT_EUNSUPPORTED with *why a static reason, or MT_EINVAL when the frame is too short. */
int mt_pixel_render(const mt_pixel_desc_t *d, const uint8_t *frame, size_t n,
                    const mt_window_t *win, uint8_t *out, int *channels, const char **why);

/* Crop src (w x h, ch channels) to the region (sx, sy, sw, sh) (sw/sh negative: the region
 * ends at sx/sy and is flipped) clipped to the image, and scale it to ow x oh into dst
 * (ow * oh * ch bytes). MT_EINVAL when the clipped region is empty. */
int mt_pixel_region(const uint8_t *src, int w, int h, int ch, int sx, int sy, int sw, int sh,
                    uint8_t *dst, int ow, int oh);

/* The size fitting a sw x sh region into vw x vh keeping its aspect ratio (vw or vh <= 0:
 * unconstrained in that direction; both <= 0: the region's size). Never below 1x1. */
void mt_pixel_fit(int sw, int sh, int vw, int vh, int *ow, int *oh);

#endif
