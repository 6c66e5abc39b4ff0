"""Pictures and packs for briefings (issue #7): map pictures (PNG at slide
size, vector PDF on A4 landscape) and a briefing pack (multi-page PDF plus an
Excel workbook), made on the server, in Chinese, with no internet.

Library code: no streamlit. Rendering is matplotlib (Agg / PDF backends),
text is set in Noto Sans CJK SC, found by file: the system's copy (Debian's
``fonts-noto-cjk``) if installed, else the one the ``noto-cjk-sans-otc``
package brings; a missing font is an error with a clear message, never a
download.

What is drawn is what the dashboard shows: the same units in view (city:
townships; a county or a township: its villages, :class:`area.Area`), the same
figures (:mod:`pagemaps`, :mod:`mapview`, :mod:`targets`), the same class
breaks and colours (``class_breaks``, ``SEQUENTIAL``, ``DIVERGING``,
``STATUS_COLORS``). Coordinates are projected to an Albers equal-area conic
for China (standard parallels 25° N and 47° N) whose central meridian runs
through the area, so north is up and the scale bar is true.

Safe for circulation: aggregates only (no child-level table is read), and
counts of children (or of their legal cases) below
``small_count_threshold`` (default 5) are written ``<5`` in pictures, PDF
tables and the workbook. Zero stays 0. Class breaks of a count map are
adjusted so no legend bound names a small count: the classes below the
threshold are merged into one ``<5`` class; every other class keeps the
dashboard's bound and colour. Rates and verdicts are shown as they are (they
are the figures being evaluated). Spreadsheet cells go through
:func:`compliance.to_excel`, which neutralises formula-like text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import datetime as dt
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import shapely

from .area import Area, rollup
from .settings import Settings

if TYPE_CHECKING:              # annotations only; pandas is imported where it is used
    import pandas as pd

# Targets whose counts are units (schools and committees, townships), not children: never masked.
UNIT_COUNT_TARGETS = {"t3", "room_townships"}
KINDS = ["children", "rooms", "terminals", "pairing", "t1a", "t1b", "t2", "t3", "t4", "t5", "t6", "t7"]
TARGET_KINDS = KINDS[4:]
SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
A4_LANDSCAPE = (11.69, 8.27)          # inches
FONT_FAMILY = "Noto Sans CJK SC"
SOURCE_LINE = "数据来源：各学校、村（居）委会留守儿童信息台帐 截至 {date}"
KIND_TITLES = {"children": "留守儿童分布", "rooms": "活动室覆盖", "terminals": "亲情电话缺口",
               "pairing": "结对帮扶率"}
LEVEL_NAMES = {"township": "乡镇（街道）", "village": "村（社区）"}
# Albers equal-area conic for China; the central meridian is set per area.
ALBERS = "+proj=aea +lat_0=0 +lon_0={lon0:.3f} +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +ellps=GRS80 +units=m +no_defs"
INK = "#222222"
MUTED = "#666666"


class ExportError(ValueError):
    """Something a person must fix (unknown unit, missing font); the message is Chinese."""


# -- fonts -------------------------------------------------------------------------
#
# Text is set in Noto Sans CJK SC, found by FILE and registered with
# ``fontManager.addfont`` (matplotlib's font cache in ~/.cache/matplotlib may
# predate the font and is never relied on). Regular: the system's copy
# (fontconfig, then known Debian/Fedora/Arch paths), else the copy bundled by
# the ``noto-cjk-sans-otc`` package. Bold: the system's copy when there is one
# (the package has none; bold text is then set in Regular).
#
# Noto CJK ships CFF outlines, which matplotlib's PDF backend cannot embed as
# Type 42: it writes them as a TrueType font program, a broken PDF for strict
# readers (matplotlib issues #20870, #2869). So each CFF face is converted once
# to TrueType outlines with fontTools, cached in $LIUSHOU_FONT_CACHE or
# ~/.cache/liushou_geo/fonts, and that file is what matplotlib uses for PNG and
# PDF alike. When no cache can be written, the CFF faces are used as they are
# and PDFs embed them as Type 3 (valid, searchable, less well rendered).

import threading as _threading

FONT_PACKAGE = "noto-cjk-sans-otc"
SYSTEM_FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",        # Debian, Ubuntu: fonts-noto-cjk
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",        # older Debian, Ubuntu
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",      # Fedora
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",             # Arch
)                              # the Bold files sit beside them, "Regular" → "Bold"
REGULAR, BOLD = 400, 700
_TRUETYPE_VERSION = 1          # bump when the CFF → TrueType conversion changes
_FONT_LOCK = _threading.Lock()
_active = None                 # the _Font in use in this process


@dataclass(frozen=True)
class FontSource:
    """A Noto Sans CJK SC face found by file: ``origin`` is "system" or "bundled"."""
    path: Path
    face: int                  # index in a collection (.ttc), else 0
    origin: str
    cff: bool                  # PostScript (CFF) outlines, not TrueType
    psname: str
    key: str                   # identity of the face (name, revision, checksum)
    weight: int = REGULAR


@dataclass(frozen=True)
class _Font:
    source: FontSource         # Regular
    bold: FontSource | None
    path: Path                 # the file matplotlib renders Regular with
    paths: tuple[Path, ...]    # every file registered (Regular, and Bold if any)
    family: str                # the family name matplotlib read from the Regular file
    pdf_fonttype: int


def _log():
    import logging

    return logging.getLogger(__name__)


def _face_of(path, weight: int = REGULAR) -> FontSource | None:
    """The Noto Sans CJK SC face of that weight in a font file (origin left
    empty), or None when the file holds no such face or is no font."""
    import hashlib

    from fontTools.ttLib import TTCollection, TTFont

    try:
        with open(path, "rb") as fh:
            collection = fh.read(4) == b"ttcf"
        holder = TTCollection(str(path), lazy=True) if collection else TTFont(str(path), lazy=True)
        with holder:
            for i, font in enumerate(holder.fonts if collection else [holder]):
                name = font["name"]
                if (FONT_FAMILY not in {name.getDebugName(16), name.getDebugName(1)}
                        or font["OS/2"].usWeightClass != weight
                        or "fvar" in font):         # variable fonts (Fedora's default): not converted
                    continue
                psname = name.getDebugName(6) or f"NotoSansCJKsc-{weight}"
                head = font["head"]
                ident = f"{psname}|{head.fontRevision:.5f}|{head.checkSumAdjustment}|{_TRUETYPE_VERSION}"
                return FontSource(Path(path), i, "", "CFF " in font or "CFF2" in font, psname,
                                  hashlib.sha256(ident.encode()).hexdigest()[:16], weight)
    except Exception as e:                  # unreadable or not a font: not a usable source
        _log().debug("font %s unusable: %s", path, e)
    return None


def _system_font_candidates(weight: int = REGULAR) -> list[str]:
    """Font files that may hold the system's Noto Sans CJK SC of that weight:
    fontconfig's answer, then known paths."""
    import shutil
    import subprocess

    found = []
    fc = shutil.which("fc-match")
    if fc:
        pattern = FONT_FAMILY + (":bold" if weight == BOLD else "")
        try:
            out = subprocess.run([fc, "-f", "%{file}", pattern], capture_output=True, text=True,
                                 timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            found.append(out)          # fc-match always answers: _face_of checks family and weight
    known = [p if weight == REGULAR else p.replace("Regular", "Bold") for p in SYSTEM_FONT_FILES]
    return found + [p for p in known if p not in found]


def _bundled_font_file() -> Path | None:
    """The font file of the ``noto-cjk-sans-otc`` package (Regular only), if installed."""
    try:
        import noto_cjk_sans_otc
    except ImportError:
        return None
    path = Path(str(getattr(noto_cjk_sans_otc, "FONT_PATH", "")))
    if path.is_file():
        return path
    here = Path(noto_cjk_sans_otc.__file__).parent
    return next(iter(sorted(here.glob("NotoSansCJK*.tt[cf]")) + sorted(here.glob("NotoSansCJK*.otf"))), None)


def find_cjk_font(weight: int = REGULAR) -> FontSource | None:
    """The Noto Sans CJK SC face of that weight, found by file: the system's,
    else (Regular only) the bundled one."""
    from dataclasses import replace

    tries = [("system", _system_font_candidates(weight))]
    if weight == REGULAR:
        tries.append(("bundled", [_bundled_font_file()]))
    for origin, paths in tries:
        for p in paths:
            if p and Path(p).is_file():
                found = _face_of(p, weight)
                if found:
                    return replace(found, origin=origin)
    return None


def _font_cache_dir() -> Path | None:
    import os

    env = os.environ.get("LIUSHOU_FONT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:                # no home directory
            return None
    return Path(base) / "liushou_geo" / "fonts"


def _write_truetype(src: str, face: int, out: str) -> None:
    """Convert one CFF face to TrueType (quadratic) outlines with fontTools, the
    way fontTools' otf2ttf snippet does; every other table (cmap, GSUB, GPOS,
    metrics, names) is kept. About 30 s and 0.7 GB for a Noto CJK face."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    font = TTFont(src, fontNumber=face, lazy=True)
    order = font.getGlyphOrder()
    glyphs = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(None)
        glyphs[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf
    for tag in ("CFF ", "CFF2", "VORG"):
        if tag in font:
            del font[tag]
    font.sfntVersion = "\x00\x01\x00\x00"
    font["head"].glyphDataFormat = 0
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    maxp.maxZones = 1
    for attr in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                 "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, attr, 0)
    post = font["post"]
    post.formatType = 3.0               # no glyph names: smaller, and CID-keyed faces have none anyway
    post.extraNames, post.mapping = [], {}
    font.save(out)


def _truetype_copy(source: FontSource) -> Path | None:
    """The cached TrueType-outline copy of a CFF face, made once (in a child
    process, so the server does not keep its memory); None if it cannot be made."""
    import os
    import subprocess
    import sys
    import tempfile

    cache = _font_cache_dir()
    if cache is None:
        return None
    target = cache / f"{source.psname}-{source.key}.ttf"
    if target.is_file() and _face_of(target, source.weight) is not None:
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, part = tempfile.mkstemp(dir=cache, prefix=target.stem, suffix=".part")
        os.close(fd)
    except OSError as e:
        _log().warning("font cache %s not writable (%s): PDFs embed the font as Type 3", cache, e)
        return None
    _log().info("converting %s (face %d) to TrueType outlines, once: %s", source.path, source.face, target)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    code = "import sys; from liushou_geo.export import _write_truetype; _write_truetype(sys.argv[1], int(sys.argv[2]), sys.argv[3])"
    try:
        done = subprocess.run([sys.executable, "-c", code, str(source.path), str(source.face), part],
                              env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode == 0 and _face_of(part, source.weight) is not None:
            os.chmod(part, 0o644)           # mkstemp makes it private; the cache may serve other users
            os.replace(part, target)
            return target
        _log().warning("converting %s failed: %s", source.path, done.stderr[-2000:])
    except (OSError, subprocess.SubprocessError) as e:
        _log().warning("converting %s failed: %s", source.path, e)
    Path(part).unlink(missing_ok=True)
    return None


def _register(files: list[tuple[Path, int]]) -> str:
    """Register (font file, face index) pairs with matplotlib, Regular first;
    return the family name matplotlib read for the Regular face. Faces of that
    family from other files are dropped from matplotlib's list, so a stale or
    second copy (e.g. a CFF one from its cache) cannot win a tie."""
    from matplotlib import font_manager

    fm = font_manager.fontManager
    names = {str(p) for p, _ in files}
    fm.ttflist[:] = [e for e in fm.ttflist if e.fname not in names and e.name != FONT_FAMILY]
    for p, _ in files:
        fm.addfont(str(p))                          # also clears findfont's memo
    path, face = files[0]
    ours = [e for e in fm.ttflist if e.fname == str(path)]
    # matplotlib >= 3.11 registers every face of a collection (FontEntry.index); older ones the first only.
    entry = (next((e for e in ours if getattr(e, "index", 0) == face and e.name == FONT_FAMILY), None)
             or next((e for e in ours if e.name == FONT_FAMILY), None) or ours[0])
    return entry.name


def _activate(regular: FontSource, bold: FontSource | None) -> _Font:
    files, fonttype = [(regular.path, regular.face)], 42      # 42: TrueType, embedded subset, searchable
    if regular.cff:
        ttf = _truetype_copy(regular)
        if ttf is not None:
            files = [(ttf, 0)]
        else:
            fonttype = 3                # a CFF face as Type 42 makes a broken PDF; Type 3 is valid
    if bold is not None:
        if bold.cff and fonttype == 42:
            ttf = _truetype_copy(bold)
            if ttf is None:
                bold = None             # bold text is set in Regular rather than in a broken font
            else:
                files.append((ttf, 0))
        else:
            files.append((bold.path, bold.face))
    family = _register(files)
    return _Font(regular, bold, files[0][0], tuple(p for p, _ in files), family, fonttype)


def ensure_cjk_font() -> str:
    """Configure matplotlib for Noto Sans CJK SC (see the note above); return the
    Regular font file in use. Raise ExportError when no copy of the font is found."""
    global _active
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import font_manager, rcParams

    with _FONT_LOCK:
        known = {e.fname for e in font_manager.fontManager.ttflist}
        if _active is None or not all(p.is_file() and str(p) in known for p in _active.paths):
            regular = find_cjk_font(REGULAR)
            if regular is None:
                raise ExportError(
                    f"找不到中文字体 {FONT_FAMILY}：本程序自带的字体软件包 {FONT_PACKAGE} 缺失或已损坏，"
                    f"系统中也没有安装该字体。请由系统管理员重新安装本程序（或在本程序的 Python 环境中执行 "
                    f"pip install --force-reinstall {FONT_PACKAGE}），或安装 Debian 软件包 fonts-noto-cjk"
                    "（apt-get install fonts-noto-cjk），然后重试；本程序不会从网络下载字体。")
            _active = _activate(regular, find_cjk_font(BOLD))
        rcParams["font.family"] = [_active.family]
        rcParams["axes.unicode_minus"] = False
        rcParams["pdf.fonttype"] = _active.pdf_fonttype
        rcParams["svg.fonttype"] = "none"
        if "text.language" in rcParams:          # matplotlib >= 3.11 shapes text: Simplified Chinese glyph forms
            rcParams["text.language"] = "zh-Hans"
        return str(_active.path)


# -- small counts ------------------------------------------------------------------


def small_threshold(settings: Settings) -> int:
    return int(getattr(settings, "small_count_threshold", 5))


def mask_count(n, threshold: int) -> str:
    """A count of children for circulation: '—' for none, '0', '<5' for 1–4, else '1,234'."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "—"
    n = int(n)
    if 0 < n < threshold:
        return f"<{threshold}"
    return f"{n:,}"


def masked_breaks(breaks: list[float], threshold: int) -> list[tuple[float, int]]:
    """(upper bound, dashboard class index) per class, with every class whose
    upper bound is below the threshold merged into one class ``< threshold``
    (bound ``threshold - 1``, the first colour). Other classes keep their
    dashboard bound and colour."""
    out: list[tuple[float, int]] = []
    for i, b in enumerate(breaks):
        if b < threshold - 1:
            if not out:
                out.append((threshold - 1, 0))
            continue
        if out and out[0][0] == threshold - 1 and b == threshold - 1:
            continue
        out.append((b, i))
    # A single merged class that swallowed everything keeps the real top bound.
    return out


def masked_labels(classes: list[tuple[float, int]], unit: str, threshold: int, all_zero: bool) -> list[str]:
    """Legend labels that never name a count between 1 and threshold − 1."""
    labels, lo = [], None
    for b, _ in classes:
        hi = int(b)
        if all_zero and hi == 0:
            labels.append(f"0 {unit}")
        elif hi < threshold:
            labels.append(f"<{threshold} {unit}")
        elif lo is None or lo < threshold:
            labels.append(f"≤ {hi:,} {unit}")
        else:
            labels.append(f"{lo:,} {unit}" if lo == hi else f"{lo:,}–{hi:,} {unit}")
        lo = hi + 1
    return labels


def _class_index(value, classes: list[tuple[float, int]]) -> int | None:
    if value is None:
        return None
    for b, i in classes:
        if value <= b:
            return i
    return classes[-1][1] if classes else None


# -- what a picture shows ----------------------------------------------------------


@dataclass
class MapData:
    """Everything one map picture needs, computed from the store."""

    kind: str
    title: str
    subtitle: str
    area_name: str
    level: str                                   # township | village (units in view)
    units: pl.DataFrame                          # code, name, lon, lat, fill (rgb list), label_value
    legend_title: str
    legend: list[tuple[str, list[int]]]
    symbols: list[tuple[str, list[int], str]] = field(default_factory=list)   # label, rgb, marker
    points: list[dict] = field(default_factory=list)      # lon, lat, rgb, marker, size, edge
    circles: list[tuple[float, float]] = field(default_factory=list)         # lon, lat of rooms in use
    radius_km: float | None = None
    outline_codes: list[str] = field(default_factory=list)                   # townships outlined red
    facts: list[str] = field(default_factory=list)                            # key figures, plain text
    as_of: dt.date | None = None
    within: str = ""                             # code prefix of the area ('' = city)
    small_count_threshold: int = 5


def resolve_unit(con: duckdb.DuckDBPyConnection, settings: Settings, code: str | None,
                 allow_township: bool = True) -> Area:
    """The Area for a unit code (None or the city's code: the whole city);
    ExportError (Chinese) for a code that names no county or township here."""
    if not code or code in ("city", "全市"):
        return Area()
    code = code.strip()
    row = con.execute("SELECT level, name FROM units WHERE code = ?", [code]).fetchone()
    if row is None:
        raise ExportError(f"未知的区划代码：{code}。请填写本市（{settings.city_name}）某个县（市、区）"
                          "或乡镇（街道）的12位统计用区划代码；不填则为全市。")
    level, name = row
    if level == "city":
        return Area()
    if level == "county":
        return Area(county=code)
    if level == "township" and allow_township:
        return Area(county=code[:6] + "000000", township=code)
    if level == "township":
        raise ExportError(f"区划代码 {code}（{name}）是乡镇（街道）；简报只能按全市或一个县（市、区）生成。")
    raise ExportError(f"区划代码 {code}（{name}）是村（社区）；请填写它所在乡镇（街道）的代码 {code[:9]}000。")


def area_title(con, settings: Settings, area: Area) -> str:
    """示范市 / 示范市 安平县 / 示范市 安平县 青山镇."""
    parts = [settings.city_name]
    for code in (area.county, area.township):
        if code:
            r = con.execute("SELECT name FROM units WHERE code = ?", [code]).fetchone()
            parts.append(r[0] if r else code)
    return " ".join(parts)


def _as_of(con) -> dt.date | None:
    from .targets import report_dates

    newest, _ = report_dates(con)
    return newest


def _figures(con, settings: Settings, level: str, villages: pl.DataFrame | None = None) -> pl.DataFrame:
    """Base figures joined with the target counts for every unit of a level (as ui._figures)."""
    from .metrics import unit_metrics
    from .targets import unit_targets

    base = unit_metrics(con, level, settings)
    tg = unit_targets(con, settings, level, villages)
    return base.drop("name", "lon", "lat", "parent_code", "level", "villages", strict=False).join(
        tg.drop("name", "level", "parent_code", "children", "rooms_active", strict=False), on="code", how="left")


def _units_in_view(con, area: Area) -> pl.DataFrame:
    from .mapview import map_units

    return map_units(con, area.level_in_view, area.prefix).select("code", "name", "full_name", "lon", "lat")


def _sequential_fill(units: pl.DataFrame, col: str, unit: str, mask: bool, threshold: int):
    """(units with fill, legend) with the dashboard's quantile classes and YlGnBu colours."""
    from .mapview import NO_DATA, SEQUENTIAL, class_breaks, class_of, legend_labels

    values = units[col].to_list()
    breaks = class_breaks(values)
    if mask:
        classes = masked_breaks(breaks, threshold)
        all_zero = bool(breaks) and breaks[-1] == 0
        legend = list(zip(masked_labels(classes, unit, threshold, all_zero), [SEQUENTIAL[i] for _, i in classes]))
        fills = [SEQUENTIAL[c] if (c := _class_index(v, classes)) is not None else NO_DATA for v in values]
    else:
        legend = list(zip(legend_labels(breaks, unit), SEQUENTIAL[: len(breaks)]))
        fills = [SEQUENTIAL[c] if (c := class_of(v, breaks)) is not None else NO_DATA for v in values]
    return units.with_columns(fill=pl.Series(fills, dtype=pl.List(pl.Int64))), legend


def map_data(con: duckdb.DuckDBPyConnection, settings: Settings, kind: str, area: Area,
             radius_km: float | None = None, villages: pl.DataFrame | None = None) -> MapData:
    """The figures, colours, legend and symbols of one map view (as on the pages)."""
    from . import pagemaps
    from .compliance import STATUS_COLORS
    from .coverage import village_coverage
    from .mapview import NO_DATA, map_units
    from .metrics import unit_metrics
    from .store import query
    from .targets import STATUS_LABELS, TARGET_BY_KEY, threshold

    if kind not in KINDS:
        raise ExportError(f"未知的地图类型：{kind}；可选 {'、'.join(KINDS)}")
    t = small_threshold(settings)
    level = area.level_in_view
    name = area_title(con, settings, area)
    short = name.split(" ")[-1]
    as_of = _as_of(con)
    units = _units_in_view(con, area)
    unit_word = LEVEL_NAMES[level]
    data = dict(kind=kind, area_name=name, level=level, as_of=as_of, within=area.prefix, small_count_threshold=t)
    subtitle = f"{name} · 各{unit_word} · 数据截至 {as_of or '—'}"

    if kind == "children":
        fig = unit_metrics(con, level, settings).select("code", "children")
        u = units.join(fig, on="code", how="left").with_columns(pl.col("children").fill_null(0))
        u, legend = _sequential_fill(u, "children", "人", True, t)
        u = u.with_columns(label_value=pl.col("children").map_elements(lambda n: mask_count(n, t) + " 人",
                                                                        return_dtype=pl.Utf8))
        total = int(u["children"].sum())
        return MapData(title=f"{short}留守儿童分布", subtitle=subtitle, units=u, legend_title="留守儿童（人）",
                       legend=legend, facts=[f"留守儿童 {mask_count(total, t)} 人", f"{unit_word} {u.height} 个"],
                       **data)

    if kind == "rooms":
        radius = radius_km if radius_km is not None else settings.room_radius_km
        vch = unit_metrics(con, "village", settings).select("code", "children")
        cov = village_coverage(con, radius).join(vch, on="code", how="left").with_columns(
            pl.col("children").fill_null(0))
        cov = cov.with_columns(outside=pl.when(pl.col("covered")).then(0).otherwise(pl.col("children")))
        per = (cov if level == "village" else rollup(cov, level, ["children", "outside"])).select(
            "code", "children", "outside")
        u = units.join(per, on="code", how="left").with_columns(pl.col("children", "outside").fill_null(0))
        u, legend = _sequential_fill(u, "outside", "人", True, t)
        u = u.with_columns(label_value=pl.col("outside").map_elements(lambda n: "范围外 " + mask_count(n, t) + " 人",
                                                                       return_dtype=pl.Utf8))
        rooms = query(con, "rooms_in_area", {"within": area.prefix})
        all_active = query(con, "room_points", {"statuses": ["在用"]})
        active_towns = set(all_active["village_code"].drop_nulls().str.slice(0, 9).to_list()) | set(
            rooms.filter(pl.col("status") == "在用")["village_code"].drop_nulls().str.slice(0, 9).to_list())
        towns = map_units(con, "township", area.prefix)
        no_room = towns.filter(~pl.col("code").str.slice(0, 9).is_in(list(active_towns)))
        points = [dict(lon=r["lon"], lat=r["lat"], rgb=pagemaps.ROOM_COLORS.get(r["status"], [0, 0, 0]), marker="o",
                       size=7, edge="white") for r in rooms.iter_rows(named=True)
                  if r["lon"] is not None and r["lat"] is not None]
        pilots = set(settings.pilot_villages)
        pv = map_units(con, "village", area.prefix).filter(pl.col("code").is_in(list(pilots))) if pilots else None
        if pv is not None:
            points = [dict(lon=r["lon"], lat=r["lat"], rgb=None, edge=pagemaps.PILOT_COLOR, marker="o", size=16)
                      for r in pv.iter_rows(named=True)] + points
        active = rooms.filter(pl.col("status") == "在用").drop_nulls(["lon", "lat"])
        symbols = [(f"活动室（{s}）", c, "o") for s, c in pagemaps.ROOM_COLORS.items()]
        symbols.append((f"在用活动室 {radius:g} 公里服务范围", [69, 117, 180], "circle"))
        if pv is not None and pv.height:
            symbols.append(("试点村（社区）", pagemaps.PILOT_COLOR, "ring"))
        if no_room.height:
            symbols.append(("红框：无在用活动室的乡镇", pagemaps.NO_ROOM_OUTLINE, "outline"))
        outside, children = int(u["outside"].sum()), int(u["children"].sum())
        facts = [f"在用活动室 {active.height} 个（在建 {rooms.filter(pl.col('status') == '在建').height}，"
                 f"停用 {rooms.filter(pl.col('status') == '停用').height}）",
                 f"无在用活动室的乡镇 {no_room.height} 个",
                 f"{radius:g} 公里范围外儿童 {mask_count(outside, t)} 人"
                 + (f"（{outside / children:.1%}）" if children else "")]
        return MapData(title=f"{short}活动室覆盖", subtitle=subtitle + f" · 服务半径 {radius:g} 公里", units=u,
                       legend_title=f"活动室 {radius:g} 公里范围外的儿童", legend=legend, symbols=symbols,
                       points=points, circles=list(active.select("lon", "lat").rows()), radius_km=radius,
                       outline_codes=no_room["code"].to_list(), facts=facts, **data)

    figures = _figures(con, settings, level, villages)
    if kind == "terminals":
        u = units.join(figures, on="code", how="left").with_columns(
            pl.col("terminal_shortfall", "terminals_needed", "terminals_installed", "mailbox_num",
                   "mailbox_den").fill_null(0))
        u, legend = _sequential_fill(u, "terminal_shortfall", "部", False, t)
        u = u.with_columns(label_value=pl.format("缺口 {} 部", pl.col("terminal_shortfall")))
        short = int(u["terminal_shortfall"].sum())
        facts = [f"应配 {int(u['terminals_needed'].sum()):,} 部，已装 {int(u['terminals_installed'].sum()):,} 部",
                 f"缺口 {short:,} 部，补齐约 {short * settings.terminal_cost_yuan:,} 元",
                 f"年度预算 {settings.terminal_budget_yuan:,} 元",
                 f"有信箱的学校和村（居）委会 {int(u['mailbox_num'].sum())}/{int(u['mailbox_den'].sum())}"]
        return MapData(title=f"{short}亲情电话缺口", subtitle=subtitle, units=u, legend_title="亲情电话缺口（部）",
                       legend=legend, facts=facts, **data)

    if kind == "pairing":
        target = settings.targets["t4_pairing"]
        bounds = pagemaps.pairing_breaks(target)
        u = units.join(figures, on="code", how="left").with_columns(pl.col("t4_num", "t4_den").fill_null(0))

        def fill(num, den):
            if not den:
                return list(NO_DATA)
            rate = num / den * 100
            return pagemaps.DIVERGING[int(np.searchsorted(bounds, rate, side="right")) if rate < 100 else 4]

        u = u.with_columns(
            fill=pl.Series([fill(n, d) for n, d in u.select("t4_num", "t4_den").rows()], dtype=pl.List(pl.Int64)),
            label_value=pl.Series([f"{n / d * 100:.1f}%" if d else "—" for n, d in u.select("t4_num", "t4_den").rows()]))
        labels = [f"< {bounds[0]:g}%", f"{bounds[0]:g}–{bounds[1]:g}%", f"{bounds[1]:g}–{target:g}%（未达标）",
                  f"{target:g}–{bounds[3]:g}%（达标）", f"≥ {bounds[3]:g}%"]
        num, den = int(u["t4_num"].sum()), int(u["t4_den"].sum())
        met = sum(1 for n, d in u.select("t4_num", "t4_den").rows() if d and n / d * 100 >= target)
        facts = [f"结对帮扶率 {num / den:.1%}" if den else "结对帮扶率 —", f"目标线 {target:g}%",
                 f"达标{unit_word} {met}/{sum(1 for d in u['t4_den'] if d)} 个"]
        return MapData(title=f"{short}结对帮扶率", subtitle=subtitle, units=u,
                       legend_title=f"结对帮扶率（目标线 {target:g}%）", legend=list(zip(labels, pagemaps.DIVERGING)),
                       facts=facts, **data)

    # one of the seven targets: status per unit, as the 目标达标 page's map
    tg = TARGET_BY_KEY[kind]
    th = threshold(settings, kind)
    u = units.join(figures, on="code", how="left")
    status = u[f"{kind}_status"].fill_null("na").to_list()
    u = u.with_columns(
        fill=pl.Series([list(STATUS_COLORS[s]) for s in status], dtype=pl.List(pl.Int64)),
        label_value=pl.Series([f"{r:.1f}%" if r is not None else "—" for r in u[f"{kind}_rate"].to_list()]))
    legend = [(STATUS_LABELS[s] + {"met": f"（≥{th:g}%）", "amber": f"（差距≤{settings.amber_band:g}个百分点）",
                                   "short": "", "na": "（无统计对象）"}[s], list(STATUS_COLORS[s]))
              for s in ("met", "amber", "short", "na")]
    whole = _whole_area_row(con, settings, area, villages)
    counts = {s: status.count(s) for s in ("met", "amber", "short", "na")}
    facts = []
    if whole is not None:
        figure = _masked_cell(whole[f"{kind}_rate"], whole[f"{kind}_num"], whole[f"{kind}_den"], t, kind)
        verdict = STATUS_LABELS.get(whole[f"{kind}_status"], "—")
        facts.append(f"{short}：{figure}，{verdict}")
    facts += [f"目标 ≥ {th:g}%", f"达标 {counts['met']} 个，接近 {counts['amber']} 个，未达标 {counts['short']} 个"
              + (f"，不适用 {counts['na']} 个" if counts["na"] else "")]
    return MapData(title=f"{short}{tg.label}", subtitle=subtitle + f" · 目标 ≥ {th:g}%", units=u,
                   legend_title=f"{tg.label}（达标情况）", legend=legend, facts=facts, **data)


def _whole_area_row(con, settings, area: Area, villages=None) -> dict | None:
    from .targets import unit_targets

    level = "township" if area.township else "county" if area.county else "city"
    code = area.township or area.county
    df = unit_targets(con, settings, level, villages)
    if code:
        df = df.filter(pl.col("code") == code)
    return df.row(0, named=True) if df.height else None


def _masked_cell(rate, num, den, threshold: int, key: str | None = None) -> str:
    from .compliance import cell_text

    if key in UNIT_COUNT_TARGETS:
        threshold = 1

    if den in (None, 0) or rate is None:
        return "—"
    return cell_text(rate, mask_count(num, threshold), mask_count(den, threshold))


# -- geometry ----------------------------------------------------------------------


class Projector:
    """lon/lat → metres in an Albers equal-area conic centred on the area."""

    def __init__(self, lon0: float):
        from pyproj import CRS, Transformer

        self.crs = CRS.from_proj4(ALBERS.format(lon0=lon0))
        self._t = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)

    def xy(self, lon, lat):
        return self._t.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))

    def geoms(self, geoms):
        return shapely.transform(geoms, lambda c: np.column_stack(self.xy(c[:, 0], c[:, 1])))


