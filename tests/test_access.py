"""Who may see what: every role × page × a URL naming another area, and
every file each page offers for download."""

import datetime as dt
import io
import json
import re
import subprocess

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from liushou_geo.auth import AuthError, AuthStore
from liushou_geo.followup import mask_name, mask_phone

COUNTY = "439921000000"
OTHER_COUNTY = "439902000000"
PAGES = ["pages/overview.py", "pages/compliance.py", "pages/rooms.py", "pages/terminals.py",
         "pages/pairing.py", "pages/evaluation.py", "pages/planner.py"]


@pytest.fixture
def town(small_truth):
    return sorted(c for c in small_truth.townships["code"] if c.startswith(COUNTY[:6]))[0]




def _map_codes(at):
    codes = set()
    for chart in at.get("deck_gl_json_chart"):
        for layer in json.loads(chart.proto.json)["layers"]:
            codes |= {row["code"] for row in layer.get("data", []) if isinstance(row, dict) and "code" in row}
    return codes


ROLES = [("city", None, ""), ("county", COUNTY, COUNTY[:6]), ("township", "TOWN", "TOWN9")]


def _units(truth):
    """(code, name, significant digits) of every county, township and village of the small city."""
    rows = []
    for df, n in ((truth.counties, 6), (truth.townships, 9), (truth.villages, 12)):
        rows += [(c, name, n) for c, name in zip(df["code"], df["name"])]
    return rows


def _foreign(truth, prefix: str):
    """Codes and names of the units a user with this prefix must never see:
    neither inside the area nor one of its ancestors (a township user may read
    their county's and the city's names). Names also used inside are left out."""
    if not prefix:
        return set(), set()
    units = _units(truth)
    visible = {c for c, _, n in units if c.startswith(prefix) or prefix.startswith(c[:n])}
    seen = {name for c, name, _ in units if c in visible}
    codes = {c for c, _, _ in units if c not in visible}
    names = {name for c, name, _ in units if c not in visible and not any(name in s for s in seen)}
    return codes, names


def _leaks(text: str, codes, names) -> list[str]:
    flat = re.sub(r"\s+", "", text)
    return sorted({c for c in codes if c in flat} | {n for n in names if n in flat})[:5]


def _page_text(at) -> str:
    """Everything a page shows as text: its maps' specs (tooltips), tables,
    titles, figures and the options its widgets offer."""
    parts = [json.dumps(json.loads(c.proto.json), ensure_ascii=False) for c in at.get("deck_gl_json_chart")]
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value} {m.help or ''}" for m in at.metric]
    parts += [d.value.to_csv() for d in at.dataframe] + [t.value.to_csv() for t in at.table]
    for widget in list(at.selectbox) + list(at.multiselect) + list(at.radio):
        parts += [str(o) for o in widget.options]
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role,area,prefix", ROLES)
def test_each_role_sees_exactly_its_area(make_app, town, small_truth, page, role, area, prefix):
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
    # Nor any name or code of a unit outside the area, anywhere on the page
    # (the planner's map, tables and pickers carry names, not codes).
    assert not _leaks(_page_text(at), *_foreign(small_truth, prefix)), (role, page)


def test_township_user_plans_their_township_only(make_app, town, small_truth):
    """Issue #17 item 2: a township user's planner counted, mapped and
    exported their whole county."""
    at = make_app("township", town).switch_page("pages/planner.py").run()
    assert not at.exception, [e.value for e in at.exception]
    children = int(small_truth.children["village_code"].str.startswith(town[:9]).sum())
    assert at.metric[0].value == f"{children:,} 人"
    villages = {c for c in small_truth.villages["code"] if c.startswith(town[:9])}
    assert set(at.dataframe[0].value["村（社区）代码"]) <= villages
    assert not at.sidebar.selectbox          # nothing to choose: the area is the user's


# -- every download, role by role --------------------------------------------------

ALL_PAGES = PAGES + ["pages/followup.py"]
_FILES: dict = {}         # (role, file name) -> bytes: the briefing pack is the same on every page


