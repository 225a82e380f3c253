"""The plain-DuckDB baseline: bronze, silver and gold of a landing zone in one process.

    python -m benchmarks.baseline --landing LANDING_ROOT --db OUT.duckdb [--span A...B]

An independent implementation of the data contract (../shared/spec/CONTRACT.md), written for
speed: no Dagster and nothing imported from `lakehouse_assets`; the source tables are declared
again below from CONTRACT section 1, and every gold table is written from CONTRACT section 5.
It is the lower limit the project is measured against (`python -m benchmarks.run`), and the
cross-check of the project's gold numbers (lakehouse_assets_tests/test_baseline_matches.py).

What it assumes (it is a benchmark baseline, not a second ingestion layer):
- the landing zone is clean RFC 4180 CSV (as `lakehouse-generate` writes it). A file whose
  records do not all have the layout of its first data record makes DuckDB's strict reader
  fail, and the script with it; the project would reject those records one by one instead.
- a file landed twice under the same name is not de-duplicated;
- JSON validity is DuckDB's `json_valid` (more lenient than RFC 8259: trailing commas, NaN).
Everything else follows the contract: Op optional in LOAD files, header rows, gzip, NULL vs
"", the change order (commit ts, seq as a number, LOAD before CDC by name, record position),
deletes, strict parsing of integers / numerics / timestamps / booleans, quarantine rules,
and every gold definition and rounding (money half away from zero to cents, ratios to 4).
Like the project it also quarantines a version whose business date is before the first
partition (LAKEHOUSE_PARTITIONS_START), since no partition can hold it, and rejects a change
committed before it.

On stdout it prints one JSON object: the span, the seconds of each phase and the rows of
every table it wrote.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

# --------------------------------------------------------------------------- CONTRACT section 1

BIGINT, INTEGER, NUMERIC, TEXT, BOOLEAN, JSONB, TSTZ = (
    "bigint", "integer", "numeric", "text", "boolean", "jsonb", "timestamptz"
)
SQL_TYPES = {
    BIGINT: "BIGINT",
    INTEGER: "INTEGER",
    NUMERIC: "DECIMAL(12,2)",
    TEXT: "VARCHAR",
    BOOLEAN: "BOOLEAN",
    JSONB: "VARCHAR",
    TSTZ: "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class Table:
    name: str
    entity: str
    columns: tuple[tuple[str, str], ...]
    business_date: str = "created_at"
    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    non_negative: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def required(self) -> list[str]:
        req = ["id", self.business_date]
        if "tenant_id" in self.names:
            req.append("tenant_id")
        return req


TABLES = (
    Table(
        "core_tenant", "tenants",
        (("id", BIGINT), ("name", TEXT), ("slug", TEXT), ("plan", TEXT), ("settings", JSONB),
         ("is_active", BOOLEAN), ("created_at", TSTZ), ("updated_at", TSTZ)),
        allowed={"plan": ("free", "starter", "pro", "enterprise")},
    ),
    Table(
        "core_customer", "customers",
        (("id", BIGINT), ("tenant_id", BIGINT), ("email", TEXT), ("full_name", TEXT),
         ("country", TEXT), ("attributes", JSONB), ("created_at", TSTZ), ("updated_at", TSTZ)),
    ),
    Table(
        "core_product", "products",
        (("id", BIGINT), ("tenant_id", BIGINT), ("sku", TEXT), ("name", TEXT), ("category", TEXT),
         ("unit_price", NUMERIC), ("is_active", BOOLEAN), ("created_at", TSTZ),
         ("updated_at", TSTZ)),
        non_negative=("unit_price",),
    ),
    Table(
        "core_order", "orders",
        (("id", BIGINT), ("tenant_id", BIGINT), ("customer_id", BIGINT), ("status", TEXT),
         ("currency", TEXT), ("total_amount", NUMERIC), ("created_at", TSTZ),
         ("updated_at", TSTZ)),
        allowed={"status": ("pending", "paid", "shipped", "delivered", "cancelled", "refunded")},
        non_negative=("total_amount",),
    ),
    Table(
        "core_orderitem", "order_items",
        (("id", BIGINT), ("tenant_id", BIGINT), ("order_id", BIGINT), ("product_id", BIGINT),
         ("quantity", INTEGER), ("unit_price", NUMERIC), ("created_at", TSTZ),
         ("updated_at", TSTZ)),
        non_negative=("unit_price",),
        positive=("quantity",),
    ),
    Table(
        "core_event", "events",
        (("id", BIGINT), ("tenant_id", BIGINT), ("customer_id", BIGINT), ("session_id", TEXT),
         ("event_type", TEXT), ("properties", JSONB), ("occurred_at", TSTZ)),
        business_date="occurred_at",
        allowed={"event_type": ("page_view", "product_view", "add_to_cart", "checkout_started",
                                "purchase", "signup", "error")},
    ),
    Table(
        "core_subscription", "subscriptions",
        (("id", BIGINT), ("tenant_id", BIGINT), ("customer_id", BIGINT), ("plan", TEXT),
         ("status", TEXT), ("mrr", NUMERIC), ("started_at", TSTZ), ("canceled_at", TSTZ),
         ("created_at", TSTZ), ("updated_at", TSTZ)),
        allowed={"plan": ("basic", "pro", "enterprise"),
                 "status": ("trialing", "active", "past_due", "canceled")},
        non_negative=("mrr",),
    ),
    Table(
        "core_invoice", "invoices",
        (("id", BIGINT), ("tenant_id", BIGINT), ("customer_id", BIGINT),
         ("subscription_id", BIGINT), ("amount", NUMERIC), ("status", TEXT), ("issued_at", TSTZ),
         ("due_at", TSTZ), ("paid_at", TSTZ), ("created_at", TSTZ), ("updated_at", TSTZ)),
        allowed={"status": ("draft", "open", "paid", "void", "uncollectible")},
        non_negative=("amount",),
    ),
)

GOLD_TABLES = (
    "daily_revenue", "daily_funnel", "hourly_activity", "subscription_mrr",
    "customer_segments", "daily_summary",
)

# --------------------------------------------------------------------------- CONTRACT section 2

LOAD_NAME = re.compile(r"^LOAD[0-9A-Fa-f]{8}\.csv(\.gz)?$")
CDC_NAME = re.compile(r"^\d{8}-\d{9}\.csv(\.gz)?$")
TS_RE = r"\d{4}-\d{2}-\d{2} ([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
INT_RE = r"[+-]?\d+"
NUM_RE = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parsed(col: str, kind: str) -> str:
    """SQL: the text column `col` as its contract type, NULL when it does not parse."""
    c = q(col)
    if kind in (BIGINT, INTEGER):
        return f"CASE WHEN regexp_full_match({c}, '{INT_RE}') THEN TRY_CAST({c} AS {SQL_TYPES[kind]}) END"
    if kind == NUMERIC:
        return f"CASE WHEN regexp_full_match({c}, '{NUM_RE}') THEN TRY_CAST({c} AS DECIMAL(12,2)) END"
    if kind == TSTZ:
        return f"CASE WHEN regexp_full_match({c}, '{TS_RE}') THEN CAST(TRY_CAST({c} AS TIMESTAMP) AS TIMESTAMPTZ) END"
    if kind == BOOLEAN:
        return (f"CASE WHEN lower({c}) IN ('true', 't', '1') THEN true "
                f"WHEN lower({c}) IN ('false', 'f', '0') THEN false END")
    if kind == JSONB:
        return f"CASE WHEN json_valid({c}) THEN {c} END"
    return c


@dataclass
class FileGroup:
    """Landing files of one table read by one read_csv call: same layout, header or not."""

    with_op: bool
    header: bool
    paths: list[Path] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # contract order of each file in the table
    relative: list[str] = field(default_factory=list)


def _first_records(path: Path, n: int = 2) -> list[list[str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(1 << 16)
    text = head.decode("utf-8", errors="replace")
    records = []
    for rec in csv.reader(io.StringIO(text, newline="")):
        if rec:  # blank lines are not records
            records.append(rec)
        if len(records) == n:
            break
    return records


def file_groups(root: Path, table: Table) -> list[FileGroup]:
    folder = root / "public" / table.name
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir() if LOAD_NAME.match(p.name) or CDC_NAME.match(p.name)]
    names.sort(key=lambda n: (0 if LOAD_NAME.match(n) else 1, n))  # LOAD first, each by name
    layout = ["_dms_commit_ts", *table.names, "_dms_seq"]
    groups: dict[tuple[bool, bool], FileGroup] = {}
    for order, name in enumerate(names):
        path = folder / name
        records = _first_records(path)
        if not records:
            continue
        first = [v.lower() for v in records[0]]
        header = first in (layout, ["op", *layout])
        data = records[1] if header else records[0]
        if header and len(records) < 2:
            continue
        n = len(table.columns)
        if len(data) == n + 3:
            with_op = True
        elif len(data) == n + 2 and LOAD_NAME.match(name):
            with_op = False
        else:
            raise SystemExit(f"baseline: {path}: {len(data)} fields; the baseline reads clean zones only")
        group = groups.setdefault((with_op, header), FileGroup(with_op, header))
        group.paths.append(path)
        group.order.append(order)
        group.relative.append(f"public/{table.name}/{name}")
    return list(groups.values())


def read_sql(group: FileGroup, table: Table, gi: int) -> str:
    """Records of a file group with their metadata; `_rn` is the position in the read stream
    (the reader keeps file order: preserve_insertion_order)."""
    n = len(table.columns) + (3 if group.with_op else 2)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n)) + "}"
    files = "[" + ", ".join(lit(str(p)) for p in group.paths) + "]"
    off = 1 if group.with_op else 0
    cols = ", ".join(f"c{off + 1 + j} AS {q(c)}" for j, c in enumerate(table.names))
    op = "c0" if group.with_op else "'I'"
    rel = "[" + ", ".join(lit(r) for r in group.relative) + "]"
    order = "[" + ", ".join(str(o) for o in group.order) + "]"
    return f"""
        SELECT {cols}, {op} AS _op, c{off} AS _ts_text, c{off + 1 + len(table.names)} AS _seq,
               {rel}[CAST(file_index AS BIGINT) + 1] AS _source_file, {order}[CAST(file_index AS BIGINT) + 1] AS _file_ord,
               {gi} AS _g, file_index AS _fi, row_number() OVER () AS _rn
        FROM read_csv({files}, columns = {columns}, header = false, auto_detect = false,
                      delim = ',', quote = '"', escape = '"', new_line = '\\n',
                      skip = {1 if group.header else 0}, allow_quoted_nulls = false,
                      strict_mode = true, encoding = 'utf-8')
    """


# --------------------------------------------------------------------------- the layers


def bronze(con, root: Path, table: Table, first_partition: date, ingested: str) -> dict:
    """staged_<t>: every record with metadata and the fields the merge orders by;
    bronze.<t> and the table's rejects from it."""
    groups = file_groups(root, table)
    cols = ", ".join(q(c) for c in table.names)
    if not groups:
        con.execute(
            f"CREATE TEMP TABLE staged_{table.name} AS SELECT "
            + ", ".join(f"NULL::VARCHAR AS {q(c)}" for c in table.names)
            + ", NULL::VARCHAR AS _op, NULL::TIMESTAMPTZ AS _commit_ts, NULL::VARCHAR AS _seq, "
            "NULL::VARCHAR AS _source_file, NULL::BIGINT AS _source_row, NULL::INTEGER AS _file_ord, "
            "NULL::HUGEINT AS _seq_num, NULL::VARCHAR AS _reject, NULL::VARCHAR AS _ts_text WHERE false"
        )
    else:
        reads = " UNION ALL ".join(f"SELECT * FROM ({read_sql(g, table, i)})" for i, g in enumerate(groups))
        first = lit(first_partition.isoformat())
        con.execute(
            f"""
            CREATE TEMP TABLE staged_{table.name} AS
            WITH r AS ({reads}),
            firsts AS (SELECT _g, _fi, min(_rn) AS _rn0 FROM r GROUP BY ALL),
            t AS (
              SELECT r.*, r._rn - f._rn0 + 1 AS _source_row,
                     CASE WHEN regexp_full_match(_ts_text, '{TS_RE}')
                          THEN CAST(TRY_CAST(_ts_text AS TIMESTAMP) AS TIMESTAMPTZ) END AS _commit_ts
              FROM r JOIN firsts f USING (_g, _fi)
            )
            SELECT {cols}, _op, _commit_ts, _seq, _source_file, _source_row, _file_ord,
                   TRY_CAST(nullif(_seq, '') AS HUGEINT) AS _seq_num,
                   CASE WHEN _op IS NULL OR _op NOT IN ('I', 'U', 'D')
                          THEN 'Op must be I, U or D'
                        WHEN _commit_ts IS NULL THEN '_dms_commit_ts is not a timestamp'
                        WHEN CAST(_commit_ts AS DATE) < DATE {first}
                          THEN '_dms_commit_ts is before the first partition' END AS _reject,
                   _ts_text
            FROM t
            """
        )
    con.execute(
        f"""
        CREATE TABLE bronze.{table.name} AS
        SELECT {cols}, _op, _commit_ts, _seq, _source_file, _source_row,
               TIMESTAMPTZ {lit(ingested)} AS _ingested_at
        FROM staged_{table.name} WHERE _reject IS NULL
        """
    )
    con.execute(
        f"""
        INSERT INTO bronze.cdc_rejects
        SELECT {lit(table.name)}, _source_file, _source_row, _reject,
               concat_ws(',', _op, _ts_text, {cols}, _seq), _commit_ts,
               greatest(coalesce(CAST(_commit_ts AS DATE), DATE {lit(first_partition.isoformat())}),
                        DATE {lit(first_partition.isoformat())})
        FROM staged_{table.name} WHERE _reject IS NOT NULL
        """
    )
    return {"records": con.execute(f"SELECT count(*) FROM staged_{table.name}").fetchone()[0]}


