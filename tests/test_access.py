"""Who may see what: every role × page × a URL naming another area."""

import datetime as dt
import json

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, signed_in
from liushou_geo.auth import AuthError, AuthStore
from liushou_geo.followup import mask_name, mask_phone

COUNTY = "439921000000"
OTHER_COUNTY = "439902000000"
PAGES = ["pages/overview.py", "pages/compliance.py", "pages/rooms.py", "pages/terminals.py",
         "pages/pairing.py", "pages/evaluation.py"]


@pytest.fixture
def town(small_truth):
    return sorted(c for c in small_truth.townships["code"] if c.startswith(COUNTY[:6]))[0]


@pytest.fixture
def make_app(small_db, monkeypatch):
    monkeypatch.setenv("LIUSHOU_DB", str(small_db[0]))
    monkeypatch.chdir(ROOT)

    def make(role, area=None):
        return signed_in(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60), role, area, f"u_{role}")
    return make


def _map_codes(at):
    codes = set()
    for chart in at.get("deck_gl_json_chart"):
        for layer in json.loads(chart.proto.json)["layers"]:
            codes |= {row["code"] for row in layer.get("data", []) if isinstance(row, dict) and "code" in row}
    return codes


ROLES = [("city", None, ""), ("county", COUNTY, COUNTY[:6]), ("township", "TOWN", "TOWN9")]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role,area,prefix", ROLES)
def test_each_role_sees_exactly_its_area(make_app, town, page, role, area, prefix):
    area = town if area == "TOWN" else area
    prefix = town[:9] if prefix == "TOWN9" else prefix
    # A URL naming another county (and one of its townships) must show nothing of it.
    at = make_app(role, area)
    at.query_params["county"] = OTHER_COUNTY if role != "city" else COUNTY
    at.query_params["township"] = OTHER_COUNTY[:9] + "000" if role != "city" else town
    at = at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    codes = _map_codes(at)
    assert all(c.startswith(prefix) for c in codes), (role, page, sorted(c for c in codes if not c.startswith(prefix))[:3])
    if role != "city":
        assert not any(c.startswith(OTHER_COUNTY[:6]) for c in codes)
        # no widget offers the other county
        for sb in at.sidebar.selectbox:
            assert OTHER_COUNTY not in sb.options


def test_county_user_has_no_city_totals(make_app, small_truth):
    at = make_app("county", COUNTY).switch_page("pages/overview.py").run()
    children = int(small_truth.children["village_code"].str.startswith(COUNTY[:6]).sum())
    assert at.metric[0].value == f"{children:,} 人"
    assert "全市" not in " ".join(at.sidebar.selectbox[0].options)


@pytest.mark.parametrize("role", ["city", "county", "admin"])
def test_only_township_users_get_child_lists(make_app, role):
    at = make_app(role, COUNTY if role == "county" else None).switch_page("pages/followup.py").run()
    assert not at.dataframe
    assert any("无权" in e.value for e in at.error)


def test_admin_page_is_for_admins(make_app):
    at = make_app("city").switch_page("pages/admin.py").run()
    assert any("无权" in e.value for e in at.error) and not at.dataframe
    at = make_app("admin").switch_page("pages/admin.py").run()
    assert not at.exception and len(at.dataframe) >= 3


def test_followup_lists_are_masked_and_shown_on_purpose(make_app, town, small_truth):
    at = make_app("township", town).switch_page("pages/followup.py").run()
    assert not at.exception, [e.value for e in at.exception]
    kids = small_truth.children[small_truth.children["village_code"].str.startswith(town[:9])]
    unpaired = kids[kids["helper"] == ""]
    table = at.dataframe[0].value
    assert len(table) == len(unpaired)
    names = set(unpaired["name"])
    assert not names & set(table["姓名"])                       # masked
    assert set(table["姓名"]) == {mask_name(n) for n in names}
    assert all("********" in i for i in table["身份证号"])
    assert not set(small_truth.children["id"]) & set(table["身份证号"])
    events_before = AuthStore().audit(50, "child_details_shown")
    at.toggle(key="show_unpaired").set_value(True).run()
    table = at.dataframe[0].value
    assert set(table["姓名"]) == names                           # shown on purpose
    assert all("********" in i for i in table["身份证号"])       # the ID stays masked: no raw ID is stored
    events = AuthStore().audit(50, "child_details_shown")
    assert len(events) == len(events_before) + 1 and events[0]["username"] == "u_township"