def _geometries(con, level: str, within: str) -> dict[str, object]:
    rows = con.execute("SELECT code, ST_AsWKB(geom) FROM units WHERE level = ? AND code LIKE ? || '%' ORDER BY code",
                       [level, within]).fetchall()
    return {c: shapely.from_wkb(bytes(w)) for c, w in rows if w is not None}


def _path_of(geom, holes: bool = True):
    """A matplotlib Path for a (multi)polygon, holes included unless ``holes`` is False
    (outlines of dissolved units: slivers inside would show as stray strokes)."""
    from matplotlib.path import Path as MPath

    verts, codes = [], []
    polys = [geom] if geom.geom_type == "Polygon" else list(getattr(geom, "geoms", []))
    for p in polys:
        if p.geom_type != "Polygon" or p.is_empty:
            continue
        for ring in [p.exterior, *(p.interiors if holes else [])]:
            c = np.asarray(ring.coords)[:, :2]
            if len(c) < 3:
                continue
            verts.append(c)
            codes += [MPath.MOVETO] + [MPath.LINETO] * (len(c) - 2) + [MPath.CLOSEPOLY]
    if not verts:
        return None
    return MPath(np.concatenate(verts), codes)


def _rgb(c, alpha: float = 1.0):
    return (c[0] / 255, c[1] / 255, c[2] / 255, alpha)


