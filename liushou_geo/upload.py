"""Files uploaded in the app: checked against a copy of the store first, then
swapped in whole when the administrator confirms.

The dashboard holds the store open read-only, so the ingest runs on a copy
next to it; confirming replaces the store file in one rename (``os.replace``,
atomic on one filesystem). Open connections keep reading the old file until
the app reconnects, which it does when the file's modification time changes.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from .ingest import ingest
from .settings import Settings
from .store import connect

ALLOWED_SUFFIXES = {".xlsx", ".xls", ".xlsm", ".csv", ".txt", ".gpkg", ".geojson", ".json",
                    ".shp", ".shx", ".dbf", ".prj", ".cpg"}


@dataclass
class Candidate:
    """A store with the uploaded files ingested, waiting to be confirmed."""

    db: Path
    files: Path
    report: dict


def safe_name(name: str) -> str:
    """The file's own name only (no folders), refused if its type is not one we read."""
    base = Path(name.replace("\\", "/")).name
    if not base or base.startswith(".") or Path(base).suffix.lower() not in ALLOWED_SUFFIXES:
        raise ValueError(f"不接受的文件：{name}（只接受 .xlsx、.xls、.csv 台帐和边界文件）")
    return base


def check(db_path: Path, uploads: list[tuple[str, bytes]], settings: Settings, progress=None) -> Candidate:
    """Ingest the uploads into a copy of the store and return it with the report."""
    db_path = Path(db_path)
    token = secrets.token_hex(6)
    work = db_path.parent / f".upload-{token}"
    files = work / "files"
    files.mkdir(parents=True)
    for name, data in uploads:
        (files / safe_name(name)).write_bytes(data)
    candidate = work / db_path.name
    if db_path.exists():
        shutil.copy2(db_path, candidate)
    con = connect(candidate)
    try:
        report = ingest(con, [files], settings, progress=progress)
    finally:
        con.close()
    return Candidate(db=candidate, files=files, report=report)


def commit(candidate: Candidate, db_path: Path) -> None:
    """Put the checked store in place of the live one, in one rename."""
    os.replace(candidate.db, db_path)
    discard(candidate)


def discard(candidate: Candidate) -> None:
    shutil.rmtree(candidate.files.parent, ignore_errors=True)
