"""Writers in separate processes replace scopes of one Iceberg table at the same moment: the
result is what running them one after the other gives, whatever the order; no day is lost or
doubled.

Each process plans its write, then waits at a barrier until every other one has planned too
(so all start from the same snapshot and all but one must lose their first commit), then
commits: what a retry and a re-plan are for is exercised every time, not by chance.
"""

from __future__ import annotations

import logging
import multiprocessing
from datetime import date

import pytest
from botocore.exceptions import ClientError

from lakehouse_assets.storage.iceberg_warehouse import IcebergWarehouse
from lakehouse_assets.storage.tables import Scope
from lakehouse_assets_tests.moto_server import REGION, MotoAWS, shared_aws  # noqa: F401 (fixture)
from lakehouse_assets_tests.storage.session_contract import EVENTS, at, read, rows

pytestmark = pytest.mark.system

BUCKET = "lakehouse-iceberg-concurrency"
SPAWN = multiprocessing.get_context("spawn")  # no fork of a process running the moto server's threads


@pytest.fixture(scope="module")
def moto(shared_aws) -> MotoAWS:  # noqa: F811
    shared_aws.create_bucket(BUCKET)
    return shared_aws


def config(moto: MotoAWS, name: str, tmp_path) -> dict:
    return {"warehouse_uri": f"s3://{BUCKET}/{name}", "glue_database_prefix": name, "region_name": REGION,
            "endpoint_url": moto.endpoint, "scratch_dir": str(tmp_path / "scratch")}


def day_rows(writer: int, day: int, n: int = 3) -> list[tuple]:
    return [(writer * 1000 + day * 10 + i, f"w{writer}", str(i), at(day, i)) for i in range(n)]


class _Lost(logging.Handler):
    """Counts commits that lost a race: pyiceberg's retries and this warehouse's re-plans."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.count += "concurrent update, retrying" in message or "lost to a concurrent writer" in message


def replace_in_process(settings: dict, writer: int, days: list[int], barrier, results) -> None:
    """A process's write: plan, wait for every other writer to have planned, commit."""
    from pyiceberg.table import Transaction

    lost = _Lost()
    for name in ("pyiceberg", "lakehouse_assets"):
        logging.getLogger(name).addHandler(lost)
    commit_transaction, gated = Transaction.commit_transaction, []

    def commit_after_the_others(self):
        if not gated:  # only the first commit: retries and re-plans go on freely
            gated.append(True)
            barrier.wait(timeout=120)
        return commit_transaction(self)

    Transaction.commit_transaction = commit_after_the_others
    warehouse = IcebergWarehouse(**settings)
    try:
        payload = [r for day in days for r in day_rows(writer, day)]
        result = warehouse.session().replace(EVENTS, rows(*payload), Scope.of_days([date(2024, 12, d) for d in days]))
        results.put((writer, result.snapshot_id, result.deleted, result.inserted, lost.count))
    finally:
        warehouse.release()


def run_writers(settings: dict, plans: dict[int, list[int]]) -> dict[int, tuple]:
    barrier, results = SPAWN.Barrier(len(plans)), SPAWN.Queue()
    processes = [SPAWN.Process(target=replace_in_process, args=(settings, writer, days, barrier, results))
                 for writer, days in plans.items()]
    for process in processes:
        process.start()
    done = {r[0]: r[1:] for r in (results.get(timeout=180) for _ in processes)}
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return done


def seeded(settings: dict, days: int) -> tuple[IcebergWarehouse, int]:
    warehouse = IcebergWarehouse(**settings)
    seed = warehouse.session().replace(EVENTS, rows(*(r for d in range(1, days + 1) for r in day_rows(0, d))), Scope())
    return warehouse, seed.snapshot_id


@pytest.mark.parametrize("writers", [2, 4])
def test_writers_of_different_days_all_land(moto, tmp_path, writers):
    settings = config(moto, f"disjoint{writers}", tmp_path)
    warehouse, seed = seeded(settings, writers + 1)
    done = run_writers(settings, {w: [w] for w in range(1, writers + 1)})

    assert sum(lost for *_, lost in done.values()) >= writers - 1  # all planned on the seed: all but one lost a race
    assert [(deleted, inserted) for _, deleted, inserted, _ in done.values()] == [(3, 3)] * writers
    session = warehouse.session()
    # The serial result: each writer's day is its rows, the day no one wrote keeps the seed's.
    expected = [r[0] for d in range(1, writers + 1) for r in day_rows(d, d)] + [r[0] for r in day_rows(0, writers + 1)]
    assert read(session)["id"].to_list() == sorted(expected)
    table = session.table(EVENTS.ref)
    history = [s.snapshot_id for s in table.snapshots()]
    assert history[0] == seed and sorted(history[1:]) == sorted(s for s, *_ in done.values())
    assert [s.parent_snapshot_id for s in table.snapshots()[1:]] == history[:-1]  # one line, one snapshot each
    assert session.row_count(EVENTS.ref) == len(expected)
    warehouse.release()


def test_writers_that_each_create_the_table_all_land(moto, tmp_path):
    settings = config(moto, "created", tmp_path)
    done = run_writers(settings, {w: [w] for w in (1, 2, 3)})  # the table does not exist yet

    warehouse = IcebergWarehouse(**settings)
    session = warehouse.session()
    assert read(session)["id"].to_list() == sorted(r[0] for w in (1, 2, 3) for r in day_rows(w, w))
    assert sorted(s.snapshot_id for s in session.table(EVENTS.ref).snapshots()) == sorted(s for s, *_ in done.values())
    warehouse.release()


def test_two_writers_of_the_same_day_give_one_of_them_whole(moto, tmp_path):
    settings = config(moto, "sameday", tmp_path)
    warehouse, _ = seeded(settings, 2)
    done = run_writers(settings, {1: [1], 2: [1]})

    session = warehouse.session()
    table = session.table(EVENTS.ref)
    last = next(w for w, (snapshot, *_) in done.items() if snapshot == table.current_snapshot().snapshot_id)
    first = 3 - last
    # Serially, first then last: the last replaced the first's rows (not the seed's) and only its rows remain.
    assert done[first][1:3] == (3, 3) and done[last][1:3] == (3, 3)
    assert done[last][3] >= 1
    day_1 = read(session, scope=Scope.of_days([date(2024, 12, 1)]))
    assert day_1["kind"].to_list() == [f"w{last}"] * 3
    assert read(session)["id"].to_list() == sorted([r[0] for r in day_rows(last, 1)] + [r[0] for r in day_rows(0, 2)])
    assert len(table.snapshots()) == 3
    warehouse.release()


def test_the_test_glue_refuses_a_commit_from_a_stale_table_version(moto, tmp_path):
    warehouse, _ = seeded(config(moto, "stale", tmp_path), 1)
    glue = moto.glue()
    current = glue.get_table(DatabaseName="stale_silver", Name="contract_events")["Table"]
    table_input = {"Name": "contract_events", "Parameters": current["Parameters"],
                   "StorageDescriptor": current["StorageDescriptor"], "TableType": current["TableType"]}
    glue.update_table(DatabaseName="stale_silver", TableInput=table_input, VersionId=current["VersionId"])
    with pytest.raises(ClientError, match="ConcurrentModificationException"):
        glue.update_table(DatabaseName="stale_silver", TableInput=table_input, VersionId=current["VersionId"])
    warehouse.release()

