"""Pictures and packs for briefings (issue #7): every kind of map picture from
the small demo city, the briefing pack, fonts, small counts, and that no
child-level field reaches any export."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import warnings

import numpy as np
import polars as pl
import pytest
from PIL import Image

from liushou_geo import export
from liushou_geo.area import Area

pytestmark = pytest.mark.filterwarnings("error::UserWarning")   # "Glyph … missing" is a UserWarning

MASKED_ID = re.compile(r"\d{6}\*{4,}\d{3}[\dXx]")
POPPLER = shutil.which("pdffonts") and shutil.which("pdftotext")
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdffonts, pdftotext) not installed: "
                                                       "apt-get install poppler-utils")


@pytest.fixture(scope="module")
def county_code(small_db):
    from liushou_geo.store import connect

    con = connect(small_db[0], read_only=True)
    try:
        return con.execute("SELECT code FROM units WHERE level = 'county' ORDER BY code LIMIT 1").fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def child_strings(small_truth):
    """Every child name and ID of the ground truth (raw and masked form)."""
    kids = small_truth.children
    names = {n for n in kids["name"].dropna().astype(str) if len(n) >= 2}
    ids = {str(i) for i in kids["id"].dropna()}
    masked = {i[:6] + "********" + i[-4:] for i in ids if len(i) == 18}
    return names, ids | masked


def _render(con, settings, kind, unit=None, fmt="png", size="1080p"):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        return export.render_map(con, settings, kind, unit, fmt, size)


def _non_white_share(png: bytes) -> float:
    """Share of non-white pixels in the map region (left part, between header and footer)."""
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    h, w, _ = img.shape
    region = img[int(h * 0.16):int(h * 0.9), int(w * 0.03):int(w * 0.67)]
    return float((region.min(axis=2) < 245).mean())


def _pdftext(pdf: bytes, tmp_path) -> str:
    p = tmp_path / "x.pdf"
    p.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(p), "-"], capture_output=True, text=True, check=True).stdout


def _assert_no_child_fields(text: str, child_strings) -> None:
    names, ids = child_strings
    found_names = [n for n in names if n in text]
    assert not found_names, f"child names in export: {found_names[:5]}"
    assert not [i for i in ids if i in text]
    assert not MASKED_ID.search(text)


@pytest.mark.parametrize("kind", export.KINDS)
def test_every_kind_renders_at_slide_size_with_a_map(small_con, settings, kind, county_code, child_strings):
    for unit in (None, county_code):
        png = _render(small_con, settings, kind, unit)
        img = Image.open(io.BytesIO(png))
        assert img.size == (1920, 1080)
        assert _non_white_share(png) > 0.15, f"{kind} {unit}: map region nearly blank"
        meta = " ".join(str(v) for v in img.info.values())
        _assert_no_child_fields(meta, child_strings)


def test_4k_size(small_con, settings):
    png = _render(small_con, settings, "pairing", size="4k")
    assert Image.open(io.BytesIO(png)).size == (3840, 2160)
    assert _non_white_share(png) > 0.15


def test_township_view_shows_villages(small_con, settings, county_code):
    town = small_con.execute("SELECT code FROM units WHERE level = 'township' AND code LIKE ? ORDER BY code LIMIT 1",
                             [county_code[:6] + "%"]).fetchone()[0]
    md = export.map_data(small_con, settings, "children", export.resolve_unit(small_con, settings, town))
    assert md.level == "village" and md.units["code"].str.starts_with(town[:9]).all()
    assert Image.open(io.BytesIO(_render(small_con, settings, "children", town))).size == (1920, 1080)


@needs_poppler
@pytest.mark.parametrize("kind", ["children", "rooms", "t7"])
def test_pdf_embeds_noto_cjk_and_holds_no_child_field(small_con, settings, kind, tmp_path, child_strings):
    pdf = _render(small_con, settings, kind, fmt="pdf")
    p = tmp_path / "m.pdf"
    p.write_bytes(pdf)
    fonts = subprocess.run(["pdffonts", str(p)], capture_output=True, text=True, check=True).stdout
    assert "NotoSansCJK" in fonts
    text = _pdftext(pdf, tmp_path)
    assert "数据来源：各学校、村（居）委会留守儿童信息台帐 截至" in text and "生成时间" in text
    _assert_no_child_fields(text, child_strings)
    # A4 landscape (842 × 595 pt)
    info = subprocess.run(["pdfinfo", str(p)], capture_output=True, text=True).stdout
    assert re.search(r"Page size:\s+841\.\d+ x 595\.\d+", info)


def test_same_colours_as_the_dashboard(small_con, settings, county_code):
    """Per unit, the picture's fill is the dashboard map's fill (pagemaps / mapview)."""
    from liushou_geo import pagemaps
    from liushou_geo.mapview import target_map
    from liushou_geo.targets import unit_targets

    for area in (Area(), Area(county=county_code)):
        figures = export._figures(small_con, settings, area.level_in_view)
        decks = {
            "terminals": pagemaps.terminals_view(small_con, settings, area, figures).map.deck,
            "pairing": pagemaps.pairing_view(small_con, settings, area, figures).map.deck,
            "t4": target_map(small_con, settings, unit_targets(small_con, settings, area.level_in_view), "t4",
                             area.level_in_view, area.prefix).deck,
        }
        for kind, deck in decks.items():
            dash = {r["code"]: list(r["fill"]) for r in deck.layers[0].data}
            md = export.map_data(small_con, settings, kind, area)
            mine = dict(zip(md.units["code"].to_list(), md.units["fill"].to_list()))
            assert dash and all(mine[c] == dash[c] for c in dash), kind


def test_mask_count_and_legend_classes():
    assert [export.mask_count(n, 5) for n in (None, 0, 1, 4, 5, 1234)] == ["—", "0", "<5", "<5", "5", "1,234"]
    classes = export.masked_breaks([2, 4, 10, 30, 80], 5)
    assert classes == [(4, 0), (10, 2), (30, 3), (80, 4)]
    labels = export.masked_labels(classes, "人", 5, all_zero=False)
    assert labels == ["<5 人", "5–10 人", "11–30 人", "31–80 人"]
    assert export.masked_breaks([12, 40], 5) == [(12, 0), (40, 1)]
    assert export.masked_labels([(12, 0), (40, 1)], "人", 5, False) == ["≤ 12 人", "13–40 人"]
    for b in ([1, 2, 3], [0, 4, 9], [3, 7]):
        for label in export.masked_labels(export.masked_breaks(b, 5), "人", 5, False):
            assert not re.search(r"(?<![<\d])[1-4](?!\d)", label), label


class _Settings:
    """The session's settings with another small-count threshold (works whether or not
    Settings has the field yet)."""

    def __init__(self, base, threshold):
        self._base, self.small_count_threshold = base, threshold

    def __getattr__(self, name):
        return getattr(self._base, name)


@needs_poppler
def test_small_counts_are_shown_masked_in_pictures(small_con, settings, tmp_path, county_code):
    """With the threshold at 40, villages with 1–39 children are written '<40'
    in labels, legend and key figures, never with their number."""
    from liushou_geo.metrics import unit_metrics

    s40 = _Settings(settings, 40)
    v = unit_metrics(small_con, "village", settings).filter((pl.col("children") > 0) & (pl.col("children") < 40))
    assert v.height
    town = v["code"][0][:9] + "000"
    md = export.map_data(small_con, s40, "children", export.resolve_unit(small_con, s40, town))
    small = md.units.filter((pl.col("children") > 0) & (pl.col("children") < 40))
    assert small.height and (small["label_value"] == "<40 人").all()
    assert md.legend[0][0] == "<40 人"
    text = _pdftext(_render(small_con, s40, "children", town, fmt="pdf"), tmp_path)
    assert "<40" in text
    for n in set(small["children"].to_list()):
        assert not re.search(rf"(?<![\d<–]){n} 人", text), n


def test_small_gaps_are_lt5_in_tables(small_con, settings):
    """Townships' gaps and counts below 5 children are '<5' in the pack's tables."""
    from liushou_geo.compliance import shortfalls
    from liushou_geo.targets import unit_targets

    towns = unit_targets(small_con, settings, "township")
    raw = shortfalls(towns, export._thresholds(settings))
    table = export.shortfall_table(towns, settings)
    assert len(table) == raw.height
    children_gaps = [(g, str(c)) for g, c, t in zip(raw["gap"], table["还差（人/个）"], raw["target"])
                     if t != "亲情电话和信箱配备率"]
    small = [c for g, c in children_gaps if 0 < g < 5]
    assert small and all(c == "<5" for c in small)
    assert all(c not in {"1", "2", "3", "4"} for _, c in children_gaps)


@needs_poppler
def test_briefing_pack(small_con, settings, tmp_path, county_code, child_strings):
    import openpyxl

    for unit in (None, county_code):
        out = tmp_path / (unit or "city")
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            pack = export.build_pack(small_con, settings, unit, out)
        assert pack.pdf.exists() and pack.xlsx.exists()
        assert pack.pages >= 2 + len(export.TARGET_KINDS) + 1
        fonts = subprocess.run(["pdffonts", str(pack.pdf)], capture_output=True, text=True, check=True).stdout
        assert "NotoSansCJK" in fonts
        text = _pdftext(pack.pdf.read_bytes(), tmp_path)
        for words in ("七项目标达标情况", "未达标乡镇", "结对帮扶率", "法律援助率", "达标"):
            assert words in text
        _assert_no_child_fields(text, child_strings)
        wb = openpyxl.load_workbook(pack.xlsx)
        assert {"达标情况", "未达标乡镇", "年度评估"} <= set(wb.sheetnames)
        cells = []
        for ws in wb.worksheets:
            for row in ws.iter_rows(values_only=True):
                cells += [str(c) for c in row if c is not None]
        joined = "\n".join(cells)
        _assert_no_child_fields(joined, child_strings)
        assert not any(c[:1] in "=+-@" for c in cells)
        # small counts in the workbook are '<5', never 1–4 (counts of children)
        ev = wb["年度评估"]
        header = [c.value for c in ev[4]]
        col = header.index("留守儿童（人）")
        for row in ev.iter_rows(min_row=5, values_only=True):
            assert str(row[col]) not in {"1", "2", "3", "4"}


def test_unknown_unit_exits_2_with_a_chinese_message(small_db, capsys, tmp_path):
    import argparse

    from liushou_geo import export_cli

    parser = argparse.ArgumentParser()
    export_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "--db", str(small_db[0]), "--map", "children", "--unit", "439999999999",
                              "--format", "png", "--out", str(tmp_path / "x.png")])
    assert export_cli.run(args) == 2
    assert "未知的区划代码" in capsys.readouterr().err
    args = parser.parse_args(["export", "--db", str(small_db[0]), "--map", "t4", "--format", "png",
                              "--out", str(tmp_path / "ok.png")])
    assert export_cli.run(args) == 0
    assert Image.open(tmp_path / "ok.png").size == (1920, 1080)
    args = parser.parse_args(["export", "--db", str(small_db[0]), "--pack", "--out", str(tmp_path / "pack")])
    assert export_cli.run(args) == 0
    assert sorted(p.suffix for p in (tmp_path / "pack").iterdir()) == [".pdf", ".xlsx"]


def test_missing_font_is_a_clear_error(monkeypatch):
    """No system font and no bundled font (package noto-cjk-sans-otc gone): a clear Chinese message."""
    monkeypatch.setattr(export, "_system_font_candidates", lambda *a, **k: [])
    monkeypatch.setattr(export, "_bundled_font_file", lambda: None)
    monkeypatch.setattr(export, "_active", None)
    with pytest.raises(export.ExportError, match="找不到中文字体") as e:
        export.ensure_cjk_font()
    assert export.FONT_PACKAGE in str(e.value) and "重新安装" in str(e.value)
