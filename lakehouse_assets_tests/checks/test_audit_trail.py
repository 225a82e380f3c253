"""The audit trail (issue: nothing lost): the landing manifest lists every landed file with
where its records went, and a blocking check compares it with what the warehouse holds; a
record lost or doubled in storage fails it, names the file and stops silver.

The check counts the files its own run wrote (checks/reconcile.py): a row lost from storage
after the run is found by the same comparison (`differences`) over that run's files, and a
row lost while a run writes fails that run's check."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, materialize

from lakehouse_assets.checks.reconcile import differences
from lakehouse_assets.runs import range_tags
from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.sources import SOURCE_TABLES
from lakehouse_assets.storage.tables import TableRef
from lakehouse_assets.storage.warehouse import DuckDBWarehouse
from lakehouse_assets_tests.harness import failures
from lakehouse_assets_tests.landing_builder import write
from lakehouse_assets_tests.pipeline import ALL_ASSETS, resources, run_pipeline, table

pytestmark = pytest.mark.pipeline

MANIFEST = AssetKey(["bronze", "landing_manifest"])
RECONCILE = AssetCheckKey(MANIFEST, "files_reconcile")


def records_in(path: Path) -> int:
    """Independent count: non-blank CSV records, less a DMS header row."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    rows = [r for r in csv.reader(io.StringIO(data.decode(), newline="")) if r]
    return len(rows) - int(bool(rows) and rows[0][0].lower() in ("op", "_dms_commit_ts"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    landing = root / "landing"
    summary = generate_landing_zone(landing, scale=0.02, seed=11, dirty_rate=0.02, history_days=7, cdc_days=2)
    # A file with no record at all is still a file seen; unreadable records are rejects.
    write(landing, "core_invoice", "20241130-120000000.csv", [])
    write(landing, "core_order", "20241130-130000000.csv",
          ["U,2024-11-30 12:59:00,1,1,1,paid,EUR,1.00,2024-11-30 10:00:00,2024-11-30 10:00:00,7",
           "U,not a timestamp,1,1,1,paid,EUR,1.00,2024-11-30 10:00:00,2024-11-30 10:00:00,8",
           "just one field"])
    first, last = summary.partition_range.split("...")
    first = min(first, "2024-11-30")
    warehouse = root / "clean.duckdb"
    instance = DagsterInstance.ephemeral()
    result = run_pipeline(landing, warehouse, first, last, instance=instance)
    return landing, warehouse, (first, last), result


def check_result(result, key: AssetCheckKey):
    found = [e for e in result.get_asset_check_evaluations() if e.asset_check_key == key]
    assert len(found) == 1, found
    return found[0]


def test_the_manifest_lists_every_file_with_its_records_size_and_checksum(built):
    landing, warehouse, _, result = built
    manifest = table(warehouse, "bronze.landing_manifest")
    per_file = manifest.group_by("_source_file").agg(
        pl.col("records").sum(), pl.col("records_in_file").first(), pl.col("size_bytes").first(),
        pl.col("sha256").first(), pl.col("_run_id").unique(), pl.len().alias("days"),
    )
    landed = sorted(p for p in landing.rglob("*") if p.is_file())
    assert sorted(per_file["_source_file"]) == sorted(str(p.relative_to(landing)) for p in landed)
    for row in per_file.iter_rows(named=True):
        path = landing / row["_source_file"]
        assert row["records"] == row["records_in_file"] == records_in(path), row["_source_file"]
        assert row["size_bytes"] == path.stat().st_size
        content = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        assert row["sha256"] == hashlib.sha256(content).hexdigest()
        assert row["_run_id"] == [result.run_id]
    empty = manifest.filter(pl.col("_source_file").str.ends_with("20241130-120000000.csv"))
    assert empty.select("records", "changes", "rejects", "_partition_date").rows() == [(0, 0, 0, date(2024, 11, 30))]
    # rejects are accounted for per file
    assert manifest["rejects"].sum() == table(warehouse, "bronze.cdc_rejects").height == 2
    broken = per_file.filter(pl.col("_source_file").str.ends_with("20241130-130000000.csv"))
    assert broken["records"].to_list() == [3]


def test_a_clean_run_reconciles(built):
    *_, result = built
    assert result.success
    evaluation = check_result(result, RECONCILE)
    assert evaluation.passed
    assert evaluation.metadata["files_that_differ"].value == 0
    assert evaluation.metadata["files_checked"].value > 100


@pytest.mark.parametrize("tamper", ["lose a row", "double a row"])
def test_a_row_lost_or_doubled_in_storage_is_a_difference_of_its_file(built, tmp_path, tamper):
    landing, clean, span, result = built
    warehouse = tmp_path / "tampered.duckdb"
    shutil.copyfile(clean, warehouse)
    con = duckdb.connect(str(warehouse))
    victim = con.execute(
        "SELECT _source_file FROM bronze.core_order ORDER BY _source_file DESC, _source_row LIMIT 1"
    ).fetchone()[0]
    if tamper == "lose a row":
        con.execute("DELETE FROM bronze.core_order WHERE rowid = (SELECT min(rowid) FROM bronze.core_order "
                    "WHERE _source_file = ?)", [victim])
    else:
        con.execute("INSERT INTO bronze.core_order SELECT * FROM bronze.core_order WHERE _source_file = ? LIMIT 1",
                    [victim])
    con.close()
    store = DuckDBWarehouse(path=str(warehouse))
    try:
        checked, diff = differences(store.session(), SOURCE_TABLES, result.run_id)
    finally:
        store.release()
    assert checked > 100
    # exactly that file's count, by one row
    assert diff["_source_file"].unique().to_list() == [victim]
    expected = -1 if tamper == "lose a row" else 1
    assert (diff["stored_changes"] - diff["changes"]).to_list() == [expected]


class LosingWarehouse(DuckDBWarehouse):
    """A store that loses the rows of one landing file right after bronze writes them."""

    lose: str

    def open_session(self):
        session = super().open_session()
        replace = session.replace

        def losing(spec, rows, scope):
            written = replace(spec, rows, scope)
            if spec.ref == TableRef("bronze", "core_event"):
                session.con.execute(f"DELETE FROM {session.qualified(spec.ref)} WHERE _source_file = ?", [self.lose])
            return written

        session.replace = losing
        return session


def test_the_check_in_a_run_fails_naming_the_file_and_silver_does_not_run(built, tmp_path):
    landing, _, span, _ = built
    victim = str(min((landing / "public" / "core_event").iterdir()).relative_to(landing))
    warehouse = tmp_path / "losing.duckdb"
    result = materialize(
        ALL_ASSETS,
        resources={**resources(landing, warehouse), "warehouse": LosingWarehouse(path=str(warehouse), lose=victim)},
        instance=DagsterInstance.ephemeral(),
        tags=range_tags(date.fromisoformat(span[0]), date.fromisoformat(span[1])),
        raise_on_error=False,
    )
    [failure] = failures(result)  # the blocking check's, and nothing else
    assert "1 blocking asset check failed" in failure and "bronze/landing_manifest" in failure
    evaluation = check_result(result, RECONCILE)
    assert not evaluation.passed
    assert victim in evaluation.description
    assert victim in str(evaluation.metadata["differences"].value)
    # blocking: silver, downstream of the manifest, was not materialized, nor was gold
    materialized = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
    assert materialized == {"bronze"}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'silver'"
                           ).fetchone()[0] == 0
    finally:
        con.close()
