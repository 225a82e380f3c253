"""Table hooks for what the other tables point to: tenants, their customers and their products,
with the word lists their names, emails and catalogs come from. Each hook leaves in
`ctx.shared` what later hooks need (tenant weights and currencies, customers' and products'
birth times), so these run first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from lakehouse_assets.sample_data.generator.context import HOUR, MIN, NULL, _Ctx
from lakehouse_assets.sample_data.generator.helpers import _eval, _ids_by, _json, _pick, _pick_text
from lakehouse_assets.sample_data.generator.versions import _Versions
from lakehouse_assets.sources import TENANT_PLANS

# What names, emails and catalogs are drawn from. Some hold commas, quotes,
# apostrophes, accents or a newline, as real ones do, so CSV quoting and UTF-8 get used.
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
