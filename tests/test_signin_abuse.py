"""Sign-in abuse (issue #17 item 8): parallel attempts cannot check more
passwords than the lockout allows, each client address is rate-limited, at
most two Argon2 checks run at once, and a lockout holds for the client that
caused it, not for everyone (nobody can lock ``admin`` out from elsewhere).

The password hasher is replaced by a counting stand-in so the tests count
every check and how many run at the same time."""

import contextlib
import datetime as dt
import threading
import time

import pytest
from argon2.exceptions import VerifyMismatchError
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from liushou_geo import auth
from liushou_geo.auth import AuthError, AuthStore

T0 = dt.datetime(2026, 7, 1, 9, 0)


class CountingHasher:
    """Stands in for argon2's PasswordHasher: counts checks and the most running at once."""

    def __init__(self, seconds: float = 0.03):
        self.seconds = seconds
        self.verified = 0
        self.hashed = 0
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _working(self):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.seconds)
            yield
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password):
        with self._working():
            with self._lock:
                self.hashed += 1
            return "fake$" + password

    def verify(self, pw_hash, password):
        with self._working():
            with self._lock:
                self.verified += 1
            if pw_hash != "fake$" + password:
                raise VerifyMismatchError()
            return True

    def check_needs_rehash(self, pw_hash):
        return False


@pytest.fixture
def hasher(monkeypatch):
    h = CountingHasher()
    monkeypatch.setattr(auth, "_hasher", h)
    return h


@pytest.fixture
def store(tmp_path, hasher):
    s = AuthStore(tmp_path / "a.sqlite")
    s.add_user("admin", "the admin password", "admin")
    s.add_user("clerk", "the clerk password", "city")
    yield s
    s.close()