def test_masks():
    assert mask_name("张小明") == "张*明" and mask_name("李四") == "李*" and mask_name("欧阳小明") == "欧阳*明"
    assert mask_phone("13812345678") == "138****5678"


def test_sign_in_lockout_and_audit(tmp_path):
    store = AuthStore(tmp_path / "a.sqlite")
    store.add_user("clerk", "correct horse", "county", COUNTY)
    with pytest.raises(AuthError, match="至少"):
        store.add_user("weak", "short", "city")
    with pytest.raises(AuthError):
        store.add_user("badarea", "long enough", "township", COUNTY)   # a county code for a township user
    now = dt.datetime(2026, 7, 1, 9, 0)
    user = store.authenticate("clerk", "correct horse", now=now)
    assert user.prefix == COUNTY[:6] and user.may_see(COUNTY[:6] + "100000") and not user.may_see(OTHER_COUNTY)
    for _ in range(4):
        with pytest.raises(AuthError, match="用户名或密码错误"):
            store.authenticate("clerk", "wrong", max_failed=5, lockout_minutes=15, now=now)
    with pytest.raises(AuthError, match="锁定"):
        store.authenticate("clerk", "wrong", max_failed=5, lockout_minutes=15, now=now)
    with pytest.raises(AuthError, match="锁定"):          # even the right password, while locked
        store.authenticate("clerk", "correct horse", now=now + dt.timedelta(minutes=10))
    assert store.authenticate("clerk", "correct horse", now=now + dt.timedelta(minutes=16)).username == "clerk"
    with pytest.raises(AuthError):
        store.authenticate("nobody", "whatever1", now=now)
    events = [e["event"] for e in store.audit()]
    for kind in ("user_added", "sign_in", "sign_in_failed", "account_locked"):
        assert kind in events
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("a.sqlite*"))     # the file and its WAL
    assert b"correct horse" not in raw and b"$argon2id$" in raw


def test_sign_in_form(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("LIUSHOU_AUTH_DB", str(tmp_path / "form.sqlite"))
    AuthStore().add_user("leader", "a long password", "city")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert at.text_input(key="sign_in_user") and not at.get("deck_gl_json_chart")   # nothing before sign-in
    at.text_input(key="sign_in_user").input("leader")
    at.text_input(key="sign_in_password").input("wrong password")
    at.button[0].click().run()
    assert any("错误" in e.value for e in at.error) and not at.get("deck_gl_json_chart")
    at.text_input(key="sign_in_password").input("a long password")
    at.button[0].click().run()
    assert not at.exception and at.get("deck_gl_json_chart")


def test_idle_session_expires(make_app):
    at = make_app("city")
    at.session_state["last_seen"] = dt.datetime.now() - dt.timedelta(hours=2)
    at.run()
    assert not at.get("deck_gl_json_chart")
    assert any("已自动退出" in i.value for i in at.info)


def test_ingest_is_audited(small_city_dir, tmp_path):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "liushou_geo.cli", "ingest", "--db", str(tmp_path / "x.duckdb"),
                    str(small_city_dir / "boundaries")], check=True, capture_output=True)
    events = AuthStore().audit(20, "ingest")
    assert events and events[0]["username"].startswith("os:") and "boundaries" in events[0]["detail"]


def test_command_line_export_is_audited(small_db, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "t4.png"
    subprocess.run([sys.executable, "-m", "liushou_geo.cli", "export", "--db", str(small_db[0]), "--map", "t4",
                    "--format", "png", "--out", str(out)], check=True, capture_output=True)
    events = AuthStore().audit(20, "export")
    assert out.exists() and events and events[0]["username"].startswith("os:") and "t4" in events[0]["detail"]
