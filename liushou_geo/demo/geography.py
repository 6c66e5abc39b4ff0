"""Fictional divisions: an irregular outline, nested Voronoi partitions, codes and names.

Every level is an exact partition of its parent: Voronoi cells are clipped to
the parent with ``extend_to=parent``, and any part that the clipping cut off
from its cell is merged into the neighbour it shares the longest border with,
so each unit is a single valid Polygon and the units of a parent union back to
the parent.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Polygon

from . import names as N

CRS = "EPSG:4326"


@dataclass(frozen=True)
class CitySpec:
    """How many units a city has. Township counts per district / county."""

    code: str  # 4 digits, e.g. "4399"
    name: str
    districts: list[tuple[str, str, int]]  # (2-digit code, name, number of 街道)
    counties: list[tuple[str, str, int]]  # (2-digit code, name, number of 镇/乡)
    urban_villages: int  # committees in the districts
    rural_villages: int  # committees in the counties


def city_spec(scale: str) -> CitySpec:
    if scale == "city":
        return CitySpec(
            "4399", "示范市",
            [(f"{c:02d}", n, 6) for c, n in zip(range(2, 6), N.DISTRICT_NAMES)],
            [(f"{c:02d}", n, t) for c, n, t in zip(range(21, 25), N.COUNTY_NAMES, [17, 17, 16, 16])],
            urban_villages=180, rural_villages=816,
        )
    if scale == "small":
        return CitySpec("4399", "示范市", [("02", N.DISTRICT_NAMES[0], 3)], [("21", N.COUNTY_NAMES[0], 7)],
                        urban_villages=20, rural_villages=80)
    raise ValueError(f"unknown scale {scale!r}")


def blob(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float, n: int = 72,
         wobble: float = 0.18) -> Polygon:
    """An irregular star-shaped outline: an ellipse with smooth random radial noise."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 7):
        r += wobble / k * rng.normal() * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r += rng.normal(0, wobble / 8, n)
    r = np.clip(r, 0.55, 1.45)
    return shapely.make_valid(Polygon(np.c_[cx + rx * r * np.cos(t), cy + ry * r * np.sin(t)]))


def sample_points(rng: np.random.Generator, poly, n: int) -> np.ndarray:
    """n uniform random points inside a polygon (rejection sampling)."""
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    out = []
    have = 0
    while have < n:
        m = max(64, int((n - have) * 2.5 * (maxx - minx) * (maxy - miny) / max(poly.area, 1e-12)))
        x = rng.uniform(minx, maxx, m)
        y = rng.uniform(miny, maxy, m)
        ok = shapely.contains_xy(poly, x, y)
        pts = np.c_[x[ok], y[ok]]
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]


def _single(geom) -> bool:
    return geom.geom_type == "Polygon" and not geom.is_empty


def partition(parent, seeds: np.ndarray) -> list[Polygon]:
    """Split ``parent`` into len(seeds) single Polygons (Voronoi, clipped, parts merged)."""
    if len(seeds) == 1:
        return [parent]
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=parent, ordered=True)
    cells = list(shapely.intersection(shapely.get_parts(cells), parent))
    # Cells whose clipped shape has several parts give their small parts away.
    for _ in range(5):
        bad = [i for i, c in enumerate(cells) if not _single(c)]
        if not bad:
            break
        tree = shapely.STRtree(cells)
        for i in bad:
            parts = sorted(shapely.get_parts(cells[i]), key=lambda g: -g.area)
            parts = [p for p in parts if p.geom_type == "Polygon"]
            cells[i] = parts[0]
            for p in parts[1:]:
                best, best_len = None, 0.0
                for j in tree.query(p):
                    if j == i:
                        continue
                    shared = shapely.intersection(p.boundary, cells[j].boundary).length
                    if shared > best_len:
                        best, best_len = j, shared
                if best is None:  # isolated crumb: nothing to merge with; keep it with its owner
                    cells[i] = shapely.union(cells[i], p)
                else:
                    cells[best] = shapely.union(cells[best], p)
    return cells


