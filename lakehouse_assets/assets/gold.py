"""Gold: business tables (CONTRACT section 5), one asset per declaration in `gold/`.

A run of the landing sensor computes the gold cells that silver marked stale on its days
(whole days, or a grain's rows of a day for customer_segments); any other run computes its days
whole. Each input is read only as far as the cells need (gold/table.py says how a silver row
counts): the same days, the rows a computed row refers to, or everything up to the last day
for windows that reach back. The Pandera model runs before the write and blocks it.
"""


from datetime import date, timedelta

import polars as pl
from dagster import AssetCheckSpec, AssetExecutionContext, AssetKey, AssetsDefinition, BackfillPolicy, Failure, Output, asset

from lakehouse_assets.assets.catalog import OWNERS, column_schema
from lakehouse_assets.cdc.write_plan import CHANGES, days_values
from lakehouse_assets.checks.validation import CHECK, validate_relation
from lakehouse_assets.gold import GOLD_TABLES
from lakehouse_assets.gold.lineage import newest_commit_day, newest_days, reaches_forward
from lakehouse_assets.marks import GOLD, write_mark
from lakehouse_assets.gold.table import FromDateOf, GoldTable, OnBusinessDay, OnDateOf, OnDayOf
from lakehouse_assets.partitions import daily_partitions
from lakehouse_assets.runs import run_days, run_mode
from lakehouse_assets.schemas.models import gold_model
from lakehouse_assets.schemas.tables import GOLD_PENDING, gold_spec, silver_spec
from lakehouse_assets.schemas.types import duckdb_type, polars_schema
from lakehouse_assets.settings import settings
from lakehouse_assets.sources import TABLES_BY_ENTITY
from lakehouse_assets.storage.io_manager import Replacement
from lakehouse_assets.storage.tables import Scope, Session, describe_days
from lakehouse_assets.storage.warehouse import Warehouse
from lakehouse_assets.values import quote_ident, quote_literal


def gold_key(table: GoldTable) -> AssetKey:
    return AssetKey(["gold", table.name])


def build_gold(table: GoldTable) -> AssetsDefinition:
    spec = gold_spec(table)

    @asset(
        key=gold_key(table),
        deps=sorted({AssetKey(["silver", r.entity]) for r in table.inputs}, key=str),
        description=table.description,
        group_name="gold",
        owners=OWNERS,
        kinds=settings().kinds,
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        metadata={"partition_expr": "date",
                  "dagster/column_schema": column_schema(spec, {c.name: c.description for c in table.columns},
                                                         [c.name for c in table.columns if not c.nullable])},
        check_specs=[AssetCheckSpec(name=CHECK, asset=gold_key(table), blocking=True,
                                    description="Pandera model: grain, signs, ratios, arithmetic between columns")],
    )
    def _gold(context: AssetExecutionContext, warehouse: Warehouse):
        session = warehouse.session()
        days = run_days(context)
        mode = run_mode(context)
        scope, computed = _cells(session, table, days, mode)
        _read_inputs(session, table, only_stale_grains=mode == CHANGES and table.grain is not None)
        cols = ", ".join(f"CAST({quote_ident(c)} AS {duckdb_type(t)}) AS {quote_ident(c)}" for c, t in table.schema.items())
        order = ", ".join(quote_ident(c) for c in table.sort)
        session.con.execute(f"CREATE OR REPLACE TEMP TABLE _gold AS SELECT {cols} FROM ({table.sql()}) ORDER BY {order}")
        check = validate_relation(session, gold_model(table), "_gold", gold_key(table), describe_days(days), table.unique)
        if not check.passed:
            yield check
            raise Failure(f"blocking check failed for gold.{table.name}: nothing written")
        context.log.info(f"{table.name}: {computed} for {describe_days(days)}")
        yield Output(Replacement("_gold", scope, metadata={"recomputed": computed}, spec=spec))
        _clear_pending(session, table, days)
        through = newest_days(session)[table.name]
        write_mark(session, table.name, GOLD, None, computed_through=max((d for d in [through, *_computed(session)] if d), default=None))
        yield check

    return _gold


