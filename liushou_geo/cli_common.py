"""Options every subcommand that reads the store shares."""

from __future__ import annotations

import argparse


def add_store_options(p: argparse.ArgumentParser, db: bool = True) -> None:
    if db:
        p.add_argument("--db", help="DuckDB file (default: $LIUSHOU_DB or data/liushou.duckdb)")
    p.add_argument("--settings", help="settings TOML (default: $LIUSHOU_SETTINGS or data/settings.toml)")
