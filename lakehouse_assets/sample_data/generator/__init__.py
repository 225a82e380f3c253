"""A realistic AWS DMS landing zone for the source tables (CONTRACT sections 1 and 2).

The source database is simulated as *versions*: every row of every table gets the times at
which it was inserted and updated, and maybe deleted. Versions written before the full load
become the table's LOAD rows (its state at the load); later ones become CDC records, numbered
(`_dms_seq`) in commit order across the whole source. Which columns a table has comes from
`SOURCE_TABLES`; only the values come from the per-table hooks in `_HOOKS`, so a new table
needs a hook and nothing else. Everything is vectorized (numpy / polars): no Python loop
touches a data row, only files.

Times are int64 microseconds since the epoch, money is int64 cents, and `NULL` (the int64
maximum) stands for SQL NULL in those columns and for "this version never happens".
"""

from __future__ import annotations

import functools
import gzip
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lakehouse_assets.landing.files import CDC_NAME, LOAD_NAME
from lakehouse_assets.sample_data.generator.context import (
    DAY,
    EPOCH,
    HOUR,
    LIVE_ROWS,
    LOAD_MINUTES,
    MIN,
    NULL,
    SEC,
    _Ctx,
    _date,
    _us,
    expected_live_rows,
)
from lakehouse_assets.sample_data.generator.helpers import (
    EVT,
    INV,
    ORDER,
    SUB,
    _compact,
    _eval,
    _ids_by,
    _json,
    _later,
    _n_deleted,
    _pick,
    _pick_parent,
    _pick_text,
    _tokens,
)
from lakehouse_assets.sample_data.generator.summary import GenerationSummary, TableSummary
from lakehouse_assets.sample_data.generator.versions import (
    _commit_times,
    _frame,
    _number_changes,
    _Parts,
    _split,
    _Versions,
)
from lakehouse_assets.sources import (
    EVENT_TYPES,
    INVOICE_STATUSES,
    ORDER_STATUSES,
    SOURCE_TABLES,
    SUBSCRIPTION_PLANS,
    SUBSCRIPTION_STATUSES,
    TABLES_BY_NAME,
    TENANT_PLANS,
    Column,
    PgType,
    SourceTable,
)

TS_FORMAT = "%Y-%m-%d %H:%M:%S%.6f"

LOAD_FILE_ROWS = 200_000  # DMS splits a big full load into LOAD00000001, LOAD00000002, ...
CDC_FILE_MINUTES = 120  # about how often DMS closes a CDC file per table


COMPANIES = (
    "Acme, Inc.|Globex|Initech|Umbrella Retail|Stark Supplies|Wayne & Co|Hooli|"
    "Nordwind GmbH|Café Lumière|Blue Harbor Trading"
).split("|")
CURRENCIES = ["USD", "EUR", "GBP"]
TIMEZONES = ["America/New_York", "Europe/Berlin", "Europe/London", "Asia/Tokyo"]
PLAN_FEATURES = ["[]", '["api"]', '["api", "sso"]', '["api", "sso", "audit_log"]']
FIRST = (
    "Anna Ben Chloé David Elif Femi Grace Hiro Ines Jonas Kavya Liam Mia Noah Olga Pedro "
    "Quinn Rosa Sven Tomás Uma Victor Wei Yara Zoe"
).split()
LAST = (
    "Smith García Müller Nguyen O'Brien Rossi Kowalski Dubois Tanaka Silva Johansson "
    "Okafor Novak Haddad Jensen Murphy Costa Schmidt Yilmaz Larsen"
).split()
NICKNAMES = ["Bo", "Kit", "Ace", "Jay"]
DOMAINS = ["example.com", "example.org", "example.net"]
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "BR", "IN", "JP", "CA", "AU"]
COUNTRY_P = np.array([30, 12, 12, 8, 5, 5, 4, 3, 3, 4, 4, 3, 4, 3], float) / 100
SOURCES = ["organic", "ads", "referral", "partner"]
ADJECTIVES = "Classic|Organic|Compact|Deluxe|Eco|Smart|Vintage|Ultra|Handmade|Travel".split("|")
NOUNS = (
    "Mug|Backpack|Desk Lamp|Notebook|Water Bottle|Headphones|T-Shirt|Candle|Skillet|"
    "Yoga Mat|Phone Case|Tea Set"
).split("|")
SPECIAL_NAMES = ['12" Cast Iron Skillet', "Mug, 350 ml", "Gift Box\nLimited Edition"]
CATEGORIES = ["Home", "Kitchen", "Apparel", "Electronics", "Outdoors", "Stationery", "Beauty"]
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
PLAN_PRICE_CENTS = np.array([2_900, 9_900, 49_900])  # basic, pro, enterprise per seat