def _cells(session: Session, table: GoldTable, days: frozenset[date], mode: str) -> tuple[Scope, str]:
    """`_days` (and `_cells` for a table with a grain): what this run computes, and the scope
    its rows replace."""
    con = session.con
    if mode != CHANGES:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _days AS SELECT d FROM {days_values(days)}")
        if table.grain:
            _every_cell(session, table, "_days")
        return Scope(days=days), f"{len(days)} days whole"
    pending = session.scan(GOLD_PENDING, columns=["asset", "day", "grain"])
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _pending AS SELECT DISTINCT day AS d, grain FROM {pending}
        WHERE asset = {quote_literal(table.name)} AND day IN (SELECT d FROM {days_values(days)})""")
    new = _new_days(session, table, days)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _new_days AS SELECT d FROM {days_values(new)}" if new else
                "CREATE OR REPLACE TEMP TABLE _new_days AS SELECT CAST(NULL AS DATE) AS d WHERE false")
    con.execute("CREATE OR REPLACE TEMP TABLE _days AS SELECT d FROM _pending UNION SELECT d FROM _new_days")
    stale = frozenset(r[0] for r in con.execute("SELECT d FROM _days").fetchall())
    if not table.grain:
        return Scope(days=stale), f"{len(stale) - len(new)} stale days, {len(new)} new days"
    grain = quote_ident(table.grain)
    _every_cell(session, table, "_new_days")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _cells AS SELECT d, grain AS {grain} FROM _pending
        WHERE grain IS NOT NULL UNION SELECT d, {grain} FROM _cells""")
    cells = con.sql(f"SELECT {grain}, d AS date FROM _cells").pl()
    return Scope(days=stale, keys=cells), f"{len(cells)} stale {table.grain} days, {len(new)} new days"


def _new_days(session: Session, table: GoldTable, days: frozenset[date]) -> frozenset[date]:
    """Of the run's days, those a table that reaches forward does not have yet: computed whole,
    as a backfill of them would (a day the run materializes holds every row it should, also a
    file's name day after its last commit: DMS names the file it closes at midnight D+1)."""
    if not reaches_forward(table) or newest_commit_day(session) is None:
        return frozenset()
    newest = newest_days(session)[table.name]
    return frozenset(d for d in days if newest is None or d > newest)


def _every_cell(session: Session, table: GoldTable, days: str) -> None:
    """`_cells`: every grain value of the inputs that place rows by it, on each of `days`."""
    grain = quote_ident(table.grain)
    sources = []
    for r in table.inputs:
        if isinstance(r.counts_on, FromDateOf) and r.counts_on.grain_from:
            rel = session.scan(silver_spec(TABLES_BY_ENTITY[r.entity]), columns=[r.counts_on.grain_from])
            sources.append(f"SELECT {quote_ident(r.counts_on.grain_from)} AS g FROM {rel}")
    session.con.execute(f"""CREATE OR REPLACE TEMP TABLE _cells AS
        SELECT d, g AS {grain} FROM {days} CROSS JOIN (SELECT DISTINCT g FROM ({' UNION ALL '.join(sources)})
                                                      WHERE g IS NOT NULL)""")


def _read_inputs(session: Session, table: GoldTable, only_stale_grains: bool) -> None:
    """Each input as a view named by its entity, holding what the computed cells need."""
    con = session.con
    computed = {r[0] for r in con.execute("SELECT d FROM _days").fetchall()}
    newest = max(computed) if computed else None
    for r in table.inputs:
        source = TABLES_BY_ENTITY[r.entity]
        spec = silver_spec(source)
        on = r.counts_on
        if isinstance(on, OnBusinessDay):
            scope = Scope(days=frozenset(computed))
        elif isinstance(on, OnDayOf):
            target = TABLES_BY_ENTITY[on.entity]
            ids = con.sql(f"SELECT DISTINCT {quote_ident(target.primary_key[0])} AS {quote_ident(on.column)} "
                          f"FROM {on.entity}").pl()
            scope = Scope(keys=ids)
        elif isinstance(on, FromDateOf) and newest is not None and on.columns == (source.partition_column,):
            scope = Scope(days=_up_to(newest))
            if only_stale_grains:
                grains = con.sql(f"SELECT DISTINCT {quote_ident(table.grain)} AS {quote_ident(on.grain_from)} "
                                 f"FROM _cells").pl()
                scope = Scope(days=scope.days, keys=grains)
        elif isinstance(on, (OnDateOf, FromDateOf)):
            scope = Scope()
        else:
            scope = Scope(days=frozenset())
        columns = list(dict.fromkeys([*r.columns]))
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(r.entity)} AS "
                    f"SELECT * FROM {session.scan(spec, scope, columns)}")


def _up_to(newest: date) -> frozenset[date]:
    first = daily_partitions.start.date()
    return frozenset(first + timedelta(days=i) for i in range((newest - first).days + 1))


def _computed(session: Session) -> list[date]:
    return [r[0] for r in session.con.execute("SELECT max(d) FROM _days").fetchall() if r[0]]


def _clear_pending(session: Session, table: GoldTable, days: frozenset[date]) -> None:
    keys = pl.DataFrame({"asset": [table.name] * len(days), "day": sorted(days)})
    session.replace(GOLD_PENDING, pl.DataFrame(schema=polars_schema(GOLD_PENDING.columns)), Scope(keys=keys))


gold_assets = [build_gold(t) for t in GOLD_TABLES]
