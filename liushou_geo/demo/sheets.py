"""Registry extracts as cell grids, rendered to .xlsx (xlsxwriter), .xls (xlwt) or Unicode text.

A :class:`Grid` is one sheet: rows of cell values (``None`` empty, ``str``, ``int``/``float``,
``datetime.date``) plus merged ranges whose value sits in the top-left cell. Building the grid
decides everything (layout, header variant, date style, row order, merges) and records the
1-based sheet row of every injected defect; the renderers only write cells, so rendering can be
shared with helper processes (:func:`render_all`) without changing a byte of what is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np

from . import defects as D

# Two-row headers: a merged group label over these (canonical column, sub-header text).
GROUPS = [
    ("父亲情况", [("父亲姓名", "姓名"), ("父亲务工地", "务工地点"), ("父亲电话", "联系电话")]),
    ("母亲情况", [("母亲姓名", "姓名"), ("母亲务工地", "务工地点"), ("母亲电话", "联系电话")]),
    ("临时监护人情况", [("临时监护人", "姓名"), ("与儿童关系", "与儿童关系"), ("监护人电话", "联系电话"),
                 ("监护人住址", "住址")]),
    ("结对帮扶情况", [("结对帮扶人", "帮扶人"), ("帮扶人单位", "帮扶人单位"), ("结对日期", "结对日期")]),
]
PLACE_COLUMNS = ["县(市、区)", "乡镇(街道)", "村(社区)"]
_DATE_COLUMNS = ("出生日期", "结对日期", "填报日期")


@dataclass
class Grid:
    name: str
    rows: list[list] = field(default_factory=list)
    merges: list[tuple[int, int, int, int, str]] = field(default_factory=list)  # r1, c1, r2, c2, format
    found: list[dict] = field(default_factory=list)  # defect records without 'file'
    n_rows: int = 0  # child rows written (the 合计)
    widths: dict[int, float] = field(default_factory=dict)


def fmt_date(d, style: str):
    if d is None or d == "" or (isinstance(d, float) and np.isnan(d)):
        return ""
    if style == "iso":
        return d.isoformat()
    if style == "slash":
        return f"{d.year}/{d.month}/{d.day}"
    if style == "cn":
        return f"{d.year}年{d.month}月{d.day}日"
    if style == "compact":
        return d.strftime("%Y%m%d")
    return d  # 'excel': a real date cell


def header_variant(rng, kind: str, has_code: bool, headers: list[str]) -> tuple[list[str], list[str]]:
    """(canonical columns kept, header text written) for one sheet."""
    cols = list(headers)
    if kind == "village" and rng.random() < 0.1:
        cols.remove("病史")
    if kind == "village" and rng.random() < 0.1:
        cols.remove("班主任")
    if not has_code and rng.random() < 0.5:
        cols.remove("区划代码")
    if rng.random() < 0.15:
        cols.append("备注")
    full = rng.random() < 0.2
    idtxt = str(rng.choice(["身份证号", "身份证号", "身份证号码", "公民身份号码", "身份证\n号码"]))
    vtxt = "村（居）" if rng.random() < 0.1 else ("村（社区）" if full else "村(社区)")
    text = []
    for c in cols:
        t = c
        if c == "身份证号":
            t = idtxt
        elif c == "村(社区)":
            t = vtxt
        elif full:
            t = c.replace("(", "（").replace(")", "）")
        if rng.random() < 0.03:
            t = t[:1] + " " + t[1:]
        text.append(t)
    return cols, text


def registry_grid(plan, rng: np.random.Generator, as_of: dt.date, headers: list[str], *,
                  two_row: bool = False, merged_places: bool = False, sheet_name: str | None = None) -> Grid:
    """One unit's extract as a sheet: title, optional info line, header (one or two rows), data, 合计, 填表人.

    ``merged_places``: rows are sorted by county, township and village (stable, so a duplicated row
    stays after its source) and each run of equal names is one vertically merged cell.
    """
    cols, text = header_variant(rng, plan.kind, plan.has_code, headers)
    style = str(rng.choice(["iso", "slash", "cn", "compact", "excel"], p=[0.65, 0.1, 0.08, 0.07, 0.1]))
    drawn_name = str(rng.choice(["Sheet1", "台帐", "Sheet1"]))
    g = Grid(sheet_name or drawn_name)
    ncol = len(cols)
    g.rows.append([plan.title] + [None] * (ncol - 1))
    g.merges.append((0, 0, 0, ncol - 1, "title"))
    layout = rng.random()
    info = f"填报单位：{plan.unit}    填报日期：{as_of.isoformat()}"
    if layout < 0.3:
        g.rows.append([])  # blank line
    elif layout < 0.55:
        g.rows.append([info])
    elif layout < 0.7:
        g.rows += [[], [info]]
    _header(g, cols, text, two_row)

    # Data rows. The per-row draws (a stray blank line before the row, a 备注) are made in plan order
    # and stay with their row when merged place names sort the rows.
    n = len(plan.rows)
    note = "备注" in cols
    blank_before, remark = [False] * n, [None] * n
    for i in range(n):
        blank_before[i] = rng.random() < 0.004 and not merged_places
        if note and rng.random() < 0.05:
            remark[i] = "已核实"
    order = range(n)
    if merged_places:
        keyf = itemgetter(*PLACE_COLUMNS)
        order = sorted(order, key=lambda i: keyf(plan.rows[i]))  # stable: a duplicate stays after its source
    assert cols[0] == "序号"
    plain = [c for c in cols[1:] if c != "备注"]  # 序号 is counted, 备注 drawn
    get = itemgetter(*plain)
    date_idx = [1 + j for j, c in enumerate(plain) if c in _DATE_COLUMNS]
    first_data = len(g.rows)
    n_real = 0
    for i in order:
        if blank_before[i]:
            g.rows.append([])  # a stray blank row inside the data
        n_real += 1
        vals = [n_real] + [None if v == "" else v for v in get(plan.rows[i])]
        for j in date_idx:
            v = fmt_date(vals[j], style) if vals[j] is not None else ""
            vals[j] = v if v != "" else None
        if note:
            vals.append(remark[i])
        kind = plan.defect[i]
        if kind in D.EXPECTED:
            g.found.append(dict(sheet=g.name, row=len(g.rows) + 1, kind=kind, expected=D.EXPECTED[kind]))
        g.rows.append(vals)
    if merged_places and n_real > 1:
        _merge_places(g, [cols.index(c) for c in PLACE_COLUMNS], first_data, len(g.rows))
    g.n_rows = n_real
    g.rows.append(["合计", f"{n_real}人"])
    g.rows.append([f"填表人：{rng.choice(['张', '李', '王', '刘'])}{rng.choice(['敏', '芳', '丽', '军'])}    "
                   f"审核人：{rng.choice(['陈', '周', '黄'])}{rng.choice(['红', '华', '平'])}    "
                   f"联系电话：0739-{int(rng.integers(1000000, 9999999))}"])
    g.widths = {cols.index("身份证号"): 20}
    return g


def _header(g: Grid, cols: list[str], text: list[str], two_row: bool) -> None:
    if not two_row:
        g.rows.append(list(text))
        return
    r = len(g.rows)
    top, sub = list(text), [None] * len(cols)
    in_group = set()
    for label, members in GROUPS:
        idx = [cols.index(c) for c, _ in members]
        assert idx == list(range(idx[0], idx[0] + len(idx))), "group columns must be adjacent"
        for j, (_, s) in zip(idx, members):
            top[j], sub[j] = None, s
            in_group.add(j)
        top[idx[0]] = label
        g.merges.append((r, idx[0], r, idx[-1], "head"))
    for j in range(len(cols)):
        if j not in in_group:
            g.merges.append((r, j, r + 1, j, "head"))
    g.rows += [top, sub]


def _merge_places(g: Grid, place_idx: list[int], first: int, end: int) -> None:
    """Vertically merge runs of equal county / (county, township) / (…, village) values."""
    for depth, j in enumerate(place_idx):
        keys = [tuple(g.rows[r][k] for k in place_idx[:depth + 1]) for r in range(first, end)]
        start = 0
        for k in range(1, len(keys) + 1):
            if k == len(keys) or keys[k] != keys[start]:
                if k - start > 1 and keys[start][-1] is not None:
                    g.merges.append((first + start, j, first + k - 1, j, "place"))
                start = k


def instructions_grid(township: str, as_of: dt.date) -> Grid:
    g = Grid("填表说明")
    g.rows = [[f"{township}留守儿童信息台帐填表说明"], [],
              ["1. 每个村（社区）填一个工作表，工作表以村（社区）名称命名，请勿改动表头。"],
              ["2. 身份证号请按文本格式填写18位，末位为X的请大写。"],
              ["3. 出生日期按“年-月-日”填写；父母务工地填写到县（市）。"],
              ["4. 临时监护人情况、结对帮扶情况无则空白。"],
              [f"5. 请于{as_of.year}年{as_of.month}月{as_of.day}日前报乡镇（街道）妇联，"
               "汇总表由乡镇（街道）填写。"]]
    g.widths = {0: 80}
    return g


def summary_grid(township: str, counts: list[tuple[str, int]]) -> Grid:
    g = Grid("汇总")
    g.rows = [[f"{township}留守儿童人数汇总表", None], ["村名", "留守儿童人数"]]
    g.merges = [(0, 0, 0, 1, "title")]
    g.rows += [[name, n] for name, n in counts]
    g.rows.append(["合计", sum(n for _, n in counts)])
    g.widths = {0: 16, 1: 14}
    return g


# ---------------------------------------------------------------- renderers

class XlsxFormats:
    def __init__(self, wb):
        self.date = wb.add_format({"num_format": "yyyy-mm-dd"})
        self.merge = {
            "title": wb.add_format({"bold": True, "align": "center", "font_size": 14}),
            "head": wb.add_format({"bold": True, "align": "center", "valign": "vcenter", "text_wrap": True}),
            "place": wb.add_format({"valign": "vcenter"}),
        }


def render_file(path: str, fmt: str, grids: list[Grid]) -> None:
    """Write one registry file: 'txt' (first grid), 'xls', or an .xlsx of all grids."""
    if fmt == "txt":
        with open(path, "wb") as f:
            f.write(render_unicode_text(grids[0]))
    elif fmt == "xls":
        import xlwt

        book = xlwt.Workbook(encoding="utf-8")
        for g in grids:
            render_xls(book, g)
        book.save(path)
    else:
        import xlsxwriter

        # Small workbooks: in_memory (no temporary files) is faster than constant_memory here.
        wb = xlsxwriter.Workbook(path, {"in_memory": True, "strings_to_numbers": False})
        fmts = XlsxFormats(wb)
        for g in grids:
            render_xlsx(wb, fmts, g)
        wb.close()


def render_files(jobs: list[tuple[str, str, list[Grid]]]) -> int:
    """Render a batch of (path, format, grids); returns how many."""
    for job in jobs:
        render_file(*job)
    return len(jobs)


_BATCHES_PER_WORKER = 8  # small batches, claimed one at a time: a busy core just claims fewer
_END = "END"  # written once every batch is in the queue


def _claim(folder: str, name: str) -> str | None:
    """Take a batch file for this process (an atomic rename: only one claimant succeeds)."""
    mine = os.path.join(folder, f"{name}.{os.getpid()}")
    try:
        os.rename(os.path.join(folder, name), mine)
        return mine
    except FileNotFoundError:
        return None


def render_queue(folder: str) -> None:
    """Worker process entry: claim and render pickled batches from ``folder`` until none is left.

    Also stops when the queue folder is gone or the parent process has died (never orphaned).
    """
    parent = os.getppid()
    while True:
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".pickle"))
        except FileNotFoundError:
            return
        ended = os.path.exists(os.path.join(folder, _END))
        if not names:
            if ended or os.getppid() != parent:
                return
            time.sleep(0.02)
            continue
        for name in names:
            mine = _claim(folder, name)
            if mine:
                with open(mine, "rb") as f:
                    render_files(pickle.load(f))


def render_all(jobs: list[tuple[str, str, list[Grid]]], workers: int = 1) -> None:
    """Render every job; with ``workers`` > 1, ``workers - 1`` fresh Python processes help.

    The jobs are cut into batches of about equal cell count, pickled into a queue folder, and claimed
    one at a time by this process and the helpers, so a helper on a busy core simply takes fewer.
    Plain subprocesses (``python -c``), not multiprocessing: nothing is forked from a process with
    running thread pools and the caller's main module is never re-imported. The files are the same
    whichever process writes them.
    """
    if workers <= 1 or len(jobs) < 2 * workers:
        render_files(jobs)
        return
    size = [sum(len(r) for g in job[2] for r in g.rows) for job in jobs]
    target = sum(size) / (workers * _BATCHES_PER_WORKER)
    batches: list[list] = [[]]
    filled = 0
    for job, n in zip(jobs, size):
        if filled >= target:
            batches.append([])
            filled = 0
        batches[-1].append(job)
        filled += n
    import liushou_geo

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(liushou_geo.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    code = "import sys; from liushou_geo.demo.sheets import render_queue; render_queue(sys.argv[1])"
    with tempfile.TemporaryDirectory(prefix="liushou_demo_render_") as tmp:
        queue = os.path.join(tmp, "queue")
        os.mkdir(queue)
        names = [f"{k:05d}.pickle" for k in range(len(batches))]
        procs = []
        try:
            for k, (name, batch) in enumerate(zip(names, batches)):
                part = os.path.join(tmp, name)
                with open(part, "wb") as f:
                    pickle.dump(batch, f, protocol=pickle.HIGHEST_PROTOCOL)
                os.rename(part, os.path.join(queue, name))  # appears in the queue complete
                if k == 0:
                    for w in range(workers - 1):
                        log = open(os.path.join(tmp, f"worker{w}.log"), "wb")
                        procs.append((subprocess.Popen([sys.executable, "-c", code, queue], env=env,
                                                       stdout=subprocess.DEVNULL, stderr=log), log))
            open(os.path.join(queue, _END), "w").close()
            for name, batch in zip(names, batches):
                if _claim(queue, name):
                    render_files(batch)  # from memory: no unpickling here
        finally:
            open(os.path.join(queue, _END), "a").close()
            failed = []
            for proc, log in procs:
                code_ = proc.wait()
                log.close()
                if code_ != 0:
                    with open(log.name, encoding="utf-8", errors="replace") as f:
                        failed.append(f.read()[-3000:])
        if failed:
            raise RuntimeError("a sheet-rendering worker process failed:\n" + failed[0])


_EXCEL_EPOCH = dt.date(1899, 12, 30).toordinal()  # serial day 0 for dates after 1900-02-28


def render_xlsx(wb, fmts: XlsxFormats, g: Grid) -> None:
    """Write a grid into a new sheet of an xlsxwriter Workbook (consumes the grid's merged cells)."""
    ws = wb.add_worksheet(g.name)
    rows = g.rows
    for r1, c1, r2, c2, f in g.merges:
        v = rows[r1][c1]
        ws.merge_range(r1, c1, r2, c2, "" if v is None else v, fmts.merge[f])
        for r in range(r1, r2 + 1):
            row = rows[r]
            for c in range(c1, min(c2 + 1, len(row))):
                row[c] = None
    for c, w in g.widths.items():
        ws.set_column(c, c, w)
    write_s, write_n, datef = ws.write_string, ws.write_number, fmts.date
    date_t, epoch = dt.date, _EXCEL_EPOCH
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if v is None:
                continue
            t = type(v)
            if t is str:
                write_s(r, c, v)
            elif t is date_t:  # what write_datetime writes, without its per-cell conversion
                write_n(r, c, float(v.toordinal() - epoch), datef)
            else:
                write_n(r, c, v)


def render_xls(book, g: Grid) -> None:
    """Write a grid into a new sheet of an xlwt Workbook (BIFF8)."""
    import xlwt

    ws = book.add_sheet(g.name)
    styles = {"title": xlwt.easyxf("font: bold on, height 280; align: horiz center"),
              "head": xlwt.easyxf("font: bold on; align: horiz center, vert center, wrap on"),
              "place": xlwt.easyxf("align: vert center")}
    datef = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    rows = g.rows
    for r1, c1, r2, c2, f in g.merges:
        v = rows[r1][c1]
        ws.write_merge(r1, r2, c1, c2, "" if v is None else v, styles[f])
        for r in range(r1, r2 + 1):
            row = rows[r]
            for c in range(c1, min(c2 + 1, len(row))):
                row[c] = None
    for c, w in g.widths.items():
        ws.col(c).width = int(w * 256)
    for r, row in enumerate(rows):
        xrow = ws.row(r)
        for c, v in enumerate(row):
            if v is None:
                continue
            if type(v) is dt.date:
                xrow.write(c, v, datef)
            else:
                xrow.write(c, v)


def _display(v) -> str:
    """What Excel shows (and its text export writes) for a cell value."""
    if v is None:
        return ""
    t = type(v)
    if t is str:
        return v
    if t is dt.date:
        return v.isoformat()  # the yyyy-mm-dd number format
    if t is float and abs(v) >= 1e11:
        return f"{v:.5E}"  # General format in a normal-width column: 4.30102E+17
    if t is float and v.is_integer():
        return str(int(v))
    return str(v)


def render_unicode_text(g: Grid) -> bytes:
    """Excel's "Unicode 文本" export of one sheet: UTF-16 LE with BOM, tab-separated, CRLF."""
    width = max(len(r) for r in g.rows)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\r\n")
    for row in g.rows:
        w.writerow([_display(v) for v in row] + [""] * (width - len(row)))
    return b"\xff\xfe" + buf.getvalue().encode("utf-16-le")