def silver(con, table: Table, first_partition: date, span: tuple[date, date]) -> None:
    """SCD1: the last change of each key wins (contract order); deletes drop it; the winner
    is typed and validated into silver.<entity> or silver.<entity>_quarantine."""
    first = lit(first_partition.isoformat())
    reasons = []
    for col, kind in table.columns:
        c, p = q(col), parsed(col, kind)
        if col in table.required:
            reasons.append(f"CASE WHEN {c} IS NULL THEN '{col} is NULL' END")
        if kind != TEXT:
            reasons.append(f"CASE WHEN {c} IS NOT NULL AND ({p}) IS NULL THEN '{col} does not parse as {kind}' END")
        if col in table.allowed:
            values = ", ".join(lit(v) for v in table.allowed[col])
            reasons.append(f"CASE WHEN {c} NOT IN ({values}) THEN '{col} is not an allowed value' END")
        if col in table.non_negative:
            reasons.append(f"CASE WHEN ({p}) < 0 THEN '{col} is negative' END")
        if col in table.positive:
            reasons.append(f"CASE WHEN ({p}) <= 0 THEN '{col} is not positive' END")
        if col == table.business_date:
            reasons.append(f"CASE WHEN CAST(({p}) AS DATE) < DATE {first} THEN '{col} is before the first partition' END")
    typed = ", ".join(f"CAST(({parsed(c, k)}) AS {SQL_TYPES[k]}) AS {q('__v_' + c)}" for c, k in table.columns)
    raw = ", ".join(q(c) for c in table.names)
    con.execute(
        f"""
        CREATE TEMP TABLE winners_{table.name} AS
        SELECT {typed}, {raw}, _op, _commit_ts, _seq, _source_file, _source_row,
               concat_ws('; ', {', '.join(reasons)}) AS _dq_reason
        FROM (
          SELECT * FROM staged_{table.name} WHERE _reject IS NULL
          QUALIFY row_number() OVER (
            PARTITION BY id
            ORDER BY _commit_ts DESC, _seq_num DESC NULLS LAST, _file_ord DESC, _source_row DESC) = 1
        )
        WHERE _op <> 'D'
        """
    )
    lo, hi = (lit(d.isoformat()) for d in span)
    bd = q("__v_" + table.business_date)
    out = ", ".join(f"{q('__v_' + c)} AS {q(c)}" for c in table.names)
    con.execute(
        f"""
        CREATE TABLE silver.{table.entity} AS
        SELECT {out}, _commit_ts, _source_file FROM winners_{table.name}
        WHERE _dq_reason = '' AND CAST({bd} AS DATE) BETWEEN DATE {lo} AND DATE {hi}
        """
    )
    con.execute(
        f"""
        CREATE TABLE silver.{table.entity}_quarantine AS
        SELECT * FROM (
          SELECT {raw}, _op, _commit_ts, _seq, _source_file, _source_row, _dq_reason,
                 greatest(coalesce(CAST({bd} AS DATE), CAST(_commit_ts AS DATE)), DATE {first})
                   AS _partition_date
          FROM winners_{table.name} WHERE _dq_reason <> ''
        ) WHERE _partition_date BETWEEN DATE {lo} AND DATE {hi}
        """
    )
    con.execute(f"DROP TABLE winners_{table.name}")


