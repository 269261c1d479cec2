/*
 * rendered.c - the rendering half of WADO-RS rendered/thumbnail (PS3.18 §10.4.1.1.3-4,
 * query parameters §8.3.5.1) and WADO-URI rendered (§9.4.1): parse the parameters, describe
 * the pixels from the data set, run node/dicom/pixel.c, crop/scale, encode JPEG (libturbojpeg)
 * or PNG (libpng) into memory. No I/O: wado.c reads the file and sends the result.
 *
 * Parameters (WADO-RS):
 *   window=center,width[,linear|linear-exact|sigmoid]   VOI for grayscale (default: the
 *       header's first WindowCenter/WindowWidth and VOI LUT Function, else the frame's range)
 *   viewport=vw,vh[,sx,sy,sw,sh]   fit the source region (default the whole image) into vw x vh
 *       keeping its aspect ratio; vw or vh may be empty; a negative sw/sh flips that axis
 *   quality=1..100                 JPEG quality (default 90); ignored for PNG (lossless)
 *   annotation=patient,technique   accepted and ignored (a Warning says so): nothing is burned
 *       in, so a rendered image carries no identifying text
 *   thumbnail: fits 128x128 unless a viewport is given.
 * WADO-URI: windowCenter+windowWidth, rows/columns (the most rows/columns), region=x1,y1,x2,y2
 *   (fractions 0..1), imageQuality, annotation (ignored likewise).
 * A malformed value answers 400 (PS3.18 §8.3.5.1: the origin server shall return 400 for an
 * invalid rendering parameter).
 */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "../util/alloc.h"
#include "../util/err.h"
#include "web.h"

#define THUMB_SIDE 128
#define MAX_SIDE 8192 /* largest rendered width or height (an upscaling viewport) */

static bool parse_int(const char *s, size_t n, bool allow_empty, int *v, bool *empty)
{
    char t[24];
    if (empty)
        *empty = n == 0;
    if (n == 0)
        return allow_empty;
    if (n >= sizeof t)
        return false;
    memcpy(t, s, n);
    t[n] = 0;
    char *end;
    long x = strtol(t, &end, 10);
    if (*end || x < -1000000 || x > 1000000)
        return false;
    *v = (int)x;
    return true;
}

static bool parse_double(const char *s, size_t n, double *v)
{
    char t[48];
    if (n == 0 || n >= sizeof t)
        return false;
    memcpy(t, s, n);
    t[n] = 0;
    char *end;
    *v = strtod(t, &end);
    return !*end && isfinite(*v);
}

/* Split s at commas into at most max fields (pointers and lengths); returns the count, or
 * max + 1 when there are more. */
static size_t fields(const char *s, const char **f, size_t *len, size_t max)
{
    size_t n = 0;
    for (;;) {
        const char *c = strchr(s, ',');
        if (n == max)
            return max + 1;
        f[n] = s;
        len[n++] = c ? (size_t)(c - s) : strlen(s);
        if (!c)
            return n;
        s = c + 1;
    }
}

static int bad(char *msg, size_t msgsz, const char *what)
{
    snprintf(msg, msgsz, "%s", what);
    return 400;
}

static int parse_window(const char *v, mt_render_opts_t *o, char *msg, size_t msgsz)
{
    const char *f[4];
    size_t l[4];
    size_t n = fields(v, f, l, 3);
    if (n < 2 || n > 3 || !parse_double(f[0], l[0], &o->win.center) ||
        !parse_double(f[1], l[1], &o->win.width))
        return bad(msg, msgsz, "window: center,width[,linear|linear-exact|sigmoid]");
    o->win.fn = MT_VOI_LINEAR;
    if (n == 3) {
        if (l[2] == 6 && !strncmp(f[2], "linear", 6))
            o->win.fn = MT_VOI_LINEAR;
        else if (l[2] == 12 && !strncmp(f[2], "linear-exact", 12))
            o->win.fn = MT_VOI_LINEAR_EXACT;
        else if (l[2] == 7 && !strncmp(f[2], "sigmoid", 7))
            o->win.fn = MT_VOI_SIGMOID;
        else
            return bad(msg, msgsz, "window: the function is linear, linear-exact or sigmoid");
    }
    if (o->win.width <= 0 || (o->win.fn == MT_VOI_LINEAR && o->win.width < 1))
        return bad(msg, msgsz, "window: width must be positive (at least 1 for linear)");
    o->win.set = true;
    return 0;
}

