"""The sample-data generator writes a landing zone that follows CONTRACT section 2."""

from __future__ import annotations

import csv
import gzip
import io
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from lakehouse_assets.sample_data import (
    expected_live_rows,
    generate_landing_zone,
    write_cdc_drop,
)
from lakehouse_assets.sample_data.cli import main
from lakehouse_assets.sources import SOURCE_TABLES, TABLES_BY_NAME

LOAD_NAME = re.compile(r"^LOAD[0-9A-Fa-f]{8}\.csv(\.gz)?$")
CDC_NAME = re.compile(r"^(\d{8})-(\d{9})\.csv(\.gz)?$")
COMMIT_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")
SCALE = 0.01

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("landing")
    return root, generate_landing_zone(root, scale=SCALE, seed=7)


def _bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _files(root: Path, table) -> list[Path]:
    """Landing files of a table in contract order: LOAD files first, each kind by name."""
    folder = root / table.landing_folder
    return sorted(folder.iterdir(), key=lambda p: (0 if p.name.startswith("LOAD") else 1, p.name))


def _records(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_bytes(path).decode("utf-8"), newline="")))


def _fields_with_quoting(line_data: str) -> list[list[tuple[str, bool]]]:
    """RFC 4180 split that keeps whether each field was quoted (csv can't tell "" from NULL)."""
    records, fields, buf, quoted, i = [], [], [], False, 0
    while i < len(line_data):
        ch = line_data[i]
        if ch == '"' and not buf and not quoted:
            quoted, i = True, i + 1
            while True:
                j = line_data.index('"', i)
                buf.append(line_data[i:j])
                if line_data[j + 1 : j + 2] == '"':
                    buf.append('"')
                    i = j + 2
                else:
                    i = j + 1
                    break
            continue
        if ch in ",\n":
            fields.append(("".join(buf), quoted))
            buf, quoted = [], False
            if ch == "\n":
                records.append(fields)
                fields = []
        else:
            buf.append(ch)
        i += 1
    return records


def _all_records(root: Path):
    """(table, file, record) for every record of the landing zone."""
    for table in SOURCE_TABLES:
        for path in _files(root, table):
            for rec in _records(path):
                yield table, path, rec


def _replay(root: Path, table) -> dict[str, list[str]]:
    """The contract's SCD1 merge: last change per key by (commit ts, seq, file, row); D removes."""
    changes = []
    for f_idx, path in enumerate(_files(root, table)):
        for r_idx, rec in enumerate(_records(path)):
            seq = int(rec[-1]) if rec[-1] else -1
            changes.append(((rec[1], seq, f_idx, r_idx), rec))
    state: dict[str, list[str]] = {}
    for _, rec in sorted(changes, key=lambda c: c[0]):
        if rec[0] == "D":
            state.pop(rec[2], None)
        else:
            state[rec[2]] = rec
    return state


def _row(table, rec: list[str]) -> dict[str, str]:
    return dict(zip(table.column_names, rec[2:-1]))


def test_layout_and_file_names(landing):
    root, summary = landing
    assert sorted(p.name for p in (root / "public").iterdir()) == sorted(
        t.name for t in SOURCE_TABLES
    )
    for table in SOURCE_TABLES:
        names = [p.name for p in _files(root, table)]
        assert "LOAD00000001.csv" in names
        assert all(LOAD_NAME.match(n) or CDC_NAME.match(n) for n in names), names
        cdc_days = {CDC_NAME.match(n).group(1) for n in names if CDC_NAME.match(n)}
        assert cdc_days <= {f"202412{d:02d}" for d in range(1, 12)}
        assert summary.table(table.name).files == len(names)
    assert summary.partition_range == "2024-09-01...2024-12-10"
    assert summary.first_business_date == date(2024, 9, 1)
    assert summary.last_commit_date == date(2024, 12, 10)


def test_every_record_has_the_dms_layout(landing):
    root, summary = landing
    counts = Counter()
    for table, path, rec in _all_records(root):
        assert len(rec) == 3 + len(table.columns), (path, rec)
        assert rec[0] in ("I", "U", "D")
        assert COMMIT_TS.match(rec[1]), rec[1]
        if path.name.startswith("LOAD"):
            assert rec[0] == "I" and rec[-1] == ""
            assert rec[1].startswith("2024-12-01 00:0")  # the full load runs for a few minutes
        else:
            assert re.fullmatch(r"\d{35}", rec[-1]), rec[-1]
            assert rec[1] >= "2024-12-01 00:04"  # CDC starts after the load
        counts[table.name] += 1
    for t in summary.tables:
        assert counts[t.table] == t.records