def _village_names(rng: np.random.Generator, n_ju: int, n_cun: int, township_base: str) -> list[str]:
    """Unique base names within a township: communities then villages."""
    used: set[str] = set()
    out = []
    while len(out) < n_ju:
        if not out and rng.random() < 0.5:
            base = township_base
        else:
            base = rng.choice(N.COMMUNITY_PARTS)
        if base not in used:
            used.add(base)
            out.append(base + "社区")
    old_bases = {n[:-1] if n.endswith("村") else n for n in N.OLD_VILLAGE_NAMES}
    while len(out) < n_ju + n_cun:
        u = rng.random()
        if u < 0.35:
            base = rng.choice(N.SURNAMES[:40]) + rng.choice(N.CLAN_SUFFIX) + rng.choice(N.VILLAGE_ENDING)
        elif u < 0.8:
            base = rng.choice(N.VILLAGE_FIRST2) + rng.choice(N.VILLAGE_ENDING)
        else:
            base = rng.choice(N.VILLAGE_FIRST) + rng.choice(N.VILLAGE_ENDING[1:])
        if base not in used and base not in old_bases and len(base) >= 2:
            used.add(base)
            out.append(base + "村")
    return out


def _allocate(rng: np.random.Generator, total: int, k: int, minimum: int) -> np.ndarray:
    """Split ``total`` into k positive counts (uneven, each >= minimum), summing exactly."""
    w = rng.gamma(4.0, 1.0, k)
    counts = np.full(k, minimum) + np.floor(w / w.sum() * (total - minimum * k)).astype(int)
    rest = total - counts.sum()
    for i in rng.choice(k, rest, replace=rest > k):
        counts[i] += 1
    return counts


class _NamePool:
    """Shuffled names, unique city-wide while they last, then unique within a county."""

    def __init__(self, rng: np.random.Generator, words: list[str]):
        self.rng, self.words, self.left, self.county = rng, list(words), [], set()

    def new_county(self) -> None:
        self.county = set()

    def __next__(self) -> str:
        while True:
            if not self.left:
                self.left = [str(w) for w in self.rng.permutation(self.words)]
            w = self.left.pop()
            if w not in self.county:
                self.county.add(w)
                return w