static int parse_viewport(const char *v, mt_render_opts_t *o, char *msg, size_t msgsz)
{
    const char *f[7];
    size_t l[7];
    size_t n = fields(v, f, l, 6);
    bool e1, e2;
    if ((n != 2 && n != 6) || !parse_int(f[0], l[0], true, &o->vw, &e1) ||
        !parse_int(f[1], l[1], true, &o->vh, &e2) || (!e1 && o->vw < 1) || (!e2 && o->vh < 1) ||
        o->vw > MAX_SIDE || o->vh > MAX_SIDE)
        return bad(msg, msgsz, "viewport: vw,vh[,sx,sy,sw,sh] (vw, vh 1-8192 or empty)");
    if (n == 6) {
        if (!parse_int(f[2], l[2], false, &o->sx, NULL) ||
            !parse_int(f[3], l[3], false, &o->sy, NULL) ||
            !parse_int(f[4], l[4], false, &o->sw, NULL) ||
            !parse_int(f[5], l[5], false, &o->sh, NULL) || o->sx < 0 || o->sy < 0 || o->sw == 0 ||
            o->sh == 0)
            return bad(msg, msgsz, "viewport: sx,sy >= 0 and sw,sh non-zero integers");
        o->region = true;
    }
    return 0;
}

static int parse_quality(const char *v, mt_render_opts_t *o, char *msg, size_t msgsz)
{
    if (!parse_int(v, strlen(v), false, &o->quality, NULL) || o->quality < 1 || o->quality > 100)
        return bad(msg, msgsz, "quality: an integer 1-100");
    return 0;
}

static void parse_annotation(const char *v, mt_render_opts_t *o)
{
    o->annotation_ignored = v && *v; /* patient, technique: no text is burned in */
}

int mt__render_opts(const mt_web_req_t *wr, bool thumb, bool uri, mt_render_opts_t *o, char *msg,
                    size_t msgsz)
{
    memset(o, 0, sizeof *o);
    o->quality = 90;
    o->thumb = thumb;
    o->uri = uri;
    const char *v;
    int st = 0;
    if (!uri) {
        if ((v = mt__web_param(wr, "window")) && (st = parse_window(v, o, msg, msgsz)))
            return st;
        if ((v = mt__web_param(wr, "viewport")) && (st = parse_viewport(v, o, msg, msgsz)))
            return st;
        if ((v = mt__web_param(wr, "quality")) && (st = parse_quality(v, o, msg, msgsz)))
            return st;
        parse_annotation(mt__web_param(wr, "annotation"), o);
        return 0;
    }
    const char *wc = mt__web_param(wr, "windowCenter"), *ww = mt__web_param(wr, "windowWidth");
    if (wc || ww) {
        if (!wc || !ww || !parse_double(wc, strlen(wc), &o->win.center) ||
            !parse_double(ww, strlen(ww), &o->win.width) || o->win.width < 1)
            return bad(msg, msgsz, "windowCenter and windowWidth: numbers, width >= 1");
        o->win.set = true;
        o->win.fn = MT_VOI_LINEAR;
    }
    const char *rows = mt__web_param(wr, "rows"), *cols = mt__web_param(wr, "columns");
    if ((rows &&
         (!parse_int(rows, strlen(rows), false, &o->vh, NULL) || o->vh < 1 || o->vh > MAX_SIDE)) ||
        (cols &&
         (!parse_int(cols, strlen(cols), false, &o->vw, NULL) || o->vw < 1 || o->vw > MAX_SIDE)))
        return bad(msg, msgsz, "rows, columns: integers 1-8192");
    if ((v = mt__web_param(wr, "region"))) {
        const char *f[5];
        size_t l[5];
        if (fields(v, f, l, 4) != 4)
            return bad(msg, msgsz, "region: x1,y1,x2,y2 (fractions 0-1)");
        for (int i = 0; i < 4; i++)
            if (!parse_double(f[i], l[i], &o->frac[i]) || o->frac[i] < 0 || o->frac[i] > 1)
                return bad(msg, msgsz, "region: x1,y1,x2,y2 (fractions 0-1)");
        if (o->frac[2] <= o->frac[0] || o->frac[3] <= o->frac[1])
            return bad(msg, msgsz, "region: x2 > x1 and y2 > y1");
        o->frac_region = true;
    }
    if ((v = mt__web_param(wr, "imageQuality")) && (st = parse_quality(v, o, msg, msgsz)))
        return st;
    parse_annotation(mt__web_param(wr, "annotation"), o);
    return 0;
}

/* ---- the pixel description from the data set ---- */