def test_file_names_follow_their_newest_commit(landing):
    root, _ = landing
    for table in SOURCE_TABLES:
        for path in _files(root, table):
            m = CDC_NAME.match(path.name)
            if not m:
                continue
            newest = max(datetime.strptime(r[1], "%Y-%m-%d %H:%M:%S.%f") for r in _records(path))
            written = datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S%f")
            assert 0 < (written - newest).total_seconds() <= 61


def test_live_rows_match_the_scale_and_a_replay(landing):
    root, summary = landing
    for table in SOURCE_TABLES:
        expected = expected_live_rows(table.name, SCALE)
        assert summary.table(table.name).live_rows == expected
        assert len(_replay(root, table)) == expected, table.name


def test_counts_scale(tmp_path):
    summary = generate_landing_zone(tmp_path, scale=0.05, seed=1)
    assert summary.table("core_order").live_rows == round(47_750 * 0.05)
    assert summary.table("core_event").live_rows == round(293_339 * 0.05)
    assert summary.table("core_tenant").live_rows == 3  # at least 3 tenants
    assert expected_live_rows("core_order", 2) == 95_500
    assert expected_live_rows("core_tenant", 0.0001) == 3
    assert expected_live_rows("core_product", 0.0001) == 1


def test_deterministic_for_a_seed(tmp_path):
    def snapshot(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }

    generate_landing_zone(tmp_path / "a", scale=SCALE, seed=3)
    generate_landing_zone(tmp_path / "b", scale=SCALE, seed=3)
    generate_landing_zone(tmp_path / "c", scale=SCALE, seed=4)
    a, b, c = snapshot(tmp_path / "a"), snapshot(tmp_path / "b"), snapshot(tmp_path / "c")
    assert a == b
    assert a != c


def test_deletes_carry_only_the_key(landing):
    root, _ = landing
    deleted = Counter()
    for table, _, rec in _all_records(root):
        if rec[0] == "D":
            assert rec[2] != "" and all(v == "" for v in rec[3:-1]), rec
            deleted[table.name] += 1
    assert deleted["core_order"] and deleted["core_orderitem"] and deleted["core_event"]


def test_seq_increases_with_commit_order_across_the_source(landing):
    root, _ = landing
    changes = [(int(rec[-1]), rec[1]) for _, path, rec in _all_records(root) if rec[-1]]
    seqs = [s for s, _ in changes]
    assert len(set(seqs)) == len(seqs)
    by_seq = sorted(changes)
    assert all(a[1] <= b[1] for a, b in zip(by_seq, by_seq[1:]))
    # Inside a file, records come in seq order.
    for table in SOURCE_TABLES:
        for path in _files(root, table):
            file_seqs = [int(r[-1]) for r in _records(path) if r[-1]]
            assert file_seqs == sorted(file_seqs)


def test_a_file_spans_midnight(landing):
    root, _ = landing
    spanning = [
        path
        for table in SOURCE_TABLES
        for path in _files(root, table)
        if CDC_NAME.match(path.name) and len({r[1][:10] for r in _records(path)}) > 1
    ]
    assert spanning


def test_transactions_group_orders_with_their_items(landing):
    root, _ = landing
    by_commit = defaultdict(list)
    for table, _, rec in _all_records(root):
        if rec[-1]:
            by_commit[rec[1]].append((int(rec[-1]), table.name, rec))
    multi = [sorted(v) for v in by_commit.values() if len(v) > 1]
    assert multi
    inserts = [tx for tx in multi if tx[0][1] == "core_order" and tx[0][2][0] == "I"]
    assert inserts
    for tx in inserts:
        order = tx[0][2]
        for _, name, item in tx[1:]:
            if name == "core_orderitem":
                assert item[4] == order[2] and item[3] == order[3]  # order_id, tenant_id


def test_gzip_files_decompress(landing):
    root, _ = landing
    gz = [p for t in SOURCE_TABLES for p in _files(root, t) if p.name.endswith(".gz")]
    assert gz
    for path in gz:
        assert CDC_NAME.match(path.name)
        assert _records(path)


def test_empty_string_and_null_are_distinct(landing):
    root, _ = landing
    customers = TABLES_BY_NAME["core_customer"]
    text = _bytes(root / customers.landing_folder / "LOAD00000001.csv").decode()
    records = _fields_with_quoting(text)
    assert [[v for v, _ in r] for r in records] == _records(
        root / customers.landing_folder / "LOAD00000001.csv"
    )
    name_at = 2 + customers.column_names.index("full_name")
    country_at = 2 + customers.column_names.index("country")
    assert any(r[name_at] == ("", True) for r in records)  # written as ""
    assert any(r[country_at] == ("", False) for r in records)  # NULL: nothing at all
    assert all(r[-1] == ("", False) for r in records)  # no seq in the full load