# -- drawing -----------------------------------------------------------------------


@dataclass
class Layout:
    """Figure size and font scale for a target medium."""

    width_in: float
    height_in: float
    dpi: float
    font: float          # multiplier of the base point sizes (1.0 at 19.2 in wide)


def layout_for(fmt: str, size: str = "1080p") -> Layout:
    if fmt == "pdf":
        return Layout(*A4_LANDSCAPE, dpi=150, font=A4_LANDSCAPE[0] / 19.2 * 1.05)
    if size not in SIZES:
        raise ExportError(f"未知的图片尺寸：{size}；可选 {'、'.join(SIZES)}")
    w, h = SIZES[size]
    dpi = 100 * w / 1920
    return Layout(w / dpi, h / dpi, dpi=dpi, font=1.0)


def draw_map(md: MapData, con, lay: Layout, generated: dt.datetime | None = None):
    """A matplotlib Figure of one map view: title, subtitle, map with labels,
    scale bar and north arrow, legend, key figures, source and generated-at lines."""
    ensure_cjk_font()
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.patches import Circle

    generated = generated or dt.datetime.now()
    f = lay.font
    fig = Figure(figsize=(lay.width_in, lay.height_in), dpi=lay.dpi, facecolor="white")
    FigureCanvasAgg(fig)
    W, H = lay.width_in, lay.height_in
    # header band (positions in inches from the top, scaled with the fonts)
    fig.text(0.035, 1 - 0.38 * f / H, md.title, fontsize=34 * f, weight="bold", color=INK, va="top")
    fig.text(0.035, 1 - 1.02 * f / H, md.subtitle, fontsize=17 * f, color=MUTED, va="top")
    top = 1 - 1.48 * f / H
    fig.add_artist(_hline(fig, 0.035, 0.965, top, "#2c7fb8", 2.2 * f))
    bottom = 0.085

    # geometry, projected
    geoms = _geometries(con, md.level, md.within)
    codes = [c for c in md.units["code"].to_list() if c in geoms]
    lon0 = float(np.mean(md.units["lon"].to_numpy())) if md.units.height else 112.5
    proj = Projector(lon0)
    projected = dict(zip(codes, proj.geoms(np.array([geoms[c] for c in codes], dtype=object))))
    if projected:
        x0, y0, x1, y1 = shapely.total_bounds(np.array(list(projected.values()), dtype=object))
    else:
        x0, y0, x1, y1 = -1000, -1000, 1000, 1000
    pad = max(x1 - x0, y1 - y0) * 0.035
    x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
    # the map box: the largest rectangle of the data's aspect in the left area, centred
    bx0, bx1, by0, by1 = 0.03, 0.675, bottom + 0.008, top - 0.012
    box_w, box_h = (bx1 - bx0) * W, (by1 - by0) * H
    aspect = (y1 - y0) / max(x1 - x0, 1e-9)
    w_in, h_in = (box_w, box_w * aspect) if box_w * aspect <= box_h else (box_h / aspect, box_h)
    ax_x = bx0 + (box_w - w_in) / 2 / W
    ax_y = by0 + (box_h - h_in) / 2 / H
    map_ax = fig.add_axes((ax_x, ax_y, w_in / W, h_in / H))
    map_ax.set_axis_off()
    map_ax.set_xlim(x0, x1)
    map_ax.set_ylim(y0, y1)
    map_ax.set_aspect("equal", adjustable="box", anchor="C")
    # simplify below half a pixel of the final raster (300 dpi for the PDF)
    px_per_m = w_in * max(lay.dpi, 300.0) / (x1 - x0)
    tol = 0.5 / px_per_m
    fills = dict(zip(md.units["code"].to_list(), md.units["fill"].to_list()))
    paths, colours = [], []
    for c, g in projected.items():
        p = _path_of(shapely.simplify(g, tol, preserve_topology=True))
        if p is not None:
            paths.append(p)
            colours.append(_rgb(fills.get(c) or [220, 220, 220], 0.92))
    map_ax.add_collection(PathCollection(paths, facecolors=colours, edgecolors="#505050",
                                         linewidths=0.45 * f, zorder=1))
    # outlines of the level above (counties city-wide, townships in a county, the township itself)
    upper_level = "county" if md.level == "township" else "township"
    upper = _geometries(con, upper_level, md.within)
    if upper:
        ug = proj.geoms(np.array(list(upper.values()), dtype=object))
        up = [p for p in (_path_of(shapely.simplify(g, tol, preserve_topology=True), holes=False) for g in ug)
              if p is not None]
        map_ax.add_collection(PathCollection(up, facecolors="none", edgecolors="#1a1a1a", linewidths=1.5 * f,
                                             zorder=2))
    if md.outline_codes:
        towns = _geometries(con, "township", md.within)
        sel = [towns[c] for c in md.outline_codes if c in towns]
        if sel:
            from .pagemaps import NO_ROOM_OUTLINE

            og = proj.geoms(np.array(sel, dtype=object))
            op = [p for p in (_path_of(g, holes=False) for g in og) if p is not None]
            map_ax.add_collection(PathCollection(op, facecolors="none", edgecolors=_rgb(NO_ROOM_OUTLINE),
                                                 linewidths=2.6 * f, zorder=3))
    if md.circles and md.radius_km:
        cx, cy = proj.xy([c[0] for c in md.circles], [c[1] for c in md.circles])
        for x, y in zip(cx, cy):
            map_ax.add_patch(Circle((x, y), md.radius_km * 1000, facecolor=(69 / 255, 117 / 255, 180 / 255, 0.10),
                                    edgecolor=(69 / 255, 117 / 255, 180 / 255, 0.55), linewidth=0.7 * f, zorder=4))
    for pt in md.points:
        x, y = proj.xy([pt["lon"]], [pt["lat"]])
        if pt["rgb"] is None:
            map_ax.scatter(x, y, s=(pt["size"] * f) ** 2, facecolors="none", edgecolors=[_rgb(pt["edge"])],
                           linewidths=2.2 * f, zorder=5)
        else:
            map_ax.scatter(x, y, s=(pt["size"] * f) ** 2, c=[_rgb(pt["rgb"])], edgecolors=pt["edge"],
                           linewidths=0.8 * f, zorder=6)
    _labels(fig, map_ax, md, proj, projected, f)
    _scalebar(map_ax, f)
    _north_arrow(map_ax, f)

    # right panel: legend, symbols, key figures; the line step shrinks when there is much to list
    px = 0.705
    rows_needed = 2.2 + len(md.legend) + 0.9 * len(md.symbols) + 1.2 + (1.3 + 0.8 * len(md.facts) if md.facts else 0)
    avail = top - 0.03 - 0.085
    step = min(0.052 * 10.8 / H * f, avail / rows_needed)
    fs = min(1.0, step / (0.052 * 10.8 / H * f))        # text shrinks with the step
    y = top - 0.03
    fig.text(px, y, "图例", fontsize=15 * f * fs, color=MUTED, va="top")
    y -= step * 0.8
    fig.text(px, y, md.legend_title, fontsize=19 * f * fs, weight="bold", color=INK, va="top")
    y -= step * 1.2
    sw = 0.028 * 19.2 / W * f
    sh = step * 0.62
    for label, rgb in md.legend:
        fig.add_artist(_swatch(fig, px, y - sh, sw, sh, _rgb(rgb), f))
        fig.text(px + sw + 0.01, y - sh / 2, label, fontsize=16 * f * fs, color=INK, va="center")
        y -= step
    for label, rgb, marker in md.symbols:
        _symbol(fig, px + sw / 2, y - sh / 2, sw, sh, rgb, marker, f * fs)
        fig.text(px + sw + 0.01, y - sh / 2, label, fontsize=14.5 * f * fs, color=INK, va="center")
        y -= step * 0.9
    fig.text(px, y - step * 0.2, "灰色：无数据或无统计对象", fontsize=12.5 * f * fs, color=MUTED, va="top")
    y -= step * 1.2
    if md.facts:
        fig.add_artist(_hline(fig, px, 0.965, y, "#bbbbbb", 1.0 * f))
        y -= step * 0.45
        fig.text(px, y, "要点", fontsize=15 * f * fs, color=MUTED, va="top")
        y -= step * 0.85
        for line in md.facts:
            fig.text(px, y, "· " + line, fontsize=15.5 * f * fs, color=INK, va="top")
            y -= step * 0.8
    # footer
    t = md.small_count_threshold
    fig.add_artist(_hline(fig, 0.035, 0.965, 0.062, "#bbbbbb", 1.0 * f))
    fig.text(0.035, 0.035, SOURCE_LINE.format(date=md.as_of or "—"), fontsize=13 * f, color=MUTED, va="center")
    fig.text(0.965, 0.035, f"生成时间：{generated:%Y-%m-%d %H:%M}", fontsize=13 * f, color=MUTED, va="center",
             ha="right")
    fig.text(0.5, 0.035, "仅含汇总数字" + (f"；少于 {t} 人的数字显示为“<{t}”。" if t > 1 else "。"), fontsize=12 * f,
             color=MUTED, va="center", ha="center")
    return fig