P = "('paid', 'shipped', 'delivered')"
R = "('paid', 'shipped', 'delivered', 'refunded')"


def money_div(num: str, den: str) -> str:
    """num / den (den > 0 integer) rounded half away from zero to cents, in integers."""
    cents = f"CAST(({num}) * 100 AS HUGEINT)"
    return (f"CAST(CAST(sign({cents}) * ((2 * abs({cents}) + ({den})) // (2 * ({den}))) "
            f"AS DECIMAL(38,0)) * 0.01 AS DECIMAL(18,2))")


def ratio4(num: str, den: str) -> str:
    """num / den (non-negative integers, den > 0) rounded half up to 4 places."""
    return f"CAST((20000 * CAST(({num}) AS HUGEINT) + ({den})) // (2 * ({den})) AS DOUBLE) / 10000"


def gold_sql(span: tuple[date, date]) -> dict[str, str]:
    """CONTRACT section 5, one query per table, over the silver tables of this database."""
    lo, hi = (f"DATE {lit(d.isoformat())}" for d in span)
    between = f"BETWEEN {lo} AND {hi}"
    days = f"(SELECT CAST(unnest(generate_series({lo}, {hi}, INTERVAL 1 DAY)) AS DATE) AS d)"
    money = "DECIMAL(18,2)"
    return {
        "daily_revenue": f"""
            WITH items AS (
              SELECT order_id, sum(quantity) AS qty FROM silver.order_items GROUP BY order_id
            ),
            per_day AS (
              SELECT CAST(o.created_at AS DATE) AS date, o.tenant_id,
                count(*) AS order_count,
                count(*) FILTER (WHERE o.status IN {P}) AS paid_order_count,
                CAST(coalesce(sum(o.total_amount) FILTER (WHERE o.status IN {R}), 0) AS {money}) AS gross_revenue,
                CAST(coalesce(sum(o.total_amount) FILTER (WHERE o.status = 'refunded'), 0) AS {money}) AS refunded_amount,
                CAST(coalesce(sum(i.qty) FILTER (WHERE o.status IN {P}), 0) AS BIGINT) AS items_sold
              FROM silver.orders o LEFT JOIN items i ON i.order_id = o.id
              WHERE CAST(o.created_at AS DATE) {between}
              GROUP BY 1, 2
            )
            SELECT date, tenant_id, order_count, paid_order_count, gross_revenue, refunded_amount,
              CAST(gross_revenue - refunded_amount AS {money}) AS net_revenue,
              CASE WHEN paid_order_count > 0
                   THEN {money_div('gross_revenue - refunded_amount', 'paid_order_count')} END
                AS avg_order_value,
              items_sold
            FROM per_day
        """,
        "daily_funnel": f"""
            SELECT *, CASE WHEN sessions > 0 THEN {ratio4('purchase_sessions', 'sessions')} END
                        AS conversion_rate
            FROM (
              SELECT CAST(occurred_at AS DATE) AS date, tenant_id,
                count(DISTINCT session_id) AS sessions,
                count(DISTINCT customer_id) AS customers,
                count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
                count(*) FILTER (WHERE event_type = 'product_view') AS product_views,
                count(*) FILTER (WHERE event_type = 'add_to_cart') AS add_to_cart,
                count(*) FILTER (WHERE event_type = 'checkout_started') AS checkout_started,
                count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
                count(*) FILTER (WHERE event_type = 'signup') AS signups,
                count(*) FILTER (WHERE event_type = 'error') AS errors,
                count(DISTINCT session_id) FILTER (WHERE event_type = 'purchase') AS purchase_sessions
              FROM silver.events WHERE CAST(occurred_at AS DATE) {between}
              GROUP BY 1, 2
            )
        """,
        "hourly_activity": f"""
            SELECT date, hour, tenant_id, events, sessions, errors,
                   {ratio4('errors', 'events')} AS error_rate
            FROM (
              SELECT CAST(occurred_at AS DATE) AS date, CAST(hour(occurred_at) AS INTEGER) AS hour,
                tenant_id, count(*) AS events, count(DISTINCT session_id) AS sessions,
                count(*) FILTER (WHERE event_type = 'error') AS errors
              FROM silver.events WHERE CAST(occurred_at AS DATE) {between}
              GROUP BY 1, 2, 3
            )
        """,
        "subscription_mrr": f"""
            WITH subs AS (
              SELECT tenant_id, mrr, status IS DISTINCT FROM 'trialing' AS counts,
                     CAST(started_at AS DATE) AS started, CAST(canceled_at AS DATE) AS canceled
              FROM silver.subscriptions
            ),
            per_day AS (
              SELECT d AS date, tenant_id,
                count(*) FILTER (WHERE counts AND started <= d AND (canceled IS NULL OR canceled > d))
                  AS active_subscriptions,
                CAST(coalesce(sum(mrr) FILTER (WHERE counts AND started <= d
                  AND (canceled IS NULL OR canceled > d)), 0) AS {money}) AS mrr,
                CAST(coalesce(sum(mrr) FILTER (WHERE counts AND started = d), 0) AS {money}) AS new_mrr,
                CAST(coalesce(sum(mrr) FILTER (WHERE counts AND canceled = d), 0) AS {money}) AS churned_mrr
              FROM {days} days, subs
              WHERE counts AND (started <= d OR canceled = d)
              GROUP BY 1, 2
            )
            SELECT * FROM per_day
            WHERE active_subscriptions <> 0 OR mrr <> 0 OR new_mrr <> 0 OR churned_mrr <> 0
        """,
        # A dense grid of days per customer, from its first day that matters (creation or
        # first counted order) to the last day: 90-day sums are a 90-row window, the last order
        # date a running max. Rows are kept from the customer's creation on, inside the span.
        "customer_segments": f"""
            WITH cust AS (
              SELECT id, tenant_id, CAST(created_at AS DATE) AS created
              FROM silver.customers WHERE CAST(created_at AS DATE) <= {hi}
            ),
            paid AS (
              SELECT customer_id, CAST(created_at AS DATE) AS od, count(*) AS n,
                     sum(total_amount) AS amount
              FROM silver.orders
              WHERE status IN {P} AND CAST(created_at AS DATE) <= {hi}
              GROUP BY 1, 2
            ),
            starts AS (
              SELECT c.id, c.tenant_id, c.created,
                     least(c.created, min(p.od)) AS g0
              FROM cust c LEFT JOIN paid p ON p.customer_id = c.id
              GROUP BY 1, 2, 3
            ),
            grid AS (
              SELECT id, tenant_id, created,
                     CAST(unnest(generate_series(g0, {hi}, INTERVAL 1 DAY)) AS DATE) AS date
              FROM starts
            ),
            rolled AS (
              SELECT g.id, g.tenant_id, g.created, g.date,
                sum(coalesce(p.n, 0)) OVER w90 AS orders_90d,
                sum(coalesce(p.amount, 0)) OVER w90 AS revenue_90d,
                max(CASE WHEN p.n > 0 THEN g.date END) OVER wall AS last_order_date
              FROM grid g LEFT JOIN paid p ON p.customer_id = g.id AND p.od = g.date
              WINDOW w90 AS (PARTITION BY g.id ORDER BY g.date ROWS BETWEEN 89 PRECEDING AND CURRENT ROW),
                     wall AS (PARTITION BY g.id ORDER BY g.date ROWS UNBOUNDED PRECEDING)
            )
            SELECT date, tenant_id, id AS customer_id,
              CAST(orders_90d AS BIGINT) AS orders_90d,
              CAST(revenue_90d AS {money}) AS revenue_90d,
              last_order_date,
              CAST(date - last_order_date AS BIGINT) AS days_since_last_order,
              CASE WHEN orders_90d >= 5 AND revenue_90d >= 1000 THEN 'vip'
                   WHEN orders_90d >= 2 THEN 'active'
                   WHEN orders_90d = 1 THEN 'regular'
                   ELSE 'inactive' END AS segment,
              CASE WHEN last_order_date IS NULL OR date - last_order_date > 60 THEN 'high'
                   WHEN date - last_order_date > 30 THEN 'medium'
                   ELSE 'low' END AS churn_risk
            FROM rolled
            WHERE date >= created AND date {between}
        """,
        "daily_summary": f"""
            WITH parts AS (
              SELECT CAST(created_at AS DATE) AS date, tenant_id, 1 AS new_customers,
                     0 AS orders, 0 AS net, 0 AS events, 0 AS invoices_paid, 0 AS paid_amount
              FROM silver.customers WHERE CAST(created_at AS DATE) {between}
              UNION ALL
              SELECT CAST(created_at AS DATE), tenant_id, 0, 1,
                     CASE WHEN status IN {R} THEN coalesce(total_amount, 0) ELSE 0 END
                     - CASE WHEN status = 'refunded' THEN coalesce(total_amount, 0) ELSE 0 END,
                     0, 0, 0
              FROM silver.orders WHERE CAST(created_at AS DATE) {between}
              UNION ALL
              SELECT CAST(occurred_at AS DATE), tenant_id, 0, 0, 0, 1, 0, 0
              FROM silver.events WHERE CAST(occurred_at AS DATE) {between}
              UNION ALL
              SELECT CAST(paid_at AS DATE), tenant_id, 0, 0, 0, 0, 1, coalesce(amount, 0)
              FROM silver.invoices WHERE status = 'paid' AND CAST(paid_at AS DATE) {between}
            ),
            counts AS (
              SELECT date, tenant_id, sum(new_customers) AS new_customers, sum(orders) AS orders,
                     sum(net) AS net_revenue, sum(events) AS events,
                     sum(invoices_paid) AS invoices_paid, sum(paid_amount) AS invoices_paid_amount
              FROM parts GROUP BY 1, 2
            ),
            active AS (
              SELECT date, tenant_id, count(DISTINCT customer_id) AS active_customers FROM (
                SELECT CAST(occurred_at AS DATE) AS date, tenant_id, customer_id FROM silver.events
                WHERE CAST(occurred_at AS DATE) {between}
                UNION ALL
                SELECT CAST(created_at AS DATE), tenant_id, customer_id FROM silver.orders
                WHERE CAST(created_at AS DATE) {between}
              ) GROUP BY 1, 2
            )
            SELECT * FROM (
              SELECT date, tenant_id,
                CAST(coalesce(c.new_customers, 0) AS BIGINT) AS new_customers,
                CAST(coalesce(c.orders, 0) AS BIGINT) AS orders,
                CAST(coalesce(c.net_revenue, 0) AS {money}) AS net_revenue,
                CAST(coalesce(c.events, 0) AS BIGINT) AS events,
                CAST(coalesce(a.active_customers, 0) AS BIGINT) AS active_customers,
                CAST(coalesce(c.invoices_paid, 0) AS BIGINT) AS invoices_paid,
                CAST(coalesce(c.invoices_paid_amount, 0) AS {money}) AS invoices_paid_amount
              FROM counts c FULL JOIN active a USING (date, tenant_id)
            )
            WHERE new_customers <> 0 OR orders <> 0 OR net_revenue <> 0 OR events <> 0
               OR active_customers <> 0 OR invoices_paid <> 0 OR invoices_paid_amount <> 0
        """,
    }


