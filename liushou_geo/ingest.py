"""Loading a folder of handed-over files into the store.

Every data row read is either loaded or set aside with its reason; the report
reconciles ``rows_read = rows_loaded + rows_set_aside`` per file and in total.
The whole run is one transaction: a failure half-way leaves the store as it
was. Re-ingesting a file with the same bytes changes nothing; a new version
of a file (same name, same kind) replaces the old one's rows.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl

from . import facility_rows, registry_bulk
from .boundaries import BOUNDARY_SUFFIXES, BoundaryError, build_units, read_villages
from .cleaning import CellError, parse_date
from .gazetteer import Gazetteer
from .headers import KIND_LABELS, missing_required
from .privacy import IdHasher
from .readers import (BULK_MIN_BYTES, CSV_SUFFIXES, SPREADSHEET_SUFFIXES, FrameTable, ReadError, Table,
                      peek_csv_kind, read_csv_frame, read_tables)
from .registry_rows import RowContext, RowProblem, check_row, file_as_of, source_kind
from .settings import Settings
from .store import run
from .targets import store_village_targets

log = logging.getLogger(__name__)

TABLE_OF_KIND = {
    "registry": "registry_rows", "rooms": "rooms", "terminals": "terminals",
    "attendance": "attendance", "contacts": "contacts", "legal_cases": "legal_cases",
}
# Boundaries first (everything else resolves villages against them), then facilities.
FLUSH_ROWS = 200_000
INGEST_MEMORY_LIMIT = "1.5GB"   # DuckDB's buffers during an ingest
KIND_ORDER = ["boundaries", "rooms", "terminals", "registry", "attendance", "contacts", "legal_cases"]


@dataclass
class LazyCsv:
    """A large CSV file, only its kind known: read when its turn comes, so that
    one big file at a time is in memory, not all of them."""

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
    reasons: Counter = field(default_factory=Counter)
    message: str | None = None

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("path", "kind", "status", "rows_read", "rows_loaded", "rows_set_aside")}
        d["set_aside_by_reason"] = dict(sorted(self.reasons.items()))
        if self.message:
            d["message"] = self.message
        return d


def discover(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(file, root) for every candidate file under the given files and folders."""
    wanted = BOUNDARY_SUFFIXES | SPREADSHEET_SUFFIXES | CSV_SUFFIXES
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
    # Side files of a shapefile and the generator's own manifest are not inputs.
    return [(f, r) for f, r in found if f.name not in ("manifest.json", "defects.csv")]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_boundary(path: Path) -> bool:
    s = path.suffix.lower()
    if s in (".gpkg", ".shp", ".geojson"):
        return True
    if s == ".json":
        head = path.read_bytes()[:2000]
        return b'"FeatureCollection"' in head or b'"Feature"' in head
    return False


