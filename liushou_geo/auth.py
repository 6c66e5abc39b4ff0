"""Users, roles by area, sign-in with lockout, and the audit log.

Kept in a small SQLite file (``data/auth.sqlite``, or $LIUSHOU_AUTH_DB),
apart from the DuckDB store: the dashboard opens the store read-only, while
sign-ins and the audit log are written from the app and from the command
line at the same time, which SQLite handles across processes.

Roles (DOMAIN.md, "Who uses the dashboard"):

- ``city``: every area, aggregates only;
- ``county``: its own county, aggregates only;
- ``township``: its own township, plus the child-level follow-up lists;
- ``admin``: ingest, data quality, users and the audit log (and the city's aggregates).

Passwords are hashed with Argon2id (argon2-cffi's defaults: 64 MiB, 3 passes).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .settings import REPO_ROOT

DEFAULT_AUTH_DB = REPO_ROOT / "data" / "auth.sqlite"
ROLES = {"city": "市级", "county": "县级", "township": "乡镇", "admin": "管理员"}
MIN_PASSWORD = 8
_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so that a wrong user
# name takes as long as a wrong password.
_DUMMY = _hasher.hash("not a real password")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    area_code     TEXT,              -- county or township code; NULL for city and admin
    display_name  TEXT,
    failed_count  INTEGER NOT NULL DEFAULT 0,
    locked_until  TEXT,
    created_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    username TEXT,
    event    TEXT NOT NULL,          -- sign_in, sign_in_failed, account_locked, sign_out, session_expired,
                                     -- child_list_view, child_details_shown, export, ingest, user_added, password_reset
    detail   TEXT                    -- JSON
);
"""


class AuthError(Exception):
    """A sign-in or user-management problem; the message is for the person at the screen."""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    area_code: str | None
    display_name: str | None = None

    @property
    def prefix(self) -> str:
        """Code prefix of the user's area: '' (whole city) for city and admin."""
        if self.role == "county":
            return self.area_code[:6]
        if self.role == "township":
            return self.area_code[:9]
        return ""

    @property
    def county(self) -> str | None:
        return self.area_code[:6] + "000000" if self.role in ("county", "township") else None

    @property
    def township(self) -> str | None:
        return self.area_code if self.role == "township" else None

    @property
    def sees_children(self) -> bool:
        return self.role == "township"

    def may_see(self, code: str) -> bool:
        """Whether a unit (any level, by 12-digit code) lies inside the user's area."""
        return code.startswith(self.prefix)


