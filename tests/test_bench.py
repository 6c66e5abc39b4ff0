"""The benchmark runs end to end on the small demo and writes the JSON contract."""

from __future__ import annotations

import argparse
import json

import pytest

from liushou_geo import bench_cli


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    parser = argparse.ArgumentParser()
    bench_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--scale", "small", "--repeat", "1", "--data-dir", str(out),
                              "--json", str(out / "bench.json")])
    assert bench_cli.run(args) == 0
    return json.loads((out / "bench.json").read_text(encoding="utf-8")), out


def test_json_has_the_contract_keys(result):
    r, _ = result
    assert {"machine", "ingest", "pages", "planner"} <= set(r)
    assert r["machine"]["cpu_count"] >= 1 and r["machine"]["memory_gb"] > 0
    assert {"rows", "seconds", "rows_per_s", "peak_rss_mb"} <= set(r["ingest"])
    assert {"seconds", "status"} <= set(r["planner"])


def test_values_are_sane(result):
    r, _ = result
    ing = r["ingest"]
    assert ing["rows"] > 1000 and ing["seconds"] > 0 and ing["rows_per_s"] > 0 and ing["peak_rss_mb"] > 50
    pages = {p["page"] for p in r["pages"]}
    for page in ("overview", "targets", "rooms", "terminals", "pairing"):
        assert {f"{page} (city)", f"{page} (county)"} <= pages
    for p in r["pages"]:
        assert {"page", "server_ms_median", "payload_bytes", "baseline_ms_median", "ratio"} <= set(p)
        assert p["server_ms_median"] > 0 and p["baseline_ms_median"] > 0 and p["ratio"] > 0
        assert p["payload_bytes"] > 0
    assert r["planner"]["seconds"] > 0 and r["planner"]["status"] == "optimal"


def test_demo_and_store_are_cached(result):
    _, out = result
    assert (out / "small" / "demo" / "manifest.json").exists()
    assert (out / "small" / "liushou.duckdb").exists()
