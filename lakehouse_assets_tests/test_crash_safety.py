"""Crash safety: the run process SIGKILLed (kill -9, the whole process group) during a
materialization, at seeded random points of its log and at chosen points inside a write,
leaves every table readable, no partition half-written or doubled, and a rerun of the same
command gives exactly the tables of an uninterrupted run. Local mode (DuckDB) and AWS mode
(Parquet on S3, partitions in Glue; a moto server that lives in this process and so outlives
the run it serves).

Every run is the contract's CLI, `dagster asset materialize ... --partition-range A...B`, in a
process group of its own, against the project's local instance configuration
(`data/dagster_home/dagster.yaml`). Targeted kills run the same command with
`-m lakehouse_assets_tests.crash_points`: the project's Definitions with the IO manager
subclassed to kill its own process group at one point (see that module); reruns always use
`-m lakehouse_assets.definitions`, the product as shipped.

What "the same tables" means: equal rows (as multisets; `_ingested_at`, and `_run_id` where
a table has it, aside: they say when and by which run a row was written) and equal
column types. After a crash the warehouse must hold, for every table (local) or every
registered partition (S3), exactly the rows of the uninterrupted run or nothing yet, and
nothing that existed before the crash may be gone: a write replaces its partitions with the
same rows, so old and new versions look alike and anything half-done shows up as missing or
extra rows. One more local case kills the process while DuckDB creates a new warehouse file.
"""

from __future__ import annotations

import random
import signal
import warnings
from collections import defaultdict
from datetime import date, timedelta
from types import SimpleNamespace

import duckdb
import polars as pl
import pytest

from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets_tests.crash_helpers import (
    CRASHING,
    MARKERS,
    PRODUCT,
    RUN_SECONDS,
    AwsWarehouse,
    Check,
    by_day,
    check_aws,
    check_local,
    cli_env,
    duckdb_tables,
    duplicates,
    kill_while_creating,
    make_home,
    marker_counts,
    run_cli,
    written_tables,
)
from lakehouse_assets_tests.moto_server import moto_aws

SEED = 20241210  # every kill point and delay below comes from random.Random(SEED, test)
SCALE, ZONE_SEED = 0.02, 5
AWS_DAYS = 5  # AWS mode runs the last 5 days (every table x 5 partitions); local the whole span
BUCKET = "crash-warehouse"
BACKFILL_SELECT = "bronze/core_order"  # one table over the whole span: 101 partitions, 2 Glue batches


def product_tables() -> set[str]:
    """Every table the project's Definitions declare ('bronze.core_order', ...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dagster's beta-parameter warnings
        from lakehouse_assets.definitions import defs

        return {".".join(key.path) for key in defs.resolve_all_asset_keys()}


TALLY: dict[str, int] = defaultdict(int)
KILLS: list[str] = []  # where each crash was asked for and where it landed


def tally(mode: str, kind: str, check: Check, rerun: bool = False) -> None:
    TALLY[f"{mode}: reruns to completion" if rerun else f"{mode}: crashes, {kind}"] += 1
    TALLY[f"{mode}: table looks"] += check.tables
    TALLY[f"{mode}: partition looks"] += check.partitions
    TALLY["records lost"] += check.lost
    TALLY["records extra (doubled or not the reference's)"] += check.extra
    if rerun and check.problems:
        TALLY["reruns that differed"] += 1


@pytest.fixture(scope="module", autouse=True)
def crash_summary(request):
    TALLY["reruns that differed"] += 0
    TALLY["records lost"] += 0
    yield
    lines = ["", "crash safety summary:", *(f"  {name}: {TALLY[name]}" for name in sorted(TALLY))]
    lines += ["  kills:", *(f"    {k}" for k in KILLS)]
    seconds = [s for _, s in RUN_SECONDS]
    lines.append(f"  CLI runs: {len(seconds)}, {sum(seconds):.0f} s in all (longest {max(seconds, default=0):.0f} s)")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # to the terminal, passed or not
            for line in lines:
                reporter.write_line(line)


def problems_text(check: Check, what: str) -> str:
    return f"{what}:\n  " + "\n  ".join(check.problems[:30])


def kill_point(rng: random.Random, counts: dict[str, int], kind: str) -> tuple[str, int, float]:
    """A seeded point of a run: after the n-th line of a kind (in the first 85% of them, so the
    run is still going), plus a delay that lets the run get into what follows the line."""
    n = rng.randint(1, max(1, int(counts[kind] * 0.85)))
    return kind, n, round(rng.uniform(0.0, 0.2), 3)


def table_of(report: dict) -> str:
    return report["asset"].replace("/", ".")


def writes_of(order: list[str], *layers: str) -> list[int]:
    """The numbers (1-based, in the order a run writes) of the writes of these layers' tables."""
    return [i + 1 for i, table in enumerate(order) if table.split(".")[0] in layers]