GOLD_ORDER = {
    "hourly_activity": "date, hour, tenant_id",
    "customer_segments": "date, tenant_id, customer_id",
}


def zone_span(con, first_partition: date) -> tuple[date, date] | None:
    """Earliest business date (or commit date) to latest commit date, from the first partition."""
    parts = []
    for t in TABLES:
        bd = parsed(t.business_date, TSTZ)
        parts.append(
            f"SELECT min(CAST(({bd}) AS DATE)) AS lo, min(CAST(_commit_ts AS DATE)) AS lo2, "
            f"max(CAST(_commit_ts AS DATE)) AS hi FROM staged_{t.name} WHERE _reject IS NULL"
        )
    lo, lo2, hi = con.execute(
        f"SELECT least(min(lo), min(lo2)), min(lo2), max(hi) FROM ({' UNION ALL '.join(parts)})"
    ).fetchone()
    if hi is None:
        return None
    return max(lo, first_partition), hi


def build(landing: Path, db: Path, span: tuple[date, date] | None, first_partition: date,
          threads: int | None = None) -> dict:
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    if db.exists():
        db.unlink()
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for schema in ("bronze", "silver", "gold"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute(
        "CREATE TABLE bronze.cdc_rejects (table_name VARCHAR, _source_file VARCHAR, "
        "_source_row BIGINT, reason VARCHAR, raw_text VARCHAR, _commit_ts TIMESTAMPTZ, "
        "_partition_date DATE)"
    )
    ingested = datetime.now(timezone.utc).isoformat()
    records = 0
    t0 = time.perf_counter()
    for table in TABLES:
        records += bronze(con, landing, table, first_partition, ingested)["records"]
    seconds["bronze"] = time.perf_counter() - t0
    if span is None:
        span = zone_span(con, first_partition)
        if span is None:
            raise SystemExit(f"baseline: no landing records under {landing}")
    t0 = time.perf_counter()
    for table in TABLES:
        silver(con, table, first_partition, span)
        con.execute(f"DROP TABLE staged_{table.name}")
    seconds["silver"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for name, sql in gold_sql(span).items():
        order = GOLD_ORDER.get(name, "date, tenant_id")
        con.execute(f"CREATE TABLE gold.{name} AS SELECT * FROM ({sql}) ORDER BY {order}")
    seconds["gold"] = time.perf_counter() - t0
    con.execute("CHECKPOINT")
    rows = {"bronze": {}, "silver": {}, "quarantine": {}, "gold": {}}
    count = lambda t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: E731
    for t in TABLES:
        rows["bronze"][t.name] = count(f"bronze.{t.name}")
        rows["silver"][t.entity] = count(f"silver.{t.entity}")
        rows["quarantine"][t.entity] = count(f"silver.{t.entity}_quarantine")
    rows["bronze"]["cdc_rejects"] = count("bronze.cdc_rejects")
    for name in GOLD_TABLES:
        rows["gold"][name] = count(f"gold.{name}")
    con.close()
    seconds["total"] = time.perf_counter() - started
    return {
        "span": [span[0].isoformat(), span[1].isoformat()],
        "records": records,
        "seconds": seconds,
        "rows": rows,
    }


def parse_span(text: str) -> tuple[date, date]:
    a, b = text.split("...")
    return date.fromisoformat(a), date.fromisoformat(b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline", description=__doc__.split("\n")[0])
    parser.add_argument("--landing", required=True, type=Path, help="landing root folder")
    parser.add_argument("--db", required=True, type=Path, help="DuckDB file to (re)create")
    parser.add_argument("--span", type=parse_span, default=None,
                        help="partition range FIRST...LAST (default: the zone's own span)")
    parser.add_argument("--first-partition", type=date.fromisoformat,
                        default=date.fromisoformat(os.environ.get("LAKEHOUSE_PARTITIONS_START") or "2024-01-01"),
                        help="LAKEHOUSE_PARTITIONS_START (default: the variable, else 2024-01-01)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    args = parser.parse_args(argv)
    result = build(args.landing, args.db, args.span, args.first_partition, args.threads)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
