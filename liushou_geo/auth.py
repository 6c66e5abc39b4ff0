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

Sign-in abuse (issue #17 item 8): a password check costs 64 MiB, so at most
``MAX_PARALLEL_HASHES`` run at once (a semaphore); checks of one account run
one after another (a lock per account) and reserve their attempt in SQLite
(``BEGIN IMMEDIATE``: read and increment in one transaction) *before* the
hash is computed, so parallel attempts cannot check more than
``max_failed`` passwords; each client address may make ``SIGN_IN_PER_MINUTE``
attempts a minute. Wrong passwords lock the account *for that client address*
only (longer each time), never for everyone: an attacker cannot lock
``admin`` out of the machine it signs in from.

Lasting sign-in (issue #15 item 2): a sign-in opens a row in ``sessions``.
The browser gets its token only as an HttpOnly, SameSite=Strict cookie, set by
a small HTTP route of this module (``http_routes``) in exchange for a
one-time code valid ``HANDOVER_SECONDS``; the table keeps the SHA-256 of
token and code, never either. A new Streamlit session (reload, new tab,
bookmark) resumes from the cookie until the idle timeout (sliding) or
``SESSION_MAX_HOURS`` after the sign-in, whichever comes first; sign-out,
an administrator's lock, a password reset and deleting the user end it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
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

# -- limits on sign-in attempts (see the module docstring) ---------------------
MAX_PARALLEL_HASHES = 2          # Argon2 checks running at once (64 MiB each)
HASH_WAIT_SECONDS = 30           # longer than this in the queue: "系统繁忙"
SIGN_IN_PER_MINUTE = 10          # attempts per client address per minute (a success is not counted)
MAX_LOCKOUT_MINUTES = 24 * 60    # repeated lockouts of one client double, up to this
LOCAL_CLIENT = "local"           # the client key of loopback connections (Streamlit hides their address)
RATE_LIMITED = "尝试过于频繁，请稍后再试"
_HASH_SLOTS = threading.BoundedSemaphore(MAX_PARALLEL_HASHES)
_ACCOUNT_LOCKS = [threading.Lock() for _ in range(64)]     # striped: bounded memory, one stripe per account
_rate_logged: dict[str, float] = {}                          # client -> when its last refusal was audited

# -- lasting sign-in -----------------------------------------------------------
COOKIE_NAME = "liushou_session"
SESSION_MAX_HOURS = 12           # absolute maximum of one sign-in, however active
HANDOVER_SECONDS = 60            # life of the one-time code that lets the browser fetch its cookie
TOUCH_SECONDS = 15               # the sliding expiry is written at most this often per session
ADMIN_LOCK = "9999-12-31T23:59:59"   # users.locked_until of an account an administrator locked

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
    event    TEXT NOT NULL,          -- sign_in, sign_in_failed, sign_in_rate_limited, account_locked, sign_out,
                                     -- session_resume, session_resume_refused, session_expired, session_revoked,
                                     -- child_list_view, child_details_shown, export, ingest, user_added,
                                     -- password_reset, account_unlocked, account_locked_by_admin, user_deleted
    detail   TEXT                    -- JSON
);
CREATE TABLE IF NOT EXISTS sessions (          -- lasting sign-ins; only hashes of token and code are kept
    id           TEXT PRIMARY KEY,             -- server-side handle in the Streamlit session, never sent out
    username     TEXT NOT NULL,
    token_hash   TEXT UNIQUE,                  -- sha256 of the cookie's token, once the browser fetched it
    code_hash    TEXT UNIQUE,                  -- sha256 of the one-time hand-over code, until used
    code_expires TEXT,
    created_at   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    expires_at   TEXT NOT NULL                 -- min(last activity + idle minutes, created + SESSION_MAX_HOURS)
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
CREATE TABLE IF NOT EXISTS sign_in_failures (  -- wrong passwords in a row, per account and client address
    username     TEXT NOT NULL,
    client       TEXT NOT NULL,
    failed_count INTEGER NOT NULL DEFAULT 0,
    lockouts     INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    last_at      TEXT NOT NULL,
    PRIMARY KEY (username, client)
);
CREATE TABLE IF NOT EXISTS sign_in_attempts (  -- the last minute's attempts per client address (rate limit)
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    client TEXT NOT NULL,
    at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_in_attempts_client ON sign_in_attempts (client, at);
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
    """Users, sign-in attempts, lasting sign-ins and the audit log in one SQLite file.

    One instance may be shared by the threads of the Streamlit sessions: every
    use of the connection holds ``self._lock`` (a transaction must not take in
    another thread's statements).
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = auth_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Private from its creation: SQLite gives the -wal and -shm files (password
        # hashes, the audit log) the database file's own mode.
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        self.db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextlib.contextmanager
    def _tx(self):
        """One write transaction, taken at once (BEGIN IMMEDIATE): reads in it see no other writer."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _one(self, sql: str, args: tuple = ()):
        with self._lock:
            return self.db.execute(sql, args).fetchone()

    def _run(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            return self.db.execute(sql, args).rowcount

    # -- users -----------------------------------------------------------------

    def add_user(self, username: str, password: str, role: str, area_code: str | None = None,
                 display_name: str | None = None, by: str | None = None) -> User:
        username = _check_username(username)
        area_code = _check_role_area(role, area_code)
        _check_password(password)
        try:
            self._run("INSERT INTO users (username, password_hash, role, area_code, display_name, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
                      (username, _hash(password), role, area_code, display_name, _now().isoformat()))
        except sqlite3.IntegrityError:
            raise AuthError(f"用户 {username} 已存在") from None
        self.record(by or _os_user(), "user_added", {"username": username, "role": role, "area": area_code})
        return User(username, role, area_code, display_name)

    def reset_password(self, username: str, password: str, by: str | None = None) -> None:
        """A new password; lifts lockouts and ends every lasting sign-in of the user."""
        _check_password(password)
        new_hash = _hash(password)                 # outside the transaction: hashing takes a while
        with self._tx() as db:
            cur = db.execute("UPDATE users SET password_hash = ?, failed_count = 0, locked_until = NULL "
                             "WHERE username = ?", (new_hash, username))
            if cur.rowcount == 0:
                raise AuthError(f"没有用户 {username}")
            db.execute("DELETE FROM sign_in_failures WHERE username = ?", (username,))
            ended = db.execute("DELETE FROM sessions WHERE username = ?", (username,)).rowcount
        self.record(by or _os_user(), "password_reset", {"username": username, "sessions_ended": ended})

    def unlock(self, username: str, by: str | None = None) -> None:
        """Lift an administrator's lock and every client's lockout of the account."""
        with self._tx() as db:
            cur = db.execute("UPDATE users SET failed_count = 0, locked_until = NULL WHERE username = ?", (username,))
            if cur.rowcount == 0:
                raise AuthError(f"没有用户 {username}")
            db.execute("DELETE FROM sign_in_failures WHERE username = ?", (username,))
        self.record(by or _os_user(), "account_unlocked", {"username": username})

    def lock_user(self, username: str, by: str | None = None) -> None:
        """An administrator's lock: no sign-in until ``unlock``; ends every lasting sign-in of the user."""
        with self._tx() as db:
            cur = db.execute("UPDATE users SET locked_until = ? WHERE username = ?", (ADMIN_LOCK, username))
            if cur.rowcount == 0:
                raise AuthError(f"没有用户 {username}")
            ended = db.execute("DELETE FROM sessions WHERE username = ?", (username,)).rowcount
        self.record(by or _os_user(), "account_locked_by_admin", {"username": username, "sessions_ended": ended})

    def delete_user(self, username: str, by: str | None = None) -> None:
        """Remove a user, its lockouts and its lasting sign-ins (the audit log keeps its history)."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM users WHERE username = ?", (username,))
            if cur.rowcount == 0:
                raise AuthError(f"没有用户 {username}")
            db.execute("DELETE FROM sign_in_failures WHERE username = ?", (username,))
            ended = db.execute("DELETE FROM sessions WHERE username = ?", (username,)).rowcount
        self.record(by or _os_user(), "user_deleted", {"username": username, "sessions_ended": ended})

    def users(self) -> list[dict]:
        """Every user. ``locked_until``: an administrator's lock (or an old account-wide lockout);
        ``failed_count``: wrong passwords in a row, all client addresses together;
        ``locked_clients``: client addresses currently locked out of the account."""
        now = _now().isoformat()
        with self._lock:
            rows = self.db.execute(
                "SELECT u.username, u.role, u.area_code, u.display_name, "
                "       COALESCE((SELECT SUM(failed_count) FROM sign_in_failures f WHERE f.username = u.username), 0), "
                "       u.locked_until, u.created_at, "
                "       (SELECT COUNT(*) FROM sign_in_failures f WHERE f.username = u.username AND f.locked_until > ?) "
                "FROM users u ORDER BY u.username", (now,)).fetchall()
        keys = ["username", "role", "area_code", "display_name", "failed_count", "locked_until", "created_at",
                "locked_clients"]
        return [dict(zip(keys, r)) for r in rows]

    # -- sign-in ---------------------------------------------------------------

    def authenticate(self, username: str, password: str, max_failed: int = 5, lockout_minutes: int = 15,
                     now: dt.datetime | None = None, client: str | None = None,
                     rate_per_minute: int | None = None) -> User:
        """The user, or AuthError.

        ``client`` is the client's address (None: this machine). In order:
        the client's attempts of the last minute (at most ``rate_per_minute``,
        default ``SIGN_IN_PER_MINUTE``); the account's lockout *for this
        client*; one attempt reserved in SQLite; then the password hash is
        checked, one account at a time, at most ``MAX_PARALLEL_HASHES`` hashes
        at once. ``max_failed`` wrong passwords in a row from one client lock
        the account for that client for ``lockout_minutes``, doubled at each
        further lockout. A user name that does not exist goes through the same
        steps and messages, so they tell nothing about which accounts exist.
        """
        now = now or _now()
        client = client or LOCAL_CLIENT
        attempt = self._take_attempt(client, now, SIGN_IN_PER_MINUTE if rate_per_minute is None else rate_per_minute)
        with _account_lock(username):
            failed = self._reserve(username, client, max_failed, lockout_minutes, now)
            row = self._one("SELECT password_hash, role, area_code, display_name, locked_until "
                            "FROM users WHERE username = ?", (username,))
            ok = _verify(row[0] if row else _DUMMY, password) and row is not None
            if not ok:
                self._failed(username, client, failed, max_failed, lockout_minutes, now, known=row is not None)
            pw_hash, role, area, display, locked_until = row
            with self._tx() as db:
                db.execute("DELETE FROM sign_in_failures WHERE username = ? AND client = ?", (username, client))
                db.execute("DELETE FROM sign_in_attempts WHERE id = ?", (attempt,))     # a success is not counted
            if locked_until and dt.datetime.fromisoformat(locked_until) > now:
                self.record(username, "sign_in_failed", {"why": "locked_by_admin", "client": client})
                if locked_until == ADMIN_LOCK:
                    raise AuthError("账号已被管理员停用，请联系管理员")
                raise AuthError(f"账号已被锁定，请在 {dt.datetime.fromisoformat(locked_until):%H:%M} 后再试，或联系管理员解锁")
            if _hasher.check_needs_rehash(pw_hash):
                self._run("UPDATE users SET password_hash = ? WHERE username = ?", (_hash(password), username))
        self.record(username, "sign_in", {"client": client})
        return User(username, role, area, display)

    def _take_attempt(self, client: str, now: dt.datetime, per_minute: int) -> int:
        """Count an attempt of ``client``, or refuse it when it made ``per_minute`` in the last minute."""
        t = now.timestamp()
        with self._tx() as db:
            db.execute("DELETE FROM sign_in_attempts WHERE at <= ?", (t - 60,))
            # A client's record of an account is forgotten a day after its last attempt once no lockout runs
            # (so lockouts stop growing after a quiet day, and sprayed unknown names do not pile up).
            db.execute("DELETE FROM sign_in_failures WHERE last_at < ? AND (locked_until IS NULL OR locked_until <= ?)",
                       ((now - dt.timedelta(days=1)).isoformat(), now.isoformat()))
            (n,) = db.execute("SELECT COUNT(*) FROM sign_in_attempts WHERE client = ? AND at > ?",
                              (client, t - 60)).fetchone()
            if n < per_minute:
                return db.execute("INSERT INTO sign_in_attempts (client, at) VALUES (?, ?)", (client, t)).lastrowid
        if time.monotonic() - _rate_logged.get(client, -1e9) > 60:     # audited once a minute per client
            if len(_rate_logged) > 10_000:
                _rate_logged.clear()
            _rate_logged[client] = time.monotonic()
            self.record(None, "sign_in_rate_limited", {"client": client, "per_minute": per_minute})
        raise AuthError(RATE_LIMITED)

    def _reserve(self, username: str, client: str, max_failed: int, lockout_minutes: int,
                 now: dt.datetime) -> int:
        """Reserve one password check of (account, client): read and increment the failure count
        in one transaction, so that parallel attempts from any thread or process cannot check
        more than ``max_failed`` passwords between lockouts. Returns the count including this one."""
        with self._tx() as db:
            row = db.execute("SELECT failed_count, lockouts, locked_until FROM sign_in_failures "
                             "WHERE username = ? AND client = ?", (username, client)).fetchone()
            failed, lockouts, locked_until = row or (0, 0, None)
            if locked_until and dt.datetime.fromisoformat(locked_until) > now:
                until = dt.datetime.fromisoformat(locked_until)
            elif failed >= max_failed:           # reserved by attempts still running: lock now
                until = _lock_until(now, lockout_minutes, lockouts)
                db.execute("UPDATE sign_in_failures SET failed_count = 0, lockouts = lockouts + 1, locked_until = ? "
                           "WHERE username = ? AND client = ?", (until.isoformat(), username, client))
            else:
                if locked_until:                 # a lockout that ran out: start counting again
                    failed = 0
                db.execute("INSERT INTO sign_in_failures (username, client, failed_count, last_at) VALUES (?, ?, 1, ?) "
                           "ON CONFLICT (username, client) DO UPDATE SET failed_count = ?, locked_until = NULL, "
                           "last_at = excluded.last_at", (username, client, now.isoformat(), failed + 1))
                return failed + 1
        self.record(username, "sign_in_failed", {"why": "locked", "client": client})
        raise AuthError(f"该账号在本机已被暂时锁定，请在 {until:%H:%M} 后再试，或联系管理员解锁")

    def _failed(self, username: str, client: str, failed: int, max_failed: int, lockout_minutes: int,
                now: dt.datetime, known: bool) -> None:
        """A wrong password (or user name): lock (account, client) at ``max_failed``; always raises."""
        why = "wrong_password" if known else "unknown_user"
        if failed >= max_failed:
            with self._tx() as db:
                (lockouts,) = db.execute("SELECT lockouts FROM sign_in_failures WHERE username = ? AND client = ?",
                                         (username, client)).fetchone() or (0,)
                until = _lock_until(now, lockout_minutes, lockouts)
                db.execute("UPDATE sign_in_failures SET failed_count = 0, lockouts = lockouts + 1, locked_until = ? "
                           "WHERE username = ? AND client = ?", (until.isoformat(), username, client))
            minutes = int((until - now).total_seconds() // 60)
            self.record(username, "account_locked", {"why": why, "client": client,
                                                     "until": until.isoformat(timespec="minutes")})
            raise AuthError(f"密码连续错误 {max_failed} 次，该账号在本机锁定 {minutes} 分钟")
        self.record(username, "sign_in_failed", {"why": why, "failed": failed, "client": client})
        raise AuthError("用户名或密码错误")

    # -- lasting sign-in -------------------------------------------------------

    def start_session(self, user: User, idle_minutes: int, now: dt.datetime | None = None) -> tuple[str, str]:
        """Open a lasting sign-in for a user who just signed in: (session id, one-time hand-over code).

        The session id stays on the server (in the Streamlit session). The code
        goes to the browser once, which trades it at ``/liushou/session`` for
        the HttpOnly cookie; only its SHA-256 is stored, for ``HANDOVER_SECONDS``."""
        now = now or _now()
        sid, code = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
        expires = min(now + dt.timedelta(minutes=idle_minutes), now + dt.timedelta(hours=SESSION_MAX_HOURS))
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now.isoformat(),))
            db.execute("INSERT INTO sessions (id, username, code_hash, code_expires, created_at, last_seen, expires_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (sid, user.username, _sha(code), (now + dt.timedelta(seconds=HANDOVER_SECONDS)).isoformat(),
                        now.isoformat(), now.isoformat(), expires.isoformat()))
        return sid, code

    def handover_pending(self, sid: str, now: dt.datetime | None = None) -> bool:
        """Whether the browser has yet to fetch the cookie of this session (and still may)."""
        now = now or _now()
        row = self._one("SELECT 1 FROM sessions WHERE id = ? AND code_hash IS NOT NULL AND code_expires > ?",
                        (sid, now.isoformat()))
        return row is not None

    def claim_code(self, code: str, now: dt.datetime | None = None) -> str | None:
        """Trade a one-time code for the session's token (what the cookie carries), once; else None.
        A new random token is made here and only its hash kept."""
        now = now or _now()
        if not code or len(code) > 200:
            return None
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            cur = db.execute("UPDATE sessions SET token_hash = ?, code_hash = NULL, code_expires = NULL "
                             "WHERE code_hash = ? AND code_expires > ? AND expires_at > ? AND token_hash IS NULL",
                             (_sha(token), _sha(code), now.isoformat(), now.isoformat()))
        return token if cur.rowcount == 1 else None

    def check_session(self, sid: str, idle_minutes: int, now: dt.datetime | None = None) -> tuple[User | None, str]:
        """The user of a live session and "ok" — its expiry slid forward — or (None, why):
        "idle", "max_age" (``SESSION_MAX_HOURS`` after the sign-in), "revoked" (signed out,
        locked, password reset, user deleted) or "locked"."""
        now = now or _now()
        with self._lock:
            row = self.db.execute(
                "SELECT s.created_at, s.last_seen, s.expires_at, u.role, u.area_code, u.display_name, "
                "       u.locked_until, u.username "
                "FROM sessions s JOIN users u ON u.username = s.username WHERE s.id = ?", (sid,)).fetchone()
            if row is None:
                return None, "revoked"
            created, last_seen, expires, role, area, display, locked_until, username = row
            created = dt.datetime.fromisoformat(created)
            if dt.datetime.fromisoformat(expires) <= now:
                self.db.execute("DELETE FROM sessions WHERE id = ?", (sid,))
                return None, ("max_age" if now >= created + dt.timedelta(hours=SESSION_MAX_HOURS) else "idle")
            if locked_until and dt.datetime.fromisoformat(locked_until) > now:
                self.db.execute("DELETE FROM sessions WHERE id = ?", (sid,))
                return None, "locked"
            if (now - dt.datetime.fromisoformat(last_seen)).total_seconds() >= TOUCH_SECONDS:
                slid = min(now + dt.timedelta(minutes=idle_minutes), created + dt.timedelta(hours=SESSION_MAX_HOURS))
                self.db.execute("UPDATE sessions SET last_seen = ?, expires_at = ? WHERE id = ?",
                                (now.isoformat(), slid.isoformat(), sid))
        return User(username, role, area, display), "ok"

    def resume_session(self, token: str, idle_minutes: int, now: dt.datetime | None = None,
                       client: str | None = None) -> tuple[str | None, User | None, str]:
        """A new Streamlit session presenting the cookie's token: (session id, user, "ok"), audited
        as ``session_resume``; or (None, None, why) — "unknown" (never issued, signed out, revoked)
        or a reason of ``check_session`` — audited as ``session_resume_refused``."""
        now = now or _now()
        row = self._one("SELECT id, username FROM sessions WHERE token_hash = ?", (_sha(token or ""),))
        if row is None:
            self.record(None, "session_resume_refused", {"why": "unknown", "client": client or LOCAL_CLIENT})
            return None, None, "unknown"
        sid, username = row
        user, why = self.check_session(sid, idle_minutes, now)
        if user is None:
            self.record(username, "session_resume_refused", {"why": why, "client": client or LOCAL_CLIENT})
            return None, None, why
        self.record(username, "session_resume", {"session": sid[:6], "client": client or LOCAL_CLIENT})
        return sid, user, "ok"

    def end_session(self, sid: str) -> bool:
        """Sign-out: the session's token stops working at once."""
        return self._run("DELETE FROM sessions WHERE id = ?", (sid,)) == 1

    # -- audit -----------------------------------------------------------------

    def record(self, username: str | None, event: str, detail: dict | None = None) -> None:
        self._run("INSERT INTO audit (at, username, event, detail) VALUES (?, ?, ?, ?)",
                  (_now().isoformat(timespec="seconds"), username, event,
                   json.dumps(detail or {}, ensure_ascii=False)))

    def audit(self, limit: int = 500, event: str | None = None) -> list[dict]:
        sql = "SELECT at, username, event, detail FROM audit"
        args: tuple = ()
        if event:
            sql += " WHERE event = ?"
            args = (event,)
        with self._lock:
            rows = self.db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [{"at": a, "username": u, "event": e, "detail": d} for a, u, e, d in rows]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _lock_until(now: dt.datetime, lockout_minutes: int, lockouts: int) -> dt.datetime:
    """The end of the ``lockouts + 1``-th lockout of one client: doubled each time, capped."""
    return now + dt.timedelta(minutes=min(lockout_minutes * 2 ** min(lockouts, 16), MAX_LOCKOUT_MINUTES))


@contextlib.contextmanager
def _account_lock(username: str):
    """Checks of one account run one after another (a striped lock: bounded memory)."""
    lock = _ACCOUNT_LOCKS[int(_sha(username)[:8], 16) % len(_ACCOUNT_LOCKS)]
    with lock:
        yield


@contextlib.contextmanager
def _hash_slot():
    """At most ``MAX_PARALLEL_HASHES`` Argon2 computations at once (64 MiB each)."""
    if not _HASH_SLOTS.acquire(timeout=HASH_WAIT_SECONDS):
        raise AuthError("系统繁忙，请稍后再试")
    try:
        yield
    finally:
        _HASH_SLOTS.release()


def _hash(password: str) -> str:
    with _hash_slot():
        return _hasher.hash(password)


def _verify(pw_hash: str, password: str) -> bool:
    with _hash_slot():
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


# -- the HTTP side of the lasting sign-in (routes of st.App in app.py) ------------

_PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
          b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")      # 1x1 transparent GIF
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_route_stores: dict[str, AuthStore] = {}
_route_lock = threading.Lock()


def _prefix(base_url: str | None) -> str:
    base = (base_url or "").strip("/")
    return f"/{base}" if base else ""


def handover_html(code: str, base_url: str | None = None) -> str:
    """An invisible image whose request trades the one-time code for the HttpOnly cookie
    (no script involved). ``code`` is URL-safe base64, safe in the attribute."""
    assert re.fullmatch(r"[A-Za-z0-9_-]+", code)
    return (f'<img src="{_prefix(base_url)}/liushou/session?code={code}" width="1" height="1" alt="" '
            'style="position:absolute;opacity:0">')


def clear_cookie_html(base_url: str | None = None) -> str:
    """An invisible image whose response removes the (already revoked) cookie from the browser."""
    return (f'<img src="{_prefix(base_url)}/liushou/sign-out" width="1" height="1" alt="" '
            'style="position:absolute;opacity:0">')


def _route_store() -> AuthStore:
    path = str(auth_path())
    with _route_lock:
        if path not in _route_stores:
            _route_stores[path] = AuthStore(path)
        return _route_stores[path]


def http_routes(base_url: str | None = None) -> list:
    """Starlette routes served beside Streamlit (``st.App(..., routes=http_routes())``).

    ``GET /liushou/session?code=…`` trades a one-time code (see ``start_session``)
    for the cookie ``liushou_session``: HttpOnly (no script can read it),
    SameSite=Strict (never sent with a request another site starts), Secure
    over HTTPS, Path the app's base path, and no expiry date: the browser drops
    it when it closes, the server after the idle timeout. ``GET /liushou/sign-out``
    removes it. Both refuse requests another site starts (Sec-Fetch-Site)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    from starlette.routing import Route

    prefix = _prefix(base_url)
    cookie_path = prefix or "/"

    def cross_site(request) -> bool:
        return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin",)

    async def session(request):
        if cross_site(request):
            return Response(status_code=403, headers=_NO_STORE)
        token = await run_in_threadpool(_route_store().claim_code, request.query_params.get("code", ""))
        if token is None:
            return Response(status_code=403, headers=_NO_STORE)
        response = Response(_PIXEL, media_type="image/gif", headers=_NO_STORE)
        response.set_cookie(COOKIE_NAME, token, path=cookie_path, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def sign_out(request):
        if cross_site(request):
            return Response(status_code=403, headers=_NO_STORE)
        response = Response(_PIXEL, media_type="image/gif", headers=_NO_STORE)
        response.delete_cookie(COOKIE_NAME, path=cookie_path, httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    return [Route(f"{prefix}/liushou/session", session, methods=["GET"]),
            Route(f"{prefix}/liushou/sign-out", sign_out, methods=["GET"])]