# ---- fixtures: the landing zone and one uninterrupted run per mode -----------------------


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    # The default dirty rate: quarantine tables have rows (bronze.cdc_rejects has none here).
    summary = generate_landing_zone(root, scale=SCALE, seed=ZONE_SEED)
    return root, summary


def span_days(span: str) -> list[str]:
    first, last = (date.fromisoformat(d) for d in span.split("..."))
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


@pytest.fixture(scope="module")
def local_reference(zone, tmp_path_factory):
    """The whole span (101 daily partitions, a single-run backfill), uninterrupted."""
    root, summary = zone
    base = tmp_path_factory.mktemp("local_reference")
    warehouse = base / "reference.duckdb"
    out = run_cli(PRODUCT, summary.partition_range,
                  cli_env(make_home(base), root, duckdb_path=warehouse), base)
    assert out.returncode == 0, out.tail()
    tables = duckdb_tables(warehouse)
    assert set(tables) == product_tables()
    for name, frame in tables.items():
        assert duplicates(name, frame) == 0, name  # the invariants hold where nothing crashed
    assert sum(f.height for n, f in tables.items() if n.endswith("_quarantine")) > 0
    order = written_tables(out.output)
    assert sorted(order) == sorted(tables), order
    return SimpleNamespace(span=summary.partition_range, days=len(span_days(summary.partition_range)),
                           tables=tables, counts=marker_counts(out.output), order=order,
                           path=warehouse, seconds=out.seconds)


@pytest.fixture(scope="module")
def aws():
    with moto_aws() as running:
        running.create_bucket(BUCKET)
        yield running


@pytest.fixture(scope="module")
def aws_reference(aws, zone, tmp_path_factory):
    """The last AWS_DAYS days in AWS mode, uninterrupted. Later tests crash and rerun on this
    same warehouse: each starts by checking that it still reads as this run wrote it."""
    root, summary = zone
    last = date.fromisoformat(summary.partition_range.split("...")[1])
    span = f"{last - timedelta(days=AWS_DAYS - 1)}...{last}"
    base = tmp_path_factory.mktemp("aws_reference")
    warehouse = AwsWarehouse(aws, BUCKET, "reference", "crashref")
    home = make_home(base)
    out = run_cli(PRODUCT, span, cli_env(home, root, aws=warehouse.env(root)), base)
    assert out.returncode == 0, out.tail()
    tables, problems, garbage = warehouse.read()
    assert problems == [] and garbage == []
    assert set(tables) == product_tables()
    assert all(sorted(days) == span_days(span) for days in tables.values())
    for name, days in tables.items():
        frames = [f for f in days.values() if f.height]
        if frames:
            assert duplicates(name, pl.concat(frames)) == 0, name
    order = written_tables(out.output)
    assert sorted(order) == sorted(tables), order
    return SimpleNamespace(span=span, tables=tables, counts=marker_counts(out.output), order=order,
                           warehouse=warehouse, home=home, base=base, seconds=out.seconds)


# ---- local mode: DuckDB ------------------------------------------------------------------


