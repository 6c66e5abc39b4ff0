"""The ``liushou-geo`` command line.

JSON goes alone to standard output; progress and logs go to standard error,
so scripts can pipe the JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from . import bench_cli, export_cli, planner_cli
from .cli_common import add_store_options
from .auth import AuthError
from .settings import SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liushou-geo",
        description="liushou_geo: registry ingest, figures and maps for the left-behind children care programme.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more progress on standard error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="generate the fictional demo city's files (示范市)",
                       description="Write a seeded demo city: boundaries, registry extracts, facility and service files.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--scale", choices=["small", "city", "province"], default="city",
                   help="small: ~100 villages (tests); city: 996 villages, ~40k children; "
                        "province: ~30k villages, ~1.5M children as big CSVs (default city)")
    p.add_argument("--defect-rate", type=float, default=0.01,
                   help="share of registry rows given a real-world defect (default 0.01)")

    p = sub.add_parser("ingest", help="load files and folders into the store",
                       description="Load boundaries, registry extracts and facility/service files. "
                                   "Every row read is loaded or set aside with its reason.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    add_store_options(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON on standard output")
    p.add_argument("--code-column", help="boundary file: the column holding 12-digit codes")
    p.add_argument("--name-column", help="boundary file: the column holding names")

    p = sub.add_parser("metrics", help="figures per city, county, township or village",
                       description="Children, pairing, guardians, terminals and rooms per unit, and the "
                                   "seven targets (t1a ... t7: _rate in percent, _num, _den, _met), room "
                                   "coverage and proxy-parent cadence.")
    add_store_options(p)
    p.add_argument("--level", choices=["city", "county", "township", "village"], default="township",
                   help="one row per unit of this level (default township)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="table for people; csv or json (an array of objects) for tools (default table)")
    p = sub.add_parser("users", help="dashboard users: add, reset a password, unlock, list",
                       description="Manage sign-in users (stored in $LIUSHOU_AUTH_DB or data/auth.sqlite). "
                                   "Passwords are read from the terminal, or from standard input with --password-stdin.")
    users = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    u = users.add_parser("add", help="add a user")
    u.add_argument("username")
    u.add_argument("--role", required=True, choices=["city", "county", "township", "admin"],
                   help="city: all areas, aggregates; county: own county; township: own township and "
                        "child-level follow-up lists; admin: data quality, users and the audit log")
    u.add_argument("--area", help="12-digit county code (county role) or township code (township role)")
    u.add_argument("--name", help="name shown in the dashboard")
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u = users.add_parser("reset-password", help="set a new password (also unlocks)")
    u.add_argument("username")
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u = users.add_parser("unlock", help="lift a lockout after too many failed sign-ins")
    u.add_argument("username")
    users.add_parser("list", help="list users")
    users.add_parser("ensure-admin", help="when there is no user yet, add 'admin' with a random password "
                                          "(printed once and written to data/first-admin.txt, mode 0600)")
    for q in users.choices.values():
        q.add_argument("--auth-db", help="user file (default: $LIUSHOU_AUTH_DB or data/auth.sqlite)")

    planner_cli.add_parser(sub)
    bench_cli.add_parser(sub)
    export_cli.add_parser(sub)

    p = sub.add_parser("serve", help="serve the dashboard (Streamlit) on this machine",
                       description="Serve the dashboard. Reads the database named by --db or $LIUSHOU_DB.")
    p.add_argument("--db", help="DuckDB file (default: $LIUSHOU_DB or data/liushou.duckdb)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(message)s")
    try:
        return {"demo": cmd_demo, "ingest": cmd_ingest, "metrics": cmd_metrics,
                "serve": cmd_serve, "users": cmd_users, "plan-rooms": planner_cli.run, "bench": bench_cli.run,
                "export": cmd_export}[args.command](args)
    except (SettingsError, FileNotFoundError, AuthError) as e:
        print(f"错误：{e}", file=sys.stderr)
        return 2


def cmd_demo(args) -> int:
    from .demo import generate

    t0 = time.perf_counter()
    manifest = generate(Path(args.out), seed=args.seed, scale=args.scale, defect_rate=args.defect_rate)
    counts = manifest.get("counts", {})
    print(f"示范数据已写入 {args.out}（{time.perf_counter() - t0:.1f} 秒）："
          + "，".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
    return 0


def cmd_ingest(args) -> int:
    """Ingest into a private copy of the store and swap it in with one rename: the
    dashboard keeps reading the previous version meanwhile (a writer would lock
    it out), and a failure or a kill leaves the store as it was."""
    import shutil
    import tempfile

    from . import store
    from .ingest import ingest

    settings = load_settings(args.settings)
    live = store.db_path(args.db)
    live.parent.mkdir(parents=True, exist_ok=True)
    # One writer at a time: an upload confirmed meanwhile waits, then finds the store changed.
    try:
        with store.writer_lock(live, wait=0):
            pass
    except store.StoreBusy:
        print("等待另一次导入（或上传确认）结束……", file=sys.stderr, flush=True)
    with store.writer_lock(live):
        store.remove_stale_work(live, locked=True)
        work = Path(tempfile.mkdtemp(prefix=store.ingest_prefix(live), dir=live.parent))   # mode 0700
        try:
            new = work / live.name
            if live.exists():
                store.private_copy(live, new)
            con = store.connect(new)
            try:
                t0 = time.perf_counter()
                report = ingest(con, [Path(p) for p in args.paths], settings, atomic=False,   # a private copy
                                code_column=args.code_column, name_column=args.name_column,
                                progress=_progress_bar() if sys.stderr.isatty() or args.verbose else None)
                report["seconds"] = round(time.perf_counter() - t0, 2)
                con.execute("CHECKPOINT")
            finally:
                con.close()
            # Recorded before the swap makes the ingest final: a kill in between cannot lose the record.
            _audit_ingest(args, report)
            store.swap_in(new, live)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1, default=str))
    else:
        print(_ingest_text(report))
    return 1 if report["files_with_errors"] else 0


def cmd_export(args) -> int:
    """Exports leave the machine on slides and paper: each one is in the audit log."""
    rc = export_cli.run(args)
    if rc == 0:
        _audit("export", {"map": args.map, "pack": args.pack, "unit": args.unit, "format": args.format,
                          "out": str(args.out)})
    return rc


def _audit(event: str, detail: dict) -> None:
    """Record a command-line action, with the OS user, in the audit log."""
    from .auth import AuthStore, _os_user

    try:
        store = AuthStore()
    except OSError as e:        # a read-only deployment: say so, do not fail the command
        print(f"警告：无法写入审计日志（{e}）", file=sys.stderr)
        return
    store.record(_os_user(), event, detail)
    store.close()


def _progress_bar():
    """A one-line progress bar on standard error (JSON, if asked for, stays alone on standard output)."""
    state = {"last": -1}

    def show(done: int, total: int, label: str) -> None:
        pct = 100 * done // max(total, 1)
        if pct == state["last"] and done < total:
            return
        state["last"] = pct
        bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
        end = "\n" if done >= total else ""
        print(f"\r[{bar}] {pct:3d}% {label[:40]:<40}", end=end, file=sys.stderr, flush=True)
    return show


def _audit_ingest(args, report: dict) -> None:
    """An ingest is recorded in the audit log, with who ran it (the OS user)."""
    _audit("ingest", {
        "db": str(args.db or ""), "paths": [str(p) for p in args.paths], "rows_read": report["rows_read"],
        "rows_loaded": report["rows_loaded"], "rows_set_aside": report["rows_set_aside"],
        "rows_duplicate": report["rows_duplicate"], "files_with_errors": report["files_with_errors"]})


def _ingest_text(report: dict) -> str:
    lines = [
        f"读取 {report['rows_read']} 行：导入 {report['rows_loaded']} 行，暂存待改 {report['rows_set_aside']} 行，"
        f"重复行 {report['rows_duplicate']} 行（只计一次）；"
        f"儿童 {report['children']} 人；用时 {report['seconds']} 秒。",
    ]
    for reason, n in report["set_aside_by_reason"].items():
        lines.append(f"  {reason}: {n}")
    for f in report["files"]:
        if f["status"] in ("error", "unrecognised") or f.get("message"):
            lines.append(f"文件 {f['path']}：{f.get('message', f['status'])}")
    return "\n".join(lines)


def cmd_metrics(args) -> int:
    from .metrics import metrics_table
    from .store import connect

    settings = load_settings(args.settings)
    con = connect(args.db, read_only=True)
    df = metrics_table(con, args.level, settings)
    if args.format == "json":
        print(json.dumps(df.to_dicts(), ensure_ascii=False, indent=1))
    elif args.format == "csv":
        sys.stdout.write(df.write_csv())
    else:
        print(_table(df))
    return 0


def _read_password(from_stdin: bool) -> str:
    import getpass

    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("新密码：")
    if getpass.getpass("再输入一次：") != first:
        raise AuthError("两次输入的密码不一致")
    return first


def cmd_users(args) -> int:
    from .auth import AuthStore

    store = AuthStore(args.auth_db)
    if args.users_command == "add":
        user = store.add_user(args.username, _read_password(args.password_stdin), args.role, args.area, args.name)
        print(f"已添加用户 {user.username}（{user.role}，{user.area_code or '全市'}）", file=sys.stderr)
    elif args.users_command == "reset-password":
        store.reset_password(args.username, _read_password(args.password_stdin))
        print(f"已重置 {args.username} 的密码", file=sys.stderr)
    elif args.users_command == "unlock":
        store.unlock(args.username)
        print(f"已解锁 {args.username}", file=sys.stderr)
    elif args.users_command == "ensure-admin":
        if store.users():
            return 0
        import os
        import secrets

        from .settings import REPO_ROOT

        password = secrets.token_urlsafe(12)
        store.add_user("admin", password, "admin", None, "管理员")
        note = REPO_ROOT / "data" / "first-admin.txt"
        note.parent.mkdir(parents=True, exist_ok=True)
        # Private from its creation on (a later chmod leaves a moment when anyone may read it).
        fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(fd, 0o600)       # an older copy of the file may have had another mode
            f.write(f"user: admin\npassword: {password}\n")
        print(f"已创建首个管理员账号：用户名 admin，密码 {password}（也写在 {note}，登录后请改密码并删除该文件）",
              file=sys.stderr)
    else:
        for u in store.users():
            print("\t".join(str(u[k] or "") for k in ("username", "role", "area_code", "display_name", "locked_until")))
    return 0


def cmd_serve(args) -> int:
    import os

    from .ui import serve
    from .store import db_path

    path = db_path(args.db)
    if not path.exists():
        print(f"错误：数据库不存在：{path}。请先运行 liushou-geo ingest（或 make run）。", file=sys.stderr)
        return 2
    os.environ["LIUSHOU_DB"] = str(path.resolve())
    serve(args.address, args.port)
    return 0


def _table(df) -> str:
    import unicodedata

    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)

    rows = [list(df.columns)] + [["" if v is None else str(v) for v in r] for r in df.iter_rows()]
    widths = [max(width(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        out.append("  ".join(c + " " * (w - width(c)) if i == 1 else " " * (w - width(c)) + c
                             for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
