"""The 选址规划 page in AppTest: solves, maps (no basemap, every layer with an
id), lists the rooms, answers a what-if question and offers the Excel."""


import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT

from conftest import deck_spec, layer, signed_in

PAGE = "pages/planner.py"


@pytest.fixture
def planner_page(small_db, monkeypatch):
    """The page alone (as app.py would run it), for the interaction tests."""
    monkeypatch.setenv("LIUSHOU_DB", str(small_db[0]))
    monkeypatch.chdir(ROOT)
    return signed_in(AppTest.from_file(str(ROOT / PAGE), default_timeout=60))


def _spec(at):
    assert len(at.get("deck_gl_json_chart")) == 1
    return deck_spec(at)


def test_planner_page_through_the_app(app):
    at = app.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value.startswith("活动室选址规划")


def test_planner_page_solves_and_maps(planner_page, settings):
    at = planner_page.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="planner_budget").value == 10 * settings.room_cost_yuan
    spec = _spec(at)
    assert spec.get("mapStyle") in (None, "__MAP_STYLE__") and "mapProvider" not in spec   # no basemap
    ids = [layer.get("id") for layer in spec["layers"]]
    assert all(ids) and len(set(ids)) == len(ids)
    assert {"existing-rooms", "proposed-rooms", "proposed-labels", "villages-covered", "villages-uncovered"} <= set(ids)
    proposed = layer(spec, "proposed-rooms")["data"]
    assert 0 < len(proposed) <= 10
    assert [p["label"] for p in proposed] == [str(i) for i in range(1, len(proposed) + 1)]
    table = at.dataframe[0].value
    assert list(table.columns)[:2] == ["序号", "村（社区）代码"] and len(table) == len(proposed)
    assert [m.label for m in at.metric][:3] == ["留守儿童", "现有活动室覆盖", "方案实施后覆盖"]
    assert at.get("download_button")


def test_budget_and_township_rule(planner_page, settings):
    at = planner_page.run()
    at.number_input(key="planner_budget").set_value(settings.room_cost_yuan).run()
    assert not at.exception
    assert len(layer(_spec(at), "proposed-rooms")["data"]) <= 1
    at.toggle(key="planner_every_township").set_value(True).run()
    assert not at.exception
    without = int(at.metric[4].value.split()[0])
    if without > 1:      # one room cannot reach every township: said so, with the minimum budget
        assert at.error and "乡镇全覆盖" in at.error[0].value


def test_what_if_remove_shows_the_change(planner_page):
    at = planner_page.run()
    before = int(at.metric[2].value.split()[0].replace(",", ""))
    at.toggle(key="planner_what_if").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    moved = [m for m in at.metric if m.label == "调整后覆盖"][0]
    after = int(moved.value.split()[0].replace(",", ""))
    assert after < before and moved.delta.startswith("-")
    assert len(layer(_spec(at), "proposed-rooms")["data"]) == len(at.dataframe[0].value)
    at.radio(key="planner_what_if_action").set_value("移到").run()
    assert not at.exception, [e.value for e in at.exception]


def test_excluding_a_site_removes_it(planner_page):
    at = planner_page.run()
    first = at.dataframe[0].value["村（社区）代码"][0]
    at.multiselect(key="planner_exclude").set_value([first]).run()
    assert not at.exception
    assert first not in list(at.dataframe[0].value["村（社区）代码"])
