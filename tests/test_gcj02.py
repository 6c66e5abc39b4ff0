"""WGS-84 -> GCJ-02 against the coord-convert package, and the map shift."""

import json
from dataclasses import replace

import pytest

from liushou_geo.gcj02 import shift_coords, to_gcj02, to_wgs84

import coord_convert.transform as coord_convert   # a test extra: the reference implementation


@pytest.mark.parametrize("lon,lat", [(116.397128, 39.916527), (112.5, 27.8), (121.47, 31.23), (87.6, 43.8),
                                     (113.2644, 23.1291)])
def test_matches_coord_convert(lon, lat):
    ours = to_gcj02(lon, lat)
    theirs = coord_convert.wgs2gcj(lon, lat)
    assert ours == pytest.approx(theirs, abs=1e-9)
    back = to_wgs84(*ours)
    assert back == pytest.approx((lon, lat), abs=1e-7)


def test_shift_is_a_few_hundred_metres_in_china_and_none_outside():
    lon, lat = 112.5, 27.8
    g = to_gcj02(lon, lat)
    metres = ((g[0] - lon) * 111_320 * 0.884) ** 2 + ((g[1] - lat) * 110_570) ** 2
    assert 50 ** 2 < metres < 1000 ** 2
    assert to_gcj02(2.35, 48.85) == (2.35, 48.85)           # Paris stays


def test_nested_rings_are_shifted():
    ring = [[[112.5, 27.8], [112.6, 27.8], [112.6, 27.9], [112.5, 27.8]]]
    out = shift_coords(ring)
    assert out[0][0] == [round(v, 5) for v in to_gcj02(112.5, 27.8)]


def test_maps_shift_only_with_gcj02_tiles(small_con, settings):
    from liushou_geo.mapview import overview_map
    from liushou_geo.metrics import unit_metrics

    m = unit_metrics(small_con, "township", settings)
    plain = json.loads(overview_map(small_con, settings, m).deck.to_json())
    assert "mapStyle" not in plain or plain["mapStyle"] in (None, "__MAP_STYLE__")
    tiles = replace(settings, basemap_style_url="http://tiles.intranet/style.json", basemap_crs="gcj02")
    shifted = json.loads(overview_map(small_con, tiles, m).deck.to_json())
    p0 = plain["layers"][0]["data"][0]["polygon"][0][0]
    s0 = shifted["layers"][0]["data"][0]["polygon"][0][0]
    assert s0 == [round(v, 5) for v in to_gcj02(*p0)]
    assert shifted["mapStyle"] == "http://tiles.intranet/style.json"
    wgs = replace(settings, basemap_style_url="http://tiles.intranet/style.json", basemap_crs="wgs84")
    assert json.loads(overview_map(small_con, wgs, m).deck.to_json())["layers"][0]["data"][0]["polygon"][0][0] == p0
