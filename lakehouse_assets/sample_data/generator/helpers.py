"""Vectorized helpers the table hooks and the CDC drop share: random picks of rows and parents,
sequence-like ids, (status, time) version arrays, and polars text columns built without a
Python loop over rows. `ORDER`, `SUB`, `INV` and `EVT` map the value tuples of
`lakehouse_assets.sources` to the codes the hooks keep in numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from lakehouse_assets.sample_data.generator.context import NULL
from lakehouse_assets.sources import (
    EVENT_TYPES,
    INVOICE_STATUSES,
    ORDER_STATUSES,
    SUBSCRIPTION_STATUSES,
)


def _codes(values: tuple[str, ...]) -> dict[str, int]:
    return {v: i for i, v in enumerate(values)}


ORDER = _codes(ORDER_STATUSES)
SUB = _codes(SUBSCRIPTION_STATUSES)
INV = _codes(INVOICE_STATUSES)
EVT = _codes(EVENT_TYPES)


def _pick(rng: np.random.Generator, n: int, rate: float, at_least: int = 0) -> np.ndarray:
    """Sorted random indices of about `rate` of n rows."""
    k = min(n, max(at_least, round(rate * n)))
    return np.sort(rng.choice(n, k, replace=False))


def _n_deleted(live: int, rate: float) -> int:
    return max(1, round(rate * live)) if live >= 10 else 0


def _ids_by(*keys: np.ndarray) -> np.ndarray:
    """Ids 1..n in the order of `keys` (the first is the primary sort key), like a sequence."""
    order = np.lexsort(keys[::-1])
    ids = np.empty(len(order), np.int64)
    ids[order] = np.arange(1, len(order) + 1)
    return ids


def _pick_parent(rng, parent_born, child_born, parent_group=None, child_group=None):
    """For each child, a random parent born before it, in the child's group when given (a
    customer for an order, a product of the order's tenant). A child older than every parent
    of its group gets the group's oldest one; a group without parents, any parent."""
    m, n = len(parent_born), len(child_born)
    pg = np.zeros(m, np.int64) if parent_group is None else np.asarray(parent_group, np.int64)
    cg = np.zeros(n, np.int64) if child_group is None else np.asarray(child_group, np.int64)
    base = min(parent_born.min(), child_born.min())
    span = max(parent_born.max(), child_born.max()) - base + 1
    order = np.lexsort((parent_born, pg))
    keys = pg[order] * span + (parent_born[order] - base)
    lo = np.searchsorted(keys, cg * span, "left")
    end = np.searchsorted(keys, (cg + 1) * span, "left")
    hi = np.searchsorted(keys, cg * span + (child_born - base), "right")
    hi = np.where(hi > lo, hi, np.minimum(lo + 1, end))
    pos = lo + (rng.random(n) * (hi - lo)).astype(np.int64)
    pos = np.where(end > lo, pos, rng.integers(0, m, n))
    return order[pos]


def _compact(*versions: tuple[Any, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(status code, time) columns, NULL where a row lacks that version, into (n, S) arrays
    sorted by time per row, so absent versions trail."""
    n = len(versions[0][1])
    times = np.stack([t for _, t in versions], 1)
    codes = np.stack([np.broadcast_to(c, n) for c, _ in versions], 1)
    order = np.argsort(times, axis=1, kind="stable")
    return np.take_along_axis(codes, order, 1), np.take_along_axis(times, order, 1)


def _later(prev: np.ndarray, when: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """prev + delta where `when` and prev exists, else NULL."""
    return np.where(when & (prev != NULL), prev + delta, NULL)


def _tokens(rng: np.random.Generator, n: int, width: int = 32) -> pl.Series:
    """Django-style session keys."""
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", np.uint8)
    chars = np.ascontiguousarray(alphabet[rng.integers(0, 36, (n, width))])
    return pl.Series(chars.view(f"S{width}").ravel().astype(f"U{width}"))


def _json(*fields: tuple[str, Any, bool]) -> pl.Expr:
    """A JSON object from (key, value expression or literal text, quoted) triples."""
    parts: list[pl.Expr] = []
    for i, (key, value, quoted) in enumerate(fields):
        q = '"' if quoted else ""
        parts.append(pl.lit(("{" if i == 0 else ", ") + f'"{key}": {q}'))
        parts.append(value.cast(pl.String) if isinstance(value, pl.Expr) else pl.lit(value))
        if q:
            parts.append(pl.lit(q))
    return pl.concat_str([*parts, pl.lit("}")])


def _eval(expr: pl.Expr, **columns: Any) -> pl.Series:
    return pl.DataFrame(columns).select(expr).to_series()


def _pick_text(values: list[str], idx: np.ndarray) -> pl.Series:
    """values[idx] as a polars column (gathering from a small Series beats numpy strings)."""
    return pl.Series(values, dtype=pl.String).gather(idx)
