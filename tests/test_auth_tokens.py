"""The lasting sign-in's token store (issue #15 item 2): issue, hand-over,
resume, sliding idle expiry under an absolute maximum, revocation by
sign-out, an administrator's lock, a password reset and user deletion, and
only hashes on disk. The browser side is tests/test_browser_signin.py."""

import datetime as dt
import hashlib
import json

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from liushou_geo import auth
from liushou_geo.auth import AuthError, AuthStore, User

T0 = dt.datetime(2026, 7, 1, 9, 0)
IDLE = 30


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


@pytest.fixture
def store(tmp_path):
    s = AuthStore(tmp_path / "a.sqlite")
    s.add_user("clerk", "correct horse", "county", "439921000000", "王科长")
    yield s
    s.close()


def _signed_in(store, now=T0):
    """A sign-in through the form, then the browser fetching its cookie: (session id, token)."""
    user = store.authenticate("clerk", "correct horse", now=now)
    sid, code = store.start_session(user, IDLE, now)
    token = store.claim_code(code, now + dt.timedelta(seconds=1))
    assert token
    return sid, token


def test_issue_hand_over_and_resume_keep_only_hashes(store, tmp_path):
    user = store.authenticate("clerk", "correct horse", now=T0)
    sid, code = store.start_session(user, IDLE, T0)
    assert store.handover_pending(sid, T0)
    row = store.db.execute("SELECT code_hash, token_hash, expires_at FROM sessions WHERE id = ?", (sid,)).fetchone()
    assert row[0] == sha(code) and row[1] is None and row[2] == (T0 + dt.timedelta(minutes=IDLE)).isoformat()

    token = store.claim_code(code, T0 + dt.timedelta(seconds=5))
    assert token and token != code and len(token) >= 40
    assert store.claim_code(code, T0 + dt.timedelta(seconds=6)) is None            # the code works once
    assert not store.handover_pending(sid, T0 + dt.timedelta(seconds=6))

    got_sid, got, why = store.resume_session(token, IDLE, T0 + dt.timedelta(minutes=10), client="10.0.0.7")
    assert (got_sid, got.username, got.role, got.area_code, got.display_name, why) == \
        (sid, "clerk", "county", "439921000000", "王科长", "ok")
    resume = store.audit(5, "session_resume")
    assert resume and resume[0]["username"] == "clerk" and json.loads(resume[0]["detail"])["client"] == "10.0.0.7"

    # Hash-only storage: neither token nor code is in the file or its WAL; their hashes are.
    assert store.db.execute("SELECT token_hash FROM sessions WHERE id = ?", (sid,)).fetchone()[0] == sha(token)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("a.sqlite*"))
    assert token.encode() not in raw and code.encode() not in raw and sha(token).encode() in raw


def test_a_hand_over_code_expires_and_an_unknown_token_is_refused(store):
    user = store.authenticate("clerk", "correct horse", now=T0)
    sid, code = store.start_session(user, IDLE, T0)
    assert store.claim_code(code, T0 + dt.timedelta(seconds=auth.HANDOVER_SECONDS + 1)) is None
    assert store.claim_code("", T0) is None and store.claim_code("x" * 500, T0) is None
    assert store.resume_session("not-a-token", IDLE, T0) == (None, None, "unknown")
    refused = store.audit(5, "session_resume_refused")
    assert refused and json.loads(refused[0]["detail"])["why"] == "unknown"
    # The session itself (the tab that signed in) still works without the cookie.
    assert store.check_session(sid, IDLE, T0 + dt.timedelta(minutes=5)) [1] == "ok"


