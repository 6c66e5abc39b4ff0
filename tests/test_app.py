"""The overview page in AppTest: runs without exception, map shows the right units."""

import json


from conftest import deck_spec, layer


def _map(at):
    assert len(at.get("deck_gl_json_chart")) == 1
    return deck_spec(at)


_layer = layer


def test_overview_city_map(app, small_truth):
    at = app.run()
    assert not at.exception, [e.value for e in at.exception]
    spec = _map(at)
    towns = _layer(spec, "townships")
    assert len({f["code"] for f in towns["data"]}) == len(small_truth.townships)
    # No basemap: nothing is fetched from outside the machine.
    assert spec.get("mapStyle") in (None, "__MAP_STYLE__") and "mapProvider" not in spec
    labels = [m.label for m in at.metric]
    assert labels == ["留守儿童", "乡镇（街道）", "村（社区）", "结对帮扶率", "亲情电话缺口", "无在用活动室的乡镇"]
    assert at.metric[0].value == f"{len(small_truth.children):,} 人"


def test_tooltip_is_chinese_text_not_html(app):
    at = app.run()
    tooltip = json.loads(at.get("deck_gl_json_chart")[0].proto.tooltip)
    assert "html" not in tooltip            # text tooltips are never parsed as HTML
    assert "留守儿童" in tooltip["text"] and "{full_name}" in tooltip["text"]


def test_county_selector_zooms_to_its_townships(app, small_truth):
    at = app.run()
    city_zoom = _map(at)["initialViewState"]["zoom"]
    county = "439902000000"   # the urban district: smaller than the city, so the view zooms in
    at.sidebar.selectbox(key="county").set_value(county).run()
    assert not at.exception
    spec = _map(at)
    codes = {f["code"] for f in _layer(spec, "townships")["data"]}
    expected = {c for c in small_truth.townships["code"] if c.startswith(county[:6])}
    assert codes == expected
    assert spec["initialViewState"]["zoom"] > city_zoom
    assert at.query_params["county"] in (county, [county])
    name = small_truth.villages.loc[small_truth.villages["county_code"] == county, "county_name"].iloc[0]
    assert at.title[0].value.endswith(name)


def test_county_from_url(app, small_truth):
    app.query_params["county"] = "439902000000"
    at = app.run()
    codes = {f["code"][:6] for f in _layer(_map(at), "townships")["data"]}
    assert codes == {"439902"}


def test_unknown_county_in_url_shows_the_city(app, small_truth):
    app.query_params["county"] = "110101000000"
    at = app.run()
    assert not at.exception
    assert len({f["code"] for f in _layer(_map(at), "townships")["data"]}) == len(small_truth.townships)


def test_map_payload_is_small(app):
    at = app.run()
    assert len(at.get("deck_gl_json_chart")[0].proto.json.encode()) < 200_000


def test_compliance_page(app, small_truth):
    at = app.run()
    at.switch_page("pages/compliance.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value.startswith("七项目标达标情况")
    spec = _map(at)
    towns = _layer(spec, "townships")
    assert len({f["code"] for f in towns["data"]}) == len(small_truth.townships)
    assert all(f["verdict"] in ("达标", "接近", "未达标", "不适用") for f in towns["data"])
    assert len(at.dataframe) == 1                       # the township × target matrix


def test_compliance_drills_to_a_townships_villages(app, small_truth):
    town = sorted(small_truth.townships["code"])[0]
    app.query_params["township"] = town
    app.query_params["target"] = "t5"
    at = app.switch_page("pages/compliance.py").run()
    assert not at.exception, [e.value for e in at.exception]
    spec = _map(at)
    villages = _layer(spec, "villages")
    expected = {c for c in small_truth.villages["code"] if c.startswith(town[:9])}
    assert {f["code"] for f in villages["data"]} == expected
    assert len(at.dataframe) == 2                       # townships, then this township's villages
    assert "临时监护人落实率" in json.loads(at.get("deck_gl_json_chart")[0].proto.tooltip)["text"]


def test_evaluation_page_exports_excel(app):
    at = app.run()
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe) == 1
    assert at.radio(key="evaluation_level").value == "county"
