"""Scopes and quoting keep hostile keys, file names and identifiers inert (storage/scope_sql.py,
values.py): a key or file name that looks like SQL selects exactly its rows, never all of
them, in a table and column whose names look like SQL too. (The old partition filters of the
DuckDB IO manager are gone; scopes are what reads and replaces select by now.)"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakehouse_assets.schemas.types import PgType
from lakehouse_assets.storage.tables import Scope, TableRef, TableSpec
from lakehouse_assets.values import quote_ident, quote_literal
from lakehouse_assets_tests.examples import fixed
from lakehouse_assets_tests.silver_merge import scratch_session

pytestmark = pytest.mark.unit

HOSTILE_KEYS = [
    "x' OR '1'='1",
    "x') OR ('1'='1",
    "' OR 1=1 --",
    "a'; DROP TABLE t; --",
    '" OR ""="',
    "\\' OR 1=1 --",
    "%",
    "_",
    "*",
    "",
]
COLUMN = 'k" OR 1=1 --'
SPEC = TableSpec(
    TableRef("silver", "t'; DROP TABLE t; --"),
    {COLUMN: PgType.TEXT, "d": PgType.DATE, "_source_file": PgType.TEXT},
    partition_column="d",
)


def read(session, scope: Scope) -> list[tuple]:
    return sorted(session.con.execute(f"SELECT * FROM {session.scan(SPEC, scope)}").fetchall())


@pytest.fixture
def keyed(scratch_session):
    """Keys 'a' (two days, files a.csv and a2.csv) and 'b' only."""
    scratch_session.replace(SPEC, pl.DataFrame({
        COLUMN: ["a", "b", "a"], "d": [date(2024, 12, 1), date(2024, 12, 2), date(2024, 12, 3)],
        "_source_file": ["a.csv", "b.csv", "a2.csv"]}), Scope())
    return scratch_session


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_a_key_that_looks_like_sql_selects_only_its_rows(keyed, key):
    assert read(keyed, Scope(keys=pl.DataFrame({COLUMN: [key]}))) == []
    assert len(read(keyed, Scope(keys=pl.DataFrame({COLUMN: [key, "a"]})))) == 2
    result = keyed.replace(SPEC, pl.DataFrame(schema={COLUMN: pl.String, "d": pl.Date, "_source_file": pl.String}),
                           Scope(keys=pl.DataFrame({COLUMN: [key]})))
    assert (result.deleted, result.total_rows) == (0, 3)


@pytest.mark.parametrize("name", HOSTILE_KEYS)
def test_a_file_name_that_looks_like_sql_selects_only_its_rows(keyed, name):
    assert read(keyed, Scope(files=frozenset({name}))) == []
    assert read(keyed, Scope(files=frozenset({name, "b.csv"}))) == [("b", date(2024, 12, 2), "b.csv")]
    result = keyed.replace(SPEC, pl.DataFrame(schema={COLUMN: pl.String, "d": pl.Date, "_source_file": pl.String}),
                           Scope(files=frozenset({name})))
    assert (result.deleted, result.total_rows) == (0, 3)


def test_days_and_keys_together_in_a_hostile_table(keyed):
    scope = Scope(days=frozenset({date(2024, 12, 2), date(2024, 12, 3)}), keys=pl.DataFrame({COLUMN: ["a"]}))
    assert read(keyed, scope) == [("a", date(2024, 12, 3), "a2.csv")]
    keyed.replace(SPEC, pl.DataFrame({COLUMN: ["a"], "d": [date(2024, 12, 2)], "_source_file": ["c.csv"]}), scope)
    assert sorted(r[2] for r in read(keyed, Scope())) == ["a.csv", "b.csv", "c.csv"]


@fixed(100, 62)
@given(st.text(min_size=1, max_size=20), st.lists(st.text(max_size=10), min_size=1, max_size=4))
def test_quote_ident_and_quote_literal_round_trip_any_text(name, keys):
    """For any text, `quote_literal` is that exact string value and `quote_ident` that exact
    column name; a scope of keys over a column of that name selects exactly the rows whose
    key is one of them."""
    session = scratch_session()
    try:
        got = session.con.execute(f"SELECT {quote_literal(name)} AS {quote_ident(name)}")
        assert got.fetchall() == [(name,)]
        assert [d[0] for d in got.description] == [name]
        # Names are declared in code; polars, which carries key sets into DuckDB, cannot hold
        # a NUL in a column name.
        column = name.replace("\x00", "?")
        spec = TableSpec(TableRef("silver", column), {column: PgType.TEXT})
        stored = sorted({"a", "b", *keys})
        session.replace(spec, pl.DataFrame({column: stored}), Scope())
        view = session.scan(spec, Scope(keys=pl.DataFrame({column: keys})))
        selected = sorted(r[0] for r in session.con.execute(f"SELECT * FROM {view}").fetchall())
        assert selected == sorted(set(keys))
    finally:
        session.close()