# Dirty final versions the silver layer must quarantine: (column, bad values as CSV text).
_DIRTY: dict[str, tuple[str, tuple[str | None, ...]]] = {
    "core_customer": ("tenant_id", (None,)),
    "core_product": ("unit_price", ("-5.00",)),
    "core_order": ("status", ("on_hold", "PAID")),
    "core_orderitem": ("quantity", ("0", "-1")),
    "core_event": ("event_type", ("click", "Page_View")),
    "core_subscription": ("status", ("paused",)),
    "core_invoice": ("amount", ("12,50",)),
}


# --------------------------------------------------------------------------- public results


# --------------------------------------------------------------------------- the timeline


# --------------------------------------------------------------------------- versions


# --------------------------------------------------------------------------- table hooks


def _tenants(ctx: _Ctx) -> _Versions:
    rng, n = ctx.rng, ctx.count("core_tenant")
    born = ctx.hist_start + np.sort(rng.integers(0, 20 * MIN, n))
    upgraded = np.full(n, NULL)
    who = _pick(rng, n, 0.25, at_least=1)
    upgraded[who] = ctx.after(np.full(len(who), ctx.cdc_start))
    times = ctx.settle(np.stack([born, upgraded], 1))
    plan = rng.choice(len(TENANT_PLANS) - 1, n, p=[0.3, 0.4, 0.3])  # an upgrade stays allowed
    currency = rng.integers(0, len(CURRENCIES), n)
    timezone = rng.integers(0, len(TIMEZONES), n)
    active = rng.random(n) < 0.9
    i = np.arange(n)
    suffix = np.where(
        i >= len(COMPANIES), np.char.add(" ", (i // len(COMPANIES) + 1).astype(str)), ""
    )
    name = _eval(
        pl.concat_str("base", "suffix"),
        base=_pick_text(COMPANIES, i % len(COMPANIES)),
        suffix=suffix,
    )
    slug = name.str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "-").str.strip_chars("-")
    # Bigger and smaller tenants: the weight of each in customers, products and traffic.
    weight = rng.pareto(1.5, n) + 0.5
    ctx.shared["tenants"] = {"p": weight / weight.sum(), "currency": currency}

    def rows(r: np.ndarray, v: np.ndarray) -> dict[str, Any]:
        p = plan[r] + v  # version 1 is the upgrade
        settings = _json(
            ("currency", pl.col("cur"), True),
            ("timezone", pl.col("tz"), True),
            ("features", pl.col("feat"), False),
        )
        return {
            "id": r + 1,
            "name": name.gather(r),
            "slug": slug.gather(r),
            "plan": _pick_text(list(TENANT_PLANS), p),
            "settings": _eval(
                settings,
                cur=_pick_text(CURRENCIES, currency[r]),
                tz=_pick_text(TIMEZONES, timezone[r]),
                feat=_pick_text(PLAN_FEATURES, p),
            ),
            "is_active": active[r],
            "created_at": times[r, 0],
            "updated_at": times[r, v],
        }

    return _Versions(times, rows)


def _customers(ctx: _Ctx) -> _Versions:
    rng, n = ctx.rng, ctx.count("core_customer")
    tenants = ctx.shared["tenants"]
    born = ctx.times(n)
    tenant = rng.choice(len(tenants["p"]), n, p=tenants["p"])
    first = np.argsort(born, kind="stable")[: len(tenants["p"])]
    tenant[first] = np.arange(len(first))  # every tenant has a customer from day one
    born[first] = ctx.hist_start + 30 * MIN + rng.integers(0, HOUR, len(first))
    updated = np.full(n, NULL)
    who = _pick(rng, n, 0.04, at_least=1)
    updated[who] = ctx.after(np.maximum(born[who] + MIN, ctx.cdc_start))
    times = ctx.settle(np.stack([born, updated], 1))
    ids = _ids_by(times[:, 0])

    fn, ln = rng.integers(0, len(FIRST), n), rng.integers(0, len(LAST), n)
    style = rng.choice(3, n, p=[0.94, 0.05, 0.01])  # "First Last", "Last, First", nickname
    parts = {
        "f": _pick_text(FIRST, fn),
        "l": _pick_text(LAST, ln),
        "nick": _pick_text(NICKNAMES, fn % len(NICKNAMES)),
        "style": style,
    }
    full_name = _eval(
        pl.when(pl.col("style") == 1)
        .then(pl.concat_str("l", pl.lit(", "), "f"))
        .when(pl.col("style") == 2)
        .then(pl.concat_str("f", pl.lit(' "'), "nick", pl.lit('" '), "l"))
        .otherwise(pl.concat_str("f", pl.lit(" "), "l")),
        **parts,
    )
    full_name = full_name.scatter(_pick(rng, n, 0.01, at_least=1), "")  # left blank in a form
    full_name = full_name.scatter(_pick(rng, n, 0.005), None)
    email = _eval(
        pl.concat_str(
            pl.col("f").str.to_lowercase(),
            pl.lit("."),
            pl.col("l").str.to_lowercase().str.replace_all(r"[^a-zà-ÿ]", ""),
            pl.col("id").cast(pl.String),
            pl.lit("@"),
            pl.col("d"),
        ),
        f=parts["f"],
        l=parts["l"],
        id=ids,
        d=_pick_text(DOMAINS, rng.integers(0, 3, n)),
    )
    # A few sign up twice in the same tenant: the silver layer warns about duplicate emails.
    by_tenant = np.lexsort((ids, tenant))
    same = np.flatnonzero(tenant[by_tenant[1:]] == tenant[by_tenant[:-1]]) + 1
    if len(same):
        dup = same[_pick(rng, len(same), 0.003, at_least=1)]
        email = email.scatter(by_tenant[dup], email.gather(by_tenant[dup - 1]))
    country = _pick_text(COUNTRIES, rng.choice(len(COUNTRIES), n, p=COUNTRY_P))
    country = country.scatter(_pick(rng, n, 0.02, at_least=1), None)
    segment = np.where(rng.random(n) < 0.8, "b2c", "b2b")
    newsletter = rng.random(n) < 0.4
    source = rng.integers(0, len(SOURCES), n)
    ctx.shared["customers"] = {"born": times[:, 0], "tenant": tenant, "id": ids}

    def rows(r: np.ndarray, v: np.ndarray) -> dict[str, Any]:
        attributes = _json(
            ("segment", pl.col("seg"), True),
            ("newsletter", pl.col("nl"), False),
            ("source", pl.col("src"), True),
        )
        return {
            "id": ids[r],
            "tenant_id": tenant[r] + 1,
            "email": email.gather(r),
            "full_name": full_name.gather(r),
            "country": country.gather(r),
            "attributes": _eval(
                attributes,
                seg=segment[r],
                nl=newsletter[r] ^ (v == 1),
                src=_pick_text(SOURCES, source[r]),
            ),
            "created_at": times[r, 0],
            "updated_at": times[r, v],
        }

    return _Versions(times, rows)


def _products(ctx: _Ctx) -> _Versions:
    rng, n = ctx.rng, ctx.count("core_product")
    tenants = ctx.shared["tenants"]
    # The catalog is built early; a few products are added during the CDC.
    born = ctx.hist_start + HOUR + (rng.random(n) ** 3 * (ctx.load0 - ctx.hist_start - HOUR))
    born = born.astype(np.int64)
    late = _pick(rng, n, 0.03)
    born[late] = ctx.after(np.full(len(late), ctx.cdc_start))
    tenant = rng.choice(len(tenants["p"]), n, p=tenants["p"])
    first = np.argsort(born, kind="stable")[: len(tenants["p"])]
    tenant[first] = np.arange(len(first))
    born[first] = ctx.hist_start + HOUR + rng.integers(0, HOUR, len(first))
    changed = np.full(n, NULL)
    who = _pick(rng, n, 0.05, at_least=1)
    changed[who] = ctx.after(np.maximum(born[who] + MIN, ctx.cdc_start))
    times = ctx.settle(np.stack([born, changed], 1))
    ids = _ids_by(times[:, 0])

    list_price = np.clip(np.exp(rng.normal(np.log(30), 0.9, n)), 5, 499.5)
    price0 = np.where(
        rng.random(n) < 0.5, np.floor(list_price) * 100 + 99, np.round(list_price * 100)
    ).astype(np.int64)
    price1 = np.clip(np.round(price0 * rng.uniform(0.85, 1.15, n)), 500, 50_000).astype(np.int64)
    price = np.stack([price0, price1], 1)
    active = np.stack([rng.random(n) < 0.95, rng.random(n) < 0.9], 1)
    name = _eval(
        pl.concat_str("a", pl.lit(" "), "b"),
        a=_pick_text(ADJECTIVES, rng.integers(0, len(ADJECTIVES), n)),
        b=_pick_text(NOUNS, rng.integers(0, len(NOUNS), n)),
    )
    special = _pick(rng, n, 0.01, at_least=min(3, n))
    name = name.scatter(special, _pick_text(SPECIAL_NAMES, np.arange(len(special)) % 3))
    category = _pick_text(CATEGORIES, rng.integers(0, len(CATEGORIES), n))
    category = category.scatter(_pick(rng, n, 0.01), "")  # uncategorized
    sku = _eval(
        pl.format(
            "SKU-{}-{}",
            pl.col("t").cast(pl.String).str.zfill(2),
            pl.col("id").cast(pl.String).str.zfill(6),
        ),
        t=tenant + 1,
        id=ids,
    )
    ctx.shared["products"] = {"born": times[:, 0], "tenant": tenant, "id": ids, "price": price0}

    def rows(r: np.ndarray, v: np.ndarray) -> dict[str, Any]:
        return {
            "id": ids[r],
            "tenant_id": tenant[r] + 1,
            "sku": sku.gather(r),
            "name": name.gather(r),
            "category": category.gather(r),
            "unit_price": price[r, v],
            "is_active": active[r, v],
            "created_at": times[r, 0],
            "updated_at": times[r, v],
        }

    return _Versions(times, rows)


def _order_lifecycle(rng: np.random.Generator, born: np.ndarray):
    """pending -> paid -> shipped -> delivered (-> refunded); some cancelled while pending,
    some refunded before shipping, a few stay pending."""
    n = len(born)
    u = rng.random(n)
    cancelled, paid = u < 0.06, u >= 0.09
    shipped = paid & (rng.random(n) < 0.99)
    delivered = shipped & (rng.random(n) < 0.95)
    refunded = delivered & (rng.random(n) < 0.05)
    t1 = np.where(
        cancelled,
        born + rng.integers(10 * MIN, 2 * DAY, n),
        np.where(paid, born + rng.integers(MIN, 30 * MIN, n), NULL),
    )
    t2 = _later(
        t1,
        paid,
        np.where(shipped, rng.integers(6 * HOUR, 3 * DAY, n), rng.integers(HOUR, 2 * DAY, n)),
    )
    t3 = _later(t2, delivered, rng.integers(DAY, 5 * DAY, n))
    t4 = _later(t3, refunded, rng.integers(2 * DAY, 20 * DAY, n))
    return _compact(
        (ORDER["pending"], born),
        (np.where(cancelled, ORDER["cancelled"], ORDER["paid"]), t1),
        (np.where(shipped, ORDER["shipped"], ORDER["refunded"]), t2),
        (ORDER["delivered"], t3),
        (ORDER["refunded"], t4),
    )


def _plan_items(ctx: _Ctx, ids, tenant, born, commit, deleted) -> np.ndarray:
    """The items of each order (for `_order_items`): exactly the target count on live orders,
    a few more on deleted ones, products of the order's tenant. Returns each order's total."""
    rng, products = ctx.rng, ctx.shared["products"]
    n = len(ids)
    alive = deleted == NULL
    n_alive, target = int(alive.sum()), ctx.count("core_orderitem")
    base = 1 if target >= n_alive else 0
    weight = rng.gamma(2.0, size=n_alive)
    per_order = np.zeros(n, np.int64)
    per_order[alive] = base + rng.multinomial(target - base * n_alive, weight / weight.sum())
    per_order[~alive] = 1 + rng.poisson(2.2, n - n_alive)
    of = np.repeat(np.arange(n), per_order)
    k = np.arange(len(of)) - np.repeat(np.cumsum(per_order) - per_order, per_order)
    product = _pick_parent(rng, products["born"], born[of], products["tenant"], tenant[of])
    quantity = np.minimum(rng.geometric(0.55, len(of)), 8)
    unit_price = products["price"][product]
    ctx.shared["order_items"] = {
        "order_id": ids[of],
        "k": k,
        "tenant": tenant[of],
        "product_id": products["id"][product],
        "quantity": quantity,
        "unit_price": unit_price,
        "born": born[of],
        "commit": commit[of],
        "deleted": deleted[of],
    }
    return np.bincount(of, weights=quantity * unit_price, minlength=n).round().astype(np.int64)


def _orders(ctx: _Ctx) -> _Versions:
    """Orders, and the plan of their items (inserted and deleted in the order's transaction)."""
    rng = ctx.rng
    live = ctx.count("core_order")
    n = live + _n_deleted(live, 0.004)
    customers = ctx.shared["customers"]
    born = ctx.times(n)
    buyer = _pick_parent(rng, customers["born"], born)
    born = np.maximum(born, customers["born"][buyer] + MIN)
    tenant = customers["tenant"][buyer]
    status, times = _order_lifecycle(rng, born)
    times = ctx.settle(times)
    commit = _commit_times(rng, times)
    ids = _ids_by(times[:, 0])
    deleted = np.full(n, NULL)
    candidates = np.flatnonzero(times[:, 0] < ctx.cdc_end - DAY)
    doomed = rng.choice(candidates, min(n - live, len(candidates)), replace=False)
    deleted[doomed] = ctx.after(np.maximum(commit[doomed, 0] + MIN, ctx.cdc_start))

    total = _plan_items(ctx, ids, tenant, times[:, 0], commit[:, 0], deleted)
    currency = ctx.shared["tenants"]["currency"]

    def rows(r: np.ndarray, v: np.ndarray) -> dict[str, Any]:
        return {
            "id": ids[r],
            "tenant_id": tenant[r] + 1,
            "customer_id": customers["id"][buyer[r]],
            "status": _pick_text(list(ORDER_STATUSES), status[r, v]),
            "currency": _pick_text(CURRENCIES, currency[tenant[r]]),
            "total_amount": total[r],
            "created_at": times[r, 0],
            "updated_at": times[r, v],
        }

    # Django deletes the items first, then the order: the order's delete goes last.
    return _Versions(times, rows, commit=commit, deleted=deleted, delete_sub=1_000_000)


def _order_items(ctx: _Ctx) -> _Versions:
    it = ctx.shared["order_items"]
    ids = _ids_by(it["order_id"], it["k"])
    times = it["born"][:, None]

    def rows(r: np.ndarray, v: np.ndarray) -> dict[str, Any]:
        return {
            "id": ids[r],
            "tenant_id": it["tenant"][r] + 1,
            "order_id": it["order_id"][r],
            "product_id": it["product_id"][r],
            "quantity": it["quantity"][r],
            "unit_price": it["unit_price"][r],
            "created_at": times[r, 0],
            "updated_at": times[r, 0],
        }

    # Inserted right after their order, in its transaction; deleted with it (cascade).
    return _Versions(
        times,
        rows,
        commit=it["commit"][:, None],
        sub=1 + it["k"],
        deleted=it["deleted"],
        delete_sub=it["k"],
    )


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


def _subscriptions(ctx: _Ctx) -> _Versions:
    """trialing -> active (or canceled at the trial's end); some past_due, then active again
    or canceled; some canceled later."""
    rng, n = ctx.rng, ctx.count("core_subscription")
    customers = ctx.shared["customers"]
    m = len(customers["id"])
    who = rng.choice(m, n, replace=n > m)
    born = ctx.after(customers["born"][who] + MIN, power=2)  # mostly soon after signing up
    trial = rng.random(n) < 0.6
    start = np.where(trial, born + 14 * DAY, born)
    abandoned = trial & (rng.random(n) < 0.2)
    late = ~abandoned & (rng.random(n) < 0.12)
    recovered = late & (rng.random(n) < 0.5)
    quit_ = ~abandoned & ~late & (rng.random(n) < 0.15)
    due = start + rng.integers(20, 40, n) * DAY
    settle_after_due = (
        due + np.where(recovered, rng.integers(1, 5, n), rng.integers(3, 10, n)) * DAY
    )
    status, times = _compact(
        (np.where(trial, SUB["trialing"], SUB["active"]), born),
        (np.where(abandoned, SUB["canceled"], SUB["active"]), np.where(trial, start, NULL)),
        (SUB["past_due"], np.where(late, due, NULL)),
        (
            np.where(recovered, SUB["active"], SUB["canceled"]),
            np.where(late, settle_after_due, NULL),
        ),
        (SUB["canceled"], np.where(quit_, start + rng.integers(5, 60, n) * DAY, NULL)),
    )
    times, start = ctx.settle(times), ctx.settle(start)
    ids = _ids_by(times[:, 0])
    plan = rng.choice(len(SUBSCRIPTION_PLANS), n, p=[0.55, 0.35, 0.10])
    seats = np.where(plan == 2, rng.integers(1, 6, n), 1)
    mrr = PLAN_PRICE_CENTS[plan] * seats * np.where(rng.random(n) < 0.2, 80, 100) // 100
    tenant, customer = customers["tenant"][who], customers["id"][who]
    ctx.shared["subscriptions"] = {
        "id": ids,
        "born": times[:, 0],
        "start": start,
        "mrr": mrr,
        "tenant": tenant,
        "customer": customer,
    }

    def rows(r: np.ndarray, v: np.ndarray) -> dict[str, Any]:
        st, t = status[r, v], times[r, v]
        return {
            "id": ids[r],
            "tenant_id": tenant[r] + 1,
            "customer_id": customer[r],
            "plan": _pick_text(list(SUBSCRIPTION_PLANS), plan[r]),
            "status": _pick_text(list(SUBSCRIPTION_STATUSES), st),
            "mrr": mrr[r],
            "started_at": start[r],
            "canceled_at": np.where(st == SUB["canceled"], t, NULL),
            "created_at": times[r, 0],
            "updated_at": t,
        }

    return _Versions(times, rows)


def _invoices(ctx: _Ctx) -> _Versions:
    """(draft ->) open -> paid with paid_at, or void, or uncollectible after the due date."""
    rng, n = ctx.rng, ctx.count("core_invoice")
    subs = ctx.shared["subscriptions"]
    # Paying subscriptions are invoiced: pick one that had started by then.
    born = ctx.times(n)
    sub = _pick_parent(rng, subs["start"], born)
    born = np.maximum(born, subs["start"][sub] + MIN)
    draft = rng.random(n) < 0.25
    issued = np.where(draft, born + rng.integers(10 * MIN, 2 * HOUR, n), born)
    due = issued + np.where(rng.random(n) < 0.7, 14, 30) * DAY
    u = rng.random(n)
    paid_at = issued + MIN + np.minimum(rng.exponential(4 * DAY, n).astype(np.int64), 25 * DAY)
    end = np.select(
        [u < 0.75, u < 0.79, u < 0.82],
        [paid_at, issued + rng.integers(1, 10, n) * DAY, due + 15 * DAY],
        NULL,
    )
    end_status = np.select([u < 0.75, u < 0.79], [INV["paid"], INV["void"]], INV["uncollectible"])
    status, times = _compact(
        (np.where(draft, INV["draft"], INV["open"]), born),
        (INV["open"], np.where(draft, issued, NULL)),
        (end_status, end),
    )
    times, issued, due = ctx.settle(times), ctx.settle(issued), ctx.settle(due)
    ids = _ids_by(times[:, 0])
    # The plan's price; some invoices add usage on top.
    amount = subs["mrr"][sub]
    amount = amount + np.where(rng.random(n) < 0.15, amount * rng.uniform(0, 0.5, n), 0).astype(
        np.int64
    )

    def rows(r: np.ndarray, v: np.ndarray) -> dict[str, Any]:
        st, t = status[r, v], times[r, v]
        drafted = st == INV["draft"]
        return {
            "id": ids[r],
            "tenant_id": subs["tenant"][sub[r]] + 1,
            "customer_id": subs["customer"][sub[r]],
            "subscription_id": subs["id"][sub[r]],
            "amount": amount[r],
            "status": _pick_text(list(INVOICE_STATUSES), st),
            "issued_at": np.where(drafted, NULL, issued[r]),
            "due_at": np.where(drafted, NULL, due[r]),
            "paid_at": np.where(st == INV["paid"], t, NULL),
            "created_at": times[r, 0],
            "updated_at": t,
        }

    return _Versions(times, rows)


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


# --------------------------------------------------------------------------- CSV text


def _ts_text(expr: pl.Expr, fmt: str = TS_FORMAT) -> pl.Expr:
    return pl.from_epoch(expr, time_unit="us").dt.strftime(fmt)


def _text_expr(col: Column) -> pl.Expr:
    """A typed column as its DMS CSV text; NULL stays NULL."""
    c = pl.col(col.name)
    if col.type in (PgType.BIGINT, PgType.INTEGER):
        return pl.when(c != NULL).then(c.cast(pl.String)).alias(col.name)
    if col.type == PgType.NUMERIC:  # cents -> 123.45
        a = c.abs()
        sign = pl.when(c < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        text = pl.concat_str(
            sign, (a // 100).cast(pl.String), pl.lit("."), (a % 100).cast(pl.String).str.zfill(2)
        )
        return pl.when(c != NULL).then(text).alias(col.name)
    if col.type == PgType.TIMESTAMPTZ:
        return _ts_text(pl.when(c != NULL).then(c)).alias(col.name)
    return c.cast(pl.String)  # text, jsonb, boolean (true/false)


def _seq_text(prefix: pl.Expr, counter: pl.Expr) -> pl.Expr:
    """$AR_H_CHANGE_SEQ: 14 digits of commit second and a 21-digit change counter."""
    return pl.concat_str(prefix, counter.cast(pl.String).str.zfill(21))


# _dms_seq of a numbered CDC record; empty in LOAD rows.
_SEQ = pl.when(pl.col("_ctr") > 0).then(
    _seq_text(_ts_text(pl.col("_ts"), "%Y%m%d%H%M%S"), pl.col("_ctr"))
)


def _csv_frame(table: SourceTable, text: pl.DataFrame) -> pl.DataFrame:
    """Op, commit time, the table's columns, seq: the DMS record layout (CONTRACT section 2)."""
    return text.select(
        pl.col("_op").alias("Op"),
        _ts_text(pl.col("_ts")).alias("_dms_commit_ts"),
        *table.column_names,
        pl.col("_seq").alias("_dms_seq"),
    )


def _write(path: Path, frame: pl.DataFrame, gz: bool) -> Path:
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False, quote_style="necessary")
    data = buf.getvalue()
    path.write_bytes(
        gzip.compress(data, compresslevel=6, mtime=0) if gz else data
    )  # mtime=0: reproducible
    return path


def _cdc_name(ms: int) -> str:
    """YYYYMMDD-HHMMSSmmm of a time in milliseconds."""
    t = EPOCH + timedelta(milliseconds=int(ms))
    return t.strftime("%Y%m%d-%H%M%S") + f"{t.microsecond // 1000:03d}"


def _dirty_rows(
    rng: np.random.Generator, table: SourceTable, recs: pl.DataFrame, rate: float
) -> np.ndarray:
    """About `rate` of the live rows, by the record holding their final version (records are
    in change order: the LOAD rows, then the CDC records by seq)."""
    if table.name not in _DIRTY or rate <= 0 or recs.is_empty():
        return np.zeros(0, np.int64)
    key = (
        pl.struct(table.primary_key) if len(table.primary_key) > 1 else pl.col(table.primary_key[0])
    )
    final = recs.select(key.is_last_distinct() & (pl.col("_op") != "D")).to_series()
    rows = np.flatnonzero(final.to_numpy())
    if len(rows) == 0:
        return rows
    return np.sort(rng.choice(rows, min(len(rows), max(1, round(rate * len(rows)))), replace=False))


def _bad_values(rng: np.random.Generator, table: SourceTable, n: int) -> pl.Series:
    column, bad = _DIRTY.get(table.name, ("", (None,)))
    return pl.Series(column, bad, dtype=pl.String).gather(rng.integers(0, len(bad), n))


def _spoil(table: SourceTable, text: pl.DataFrame, rows: np.ndarray, values: pl.Series):
    """Put bad values (see `_DIRTY`) in some records, for the silver layer to quarantine."""
    if len(rows) == 0:
        return text
    return text.with_columns(text[values.name].scatter(rows, values))


def _file_bounds(ctx: _Ctx) -> np.ndarray:
    """When DMS closes a CDC file of one table: every ~2 hours, but never within 15 minutes of
    midnight, so the file around midnight holds changes of two dates."""
    every = CDC_FILE_MINUTES * MIN
    steps = ctx.rng.uniform(0.75, 1.25, int((ctx.cdc_end - ctx.cdc_start) / every * 1.5) + 2)
    bounds = ctx.cdc_start + np.cumsum(steps * every).astype(np.int64)
    bounds = bounds[bounds < ctx.cdc_end]
    into_day = (bounds - ctx.load0) % DAY
    return bounds[np.minimum(into_day, DAY - into_day) >= 15 * MIN]


def _write_table(
    ctx: _Ctx,
    root: Path,
    index: int,
    table: SourceTable,
    parts: _Parts,
    dirty_rate: float,
    gzip_every: int,
) -> tuple[TableSummary, int, int]:
    """Write one table's LOAD and CDC files; also the min business time and max commit time."""
    load = parts.load()
    n_load = load.height
    # Tables load one after the other within the first minutes; a split load a bit later.
    load_ts = ctx.load0 + SEC + index * (LOAD_MINUTES * MIN // (len(SOURCE_TABLES) + 1))
    load_ts += int(ctx.rng.integers(0, 5 * SEC))
    chunk = np.arange(n_load) // LOAD_FILE_ROWS
    load = load.with_columns(
        _op=pl.lit("I"),
        _ts=pl.Series(load_ts + chunk * 1_500_000),
        _sub=pl.lit(0, pl.Int64),
        _ctr=pl.lit(0, pl.Int64),
    )
    recs = pl.concat([load, parts.cdc], how="diagonal")  # in change order: LOAD, then by seq
    del load
    business = recs.filter(pl.col(table.partition_column) != NULL)[table.partition_column].min()
    last_commit = parts.cdc["_ts"].max() if parts.cdc.height else load_ts
    dirty = _dirty_rows(ctx.rng, table, recs, dirty_rate)
    bad = _bad_values(ctx.rng, table, len(dirty))

    def csv(a: int, b: int) -> pl.DataFrame:
        """Records a..b as CSV fields (text is made in parts: a whole table's would be big)."""
        inside = (dirty >= a) & (dirty < b)
        text = recs.slice(a, b - a).select(
            "_op", "_ts", "_ctr", *[_text_expr(c) for c in table.columns]
        )
        text = _spoil(table, text, dirty[inside] - a, bad.filter(inside))
        return _csv_frame(table, text.with_columns(_seq=_SEQ))

    folder = root / table.landing_folder
    folder.mkdir(parents=True, exist_ok=True)
    n_files = -(-n_load // LOAD_FILE_ROWS)
    for c in range(n_files):
        _write(
            folder / f"LOAD{c + 1:08X}.csv",
            csv(c * LOAD_FILE_ROWS, min(n_load, (c + 1) * LOAD_FILE_ROWS)),
            False,
        )

    cdc = csv(n_load, recs.height)
    cdc_ts = parts.cdc["_ts"].to_numpy()
    bucket = np.searchsorted(_file_bounds(ctx), cdc_ts, side="right")
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    ends = np.append(starts[1:], len(cdc_ts))[: len(starts)].astype(np.int64)
    # Written a few seconds to a minute after the newest change inside; names never repeat.
    name_ms = cdc_ts[ends - 1] // 1000 + ctx.rng.integers(3_000, 60_000, len(starts))
    k = np.arange(len(starts))
    name_ms = np.maximum.accumulate(name_ms - k) + k
    for i, (a, b, ms) in enumerate(zip(starts, ends, name_ms)):
        gz = gzip_every > 0 and (i + 1) % gzip_every == 0
        _write(folder / f"{_cdc_name(ms)}.csv{'.gz' if gz else ''}", cdc.slice(a, b - a), gz)
    n_files += len(starts)
    summary = TableSummary(table.name, n_files, n_load, len(cdc_ts), parts.live)
    return summary, business, last_commit


# --------------------------------------------------------------------------- entry points


def _landing_files(folder: Path) -> list[Path]:
    """LOAD and CDC files of a table folder in contract order (LOAD first, each by name)."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if LOAD_NAME.match(p.name) or CDC_NAME.match(p.name)]
    return sorted(files, key=lambda p: (0 if LOAD_NAME.match(p.name) else 1, p.name))


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
    )


# --------------------------------------------------------------------------- incremental drops

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


__all__ = [
    "expected_live_rows",
    "generate_landing_zone",
    "GenerationSummary",
    "LIVE_ROWS",
    "TableSummary",
    "write_cdc_drop",
]