def test_special_characters_are_quoted(landing):
    root, _ = landing
    products = TABLES_BY_NAME["core_product"]
    names = {
        _row(products, r)["name"]
        for r in _records(root / products.landing_folder / "LOAD00000001.csv")
    }
    assert {'12" Cast Iron Skillet', "Mug, 350 ml", "Gift Box\nLimited Edition"} & names
    raw = (root / products.landing_folder / "LOAD00000001.csv").read_text()
    assert (
        '"12"" Cast Iron Skillet"' in raw or '"Mug, 350 ml"' in raw or '"Gift Box\nLimited' in raw
    )


def test_values_are_consistent(landing):
    root, _ = landing
    state = {t.name: {k: _row(t, r) for k, r in _replay(root, t).items()} for t in SOURCE_TABLES}
    orders, items = state["core_order"], state["core_orderitem"]
    totals = Counter()
    for item in items.values():
        order = orders[item["order_id"]]  # every live item points to a live order
        assert item["tenant_id"] == order["tenant_id"]
        totals[item["order_id"]] += int(item["quantity"]) * round(float(item["unit_price"]) * 100)
    exact = sum(totals[k] == round(float(o["total_amount"]) * 100) for k, o in orders.items())
    assert exact >= 0.97 * len(orders)
    for product in state["core_product"].values():
        assert product["unit_price"] == "-5.00" or 5 <= float(product["unit_price"]) <= 500
    assert all(
        c["id"] in state["core_customer"]
        for c in [{"id": o["customer_id"]} for o in orders.values()]
    )
    events = list(state["core_event"].values())
    anonymous = sum(e["customer_id"] == "" for e in events) / len(events)
    assert 0.1 < anonymous < 0.3
    types = Counter(e["event_type"] for e in events)
    assert types["page_view"] > types["add_to_cart"] > types["purchase"] > 0 and types["error"] > 0
    subs = state["core_subscription"].values()
    assert all(
        (s["canceled_at"] != "") == (s["status"] == "canceled")
        for s in subs
        if s["status"] != "paused"
    )
    for invoice in state["core_invoice"].values():
        assert (invoice["paid_at"] != "") == (invoice["status"] == "paid")


def test_cdc_has_updates_that_move_orders_and_pay_invoices(landing):
    root, _ = landing
    transitions = set()
    last_status = {}
    for path in _files(root, TABLES_BY_NAME["core_order"]):
        for rec in _records(path):
            if rec[0] == "U":
                transitions.add((last_status.get(rec[2]), rec[5]))
            if rec[0] != "D":
                last_status[rec[2]] = rec[5]
    assert {("pending", "paid"), ("paid", "shipped"), ("shipped", "delivered")} <= transitions
    invoice = TABLES_BY_NAME["core_invoice"]
    paid = [_row(invoice, r) for p in _files(root, invoice) for r in _records(p) if r[0] == "U"]
    assert any(r["status"] == "paid" and r["paid_at"] for r in paid)


def _enum_values(root: Path) -> dict[tuple[str, str], set[str]]:
    seen = defaultdict(set)
    for table, _, rec in _all_records(root):
        if rec[0] == "D":
            continue
        for col, value in zip(table.columns, rec[2:-1]):
            if col.allowed:
                seen[(table.name, col.name)].add(value)
    return seen


def test_dirty_rate_zero_gives_only_valid_rows(tmp_path, landing):
    generate_landing_zone(tmp_path, scale=SCALE, seed=7, dirty_rate=0)
    for (table, column), values in _enum_values(tmp_path).items():
        assert values <= set(TABLES_BY_NAME[table].column(column).allowed), (table, column)
    customer = TABLES_BY_NAME["core_customer"]
    assert all(_row(customer, r)["tenant_id"] for r in _replay(tmp_path, customer).values())
    # ... while the default dirty rate leaves something for the silver layer to quarantine.
    root, _ = landing
    dirty = _enum_values(root)[("core_order", "status")] - set(
        TABLES_BY_NAME["core_order"].column("status").allowed
    )
    assert dirty
    item = TABLES_BY_NAME["core_orderitem"]
    assert any(_row(item, r)["quantity"] in ("0", "-1") for r in _replay(root, item).values())


