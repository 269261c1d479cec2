/*
 * pixel.c - native pixel data to an 8-bit display image (grey or RGB), cropping and scaling.
 * Design and coverage: pixel.h. PURE. Called by node/http/wado.c for rendered resources.
 */
#include "pixel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../util/alloc.h"
#include "../util/err.h"

mt_pi_t mt_pixel_pi(const char *s)
{
    static const struct {
        const char *name;
        mt_pi_t pi;
    } names[] = {
        {"MONOCHROME1", MT_PI_MONOCHROME1},
        {"MONOCHROME2", MT_PI_MONOCHROME2},
        {"RGB", MT_PI_RGB},
        {"YBR_FULL", MT_PI_YBR_FULL},
        {"YBR_FULL_422", MT_PI_YBR_FULL_422},
        {"PALETTE COLOR", MT_PI_PALETTE_COLOR},
    };
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0)
            return names[i].pi;
    return MT_PI_UNSUPPORTED;
}

static int stored_bits(const mt_pixel_desc_t *d)
{
    return d->bits_stored > 0 && d->bits_stored <= d->bits_allocated ? d->bits_stored
                                                                     : d->bits_allocated;
}

size_t mt_pixel_frame_bytes(const mt_pixel_desc_t *d, const char **why)
{
    *why = NULL;
    if (d->rows <= 0 || d->cols <= 0) {
        *why = "no Rows/Columns";
        return 0;
    }
    if (d->bits_allocated != 8 && d->bits_allocated != 16) {
        *why = "Bits Allocated other than 8 or 16";
        return 0;
    }
    int want_spp = 1;
    switch (d->pi) {
    case MT_PI_MONOCHROME1:
    case MT_PI_MONOCHROME2:
    case MT_PI_PALETTE_COLOR:
        break;
    case MT_PI_RGB:
    case MT_PI_YBR_FULL:
    case MT_PI_YBR_FULL_422:
        want_spp = 3;
        break;
    default:
        *why = "Photometric Interpretation other than MONOCHROME1/2, RGB, YBR_FULL, "
               "YBR_FULL_422, PALETTE COLOR";
        return 0;
    }
    if (d->spp != want_spp) {
        *why = "Samples per Pixel does not match the Photometric Interpretation";
        return 0;
    }
    size_t px = (size_t)d->rows * (size_t)d->cols, bytes = (size_t)d->bits_allocated / 8;
    if (d->pi == MT_PI_YBR_FULL_422) {
        if (d->cols % 2 || d->planar) {
            *why = "YBR_FULL_422 with an odd column count or planar configuration 1";
            return 0;
        }
        return px * 2 * bytes; /* Y1 Y2 Cb Cr for each pair */
    }
    return px * (size_t)want_spp * bytes;
}

/* Sample i (0-based, in samples) as an int: masked to Bits Stored, sign-extended if signed. */
static int32_t sample(const mt_pixel_desc_t *d, const uint8_t *p, size_t i)
{
    int bs = stored_bits(d);
    uint32_t u = d->bits_allocated == 8 ? p[i] : (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;
    uint32_t mask = bs >= 32 ? 0xFFFFFFFFu : (1u << bs) - 1;
    u &= mask;
    if (d->is_signed && (u & (1u << (bs - 1))))
        return (int32_t)(u | ~mask);
    return (int32_t)u;
}

/* A colour sample to 8 bits: its 8 most significant stored bits. */
static uint8_t to8(const mt_pixel_desc_t *d, int32_t v)
{
    int shift = stored_bits(d) - 8;
    if (v < 0)
        v = 0;
    if (shift > 0)
        v >>= shift;
    return (uint8_t)(v > 255 ? 255 : v);
}

static uint8_t clamp8(double v)
{
    return (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)(v + 0.5));
}