def _hline(fig, x0, x1, y, color, lw):
    from matplotlib.lines import Line2D

    return Line2D([x0, x1], [y, y], transform=fig.transFigure, color=color, linewidth=lw)


def _swatch(fig, x, y, w, h, color, f):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, transform=fig.transFigure, facecolor=color, edgecolor="#555555",
                     linewidth=0.8 * f)


def _symbol(fig, x, y, w, h, rgb, marker, f):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    if marker == "outline":
        fig.add_artist(Rectangle((x - w / 2, y - h / 2), w, h, transform=fig.transFigure, facecolor="none",
                                 edgecolor=_rgb(rgb), linewidth=2.4 * f))
    elif marker == "circle":
        fig.add_artist(Line2D([x], [y], marker="o", markersize=17 * f, transform=fig.transFigure,
                              markerfacecolor=_rgb(rgb, 0.15), markeredgecolor=_rgb(rgb, 0.6), linestyle="none"))
    elif marker == "ring":
        fig.add_artist(Line2D([x], [y], marker="o", markersize=15 * f, transform=fig.transFigure,
                              markerfacecolor="none", markeredgecolor=_rgb(rgb), markeredgewidth=2.2 * f,
                              linestyle="none"))
    else:
        fig.add_artist(Line2D([x], [y], marker="o", markersize=10 * f, transform=fig.transFigure,
                              markerfacecolor=_rgb(rgb), markeredgecolor="white", linestyle="none"))


