"""`generate_landing_zone`: the order of work. Each table's hook builds its versions (in
declaration order, so a hook can use what earlier ones shared), the CDC records are numbered
across the source, then the tables are written one at a time, each freed before the next to
keep memory low. A new table needs a hook (next to its group's) registered here in `_HOOKS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from lakehouse_assets.sample_data.generator.accounts import _customers, _products, _tenants
from lakehouse_assets.sample_data.generator.billing import _invoices, _subscriptions
from lakehouse_assets.sample_data.generator.context import DAY, LOAD_MINUTES, MIN, _Ctx, _date, _us
from lakehouse_assets.sample_data.generator.events import _events
from lakehouse_assets.sample_data.generator.orders import _order_items, _orders
from lakehouse_assets.sample_data.generator.summary import GenerationSummary
from lakehouse_assets.sample_data.generator.versions import _number_changes, _split, _Versions
from lakehouse_assets.sample_data.generator.writer import _landing_files, _write_table
from lakehouse_assets.landing.files import LocalLandingStore, newest_name_day
from lakehouse_assets.sources import SOURCE_TABLES

# The values of each table; a table's hook may use what earlier hooks shared (declaration order).
_HOOKS: dict[str, Callable[[_Ctx], _Versions]] = {
    "core_tenant": _tenants,
    "core_customer": _customers,
    "core_product": _products,
    "core_order": _orders,
    "core_orderitem": _order_items,
    "core_event": _events,
    "core_subscription": _subscriptions,
    "core_invoice": _invoices,
}


def _prepare(root: Path, overwrite: bool) -> None:
    """Refuse to mix with existing data; with overwrite, remove only files we would write."""
    for table in SOURCE_TABLES:
        folder = root / table.landing_folder
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            raise FileExistsError(f"{folder} is not empty (use overwrite=True / --overwrite)")
    if overwrite:
        for table in SOURCE_TABLES:
            for path in _landing_files(root / table.landing_folder):
                path.unlink()


def generate_landing_zone(
    root: str | Path,
    scale: float = 1.0,
    seed: int = 42,
    *,
    load_date: date = date(2024, 12, 1),
    cdc_days: int = 10,
    history_days: int = 91,
    dirty_rate: float = 0.001,
    gzip_every: int = 7,
    overwrite: bool = False,
) -> GenerationSummary:
    """Write a DMS landing zone (full load at `load_date`, then `cdc_days` days of CDC) for
    every table of `SOURCE_TABLES` under `root`. Same arguments, same bytes."""
    if scale <= 0 or cdc_days < 1 or history_days < 1 or not 0 <= dirty_rate < 1:
        raise ValueError("need scale > 0, cdc_days >= 1, history_days >= 1, 0 <= dirty_rate < 1")
    started = time.perf_counter()
    root = Path(root)
    _prepare(root, overwrite)
    load0 = _us(load_date)
    ctx = _Ctx(
        np.random.default_rng(seed),
        scale,
        load0 - history_days * DAY,
        load0,
        load0 + LOAD_MINUTES * MIN,
        load0 + cdc_days * DAY,
    )
    built = []
    for table in SOURCE_TABLES:
        hook = _HOOKS.get(table.name)
        if hook is None:
            raise NotImplementedError(f"no sample-data hook for {table.name}: add one to _HOOKS")
        built.append((table, _split(ctx, table, hook(ctx))))
    ctx.shared.clear()
    for (_, parts), cdc in zip(built, _number_changes([p.cdc for _, p in built])):
        parts.cdc = cdc
    summaries, first, last = [], [], []
    for i, (table, parts) in enumerate(built):
        summary, business, commit = _write_table(ctx, root, i, table, parts, dirty_rate, gzip_every)
        built[i] = (table, None)  # free this table's data before the next one
        summaries.append(summary)
        first.append(business)
        last.append(commit)
    return GenerationSummary(
        root,
        scale,
        seed,
        tuple(summaries),
        _date(min(first)),
        _date(max(last)),
        time.perf_counter() - started,
        newest_name_day(LocalLandingStore(str(root)), SOURCE_TABLES),
    )

