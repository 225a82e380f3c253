"""What every warehouse session must do (storage/tables.py), as tests any backend runs: the
DuckDB file here (test_duckdb_warehouse.py), Iceberg on a moto S3/Glue server elsewhere."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from lakehouse_assets.schemas.types import PgType
from lakehouse_assets.storage.tables import Scope, TableRef, TableSpec

EVENTS = TableSpec(
    TableRef("silver", "contract_events"),
    {"id": PgType.BIGINT, "kind": PgType.TEXT, "amount": PgType.NUMERIC, "at": PgType.TIMESTAMPTZ},
    partition_column="at",
)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2024, 12, day, hour, tzinfo=timezone.utc)


def rows(*items: tuple[int, str, str, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": [i[0] for i in items], "kind": [i[1] for i in items],
         "amount": [i[2] for i in items], "at": [i[3] for i in items]},
        schema={"id": pl.Int64, "kind": pl.String, "amount": pl.String, "at": pl.Datetime("us", "UTC")},
    ).with_columns(pl.col("amount").str.to_decimal(scale=2).cast(pl.Decimal(12, 2)))


def read(session, spec=EVENTS, scope=Scope(), columns=None) -> pl.DataFrame:
    return session.con.sql(f"SELECT * FROM {session.scan(spec, scope, columns)}").pl().sort("id")


class SessionContract:
    """Subclass with a `session` fixture yielding a fresh, writable session."""

    def test_a_missing_table_scans_as_empty_with_its_declared_columns(self, session):
        got = read(session)
        assert got.is_empty() and got.columns == list(EVENTS.columns)
        assert not session.exists(EVENTS.ref)

    def test_replace_creates_and_scans_by_day_key_and_columns(self, session):
        result = session.replace(EVENTS, rows((1, "a", "1.50", at(1)), (2, "b", "2.00", at(2)),
                                             (3, "c", "3.25", at(2, 23))), Scope())
        assert (result.deleted, result.inserted, result.total_rows) == (0, 3, 3)
        assert read(session, scope=Scope.of_days([date(2024, 12, 2)]))["id"].to_list() == [2, 3]
        keyed = read(session, scope=Scope(keys=pl.DataFrame({"id": [1, 3]})), columns=["id", "kind"])
        assert keyed.columns == ["id", "kind"] and keyed["id"].to_list() == [1, 3]
        typed = read(session)
        assert typed.schema["amount"] == pl.Decimal(12, 2)
        assert typed.schema["at"] == pl.Datetime("us", "UTC")

    def test_a_scope_of_days_is_replaced_whole_and_other_days_stay(self, session):
        session.replace(EVENTS, rows((1, "a", "1", at(1)), (2, "b", "2", at(2)), (3, "c", "3", at(3))), Scope())
        result = session.replace(EVENTS, rows((4, "d", "4", at(2, 0))), Scope.of_days([date(2024, 12, 2)]))
        assert (result.deleted, result.inserted, result.total_rows) == (1, 1, 3)
        assert read(session)["id"].to_list() == [1, 3, 4]

    def test_a_scope_of_keys_replaces_only_those_rows(self, session):
        session.replace(EVENTS, rows((1, "a", "1", at(1)), (2, "b", "2", at(1)), (3, "c", "3", at(3))), Scope())
        scope = Scope(days=frozenset({date(2024, 12, 1), date(2024, 12, 2)}), keys=pl.DataFrame({"id": [2]}))
        session.replace(EVENTS, rows((2, "moved", "2", at(2))), scope)
        got = read(session)
        assert got.select("id", "kind").rows() == [(1, "a"), (2, "moved"), (3, "c")]

    def test_a_big_key_set_can_stay_a_relation_of_the_session(self, session):
        session.replace(EVENTS, rows((1, "a", "1", at(1)), (2, "b", "2", at(1)), (3, "c", "3", at(3))), Scope())
        session.con.execute("CREATE OR REPLACE TEMP TABLE _some_keys AS SELECT 2 AS id UNION ALL SELECT 3")
        assert read(session, scope=Scope(keys="_some_keys"))["id"].to_list() == [2, 3]
        session.replace(EVENTS, rows((3, "c2", "3", at(3))), Scope(keys="_some_keys"))
        assert read(session).select("id", "kind").rows() == [(1, "a"), (3, "c2")]

    def test_an_empty_write_empties_its_scope_on_purpose(self, session):
        session.replace(EVENTS, rows((1, "a", "1", at(1)), (2, "b", "2", at(2))), Scope())
        result = session.replace(EVENTS, rows(), Scope.of_days([date(2024, 12, 1)]))
        assert (result.deleted, result.inserted) == (1, 0)
        assert read(session)["id"].to_list() == [2]

    def test_a_write_that_fails_half_way_leaves_the_old_rows(self, session):
        session.replace(EVENTS, rows((1, "a", "1", at(1))), Scope())

        def batches():
            yield rows((2, "b", "2", at(1)))
            raise RuntimeError("the reader broke")

        with pytest.raises(RuntimeError, match="the reader broke"):
            session.replace(EVENTS, batches(), Scope.of_days([date(2024, 12, 1)]))
        assert read(session)["id"].to_list() == [1]

    def test_rows_are_matched_by_name_and_undeclared_columns_refused(self, session):
        reordered = rows((1, "a", "1", at(1))).select("at", "amount", "kind", "id")
        session.replace(EVENTS, reordered, Scope())
        assert read(session).select("id", "kind", "at").row(0) == (1, "a", at(1))
        with pytest.raises(ValueError, match="not declared: extra"):
            session.replace(EVENTS, rows((2, "b", "2", at(1))).with_columns(extra=pl.lit(1)), Scope())

    def test_a_declared_column_added_later_reads_as_null_in_older_rows(self, session):
        session.replace(EVENTS, rows((1, "a", "1", at(1))), Scope())
        grown = TableSpec(EVENTS.ref, {**EVENTS.columns, "note": PgType.TEXT}, "at")
        assert read(session, grown)["note"].to_list() == [None]
        session.replace(grown, rows((2, "b", "2", at(2))).with_columns(note=pl.lit("new")), Scope.of_days([date(2024, 12, 2)]))
        assert read(session, grown)["note"].to_list() == [None, "new"]

    def test_a_changed_column_type_is_refused(self, session):
        session.replace(EVENTS, rows((1, "a", "1", at(1))), Scope())
        retyped = TableSpec(EVENTS.ref, {**EVENTS.columns, "kind": PgType.BIGINT}, "at")
        with pytest.raises(TypeError, match="column types changed"):
            session.replace(retyped, pl.DataFrame({"id": [2], "kind": [1], "amount": [None], "at": [at(1)]}), Scope())

    def test_files_scope_replaces_the_rows_of_those_files(self, session):
        ledger = TableSpec(TableRef("bronze", "contract_ledger"),
                           {"_source_file": PgType.TEXT, "_source_row": PgType.BIGINT, "v": PgType.TEXT})
        first = pl.DataFrame({"_source_file": ["a.csv", "a.csv", "b.csv"], "_source_row": [1, 2, 1], "v": ["x", "y", "z"]})
        session.replace(ledger, first, Scope())
        again = pl.DataFrame({"_source_file": ["a.csv"], "_source_row": [1], "v": ["x2"]})
        result = session.replace(ledger, again, Scope(files=frozenset({"a.csv"})))
        assert (result.deleted, result.inserted, result.total_rows) == (2, 1, 2)
        got = session.con.sql(f"SELECT v FROM {session.scan(ledger)} ORDER BY v").pl()["v"].to_list()
        assert got == ["x2", "z"]
