"""Exports work on any machine (issue #15): the CJK font is found by file (the
system's Noto Sans CJK SC, else the copy bundled by ``noto-cjk-sans-otc``),
never through matplotlib's font cache, and PDFs embed it as a real font.

The end-to-end cases run in a subprocess with a fresh MPLCONFIGDIR, so that
neither matplotlib's cache nor earlier tests in this process can help."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from liushou_geo import export

TEXT = "留守儿童关爱服务地图 示范市 结对帮扶率"
ROOT = Path(__file__).resolve().parent.parent
POPPLER = shutil.which("pdffonts") and shutil.which("pdftotext")
NO_POPPLER = "poppler-utils (pdffonts, pdftotext) not installed: apt-get install poppler-utils"

# Runs in a subprocess: argv = out_dir, then "system" font files (JSON list, or
# "none" to hide the bundled font as well). Prints what was used, as JSON.
SCRIPT = r"""
import json, sys, warnings
from pathlib import Path
from liushou_geo import export

out, system = Path(sys.argv[1]), json.loads(sys.argv[2])
by_weight = system if isinstance(system, dict) else {"400": system or []}
export._system_font_candidates = lambda weight=400: list(by_weight.get(str(weight), []))
if system is None:
    export._bundled_font_file = lambda: None
from matplotlib import font_manager
result = {"cached_family_found": True}
try:
    font_manager.findfont(font_manager.FontProperties(family=export.FONT_FAMILY), fallback_to_default=False)
except ValueError:
    result["cached_family_found"] = False
try:
    path = export.ensure_cjk_font()
except export.ExportError as e:
    result["error"] = str(e)
    print(json.dumps(result, ensure_ascii=False))
    sys.exit(0)
from matplotlib import rcParams
from matplotlib.figure import Figure
found = font_manager.findfont(font_manager.FontProperties(family=export.FONT_FAMILY), fallback_to_default=False)
fig = Figure(figsize=(8, 1.6), dpi=100)
fig.text(0.03, 0.55, sys.argv[3], fontsize=24)
fig.text(0.03, 0.1, sys.argv[3], fontsize=24, weight="bold")
bold = font_manager.findfont(font_manager.FontProperties(family=export.FONT_FAMILY, weight="bold"))
with warnings.catch_warnings():
    warnings.simplefilter("error")               # "Glyph ... missing from font(s)" is a UserWarning
    fig.savefig(out / "x.png")
    fig.savefig(out / "x.pdf")
src = export._active.source
result.update(path=path, found=str(getattr(found, "path", found)), family=rcParams["font.family"][0],
              fonttype=rcParams["pdf.fonttype"], origin=src.origin, source=str(src.path), face=src.face,
              language=rcParams.get("text.language", "zh-Hans"), bold=str(getattr(bold, "path", bold)),
              bold_source=str(export._active.bold.path) if export._active.bold else None)
