"""Table hooks for billing: subscriptions (trial, active, past due, canceled) of customers, and
invoices of subscriptions that had started (draft, open, then paid, void or uncollectible).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lakehouse_assets.sample_data.generator.context import DAY, HOUR, MIN, NULL, _Ctx
from lakehouse_assets.sample_data.generator.helpers import (
    INV,
    SUB,
    _compact,
    _ids_by,
    _pick_parent,
    _pick_text,
)
from lakehouse_assets.sample_data.generator.versions import _Versions
from lakehouse_assets.sources import INVOICE_STATUSES, SUBSCRIPTION_PLANS, SUBSCRIPTION_STATUSES

PLAN_PRICE_CENTS = np.array([2_900, 9_900, 49_900])  # basic, pro, enterprise per seat


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
