"""Files uploaded in the app: checked against a copy of the store first, then
swapped in whole when the administrator confirms.

Uploaded files are untrusted: a crafted workbook can make a spreadsheet
parser abort the whole process or allocate without bound. So the check runs
the ingest in a child process (``python -m liushou_geo.upload``) with a
memory limit and a time limit; a crash, a memory blow-up or a timeout
becomes a message on the page while the server keeps answering. The child
reports progress on standard error and writes its report to a file.

Everything is private to the server's user (folders 0700, files 0600), the
raw uploads are deleted as soon as they have been read, and work folders left
by abandoned checks are removed after an hour (and at start-up).

Confirming replaces the store file in one rename, under the store's writer
lock, and only if the store is still the one the check copied: otherwise an
import confirmed in between would be lost, so the confirmation is refused.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import store
from .settings import Settings

log = logging.getLogger(__name__)

ALLOWED_SUFFIXES = {".xlsx", ".xls", ".xlsm", ".csv", ".txt", ".tsv", ".gpkg", ".geojson", ".json",
                    ".shp", ".shx", ".dbf", ".prj", ".cpg"}
SIDECARS = (".shp.xml",)      # a shapefile's metadata, sent with it by GIS offices: accepted, not read

# Limits of one check; the environment overrides them (a city with bigger extracts raises them).
MAX_UPLOAD_MB = 200           # all files of one check together
MEMORY_LIMIT_MB = 3072        # the child's writable memory (RLIMIT_DATA)
TIME_LIMIT_SECONDS = 600
LOCK_WAIT_SECONDS = 5         # a confirmation waits this long for a running ingest, then asks to retry
# Test-only: makes the child abort like a parser hit by a hostile file would.
TEST_ABORT_ENV = "LIUSHOU_UPLOAD_TEST_ABORT"
_PROGRESS = "@@progress "
_MEMORY_EXIT = 3

CRASHED = "文件导致检查进程异常退出（可能是损坏或恶意构造的文件），检查已中止，数据库未改动。请确认文件来源，在 Excel 中另存一份后重新上传。"
OUT_OF_MEMORY = ("文件导致检查进程超出内存上限（{gb:g} GB，可能是过大、损坏或恶意构造的文件），检查已中止，数据库未改动。"
                 "请拆分文件或在 Excel 中另存一份后重新上传。")
TIMED_OUT = "检查超过 {s} 秒仍未完成，已中止（文件可能过大或是恶意构造的），数据库未改动。请拆分文件后重新上传。"
FAILED = "检查进程出错退出，数据库未改动（详情已记入服务器日志）。"
STORE_CHANGED = "数据库在检查之后已被更新，请重新检查上传的文件"
EXPIRED = "检查结果已过期或已被清理，请重新检查上传的文件"


class UploadError(ValueError):
    """A check or a confirmation that cannot go on; the message is for the page."""


@dataclass
class Candidate:
    """A store with the uploaded files ingested, waiting to be confirmed."""

    db: Path
    files: Path              # the uploads' folder: already deleted once the check has read them
    report: dict
    base: tuple | None = field(default=None)      # fingerprint of the live store the check copied


def _limit(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def max_upload_bytes() -> int:
    return int(_limit("LIUSHOU_UPLOAD_MAX_MB", MAX_UPLOAD_MB) * 1024 * 1024)


def safe_name(name: str) -> str:
    """The file's own name only (no folders), refused if its type is not one we read."""
    base = Path(name.replace("\\", "/")).name
    known = Path(base).suffix.lower() in ALLOWED_SUFFIXES or base.lower().endswith(SIDECARS)
    if not base or base.startswith(".") or not known:
        raise UploadError(f"不接受的文件：{name}（只接受 .xlsx、.xls、.csv 台帐和边界文件）")
    return base