print(json.dumps(result, ensure_ascii=False))
"""


@pytest.fixture(scope="session")
def font_cache(tmp_path_factory):
    """A font cache of its own for this session: the first export converts the
    font in it from scratch (about 30 s), as on a fresh machine."""
    return tmp_path_factory.mktemp("font_cache")


@pytest.fixture(scope="session")
def bundled():
    path = export._bundled_font_file()
    assert path is not None and path.is_file(), "noto-cjk-sans-otc is a dependency: pip install noto-cjk-sans-otc"
    return path


def _run(out: Path, mplconfig: Path, font_cache: Path | str, system: list[str] | None) -> dict:
    env = dict(os.environ, MPLCONFIGDIR=str(mplconfig), LIUSHOU_FONT_CACHE=str(font_cache),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out), json.dumps(system), TEXT],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _assert_png_has_text(png: Path) -> None:
    img = np.asarray(Image.open(png).convert("L"))
    assert (img < 128).mean() > 0.02, "no text drawn"


def _pdf_fonts_and_text(pdf: Path) -> tuple[str, str, str]:
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    return fonts.stdout, text.stdout, fonts.stderr + text.stderr


def test_fresh_machine_uses_the_bundled_font(tmp_path, font_cache, bundled):
    """No system font, an empty matplotlib cache, an empty font cache: PNG and PDF still work."""
    r = _run(tmp_path / "out", tmp_path / "mpl", font_cache, [])
    assert "error" not in r, r.get("error")
    assert r["origin"] == "bundled" and Path(r["source"]) == bundled
    assert r["family"] == export.FONT_FAMILY and r["found"] == r["path"]
    assert Path(r["path"]).parent == font_cache and r["fonttype"] == 42       # the TrueType copy
    # Shaping would follow the locale (a Japanese one draws Japanese forms from the same face).
    assert r["language"] == "zh-Hans"
    assert r["bold_source"] is None and r["bold"] == r["path"]                  # no Bold: set in Regular
    _assert_png_has_text(tmp_path / "out" / "x.png")
    pdf = tmp_path / "out" / "x.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and b"FontFile2" in pdf.read_bytes()
    if not POPPLER:
        pytest.skip(NO_POPPLER)
    fonts, text, warnings = _pdf_fonts_and_text(pdf)
    assert "NotoSansCJKsc" in fonts and "CID TrueType" in fonts
    assert TEXT in text
    assert "Mismatch" not in warnings and "rror" not in warnings, warnings


def test_without_a_writable_cache_pdfs_embed_type3(tmp_path, bundled):
    """If the TrueType copy cannot be stored, the CFF face is used as is and PDFs
    embed it as Type 3 (a CFF face as Type 42 makes a broken PDF)."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = _run(tmp_path / "out", tmp_path / "mpl", blocker / "fonts", [])
    assert r["origin"] == "bundled" and r["path"] == str(bundled) and r["fonttype"] == 3
    assert r["family"] == export.FONT_FAMILY
    _assert_png_has_text(tmp_path / "out" / "x.png")
    if not POPPLER:
        pytest.skip(NO_POPPLER)
    fonts, text, warnings = _pdf_fonts_and_text(tmp_path / "out" / "x.pdf")
    assert "NotoSansCJKsc" in fonts and "Type 3" in fonts
    assert TEXT in text and "Mismatch" not in warnings