def _labels(fig, ax, md: MapData, proj: Projector, projected: dict, f: float) -> None:
    """Unit names (and the figure, when few units are in view) at their
    representative points; larger units first; a label that would overlap one
    already placed, or leave the map, is skipped."""
    import matplotlib.patheffects as pe

    renderer = fig.canvas.get_renderer()
    ax_box = ax.get_window_extent(renderer)
    rows = md.units.filter(pl.col("code").is_in(list(projected)))
    if not rows.height:
        return
    areas = {c: g.area for c, g in projected.items()}
    order = sorted(rows.iter_rows(named=True), key=lambda r: -areas.get(r["code"], 0))
    with_value = rows.height <= 40
    xs, ys = proj.xy([r["lon"] for r in order], [r["lat"] for r in order])
    # keep clear of the scale bar (lower left) and the north arrow (upper right)
    from matplotlib.transforms import Bbox

    placed = [Bbox.from_extents(*ax.transAxes.transform((0, 0)), *ax.transAxes.transform((0.32, 0.1))),
              Bbox.from_extents(*ax.transAxes.transform((0.9, 0.8)), *ax.transAxes.transform((1, 1)))]
    size = (13 if md.level == "township" else 12) * f
    halo = [pe.withStroke(linewidth=2.6 * f, foreground="white")]
    for r, x, y in zip(order, xs, ys):
        text = r["name"] + (f"\n{r['label_value']}" if with_value and r.get("label_value") else "")
        t = ax.text(x, y, text, fontsize=size, ha="center", va="center", color=INK, zorder=8,
                    linespacing=1.15, path_effects=halo, clip_on=True)
        bb = t.get_window_extent(renderer).expanded(1.06, 1.1)
        inside = (bb.x0 >= ax_box.x0 and bb.x1 <= ax_box.x1 and bb.y0 >= ax_box.y0 and bb.y1 <= ax_box.y1)
        if not inside or any(bb.overlaps(o) for o in placed):
            t.remove()
            continue
        placed.append(bb)


