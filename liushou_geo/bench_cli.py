"""``liushou-geo bench``: the benchmark of issue #9 (see :mod:`liushou_geo.bench`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark ingest, pages and planner against a pandas/geopandas baseline",
        description="Generate (once) or reuse the demo at a scale, ingest it in a child process, time every "
                    "page's figures and map cold (fresh connection, no cache) beside a pandas + geopandas "
                    "baseline, and the room planner. Prints a table; --json writes the figures.")
    p.add_argument("--scale", choices=["small", "city", "province"], default="city",
                   help="small (tests), city (996 villages) or province (~30k villages, 2.5M registry rows)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE ('-' for standard output)")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; medians are reported (default 3)")
    p.add_argument("--ingest-repeat", type=int, default=None,
                   help="ingest runs (default: --repeat, 1 at province scale)")
    p.add_argument("--data-dir", default="bench",
                   help="where the demo files and the ingested store are kept and reused (default bench/)")
    p.add_argument("--reuse-db", action="store_true",
                   help="use the store from the last run and skip measuring ingest")


def run(args) -> int:
    from .bench import run_bench, table

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result = run_bench(scale=args.scale, repeat=max(1, args.repeat), data_dir=Path(args.data_dir),
                       ingest_repeat=args.ingest_repeat, reuse_db=args.reuse_db, log=log)
    text = table(result)
    if args.json == "-":
        print(json.dumps(result, ensure_ascii=False, indent=1))
        print(text, file=sys.stderr)
    else:
        print(text)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0