def _parallel(n, fn):
    """Run fn(i) in n threads started together; the exceptions, in order."""
    errors = [None] * n
    go = threading.Barrier(n)

    def run(i):
        go.wait()
        try:
            fn(i)
        except Exception as e:       # noqa: BLE001 - collected for the assertions
            errors[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_twenty_parallel_wrong_passwords_check_at_most_max_failed(store, hasher):
    hasher.verified = 0
    errors = _parallel(20, lambda i: store.authenticate("admin", f"guess {i}", max_failed=5, lockout_minutes=15,
                                                        now=T0, client="10.0.0.66", rate_per_minute=1000))
    assert all(isinstance(e, AuthError) for e in errors)
    assert hasher.verified == 5, hasher.verified                      # was 78 with the check-then-count race
    assert sum("锁定" in str(e) for e in errors) == 16                # the 5th wrong one and the 15 refused unchecked
    assert len(store.audit(50, "account_locked")) == 1
    # The attacker's address stays locked out, even with the right password...
    with pytest.raises(AuthError, match="锁定"):
        store.authenticate("admin", "the admin password", now=T0 + dt.timedelta(minutes=1), client="10.0.0.66")
    assert hasher.verified == 5                                      # ...without a hash being spent on it
    # ...but admin still signs in from its own machine and from any other address: no denial of service.
    assert store.authenticate("admin", "the admin password", now=T0 + dt.timedelta(minutes=1)).role == "admin"
    assert store.authenticate("admin", "the admin password", now=T0 + dt.timedelta(minutes=1),
                              client="10.0.0.2").role == "admin"


def test_the_attempt_is_reserved_atomically_in_sqlite(tmp_path, hasher, monkeypatch):
    """Without the in-process lock per account (as if each attempt came from another
    process, on its own connection), BEGIN IMMEDIATE alone still allows only max_failed checks."""
    monkeypatch.setattr(auth, "_account_lock", lambda username: contextlib.nullcontext())
    stores = [AuthStore(tmp_path / "shared.sqlite") for _ in range(4)]
    stores[0].add_user("admin", "the admin password", "admin")
    hasher.verified = 0
    errors = _parallel(20, lambda i: stores[i % 4].authenticate("admin", f"guess {i}", max_failed=5, now=T0,
                                                                client="10.0.0.66", rate_per_minute=1000))
    assert all(isinstance(e, AuthError) for e in errors)
    assert hasher.verified <= 5, hasher.verified
    for s in stores:
        s.close()


def test_each_client_address_is_rate_limited(store, hasher):
    hasher.verified = 0
    for i in range(10):                          # password spraying: one address, many accounts
        with pytest.raises(AuthError, match="用户名或密码错误"):
            store.authenticate(f"user{i}", "Winter2026!", now=T0, client="10.0.0.66")
    with pytest.raises(AuthError) as e:
        store.authenticate("clerk", "Winter2026!", now=T0 + dt.timedelta(seconds=30), client="10.0.0.66")
    assert str(e.value) == "尝试过于频繁，请稍后再试" == auth.RATE_LIMITED
    assert hasher.verified == 10                 # the refused attempt cost no hash
    with pytest.raises(AuthError, match="频繁"):  # even the right password, until the minute has passed
        store.authenticate("clerk", "the clerk password", now=T0 + dt.timedelta(seconds=50), client="10.0.0.66")
    # Another address is not affected; the first one may try again a minute later.
    assert store.authenticate("clerk", "the clerk password", now=T0 + dt.timedelta(seconds=30), client="10.0.0.9")
    assert store.authenticate("clerk", "the clerk password", now=T0 + dt.timedelta(seconds=61), client="10.0.0.66")
    limited = store.audit(20, "sign_in_rate_limited")
    assert len(limited) == 1 and "10.0.0.66" in limited[0]["detail"]      # audited once a minute, not per try


def test_successful_sign_ins_do_not_use_up_the_rate_limit(store):
    for i in range(15):                          # a shared office signing in all morning from one address
        assert store.authenticate("clerk", "the clerk password", now=T0 + dt.timedelta(seconds=i), client="10.0.0.5")


def test_at_most_two_password_hashes_run_at_once(store, hasher):
    """Each Argon2 check takes 64 MiB: 20 parallel sign-ins (all different accounts and
    addresses, so nothing else serialises them) never run more than two at a time."""
    for i in range(20):
        store.add_user(f"user{i:02d}", f"password {i:02d}", "city")
    hasher.most = 0
    hasher.seconds = 0.05
    errors = _parallel(20, lambda i: store.authenticate(f"user{i:02d}", f"password {i:02d}" if i % 2 else "wrong!",
                                                        now=T0, client=f"10.0.1.{i}"))
    assert sum(e is None for e in errors) == 10
    assert hasher.most == auth.MAX_PARALLEL_HASHES == 2
    hasher.most = 0                              # hashing new passwords goes through the same gate
    _parallel(6, lambda i: store.reset_password(f"user{i:02d}", f"new password {i}"))
    assert hasher.most <= 2


def test_lockouts_of_one_address_grow(store):
    def wrong(now, n=5):
        for _ in range(n):
            with pytest.raises(AuthError):
                store.authenticate("clerk", "wrong!", now=now, client="10.0.0.66", rate_per_minute=1000)

    wrong(T0)
    with pytest.raises(AuthError, match="锁定"):
        store.authenticate("clerk", "the clerk password", now=T0 + dt.timedelta(minutes=14), client="10.0.0.66")
    t1 = T0 + dt.timedelta(minutes=16)           # first lockout: 15 minutes
    wrong(t1)
    with pytest.raises(AuthError, match="锁定"):  # second: 30 minutes
        store.authenticate("clerk", "the clerk password", now=t1 + dt.timedelta(minutes=29), client="10.0.0.66")
    assert store.authenticate("clerk", "the clerk password", now=t1 + dt.timedelta(minutes=31), client="10.0.0.66")
    assert store.users()[1]["failed_count"] == 0       # a success clears the address's record


def test_an_unknown_user_name_behaves_like_a_wrong_password(store, hasher):
    """Same messages, same lockout, same hash spent: nothing tells which accounts exist."""
    def five(name):
        out = []
        for _ in range(6):
            try:
                store.authenticate(name, "wrong!", now=T0, client="10.0.0.66", rate_per_minute=1000)
            except AuthError as e:
                out.append(str(e))
        return out

    hasher.verified = 0
    real = five("clerk")
    checked_real = hasher.verified
    fake = five("nobody")
    assert real == fake and hasher.verified == 2 * checked_real == 10


def test_the_form_says_too_many_attempts(small_db, tmp_path, monkeypatch):
    monkeypatch.setenv("LIUSHOU_DB", str(small_db[0]))
    monkeypatch.setenv("LIUSHOU_AUTH_DB", str(tmp_path / "form.sqlite"))
    monkeypatch.setattr(auth, "SIGN_IN_PER_MINUTE", 2)
    monkeypatch.chdir(ROOT)
    AuthStore().add_user("leader", "a long password", "city")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    for _ in range(3):
        at.text_input(key="sign_in_user").input("leader")
        at.text_input(key="sign_in_password").input("wrong password")
        at.button[0].click().run()
    assert [e.value for e in at.error][-1] == "尝试过于频繁，请稍后再试"
    assert not at.get("deck_gl_json_chart")