def test_a_system_font_found_by_file_is_preferred(tmp_path, monkeypatch, font_cache, bundled):
    system = tmp_path / "fonts" / "NotoSansCJK-Regular.ttc"
    system.parent.mkdir()
    shutil.copyfile(bundled, system)
    not_cjk = glob.glob(str(Path(__import__("matplotlib").get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"))
    # fc-match answers even without the font (with some fallback face): such answers are skipped.
    monkeypatch.setattr(export, "_system_font_candidates",
                        lambda weight=400: not_cjk + ["/nonexistent.ttc", str(system)])
    found = export.find_cjk_font()
    assert found.origin == "system" and found.path == system and found.face == 2 and found.cff

    assert export.find_cjk_font(export.BOLD) is None           # a Regular file is no Bold
    monkeypatch.setattr(export, "_system_font_candidates", lambda weight=400: not_cjk)
    assert export.find_cjk_font().origin == "bundled"
    assert export.find_cjk_font(export.BOLD) is None           # the package has no Bold

    # End to end, in a fresh process.
    r = _run(tmp_path / "out", tmp_path / "mpl", font_cache, [str(system)])
    assert r["origin"] == "system" and r["source"] == str(system) and r["face"] == 2
    assert r["family"] == export.FONT_FAMILY and r["found"] == r["path"]
    _assert_png_has_text(tmp_path / "out" / "x.png")


def test_a_truetype_system_font_is_used_directly(tmp_path, font_cache, bundled):
    """A system face with TrueType outlines needs no conversion."""
    r = _run(tmp_path / "a", tmp_path / "mpl", font_cache, [])       # makes the TrueType copy (or reuses it)
    ttf = tmp_path / "NotoSansCJKsc-Regular.ttf"
    shutil.copyfile(r["path"], ttf)
    empty = tmp_path / "empty_cache"
    r = _run(tmp_path / "b", tmp_path / "mpl", empty, [str(ttf)])
    assert r["origin"] == "system" and r["path"] == str(ttf) and r["fonttype"] == 42
    assert not empty.exists() or not list(empty.iterdir())
    if POPPLER:
        fonts, text, _ = _pdf_fonts_and_text(tmp_path / "b" / "x.pdf")
        assert "NotoSansCJK" in fonts and TEXT in text


def test_a_stale_matplotlib_cache_still_finds_the_font(tmp_path, font_cache, bundled):
    """matplotlib's cache is built while no CJK font exists; the font arrives
    later (as after apt-get install fonts-noto-cjk): it is found at once."""
    mpl = tmp_path / "mpl"
    r = _run(tmp_path / "before", mpl, font_cache, None)           # no font at all
    assert "error" in r and export.FONT_PACKAGE in r["error"]
    caches = glob.glob(str(mpl / "fontlist-*.json"))
    assert len(caches) == 1
    # The cache as it was before the font existed (a no-op on a machine without one).
    data = json.loads(Path(caches[0]).read_text())
    data["ttflist"] = [e for e in data["ttflist"] if "CJK" not in e["name"]]
    Path(caches[0]).write_text(json.dumps(data))

    system = tmp_path / "usr" / "NotoSansCJK-Regular.ttc"
    system.parent.mkdir()
    shutil.copyfile(bundled, system)
    r = _run(tmp_path / "after", mpl, font_cache, [str(system)])
    assert r["cached_family_found"] is False                       # the stale cache does not know it
    assert r["origin"] == "system" and r["found"] == r["path"]     # found by file all the same
    assert glob.glob(str(mpl / "fontlist-*.json")) == caches        # no rebuild of the cache was needed
    _assert_png_has_text(tmp_path / "after" / "x.png")



def _fake_bold(regular_ttf: Path, out: Path) -> Path:
    """A stand-in for the system's Bold: the Regular TrueType copy renamed and
    marked weight 700 (same outlines; enough to test how Bold is found and used)."""
    from fontTools.ttLib import TTFont

    with TTFont(regular_ttf) as font:
        font["OS/2"].usWeightClass = 700
        font["OS/2"].fsSelection = (font["OS/2"].fsSelection | 0x20) & ~0x40     # BOLD, not REGULAR
        font["head"].macStyle |= 1
        for rec in font["name"].names:
            if rec.nameID in (2, 4, 6):
                text = rec.toUnicode()
                rec.string = {2: "Bold", 4: "Noto Sans CJK SC Bold", 6: "NotoSansCJKsc-Bold"}[rec.nameID] \
                    if text else text
        font.save(out)
    return out


def test_a_system_bold_is_used_for_bold_text(tmp_path, font_cache, bundled):
    """Titles are bold: the system's Bold face is found by file as well (the
    bundled package has Regular only)."""
    r = _run(tmp_path / "a", tmp_path / "mpl", font_cache, [])
    bold = _fake_bold(Path(r["path"]), tmp_path / "NotoSansCJKsc-Bold.ttf")
    r = _run(tmp_path / "b", tmp_path / "mpl", font_cache, {"400": [], "700": [str(bold)]})
    assert r["origin"] == "bundled" and r["bold_source"] == str(bold) and r["bold"] == str(bold)
    assert r["found"] == r["path"] != r["bold"]
    if POPPLER:
        fonts, text, warnings = _pdf_fonts_and_text(tmp_path / "b" / "x.pdf")
        assert "NotoSansCJKsc-Bold" in fonts and "NotoSansCJKsc-Regular" in fonts
        assert text.count(TEXT) == 2 and "Mismatch" not in warnings
