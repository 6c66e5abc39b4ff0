"""Building pydeck maps for the pages: choropleths of units with class
breaks, colour-blind-safe palettes, Chinese tooltips and no basemap.

Library code (no streamlit): the pages pass the result to ``st.pydeck_chart``.
The spec is serialised compactly once (pydeck's own ``to_json`` pretty-prints
with indent 2, three to five times the bytes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl
import pydeck as pdk
from pydeck.bindings.json_tools import default_serialize

from .settings import Settings
from .store import query

# ColorBrewer YlGnBu, 5 classes: sequential and colour-blind safe.
SEQUENTIAL = [[255, 255, 204], [161, 218, 180], [65, 182, 196], [44, 127, 184], [37, 52, 148]]
NO_DATA = [220, 220, 220]
OUTLINE = [80, 80, 80]
# Canvas the view is fitted to (the page's map is about this size).
_FIT_W, _FIT_H = 760, 520


_COORD_FIELDS = ("polygon", "path", "position")


class CompactDeck(pdk.Deck):
    """A Deck whose JSON is compact and computed once.

    With ``gcj02=True`` every coordinate in the layers' data (and the view's
    centre) is shifted to GCJ-02 when serialised, to sit on GCJ-02 tiles.
    """

    def __init__(self, *args, gcj02: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._gcj02 = gcj02

    def to_json(self) -> str:
        if getattr(self, "_json_cache", None) is None:
            if getattr(self, "_gcj02", False):
                self._shift_to_gcj02()
            self._json_cache = json.dumps(self, default=default_serialize, separators=(",", ":"),
                                          ensure_ascii=False)
        return self._json_cache

    def _shift_to_gcj02(self) -> None:
        from .gcj02 import shift_coords, to_gcj02

        for layer in self.layers:
            data = getattr(layer, "data", None)
            if isinstance(data, list):
                layer.data = [{k: shift_coords(v) if k in _COORD_FIELDS else v for k, v in row.items()}
                              if isinstance(row, dict) else row for row in data]
        vs = self.initial_view_state
        vs.longitude, vs.latitude = to_gcj02(vs.longitude, vs.latitude)
        self._gcj02 = False


@dataclass
class MapView:
    deck: CompactDeck
    legend_title: str
    legend: list[tuple[str, list[int]]]   # (label, rgb) per class
    feature_count: int
    level: str
    symbols: list[tuple[str, list[int]]] = field(default_factory=list)   # point symbols: (label, rgb)

    @property
    def payload_bytes(self) -> int:
        return len(self.deck.to_json().encode("utf-8"))


def class_breaks(values: list[float], k: int = 5) -> list[float]:
    """Upper bounds of up to k quantile classes, rounded to whole numbers, strictly increasing."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if not len(arr):
        return []
    qs = np.quantile(arr, np.linspace(0, 1, k + 1)[1:])
    out: list[float] = []
    for q in qs:
        b = float(math.ceil(q))
        if not out or b > out[-1]:
            out.append(b)
    return out


def class_of(value: float | None, breaks: list[float]) -> int | None:
    if value is None:
        return None
    for i, b in enumerate(breaks):
        if value <= b:
            return i
    return len(breaks) - 1


def legend_labels(breaks: list[float], unit: str) -> list[str]:
    """Class labels from upper bounds: '≤ 12 人', '13–40 人', … ('5 部' when a class holds one value)."""
    labels, lo = [], None
    for b in breaks:
        hi = int(b)
        if lo is None:
            labels.append(f"≤ {hi} {unit}" if hi > 0 else f"0 {unit}")
        else:
            labels.append(f"{lo} {unit}" if lo == hi else f"{lo}–{hi} {unit}")
        lo = hi + 1
    return labels