def test_local_backfill_killed_at_random_log_points_then_rerun(zone, local_reference, tmp_path):
    """A 101-partition backfill from an empty warehouse, SIGKILLed three times at seeded log
    points (a step starting, a table handed to the IO manager, a partition's materialization
    event; plus a seeded delay), each time on what the last kill left; then run to the end."""
    root, _ = zone
    ref = local_reference
    rng = random.Random(f"{SEED}-local-random")
    warehouse = tmp_path / "warehouse.duckdb"
    env = cli_env(make_home(tmp_path), root, duckdb_path=warehouse)
    present: set[str] = set()

    def kill_and_check(point: tuple[str, int, float]) -> None:
        nonlocal present
        kind, n, delay = point
        out = run_cli(PRODUCT, ref.span, env, tmp_path, kill_after=(MARKERS[kind], n, delay))
        assert out.killed, f"the run was not killed at {point} (exit {out.returncode}):\n{out.tail()}"
        check, present = check_local(warehouse, ref.tables, ref.days, must_exist=present)
        tally("local", f"random log point ({kind})", check)
        KILLS.append(f"local {kind} #{n} +{delay}s: {len(present)} tables present after")
        assert not check.problems, problems_text(check, f"after a kill at {point}: {out.killed_at}")

    for kind in rng.sample(sorted(MARKERS), 3):
        kill_and_check(kill_point(rng, ref.counts, kind))

    out = run_cli(PRODUCT, ref.span, env, tmp_path)
    assert out.returncode == 0, out.tail()
    check, present = check_local(warehouse, ref.tables, ref.days, must_exist=set(ref.tables))
    tally("local", "", check, rerun=True)
    assert not check.problems, problems_text(check, "the rerun differs from the uninterrupted run")
    assert present == set(ref.tables)


def test_local_kills_inside_duckdb_writes_and_between_tables(zone, local_reference, tmp_path):
    """The backfill killed inside the IO manager: before the COMMIT of a write whose DELETE and
    INSERT are done (the very first write too, whose CREATE TABLE is in that transaction),
    during DELETE/INSERT/COMMIT (a seeded timer), right after COMMIT returned (the connection
    not closed, so not checkpointed: the WAL must be replayed) and after the connection closed
    (between two tables); first on an empty warehouse, each kill on what the last left, then
    rerun; then twice on the complete warehouse, which must come out exactly as it was."""
    root, _ = zone
    ref = local_reference
    order = ref.order
    rng = random.Random(f"{SEED}-local-targeted")
    warehouse = tmp_path / "warehouse.duckdb"
    home = make_home(tmp_path)
    report = tmp_path / "crash.jsonl"
    present: set[str] = set()

    def crash(point: str, write: int, delay_ms: float = 0) -> None:
        nonlocal present
        before = set(present)
        env = cli_env(home, root, duckdb_path=warehouse, crash={
            "LAKEHOUSE_CRASH_POINT": point, "LAKEHOUSE_CRASH_AT": str(write),
            "LAKEHOUSE_CRASH_DELAY_MS": str(delay_ms)})
        out = run_cli(CRASHING, ref.span, env, tmp_path, report=report)
        assert out.killed and len(out.reports) == 1, f"{point} @ write {write}: exit {out.returncode}\n{out.tail()}"
        (where,) = out.reports
        assert where["point"] == point and where.get("armed_write", where["write"]) == write
        landed = where["write"]  # mid_write: the write under way when the timer fired
        crashed = table_of(where)
        assert crashed == order[landed - 1]  # runs write in the same order
        assert where["partitions"] == ref.span
        check, present = check_local(warehouse, ref.tables, ref.days, must_exist=before)
        tally("local", point, check)
        KILLS.append(f"local {point} armed at write {write}, landed in write {landed} ({crashed}, "
                     f"phase {where['phase']}); WAL to replay: {check.wal}; {len(present)} tables after")
        TALLY["local: kills that left a DuckDB WAL to replay"] += check.wal
        # Did the crashed write commit? Certainly not before its COMMIT; certainly once COMMIT
        # returned; either way while COMMIT runs (a mid_write timer firing then).
        phase = where["phase"] if point == "duckdb_mid_write" else point
        if point == "duckdb_mid_write":
            TALLY[f"local: duckdb_mid_write kills that landed in phase {phase}"] += 1
        assert not check.problems, problems_text(check, f"after {point} at write {landed} ({crashed})")
        if point == "duckdb_before_commit":
            # The open transaction held the new rows (and, on an empty warehouse, the CREATE TABLE).
            assert where["rows_in_open_transaction"] >= where["frame_rows"]
        committed = before | set(order[: landed - 1])  # the run's earlier writes
        if phase in ("close", "done", "duckdb_commit_unclosed", "duckdb_after_commit"):
            committed.add(crashed)
        in_doubt = {crashed} if phase == "commit" else set()
        assert committed <= present <= committed | in_doubt, (sorted(committed ^ present), phase)

    bronze, later = writes_of(order, "bronze"), writes_of(order, "silver", "gold")
    half = len(bronze) // 2
    crash("duckdb_before_commit", 1)  # nothing existed: not even the table may be left
    crash("duckdb_after_commit", rng.choice(bronze[1:half]))  # between two tables
    crash("duckdb_commit_unclosed", rng.choice(bronze[half:]))  # committed, only in the WAL
    crash("duckdb_mid_write", rng.choice(later), delay_ms=round(rng.uniform(0, 40), 1))
    out = run_cli(PRODUCT, ref.span, cli_env(home, root, duckdb_path=warehouse), tmp_path)
    assert out.returncode == 0, out.tail()
    check, present = check_local(warehouse, ref.tables, ref.days, must_exist=set(ref.tables))
    tally("local", "", check, rerun=True)
    assert not check.problems, problems_text(check, "the rerun differs from the uninterrupted run")

    # The complete warehouse, rebuilt and killed: it must read exactly as before.
    crash("duckdb_before_commit", rng.randint(1, len(order)))
    crash("duckdb_mid_write", rng.randint(1, len(order)), delay_ms=round(rng.uniform(0, 40), 1))
    assert present == set(ref.tables)


