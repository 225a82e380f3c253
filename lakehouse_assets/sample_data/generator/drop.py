"""`write_cdc_drop`: one more CDC file per affected table (orders, items, events) on a zone that
has landed. What exists is read back from the landed files, not regenerated, so a drop
continues ids and `_dms_seq` from whatever is there, generated or dropped before.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lakehouse_assets.landing.files import CDC_NAME
from lakehouse_assets.sample_data.generator.context import MIN, NULL, SEC, _us, expected_live_rows
from lakehouse_assets.sample_data.generator.events import _funnel, _properties
from lakehouse_assets.sample_data.generator.helpers import _pick_parent, _pick_text, _tokens
from lakehouse_assets.sample_data.generator.records import (
    _csv_frame,
    _seq_text,
    _text_expr,
    _ts_text,
)
from lakehouse_assets.sample_data.generator.versions import _frame, _number_changes
from lakehouse_assets.sample_data.generator.writer import _cdc_name, _landing_files, _write
from lakehouse_assets.sources import EVENT_TYPES, SOURCE_TABLES, TABLES_BY_NAME, SourceTable

_NEXT_STATUS = {"pending": "paid", "paid": "shipped", "shipped": "delivered"}


def _read_records(paths: list[Path], table: SourceTable) -> pl.DataFrame:
    """Records of landing files as text: _op, _commit, the table's columns, _seq."""
    names = ["_op", "_commit", *table.column_names, "_seq"]
    frames = []
    for path in paths:
        data = path.read_bytes()
        data = gzip.decompress(data) if path.name.endswith(".gz") else data
        if data.strip():
            frames.append(
                pl.read_csv(
                    io.BytesIO(data), has_header=False, new_columns=names, infer_schema=False
                )
            )
    empty = pl.DataFrame(schema={n: pl.String for n in names})
    return pl.concat([empty, *frames])


