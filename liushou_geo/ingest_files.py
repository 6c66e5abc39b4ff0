"""The ingest's files: which files a run takes, their identity (content hash),
and the per-file report (loaded, set aside, duplicates, sheets)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .boundaries import BOUNDARY_SUFFIXES

TABLE_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".csv", ".txt", ".tsv"}


@dataclass
class LazyTable:
    """A large text table, only its kind known: read when its turn comes."""

    path: Path
    kind: str
    sheet: str | None = None


@dataclass
class FileReport:
    path: str
    kind: str | None
    status: str = "loaded"         # loaded | unchanged | error | unrecognised
    rows_read: int = 0
    rows_loaded: int = 0
    rows_set_aside: int = 0
    rows_duplicate: int = 0
    reasons: Counter = field(default_factory=Counter)
    message: str | None = None
    sheets: list = field(default_factory=list)          # sheets read as tables
    skipped_sheets: list = field(default_factory=list)  # [{"sheet", "reason"}]
    # Earlier extracts this file replaced: {"unit", "as_of", "rows_before", "rows_after"}
    replaced: list = field(default_factory=list)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("path", "kind", "status", "rows_read", "rows_loaded", "rows_set_aside",
                                           "rows_duplicate")}
        d["set_aside_by_reason"] = dict(sorted(self.reasons.items()))
        if self.message:
            d["message"] = self.message
        if self.sheets and self.sheets != [None]:
            d["sheets"] = self.sheets
        if self.skipped_sheets:
            d["skipped_sheets"] = self.skipped_sheets
        if self.replaced:
            d["replaced"] = self.replaced
        return d


def discover(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(file, root) for every candidate file under the given files and folders."""
    wanted = BOUNDARY_SUFFIXES | TABLE_SUFFIXES
    found = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in wanted and not f.name.startswith(("~$", ".")):
                    found.append((f, p))
        elif p.is_file():
            found.append((p, p.parent))
        else:
            raise FileNotFoundError(f"找不到文件或文件夹：{p}")
    # The generator's own manifest and ground truth are not inputs.
    return [(f, r) for f, r in found if f.name not in ("manifest.json", "defects.csv")]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_boundary(path: Path) -> bool:
    s = path.suffix.lower()
    if s in (".gpkg", ".shp", ".geojson"):
        return True
    if s == ".json":
        head = path.read_bytes()[:2000]
        return b'"FeatureCollection"' in head or b'"Feature"' in head
    return False