def check_size(sizes: list[int]) -> None:
    """Refuse uploads over the limit before anything is written or read."""
    limit = max_upload_bytes()
    if sum(sizes) > limit:
        raise UploadError(f"上传的文件共 {sum(sizes) / 2**20:.1f} MB，超过上限 {limit / 2**20:g} MB。"
                          "请分批上传，或把大文件交给管理员用命令行导入。")


def write_private(path: Path, data: bytes) -> None:
    """A new file only the server's user can read, from its creation on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def check(db_path: Path, uploads: list[tuple[str, bytes]], settings: Settings, progress=None) -> Candidate:
    """Ingest the uploads into a copy of the store, in a child process, and return it with the report.

    Raises ``UploadError`` (a message for the page) when the files are refused or the check fails.
    """
    db_path = Path(db_path)
    check_size([len(data) for _, data in uploads])
    names = [safe_name(name) for name, _ in uploads]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UploadError(f"有同名文件：{'、'.join(twice)}。请改名后重新上传（同名文件会互相覆盖）")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    store.remove_stale_work(db_path)
    work = Path(tempfile.mkdtemp(prefix=".upload-", dir=db_path.parent))      # mode 0700
    files = work / "files"
    done = False
    try:
        files.mkdir(mode=0o700)
        for name, (_, data) in zip(names, uploads):
            write_private(files / name, data)
        candidate = work / db_path.name
        base = store.private_copy(db_path, candidate) if db_path.exists() else None
        report = _run_child(candidate, files, settings, progress)
        done = True
        return Candidate(db=candidate, files=files, report=report, base=base)
    finally:
        # Raw extracts are not kept once read; on any failure nothing is kept at all.
        shutil.rmtree(files if done else work, ignore_errors=True)


def _run_child(candidate: Path, files: Path, settings: Settings, progress) -> dict:
    report_path = candidate.with_name("report.json")
    memory_mb = _limit("LIUSHOU_UPLOAD_MEMORY_MB", MEMORY_LIMIT_MB)
    seconds = _limit("LIUSHOU_UPLOAD_TIME_LIMIT", TIME_LIMIT_SECONDS)
    # Allocators that reserve memory up front would spend the limit on nothing (measured:
    # Arrow's jemalloc pool reserves ~1 GB; glibc one arena per thread).
    env = dict(os.environ, PYTHONUNBUFFERED="1", MALLOC_ARENA_MAX="2", ARROW_DEFAULT_MEMORY_POOL="system",
               LIUSHOU_UPLOAD_MEMORY_MB=f"{memory_mb:g}", LIUSHOU_UPLOAD_TIME_LIMIT=f"{seconds:g}",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                           *filter(None, [os.environ.get("PYTHONPATH")])]))
    cmd = [sys.executable, "-m", "liushou_geo.upload", str(candidate), str(files), str(report_path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, cwd=str(candidate.parent), start_new_session=True)
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(seconds, stop)
    watchdog.daemon = True
    watchdog.start()
    tail: collections.deque[str] = collections.deque(maxlen=40)
    try:
        try:
            proc.stdin.write(pickle.dumps(settings))
            proc.stdin.close()
        except BrokenPipeError:
            pass                   # the child died at once; its exit status says how
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith(_PROGRESS):
                if progress is not None:
                    try:
                        d, t, label = json.loads(line[len(_PROGRESS):])
                        progress(d, t, label)
                    except (ValueError, TypeError):
                        pass
            else:
                tail.append(line)
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:     # the page went away (rerun, stop): do not leave the child running
            proc.kill()
            proc.wait()
        proc.stderr.close()
    rc = proc.returncode
    if rc == 0 and report_path.exists():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        report_path.unlink()
        return report
    details = "\n".join(tail)
    log.warning("upload check failed: exit status %s%s\n%s", rc, " (time limit)" if timed_out.is_set() else "",
                details)
    if timed_out.is_set() or rc == -signal.SIGXCPU:
        raise UploadError(TIMED_OUT.format(s=f"{seconds:g}"))
    if rc == _MEMORY_EXIT or "MemoryError" in details or "Out of Memory" in details:
        raise UploadError(OUT_OF_MEMORY.format(gb=round(memory_mb / 1024, 1)))
    if rc < 0:
        raise UploadError(CRASHED)
    raise UploadError(FAILED)


def shrinking(report: dict) -> list[dict]:
    """Extracts the check would replace by fewer than half their rows: confirmed explicitly."""
    return list(report.get("shrinking_replacements") or [])


def replaced_text(file_report: dict) -> str:
    """What a file replaced, for the page: "张庄村 2026-06-30：17 → 1 行"."""
    return "；".join(f"{r['unit']} {r['as_of']}：{r['rows_before']} → {r['rows_after']} 行"
                    for r in file_report.get("replaced") or [])


def commit(candidate: Candidate, db_path: Path, record=None) -> None:
    """Put the checked store in place of the live one, in one rename.

    Refused (``UploadError``) when the live store changed since the check: the
    candidate was built on the old one and would drop what came in between.
    ``record()`` (the audit entry) runs after that test and before the rename,
    so no import is ever in force without its record; if it fails, nothing changes.
    """
    db_path = Path(db_path)
    try:
        with store.writer_lock(db_path, wait=LOCK_WAIT_SECONDS):
            if not candidate.db.exists():
                raise UploadError(EXPIRED)
            if store.fingerprint(db_path) != candidate.base:
                raise UploadError(STORE_CHANGED)
            if record is not None:
                record()
            store.swap_in(candidate.db, db_path)
    except store.StoreBusy as e:
        raise UploadError(str(e)) from None
    finally:
        discard(candidate)


def discard(candidate: Candidate) -> None:
    shutil.rmtree(candidate.files.parent, ignore_errors=True)


# -- the child process ------------------------------------------------------------


def _child(argv: list[str]) -> int:
    """Ingest the uploads into the candidate store; run as ``python -m liushou_geo.upload``."""
    import resource

    os.umask(0o077)                       # whatever DuckDB creates is private too
    # RLIMIT_DATA bounds the memory the process can write to (heap and anonymous
    # mappings: where a parser's runaway allocation goes). Not RLIMIT_AS: threads'
    # and allocators' reservations made a 450 MB ingest span 2.8-3.7 GB of
    # address space on 2 cores (measured), and more with more cores.
    memory = int(_limit("LIUSHOU_UPLOAD_MEMORY_MB", MEMORY_LIMIT_MB) * 1024 * 1024)
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    # CPU seconds of all threads: a bound for a child whose server died (the server times the wall clock).
    cpu = int(_limit("LIUSHOU_UPLOAD_TIME_LIMIT", TIME_LIMIT_SECONDS) * (os.cpu_count() or 1)) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    if os.environ.get(TEST_ABORT_ENV):
        os.abort()
    candidate, files, report_path = (Path(a) for a in argv)
    settings = pickle.loads(sys.stdin.buffer.read())       # written by the server, not by a user

    from .ingest import ingest

    def progress(done: int, total: int, label: str) -> None:
        print(_PROGRESS + json.dumps([done, total, str(label)], ensure_ascii=False), file=sys.stderr, flush=True)

    try:
        con = store.connect(candidate)
        try:
            report = ingest(con, [files], settings, progress=progress, atomic=False)   # a candidate copy
            con.execute("CHECKPOINT")      # the whole store in one file, ready for the rename
        finally:
            con.close()
        write_private(report_path, json.dumps(report, ensure_ascii=False, default=str).encode("utf-8"))
    except MemoryError:
        print("MemoryError", file=sys.stderr, flush=True)
        os._exit(_MEMORY_EXIT)
    except Exception as e:               # DuckDB's own out-of-memory error is not a MemoryError
        if "Out of Memory" not in str(e):
            raise
        print(f"MemoryError: {e}", file=sys.stderr, flush=True)
        os._exit(_MEMORY_EXIT)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
    sys.exit(_child(sys.argv[1:]))