@pytest.mark.parametrize("written", [0, 4096, 8192])
def test_local_killed_while_duckdb_creates_the_warehouse_file(tmp_path, written, monkeypatch):
    """The first connection of a new warehouse (any run's first load or write) creates the
    DuckDB file and writes its three 4 KiB headers. A process killed before they are all on
    disk (here: as its writes pass `written` bytes) can leave a file that never held anything
    committed (random SIGKILLs timed around a new database's first connect did, in 5 of 400
    tries). Whatever it left, the warehouse must open for the next run and its readers: a file
    that can never be opened again stops every later run, with no data to lose but for good."""
    warehouse = tmp_path / "warehouse" / "lakehouse.duckdb"
    child = kill_while_creating(warehouse, written)
    assert child.returncode == -signal.SIGXFSZ, (child.returncode, child.stderr[-2000:])
    TALLY[f"local: crashes, while DuckDB creates the warehouse file ({written} header bytes written)"] += 1
    left = warehouse.stat().st_size if warehouse.exists() else None
    KILLS.append(f"local killed creating the warehouse file after {written} bytes: left a file of {left} bytes")

    # The next run opens it as every run does: the product's connect (without the waits of
    # its lock retries, should it retry: no one else is writing this file).
    import lakehouse_assets.storage.duckdb_io as duckdb_io

    monkeypatch.setattr(duckdb_io, "LOCK_WAIT", [0.0] * len(duckdb_io.LOCK_WAIT))
    context = SimpleNamespace(resource_config={"database": str(warehouse), "connection_config": {}})
    try:
        with duckdb_io.LakehouseDuckDbClient.connect(context, None) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS bronze").fetchall()
            conn.execute("CREATE TABLE bronze.after_the_crash AS SELECT 1 AS x").fetchall()
        reopened = duckdb_tables(warehouse)  # and a reader
    except duckdb.Error as exc:
        TALLY["local: warehouses that no run can open after a crash"] += 1
        pytest.fail(f"killed while creating the warehouse file, after {written} bytes, the product "
                    f"cannot open what it left ({left} bytes) again, so every later run fails: {exc}")
    assert reopened == {"bronze.after_the_crash": reopened["bronze.after_the_crash"]}