def _recent(root: Path, table: SourceTable) -> pl.DataFrame:
    """The latest version of each key changed in the last day of files (all files when those
    hold no insert: the newest insert has the highest id)."""
    files = _landing_files(root / table.landing_folder)
    cdc = [p for p in files if CDC_NAME.match(p.name)]
    if cdc:
        newest = datetime.strptime(cdc[-1].name[:18], "%Y%m%d-%H%M%S%f").replace(tzinfo=UTC)
        cutoff = _cdc_name(_us(newest - timedelta(days=1)) // 1000)
        recs = _read_records([p for p in cdc if p.name >= cutoff], table)
        if (recs["_op"] == "I").any():
            return recs.group_by(table.primary_key, maintain_order=True).last()
    return _read_records(files, table).group_by(table.primary_key, maintain_order=True).last()


def _max_seq(root: Path) -> int:
    """The highest _dms_seq landed: each table's newest file holds its newest changes."""
    best = 0
    for table in SOURCE_TABLES:
        files = _landing_files(root / table.landing_folder)
        seqs = (
            _read_records(files[-1:], table)["_seq"].drop_nulls()
            if files
            else pl.Series([], dtype=pl.String)
        )
        seqs = seqs.filter(seqs.str.contains(r"^[0-9]+$"))
        if len(seqs):
            best = max(best, int(seqs.str.zfill(40).max()))
    return best


@dataclass
class _Drop:
    """The changes of one incremental drop, table by table, as CSV text columns."""

    rng: np.random.Generator
    when: int  # µs; every change commits in the 5 minutes before it
    scale: float
    fraction: float
    changes: dict[str, list[pl.DataFrame]] = field(default_factory=dict)

    def commits(self, n: int) -> np.ndarray:
        return np.sort(self.rng.integers(self.when - 5 * MIN, self.when - 2 * SEC, n))

    def size(self, table: str) -> int:
        return max(1, round(self.fraction * expected_live_rows(table, self.scale)))

    def add(self, table: SourceTable, frame: pl.DataFrame, op: str, ts: np.ndarray, sub: Any = 0):
        self.changes.setdefault(table.name, []).append(
            frame.with_columns(
                _op=pl.lit(op),
                _ts=pl.Series(ts, dtype=pl.Int64),
                _sub=pl.Series(np.broadcast_to(np.asarray(sub, np.int64), len(ts))),
            )
        )

    def insert(self, table: SourceTable, values: dict[str, Any], ts: np.ndarray, sub: Any = 0):
        text = _frame(table, values).select([_text_expr(c) for c in table.columns])
        self.add(table, text, "I", ts, sub)


_ALIVE = pl.col("_op") != "D"


def _drop_order_moves(d: _Drop, orders: pl.DataFrame, items: pl.DataFrame) -> None:
    """Recent orders move one status on; one pending order is deleted with its items."""
    order_t, item_t = TABLES_BY_NAME["core_order"], TABLES_BY_NAME["core_orderitem"]
    movable = orders.filter(_ALIVE & pl.col("status").is_in(list(_NEXT_STATUS))).sort(
        pl.col("id").cast(pl.Int64)
    )
    chosen = np.zeros(movable.height, bool)
    chosen[
        d.rng.choice(movable.height, min(movable.height, d.size("core_order")), replace=False)
    ] = True
    ts = d.commits(int(chosen.sum()))
    moved = movable.filter(pl.Series(chosen)).with_columns(
        status=pl.col("status").replace_strict(_NEXT_STATUS),
        updated_at=_ts_text(pl.lit(pl.Series(ts - 1_000))),
    )
    d.add(order_t, moved.select(order_t.column_names), "U", ts)
    rest = movable.filter(~pl.Series(chosen))
    pending = rest.filter(pl.col("status") == "pending")
    rest = pending if pending.height else rest
    if rest.height:
        victim = rest["id"][int(d.rng.integers(rest.height))]
        ts = d.commits(1)
        doomed = items.filter(_ALIVE & (pl.col("order_id") == victim)).sort(
            pl.col("id").cast(pl.Int64)
        )
        d.add(
            item_t, doomed.select("id"), "D", np.repeat(ts, doomed.height), np.arange(doomed.height)
        )
        d.add(order_t, pl.DataFrame({"id": [victim]}), "D", ts, 1_000_000)  # after its items


def _drop_new_orders(d: _Drop, orders: pl.DataFrame, items: pl.DataFrame) -> None:
    """New pending orders of recent buyers, with items of products their tenant sold lately,
    each order inserted with its items in one transaction."""
    order_t, item_t = TABLES_BY_NAME["core_order"], TABLES_BY_NAME["core_orderitem"]
    products = (
        items.filter(_ALIVE)
        .select(
            pl.col("tenant_id", "product_id").cast(pl.Int64), pl.col("unit_price").cast(pl.Float64)
        )
        .drop_nulls()
        .unique("product_id", keep="last", maintain_order=True)
    )
    buyers = (
        orders.filter(_ALIVE)
        .select(pl.col("tenant_id", "customer_id").cast(pl.Int64, strict=False), "currency")
        .drop_nulls()
        .unique(maintain_order=True)
    )
    sellers = buyers.filter(pl.col("tenant_id").is_in(products["tenant_id"].implode()))
    buyers = sellers if sellers.height else buyers
    n = d.size("core_order")
    ts = d.commits(n)
    buyer = buyers[d.rng.integers(0, buyers.height, n)]
    per_order = 1 + d.rng.poisson(2.2, n)
    of = np.repeat(np.arange(n), per_order)
    k = np.arange(len(of)) - np.repeat(np.cumsum(per_order) - per_order, per_order)
    tenant = buyer["tenant_id"].to_numpy()
    p = _pick_parent(
        d.rng,
        np.zeros(products.height, np.int64),
        np.ones(len(of), np.int64),
        products["tenant_id"].to_numpy(),
        tenant[of],
    )
    price = np.round(products["unit_price"].to_numpy()[p] * 100).astype(np.int64)
    quantity = np.minimum(d.rng.geometric(0.55, len(of)), 8)
    ids = orders["id"].cast(pl.Int64).max() + 1 + np.arange(n)
    created = ts - d.rng.integers(1_000, 50_000, n)
    d.insert(
        order_t,
        {
            "id": ids,
            "tenant_id": tenant,
            "customer_id": buyer["customer_id"],
            "status": np.full(n, "pending"),
            "currency": buyer["currency"],
            "total_amount": np.bincount(of, quantity * price, n).round().astype(np.int64),
            "created_at": created,
            "updated_at": created,
        },
        ts,
    )
    d.insert(
        item_t,
        {
            "id": items["id"].cast(pl.Int64).max() + 1 + np.arange(len(of)),
            "tenant_id": tenant[of],
            "order_id": ids[of],
            "product_id": products["product_id"].to_numpy()[p],
            "quantity": quantity,
            "unit_price": price,
            "created_at": created[of],
            "updated_at": created[of],
        },
        ts[of],
        1 + k,
    )


def _drop_events(d: _Drop, events: pl.DataFrame) -> None:
    """New sessions of recent visitors' tenants (and customers); one recent event deleted."""
    event_t = TABLES_BY_NAME["core_event"]
    n = d.size("core_event")
    f = _funnel(d.rng, n, max(1, n // 4))
    visitors = (
        events.filter(_ALIVE)
        .select(pl.col("tenant_id", "customer_id").cast(pl.Int64, strict=False))
        .filter(pl.col("tenant_id").is_not_null())
    )
    visitor = visitors[d.rng.integers(0, visitors.height, len(f["size"]))]
    ts = d.commits(n)
    r = np.arange(n)
    d.insert(
        event_t,
        {
            "id": events["id"].cast(pl.Int64).max() + 1 + r,
            "tenant_id": visitor["tenant_id"].gather(f["session"]),
            "customer_id": visitor["customer_id"].gather(f["session"]).fill_null(NULL),
            "session_id": _tokens(d.rng, len(f["size"])).gather(f["session"]),
            "event_type": _pick_text(list(EVENT_TYPES), f["type"]),
            "properties": _properties(f, r),
            "occurred_at": ts - 500,
        },
        ts,
    )
    ids = events.filter(_ALIVE)["id"].sort()
    d.add(event_t, pl.DataFrame({"id": [ids[int(d.rng.integers(len(ids)))]]}), "D", d.commits(1))


def write_cdc_drop(
    root: str | Path, scale: float, seed: int, when: datetime, fraction: float = 0.01
) -> list[Path]:
    """Land one more CDC file per affected table (orders, items, events), named by `when`,
    with about `fraction` of the source's rows changing in the minutes before `when`: status
    updates of recent orders, new orders with their items, new events, a deleted order (with
    its items) and a deleted event. What exists is read from the landed files (the last day
    of them); ids continue from there and every `_dms_seq` is above the highest landed one.
    Returns the written paths."""
    root = Path(root)
    when_us = _us(when)
    name = f"{_cdc_name(when_us // 1000)}.csv"
    order_t, item_t, event_t = (
        TABLES_BY_NAME[n] for n in ("core_order", "core_orderitem", "core_event")
    )
    for table in (order_t, item_t, event_t):
        if (root / table.landing_folder / name).exists():
            raise FileExistsError(f"{table.landing_folder}/{name} has landed already")
    orders, items, events = (_recent(root, t) for t in (order_t, item_t, event_t))
    if orders.is_empty() or items.is_empty() or events.is_empty():
        raise ValueError(f"{root} holds no orders, items or events: generate it first")
    d = _Drop(np.random.default_rng([seed, when_us // 1000]), when_us, scale, fraction)
    _drop_order_moves(d, orders, items)
    _drop_new_orders(d, orders, items)
    _drop_events(d, events)
    return _land_drop(root, name, d.changes, _max_seq(root))


def _land_drop(
    root: Path, name: str, changes: dict[str, list[pl.DataFrame]], max_seq: int
) -> list[Path]:
    """Number the drop's changes in commit order above `max_seq` and write one file per table."""
    frames = {t: pl.concat(fs, how="diagonal") for t, fs in changes.items()}
    numbered = dict(zip(frames, _number_changes(list(frames.values()))))
    prefix, counter = divmod(max_seq, 10**21)
    if counter > 10**18:  # keep the counter in int64: move to the next prefix instead
        prefix, counter = prefix + 1, 0
    paths = []
    for table_name, frame in numbered.items():
        table = TABLES_BY_NAME[table_name]
        second = _ts_text(pl.col("_ts"), "%Y%m%d%H%M%S").cast(pl.Int64)
        seq = _seq_text(
            pl.max_horizontal(second, pl.lit(prefix, pl.Int64)).cast(pl.String).str.zfill(14),
            pl.col("_ctr") + counter,
        )
        out = _csv_frame(table, frame.with_columns(_seq=seq))
        paths.append(_write(root / table.landing_folder / name, out, False))
    return paths