/* PS3.3 C.11.2.1.2 (LINEAR, LINEAR_EXACT, SIGMOID) to 0..255. */
static uint8_t voi(const mt_window_t *w, double x)
{
    double c = w->center, wd = w->width, t;
    switch (w->fn) {
    case MT_VOI_LINEAR_EXACT:
        if (wd <= 0)
            return x > c ? 255 : 0;
        t = (x - c) / wd + 0.5;
        break;
    case MT_VOI_SIGMOID:
        if (wd <= 0)
            return x > c ? 255 : 0;
        t = 1.0 / (1.0 + exp(-4.0 * (x - c) / wd));
        break;
    default:
        if (wd <= 1)
            return x > c - 0.5 ? 255 : 0;
        t = (x - (c - 0.5)) / (wd - 1) + 0.5;
        break;
    }
    return clamp8(t * 255.0);
}

static int render_grey(const mt_pixel_desc_t *d, const uint8_t *f, const mt_window_t *win,
                       uint8_t *out)
{
    size_t np = (size_t)d->rows * (size_t)d->cols;
    double slope = d->slope == 0 ? 1 : d->slope;
    mt_window_t w = *win;
    if (!w.set) { /* the frame's range after the Modality LUT */
        double lo = 1e300, hi = -1e300;
        for (size_t i = 0; i < np; i++) {
            double v = sample(d, f, i) * slope + d->intercept;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        w.fn = MT_VOI_LINEAR_EXACT;
        w.center = (lo + hi) / 2;
        w.width = hi - lo;
        if (w.width <= 0) { /* a flat frame: mid grey */
            memset(out, 128, np);
            return 0;
        }
    }
    bool invert = d->pi == MT_PI_MONOCHROME1;
    for (size_t i = 0; i < np; i++) {
        uint8_t o = voi(&w, sample(d, f, i) * slope + d->intercept);
        out[i] = invert ? (uint8_t)(255 - o) : o;
    }
    return 0;
}

/* PS3.3 C.7.6.3.1.2: YBR_FULL to RGB (8-bit components). */
static void ybr_rgb(int y, int cb, int cr, uint8_t *rgb)
{
    rgb[0] = clamp8(y + 1.402 * (cr - 128));
    rgb[1] = clamp8(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128));
    rgb[2] = clamp8(y + 1.772 * (cb - 128));
}

static uint8_t lut_entry(const mt_palette_t *p, int c, uint32_t k)
{
    if (p->bits == 8)
        return p->data[c][k];
    const uint8_t *e = p->data[c] + 2 * k;
    return p->big_endian ? e[0] : e[1]; /* the high byte of a 16-bit entry */
}

static int render_palette(const mt_pixel_desc_t *d, const uint8_t *f, uint8_t *out,
                          const char **why)
{
    const mt_palette_t *p = &d->palette;
    uint32_t n = p->n ? p->n : 65536;
    if (p->bits != 8 && p->bits != 16) {
        *why = "palette entries of other than 8 or 16 bits";
        return MT_EUNSUPPORTED;
    }
    for (int c = 0; c < 3; c++)
        if (!p->data[c] || p->len[c] < (size_t)n * (size_t)(p->bits / 8)) {
            *why = "palette LUT data missing or shorter than its descriptor (segmented palettes "
                   "are not supported)";
            return MT_EUNSUPPORTED;
        }
    size_t np = (size_t)d->rows * (size_t)d->cols;
    for (size_t i = 0; i < np; i++) {
        int64_t k = (int64_t)sample(d, f, i) - p->first;
        uint32_t idx = k < 0 ? 0 : k >= (int64_t)n ? n - 1 : (uint32_t)k;
        for (int c = 0; c < 3; c++)
            out[3 * i + (size_t)c] = lut_entry(p, c, idx);
    }
    return 0;
}

static int render_colour(const mt_pixel_desc_t *d, const uint8_t *f, uint8_t *out)
{
    size_t np = (size_t)d->rows * (size_t)d->cols;
    if (d->pi == MT_PI_YBR_FULL_422) {
        for (size_t i = 0; i < np; i += 2) { /* 4 samples per pixel pair */
            size_t s = 2 * i;
            int y1 = to8(d, sample(d, f, s)), y2 = to8(d, sample(d, f, s + 1));
            int cb = to8(d, sample(d, f, s + 2)), cr = to8(d, sample(d, f, s + 3));
            ybr_rgb(y1, cb, cr, out + 3 * i);
            ybr_rgb(y2, cb, cr, out + 3 * i + 3);
        }
        return 0;
    }
    for (size_t i = 0; i < np; i++) {
        int v[3];
        for (int c = 0; c < 3; c++) {
            size_t at = d->planar ? (size_t)c * np + i : 3 * i + (size_t)c;
            v[c] = to8(d, sample(d, f, at));
        }
        if (d->pi == MT_PI_YBR_FULL) {
            ybr_rgb(v[0], v[1], v[2], out + 3 * i);
        } else {
            for (int c = 0; c < 3; c++)
                out[3 * i + (size_t)c] = (uint8_t)v[c];
        }
    }
    return 0;
}

