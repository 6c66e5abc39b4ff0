"""The DuckDB store: connecting with the spatial extension loaded offline, the
schema, and running the named SQL files in ``liushou_geo/sql/``.

The spatial extension comes from the ``duckdb-extension-spatial`` wheel; a
plain ``INSTALL spatial`` would try the internet, which a government intranet
does not have.
"""

from __future__ import annotations

import functools
import os
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