def test_idle_expiry_slides_on_activity_but_never_past_the_absolute_maximum(store):
    sid, token = _signed_in(store)
    # Idle: 30 minutes without activity ends it...
    assert store.check_session(sid, IDLE, T0 + dt.timedelta(minutes=29))[1] == "ok"          # slides to 09:59
    assert store.check_session(sid, IDLE, T0 + dt.timedelta(minutes=58))[1] == "ok"          # slides to 10:28
    assert store.resume_session(token, IDLE, T0 + dt.timedelta(minutes=87))[2] == "ok"       # a new tab, slides too
    assert store.check_session(sid, IDLE, T0 + dt.timedelta(minutes=87 + 31)) == (None, "idle")
    assert store.resume_session(token, IDLE, T0 + dt.timedelta(minutes=87 + 32))[2] == "unknown"   # gone

    # ...and activity every 20 minutes keeps it alive only up to SESSION_MAX_HOURS after the sign-in.
    sid, token = _signed_in(store)
    t = T0
    while t + dt.timedelta(minutes=20) < T0 + dt.timedelta(hours=auth.SESSION_MAX_HOURS):
        t += dt.timedelta(minutes=20)
        assert store.check_session(sid, IDLE, t)[1] == "ok", t
    expires = store.db.execute("SELECT expires_at FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
    assert expires == (T0 + dt.timedelta(hours=auth.SESSION_MAX_HOURS)).isoformat()       # capped, not t + 30 min
    end = T0 + dt.timedelta(hours=auth.SESSION_MAX_HOURS, seconds=1)
    assert store.check_session(sid, IDLE, end) == (None, "max_age")


def test_sign_out_ends_the_token(store):
    sid, token = _signed_in(store)
    other_tab, _, _ = store.resume_session(token, IDLE, T0 + dt.timedelta(minutes=1))
    assert other_tab == sid
    assert store.end_session(sid)
    assert store.resume_session(token, IDLE, T0 + dt.timedelta(minutes=2)) == (None, None, "unknown")
    assert store.check_session(sid, IDLE, T0 + dt.timedelta(minutes=2)) == (None, "revoked")   # every tab


@pytest.mark.parametrize("how", ["lock", "reset", "delete"])
def test_lock_reset_and_delete_end_every_token_of_the_user(store, how):
    store.add_user("other", "another password", "city")
    sid1, token1 = _signed_in(store)
    sid2, token2 = _signed_in(store, T0 + dt.timedelta(minutes=1))                 # a second browser
    o = store.authenticate("other", "another password", now=T0)
    o_sid, o_code = store.start_session(o, IDLE, T0)
    o_token = store.claim_code(o_code, T0)
    later = T0 + dt.timedelta(minutes=2)
    {"lock": lambda: store.lock_user("clerk", by="admin"),
     "reset": lambda: store.reset_password("clerk", "a new password", by="admin"),
     "delete": lambda: store.delete_user("clerk", by="admin")}[how]()
    for sid, token in ((sid1, token1), (sid2, token2)):
        assert store.resume_session(token, IDLE, later)[1] is None
        assert store.check_session(sid, IDLE, later)[0] is None
    assert store.resume_session(o_token, IDLE, later)[1].username == "other"      # others keep theirs
    if how == "lock":
        with pytest.raises(AuthError, match="停用"):                             # right password, still no entry
            store.authenticate("clerk", "correct horse", now=later)
        store.unlock("clerk", by="admin")
        assert store.authenticate("clerk", "correct horse", now=later).username == "clerk"
    if how == "delete":
        with pytest.raises(AuthError, match="用户名或密码错误"):
            store.authenticate("clerk", "correct horse", now=later)
    events = [e["event"] for e in store.audit(20)]
    assert {"lock": "account_locked_by_admin", "reset": "password_reset", "delete": "user_deleted"}[how] in events


def test_a_lock_set_while_a_session_is_open_ends_it(store):
    sid, _ = _signed_in(store)
    store.db.execute("UPDATE users SET locked_until = ? WHERE username = 'clerk'", (auth.ADMIN_LOCK,))
    assert store.check_session(sid, IDLE, T0 + dt.timedelta(minutes=1)) == (None, "locked")


def test_the_cookie_markup_carries_the_code_but_never_a_token():
    html = auth.handover_html("abc_DEF-123", "dash/")
    assert html.startswith('<img src="/dash/liushou/session?code=abc_DEF-123"') and "script" not in html
    assert auth.clear_cookie_html("").startswith('<img src="/liushou/sign-out"')
    with pytest.raises(AssertionError):
        auth.handover_html('x" onerror="alert(1)')


def _get(app, path, headers=None):
    """One GET through the ASGI app (no HTTP client library needed): (status, headers as a dict)."""
    import asyncio

    p, _, q = path.partition("?")
    scope = {"type": "http", "method": "GET", "path": p, "raw_path": p.encode(), "query_string": q.encode(),
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
             "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
             "http_version": "1.1", "root_path": ""}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


def test_the_http_routes_set_an_httponly_strict_cookie(tmp_path, monkeypatch):
    from starlette.applications import Starlette

    monkeypatch.setenv("LIUSHOU_AUTH_DB", str(tmp_path / "r.sqlite"))
    s = AuthStore()
    s.add_user("clerk", "correct horse", "city")
    sid, code = s.start_session(s.authenticate("clerk", "correct horse"), IDLE)
    app = Starlette(routes=auth.http_routes(""))
    assert _get(app, f"/liushou/session?code={code}", {"Sec-Fetch-Site": "cross-site"})[0] == 403
    status, headers = _get(app, f"/liushou/session?code={code}", {"Sec-Fetch-Site": "same-origin"})
    assert status == 200 and headers["content-type"] == "image/gif"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Max-Age" not in cookie and "expires" not in cookie.lower()          # gone when the browser closes
    assert headers["cache-control"] == "no-store"
    token = cookie.split(";")[0].split("=", 1)[1]
    assert s.resume_session(token, IDLE)[1].username == "clerk"
    assert _get(app, f"/liushou/session?code={code}")[0] == 403                  # spent
    out = _get(app, "/liushou/sign-out")[1]["set-cookie"]
    assert out.startswith("liushou_session=") and "Max-Age=0" in out
    s.close()


def test_the_app_signs_in_and_a_revoked_session_ends_at_the_next_run(small_db, tmp_path, monkeypatch):
    monkeypatch.setenv("LIUSHOU_DB", str(small_db[0]))
    monkeypatch.setenv("LIUSHOU_AUTH_DB", str(tmp_path / "app.sqlite"))
    monkeypatch.chdir(ROOT)
    s = AuthStore()
    s.add_user("leader", "a long password", "city")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.text_input(key="sign_in_user").input("leader")
    at.text_input(key="sign_in_password").input("a long password")
    at.button[0].click().run()
    assert not at.exception and at.get("deck_gl_json_chart")
    sid = at.session_state["session_id"]
    assert s.handover_pending(sid)                        # the page offers the browser its cookie
    assert any("/liushou/session?code=" in h.proto.body for h in at.get("html"))
    s.lock_user("leader", by="admin")                     # e.g. from another machine
    at.run()
    assert not at.get("deck_gl_json_chart") and at.text_input(key="sign_in_user")
    assert any("登录已失效" in i.value for i in at.info)
    assert s.audit(5, "session_revoked")[0]["username"] == "leader"
    s.close()


def test_the_app_ends_a_session_idle_in_the_store(small_db, tmp_path, monkeypatch):
    monkeypatch.setenv("LIUSHOU_DB", str(small_db[0]))
    monkeypatch.setenv("LIUSHOU_AUTH_DB", str(tmp_path / "idle.sqlite"))
    monkeypatch.chdir(ROOT)
    s = AuthStore()
    s.add_user("leader", "a long password", "city")
    sid, _ = s.start_session(User("leader", "city", None), IDLE, dt.datetime.now() - dt.timedelta(hours=2))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["user"] = User("leader", "city", None)
    at.session_state["session_id"] = sid
    at.run()
    assert not at.get("deck_gl_json_chart") and any("已自动退出" in i.value for i in at.info)
    assert s.audit(5, "session_expired")[0]["username"] == "leader"
    s.close()
