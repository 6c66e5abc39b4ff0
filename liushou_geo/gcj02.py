"""WGS-84 → GCJ-02, for basemap tiles drawn in China's obfuscated datum.

Only used when ``[map] basemap_crs = "gcj02"``: tiles from an intranet copy of
a Chinese web map are in GCJ-02, and WGS-84 boundaries drawn over them sit
100–700 m off. The conversion is the widely published closed form (Krasovsky
1940 ellipsoid parameters, the series in longitude and latitude offsets); it
is not invertible in closed form, so ``to_wgs84`` iterates. Outside China the
datum is WGS-84 and nothing moves. Tests compare it with the coord-convert
package.
"""

from __future__ import annotations

import math

_A = 6378245.0                      # Krasovsky 1940 semi-major axis
_EE = 0.00669342162296594323        # its first eccentricity squared


def _out_of_china(lon: float, lat: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _d_lat(x: float, y: float) -> float:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return r


def _d_lon(x: float, y: float) -> float:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return r


def to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """A WGS-84 point in GCJ-02."""
    if _out_of_china(lon, lat):
        return lon, lat
    dlat = _d_lat(lon - 105.0, lat - 35.0)
    dlon = _d_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


def to_wgs84(lon: float, lat: float, tol: float = 1e-9) -> tuple[float, float]:
    """A GCJ-02 point back in WGS-84 (fixed-point iteration, < 1e-9° after a few steps)."""
    x, y = lon, lat
    for _ in range(30):
        gx, gy = to_gcj02(x, y)
        dx, dy = gx - lon, gy - lat
        x, y = x - dx, y - dy
        if abs(dx) < tol and abs(dy) < tol:
            break
    return x, y


def shift_coords(obj, decimals: int = 5):
    """Every [lon, lat] pair in nested lists moved to GCJ-02 (rings, paths, positions)."""
    if isinstance(obj, list) and len(obj) == 2 and all(isinstance(v, (int, float)) for v in obj):
        x, y = to_gcj02(obj[0], obj[1])
        return [round(x, decimals), round(y, decimals)]
    if isinstance(obj, list):
        return [shift_coords(o, decimals) for o in obj]
    return obj