def _scalebar(ax, f: float) -> None:
    from matplotlib_scalebar.scalebar import ScaleBar

    words = {"km": "公里", "m": "米"}
    ax.add_artist(ScaleBar(1, "m", location="lower left", length_fraction=0.22, width_fraction=0.008,
                           box_alpha=0.85, box_color="white", frameon=True, color=INK, pad=0.4, border_pad=0.3, sep=4 * f,
                           font_properties={"family": FONT_FAMILY, "size": 13 * f},
                           scale_formatter=lambda value, unit: f"{value} {words.get(unit, unit)}"))


def _north_arrow(ax, f: float) -> None:
    ax.annotate("北", xy=(0.96, 0.985), xytext=(0.96, 0.87), xycoords="axes fraction",
                textcoords="axes fraction", ha="center", va="center", fontsize=15 * f, weight="bold", color=INK,
                arrowprops=dict(facecolor=INK, edgecolor=INK, width=5 * f, headwidth=15 * f, headlength=15 * f),
                zorder=9)


# -- map pictures: the public entry points -------------------------------------------


def render_map(con: duckdb.DuckDBPyConnection, settings: Settings, kind: str, unit: str | None = None,
               fmt: str = "png", size: str = "1080p", radius_km: float | None = None,
               generated: dt.datetime | None = None) -> bytes:
    """One map picture as bytes: PNG (1920×1080 or 3840×2160) or PDF (A4 landscape)."""
    if fmt not in ("png", "pdf"):
        raise ExportError(f"未知的格式：{fmt}；可选 png、pdf")
    area = resolve_unit(con, settings, unit)
    md = map_data(con, settings, kind, area, radius_km)
    return picture_bytes(md, con, settings, area, fmt, size, generated)


def picture_bytes(md: MapData, con, settings: Settings, area: Area, fmt: str, size: str = "1080p",
                  generated: dt.datetime | None = None) -> bytes:
    fig = draw_map(md, con, layout_for(fmt, size), generated)
    buf = io.BytesIO()
    meta = ({"Title": md.title, "Author": settings.city_name, "Creator": "liushou_geo", "Producer": "liushou_geo"}
            if fmt == "pdf" else {"Title": md.title, "Software": "liushou_geo"})
    fig.savefig(buf, format=fmt, dpi=fig.dpi, metadata=meta)
    return buf.getvalue()


