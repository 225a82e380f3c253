"""The incremental path equals a rebuild, whatever the drops: random sequences of CDC drops,
each followed by what the daemon does (a landing-sensor tick, then the run it requests), leave
the warehouse row for row as a full rebuild of the final landing zone. The drops include late
and out-of-order files, re-delivered records, deletes, re-landed files, a file landed half-way
then completed, business-date moves, and changes that reach forward (segments, MRR)."""

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse_assets.landing.span import landing_span
from lakehouse_assets.sources import TABLES_BY_NAME as T
from lakehouse_assets_tests.harness import Lakehouse, assert_same
from lakehouse_assets_tests.landing_builder import record

pytestmark = pytest.mark.pipeline

LOAD_TS = "2024-12-01 00:00:01"
DAYS = ["2024-11-26", "2024-11-27", "2024-11-28", "2024-11-29", "2024-11-30", "2024-12-01"]
STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]


def order(id, day, status="paid", customer=1, amount="10.00"):
    at = f"{day} 10:00:00"
    return {"id": id, "tenant_id": 1 + id % 2, "customer_id": customer, "status": status, "currency": "EUR",
            "total_amount": amount, "created_at": at, "updated_at": at}


def customer(id, day):
    at = f"{day} 09:00:00"
    return {"id": id, "tenant_id": 1 + id % 2, "email": f"c{id}@x.io", "full_name": f"C{id}", "country": "DE",
            "attributes": "{}", "created_at": at, "updated_at": at}


def item(id, order_id, qty, day):
    at = f"{day} 10:00:00"
    return {"id": id, "tenant_id": 1 + order_id % 2, "order_id": order_id, "product_id": 1, "quantity": qty,
            "unit_price": "1.00", "created_at": at, "updated_at": at}


def subscription(id, started, canceled=None, status="active"):
    return {"id": id, "tenant_id": 1, "customer_id": 1, "plan": "pro", "status": status, "mrr": "30.00",
            "started_at": f"{started} 00:00:00", "canceled_at": canceled and f"{canceled} 00:00:00",
            "created_at": "2024-11-26 00:00:00", "updated_at": "2024-11-26 00:00:00"}


def seq(n: int) -> str:
    return str(n).rjust(35, "0")


def write_file(root, table, name, lines):
    folder = root / "public" / table
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(line + "\n" for line in lines))
    return folder / name


def base_zone(root):
    write_file(root, "core_customer", "LOAD00000001.csv",
               [record(T["core_customer"], "I", LOAD_TS, customer(c, DAYS[c % 3])) for c in (1, 2, 3)])
    write_file(root, "core_order", "LOAD00000001.csv",
               [record(T["core_order"], "I", LOAD_TS, order(o, DAYS[o % 5], customer=1 + o % 3)) for o in range(1, 7)])
    write_file(root, "core_orderitem", "LOAD00000001.csv",
               [record(T["core_orderitem"], "I", LOAD_TS, item(i, 1 + i % 6, 1 + i % 3, DAYS[i % 5])) for i in range(1, 9)])
    write_file(root, "core_subscription", "LOAD00000001.csv",
               [record(T["core_subscription"], "I", LOAD_TS, subscription(1, DAYS[1])),
                record(T["core_subscription"], "I", LOAD_TS, subscription(2, DAYS[2], status="trialing"))])


# One drop: (kind, key, day index, status index, commit minute, file name minute).
drops = st.lists(
    st.tuples(
        st.sampled_from(["update", "move", "delete", "insert", "late", "redeliver", "reland", "half",
                         "customer", "cancel"]),
        st.integers(1, 6), st.integers(0, 5), st.integers(0, 5), st.integers(0, 600), st.integers(0, 900),
    ),
    min_size=2, max_size=4,
)


class Drops:
    """Writes drops into a landing zone, keeping sequence numbers and names unique."""

    def __init__(self, root):
        self.root, self.n, self.files = root, 100, []

    def name(self, minute: int) -> str:
        self.n += 1
        return f"202412{2 + minute // 300:02d}-{(minute % 300) // 60:02d}{minute % 60:02d}{self.n:05d}.csv"

    def ts(self, minute: int) -> str:
        return f"2024-12-{2 + minute // 300:02d} {(minute % 300) // 60:02d}:{minute % 60:02d}:00"

    def apply(self, kind, key, day, status, commit, name_minute, lake: Lakehouse):
        t, s = self.ts(commit), seq(self.n * 10)
        o = T["core_order"]
        if kind in ("update", "late"):
            # A late drop: committed before the load's changes, named after them.
            when = "2024-11-30 23:00:00" if kind == "late" else t
            lines = [record(o, "U", when, order(key, DAYS[key % 5], STATUSES[status], 1 + key % 3), s)]
        elif kind == "move":
            lines = [record(o, "U", t, order(key, DAYS[day], STATUSES[status], 1 + key % 3), s)]
        elif kind == "delete":
            lines = [record(o, "D", t, {"id": key}, s)]
        elif kind == "insert":
            new = 10 + self.n
            lines = [record(o, "I", t, order(new, DAYS[day], STATUSES[status], 1 + key % 3, "25.50"), s)]
            self.write("core_orderitem", name_minute, [record(T["core_orderitem"], "I", t, item(new, new, 2, DAYS[day]), s)])
        elif kind == "redeliver" and self.files:
            table, path = self.files[-1]
            return self.write(table, name_minute, path.read_text().splitlines())
        elif kind == "reland" and self.files:
            _, path = self.files[0]
            path.write_bytes(path.read_bytes())  # same name, same bytes, a new modification time
            return
        elif kind == "half":
            lines = [record(o, "U", t, order(key, DAYS[key % 5], STATUSES[status], 1 + key % 3), s),
                     record(o, "U", t, order(1 + key % 6, DAYS[day], STATUSES[(status + 1) % 6]), seq(self.n * 10 + 1))]
            path = self.write("core_order", name_minute, lines)
            text = path.read_text()
            path.write_text(text[: len(text) // 2])  # caught mid-copy by a tick...
            lake.tick_and_run()
            path.write_text(text)  # ...then the copy completes
            return
        elif kind == "customer":
            return self.write("core_customer", name_minute,
                              [record(T["core_customer"], "U", t, customer(1 + key % 3, DAYS[day]), s)])
        elif kind == "cancel":
            return self.write("core_subscription", name_minute,
                              [record(T["core_subscription"], "U", t, subscription(1 + key % 2, DAYS[1], DAYS[day]), s)])
        else:
            return
        self.write("core_order", name_minute, lines)

    def write(self, table, minute, lines):
        path = write_file(self.root, table, self.name(minute), lines)
        self.files.append((table, path))
        return path


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=drops)
def test_drops_then_ticks_and_runs_equal_a_rebuild(tmp_path_factory, sequence):
    root = tmp_path_factory.mktemp("zone")
    landing = root / "landing"
    base_zone(landing)
    lake = Lakehouse(landing, root / "incremental.duckdb")
    lake.tick_and_run()
    writer = Drops(landing)
    for drop in sequence:
        writer.apply(*drop, lake=lake)
        lake.tick_and_run()
    rebuild_root = root / "rebuild"
    shutil.copytree(landing, rebuild_root)
    rebuilt = Lakehouse(rebuild_root, root / "rebuilt.duckdb")
    first, last = landing_span(str(rebuild_root))
    rebuilt.backfill(first.isoformat(), last.isoformat())  # the contract's rebuild: every day, whole
    assert_same(lake.snapshot(), rebuilt.snapshot())
