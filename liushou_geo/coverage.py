"""Which villages lie within R km (great-circle) of an activity room.

Points go onto the unit sphere and a k-d tree finds neighbours by chord
length, which is exact for great-circle distance and fast at province scale
(planar distances in degrees pick the wrong room for a few per cent of
villages; DuckDB's ST_Distance_Sphere expects lat/lon order — both traps
measured in MACHINE_NOTES).
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
from scipy.spatial import cKDTree

from .store import query

EARTH_RADIUS_KM = 6371.0088


def unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def chord(radius_km: float) -> float:
    """Straight-line distance on the unit sphere for a great-circle distance."""
    return 2 * np.sin(radius_km / (2 * EARTH_RADIUS_KM))


def great_circle_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Haversine distance in km (the reference the tree is checked against)."""
    lo1, la1, lo2, la2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def nearest_km(points: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """Great-circle km from each point (lon, lat rows) to its nearest site; inf without sites."""
    if not len(sites):
        return np.full(len(points), np.inf)
    tree = cKDTree(unit_vectors(sites[:, 0], sites[:, 1]))
    d, _ = tree.query(unit_vectors(points[:, 0], points[:, 1]))
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(d / 2, 0, 1))


def village_coverage(con: duckdb.DuckDBPyConnection, radius_km: float,
                     statuses: tuple[str, ...] = ("在用",)) -> pl.DataFrame:
    """code, nearest_room_km, covered (nearest room with one of ``statuses`` within radius)."""
    villages = query(con, "village_points")
    rooms = query(con, "room_points", {"statuses": list(statuses)})
    pts = villages.select("lon", "lat").to_numpy()
    sites = rooms.select("lon", "lat").to_numpy()
    d = nearest_km(pts, sites) if len(pts) else np.array([])
    return villages.select("code").with_columns(
        nearest_room_km=pl.Series(d, dtype=pl.Float64),
        covered=pl.Series(d <= radius_km, dtype=pl.Boolean),
    )
