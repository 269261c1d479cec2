#!/usr/bin/env python3
"""Generate synthetic CMR studies for the tagger, with the true tag of every series.

    gen_cmr_fixtures.py --out DIR [--studies N] [--seed S] [--phases P] [--dynamics D]

Writes DIR/<study>/<series>/<n>.dcm (Explicit VR Little Endian, tiny 16x16 pixel data) and
DIR/truth.csv with one row per series:

    SeriesInstanceUID,tag,view,study,vendor,naming,perf,description

Each study is a full CMR exam in the naming style of one vendor (Siemens, GE, Philips):
3-plane localizer, long-axis cines (4ch/2ch/3ch) and a SAX cine stack (or UK-Biobank style
one series per SAX slice), native MOLLI source + map, T2 map, T2*, black blood, first-pass
perfusion (stress then rest, rest then stress, rest only, or none), phase-contrast flow
(magnitude/phase pairs), TI scout, LGE (PSIR magnitude/phase pairs: Siemens _MAG/_PSIR,
GE MAG:/PS:, Philips mixed M_IR/R_IR), post-contrast MOLLI and a screenshot.

Naming modes: `informative` (vendor-style descriptions), `missing` (SeriesDescription and
ProtocolName removed: physics and geometry must decide), `misleading` (long-axis view names
swapped, a cine acquired with a copied "LGE" protocol name).

Geometry: a random LV long axis L near (1,-1,-1)/sqrt3 (apex left, anterior, inferior); the
SAX planes are perpendicular to L; the long-axis planes contain L and are rotated about it by
the templates of the spec (4ch 10-30, 2ch 90, 3ch 150 degrees) plus a per-exam septal offset
(+-15 degrees) and per-plane noise (+-4 degrees), measured from the spec's septal prior.
Heart rate rises by 15-30 bpm under stress. Only the standard library and pydicom.
"""
import argparse
import csv
import math
import os
import random

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
ROOT = "1.2.826.0.1.3680043.10.1532.9."


def norm(v):
    l = math.sqrt(sum(x * x for x in v))
    return [x / l for x in v]


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def cross(a, b):
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def add(a, b, s=1.0):
    return [x + s * y for x, y in zip(a, b)]


def prior_frame(L):
    """The spec's septal prior u and anterior direction a (section 5.4)."""
    s = [-math.sqrt(0.5), -math.sqrt(0.5), 0.0]
    u = norm(add(s, L, -dot(s, L)))
    a = norm(cross(u, L))
    return u, a


def lax_normal(L, alpha):
    u, a = prior_frame(L)
    al = math.radians(alpha)
    return norm([math.sin(al) * uu + math.cos(al) * aa for uu, aa in zip(u, a)])


def in_plane(n, rng):
    """Row and column directions for a plane with normal n (r x c = n), random in-plane spin."""
    h = [0, 0, 1] if abs(n[2]) < 0.9 else [1, 0, 0]
    r = norm(cross(h, n))
    c = cross(n, r)
    t = rng.uniform(-0.3, 0.3)
    r2 = [math.cos(t) * x + math.sin(t) * y for x, y in zip(r, c)]
    c2 = cross(n, r2)
    return r2, c2