def fit_view(rings_list: list[list], width: int = _FIT_W, height: int = _FIT_H) -> pdk.ViewState:
    """A view state framing every coordinate given on a canvas of about width × height px."""
    xs, ys = [], []
    for parts in rings_list:
        for part in parts:
            ring = np.asarray(part[0])
            xs += [ring[:, 0].min(), ring[:, 0].max()]
            ys += [ring[:, 1].min(), ring[:, 1].max()]
    if not xs:
        return pdk.ViewState(longitude=112.5, latitude=27.8, zoom=7)
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    lat_c = (y0 + y1) / 2
    dx = max(x1 - x0, 1e-3)
    # Web Mercator stretches latitude by 1/cos(lat) near the centre.
    dy = max(y1 - y0, 1e-3) / math.cos(math.radians(lat_c))
    # deck.gl's world is 512 px wide at zoom 0.
    zoom = math.log2(min(width * 360 / (512 * dx), height * 360 / (512 * dy))) - 0.1
    return pdk.ViewState(longitude=(x0 + x1) / 2, latitude=lat_c, zoom=round(zoom, 2), pitch=0, bearing=0)


def _polygon_deck(units: pl.DataFrame, rows_for, layer_id: str, tooltip_text: str, labels: bool,
                  basemap_style_url: str, basemap_crs: str = "wgs84",
                  fit: tuple[int, int] = (_FIT_W, _FIT_H)) -> CompactDeck:
    """One PolygonLayer (a row per polygon part, same code for all parts of a
    unit), optional name labels, the view fitted to the units."""
    rows, rings_all = [], []
    for r in units.iter_rows(named=True):
        parts = json.loads(r["geom_web"]) if r["geom_web"] else []
        rings_all.append(parts)
        attrs = rows_for(r)
        for part in parts:
            rows.append({"code": r["code"], "name": r["name"], "full_name": r["full_name"], **attrs, "polygon": part})
    layers = [pdk.Layer(
        "PolygonLayer", id=layer_id, data=rows, get_polygon="polygon", get_fill_color="fill",
        get_line_color=OUTLINE, line_width_min_pixels=1, stroked=True, filled=True, pickable=True,
        opacity=0.85, auto_highlight=True,
    )]
    if labels:
        text_rows = [{"name": r["name"], "position": [round(r["lon"], 5), round(r["lat"], 5)]}
                     for r in units.iter_rows(named=True)]
        layers.append(pdk.Layer(
            "TextLayer", id=f"{layer_id}-labels", data=text_rows, get_position="position", get_text="name",
            get_size=14, size_units="'pixels'", get_color=[20, 20, 20], character_set="'auto'",
            font_family="'Noto Sans CJK SC, Microsoft YaHei, sans-serif'", font_weight=600,
            outline_width=2, outline_color=[255, 255, 255], font_settings={"sdf": True}, pickable=False,
        ))
    return CompactDeck(layers=layers, initial_view_state=fit_view(rings_all, *fit),
                       tooltip={"text": tooltip_text}, **_basemap(basemap_style_url, basemap_crs))


def choropleth(units: pl.DataFrame, value_col: str, value_label: str, unit: str, layer_id: str,
               labels: bool = False, basemap_style_url: str = "", basemap_crs: str = "wgs84") -> MapView:
    """A map of polygons shaded by ``value_col`` in quantile classes.

    ``units`` needs code, name, full_name, lon, lat, geom_web and the value column.
    """
    breaks = class_breaks(units[value_col].to_list())

    def attrs(r):
        c = class_of(r[value_col], breaks)
        return {"value": r[value_col], "fill": SEQUENTIAL[c] if c is not None else NO_DATA}

    deck = _polygon_deck(units, attrs, layer_id, "{full_name}\n" + value_label + "：{value} " + unit,
                         labels, basemap_style_url, basemap_crs)
    legend = list(zip(legend_labels(breaks, unit), SEQUENTIAL[: len(breaks)]))
    return MapView(deck=deck, legend_title=value_label, legend=legend, feature_count=units.height, level="")


