"""Loading a folder of handed-over files into the store.

Every data row read is loaded, set aside with its reason, or — an exact copy
of a row above it in the same sheet — counted once and reported apart as a
duplicate: ``rows_read = rows_loaded + rows_set_aside + rows_duplicate`` per
file and in total. The whole run is one transaction (a failure half-way
leaves the store as it was), unless the caller works on a copy it swaps in
only on success (``atomic=False``: the CLI and the upload check). Re-ingesting a file with the same bytes changes
nothing; a new version of a file (same name, same kind) replaces the old
one's rows. A file that cannot be used is an error in the report; the other
files still load.

Order: boundary layers and division code tables first (they make the units
every row is placed in), then the registry, then facilities (a school's
terminals are placed where its pupils live) and services.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl

from . import facility_rules, registry_rules
from .boundaries import BoundaryError, read_boundary_layers
from .cleaning import CellError, parse_date
from .gazetteer import Gazetteer
from .headers import KIND_LABELS, missing_required
from .ingest_files import TABLE_SUFFIXES, FileReport, LazyTable, discover, is_boundary, sha256
from .ingest_units import apply_registry_names, rebuild_units, registry_names, store_code_table, store_layer
from .privacy import IdHasher
from .readers import ReadError, Table, peek_kind, read_file
from .rules import duplicate_of
from .settings import Settings
from .store import run
from .targets import store_village_targets

log = logging.getLogger(__name__)

TABLE_OF_KIND = {
    "registry": "registry_rows", "rooms": "rooms", "terminals": "terminals",
    "attendance": "attendance", "contacts": "contacts", "legal_cases": "legal_cases",
}
LAZY_MIN_BYTES = 2_000_000      # text tables this big are read when their turn comes, one at a time
FLUSH_ROWS = 200_000
SLICE_ROWS = 500_000            # facility and service tables bigger than this are checked in slices
INGEST_MEMORY_LIMIT = "1.5GB"   # DuckDB's buffers during an ingest
KIND_ORDER = ["division_codes", "registry", "rooms", "terminals", "attendance", "contacts", "legal_cases"]
_NO_HEADER = "找不到可识别的表头（如“姓名”“身份证号”）。请确认表头在前几行、列名与模板一致"


class Ingest:
    """One ingest run over a set of files, inside one transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: Settings, today: dt.date | None = None,
                 code_column: str | None = None, name_column: str | None = None, progress=None,
                 atomic: bool = True):
        self.con = con
        # atomic=False: the caller ingests into a private copy it swaps in only on
        # success (the CLI, an upload's check), so the run may commit as it goes —
        # DuckDB holds a transaction's new rows in memory (a province: +1.8 GB).
        self.atomic = atomic
        # progress(done, total, label): called as files are read and checked (a bar in the
        # terminal, st.progress in the app); a no-op by default.
        self.progress = progress or (lambda done, total, label: None)
        self.settings = settings
        self.today = today or dt.date.today()
        self.code_column, self.name_column = code_column, name_column
        self.hasher = IdHasher()
        self.reports: list[FileReport] = []
        # Rows are buffered per table (polars frames) and written in large batches.
        self._pending: dict[str, list[pl.DataFrame]] = {}
        self._pending_count = 0
        self._run_files: set[str] = set()
        self._failed_boundaries: list[str] = []
        self._multi_sheet: dict[str, bool] = {}       # files with a registry sheet per village
        self._skipped: dict[str, list] = {}           # sheets of a file read as no table, with why
        self._path_of: dict[str, str] = {}            # file_id -> path, for the reports
        self._loaded: dict[str, FileReport] = {}      # path -> its report, sheets adding up

    def run(self, paths: list[Path]) -> dict:
        files = discover(paths)
        boundary_files = [(f, r) for f, r in files if is_boundary(f)]
        table_files = [(f, r) for f, r in files if f.suffix.lower() in TABLE_SUFFIXES]
        # DuckDB may hold up to 80 % of the machine's memory in its buffers; it
        # spills to disk beyond this limit instead (the province's 4 GB budget).
        limit = self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        self.con.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
        try:
            return self._run(boundary_files, table_files)
        finally:
            self.con.execute(f"SET memory_limit = '{limit}'")

    def _run(self, boundary_files, table_files) -> dict:
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._load_known_files()
            units_changed = False
            for f, root in boundary_files:
                units_changed |= self._ingest_boundaries(f, root)
            tables = []
            total = len(table_files) * 2       # read, then check
            for i, (f, root) in enumerate(table_files):
                self.progress(i, total, f.name)
                tables.extend(self._read(f, root))
            tables.sort(key=lambda t: KIND_ORDER.index(t[1].kind))
            for rel, table, file_id in [t for t in tables if t[1].kind == "division_codes"]:
                self._ingest_code_table(rel, table, file_id)
                units_changed = True
            if units_changed:
                rebuild_units(self.con, self.settings.city_name)
            apply_registry_names(self.con, registry_names(
                self.con, [t for _, t, _ in tables if t.kind == "registry" and isinstance(t, Table)]))
            gazetteer = Gazetteer(self.con)
            locate = facility_rules.point_locator(self.con)
            schools_known = False
            # The registry's tables from small files are checked together, as one
            # frame: the rules cost the same for 1 table or 1,000 (no per-table overhead).
            batch = [t for t in tables if t[1].kind == "registry" and isinstance(t[1], Table)]
            if gazetteer and batch:
                self.progress(len(table_files), total, "台帐")
                self._ingest_registry(batch, gazetteer)
            for j, (rel, table, file_id) in enumerate(tables):
                self.progress(len(table_files) + j * len(table_files) // max(len(tables), 1), total, rel)
                if table.kind == "division_codes" or (gazetteer and table.kind == "registry"
                                                      and isinstance(table, Table)):
                    continue
                if not gazetteer and table.kind in ("registry", "rooms", "terminals"):
                    self._fail(rel, table.kind, self._no_units_message())
                    continue
                if table.kind in ("rooms", "terminals") and not schools_known:
                    self._flush()
                    gazetteer.add_schools(self.con.execute(
                        "SELECT school, village_code, count(*) FROM registry_rows WHERE school IS NOT NULL "
                        "GROUP BY ALL").fetchall())
                    schools_known = True
                if isinstance(table, LazyTable):
                    read = self._materialise(rel, table)
                    if table.kind == "registry":
                        self._ingest_registry([(rel, t, file_id) for t in read], gazetteer)
                    else:
                        for t in read:
                            self._ingest_table(rel, t, file_id, gazetteer, locate)
                    continue
                self._ingest_table(rel, table, file_id, gazetteer, locate)
            self._flush()
            self._write_file_records()
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

    def _no_units_message(self) -> str:
        if self._failed_boundaries:
            names = "、".join(self._failed_boundaries)
            return (f"边界文件 {names} 未能导入（原因见该文件的报告），因此无法确定村（社区）。"
                    "请改正边界文件后与本表一起重新导入")
        return "数据库中还没有村（社区）边界。请先导入边界文件（可与台帐放在同一文件夹一起导入）"

    # -- files ---------------------------------------------------------------

    def _rel(self, f: Path, root: Path) -> str:
        try:
            return f.relative_to(root).as_posix()
        except ValueError:
            return f.name

    def _load_known_files(self) -> None:
        """The files already in the store, looked up in memory (a query per file adds up)."""
        self._known: dict[tuple[str, str], set[str]] = {}
        self._known_ids: set[str] = set()
        for fid, path, kind in self.con.execute("SELECT file_id, path, kind FROM ingested_files").fetchall():
            self._known.setdefault((path, kind), set()).add(fid)
            self._known_ids.add(fid)
        self._file_records: dict[str, tuple] = {}

    def _already(self, file_id: str) -> bool:
        return file_id in self._known_ids

    def _fail(self, rel: str, kind: str | None, message: str, status: str = "error", skipped=()) -> None:
        log.error("%s: %s", rel, message)
        self.reports.append(FileReport(path=rel, kind=kind, status=status, message=message,
                                       skipped_sheets=[{"sheet": s.sheet, "reason": s.reason} for s in skipped]))

    def _read(self, f: Path, root: Path) -> list[tuple[str, Table | LazyTable, str]]:
        rel = self._rel(f, root)
        file_id = sha256(f)
        if self._already(file_id):
            self.reports.append(FileReport(path=rel, kind=None, status="unchanged"))
            return []
        if f.suffix.lower() in (".csv", ".txt", ".tsv") and f.stat().st_size >= LAZY_MIN_BYTES:
            kind = peek_kind(f)
            if kind:
                return [(rel, LazyTable(f, kind), file_id)]
        tables = self._read_file(rel, f)
        if len([t for t in tables if t.kind == "registry"]) > 1:
            self._multi_sheet[rel] = True
        return [(rel, t, file_id) for t in tables]

    def _read_file(self, rel: str, path: Path) -> list[Table]:
        try:
            result = read_file(path)
        except ReadError as e:
            self._fail(rel, None, e.args[0])
            return []
        if not result.tables:
            reasons = "；".join(f"{s.sheet or ''}{'：' if s.sheet else ''}{s.reason}" for s in result.skipped)
            self._fail(rel, None, _NO_HEADER + (f"（{reasons}）" if reasons else ""), "unrecognised", result.skipped)
            return []
        if result.skipped:
            self._skipped[rel] = [{"sheet": s.sheet, "reason": s.reason} for s in result.skipped]
        log.info("read %s (%s, %d rows)", rel, result.tables[0].kind, sum(t.n_rows for t in result.tables))
        return result.tables

    def _materialise(self, rel: str, lazy: LazyTable) -> list[Table]:
        return self._read_file(rel, lazy.path)

    def _replace_previous(self, rel: str, kind: str, file_id: str) -> None:
        """A new version of a file (same path, same kind) replaces the old version's rows."""
        old = self._known.get((rel, kind), set()) - {file_id}
        for fid in sorted(old):
            self._known[(rel, kind)].discard(fid)
            if kind in TABLE_OF_KIND:
                self.con.execute(f"DELETE FROM {TABLE_OF_KIND[kind]} WHERE file_id = ?", [fid])  # allow-listed name
            if kind == "division_codes":
                self.con.execute("DELETE FROM division_names WHERE file_id = ?", [fid])
            self.con.execute("DELETE FROM set_aside WHERE file_id = ?", [fid])
            self.con.execute("DELETE FROM ingested_files WHERE file_id = ?", [fid])

    def _record_file(self, file_id: str, rel: str, rep: FileReport) -> None:
        """Remember a file's counts; written with the others by :meth:`_write_file_records`."""
        self._file_records[file_id] = (rel, rep)
        self._known.setdefault((rel, rep.kind), set()).add(file_id)

    def _write_file_records(self) -> None:
        now = dt.datetime.now()
        rows = [(fid, rel, rep.kind, rep.rows_read, rep.rows_loaded, rep.rows_set_aside, now, rep.rows_duplicate)
                for fid, (rel, rep) in self._file_records.items()]
        if rows:
            self.con.executemany("INSERT OR REPLACE INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def _store_set_aside(self, file_id: str, rel: str, sheet, rows: list[tuple]) -> None:
        if rows:
            self.con.executemany("INSERT INTO set_aside VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [(file_id, rel, sheet, *r) for r in rows])

    # -- boundaries and code tables ----------------------------------------------

    def _ingest_boundaries(self, f: Path, root: Path) -> bool:
        """Read one boundary layer into the store; True when it changed anything."""
        rel = self._rel(f, root)
        file_id = sha256(f)
        if self._already(file_id):
            self.reports.append(FileReport(path=rel, kind="boundaries", status="unchanged"))
            return False
        try:
            layers = read_boundary_layers(f, self.code_column, self.name_column)
        except BoundaryError as e:
            self._failed_boundaries.append(rel)
            self._fail(rel, "boundaries", e.args[0])
            return False
        self._replace_previous(rel, "boundaries", file_id)
        self.con.execute("DELETE FROM boundary_features WHERE path = ?", [rel])
        rep = FileReport(path=rel, kind="boundaries")
        for layer in layers:
            store_layer(self.con, layer, file_id, rel)
            n = len(layer.features)
            rep.rows_read += n + len(layer.set_aside)
            rep.rows_loaded += n
            rep.rows_set_aside += len(layer.set_aside)
            for s in layer.set_aside:
                rep.reasons[s["reason"]] += 1
            self._store_set_aside(file_id, rel, layer.layer, [(s["row_no"], s["column_name"], s["reason"],
                                                               s["message"]) for s in layer.set_aside])
        n = rep.rows_loaded
        self._record_file(file_id, rel, rep)
        self.reports.append(rep)
        log.info("boundaries %s: %d features", rel, n)
        return True

    def _ingest_code_table(self, rel: str, table: Table, file_id: str) -> None:
        self._replace_previous(rel, "division_codes", file_id)
        loaded, aside = store_code_table(self.con, table, file_id)
        rep = FileReport(path=rel, kind="division_codes", rows_read=table.n_rows, rows_loaded=loaded,
                         rows_set_aside=len(aside), sheets=[table.sheet])
        for r in aside:
            rep.reasons[r[2]] += 1
        self._store_set_aside(file_id, rel, table.sheet, aside)
        self._merge_report(file_id, rel, rep)

    # -- tables --------------------------------------------------------------

    def _check(self, table: Table, rel: str, gazetteer: Gazetteer, locate) -> tuple[pl.DataFrame, pl.DataFrame]:
        kind = table.kind
        if kind == "rooms":
            return facility_rules.rooms(table, gazetteer, locate)
        if kind == "terminals":
            return facility_rules.terminals(table, gazetteer)
        return getattr(facility_rules, kind)(table, self.hasher)

    def _missing_columns(self, table: Table) -> tuple[str, list[tuple]] | None:
        """(message, set-aside rows) when a table lacks a required column: one message for the file."""
        missing = missing_required(table.kind, table.columns)
        if not missing:
            return None
        labels = "、".join(missing)
        sheet_note = f"（工作表“{table.sheet}”）" if table.sheet else ""
        message = f"{KIND_LABELS[table.kind]}{sheet_note}缺少必填列：{labels}。请按模板补上该列后重新提交"
        return message, [(r, labels, "missing_column", message) for r in table.frame["row_no"].to_list()]

    def _ingest_registry(self, items: list[tuple[str, Table, str]], gazetteer: Gazetteer) -> None:
        """Registry tables, checked together as one frame, then reported and buffered per table."""
        ctx = registry_rules.RowContext(self.settings, gazetteer, self.hasher, self.today)
        frames, checked = [], []
        for rel, table, file_id in items:
            missing = self._missing_columns(table)
            if missing:
                self._finish_table(rel, table, file_id, None, missing[1], missing[0])
                continue
            frames.append(registry_rules.normalise(table, len(checked), self._table_context(table, rel)))
            checked.append((rel, table, file_id))
        if not frames:
            return
        records, aside = registry_rules.check(pl.concat(frames, how="vertical_relaxed"), ctx)
        del frames
        by_table = records.partition_by("_t", as_dict=True, include_key=False)
        aside_by_table = aside.partition_by("_t", as_dict=True, include_key=False) if aside.height else {}
        for n, (rel, table, file_id) in enumerate(checked):
            a = aside_by_table.get((n,))
            self._finish_table(rel, table, file_id, by_table.get((n,), records.clear().drop("_t")),
                               [] if a is None else list(a.iter_rows()))

    def _ingest_table(self, rel: str, table: Table, file_id: str, gazetteer: Gazetteer, locate) -> None:
        missing = self._missing_columns(table)
        if missing:
            self._finish_table(rel, table, file_id, None, missing[1], missing[0])
            return
        if table.n_rows <= SLICE_ROWS:
            records, aside = self._check(table, rel, gazetteer, locate)
            self._finish_table(rel, table, file_id, records, list(aside.iter_rows()))
            return
        # A big table (a province's attendance list: millions of rows) is checked a
        # slice at a time, its duplicates found over the whole table first: the
        # memory of one slice's derived columns, not of all of them.
        whole = table.frame.with_columns(_dup_of=duplicate_of(table))
        for start in range(0, whole.height, SLICE_ROWS):
            part = replace(table, frame=whole.slice(start, SLICE_ROWS))
            records, aside = self._check(part, rel, gazetteer, locate)
            self._finish_table(rel, part, file_id, records, list(aside.iter_rows()))

    def _finish_table(self, rel: str, table: Table, file_id: str, records: pl.DataFrame | None, aside: list[tuple],
                      message: str | None = None) -> None:
        """Count a checked table into its file's report, buffer its rows, keep its set-aside rows."""
        kind = table.kind
        rep = FileReport(path=rel, kind=kind, rows_read=table.n_rows, sheets=[table.sheet],
                         skipped_sheets=self._skipped.get(rel, []), message=message)
        for _, _, reason, _ in aside:
            if reason == "duplicate_row":
                rep.rows_duplicate += 1
            else:
                rep.rows_set_aside += 1
                rep.reasons[reason] += 1
        rep.rows_loaded = 0 if records is None else records.height
        self._replace_previous(rel, kind, file_id)
        self._run_files.add(file_id)
        self._path_of[file_id] = rel
        if records is not None and records.height:
            extra = [pl.lit(file_id).alias("file_id")]
            if kind == "registry":
                extra.append(pl.lit(table.sheet, dtype=pl.String).alias("sheet"))
            self._pending.setdefault(TABLE_OF_KIND[kind], []).append(records.with_columns(extra))
            self._pending_count += records.height
            if self._pending_count >= FLUSH_ROWS:
                self._flush()
        self._store_set_aside(file_id, rel, table.sheet, aside)
        self._merge_report(file_id, rel, rep)

    def _merge_report(self, file_id: str, rel: str, rep: FileReport) -> None:
        """Several sheets of one file add up into one file report."""
        prev = self._loaded.get(rel)
        if prev is not None and prev.kind in (rep.kind, None):
            prev.rows_read += rep.rows_read
            prev.rows_loaded += rep.rows_loaded
            prev.rows_set_aside += rep.rows_set_aside
            prev.rows_duplicate += rep.rows_duplicate
            prev.reasons.update(rep.reasons)
            prev.sheets += [s for s in rep.sheets if s not in prev.sheets]
            prev.message = prev.message or rep.message
            self._record_file(file_id, rel, prev)
            return
        self.reports.append(rep)
        self._loaded[rel] = rep
        self._record_file(file_id, rel, rep)

    def _table_context(self, table: Table, rel: str) -> registry_rules.TableContext:
        stem = re.sub(r"留守儿童.*$", "", Path(rel).stem) or Path(rel).stem
        if self._multi_sheet.get(rel) and table.sheet:
            stem = f"{stem}·{table.sheet}"     # one workbook, a sheet per village: each sheet its own unit
        try:
            hint = parse_date(table.as_of_hint) if table.as_of_hint else None
        except CellError:
            hint = None
        return registry_rules.TableContext(stem, hint)

    def _flush(self) -> None:
        """Write the buffered rows, the registry's superseded extracts removed first."""
        registry = self._pending.get("registry_rows")
        if registry:
            self._pending["registry_rows"] = [self._replace_same_extract(pl.concat(registry, how="vertical_relaxed"))]
        for table_name, chunks in self._pending.items():
            for chunk in chunks:
                self._insert(table_name, chunk)
        self._pending, self._pending_count = {}, 0
        if not self.atomic:
            self.con.execute("COMMIT")
            self.con.execute("BEGIN TRANSACTION")

    def _replace_same_extract(self, rows: pl.DataFrame) -> pl.DataFrame:
        """A unit's new extract replaces its previous extract with the same as-of date;
        returns the rows with their ``unit_scope``.

        Committee names repeat across a city (two 城西社区 in one county), so a
        unit is its name plus where it is: the township of its children's
        village for a committee, the county for a school. Rows from this
        run's own files are never removed.
        """
        keys = rows.select("file_id", "reporting_unit", "village_code", "as_of").with_row_index("i")
        # A unit's place: its most common village (ties: the first seen).
        top = (keys.group_by("file_id", "reporting_unit", "village_code")
               .agg(n=pl.len(), i=pl.col("i").min())
               .sort(["n", "i"], descending=[True, False])
               .unique(["file_id", "reporting_unit"], keep="first", maintain_order=True))
        scope = top.select("file_id", "reporting_unit", unit_scope=pl.when(
            pl.col("reporting_unit").map_elements(registry_rules.source_kind, return_dtype=pl.String) == "village")
            .then(pl.col("village_code").str.slice(0, 9)).otherwise(pl.col("village_code").str.slice(0, 6)))
        rows = rows.join(scope, on=["file_id", "reporting_unit"], how="left", maintain_order="left")
        extracts = (rows.select("reporting_unit", "unit_scope", "as_of").unique()
                    .sort("reporting_unit", "unit_scope", "as_of").to_arrow())
        this_run = pd.DataFrame({"file_id": sorted(self._run_files)})
        self.con.register("new_extracts", extracts)
        self.con.register("this_run", this_run)
        self._report_replaced(rows)
        self.con.execute("""DELETE FROM registry_rows r USING new_extracts n
                            WHERE r.reporting_unit = n.reporting_unit AND r.unit_scope = n.unit_scope
                              AND r.as_of = n.as_of::DATE
                              AND r.file_id NOT IN (SELECT file_id FROM this_run)""")
        self.con.unregister("new_extracts")
        self.con.unregister("this_run")
        return rows

    def _report_replaced(self, rows: pl.DataFrame) -> None:
        """Say in each file's report which earlier extracts it replaces, rows before → after
        (a small file replacing a big extract must not pass unnoticed)."""
        before = self.con.execute("""SELECT r.reporting_unit, r.unit_scope, r.as_of, count(*) FROM registry_rows r
                                     JOIN new_extracts n ON r.reporting_unit = n.reporting_unit
                                      AND r.unit_scope = n.unit_scope AND r.as_of = n.as_of::DATE
                                     WHERE r.file_id NOT IN (SELECT file_id FROM this_run) GROUP BY ALL""").fetchall()
        if not before:
            return
        after = {(u, s, d, f): n for u, s, d, f, n in
                 rows.group_by("reporting_unit", "unit_scope", "as_of", "file_id").len().iter_rows()}
        by_path = {r.path: r for r in self.reports}
        for (u, s, d, f), n in sorted(after.items(), key=lambda kv: str(kv[0])):
            old = next((m for uu, ss, dd, m in before if (uu, ss, dd) == (u, s, d)), None)
            rep = by_path.get(self._path_of.get(f))
            if old is not None and rep is not None:
                rep.replaced.append({"unit": u, "as_of": d.isoformat(), "rows_before": old, "rows_after": n})

    def _insert(self, table_name: str, records: pl.DataFrame) -> None:
        if not records.height:
            return
        cols = [r[0] for r in self.con.execute(f"DESCRIBE {table_name}").fetchall()]  # allow-listed name
        self.con.register("new_rows", records.select(cols).to_arrow())
        self.con.execute(f"INSERT INTO {table_name} SELECT * FROM new_rows")  # allow-listed name
        self.con.unregister("new_rows")

    # -- report --------------------------------------------------------------

    def summary(self) -> dict:
        total = Counter()
        reasons = Counter()
        for r in self.reports:
            for k in ("rows_read", "rows_loaded", "rows_set_aside", "rows_duplicate"):
                total[k] += getattr(r, k)
            reasons.update(r.reasons)
        children = self.con.execute("SELECT count(*) FROM children").fetchone()[0]
        return {
            "rows_read": total["rows_read"],
            "rows_loaded": total["rows_loaded"],
            "rows_set_aside": total["rows_set_aside"],
            "rows_duplicate": total["rows_duplicate"],
            "set_aside_by_reason": dict(sorted(reasons.items())),
            "files_total": len(self.reports),
            "files_with_errors": sum(r.status in ("error", "unrecognised") for r in self.reports),
            "files_unchanged": sum(r.status == "unchanged" for r in self.reports),
            # Extracts replaced by one less than half their size: the upload asks before applying these.
            "shrinking_replacements": [{"path": r.path, **x} for r in self.reports for x in r.replaced
                                       if x["rows_after"] * 2 < x["rows_before"]],
            "children": children,
            "files": [r.as_dict() for r in self.reports],
        }


def ingest(con: duckdb.DuckDBPyConnection, paths: list[Path], settings: Settings, **kw) -> dict:
    """Ingest files and folders into an open store; returns the report."""
    return Ingest(con, settings, **kw).run([Path(p) for p in paths])