class Ingest:
    """One ingest run over a set of files, inside one transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: Settings, today: dt.date | None = None,
                 code_column: str | None = None, name_column: str | None = None, progress=None):
        self.con = con
        # progress(done, total, label): called as files are read and checked (a bar in the
        # terminal, st.progress in the app); a no-op by default.
        self.progress = progress or (lambda done, total, label: None)
        self.settings = settings
        self.today = today or dt.date.today()
        self.code_column, self.name_column = code_column, name_column
        self.hasher = IdHasher()
        self.reports: list[FileReport] = []
        # Rows are buffered per table and written in large batches: one
        # insert per file costs more than checking the file's rows. Each
        # table's buffer is a list of chunks: a list of record dicts (row
        # path) or a polars frame (column-wise path, registry_bulk).
        self._pending: dict[str, list] = {}
        self._pending_count = 0
        self._run_files: set[str] = set()

    def run(self, paths: list[Path]) -> dict:
        files = discover(paths)
        boundary_files = [(f, r) for f, r in files if _is_boundary(f)]
        table_files = [(f, r) for f, r in files if f.suffix.lower() in SPREADSHEET_SUFFIXES | CSV_SUFFIXES]
        # DuckDB may hold up to 80 % of the machine's memory in its buffers; with a
        # province's rows also in polars frames that broke the 4 GB budget (issue #9).
        # It spills to disk beyond this limit instead.
        limit = self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        self.con.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
        try:
            return self._run(paths, boundary_files, table_files)
        finally:
            self.con.execute(f"SET memory_limit = '{limit}'")

    def _run(self, paths, boundary_files, table_files) -> dict:
        self.con.execute("BEGIN TRANSACTION")
        try:
            for f, root in boundary_files:
                self._ingest_boundaries(f, root)
            gazetteer = Gazetteer(self.con)
            tables = []
            total = len(table_files) * 2       # read, then check
            for i, (f, root) in enumerate(table_files):
                self.progress(i, total, f.name)
                tables.extend(self._read(f, root))
            tables.sort(key=lambda t: KIND_ORDER.index(t[1].kind))
            locate = facility_rows.point_locator(self.con)
            for j, (rel, table, file_id) in enumerate(tables):
                self.progress(len(table_files) + j * len(table_files) // max(len(tables), 1), total, rel)
                if not gazetteer and table.kind in ("registry", "rooms", "terminals"):
                    self._fail(rel, table.kind, "数据库中还没有村（社区）边界。请先导入边界文件（可与台帐放在同一文件夹一起导入）")
                    continue
                if isinstance(table, LazyCsv):
                    for t in self._materialise(rel, table):
                        self._ingest_table(rel, t, file_id, gazetteer, locate)
                    continue
                self._ingest_table(rel, table, file_id, gazetteer, locate)
            self._flush()
            run(self.con, "build_children")
            # The kept target counts no longer match the data: forget them in
            # this transaction, so a failure below can never leave stale ones.
            self.con.execute("DELETE FROM village_target_meta")
            self.progress(total, total, "")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        # Then keep the counts every page needs (seconds at province scale), once
        # the rows of this run are freed; if this fails, pages compute them.
        self._pending = {}
        gc.collect()
        store_village_targets(self.con, self.settings)
        return self.summary()

    # -- files ---------------------------------------------------------------

    def _rel(self, f: Path, root: Path) -> str:
        try:
            return f.relative_to(root).as_posix()
        except ValueError:
            return f.name

    def _already(self, file_id: str) -> bool:
        return bool(self.con.execute("SELECT 1 FROM ingested_files WHERE file_id = ?", [file_id]).fetchone())

    def _fail(self, rel: str, kind: str | None, message: str, status: str = "error") -> None:
        log.error("%s: %s", rel, message)
        self.reports.append(FileReport(path=rel, kind=kind, status=status, message=message))

    def _read(self, f: Path, root: Path) -> list[tuple[str, Table, str]]:
        rel = self._rel(f, root)
        file_id = _sha256(f)
        if self._already(file_id):
            self.reports.append(FileReport(path=rel, kind=None, status="unchanged"))
            return []
        if f.suffix.lower() in CSV_SUFFIXES and f.stat().st_size >= BULK_MIN_BYTES:
            kind = peek_csv_kind(f)
            if kind:
                return [(rel, LazyCsv(f, kind), file_id)]
        try:
            tables = read_tables(f)
        except ReadError as e:
            self._fail(rel, None, e.args[0])
            return []
        if not tables:
            self._fail(rel, None, "找不到可识别的表头（如“姓名”“身份证号”）。请确认表头在前几行、列名与模板一致", "unrecognised")
            return []
        log.info("read %s (%s, %d rows)", rel, tables[0].kind, sum(len(t.rows) for t in tables))
        return [(rel, t, file_id) for t in tables]

    def _materialise(self, rel: str, lazy: LazyCsv) -> list:
        """A large CSV's tables: one frame for the column-wise checks when it is
        big enough and of a kind they cover, else the ordinary rows."""
        if lazy.kind in registry_bulk.BULK_KINDS:
            try:
                frame = read_csv_frame(lazy.path)
            except ReadError as e:
                self._fail(rel, None, e.args[0])
                return []
            if frame is not None and frame.kind == lazy.kind and frame.n_rows >= registry_bulk.BULK_MIN_ROWS:
                log.info("read %s (%s, %d rows, column-wise)", rel, frame.kind, frame.n_rows)
                return [frame]
        try:
            tables = read_tables(lazy.path)
        except ReadError as e:
            self._fail(rel, None, e.args[0])
            return []
        if not tables:
            self._fail(rel, None, "找不到可识别的表头（如“姓名”“身份证号”）。请确认表头在前几行、列名与模板一致", "unrecognised")
        return tables

    def _replace_previous(self, rel: str, kind: str, file_id: str) -> None:
        """A new version of a file (same path, same kind) replaces the old version's rows."""
        old = [r[0] for r in self.con.execute(
            "SELECT file_id FROM ingested_files WHERE path = ? AND kind = ? AND file_id <> ?",
            [rel, kind, file_id]).fetchall()]
        for fid in old:
            if kind in TABLE_OF_KIND:
                self.con.execute(f"DELETE FROM {TABLE_OF_KIND[kind]} WHERE file_id = ?", [fid])  # allow-listed name
            self.con.execute("DELETE FROM set_aside WHERE file_id = ?", [fid])
            self.con.execute("DELETE FROM ingested_files WHERE file_id = ?", [fid])

    def _record_file(self, file_id: str, rel: str, rep: FileReport) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?)",
            [file_id, rel, rep.kind, rep.rows_read, rep.rows_loaded, rep.rows_set_aside, dt.datetime.now()])

    # -- boundaries ----------------------------------------------------------

    def _ingest_boundaries(self, f: Path, root: Path) -> None:
        rel = self._rel(f, root)
        file_id = _sha256(f)
        if self._already(file_id):
            self.reports.append(FileReport(path=rel, kind="boundaries", status="unchanged"))
            return
        try:
            villages, set_aside = read_villages(f, self.code_column, self.name_column)
        except BoundaryError as e:
            self._fail(rel, "boundaries", e.args[0])
            return
        units = build_units(villages, self.settings.city_name)
        # Boundaries are the reference for every code: a new file replaces them all.
        self.con.execute("DELETE FROM units")
        old = self.con.execute("SELECT file_id FROM ingested_files WHERE kind = 'boundaries'").fetchall()
        for (fid,) in old:
            self.con.execute("DELETE FROM set_aside WHERE file_id = ?", [fid])
            self.con.execute("DELETE FROM ingested_files WHERE file_id = ?", [fid])
        frame = pd.DataFrame({
            "level": units["level"], "code": units["code"], "name": units["name"],
            "parent_code": units["parent_code"], "kind": units["kind"], "lon": units["lon"], "lat": units["lat"],
            "area_km2": units["area_km2"], "wkb": units.geometry.to_wkb(), "geom_web": units["geom_web"],
        })
        self.con.register("new_units", frame)
        self.con.execute("""INSERT INTO units SELECT level, code, name, parent_code, kind, lon, lat, area_km2,
                            ST_GeomFromWKB(wkb), geom_web FROM new_units""")
        self.con.unregister("new_units")
        rep = FileReport(path=rel, kind="boundaries", rows_read=len(villages) + len(set_aside),
                         rows_loaded=len(villages), rows_set_aside=len(set_aside))
        for s in set_aside:
            rep.reasons[s["reason"]] += 1
            self.con.execute("INSERT INTO set_aside VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [file_id, rel, None, s["row_no"], s["column_name"], s["reason"], s["message"]])
        self._record_file(file_id, rel, rep)
        self.reports.append(rep)
        log.info("boundaries %s: %d villages", rel, len(villages))

    # -- tables --------------------------------------------------------------

    def _ingest_table(self, rel: str, table: Table, file_id: str, gazetteer: Gazetteer, locate) -> None:
        kind = table.kind
        rep = FileReport(path=rel, kind=kind)
        missing = missing_required(kind, table.columns)
        sheet_note = f"（工作表“{table.sheet}”）" if table.sheet else ""
        records, set_aside = [], []

        def aside(row_no, column, reason, message):
            set_aside.append((file_id, rel, table.sheet, row_no, column, reason, message))
            rep.reasons[reason] += 1

        is_frame = isinstance(table, FrameTable)
        n_rows = table.n_rows if is_frame else len(table.rows)
        if missing:
            labels = "、".join(missing)
            rep.message = f"{KIND_LABELS[kind]}{sheet_note}缺少必填列：{labels}。请按模板补上该列后重新提交"
            row_nos = table.frame["row_no"].to_list() if is_frame else [r for r, _ in table.rows]
            for row_no in row_nos:
                aside(row_no, labels, "missing_column", rep.message)
        elif is_frame:
            # Large tables: the same checks column-wise (registry_bulk), same outcome.
            if kind == "registry":
                res = registry_bulk.registry(table, self._registry_context(table, rel, gazetteer), file_id, rel)
            else:
                res = registry_bulk.attendance(table, self.hasher, file_id, rel)
            extra = [pl.lit(file_id).alias("file_id")]
            if kind == "registry":
                extra.append(pl.lit(table.sheet, dtype=pl.String).alias("sheet"))
            records = res.records.with_columns(extra)
            set_aside.extend(res.set_aside)
            rep.reasons.update(res.reasons)
        else:
            check = self._row_checker(kind, table, rel, gazetteer, locate)
            seen_rows: dict[tuple, int] = {}
            seq = table.columns.get("seq")
            for row_no, cells in table.rows:
                signature = tuple("" if c is None else str(c).strip() for i, c in enumerate(cells) if i != seq)
                if signature in seen_rows:
                    aside(row_no, None, "duplicate_row",
                          f"与第{seen_rows[signature]}行完全相同（重复录入），只计一次。请删除重复行")
                    continue
                seen_rows[signature] = row_no
                try:
                    rec = check(cells)
                except RowProblem as p:
                    aside(row_no, p.column, p.reason, p.message)
                    continue
                rec["file_id"], rec["row_no"] = file_id, row_no
                if kind == "registry":
                    rec["sheet"] = table.sheet
                records.append(rec)
        rep.rows_read = n_rows
        rep.rows_loaded = len(records)
        rep.rows_set_aside = len(set_aside)
        self._replace_previous(rel, kind, file_id)
        self._run_files.add(file_id)
        chunks = self._pending.setdefault(TABLE_OF_KIND[kind], [])
        if isinstance(records, pl.DataFrame):
            chunks.append(records)
        elif records:
            if not chunks or not isinstance(chunks[-1], list):
                chunks.append([])
            chunks[-1].extend(records)
        self._pending_count += len(records)
        if self._pending_count >= FLUSH_ROWS:
            self._flush()
        if set_aside:
            self.con.executemany("INSERT INTO set_aside VALUES (?, ?, ?, ?, ?, ?, ?)", set_aside)
        self._merge_report(file_id, rel, rep)

    def _merge_report(self, file_id: str, rel: str, rep: FileReport) -> None:
        """Several sheets of one file add up into one file report."""
        for prev in self.reports:
            if prev.path == rel and prev.kind == rep.kind and prev.status == "loaded":
                prev.rows_read += rep.rows_read
                prev.rows_loaded += rep.rows_loaded
                prev.rows_set_aside += rep.rows_set_aside
                prev.reasons.update(rep.reasons)
                self._record_file(file_id, rel, prev)
                return
        self.reports.append(rep)
        self._record_file(file_id, rel, rep)

    def _registry_context(self, table: Table, rel: str, gazetteer: Gazetteer) -> RowContext:
        stem = re.sub(r"留守儿童.*$", "", Path(rel).stem) or Path(rel).stem
        if isinstance(table, FrameTable):
            as_of = registry_bulk.file_as_of(table)
        else:
            as_of = file_as_of(table.rows, table.columns)
        if as_of is None and table.as_of_hint:
            try:
                as_of = parse_date(table.as_of_hint)
            except CellError:
                as_of = None
        return RowContext(self.settings, gazetteer, self.hasher, as_of, stem, self.today)

    def _row_checker(self, kind: str, table: Table, rel: str, gazetteer: Gazetteer, locate):
        cols = table.columns
        if kind == "registry":
            ctx = self._registry_context(table, rel, gazetteer)
            return lambda cells: check_row(cells, cols, ctx)
        if kind == "rooms":
            return lambda cells: facility_rows.room(cells, cols, gazetteer, locate)
        if kind == "terminals":
            return lambda cells: facility_rows.terminal(cells, cols, gazetteer, locate)
        if kind == "attendance":
            return lambda cells: facility_rows.attendance(cells, cols, self.hasher)
        if kind == "contacts":
            return lambda cells: facility_rows.contact(cells, cols, self.hasher)
        return lambda cells: facility_rows.legal_case(cells, cols, self.hasher)

    def _flush(self) -> None:
        """Write the buffered rows, the registry's superseded extracts removed first."""
        registry = self._pending.get("registry_rows")
        if registry:
            self._replace_same_extract(registry)
        for table_name, chunks in self._pending.items():
            for chunk in chunks:
                self._insert(table_name, chunk)
        self._pending, self._pending_count = {}, 0

    def _replace_same_extract(self, chunks: list) -> None:
        """A unit's new extract replaces its previous extract with the same as-of date.

        Committee names repeat across a city (two 城西社区 in one county), so a
        unit is its name plus where it is: the township of its children's
        village for a committee, the county for a school. Rows from this
        run's own files are never removed.
        """
        key_cols = {"file_id": pl.String, "reporting_unit": pl.String, "village_code": pl.String, "as_of": pl.Date}
        parts = []
        for ch in chunks:
            if isinstance(ch, pl.DataFrame):
                parts.append(ch.select(list(key_cols)))
            else:
                parts.append(pl.DataFrame({k: [r[k] for r in ch] for k in key_cols}, schema=key_cols))
        keys = pl.concat(parts).with_row_index("i")
        # A unit's place: its most common village (ties: the first seen, as Counter.most_common).
        top = (keys.group_by("file_id", "reporting_unit", "village_code")
               .agg(n=pl.len(), i=pl.col("i").min())
               .sort(["n", "i"], descending=[True, False])
               .unique(["file_id", "reporting_unit"], keep="first", maintain_order=True))
        kinds = {u: source_kind(u) for u in top["reporting_unit"].unique().to_list()}
        scope = top.select("file_id", "reporting_unit", unit_scope=pl.when(
            pl.col("reporting_unit").replace_strict(kinds, return_dtype=pl.String) == "village")
            .then(pl.col("village_code").str.slice(0, 9)).otherwise(pl.col("village_code").str.slice(0, 6)))
        lookup = {(f, u): sc for f, u, sc in scope.iter_rows()}
        for n, ch in enumerate(chunks):
            if isinstance(ch, pl.DataFrame):
                chunks[n] = ch.join(scope, on=["file_id", "reporting_unit"], how="left", maintain_order="left")
            else:
                for r in ch:
                    r["unit_scope"] = lookup[r["file_id"], r["reporting_unit"]]
        extracts = (keys.join(scope, on=["file_id", "reporting_unit"], how="left")
                    .select("reporting_unit", "unit_scope", "as_of").unique()
                    .sort("reporting_unit", "unit_scope", "as_of").to_arrow())
        this_run = pd.DataFrame({"file_id": sorted(self._run_files)})
        self.con.register("new_extracts", extracts)
        self.con.register("this_run", this_run)
        self.con.execute("""DELETE FROM registry_rows r USING new_extracts n
                            WHERE r.reporting_unit = n.reporting_unit AND r.unit_scope = n.unit_scope
                              AND r.as_of = n.as_of::DATE
                              AND r.file_id NOT IN (SELECT file_id FROM this_run)""")
        self.con.unregister("new_extracts")
        self.con.unregister("this_run")

    def _insert(self, table_name: str, records) -> None:
        if not len(records):
            return
        cols = [r[0] for r in self.con.execute(f"DESCRIBE {table_name}").fetchall()]  # allow-listed name
        if isinstance(records, pl.DataFrame):
            frame = records.select(cols).to_arrow()
        else:
            frame = pd.DataFrame.from_records(records, columns=cols)
        self.con.register("new_rows", frame)
        self.con.execute(f"INSERT INTO {table_name} SELECT * FROM new_rows")  # allow-listed name
        self.con.unregister("new_rows")

    # -- report --------------------------------------------------------------

    def summary(self) -> dict:
        total = Counter()
        reasons = Counter()
        for r in self.reports:
            total["rows_read"] += r.rows_read
            total["rows_loaded"] += r.rows_loaded
            total["rows_set_aside"] += r.rows_set_aside
            reasons.update(r.reasons)
        children = self.con.execute("SELECT count(*) FROM children").fetchone()[0]
        return {
            "rows_read": total["rows_read"],
            "rows_loaded": total["rows_loaded"],
            "rows_set_aside": total["rows_set_aside"],
            "set_aside_by_reason": dict(sorted(reasons.items())),
            "files_total": len(self.reports),
            "files_with_errors": sum(r.status in ("error", "unrecognised") for r in self.reports),
            "files_unchanged": sum(r.status == "unchanged" for r in self.reports),
            "children": children,
            "files": [r.as_dict() for r in self.reports],
        }


def ingest(con: duckdb.DuckDBPyConnection, paths: list[Path], settings: Settings, **kw) -> dict:
    """Ingest files and folders into an open store; returns the report."""
    return Ingest(con, settings, **kw).run([Path(p) for p in paths])
