"""Table hook for the clickstream: sessions that walk the funnel (page view to purchase, errors
anywhere), their `properties` JSON gathered from a cached table of every distinct document,
and one session across each midnight of the CDC. The CDC drop reuses `_funnel` and
`_properties`, so new events look like generated ones.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import polars as pl

from lakehouse_assets.sample_data.generator.context import DAY, HOUR, MIN, NULL, SEC, _Ctx
from lakehouse_assets.sample_data.generator.helpers import (
    EVT,
    _eval,
    _ids_by,
    _json,
    _n_deleted,
    _pick_parent,
    _pick_text,
    _tokens,
)
from lakehouse_assets.sample_data.generator.versions import _Versions
from lakehouse_assets.sources import EVENT_TYPES

DEVICES = ["desktop", "mobile", "tablet"]
REFERRERS = ["google", "direct", "newsletter", "instagram", "partner"]
ERRORS = [
    ("500", "Internal error, please retry"),
    ("502", "Bad gateway"),
    ("404", 'Page "not found"'),
]
EVENT_MIX = {
    "page_view": 0.45,
    "product_view": 0.25,
    "add_to_cart": 0.10,
    "checkout_started": 0.05,
    "purchase": 0.03,
    "signup": 0.04,
    "error": 0.08,
}
# Order of a session's events (errors happen anywhere).
FUNNEL_RANK = {
    "page_view": 0,
    "signup": 1,
    "product_view": 2,
    "add_to_cart": 3,
    "checkout_started": 4,
    "purchase": 5,
}
EVENT_PATHS = {
    "page_view": "/",
    "product_view": "/products/",
    "add_to_cart": "/cart",
    "checkout_started": "/checkout",
    "purchase": "/checkout/complete",
    "signup": "/signup",
    "error": "/api/orders",
}


def _funnel(rng: np.random.Generator, n_events: int, n_sessions: int) -> dict[str, np.ndarray]:
    """Sessions of page views, product views, carts, checkouts, purchases, signups and errors:
    event types in funnel order inside a session, seconds to minutes apart."""
    weight = rng.gamma(1.5, size=n_sessions)
    size = 1 + rng.multinomial(n_events - n_sessions, weight / weight.sum())
    session = np.repeat(np.arange(n_sessions), size)
    first = np.cumsum(size) - size
    gap = rng.exponential(45 * SEC, n_events).astype(np.int64)
    gap[first] = 0
    offset = np.cumsum(gap)
    offset -= np.repeat(offset[first], size)
    mix = np.array([EVENT_MIX[t] for t in EVENT_TYPES])
    etype = rng.choice(len(EVENT_TYPES), n_events, p=mix / mix.sum())
    rank = np.array([FUNNEL_RANK.get(t, 0) for t in EVENT_TYPES])[etype]
    rank = np.where(etype == EVT["error"], rng.integers(0, 6, n_events), rank)
    etype = etype[np.lexsort((rank, session))]  # sessions are contiguous: reorder inside each
    return {
        "session": session,
        "size": size,
        "first": first,
        "offset": offset,
        "type": etype,
        "device": rng.integers(0, len(DEVICES), n_events),
        "referrer": rng.integers(0, len(REFERRERS), n_events),
        "product": rng.integers(1, 1000, n_events),
        "error": rng.integers(0, len(ERRORS), n_events),
    }


@functools.cache
def _property_documents() -> pl.Series:
    """Every distinct event `properties` document, indexed by `_property_key`: a few hundred
    thousand events then cost one gather instead of building each JSON text."""
    grid = np.meshgrid(
        np.arange(len(EVENT_TYPES)),
        np.arange(len(DEVICES)),
        np.arange(len(REFERRERS)),
        np.arange(1000),
        indexing="ij",
    )
    kind_i, device_i, referrer_i, detail = (g.ravel() for g in grid)
    kind = pl.col("type")
    path = (
        pl.when(kind == "product_view")
        .then(pl.concat_str(pl.lit("/products/"), pl.col("detail").cast(pl.String)))
        .otherwise(kind.replace_strict(EVENT_PATHS))
    )
    error = (
        pl.when(kind == "error")
        .then(
            pl.concat_str(
                pl.lit(', "error": {"code": '),
                "code",
                pl.lit(', "message": "'),
                pl.col("message").str.replace_all('"', '\\"', literal=True),
                pl.lit('"}'),
            )
        )
        .otherwise(pl.lit(""))
    )
    base = _json(
        ("path", path, True),
        ("device", pl.col("device"), True),
        ("referrer", pl.col("referrer"), True),
    )
    error_i = detail % len(ERRORS)
    return _eval(
        pl.concat_str(base.str.strip_suffix("}"), error, pl.lit("}")),
        type=_pick_text(list(EVENT_TYPES), kind_i),
        detail=detail,
        device=_pick_text(DEVICES, device_i),
        referrer=_pick_text(REFERRERS, referrer_i),
        code=_pick_text([c for c, _ in ERRORS], error_i),
        message=_pick_text([m for _, m in ERRORS], error_i),
    )


def _properties(f: dict[str, np.ndarray], r: np.ndarray) -> pl.Series:
    kind = f["type"][r]
    detail = np.where(
        kind == EVT["product_view"],
        f["product"][r],
        np.where(kind == EVT["error"], f["error"][r], 0),
    )
    key = ((kind * len(DEVICES) + f["device"][r]) * len(REFERRERS) + f["referrer"][r]) * 1000
    return _property_documents().gather(key + detail)


def _night_owls(ctx: _Ctx, f: dict[str, np.ndarray], occurred: np.ndarray) -> None:
    """Move one session across each midnight of the CDC (its first event before, the second
    after), so that some CDC files hold changes of two dates."""
    midnights = ctx.load0 + DAY * np.arange(1, (ctx.cdc_end - ctx.load0) // DAY)
    multi = np.flatnonzero(f["size"] >= 2)
    owls = ctx.rng.choice(multi, min(len(midnights), len(multi)), replace=False)
    start = np.full(len(f["size"]), NULL)
    start[owls] = midnights[: len(owls)] - f["offset"][f["first"][owls] + 1] // 2
    owl = start[f["session"]] != NULL
    occurred[owl] = start[f["session"]][owl] + f["offset"][owl]


def _events(ctx: _Ctx) -> _Versions:
    rng = ctx.rng
    live = ctx.count("core_event")
    n = live + _n_deleted(live, 0.003)
    n_sessions = max(1, n // 4)
    f = _funnel(rng, n, n_sessions)
    customers = ctx.shared["customers"]
    start = ctx.times(n_sessions)
    known = rng.random(n_sessions) >= 0.2  # the rest browse anonymously
    who = _pick_parent(rng, customers["born"], start)
    start = np.where(known, np.maximum(start, customers["born"][who] + MIN), start)
    anonymous_tenant = customers["tenant"][rng.integers(0, len(customers["id"]), n_sessions)]
    tenant = np.where(known, customers["tenant"][who], anonymous_tenant)
    customer = np.where(known, customers["id"][who], NULL)
    occurred = ctx.settle(np.minimum(start[f["session"]] + f["offset"], ctx.cdc_end - 2 * SEC))
    _night_owls(ctx, f, occurred)
    times = occurred[:, None]
    ids = _ids_by(occurred)
    deleted = np.full(n, NULL)
    candidates = np.flatnonzero(occurred < ctx.cdc_end - HOUR)
    doomed = rng.choice(candidates, min(n - live, len(candidates)), replace=False)
    deleted[doomed] = ctx.after(np.maximum(occurred[doomed] + MIN, ctx.cdc_start))
    session_key = _tokens(rng, n_sessions)

    def rows(r: np.ndarray, v: np.ndarray) -> dict[str, Any]:
        s = f["session"][r]
        return {
            "id": ids[r],
            "tenant_id": tenant[s] + 1,
            "customer_id": customer[s],
            "session_id": session_key.gather(s),
            "event_type": _pick_text(list(EVENT_TYPES), f["type"][r]),
            "properties": _properties(f, r),
            "occurred_at": times[r, 0],
        }

    return _Versions(times, rows, deleted=deleted)