static int ds_int(const mt_ds_t *ds, uint32_t tag, int def)
{
    char s[32];
    uint16_t u;
    const mt_ds_elem_t *e = mt_ds_get(ds, tag);
    if (!e)
        return def;
    if ((e->vr == MT_VR('U', 'S') || e->vr == MT_VR('S', 'S')) && mt_ds_get_u16(ds, tag, &u))
        return e->vr == MT_VR('S', 'S') ? (int16_t)u : u;
    if (!mt_ds_get_string(ds, tag, s, sizeof s))
        return def;
    return atoi(s);
}

static bool ds_double(const mt_ds_t *ds, uint32_t tag, double *v)
{
    char s[128];
    if (!mt_ds_get_string(ds, tag, s, sizeof s) || !s[0])
        return false;
    char *bs = strchr(s, '\\'); /* the first of several values */
    if (bs)
        *bs = 0;
    char *end;
    double x = strtod(s, &end);
    if (end == s || !isfinite(x))
        return false;
    *v = x;
    return true;
}

/* Palette Color LUT Descriptor (US or SS, 3 values) and Data (OW). */
static void palette(const mt_ds_t *ds, bool big_endian, mt_palette_t *p)
{
    static const uint32_t desc_tag[3] = {MT_TAG(0x0028, 0x1101), MT_TAG(0x0028, 0x1102),
                                         MT_TAG(0x0028, 0x1103)};
    static const uint32_t data_tag[3] = {MT_TAG(0x0028, 0x1201), MT_TAG(0x0028, 0x1202),
                                         MT_TAG(0x0028, 0x1203)};
    const mt_ds_elem_t *d = mt_ds_get(ds, desc_tag[0]);
    if (d && d->value && d->len >= 6) {
        const uint8_t *v = d->value;
#define U16(i)                                                                                     \
    (uint16_t)(big_endian ? (v[2 * (i)] << 8 | v[2 * (i) + 1]) : (v[2 * (i)] | v[2 * (i) + 1] << 8))
        p->n = U16(0);
        p->first = d->vr == MT_VR('S', 'S') ? (int16_t)U16(1) : U16(1);
        p->bits = U16(2);
#undef U16
    }
    p->big_endian = big_endian;
    for (int c = 0; c < 3; c++) {
        const mt_ds_elem_t *e = mt_ds_get(ds, data_tag[c]);
        p->data[c] = e ? e->value : NULL;
        p->len[c] = e && e->value ? e->len : 0;
    }
}

void mt__render_desc(const mt_ds_t *ds, bool big_endian, mt_pixel_desc_t *d)
{
    memset(d, 0, sizeof *d);
    char pi[32] = "";
    mt_ds_get_string(ds, MT_TAG(0x0028, 0x0004), pi, sizeof pi);
    d->pi = mt_pixel_pi(pi);
    d->rows = ds_int(ds, MT_TAG(0x0028, 0x0010), 0);
    d->cols = ds_int(ds, MT_TAG(0x0028, 0x0011), 0);
    d->spp = ds_int(ds, MT_TAG(0x0028, 0x0002), 1);
    d->bits_allocated = ds_int(ds, MT_TAG(0x0028, 0x0100), 0);
    d->bits_stored = ds_int(ds, MT_TAG(0x0028, 0x0101), d->bits_allocated);
    d->is_signed = ds_int(ds, MT_TAG(0x0028, 0x0103), 0) == 1;
    d->planar = ds_int(ds, MT_TAG(0x0028, 0x0006), 0) == 1;
    d->slope = 1;
    ds_double(ds, MT_TAG(0x0028, 0x1053), &d->slope);
    ds_double(ds, MT_TAG(0x0028, 0x1052), &d->intercept);
    if (d->pi == MT_PI_PALETTE_COLOR)
        palette(ds, big_endian, &d->palette);
}

/* The header's VOI: first WindowCenter/WindowWidth and VOILUTFunction (PS3.3 C.11.2.1.3). */
static void header_window(const mt_ds_t *ds, mt_window_t *w)
{
    if (!ds_double(ds, MT_TAG(0x0028, 0x1050), &w->center) ||
        !ds_double(ds, MT_TAG(0x0028, 0x1051), &w->width))
        return;
    char fn[32] = "";
    mt_ds_get_string(ds, MT_TAG(0x0028, 0x1056), fn, sizeof fn);
    w->fn = !strncmp(fn, "LINEAR_EXACT", 12) ? MT_VOI_LINEAR_EXACT
            : !strncmp(fn, "SIGMOID", 7)     ? MT_VOI_SIGMOID
                                             : MT_VOI_LINEAR;
    w->set = w->width >= (w->fn == MT_VOI_LINEAR ? 1 : 1e-9);
}