def auth_path(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("LIUSHOU_AUTH_DB")
    return Path(env) if env else DEFAULT_AUTH_DB


class AuthStore:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = auth_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self.db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        if new:
            os.chmod(self.path, 0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- users -----------------------------------------------------------------

    def add_user(self, username: str, password: str, role: str, area_code: str | None = None,
                 display_name: str | None = None, by: str | None = None) -> User:
        username = _check_username(username)
        area_code = _check_role_area(role, area_code)
        _check_password(password)
        try:
            self.db.execute("INSERT INTO users (username, password_hash, role, area_code, display_name, created_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (username, _hasher.hash(password), role, area_code, display_name, _now().isoformat()))
        except sqlite3.IntegrityError:
            raise AuthError(f"用户 {username} 已存在") from None
        self.record(by or _os_user(), "user_added", {"username": username, "role": role, "area": area_code})
        return User(username, role, area_code, display_name)

    def reset_password(self, username: str, password: str, by: str | None = None) -> None:
        _check_password(password)
        cur = self.db.execute("UPDATE users SET password_hash = ?, failed_count = 0, locked_until = NULL "
                              "WHERE username = ?", (_hasher.hash(password), username))
        if cur.rowcount == 0:
            raise AuthError(f"没有用户 {username}")
        self.record(by or _os_user(), "password_reset", {"username": username})

    def unlock(self, username: str, by: str | None = None) -> None:
        cur = self.db.execute("UPDATE users SET failed_count = 0, locked_until = NULL WHERE username = ?", (username,))
        if cur.rowcount == 0:
            raise AuthError(f"没有用户 {username}")
        self.record(by or _os_user(), "account_unlocked", {"username": username})

    def users(self) -> list[dict]:
        rows = self.db.execute("SELECT username, role, area_code, display_name, failed_count, locked_until, created_at "
                               "FROM users ORDER BY username").fetchall()
        keys = ["username", "role", "area_code", "display_name", "failed_count", "locked_until", "created_at"]
        return [dict(zip(keys, r)) for r in rows]

    # -- sign-in ---------------------------------------------------------------

    def authenticate(self, username: str, password: str, max_failed: int = 5, lockout_minutes: int = 15,
                     now: dt.datetime | None = None) -> User:
        """The user, or AuthError. Too many failures in a row lock the account for a while."""
        now = now or _now()
        row = self.db.execute("SELECT password_hash, role, area_code, display_name, failed_count, locked_until "
                              "FROM users WHERE username = ?", (username,)).fetchone()
        if row is None:
            _verify(_DUMMY, password)
            self.record(username, "sign_in_failed", {"why": "unknown_user"})
            raise AuthError("用户名或密码错误")
        pw_hash, role, area, display, failed, locked_until = row
        if locked_until and dt.datetime.fromisoformat(locked_until) > now:
            self.record(username, "sign_in_failed", {"why": "locked"})
            raise AuthError(f"账号已被暂时锁定，请在 {dt.datetime.fromisoformat(locked_until):%H:%M} 后再试，或联系管理员解锁")
        if not _verify(pw_hash, password):
            failed += 1
            if failed >= max_failed:
                until = now + dt.timedelta(minutes=lockout_minutes)
                self.db.execute("UPDATE users SET failed_count = 0, locked_until = ? WHERE username = ?",
                                (until.isoformat(), username))
                self.record(username, "account_locked", {"until": until.isoformat(timespec="minutes")})
                raise AuthError(f"密码连续错误 {max_failed} 次，账号锁定 {lockout_minutes} 分钟")
            self.db.execute("UPDATE users SET failed_count = ? WHERE username = ?", (failed, username))
            self.record(username, "sign_in_failed", {"why": "wrong_password", "failed": failed})
            raise AuthError("用户名或密码错误")
        if _hasher.check_needs_rehash(pw_hash):
            self.db.execute("UPDATE users SET password_hash = ? WHERE username = ?", (_hasher.hash(password), username))
        self.db.execute("UPDATE users SET failed_count = 0, locked_until = NULL WHERE username = ?", (username,))
        self.record(username, "sign_in", {})
        return User(username, role, area, display)

    # -- audit -----------------------------------------------------------------

    def record(self, username: str | None, event: str, detail: dict | None = None) -> None:
        self.db.execute("INSERT INTO audit (at, username, event, detail) VALUES (?, ?, ?, ?)",
                        (_now().isoformat(timespec="seconds"), username, event,
                         json.dumps(detail or {}, ensure_ascii=False)))

    def audit(self, limit: int = 500, event: str | None = None) -> list[dict]:
        sql = "SELECT at, username, event, detail FROM audit"
        args: tuple = ()
        if event:
            sql += " WHERE event = ?"
            args = (event,)
        rows = self.db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [{"at": a, "username": u, "event": e, "detail": d} for a, u, e, d in rows]


def _verify(pw_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(pw_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


def _os_user() -> str:
    try:
        return f"os:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "os:unknown"


def _check_username(username: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{2,64}", username or ""):
        raise AuthError("用户名只能包含字母、数字和 _ . @ -，长度2到64")
    return username


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise AuthError(f"密码至少 {MIN_PASSWORD} 位")


def _check_role_area(role: str, area: str | None) -> str | None:
    if role not in ROLES:
        raise AuthError(f"角色应为 {'、'.join(ROLES)} 之一")
    if role in ("city", "admin"):
        return None
    if not area or not re.fullmatch(r"\d{12}", area):
        raise AuthError("县级和乡镇用户必须指定12位区划代码（--area）")
    if role == "county" and not area.endswith("000000"):
        raise AuthError(f"{area} 不是县级区划代码（应以 000000 结尾）")
    if role == "township" and (not area.endswith("000") or area.endswith("000000")):
        raise AuthError(f"{area} 不是乡镇级区划代码（应以 000 结尾，且不是县级代码）")
    return area
