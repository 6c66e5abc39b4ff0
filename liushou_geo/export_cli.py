"""``liushou-geo export``: map pictures and briefing packs (issue #7).

Wired into :mod:`liushou_geo.cli` with ``add_parser(sub)``; ``run(args)``
returns the exit code (0 done, 2 a mistake in the command or the data to fix,
with a Chinese message on standard error). The written paths go to standard
output as JSON.

    liushou-geo export --db DB --map KIND [--unit CODE] --format png|pdf [--size 1080p|4k] --out FILE
    liushou-geo export --db DB --pack [--unit CODE] --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .cli_common import add_store_options
from .export import KINDS, SIZES


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help="map pictures (PNG/PDF) and briefing packs (PDF + Excel) for slides and reports",
        description="Render a map view as a slide-size PNG (1080p or 4k) or an A4-landscape vector PDF, or a "
                    "briefing pack for the city or one county (multi-page PDF and an Excel workbook). Chinese "
                    "text in Noto Sans CJK (Debian fonts-noto-cjk); aggregates only, small counts shown as <5.")
    add_store_options(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--map", choices=KINDS, metavar="KIND",
                      help="the map view: " + "|".join(KINDS))
    what.add_argument("--pack", action="store_true", help="the briefing pack (PDF and Excel) into --out DIR")
    p.add_argument("--unit", metavar="CODE",
                   help="12-digit code: a county or township (maps: their villages); default the whole city "
                        "(its townships). Packs: the city or one county")
    p.add_argument("--format", choices=["png", "pdf"], help="map picture format (default: from --out's suffix)")
    p.add_argument("--size", choices=list(SIZES), default="1080p", help="PNG size: 1080p (1920×1080) or 4k (3840×2160)")
    p.add_argument("--radius-km", type=float, default=None, metavar="R",
                   help="rooms map: coverage radius (default room_radius_km from the settings)")
    p.add_argument("--out", required=True, help="output file (--map) or folder (--pack)")
    return p


def run(args) -> int:
    from .export import ExportError, build_pack, ensure_cjk_font, write_map
    from .settings import SettingsError, load_settings
    from .store import connect

    try:
        ensure_cjk_font()
        settings = load_settings(args.settings)
        con = connect(args.db, read_only=True)
    except (SettingsError, FileNotFoundError, ExportError) as e:
        print(f"错误：{e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        if args.pack:
            pack = build_pack(con, settings, args.unit, Path(args.out))
            result = {"pdf": str(pack.pdf), "xlsx": str(pack.xlsx), "pages": pack.pages,
                      "plan_included": pack.plan_included}
        else:
            fmt = args.format or Path(args.out).suffix.lower().lstrip(".")
            if fmt not in ("png", "pdf"):
                print("错误：请用 --format png 或 --format pdf 指定格式（或让 --out 以 .png / .pdf 结尾）。",
                      file=sys.stderr)
                return 2
            out = write_map(con, settings, args.map, Path(args.out), args.unit, fmt, args.size, args.radius_km)
            result = {"file": str(out), "format": fmt, "size": args.size if fmt == "png" else "A4"}
    except ExportError as e:
        print(f"错误：{e}", file=sys.stderr)
        return 2
    finally:
        con.close()
    result["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(result, ensure_ascii=False))
    return 0
