"""Table hooks for orders and their items: an order's status lifecycle (pending to delivered,
cancelled, refunded), and its items, planned with the order (products of the order's tenant,
exactly the target count on live orders) and inserted and deleted in the order's transaction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lakehouse_assets.sample_data.generator.accounts import CURRENCIES
from lakehouse_assets.sample_data.generator.context import DAY, HOUR, MIN, NULL, _Ctx
from lakehouse_assets.sample_data.generator.helpers import (
    ORDER,
    _compact,
    _ids_by,
    _later,
    _n_deleted,
    _pick_parent,
    _pick_text,
)
from lakehouse_assets.sample_data.generator.versions import _commit_times, _Versions
from lakehouse_assets.sources import ORDER_STATUSES


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
