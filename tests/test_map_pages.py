"""The three map pages in AppTest: layers present, one feature per unit in
view, a known unit's figure in its tooltip text, drill-down by URL."""

import json

import pytest


PAGES = {"rooms": "pages/rooms.py", "terminals": "pages/terminals.py", "pairing": "pages/pairing.py"}


def _open(app, page, **params):
    for k, v in params.items():
        app.query_params[k] = v
    at = app.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    spec = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    return at, {layer["id"]: layer for layer in spec["layers"]}


def _tips(layer, code):
    return {f["tip"] for f in layer["data"] if f.get("code") == code}


@pytest.mark.parametrize("page_name", list(PAGES))
def test_city_view_has_one_feature_per_township(app, page_name, small_truth):
    at, layers = _open(app, page_name)
    codes = {f["code"] for f in layers["townships"]["data"]}
    assert codes == set(small_truth.townships["code"])


@pytest.mark.parametrize("page_name", list(PAGES))
def test_county_view_shows_its_villages(app, page_name, small_truth):
    county = "439921000000"
    at, layers = _open(app, page_name, county=county)
    expected = {c for c in small_truth.villages["code"] if c.startswith(county[:6])}
    assert {f["code"] for f in layers["villages"]["data"]} == expected


@pytest.mark.parametrize("page_name", list(PAGES))
def test_township_view_and_unknown_codes(app, page_name, small_truth):
    town = sorted(small_truth.townships["code"])[-1]
    at, layers = _open(app, page_name, county=town[:6] + "000000", township=town)
    assert {f["code"] for f in layers["villages"]["data"]} == {
        c for c in small_truth.villages["code"] if c.startswith(town[:9])}



@pytest.mark.parametrize("page_name", list(PAGES))
def test_a_township_outside_the_county_is_ignored(app, page_name, small_truth):
    town = sorted(small_truth.townships["code"])[-1]          # in 439921
    at, layers = _open(app, page_name, county="439902000000", township=town)
    assert {f["code"][:6] for f in layers["villages"]["data"]} == {"439902"}


def test_area_is_remembered_across_pages(app, small_truth):
    at, _ = _open(app, "pairing", county="439921000000")
    at.switch_page(PAGES["terminals"]).run()
    spec = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    layer = next(x for x in spec["layers"] if x["id"] == "villages")
    assert {f["code"][:6] for f in layer["data"]} == {"439921"}


def test_rooms_layers_and_tooltip(app, small_truth, small_con):
    at, layers = _open(app, "rooms", radius="3")
    assert {"townships", "coverage", "rooms"} <= set(layers)
    rooms = small_truth.rooms
    assert len(layers["rooms"]["data"]) == len(rooms)
    active = int((rooms["状态"] == "在用").sum())
    assert len(layers["coverage"]["data"]) == active
    assert layers["coverage"]["getRadius"] == 3000
    towns_with_room = {c[:9] for c in rooms.loc[rooms["状态"] == "在用", "区划代码"]}
    no_room = {c for c in small_truth.townships["code"] if c[:9] not in towns_with_room}
    if no_room:
        assert {p["code"] for p in layers["no_room_townships"]["data"]} == no_room
    town = sorted(small_truth.townships["code"])[0]
    children = int(small_truth.children["village_code"].str.startswith(town[:9]).sum())
    assert any(f"留守儿童 {children} 人" in t for t in _tips(layers["townships"], town))


def test_terminals_tooltip_has_the_figures(app, small_con, settings):
    from liushou_geo.metrics import unit_metrics

    at, layers = _open(app, "terminals")
    m = unit_metrics(small_con, "township", settings).row(0, named=True)
    (tip,) = _tips(layers["townships"], m["code"])
    assert f"应配 {m['terminals_needed']} 部" in tip and f"缺口 {m['terminal_shortfall']} 部" in tip


def test_pairing_tooltip_and_no_child_data(app, small_con, settings, small_truth):
    from liushou_geo.metrics import unit_metrics

    at, layers = _open(app, "pairing")
    m = unit_metrics(small_con, "township", settings).row(0, named=True)
    (tip,) = _tips(layers["townships"], m["code"])
    assert f"（{m['paired']}/{m['children']}）" in tip
    spec = at.get("deck_gl_json_chart")[0].proto.json
    names = set(small_truth.children["name"])
    assert not any(n in spec for n in list(names)[:300]), "a child's name reached the map"


def test_radius_from_url_moves_the_circles(app):
    at, layers = _open(app, "rooms", radius="5.5")
    assert layers["coverage"]["getRadius"] == 5500
    assert at.sidebar.slider(key="radius").value == 5.5


def test_pages_answer_fast_on_a_warm_rerun(app):
    """Server-side time of a warm rerun (cached figures and maps)."""
    import time

    for page in PAGES:
        at, _ = _open(app, page)
        t = time.perf_counter()
        at.run()
        assert time.perf_counter() - t < 1.0, page


def test_choosing_the_whole_city_again(app):
    at, _ = _open(app, "pairing", county="439921000000")
    at.sidebar.selectbox(key="county").set_value("").run()
    spec = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    assert any(x["id"] == "townships" for x in spec["layers"])
    assert "county" not in at.query_params