# ---- AWS mode: Parquet on S3, partitions in Glue ---------------------------------------


def test_aws_killed_at_random_log_points_then_rerun(zone, aws, aws_reference, tmp_path):
    """AWS mode, a new warehouse, killed at a seeded log point: every partition Glue shows is
    complete (the rest not registered yet); then rerun: the catalog reads as the
    uninterrupted run's."""
    root, _ = zone
    ref = aws_reference
    rng = random.Random(f"{SEED}-aws-random")
    fresh = AwsWarehouse(aws, BUCKET, "fresh", "crashfresh")
    env = cli_env(make_home(tmp_path), root, aws=fresh.env(root))
    point = kill_point(rng, ref.counts, rng.choice(sorted(MARKERS)))
    out = run_cli(PRODUCT, ref.span, env, tmp_path, kill_after=(MARKERS[point[0]], point[1], point[2]))
    assert out.killed, f"the run was not killed at {point} (exit {out.returncode}):\n{out.tail()}"
    check, registered, _ = check_aws(fresh, ref.tables, complete=False)
    tally("aws", f"random log point ({point[0]})", check)
    KILLS.append(f"aws {point[0]} #{point[1]} +{point[2]}s: {len(registered)} partitions registered after")
    assert not check.problems, problems_text(check, f"after a kill at {point}: {out.killed_at}")
    assert registered, f"the kill at {point} came before any partition was registered"

    out = run_cli(PRODUCT, ref.span, env, tmp_path)
    assert out.returncode == 0, out.tail()
    check, _, _ = check_aws(fresh, ref.tables, complete=True)
    tally("aws", "", check, rerun=True)
    assert not check.problems, problems_text(check, "the rerun differs from the uninterrupted run")


def test_aws_kills_inside_s3_writes_and_glue_switches(zone, aws, aws_reference, tmp_path):
    """The complete AWS warehouse rebuilt and killed inside the IO manager: with half of a new
    version's files uploaded, with all uploaded and no Glue partition switched, and with every
    partition switched but the old versions not yet deleted. After each kill every partition
    is registered and reads exactly as before; then a rerun reads as the uninterrupted run."""
    root, _ = zone
    ref = aws_reference
    warehouse = ref.warehouse
    rng = random.Random(f"{SEED}-aws-targeted")
    report = tmp_path / "crash.jsonl"
    start, _, _ = check_aws(warehouse, ref.tables, complete=True)
    assert not start.problems, problems_text(start, "the reference warehouse changed before this test")
    plan = [
        ("s3_mid_upload", rng.choice(writes_of(ref.order, "bronze"))),
        ("s3_before_switch", rng.choice(writes_of(ref.order, "silver"))),
        ("s3_before_gc", rng.choice(writes_of(ref.order, "bronze", "silver", "gold"))),
    ]
    for point, write in plan:
        env = cli_env(ref.home, root, aws=warehouse.env(root), crash={
            "LAKEHOUSE_CRASH_POINT": point, "LAKEHOUSE_CRASH_AT": str(write)})
        out = run_cli(CRASHING, ref.span, env, tmp_path, report=report)
        assert out.killed and len(out.reports) == 1, f"{point} @ write {write}: exit {out.returncode}\n{out.tail()}"
        (where,) = out.reports
        assert (where["point"], where["write"], table_of(where)) == (point, write, ref.order[write - 1])
        check, _, garbage = check_aws(warehouse, ref.tables, complete=True)
        tally("aws", point, check)
        KILLS.append(f"aws {point} at write {write} ({table_of(where)}): {len(garbage)} unreferenced objects")
        TALLY["aws: unreferenced S3 objects left by crashes (max seen)"] = max(
            TALLY["aws: unreferenced S3 objects left by crashes (max seen)"], len(garbage))
        assert not check.problems, problems_text(check, f"after {point} at write {write} ({table_of(where)})")

    out = run_cli(PRODUCT, ref.span, cli_env(ref.home, root, aws=warehouse.env(root)), tmp_path)
    assert out.returncode == 0, out.tail()
    check, _, _ = check_aws(warehouse, ref.tables, complete=True)
    tally("aws", "", check, rerun=True)
    assert not check.problems, problems_text(check, "the rerun differs from the uninterrupted run")