/* ---- encoders ---- */

typedef struct png_mem {
    mt_buf_t *out;
    int err;
} png_mem_t;

static void png_write(png_structp p, png_bytep d, png_size_t n)
{
    png_mem_t *m = png_get_io_ptr(p);
    if (!m->err)
        m->err = mt_buf_append(m->out, d, n);
}

static void png_flush(png_structp p)
{
    (void)p;
}

static int encode_png(const uint8_t *img, int w, int h, int ch, mt_buf_t *out)
{
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!p)
        return MT_ENOMEM;
    png_infop info = png_create_info_struct(p);
    png_mem_t m = {out, 0};
    if (!info || setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        return MT_EIO;
    }
    png_set_write_fn(p, &m, png_write, png_flush);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, 8,
                 ch == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (int y = 0; y < h; y++)
        png_write_row(p, (png_const_bytep)(img + (size_t)y * (size_t)w * (size_t)ch));
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    return m.err;
}

static int encode_jpeg(const uint8_t *img, int w, int h, int ch, int quality, mt_buf_t *out)
{
    tjhandle tj = tjInitCompress();
    if (!tj)
        return MT_ENOMEM;
    unsigned char *jb = NULL;
    unsigned long jn = 0;
    int rc = tjCompress2(tj, img, w, 0, h, ch == 3 ? TJPF_RGB : TJPF_GRAY, &jb, &jn,
                         ch == 3 ? TJSAMP_420 : TJSAMP_GRAY, quality, TJFLAG_FASTDCT);
    int err = rc == 0 ? mt_buf_append(out, jb, jn) : MT_EIO;
    tjFree(jb);
    tjDestroy(tj);
    return err;
}

/* ---- render ---- */

int mt__render(const mt_ds_t *ds, const mt_pixel_desc_t *d, const uint8_t *frame, size_t n,
               const mt_render_opts_t *o, mt_buf_t *out, char *msg, size_t msgsz)
{
    const char *why = NULL;
    size_t need = mt_pixel_frame_bytes(d, &why);
    if (!need) {
        snprintf(msg, msgsz, "rendered: %s", why);
        return 406;
    }
    mt_window_t win = o->win;
    if (!win.set)
        header_window(ds, &win);
    size_t np = (size_t)d->rows * (size_t)d->cols;
    uint8_t *img = mt_malloc(np * 3);
    int ch = 1, st = 0;
    uint8_t *scaled = NULL;
    int rc = mt_pixel_render(d, frame, n, &win, img, &ch, &why);
    if (rc) {
        snprintf(msg, msgsz, "rendered: %s", why ? why : "cannot render");
        st = rc == MT_EUNSUPPORTED ? 406 : 500;
        goto out;
    }
    int sx = 0, sy = 0, sw = d->cols, sh = d->rows;
    if (o->region) {
        sx = o->sx;
        sy = o->sy;
        sw = o->sw;
        sh = o->sh;
    } else if (o->frac_region) {
        sx = (int)floor(o->frac[0] * d->cols);
        sy = (int)floor(o->frac[1] * d->rows);
        sw = (int)ceil(o->frac[2] * d->cols) - sx;
        sh = (int)ceil(o->frac[3] * d->rows) - sy;
    }
    int vw = o->vw, vh = o->vh;
    if (o->thumb && vw <= 0 && vh <= 0)
        vw = vh = THUMB_SIDE;
    int aw = abs(sw), ah = abs(sh), ow, oh;
    mt_pixel_fit(aw, ah, vw, vh, &ow, &oh);
    if (o->uri && (ow > aw || oh > ah)) { /* WADO-URI rows/columns: at most, never larger */
        ow = aw;
        oh = ah;
    }
    if (ow > MAX_SIDE || oh > MAX_SIDE)
        mt_pixel_fit(ow, oh, MAX_SIDE, MAX_SIDE, &ow, &oh);
    scaled = mt_malloc((size_t)ow * (size_t)oh * (size_t)ch);
    if (mt_pixel_region(img, d->cols, d->rows, ch, sx, sy, sw, sh, scaled, ow, oh) != 0) {
        snprintf(msg, msgsz, "viewport: the source region lies outside the image");
        st = 400;
        goto out;
    }
    rc = o->png ? encode_png(scaled, ow, oh, ch, out)
                : encode_jpeg(scaled, ow, oh, ch, o->quality, out);
    if (rc) {
        snprintf(msg, msgsz, "rendered: encoding failed");
        st = 500;
    }
out:
    mt_free(scaled);
    mt_free(img);
    return st;
}
