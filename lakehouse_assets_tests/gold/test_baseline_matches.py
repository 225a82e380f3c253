"""The contract cross-check: the benchmark's plain-DuckDB baseline (benchmarks/baseline.py, an
independent implementation of CONTRACT sections 2-5) and the project give the same warehouse.

Gold and silver must be equal row for row (bronze too, but for `_ingested_at`). The zone is a
small sample with a few layout variations the contract allows: a LOAD file without the Op
column and with a header row, a CDC file with an upper-case header, gzip CDC files (from the
generator), and dirty rows for quarantine. Timings are the benchmark's business, not a test's.
"""

from __future__ import annotations

from datetime import date

import pytest

from benchmarks.baseline import build
from benchmarks.compare import compare
from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.sources import TABLES_BY_NAME
from lakehouse_assets_tests.pipeline import run_pipeline

pytestmark = pytest.mark.pipeline


def _vary_layouts(root) -> None:
    """core_order's LOAD file loses Op and gains a header; a core_event CDC file gains one."""
    orders = TABLES_BY_NAME["core_order"]
    load = root / "public" / "core_order" / "LOAD00000001.csv"
    lines = load.read_text().splitlines()
    assert all(line.startswith("I,") for line in lines)  # one record a line: no quoted newlines
    header = ",".join(["_dms_commit_ts", *orders.column_names, "_dms_seq"])
    load.write_text("\n".join([header, *(line[2:] for line in lines)]) + "\n")

    events = TABLES_BY_NAME["core_event"]
    cdc = sorted(p for p in (root / "public" / "core_event").iterdir() if p.name.endswith(".csv"))[-1]
    header = ",".join(["Op", "_dms_commit_ts", *events.column_names, "_dms_seq"]).upper()
    cdc.write_text(header + "\n" + cdc.read_text())


def test_baseline_and_project_build_the_same_warehouse(tmp_path):
    landing = tmp_path / "landing"
    # A short span (fewer daily partitions) keeps the run quick; the scale keeps every table busy.
    summary = generate_landing_zone(
        landing, scale=0.02, seed=5, dirty_rate=0.01, history_days=10, cdc_days=3
    )
    _vary_layouts(landing)
    first, last = summary.partition_range.split("...")

    project = tmp_path / "project.duckdb"
    assert run_pipeline(landing, project, first, last).success

    baseline = tmp_path / "baseline.duckdb"
    out = build(landing, baseline, (date.fromisoformat(first), date.fromisoformat(last)),
                first_partition=date(2024, 1, 1))
    assert out["rows"]["gold"]["customer_segments"] > 0
    assert sum(out["rows"]["quarantine"].values()) > 0  # the dirty rows reached quarantine

    diffs = compare(baseline, project, ("gold", "silver", "bronze"))
    different = [d.describe() for d in diffs if not d.equal]
    assert not different, "\n".join(different)