def build_city_geography(rng: np.random.Generator, spec: CitySpec, outline):
    """Counties (incl. districts), townships and villages of one city inside ``outline``."""
    # Urban core near the centroid: about 6 % of the area, carved into the districts.
    c = outline.centroid
    minx, miny, maxx, maxy = outline.bounds
    rx, ry = (maxx - minx) * 0.13, (maxy - miny) * 0.13
    core = shapely.intersection(blob(rng, c.x, c.y, rx, ry, n=40, wobble=0.12), outline)
    core = max(shapely.get_parts(core), key=lambda g: g.area)
    rest = shapely.difference(outline, core)

    county_rows = []
    n_d, n_c = len(spec.districts), len(spec.counties)
    d_polys = partition(core, sample_points(rng, core, n_d)) if n_d else []
    c_polys = partition(rest, sample_points(rng, rest, n_c)) if n_c else []
    for (code2, name, nt), poly in zip(spec.districts, d_polys):
        county_rows.append((spec.code + code2, name, "区", nt, poly))
    for (code2, name, nt), poly in zip(spec.counties, c_polys):
        county_rows.append((spec.code + code2, name, "县", nt, poly))

    n_urban_t = sum(d[2] for d in spec.districts)
    n_rural_t = sum(d[2] for d in spec.counties)
    urban_counts = iter(_allocate(rng, spec.urban_villages, n_urban_t, 3)) if n_urban_t else iter(())
    rural_counts = iter(_allocate(rng, spec.rural_villages, n_rural_t, 5)) if n_rural_t else iter(())

    t_iter, s_iter = _NamePool(rng, N.TOWNSHIP_PARTS), _NamePool(rng, N.STREET_PARTS)

    towns, villages = [], []
    for county6, cname, ckind, nt, cpoly in county_rows:
        t_iter.new_county()
        s_iter.new_county()
        t_polys = partition(cpoly, sample_points(rng, cpoly, nt))
        n_zhen = nt if ckind == "区" else int(round(nt * 0.65))
        for ti, tpoly in enumerate(t_polys):
            if ckind == "区":
                tkind, tnum, base = "街道", 1 + ti, next(s_iter)
                tname = base + "街道"
                nv = int(next(urban_counts))
                n_ju = nv - int(rng.integers(0, max(1, nv // 4)))
            elif ti < n_zhen:
                tkind, tnum, base = "镇", 100 + ti, next(t_iter)
                tname = base + "镇"
                nv = int(next(rural_counts))
                n_ju = int(rng.integers(1, 3))
            else:
                tkind, tnum, base = "乡", 200 + ti - n_zhen, next(t_iter)
                tname = base + "乡"
                nv = int(next(rural_counts))
                n_ju = int(rng.random() < 0.2)
            tcode = f"{county6}{tnum:03d}000"
            towns.append(dict(code=tcode, name=tname, kind=tkind, county_code=county6 + "000000",
                              county_name=cname, county_kind=ckind, city_code=spec.code + "00000000",
                              city_name=spec.name, geometry=tpoly))
            vnames = _village_names(rng, n_ju, nv - n_ju, base)
            # Seeds: denser towards the township's first point (its seat) so villages vary in size.
            seeds = sample_points(rng, tpoly, nv)
            v_polys = partition(tpoly, seeds)
            for vi, (vname, vpoly) in enumerate(zip(vnames, v_polys)):
                kind = "居" if vi < n_ju else "村"
                vnum = 1 + vi if kind == "居" else 200 + vi - n_ju
                villages.append(dict(code=f"{tcode[:9]}{vnum:03d}", name=vname, kind=kind,
                                     township_code=tcode, township_name=tname,
                                     county_code=county6 + "000000", county_name=cname,
                                     city_code=spec.code + "00000000", city_name=spec.name,
                                     urban=ckind == "区", geometry=vpoly))
    counties = gpd.GeoDataFrame(
        pd.DataFrame([dict(code=c[0] + "000000", name=c[1], kind=c[2], city_code=spec.code + "00000000",
                           city_name=spec.name, geometry=c[4]) for c in county_rows]),
        geometry="geometry", crs=CRS)
    townships = gpd.GeoDataFrame(pd.DataFrame(towns), geometry="geometry", crs=CRS)
    vill = gpd.GeoDataFrame(pd.DataFrame(villages), geometry="geometry", crs=CRS)
    return counties, townships, vill.sort_values("code", ignore_index=True)


def city_outline(rng: np.random.Generator) -> Polygon:
    """The demo city: lon 111.5-113.5, lat 27.0-28.6, irregular."""
    poly = blob(rng, 112.5, 27.8, 0.82, 0.66)
    return shapely.intersection(poly, shapely.box(111.5, 27.0, 113.5, 28.6))


def build(rng: np.random.Generator, scale: str):
    """(counties, townships, villages) GeoDataFrames for 'small', 'city' or 'province'."""
    if scale in ("city", "small"):
        outline = city_outline(rng)
        if scale == "small":
            c = outline.centroid
            outline = blob(rng, c.x, c.y, 0.3, 0.25)
        return build_city_geography(rng, city_spec(scale), outline)
    if scale == "province":
        return build_province(rng)
    raise ValueError(f"unknown scale {scale!r}")


def build_province(rng: np.random.Generator):
    """14 cities in a Hunan-sized outline, ~30,000 villages; the demo city (4399) among them."""
    prov = blob(rng, 111.6, 27.4, 2.6, 2.6, n=120, wobble=0.12)
    cities = N.PROVINCE_CITIES
    cpolys = partition(prov, sample_points(rng, prov, len(cities)))
    outs = []
    for (code, name), poly in zip(cities, cpolys):
        if code == "4399":
            spec = city_spec("city")
        else:
            dparts = list(rng.permutation(N.PROVINCE_DISTRICT_PARTS))[:2]
            cparts = list(rng.permutation(N.PROVINCE_COUNTY_PARTS))[:7]
            spec = CitySpec(code, name,
                            [(f"{i + 2:02d}", str(p) + "区", 8) for i, p in enumerate(dparts)],
                            [(f"{i + 21:02d}", str(p) + "县", 18) for i, p in enumerate(cparts)],
                            urban_villages=170, rural_villages=2080)
        outs.append(build_city_geography(rng, spec, poly))
    return tuple(pd.concat([o[k] for o in outs], ignore_index=True) for k in range(3))