def tm(sec):
    sec %= 86400
    h = int(sec // 3600)
    m = int(sec % 3600 // 60)
    s = sec % 60
    return "%02d%02d%09.6f" % (h, m, s)


class Study:
    def __init__(self, out, idx, rng, vendor, naming, perf, phases, dyn):
        self.out, self.idx, self.rng = out, idx, rng
        self.vendor, self.naming, self.perf = vendor, naming, perf
        self.phases, self.dyn = phases, dyn
        self.uid = generate_uid(prefix=ROOT)
        self.for_uid = generate_uid(prefix=ROOT)
        self.series_no = 0
        self.truth = []
        self.t = rng.uniform(8, 15) * 3600
        self.hr0 = rng.uniform(58, 75)
        self.field = rng.choice([1.5, 3.0])
        L = norm([1 + rng.uniform(-.35, .35), -1 + rng.uniform(-.35, .35), -1 + rng.uniform(-.35, .35)])
        self.L = L
        self.delta = rng.uniform(-15, 15)
        self.center = [rng.uniform(-20, 20), rng.uniform(-30, 10), rng.uniform(-40, 0)]
        self.contrast_on = False
        self.ukbb = vendor == "SIEMENS" and rng.random() < 0.3
        self.study_desc = {"SIEMENS": "Cardiac^Routine", "GE": "CMR STRESS" if "stress" in perf else "CMR",
                           "PHILIPS": "Heart"}[vendor]

    # --- naming ---
    def names(self, desc, protocol=None):
        if self.naming == "missing":
            return "", ""
        return desc, protocol if protocol is not None else desc

    def view_normal(self, view):
        """First call plans the view; later calls (LGE) copy the plan with +-3 degrees."""
        planned = self.__dict__.setdefault("planned", {})
        if view not in planned:
            base = {"4ch": self.rng.uniform(10, 30), "2ch": 90.0, "3ch": 150.0}[view]
            planned[view] = base + self.delta + self.rng.uniform(-4, 4)
            return lax_normal(self.L, planned[view])
        return lax_normal(self.L, planned[view] + self.rng.uniform(-3, 3))

    def sax_normal(self):
        sign = self.rng.choice([1, -1])
        n = [sign * x for x in self.L]
        # a few degrees of planning error
        jitter = [self.rng.uniform(-.03, .03) for _ in range(3)]
        return norm(add(n, jitter))

    # --- writing ---
    def new_series(self, tag, view, desc, protocol, sop=MR):
        self.series_no += 1
        s = {"uid": generate_uid(prefix=ROOT), "no": self.series_no, "n": 0, "sop": sop,
             "desc": desc, "protocol": protocol}
        self.truth.append([s["uid"], tag, view, self.uid, self.vendor, self.naming, self.perf, desc])
        os.makedirs(os.path.join(self.out, "study%03d" % self.idx, "s%03d" % s["no"]), exist_ok=True)
        return s

    def write(self, s, n, pos_off, acq, fov=360.0, itype="ORIGINAL\\PRIMARY\\M\\NORM\\DIS2D",
              tt=None, ti=None, te=1.3, hr=None, extra=None, center=None):
        rng = self.rng
        s["n"] += 1
        key = tuple(round(x, 6) for x in n)
        rcs = s.setdefault("rc", {})
        if key not in rcs:
            rcs[key] = in_plane(n, rng)
        r, c = rcs[key]
        ctr = center or self.center
        p = add(ctr, n, pos_off)
        ipp = add(add(p, r, -fov / 2), c, -fov / 2)
        ds = Dataset()
        ds.SOPClassUID = s["sop"]
        ds.SOPInstanceUID = generate_uid(prefix=ROOT)
        ds.ImageType = itype.split("\\")
        ds.StudyDate = "20240101"
        ds.SeriesTime = tm(s.setdefault("t0", acq))
        ds.AcquisitionTime = tm(acq)
        ds.Modality = "MR" if s["sop"] == MR else "OT"
        ds.Manufacturer = {"SIEMENS": "SIEMENS", "GE": "GE MEDICAL SYSTEMS",
                           "PHILIPS": "Philips Medical Systems"}[self.vendor]
        ds.StudyDescription = self.study_desc
        if s["desc"]:
            ds.SeriesDescription = s["desc"]
        ds.PatientName = "TAG^FIXTURE%03d" % self.idx
        ds.PatientID = "TAGFIX%03d" % self.idx
        ds.StudyInstanceUID = self.uid
        ds.SeriesInstanceUID = s["uid"]
        ds.SeriesNumber = s["no"]
        ds.InstanceNumber = s["n"]
        ds.FrameOfReferenceUID = self.for_uid
        if s["sop"] == MR:
            if s["protocol"]:
                ds.ProtocolName = s["protocol"]
            ds.MagneticFieldStrength = self.field
            ds.ImagePositionPatient = ["%.4f" % x for x in ipp]
            ds.ImageOrientationPatient = ["%.6f" % x for x in r + c]
            ds.SliceThickness = 8
            ds.EchoTime = "%.2f" % te
            hr = hr or self.hr0
            ds.HeartRate = int(round(hr))
            ds.NominalInterval = int(round(60000 / hr))
            if tt is not None:
                ds.TriggerTime = "%.1f" % tt
            if ti is not None:
                ds.InversionTime = "%.1f" % ti
            if self.contrast_on and s.get("agent", True):
                ds.ContrastBolusAgent = "Gadobutrol"
            for k, v in (extra or {}).items():
                setattr(ds, k, v)
        ds.Rows = ds.Columns = MATRIX
        ds.PixelSpacing = ["%.4f" % (fov / MATRIX), "%.4f" % (fov / MATRIX)]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.PixelData = bytes(MATRIX * MATRIX * 2)
        fm = FileMetaDataset()
        fm.MediaStorageSOPClassUID = ds.SOPClassUID
        fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        fm.TransferSyntaxUID = ExplicitVRLittleEndian
        fm.ImplementationClassUID = ROOT + "1"
        ds.file_meta = fm
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        path = os.path.join(self.out, "study%03d" % self.idx, "s%03d" % s["no"], "%04d.dcm" % s["n"])
        ds.save_as(path, write_like_original=False)

    def advance(self, minutes):
        self.t += minutes * 60 + self.rng.uniform(0, 20)

    # --- sequence kinds ---
    def seqext(self, kind):
        v = self.vendor
        if kind == "cine":
            return {"SIEMENS": dict(ScanningSequence="GR", SequenceVariant=["SK", "SS", "OSP"],
                                    ScanOptions="CG", SequenceName="*tfi2d1_%d" % self.phases,
                                    MRAcquisitionType="2D", RepetitionTime=3.1, FlipAngle=55),
                    "GE": dict(ScanningSequence="GR", SequenceVariant="SS",
                               ScanOptions=["FAST_GEMS", "CG", "SEQ_GEMS"], MRAcquisitionType="2D",
                               RepetitionTime=3.3, FlipAngle=50),
                    "PHILIPS": dict(ScanningSequence="GR", SequenceVariant="SS", ScanOptions="CG",
                                    MRAcquisitionType="2D", RepetitionTime=2.9, FlipAngle=60)}[v]
        if kind == "lge":
            return dict(ScanningSequence=["GR", "IR"], SequenceVariant=["SK", "SP", "MP"],
                        ScanOptions="CG", MRAcquisitionType="2D", RepetitionTime=8.0, FlipAngle=25,
                        **({"SequenceName": "*tfl2d1"} if v == "SIEMENS" else {}))
        if kind == "perf":
            return dict(ScanningSequence="GR", SequenceVariant=["SK", "SP", "MP"], ScanOptions="CG",
                        MRAcquisitionType="2D", RepetitionTime=2.4, FlipAngle=12,
                        **({"SequenceName": "*tfl2d1"} if v == "SIEMENS" else {}))
        if kind == "molli":
            return dict(ScanningSequence=["GR", "IR"], SequenceVariant=["SK", "SS"], ScanOptions="CG",
                        MRAcquisitionType="2D", RepetitionTime=2.7, FlipAngle=35)
        if kind == "se":
            return dict(ScanningSequence="SE", SequenceVariant=["SK", "SP"], ScanOptions=["CG", "SAT"],
                        MRAcquisitionType="2D", RepetitionTime=1600, EchoTrainLength=16)
        if kind == "gre":
            return dict(ScanningSequence="GR", SequenceVariant=["SK", "SP"], ScanOptions="CG",
                        MRAcquisitionType="2D", RepetitionTime=20, FlipAngle=20)
        raise KeyError(kind)

    def localizer(self):
        d, p = self.names({"SIEMENS": "localizer", "GE": "3-Plane Loc SSFSE",
                           "PHILIPS": "Survey"}[self.vendor])
        s = self.new_series("localizer", "", d, p)
        ext = dict(ScanningSequence="GR", SequenceVariant="SS", MRAcquisitionType="2D",
                   RepetitionTime=3.5)
        for n in ([0, 0, 1], [1, 0, 0], [0, 1, 0]):
            for k in range(3):
                self.write(s, n, (k - 1) * 15, self.t + k, fov=450, extra=ext, center=[0, 0, 0])
        self.advance(2)

    def cine(self, n, view, desc, tag=None, protocol=None, nsl=1, spacing=10, start=0.0):
        d, p = self.names(desc, protocol)
        s = self.new_series(tag or "cine." + view, view, d, p)
        ext = self.seqext("cine")
        ext["CardiacNumberOfImages"] = self.phases
        rr = 60000 / self.hr0
        for k in range(nsl):
            acq0 = self.t + 12 * k
            for ph in range(self.phases):
                acq = acq0 + (ph * 0.03 if self.vendor == "GE" else 0)
                self.write(s, n, start + (k - (nsl - 1) / 2) * spacing, acq,
                           tt=ph * rr * 0.95 / self.phases, extra=ext)
        self.advance(0.5 + 0.2 * nsl)
        return s

    def cines(self):
        views = ["4ch", "2ch", "3ch"]
        names = {"SIEMENS": "CINE_segmented_LAX_%s", "GE": "FIESTA CINE %s", "PHILIPS": "sBTFE_%s"}
        label = {"4ch": {"SIEMENS": "4Ch", "GE": "4CH", "PHILIPS": "4ch"},
                 "2ch": {"SIEMENS": "2Ch", "GE": "2CH", "PHILIPS": "2ch"},
                 "3ch": {"SIEMENS": "3Ch", "GE": "3CH", "PHILIPS": "3ch"}}
        swap = {"4ch": "2ch", "2ch": "4ch", "3ch": "3ch"}
        for v in views:
            shown = swap[v] if self.naming == "misleading" else v
            self.cine(self.view_normal(v), v, names[self.vendor] % label[shown][self.vendor])
        n = self.sax_normal()
        if self.ukbb:
            for k in range(10):
                self.cine(n, "sax", "CINE_segmented_SAX_b%d" % (k + 1), start=(k - 4.5) * 10)
        elif self.naming == "misleading":
            self.cine(n, "sax", "LGE_SA", nsl=10)  # a cine acquired with a copied LGE protocol
        else:
            self.cine(n, "sax", {"SIEMENS": "CINE_segmented_SAX", "GE": "FIESTA CINE SAX",
                                 "PHILIPS": "sBTFE_SA"}[self.vendor], nsl=10)
        return n

    def molli(self, post):
        rr = 60000 / self.hr0
        base = {"SIEMENS": "MOLLI_SAX%s" , "GE": "SMART1Map SAX%s", "PHILIPS": "T1_MOLLI_MAP%s"}[self.vendor]
        desc = base % ("_post" if post and self.rng.random() < .5 else "")
        tag = "t1map.post" if post else "t1map.native"
        d, p = self.names(desc)
        s = self.new_series(tag, "sax", d, p)
        n = self.L
        tis = sorted([100 + k * rr for k in range(5)] + [180 + k * rr for k in range(3)])
        ext = self.seqext("molli")
        for ti in tis:
            self.write(s, n, 0, self.t, tt=ti, ti=ti, extra=ext)
        # the map (Siemens MOCO T1 / GE / Philips map series)
        md, mp = self.names(desc + ("_MOCO_T1" if self.vendor == "SIEMENS" else "_MAP"), p or None)
        if self.naming != "missing":
            mp = p
        m = self.new_series(tag, "sax", md, mp)
        self.write(m, n, 0, self.t, itype="DERIVED\\PRIMARY\\T1 MAP\\MOCO",
                   extra={"ScanningSequence": ["GR", "IR"], "SequenceVariant": ["SK", "SS"]})
        self.advance(1)

    def t2map(self):
        n = self.L
        if self.vendor == "SIEMENS":
            d, p = self.names("T2MAP_TRUEFISP_SAX")
            s = self.new_series("t2map", "sax", d, p)
            ext = self.seqext("cine")
            ext.pop("SequenceName", None)
            for k in range(3):
                self.write(s, n, 0, self.t + k, extra=ext)
            md, _ = self.names("T2MAP_TRUEFISP_SAX_MOCO_T2")
            m = self.new_series("t2map", "sax", md, p)
            self.write(m, n, 0, self.t, itype="DERIVED\\PRIMARY\\T2 MAP\\MOCO", extra=ext)
        else:
            d, p = self.names({"GE": "T2MAP_FSE SAX", "PHILIPS": "GraSE T2 map"}[self.vendor])
            s = self.new_series("t2map", "sax", d, p)
            for k in range(8):
                self.write(s, n, 0, self.t, te=10 + 10 * k, extra=self.seqext("se"))
        self.advance(1)

    def t2star(self):
        d, p = self.names({"SIEMENS": "T2star_SAX_ME", "GE": "MFGRE T2* SAX",
                           "PHILIPS": "M-FFE T2* SA"}[self.vendor])
        s = self.new_series("t2star", "sax", d, p)
        for k in range(8):
            self.write(s, self.L, 0, self.t, te=2.6 + 2.2 * k, extra=self.seqext("gre"))
        self.advance(1)

    def blackblood(self):
        d, p = self.names({"SIEMENS": "T2_TSE_DB_SAX", "GE": "DIR FSE SAX", "PHILIPS": "TSE_BB SA"}[self.vendor])
        s = self.new_series("blackblood", "sax", d, p)
        for k in range(5):
            self.write(s, self.L, (k - 2) * 12, self.t + 10 * k, te=70, extra=self.seqext("se"))
        self.advance(2)

    def perfusion(self, kind, hr):
        if not self.contrast_on:
            self.contrast_on = True
        base = {"SIEMENS": "tfl_perf_%s", "GE": "FGRE PERF %s", "PHILIPS": "BTFE_PERF_%s"}[self.vendor]
        desc = base % kind.upper()
        d, p = self.names(desc)
        tag = "perfusion." + kind
        s = self.new_series(tag, "sax", d, p)
        moco = None
        if self.vendor == "SIEMENS":
            md, _ = self.names(desc + "_MOCO")
            moco = self.new_series(tag, "sax", md, p)
        ext = self.seqext("perf")
        rr_s = 60 / hr
        n = self.sax_normal()
        for dyn in range(self.dyn):
            for k in range(3):
                acq = self.t + dyn * rr_s + k * 0.12
                tt = 60 + k * 220
                self.write(s, n, (k - 1) * 20, acq, tt=tt, ti=100 if self.vendor == "SIEMENS" else None,
                           hr=hr, extra=ext)
                if moco:
                    self.write(moco, n, (k - 1) * 20, acq, tt=tt,
                               ti=100 if self.vendor == "SIEMENS" else None, hr=hr, extra=ext,
                               itype="DERIVED\\PRIMARY\\M\\MOCO")
        self.advance(2)

    def flow(self):
        n = norm(add(self.L, [0.6, 0.9, 0.3]))  # aortic valve plane: far from SAX and LAX
        rr = 60000 / self.hr0
        if self.vendor == "SIEMENS":
            d, p = self.names("flow_150_tp_AoV_bh_ePAT@c")
            dm, _ = self.names("flow_150_tp_AoV_bh_ePAT@c_MAG")
            dp, _ = self.names("flow_150_tp_AoV_bh_ePAT@c_P")
            mag = self.new_series("flow", "", dm, p)
            ph = self.new_series("flow", "", dp, p)
            for k in range(self.phases):
                ext = self.seqext("gre")
                ext["CardiacNumberOfImages"] = self.phases
                self.write(mag, n, 0, self.t, tt=k * rr / self.phases, te=2.5,
                           extra=dict(ext, SequenceName="*fl2d1r3"))
                self.write(ph, n, 0, self.t, tt=k * rr / self.phases, te=2.5,
                           itype="DERIVED\\PRIMARY\\P\\RETRO\\DIS2D",
                           extra=dict(ext, SequenceName="*fl2d1_v150in"))
        else:
            d, p = self.names({"GE": "FastCard PC Ao VENC 150", "PHILIPS": "Q_FLOW Ao"}[self.vendor])
            s = self.new_series("flow", "", d, p)
            for k in range(self.phases):
                ext = self.seqext("gre")
                ext["CardiacNumberOfImages"] = self.phases
                if self.vendor == "GE":
                    ims = ("ORIGINAL\\PRIMARY\\MAGNITUDE", "ORIGINAL\\PRIMARY\\PHASE")
                else:
                    ims = ("ORIGINAL\\PRIMARY\\M_PCA\\M\\PCA", "ORIGINAL\\PRIMARY\\PHASE CONTRAST M\\P\\PCA")
                for it in ims:
                    self.write(s, n, 0, self.t, tt=k * rr / self.phases, te=2.5, itype=it, extra=ext)
        self.advance(2)

    def tiscout(self):
        d, p = self.names({"SIEMENS": "TI_Scout", "GE": "CINE IR", "PHILIPS": "IR_TFE_LL"}[self.vendor])
        s = self.new_series("tiscout", "sax", d, p)
        ext = self.seqext("lge")
        ext.pop("SequenceName", None)
        for k in range(20):
            ti = 100 + 30 * k
            self.write(s, self.L, 0, self.t, tt=ti, ti=ti, extra=ext)
        self.advance(2)

    def lge(self):
        ti = 300 if self.field < 2 else 360
        nsax = self.sax_normal()
        planes = [("sax", nsax, 10)] + [(v, self.view_normal(v), 1) for v in ("4ch", "2ch", "3ch")]
        swap = {"4ch": "2ch", "2ch": "4ch", "3ch": "3ch", "sax": "sax"}
        for view, n, nsl in planes:
            shown = swap[view] if self.naming == "misleading" else view
            lab = {"sax": "SAX", "4ch": "4CH", "2ch": "2CH", "3ch": "3CH"}[shown]
            ext = self.seqext("lge")
            if self.vendor == "SIEMENS":
                base = "DE_PSIR_%s" % lab
                d, p = self.names(base)
                dm, _ = self.names(base + "_MAG")
                dp, _ = self.names(base + "_PSIR")
                a = self.new_series("lge." + view, view, dm, p)
                b = self.new_series("lge." + view, view, dp, p)
                for k in range(nsl):
                    off = (k - (nsl - 1) / 2) * 10
                    self.write(a, n, off, self.t + 8 * k, ti=ti, tt=400, extra=ext)
                    self.write(b, n, off, self.t + 8 * k, ti=ti, tt=400, extra=ext,
                               itype="DERIVED\\PRIMARY\\R\\PSIR\\DIS2D")
            elif self.vendor == "GE":
                d, p = self.names("MDE %s" % lab)
                dm, _ = self.names("MAG:MDE %s" % lab)
                dp, _ = self.names("PS:MDE %s" % lab)
                a = self.new_series("lge." + view, view, dm, p)
                b = self.new_series("lge." + view, view, dp, p)
                for k in range(nsl):
                    off = (k - (nsl - 1) / 2) * 10
                    self.write(a, n, off, self.t + 8 * k, ti=ti, tt=400, extra=ext,
                               itype="ORIGINAL\\PRIMARY\\OTHER")
                    self.write(b, n, off, self.t + 8 * k, ti=ti, tt=400, extra=ext,
                               itype="DERIVED\\PRIMARY\\OTHER")
            else:
                d, p = self.names("PSIR_TFE %s" % lab)
                a = self.new_series("lge." + view, view, d, p)
                for k in range(nsl):
                    off = (k - (nsl - 1) / 2) * 10
                    self.write(a, n, off, self.t + 8 * k, ti=ti, tt=400, extra=ext,
                               itype="ORIGINAL\\PRIMARY\\M_IR\\M\\IR")
                    self.write(a, n, off, self.t + 8 * k, ti=ti, tt=400, extra=ext,
                               itype="ORIGINAL\\PRIMARY\\R_IR\\R\\IR")
            self.advance(1)

    def screenshot(self):
        d = "Screenshot" if self.naming != "missing" else ""
        s = self.new_series("other", "", d, "", sop=SC)
        self.write(s, [0, 0, 1], 0, self.t)

    def run(self):
        rng = self.rng
        self.localizer()
        self.cines()
        self.molli(post=False)
        self.t2map()
        self.t2star()
        self.blackblood()
        hr_stress = self.hr0 + rng.uniform(15, 30)
        if self.perf == "stress_rest":
            self.perfusion("stress", hr_stress)
        elif self.perf in ("rest_stress", "rest"):
            self.perfusion("rest", self.hr0)
        else:
            self.contrast_on = True  # contrast for LGE without perfusion
        self.flow()
        self.advance(10)
        if self.perf == "stress_rest":
            self.perfusion("rest", self.hr0 + rng.uniform(1, 4))
        elif self.perf == "rest_stress":
            self.perfusion("stress", hr_stress)
        self.tiscout()
        self.lge()
        self.molli(post=True)
        self.screenshot()
        return self.truth


MATRIX = 16  # Rows = Columns (--matrix): 16 keeps the files small; 256 is a real CMR image


def main():
    global MATRIX
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--studies", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--phases", type=int, default=20)
    ap.add_argument("--dynamics", type=int, default=30)
    ap.add_argument("--matrix", type=int, default=16)
    a = ap.parse_args()
    MATRIX = a.matrix
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    vendors = ["SIEMENS", "GE", "PHILIPS"]
    namings = ["informative", "missing", "misleading"]
    perfs = ["stress_rest", "rest_stress", "rest", "none"]
    rows = []
    for i in range(a.studies):
        st = Study(a.out, i, rng, vendors[i % 3], namings[(i // 3) % 3], perfs[i % 4], a.phases,
                   a.dynamics)
        rows += st.run()
    with open(os.path.join(a.out, "truth.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["SeriesInstanceUID", "tag", "view", "study", "vendor", "naming", "perf",
                    "description"])
        w.writerows(rows)
    print("wrote %d series in %d studies to %s" % (len(rows), a.studies, a.out))


if __name__ == "__main__":
    main()
