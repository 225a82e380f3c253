"""The clock and the context of one generation: time units, `NULL`, the live rows each table
ends with, and the timeline (`_Ctx`) every table hook draws its times from.

Times are int64 microseconds since the epoch and `NULL` (the int64 maximum) stands for SQL
NULL and for "this version never happens"; every other module uses these, so they sit at the
bottom of the package and import nothing from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

SEC = 1_000_000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR
NULL = np.iinfo(np.int64).max
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Live rows of the source after the CDC, at scale 1.
LIVE_ROWS = {
    "core_tenant": 8,
    "core_customer": 6_400,
    "core_product": 800,
    "core_order": 47_750,
    "core_orderitem": 153_600,
    "core_event": 293_339,
    "core_subscription": 1_920,
    "core_invoice": 10_000,
}
LOAD_MINUTES = 4  # the full load of all tables; CDC starts after it, so no change races the load

# Traffic by hour of day (UTC): quiet at night, but never silent, so files span midnight.
HOURLY = np.array(
    [3, 2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 5, 6, 6.5, 7, 7, 7, 7, 7.5, 8, 8, 7.5, 7, 6, 5, 4], float
)
HOURLY /= HOURLY.sum()


def expected_live_rows(table: str, scale: float) -> int:
    """Live rows of `table` after the CDC at `scale` (tenants at least 3, others at least 1)."""
    return max(3 if table == "core_tenant" else 1, round(LIVE_ROWS[table] * scale))


@dataclass
class _Ctx:
    rng: np.random.Generator
    scale: float
    hist_start: int  # first business time of the full load
    load0: int  # the full load starts
    cdc_start: int  # the full load is done
    cdc_end: int  # exclusive end of the CDC period
    shared: dict[str, dict[str, Any]] = field(default_factory=dict)  # arrays later hooks need

    def count(self, table: str) -> int:
        return expected_live_rows(table, self.scale)

    def times(self, n: int) -> np.ndarray:
        """Business times over history and CDC: growing, fewer on weekends and at night."""
        days = (self.cdc_end - self.hist_start) // DAY
        d = np.arange(days)
        weekday = (self.hist_start // DAY + d + 3) % 7  # 1970-01-01 was a Thursday
        w = (1 + 0.5 * d / max(days - 1, 1)) * np.where(weekday >= 5, 0.8, 1.0)
        day = self.rng.choice(days, n, p=w / w.sum())
        hour = self.rng.choice(24, n, p=HOURLY)
        t = self.hist_start + day * DAY + hour * HOUR + self.rng.integers(0, HOUR, n)
        return np.clip(t, self.hist_start + HOUR, self.cdc_end - 2 * SEC)

    def after(self, lo: np.ndarray, hi: int | np.ndarray | None = None, power: float = 1.0):
        """A random time in [lo, hi] (hi: the end of the CDC), skewed to lo by `power` > 1."""
        hi = self.cdc_end - 2 * SEC if hi is None else hi
        span = np.maximum(np.asarray(hi) - lo, 0)
        return lo + (self.rng.random(len(lo)) ** power * span).astype(np.int64)

    def settle(self, t: np.ndarray) -> np.ndarray:
        """Squeeze [load start, CDC end) into [CDC start, CDC end), keeping the order of
        times: nothing commits while the full load runs."""
        t = np.asarray(t, np.int64)
        inside = (t >= self.load0) & (t < self.cdc_end)
        ratio = (self.cdc_end - self.cdc_start) / (self.cdc_end - self.load0)
        moved = self.cdc_start + ((t - self.load0) * ratio).astype(np.int64)
        return np.where(inside, moved, t)


def _us(d: date | datetime) -> int:
    if not isinstance(d, datetime):
        d = datetime(d.year, d.month, d.day, tzinfo=UTC)
    elif d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return (d - EPOCH) // timedelta(microseconds=1)


def _date(us: int) -> date:
    return (EPOCH + timedelta(microseconds=int(us))).date()