def write_map(con, settings: Settings, kind: str, out: Path, unit: str | None = None, fmt: str = "png",
              size: str = "1080p", radius_km: float | None = None) -> Path:
    out = Path(out)
    data = render_map(con, settings, kind, unit, fmt, size, radius_km)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


# -- the briefing pack -------------------------------------------------------------


@dataclass
class Pack:
    pdf: Path
    xlsx: Path
    pages: int
    plan_included: bool


def _thresholds(settings: Settings) -> dict:
    from .targets import ALL_TARGETS, threshold

    return {t.key: threshold(settings, t.key) for t in ALL_TARGETS}


def summary_table(row: dict, settings: Settings) -> pd.DataFrame:
    """Every target for one unit: figure, threshold, verdict (达标 / 未达标 / 不适用); small counts masked."""
    import pandas as pd

    from .targets import ALL_TARGETS

    t = small_threshold(settings)
    th = _thresholds(settings)
    out = []
    for tg in ALL_TARGETS:
        status = row.get(f"{tg.key}_status") or "na"
        verdict = ("达标" if status == "met" else "不适用" if status == "na" else "未达标") \
            if th[tg.key] is not None else ("—" if status == "na" else "（无阈值）")
        out.append({"目标": tg.label,
                    "指标值": _masked_cell(row.get(f"{tg.key}_rate"), row.get(f"{tg.key}_num"),
                                        row.get(f"{tg.key}_den"), t, tg.key),
                    "目标值": f"≥ {th[tg.key]:g}%" if th[tg.key] is not None else "—",
                    "结论": verdict, "_status": status if th[tg.key] is not None else "na"})
    return pd.DataFrame(out)


def shortfall_table(townships: pl.DataFrame, settings: Settings) -> pd.DataFrame:
    """Townships falling short (未达标 or 接近) with their gaps (compliance.shortfalls), small counts masked."""
    import pandas as pd

    from .compliance import shortfalls
    from .targets import TARGETS

    t = small_threshold(settings)
    sf = shortfalls(townships, _thresholds(settings))
    key_of = {tg.label: tg.key for tg in TARGETS}
    rows = []
    for r in sf.iter_rows(named=True):
        k = key_of[r["target"]]
        tk = 1 if k in UNIT_COUNT_TARGETS else t
        rows.append({"乡镇（街道）": r["name"], "目标": r["target"],
                     "当前": _masked_cell(r["rate"], r["num"], r["den"], t, k),
                     "目标值": f"≥ {r['threshold']:g}%", "还差（人/个）": mask_count(r["gap"], tk)})
    return pd.DataFrame(rows, columns=["乡镇（街道）", "目标", "当前", "目标值", "还差（人/个）"])