@pytest.fixture
def offered(monkeypatch):
    """Every file the page offers for download, caught where Streamlit keeps it:
    (file name, bytes or the callable that makes them on a click)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    got = []
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def add_static(self, data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        if is_for_static_download:
            got.append((file_name, data))
        return add(self, data, mimetype, coordinates, file_name=file_name,
                   is_for_static_download=is_for_static_download)

    def add_later(self, make, mimetype, coordinates, file_name=None, *, element_id=""):
        got.append((file_name, make))
        return add_deferred(self, make, mimetype, coordinates, file_name=file_name, element_id=element_id)
    monkeypatch.setattr(MediaFileManager, "add", add_static)
    monkeypatch.setattr(MediaFileManager, "add_deferred", add_later)
    return got


@pytest.fixture
def map_calls(monkeypatch):
    """The area of each map picture. PNG pictures are not rendered here (no
    text to read in them): each must ask for the same map as its PDF twin,
    whose text is read."""
    from liushou_geo import export

    calls = []
    render = export.render_map

    def spy(con, settings, kind, unit=None, fmt="png", size="1080p", radius_km=None, generated=None):
        calls.append((kind, unit, fmt, radius_km))
        if fmt == "png":
            return b"\x89PNG"
        return render(con, settings, kind, unit, fmt, size, radius_km, generated)
    monkeypatch.setattr(export, "render_map", spy)
    return calls


def _file_text(name: str, data: bytes) -> str:
    if name.endswith(".xlsx"):
        import openpyxl

        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        return "\n".join(" ".join("" if v is None else str(v) for v in row)
                         for ws in wb.worksheets for row in ws.iter_rows(values_only=True))
    if name.endswith(".pdf"):
        return subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=data, capture_output=True,
                              check=True).stdout.decode()
    if name.endswith(".png"):
        assert data.startswith(b"\x89PNG")
        return ""
    return data.decode("utf-8", errors="replace")


def _child_fields(truth):
    """What would show child-level data: children's names (3+ characters, so
    no unit name matches by chance), parents' and guardians' phones, masked IDs."""
    kids = truth.children
    names = {n for n in kids["name"] if isinstance(n, str) and len(n) >= 3}
    phones = {p for col in ("father_phone", "mother_phone", "guardian_phone") for p in kids[col]
              if isinstance(p, str) and len(p) == 11}
    return names, phones


@pytest.mark.parametrize("page", ALL_PAGES)
@pytest.mark.parametrize("role,area,prefix", ROLES + [("admin", None, "")])
def test_every_download_stays_in_the_users_area(make_app, town, small_truth, offered, map_calls,
                                                page, role, area, prefix):
    """Each file a page offers, for each role, with a URL naming another area:
    the bytes name no unit outside the user's area, and only a township user's
    follow-up list carries child-level fields."""
    area = town if area == "TOWN" else area
    prefix = town[:9] if prefix == "TOWN9" else prefix
    at = make_app(role, area)
    at.query_params["county"] = OTHER_COUNTY if role not in ("city", "admin") else COUNTY
    at.query_params["township"] = OTHER_COUNTY[:9] + "000" if role not in ("city", "admin") else town
    at = at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    if page == "pages/followup.py" and role != "township":
        assert not offered and not at.get("download_button")
        return
    runs = [None]
    if page == "pages/evaluation.py":
        runs = list(at.radio(key="evaluation_level").options)
    if page == "pages/followup.py":
        for t in at.toggle:
            t.set_value(True)          # the lists in full: the most a download can carry
    files = []
    for level in runs:
        offered.clear()
        if level is not None:
            at.radio(key="evaluation_level").set_value(level)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        files += list(offered)
    assert files, (role, page)
    assert len(files) == len(at.get("download_button")) * len(runs)
    codes, names = _foreign(small_truth, prefix)
    kid_names, phones = _child_fields(small_truth)
    inside = small_truth.children[small_truth.children["village_code"].str.startswith(prefix)]
    # Every name and phone a row of the user's own area may carry (a helper may share a child's name).
    own_kids = {x for c in ("name", "guardian_name", "helper", "father_name", "mother_name", "father_phone",
                            "mother_phone", "guardian_phone") for x in inside[c]}
    for name, data in files:
        key = (role, area, name)
        if key not in _FILES or "简报" not in name:        # a pack is made once per role; the rest every time
            _FILES[key] = data() if callable(data) else data
        text = _file_text(name, _FILES[key])
        assert not _leaks(text, codes, names), (role, page, name, _leaks(text, codes, names))
        flat = re.sub(r"\s+", "", text)
        if role == "township" and page == "pages/followup.py":
            assert any(n in flat for n in inside["name"])                  # the list, in full
            others = (kid_names | phones) - own_kids
            assert not [x for x in others if x in flat][:3], (name, "a child of another township")
        else:
            # (the pack says it holds no 身份证号: the column headers of a child list are what count)
            assert "监护人电话" not in flat and not re.search(r"\d{6}\*{8}", flat), (role, page, name)
            assert not [x for x in kid_names | phones if x in flat][:3], (role, page, name, "child-level data")
    # Every map picture asks for a unit inside the area, the PNG for the PDF's map.
    for kind, unit, fmt, radius in map_calls:
        assert (unit or "").startswith(prefix), (role, page, unit)
    assert {c[:2] + c[3:] for c in map_calls if c[2] == "png"} <= {c[:2] + c[3:] for c in map_calls if c[2] == "pdf"}


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


def _shown(at, i: int = 0):
    """A static table as the user reads it: its cells are Markdown-escaped."""
    return at.table[i].value.map(lambda v: re.sub(r"\\(.)", r"\1", v) if isinstance(v, str) else v)


def test_followup_lists_are_masked_and_shown_on_purpose(make_app, town, small_truth):
    at = make_app("township", town).switch_page("pages/followup.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.dataframe          # no st.dataframe: its toolbar would offer an unaudited CSV
    kids = small_truth.children[small_truth.children["village_code"].str.startswith(town[:9])]
    unpaired = kids[kids["helper"] == ""]
    table = _shown(at)
    assert len(table) == len(unpaired)
    names = set(unpaired["name"])
    assert not names & set(table["姓名"])                       # masked
    assert set(table["姓名"]) == {mask_name(n) for n in names}
    assert all("********" in i for i in table["身份证号"])
    assert not set(small_truth.children["id"]) & set(table["身份证号"])
    events_before = AuthStore().audit(50, "child_details_shown")
    at.toggle(key="show_unpaired").set_value(True).run()
    table = _shown(at)
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