def status_map(units: pl.DataFrame, key: str, label: str, threshold: float | None, layer_id: str,
               labels: bool = False, basemap_style_url: str = "", basemap_crs: str = "wgs84",
               fit: tuple[int, int] = (_FIT_W, _FIT_H)) -> MapView:
    """Units coloured by a target's status (达标 / 接近 / 未达标 / 不适用), or
    for a target without a threshold by its rate in quantile classes."""
    from .compliance import STATUS_COLORS, cell_text
    from .targets import STATUS_LABELS

    if threshold is None:
        shaded = units.with_columns(pl.col(f"{key}_rate").alias("_rate"))
        view = choropleth(shaded, "_rate", label, "%", layer_id, labels, basemap_style_url, basemap_crs)
        return view

    def attrs(r):
        s = r[f"{key}_status"]
        return {"figure": cell_text(r[f"{key}_rate"], r[f"{key}_num"], r[f"{key}_den"]),
                "verdict": STATUS_LABELS[s], "fill": list(STATUS_COLORS[s])}

    deck = _polygon_deck(units, attrs, layer_id, "{full_name}\n" + label + "：{figure}\n{verdict}",
                         labels, basemap_style_url, basemap_crs, fit)
    legend = [(f"{STATUS_LABELS[s]}" + {"met": f"（≥{threshold:g}%）", "amber": "（差距在容差内）",
                                        "short": "", "na": "（无统计对象）"}[s], list(STATUS_COLORS[s]))
              for s in ("met", "amber", "short", "na")]
    return MapView(deck=deck, legend_title=label, legend=legend, feature_count=units.height, level="")


def _basemap(style_url: str, crs: str = "wgs84") -> dict:
    # map_provider=None with pydeck's default map_style sentinel is what keeps
    # Streamlit's frontend from fetching a Carto basemap: an explicit
    # map_style=None drops the sentinel and the frontend falls back to Carto.
    if style_url:
        return {"map_provider": "carto", "map_style": style_url, "gcj02": crs == "gcj02"}
    return {"map_provider": None}


def map_units(con: duckdb.DuckDBPyConnection, level: str, within: str = "") -> pl.DataFrame:
    """Units of a level inside a code prefix, with browser geometry and full names."""
    return query(con, "map_units", {"level": level, "within": within})


def target_map(con: duckdb.DuckDBPyConnection, settings: Settings, figures: pl.DataFrame, key: str,
               level: str, within: str = "") -> MapView:
    """A target's status per unit of ``level`` inside ``within`` (a code prefix)."""
    from .targets import TARGET_BY_KEY, threshold

    units = map_units(con, level, within).join(figures.drop("name"), on="code", how="left")
    # The compliance page draws this map in its narrower right-hand column.
    view = status_map(units, key, TARGET_BY_KEY[key].label, threshold(settings, key), layer_id=f"{level}s",
                      labels=bool(within), basemap_style_url=settings.basemap_style_url,
                      basemap_crs=settings.basemap_crs, fit=(330, 440))
    view.level = level
    return view


def overview_map(con: duckdb.DuckDBPyConnection, settings: Settings, metrics: pl.DataFrame,
                 county_code: str | None = None, village_metrics: pl.DataFrame | None = None,
                 township_code: str | None = None) -> MapView:
    """Townships shaded by children: city-wide, or one county's, zoomed and
    labelled; for one township, its villages."""
    if township_code:
        units = map_units(con, "village", township_code[:9]).join(
            village_metrics.select("code", "children"), on="code", how="left")
        view = choropleth(units, "children", "留守儿童", "人", layer_id="villages", labels=True,
                          basemap_style_url=settings.basemap_style_url,
                          basemap_crs=settings.basemap_crs)
        view.level = "village"
        return view
    within = county_code[:6] if county_code else ""
    units = map_units(con, "township", within).join(
        metrics.select("code", "children"), on="code", how="left")
    view = choropleth(units, "children", "留守儿童", "人", layer_id="townships",
                      labels=bool(county_code), basemap_style_url=settings.basemap_style_url,
                          basemap_crs=settings.basemap_crs)
    view.level = "township"
    return view