def shortfall_matrix(townships: pl.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, statuses): one row per township falling short of any target, one
    column per target; a cell says how many more the numerator needs ('差 12')."""
    import pandas as pd

    from .compliance import shortfalls
    from .targets import TARGETS

    t = small_threshold(settings)
    sf = shortfalls(townships, _thresholds(settings))
    label_to_short = {tg.label: tg.short for tg in TARGETS}
    names = dict(townships.select("code", "name").rows())
    status = {(r["code"], tg.key): r[f"{tg.key}_status"] for r in townships.iter_rows(named=True) for tg in TARGETS}
    key_of = {tg.label: tg.key for tg in TARGETS}
    codes = list(dict.fromkeys(sf["code"].to_list()))
    cells = {c: {"乡镇（街道）": names.get(c, c), **{tg.short: "" for tg in TARGETS}} for c in codes}
    stat = {c: {"乡镇（街道）": "", **{tg.short: "" for tg in TARGETS}} for c in codes}
    for r in sf.iter_rows(named=True):
        short = label_to_short[r["target"]]
        tk = 1 if key_of[r["target"]] in UNIT_COUNT_TARGETS else t
        cells[r["code"]][short] = f"差 {mask_count(r['gap'], tk)}"
        stat[r["code"]][short] = status[(r["code"], key_of[r["target"]])]
    cols = ["乡镇（街道）"] + [tg.short for tg in TARGETS]
    return pd.DataFrame(list(cells.values()), columns=cols), pd.DataFrame(list(stat.values()), columns=cols)


def evaluation_masked(units: pl.DataFrame, settings: Settings) -> pd.DataFrame:
    """compliance.evaluation_table with counts of children below the threshold written '<5'."""
    from .compliance import evaluation_table
    from .targets import ALL_TARGETS

    t = small_threshold(settings)
    cols = ["children"] + [f"{tg.key}_{p}" for tg in ALL_TARGETS if tg.key not in UNIT_COUNT_TARGETS
                           for p in ("num", "den")]
    masked = units.with_columns([pl.col(c).map_elements(lambda n: mask_count(n, t), return_dtype=pl.Utf8)
                                 for c in cols])
    return evaluation_table(masked, _thresholds(settings))


def saved_plan(con, settings: Settings, area: Area):
    """A room plan saved by the planner for this area, if the planner offers one; else None."""
    try:
        from . import planner
    except Exception:          # the planner is optional
        return None
    fn = getattr(planner, "saved_plan", None) or getattr(planner, "load_saved_plan", None)
    if not callable(fn):
        return None
    try:
        return fn(con, settings, area.county)
    except Exception:
        return None


def _page(lay: Layout, title: str, subtitle: str, generated: dt.datetime, as_of, page_no: int, t: int):
    ensure_cjk_font()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(lay.width_in, lay.height_in), dpi=lay.dpi, facecolor="white")
    FigureCanvasAgg(fig)
    f, H = lay.font, lay.height_in
    fig.text(0.035, 1 - 0.38 * f / H, title, fontsize=30 * f, weight="bold", color=INK, va="top")
    fig.text(0.035, 1 - 0.98 * f / H, subtitle, fontsize=16 * f, color=MUTED, va="top")
    fig.add_artist(_hline(fig, 0.035, 0.965, 1 - 1.42 * f / H, "#2c7fb8", 2.2 * f))
    fig.add_artist(_hline(fig, 0.035, 0.965, 0.062, "#bbbbbb", 1.0 * f))
    fig.text(0.035, 0.035, SOURCE_LINE.format(date=as_of or "—"), fontsize=13 * f, color=MUTED, va="center")
    fig.text(0.5, 0.035, f"仅含汇总数字；少于 {t} 人的数字显示为“<{t}”。 · 第 {page_no} 页", fontsize=12 * f,
             color=MUTED, va="center", ha="center")
    fig.text(0.965, 0.035, f"生成时间：{generated:%Y-%m-%d %H:%M}", fontsize=13 * f, color=MUTED, va="center",
             ha="right")
    return fig, 1 - 1.42 * f / H


def _table_on(fig, top: float, df, lay: Layout, colours=None, col_widths=None) -> None:
    """A table of text cells below ``top`` (figure fraction)."""
    ax = fig.add_axes((0.035, 0.085, 0.93, top - 0.11))
    ax.set_axis_off()
    cells = [[str(v) for v in row] for row in df.itertuples(index=False)]
    tab = ax.table(cellText=cells or [["—"] * len(df.columns)], colLabels=list(df.columns), loc="upper center",
                   cellLoc="left", colLoc="left", colWidths=col_widths,
                   cellColours=colours if cells else None)
    tab.auto_set_font_size(False)
    tab.set_fontsize(16 * lay.font)
    n = len(cells) + 1
    tab.scale(1, min(2.2, (top - 0.13) * lay.height_in * 72 / (n * 16 * lay.font * 1.25)) or 1)
    for (r, c), cell in tab.get_celld().items():
        cell.set_edgecolor("#bbbbbb")
        cell.set_linewidth(0.6)
        if r == 0:
            cell.set_facecolor("#DDEBF7")
            cell.get_text().set_weight("bold")


def build_pack(con: duckdb.DuckDBPyConnection, settings: Settings, unit: str | None, out_dir: Path,
               plan=None, generated: dt.datetime | None = None) -> Pack:
    """The briefing pack for the city or one county: a multi-page PDF (cover,
    compliance summary, a map per target, townships falling short, the room
    plan if one is given or saved) and the same tables as an Excel workbook."""
    import pandas as pd
    from matplotlib.backends.backend_pdf import PdfPages

    from .compliance import STATUS_COLORS, to_excel
    from .metrics import overview
    from .targets import unit_targets, village_targets

    ensure_cjk_font()
    generated = generated or dt.datetime.now()
    area = resolve_unit(con, settings, unit, allow_township=False)
    name = area_title(con, settings, area)
    short = name.split(" ")[-1]
    as_of = _as_of(con)
    t = small_threshold(settings)
    lay = layout_for("pdf")
    villages = village_targets(con, settings)
    level = "county" if area.county else "city"
    whole = unit_targets(con, settings, level, villages)
    if area.county:
        whole = whole.filter(pl.col("code") == area.county)
    row = whole.row(0, named=True) if whole.height else {}
    towns = unit_targets(con, settings, "township", villages).filter(pl.col("code").str.starts_with(area.prefix))
    summary = summary_table(row, settings)
    gaps = shortfall_table(towns, settings)
    plan = plan if plan is not None else saved_plan(con, settings, area)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{short}留守儿童关爱服务简报_{as_of or generated.date()}"
    pdf_path, xlsx_path = out_dir / f"{stem}.pdf", out_dir / f"{stem}.xlsx"
    title = f"{short}留守儿童关爱服务工作简报"
    page = 0
    with PdfPages(pdf_path, metadata={"Title": title, "Author": settings.city_name, "Creator": "liushou_geo",
                                      "Producer": "liushou_geo", "CreationDate": None}) as pdf:
        # cover
        page += 1
        fig, top = _page(lay, title, f"{name} · 数据截至 {as_of or '—'}", generated, as_of, page, t)
        fig_ = overview(con, settings, area.county)
        met = int((summary["_status"] == "met").sum())
        judged = int((summary["_status"] != "na").sum())
        facts = [("留守儿童", f"{mask_count(fig_['children'], t)} 人"),
                 ("乡镇（街道） / 村（社区）", f"{fig_['townships']} 个 / {fig_['villages']} 个"),
                 ("结对帮扶率", "—" if fig_["pairing_rate"] is None else f"{fig_['pairing_rate']:.1%}"),
                 ("亲情电话缺口", f"{fig_['terminal_shortfall']:,} 部"),
                 ("无在用活动室的乡镇", f"{fig_['townships_without_room']} 个"),
                 ("目标达标", f"{met} / {judged} 项")]
        y = top - 0.09
        for k, v in facts:
            fig.text(0.08, y, k, fontsize=20 * lay.font, color=MUTED, va="top")
            fig.text(0.45, y, v, fontsize=24 * lay.font, weight="bold", color=INK, va="top")
            y -= 0.095
        fig.text(0.08, y - 0.03, "本简报仅含汇总数字，不含任何儿童的姓名、身份证号或联系方式，可用于会议材料。",
                 fontsize=14 * lay.font, color=MUTED, va="top")
        pdf.savefig(fig)
        # compliance summary
        page += 1
        fig, top = _page(lay, f"{short}七项目标达标情况", f"{name} · 数据截至 {as_of or '—'}", generated, as_of, page, t)
        shown = summary.drop(columns=["_status"])
        colours = [["white", "white", "white", _hex(STATUS_COLORS[s] if s in ("met", "short", "amber") else (245, 245, 245))]
                   for s in summary["_status"]]
        colours = [[c[0], c[1], c[2], c[3] if s != "amber" else _hex(STATUS_COLORS["short"])]
                   for c, s in zip(colours, summary["_status"])]
        _table_on(fig, top - 0.02, shown, lay, colours, col_widths=[0.34, 0.32, 0.16, 0.18])
        for (r, c), cell in fig.axes[-1].tables[0].get_celld().items():
            if r > 0 and c == 3 and summary["_status"].iloc[r - 1] in ("met", "short", "amber"):
                cell.get_text().set_color("white")
                cell.get_text().set_weight("bold")
        pdf.savefig(fig)
        # a map per target
        for kind in TARGET_KINDS:
            page += 1
            md = map_data(con, settings, kind, area, villages=villages)
            fig = draw_map(md, con, lay, generated)
            fig.text(0.5, 0.012, f"第 {page} 页", fontsize=10 * lay.font, color=MUTED, ha="center")
            pdf.savefig(fig)
        # townships falling short: a gap matrix (the workbook has the long list)
        cells, stats = shortfall_matrix(towns, settings)
        per_page = 20
        chunks = list(range(0, max(len(cells), 1), per_page))
        for i, start in enumerate(chunks, start=1):
            page += 1
            sub = (f"{name} · 未达标（红）或接近达标（黄）的乡镇（街道）{len(cells)} 个；单元格为达到目标还差的人数或单位数"
                   + (f" · {i}/{len(chunks)}" if len(chunks) > 1 else ""))
            fig, top = _page(lay, f"{short}未达标乡镇（街道）及差距", sub, generated, as_of, page, t)
            if len(cells):
                part, st = cells.iloc[start:start + per_page], stats.iloc[start:start + per_page]
                colours = [[_hex(STATUS_COLORS[v]) if v in ("short", "amber") else "white" for v in row]
                           for row in st.itertuples(index=False)]
                _table_on(fig, top - 0.02, part, lay, colours, col_widths=[0.16] + [0.105] * (len(part.columns) - 1))
                for (r, c), cell in fig.axes[-1].tables[0].get_celld().items():
                    if r > 0 and st.iloc[r - 1, c] == "short":
                        cell.get_text().set_color("white")
            else:
                fig.text(0.08, top - 0.1, "所有乡镇（街道）各项目标均已达标。", fontsize=20 * lay.font, color=INK)
            pdf.savefig(fig)
        # room plan
        plan_sheets = {}
        if plan is not None:
            try:
                from .planner import rooms_table, summary_rows

                plan_summary = pd.DataFrame(summary_rows(plan), columns=["项目", "内容"])
                plan_rooms = rooms_table(plan.new_rooms).to_pandas()
            except Exception:
                plan_summary = plan_rooms = None
            if plan_summary is not None:
                page += 1
                fig, top = _page(lay, f"{short}活动室选址方案", f"{name} · 拟建 {len(plan_rooms)} 个", generated,
                                 as_of, page, t)
                _table_on(fig, top - 0.02, plan_summary, lay, col_widths=[0.3, 0.7])
                pdf.savefig(fig)
                if len(plan_rooms):
                    page += 1
                    fig, top = _page(lay, f"{short}拟建活动室", f"{name} · 按新增覆盖儿童排序", generated, as_of,
                                     page, t)
                    rt = plan_rooms.head(20).copy()
                    col = "新增覆盖儿童"
                    if col in rt:
                        rt[col] = [mask_count(v, t) for v in rt[col]]
                    _table_on(fig, top - 0.02, rt, lay)
                    pdf.savefig(fig)
                plan_rooms_x = plan_rooms.copy()
                if "新增覆盖儿童" in plan_rooms_x:
                    plan_rooms_x["新增覆盖儿童"] = [mask_count(v, t) for v in plan_rooms_x["新增覆盖儿童"]]
                plan_sheets = {"选址方案": plan_rooms_x, "选址参数与结果": plan_summary}
    # the workbook: the same tables
    both = pl.concat([whole, towns], how="vertical_relaxed")
    sheets = {"达标情况": summary.drop(columns=["_status"]), "未达标乡镇": gaps,
              "年度评估": evaluation_masked(both, settings), **plan_sheets}
    xlsx_path.write_bytes(to_excel(sheets, title, f"{name}；数据截至 {as_of or '—'}；"
                                   f"数据来源：各学校、村（居）委会留守儿童信息台帐；少于 {t} 人的数字显示为“<{t}”"))
    return Pack(pdf=pdf_path, xlsx=xlsx_path, pages=page, plan_included=bool(plan_sheets))


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def TARGETS_ALL():
    """Every target (the seven and the room targets), for labels."""
    from .targets import ALL_TARGETS

    return ALL_TARGETS