def test_aws_backfill_killed_between_glue_batches(zone, aws, local_reference, tmp_path):
    """One table over the whole span (101 partitions: Glue takes 100 per batch) killed after
    the first batch switched: first on a new table (100 days registered, the 101st not), then
    after a rerun on the complete table (100 days new, 1 old). Every registered day is exactly
    local mode's; a rerun completes it; and a later write collects the files crashes left."""
    root, summary = zone
    days = span_days(summary.partition_range)
    assert len(days) > 100
    reference = {"bronze.core_order": by_day(local_reference.tables["bronze.core_order"], "_commit_ts", days)}
    warehouse = AwsWarehouse(aws, BUCKET, "backfill", "crashbf")
    home = make_home(tmp_path)
    report = tmp_path / "crash.jsonl"

    def mid_switch(existing: set) -> set:
        env = cli_env(home, root, aws=warehouse.env(root), crash={
            "LAKEHOUSE_CRASH_POINT": "s3_mid_switch", "LAKEHOUSE_CRASH_AT": "1"})
        out = run_cli(CRASHING, summary.partition_range, env, tmp_path, select=BACKFILL_SELECT, report=report)
        assert out.killed and len(out.reports) == 1, out.tail()
        (where,) = out.reports
        assert where["asset"] == "bronze/core_order" and where["partitions_in_next_batch"] == len(days) - 100
        check, registered, _ = check_aws(warehouse, reference, complete=False, must_exist=existing)
        tally("aws", "s3_mid_switch (backfill, between Glue batches)", check)
        KILLS.append(f"aws s3_mid_switch of a {len(days)}-partition backfill: {len(registered)} registered after")
        assert not check.problems, problems_text(check, "after a kill between two Glue batches")
        return registered

    registered = mid_switch(set())
    assert registered == {("bronze.core_order", d) for d in days[:100]}  # the first batch, whole

    def complete_run(module: str, extra: dict | None = None) -> list[str]:
        env = cli_env(home, root, aws=warehouse.env(root), crash=extra)
        out = run_cli(module, summary.partition_range, env, tmp_path, select=BACKFILL_SELECT)
        assert out.returncode == 0, out.tail()
        check, _, garbage = check_aws(warehouse, reference, complete=True)
        tally("aws", "", check, rerun=True)
        assert not check.problems, problems_text(check, "the rerun differs from the uninterrupted run")
        return garbage

    complete_run(PRODUCT)
    registered = mid_switch({("bronze.core_order", d) for d in days})
    assert len(registered) == len(days)
    _, _, leftovers = check_aws(warehouse, reference, complete=True)
    # The files of the killed writes: the 101st day's new version, the 100 switched days' old
    # versions (and the first kill's unswitched file): unreferenced, so no reader sees them.
    assert len(leftovers) >= len(days), leftovers[:5]
    TALLY["aws: unreferenced S3 objects left by crashes (max seen)"] = max(
        TALLY["aws: unreferenced S3 objects left by crashes (max seen)"], len(leftovers))
    # A rerun keeps files younger than the grace period (they could be a concurrent writer's
    # new version); a write once they are past it (here: a grace of 0 s) deletes every one.
    assert complete_run(CRASHING, {"LAKEHOUSE_CRASH_GC_GRACE_SECONDS": "0"}) == []