int mt_pixel_render(const mt_pixel_desc_t *d, const uint8_t *frame, size_t n,
                    const mt_window_t *win, uint8_t *out, int *channels, const char **why)
{
    size_t need = mt_pixel_frame_bytes(d, why);
    if (!need)
        return MT_EUNSUPPORTED;
    if (n < need) {
        *why = "pixel data shorter than its frame";
        return MT_EINVAL;
    }
    switch (d->pi) {
    case MT_PI_MONOCHROME1:
    case MT_PI_MONOCHROME2:
        *channels = 1;
        return render_grey(d, frame, win, out);
    case MT_PI_PALETTE_COLOR:
        *channels = 3;
        return render_palette(d, frame, out, why);
    default:
        *channels = 3;
        return render_colour(d, frame, out);
    }
}

void mt_pixel_fit(int sw, int sh, int vw, int vh, int *ow, int *oh)
{
    sw = sw < 1 ? 1 : sw;
    sh = sh < 1 ? 1 : sh;
    double s;
    if (vw > 0 && vh > 0)
        s = fmin((double)vw / sw, (double)vh / sh);
    else if (vw > 0)
        s = (double)vw / sw;
    else if (vh > 0)
        s = (double)vh / sh;
    else
        s = 1;
    *ow = (int)(sw * s + 0.5);
    *oh = (int)(sh * s + 0.5);
    *ow = *ow < 1 ? 1 : *ow;
    *oh = *oh < 1 ? 1 : *oh;
}

int mt_pixel_region(const uint8_t *src, int w, int h, int ch, int sx, int sy, int sw, int sh,
                    uint8_t *dst, int ow, int oh)
{
    bool flip_x = sw < 0, flip_y = sh < 0;
    int x0 = flip_x ? sx + sw : sx, y0 = flip_y ? sy + sh : sy;
    int x1 = x0 + abs(sw), y1 = y0 + abs(sh); /* exclusive */
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > w ? w : x1;
    y1 = y1 > h ? h : y1;
    if (x1 <= x0 || y1 <= y0 || ow < 1 || oh < 1)
        return MT_EINVAL;
    int rw = x1 - x0, rh = y1 - y0;
    for (int oy = 0; oy < oh; oy++) {
        /* source rows [ya, yb) for this output row (at least one) */
        int ya = y0 + (int)((int64_t)oy * rh / oh), yb = y0 + (int)((int64_t)(oy + 1) * rh / oh);
        yb = yb <= ya ? ya + 1 : yb;
        for (int ox = 0; ox < ow; ox++) {
            int xa = x0 + (int)((int64_t)ox * rw / ow),
                xb = x0 + (int)((int64_t)(ox + 1) * rw / ow);
            xb = xb <= xa ? xa + 1 : xb;
            int tx = flip_x ? ow - 1 - ox : ox, ty = flip_y ? oh - 1 - oy : oy;
            uint8_t *o = dst + ((size_t)ty * (size_t)ow + (size_t)tx) * (size_t)ch;
            for (int c = 0; c < ch; c++) {
                uint64_t sum = 0;
                for (int y = ya; y < yb; y++)
                    for (int x = xa; x < xb; x++)
                        sum += src[((size_t)y * (size_t)w + (size_t)x) * (size_t)ch + (size_t)c];
                uint64_t cnt = (uint64_t)(yb - ya) * (uint64_t)(xb - xa);
                o[c] = (uint8_t)((sum + cnt / 2) / cnt);
            }
        }
    }
    return 0;
}
