"""Property test: for random change histories, silver equals a tiny reference model of the
contract's SCD1 rule (CONTRACT 2 'Order of changes' and 4).

Silver is computed by the product's SQL merge in a scratch warehouse session
(silver_merge.py). Histories mix inserts, updates, key-only deletes, same-timestamp changes broken by seq, empty
seqs, LOAD and CDC files, re-deliveries of the same record in later files and keys spelled
with leading zeros. Fixed seed and budget, so CI runs the same cases every time."""

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from lakehouse_assets.landing.reader import change_schema
from lakehouse_assets.sources import ORDER_STATUSES, TABLES_BY_NAME
from lakehouse_assets_tests.silver_merge import merge_silver

pytestmark = pytest.mark.unit

ORDER = TABLES_BY_NAME["core_order"]
T0 = datetime(2024, 12, 1, tzinfo=timezone.utc)
FILES = ["public/core_order/LOAD00000001.csv", "public/core_order/LOAD00000002.csv",
         "public/core_order/20241201-000000000.csv", "public/core_order/20241202-000000000.csv",
         "public/core_order/20241202-000000000.csv.gz"]

change = st.fixed_dictionaries({
    "key": st.integers(1, 4),
    "spelling": st.sampled_from(["{}", "0{}", "00{}"]),  # '007' and '7' are one key
    "op": st.sampled_from(["I", "U", "D"]),
    "ts": st.integers(0, 3),  # few timestamps: many ties
    "seq": st.sampled_from(["", "1", "2", "10", "9", "0010"]),
    "file": st.integers(0, len(FILES) - 1),
    "status": st.sampled_from(ORDER_STATUSES),
    "day": st.integers(1, 3),
})


def reference(history: list[dict]) -> dict[int, dict]:
    """The contract, read literally: order by (commit ts, seq empty first then as a number,
    LOAD before CDC then by name, position in the file); the last change per key wins; a
    delete removes the key."""
    def order(c):
        name = FILES[c["file"]].rsplit("/", 1)[1]
        return (c["ts"], c["seq"] != "", int(c["seq"] or 0), not name.startswith("LOAD"), name,
                c["row"])
    winners = {}
    for c in sorted(history, key=order):
        winners[c["key"]] = c
    return {k: c for k, c in winners.items() if c["op"] != "D"}


def bronze(history: list[dict]) -> pl.DataFrame:
    rows = []
    for c in history:
        key = c["spelling"].format(c["key"])
        delete = c["op"] == "D"
        created = f"2024-11-0{c['day']} 10:00:00"
        rows.append({
            "id": key, "tenant_id": None if delete else "1", "customer_id": None if delete else "1",
            "status": None if delete else c["status"], "currency": None if delete else "EUR",
            "total_amount": None if delete else "1.00", "created_at": None if delete else created,
            "updated_at": None if delete else created, "_op": c["op"],
            "_commit_ts": T0 + timedelta(seconds=c["ts"]), "_seq": c["seq"] or None,
            "_source_file": FILES[c["file"]], "_source_row": c["row"],
            "_ingested_at": T0,
        })
    return pl.DataFrame(rows, schema=change_schema(ORDER))


def apart(histories: list[list[dict]]) -> list[dict]:
    """Several histories as one: each with keys of its own (1-4, 11-14, 21-24, ...), so one
    merge checks them all (a merge costs a few dozen SQL statements, whatever its size)."""
    return [{**c, "key": c["key"] + 10 * h} for h, changes in enumerate(histories) for c in changes]


@seed(20241208)
@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.lists(change, min_size=1, max_size=25), min_size=1, max_size=8))
def test_silver_equals_the_reference_model(histories):
    # Positions are unique per file, as in a real file; duplicates of a record re-delivered in
    # another file stay separate records.
    history, rows_in_file = [], {}
    for c in apart(histories):
        rows_in_file[c["file"]] = rows_in_file.get(c["file"], 0) + 1
        history.append({**c, "row": rows_in_file[c["file"]]})
    result = merge_silver(bronze(history), ORDER, date(2024, 1, 1))
    expected = reference(history)
    got = {row["id"]: row for row in result.valid.to_dicts()}
    assert result.quarantine.is_empty()
    assert set(got) == set(expected)
    for key, c in expected.items():
        assert got[key]["status"] == c["status"]
        assert got[key]["created_at"].day == c["day"]
        assert got[key]["_source_file"] == FILES[c["file"]]


# ---- the same, through real landing files and the reader --------------------------------

delivery = st.fixed_dictionaries({
    "key": st.integers(1, 4),
    "op": st.sampled_from(["I", "U", "D"]),
    "ts": st.integers(0, 3),
    "seq": st.sampled_from(["", "1", "2", "10", "9", "0010"]),
    "file": st.integers(0, len(FILES) - 2),  # the .gz twin is written as a re-landing below
    "status": st.sampled_from(ORDER_STATUSES),
    "day": st.integers(1, 3),
    "key_only_delete": st.booleans(),
    "redelivered_in": st.none() | st.integers(0, len(FILES) - 2),  # DMS re-sends it later
})


def landing_line(c: dict) -> str:
    from lakehouse_assets_tests.landing_builder import record

    ts = (T0 + timedelta(seconds=c["ts"])).strftime("%Y-%m-%d %H:%M:%S")
    created = f"2024-11-0{c['day']} 10:00:00"
    values = {"id": c["key"]}
    if not (c["op"] == "D" and c["key_only_delete"]):
        values |= {"tenant_id": 1, "customer_id": 1, "status": c["status"], "currency": "EUR",
                   "total_amount": "1.00", "created_at": created, "updated_at": created}
    return record(ORDER, c["op"], ts, values, c["seq"] or None)


@seed(20241209)
@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(st.lists(st.lists(delivery, min_size=1, max_size=20), min_size=1, max_size=5), st.booleans())
def test_silver_through_landing_files_equals_the_reference_model(histories, reland_gz):
    """Random histories written as DMS files (LOAD and CDC, re-deliveries of a record in a
    later file, a file landed again as .gz with the same content), read by the reader and
    merged: silver is the reference model's, whatever the spread over files."""
    import tempfile
    from pathlib import Path

    from lakehouse_assets.landing.files import LocalLandingStore
    from lakehouse_assets.landing.reader import read_table
    from lakehouse_assets_tests.landing_builder import write

    lines: dict[int, list[str]] = {}
    history = []
    for c in apart(histories):
        for file in [c["file"], *([c["redelivered_in"]] if c["redelivered_in"] is not None else [])]:
            lines.setdefault(file, []).append(landing_line(c))
            history.append({**c, "file": file, "row": len(lines[file])})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for file, file_lines in lines.items():
            write(root, ORDER, FILES[file].rsplit("/", 1)[1], file_lines)
        if reland_gz and 3 in lines:  # the same file again, gzipped: not new data
            write(root, ORDER, FILES[4].rsplit("/", 1)[1], lines[3], gz=True)
        read = read_table(LocalLandingStore(str(root)), ORDER, T0)
    assert read.rejects.is_empty()
    assert len(read.changes) == len(history)
    result = merge_silver(read.changes, ORDER, date(2024, 1, 1))
    expected = reference(history)
    got = {row["id"]: row for row in result.valid.to_dicts()}
    assert result.quarantine.is_empty()
    assert set(got) == set(expected)
    for key, c in expected.items():
        assert (got[key]["status"], got[key]["created_at"].day) == (c["status"], c["day"])
        assert got[key]["_source_file"] == FILES[c["file"]]