def test_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    generate_landing_zone(tmp_path, scale=SCALE)
    with pytest.raises(FileExistsError):
        generate_landing_zone(tmp_path, scale=SCALE)
    folder = tmp_path / "public" / "core_order"
    (folder / "notes.txt").write_text("keep me")
    (folder / "20991231-000000000.csv").write_text("")  # a CDC-named file we would have written
    generate_landing_zone(tmp_path, scale=SCALE, seed=9, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"
    assert not (folder / "20991231-000000000.csv").exists()


def test_parameters_move_the_timeline(tmp_path):
    summary = generate_landing_zone(
        tmp_path, scale=SCALE, load_date=date(2025, 3, 1), cdc_days=3, history_days=30, gzip_every=0
    )
    assert summary.last_commit_date == date(2025, 3, 3)
    assert summary.partition_range == "2025-01-30...2025-03-04"  # the last file is named after midnight
    assert not list(tmp_path.rglob("*.gz"))


def test_cdc_drop_continues_the_source(tmp_path):
    generate_landing_zone(tmp_path, scale=SCALE, seed=5)
    before_seq = max(int(r[-1]) for _, _, r in _all_records(tmp_path) if r[-1])
    max_ids = defaultdict(int)
    for table, _, rec in _all_records(tmp_path):
        max_ids[table.name] = max(max_ids[table.name], int(rec[2]))
    when = datetime(2024, 12, 11, 0, 5, tzinfo=UTC)
    paths = write_cdc_drop(tmp_path, SCALE, 5, when)
    assert {p.name for p in paths} == {"20241211-000500000.csv"}
    assert {p.parent.name for p in paths} == {"core_order", "core_orderitem", "core_event"}
    seqs = []
    for path in paths:
        table = TABLES_BY_NAME[path.parent.name]
        recs = _records(path)
        assert recs and all(len(r) == 3 + len(table.columns) for r in recs)
        assert all("2024-12-11 00:00" <= r[1] < "2024-12-11 00:05" for r in recs)
        inserted = [int(r[2]) for r in recs if r[0] == "I"]
        assert inserted and min(inserted) > max_ids[table.name]
        assert any(r[0] == "D" for r in recs) or table.name == "core_orderitem"
        seqs += [(int(r[-1]), r[1]) for r in recs]
    assert min(s for s, _ in seqs) > before_seq
    assert all(a[1] <= b[1] for a, b in zip(sorted(seqs), sorted(seqs)[1:]))
    assert any(r[0] == "U" for r in _records(tmp_path / "public/core_order/20241211-000500000.csv"))
    # Items of the new orders point to them; a second drop keeps going.
    orders = {r[2]: r for r in _records(tmp_path / "public/core_order/20241211-000500000.csv")}
    for item in _records(tmp_path / "public/core_orderitem/20241211-000500000.csv"):
        if item[0] == "I":
            assert orders[item[4]][3] == item[3]
    later = write_cdc_drop(tmp_path, SCALE, 5, datetime(2024, 12, 11, 1, 0, tzinfo=UTC))
    assert min(int(r[-1]) for p in later for r in _records(p)) > max(s for s, _ in seqs)
    with pytest.raises(FileExistsError):
        write_cdc_drop(tmp_path, SCALE, 5, when)


def test_cli_prints_the_partition_range(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "--scale", str(SCALE), "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "--partition-range 2024-09-01...2024-12-10" in out
    assert "core_event" in out
    assert main(["--root", str(tmp_path), "--scale", str(SCALE)]) != 0  # not empty any more
    assert main(["--root", str(tmp_path), "--scale", str(SCALE), "--overwrite"]) == 0


def test_small_scale_is_fast(tmp_path):
    started = time.perf_counter()
    generate_landing_zone(tmp_path, scale=SCALE)
    assert time.perf_counter() - started < 3


def test_tiny_scale_still_writes_every_table(tmp_path):
    summary = generate_landing_zone(tmp_path, scale=0.0001, cdc_days=1)
    assert [t.live_rows for t in summary.tables] == [3, 1, 1, 5, 15, 29, 1, 1]
    for table in SOURCE_TABLES:
        assert len(_replay(tmp_path, table)) == summary.table(table.name).live_rows


def test_lakehouse_span_prints_the_span_that_rebuilds_the_zone(landing, capsys, tmp_path):
    """`lakehouse-span` (scripts/run.sh BACKFILL=1): earliest business date ... latest commit."""
    from lakehouse_assets.landing.span import main as span_main

    root, summary = landing
    assert span_main([str(root)]) == 0
    assert capsys.readouterr().out.strip() == summary.partition_range
    assert span_main([str(tmp_path)]) == 1  # nothing landed: says so, and fails
