"""The DuckDB store: connecting with the spatial extension loaded offline, the
schema, and running the named SQL files in ``liushou_geo/sql/``.

The spatial extension comes from the ``duckdb-extension-spatial`` wheel; a
plain ``INSTALL spatial`` would try the internet, which a government intranet
does not have.

The live store is never written in place: writers (the command-line ingest, a
confirmed upload) build a private copy and swap it in with one rename, one at
a time under ``writer_lock``. Readers keep the file they opened until they
reopen, so pages never meet a half-written or locked store.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import shutil
import time
from pathlib import Path

import duckdb

from .settings import DEFAULT_DB

SQL_DIR = Path(__file__).parent / "sql"


def db_path(explicit: str | os.PathLike | None = None) -> Path:
    """The database in force: explicit path, else $LIUSHOU_DB, else data/liushou.duckdb."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("LIUSHOU_DB")
    return Path(env) if env else DEFAULT_DB


def _spatial_extension_file() -> Path:
    import duckdb_extension_spatial

    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    found = sorted(root.glob("*/spatial.duckdb_extension"))
    if not found:
        raise RuntimeError(f"spatial extension not found under {root}; reinstall duckdb-extension-spatial")
    return found[-1]


def load_spatial(con: duckdb.DuckDBPyConnection) -> None:
    """Install the spatial extension from the wheel's file and load it (no network)."""
    try:
        con.execute("LOAD spatial")
    except duckdb.Error:
        con.execute(f"INSTALL '{_spatial_extension_file()}'")
        con.execute("LOAD spatial")


def connect(path: str | os.PathLike | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the store (creating the schema when writable) with spatial loaded."""
    p = db_path(path)
    if read_only and not p.exists():
        raise FileNotFoundError(f"数据库不存在：{p}。请先运行 liushou-geo ingest（或 make run 生成示范数据）。")
    p.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(p), read_only=read_only)
    load_spatial(con)
    if not read_only:
        con.execute(sql_text("schema"))
    return con


def open_snapshot(path: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """The store file as it is now, read-only, in a DuckDB instance of its own.

    ``duckdb.connect`` shares one instance per path: after a swap it would hand
    back the replaced file for as long as any connection to it lives. Attaching
    to a fresh in-memory instance opens the current file. Every cursor must run
    ``USE store`` (cursors start on the in-memory catalog).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"数据库不存在：{p}。请先运行 liushou-geo ingest（或 make run 生成示范数据）。")
    con = duckdb.connect()
    try:
        load_spatial(con)
        quoted = str(p).replace("'", "''")            # ATTACH takes no bound parameter
        con.execute(f"ATTACH '{quoted}' AS store (READ_ONLY)")
        con.execute("USE store")
    except BaseException:
        con.close()
        raise
    return con


# -- writers: private copies, one writer at a time, atomic swap ---------------------


class StoreBusy(RuntimeError):
    """Another writer holds the store (an ingest or a confirmation is running)."""


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def fingerprint(path: str | os.PathLike) -> tuple | None:
    """Identity of the store file as it is now; any swap or write changes it (None: no store)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    try:
        w = _wal(p).stat()
        wal = (w.st_ino, w.st_size, w.st_mtime_ns)
    except FileNotFoundError:
        wal = None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, wal)


@contextlib.contextmanager
def writer_lock(path: str | os.PathLike, wait: float | None = None):
    """Hold the store's writer lock (``<store>.lock``, an flock the kernel drops if
    the holder dies). ``wait`` None waits as long as it takes; else raise
    ``StoreBusy`` after that many seconds."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p.with_name(p.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if wait is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise StoreBusy("数据库正在更新（另一次导入尚未完成），请稍后再试") from None
                    time.sleep(0.1)
        yield
    finally:
        os.close(fd)              # releases the lock


def private_copy(src: str | os.PathLike, dst: str | os.PathLike) -> tuple | None:
    """Copy the store (and its WAL, if any) to a new file readable by its owner only;
    returns the fingerprint of exactly what was copied."""
    src, dst = Path(src), Path(dst)
    with open(src, "rb") as fin:
        before = fingerprint(src)
        st = os.fstat(fin.fileno())
        copied = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, before[4] if before else None)
        _copy_private(fin, dst)
    if _wal(src).exists():
        with open(_wal(src), "rb") as fin:
            _copy_private(fin, _wal(dst))
    return copied


def _copy_private(fin, dst: Path) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def swap_in(new: str | os.PathLike, path: str | os.PathLike) -> None:
    """Put a finished store in place of the live one in one rename (call under ``writer_lock``)."""
    new, path = Path(new), Path(path)
    if _wal(new).exists():
        raise RuntimeError(f"{new} still has a write-ahead log: close it (CHECKPOINT) before the swap")
    os.chmod(new, 0o600)
    fd = os.open(new, os.O_RDONLY)
    try:
        os.fsync(fd)               # the data is on disk before the name points at it
    finally:
        os.close(fd)
    os.replace(new, path)
    # A WAL left by the replaced file would be replayed into the new one.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_wal(path))
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


STALE_SECONDS = 3600


def ingest_prefix(path: str | os.PathLike) -> str:
    """Name start of an ingest's work folder for this store (another store's are not ours to remove)."""
    return f".ingest-{Path(path).name}-"


def remove_stale_work(path: str | os.PathLike, max_age: float = STALE_SECONDS, locked: bool = False) -> list[Path]:
    """Remove work folders left next to the store by abandoned checks and killed runs:
    ``.upload-*`` untouched for ``max_age`` seconds, and this store's ``.ingest-*``
    once no ingest runs (``locked``: the caller holds the writer lock). Returns what went."""
    p = Path(path)
    if not p.parent.is_dir():
        return []
    gone = []
    now = time.time()
    for d in p.parent.glob(".upload-*"):
        with contextlib.suppress(FileNotFoundError):
            if d.is_dir() and now - d.stat().st_mtime > max_age:
                shutil.rmtree(d, ignore_errors=True)
                gone.append(d)
    ingests = [d for d in p.parent.glob(f"{ingest_prefix(p)}*") if d.is_dir()]
    if ingests:
        with contextlib.ExitStack() as stack:
            if not locked:
                try:
                    stack.enter_context(writer_lock(p, wait=0))
                except StoreBusy:
                    return gone           # an ingest is running: its folder is not stale
            for d in ingests:
                shutil.rmtree(d, ignore_errors=True)
                gone.append(d)
    return gone


@functools.cache
def sql_text(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def query(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None):
    """Run a named query with bound parameters; returns a polars DataFrame."""
    return con.execute(sql_text(name), params or {}).pl()


def run(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None) -> None:
    """Run a named statement (or script, when no parameters) for its effect."""
    con.execute(sql_text(name), params or {})
