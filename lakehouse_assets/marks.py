"""Per table and layer, what its stored state was built with (`state.marks`): the
declaration's fingerprint, and for silver the newest bronze ingestion merged. A changed
fingerprint means the table is replayed: bronze reads its rejected records again, silver
merges every key again. The landing sensor reads the same marks to ask for that run."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from lakehouse_assets.schemas.tables import MARKS
from lakehouse_assets.schemas.types import polars_schema
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.tables import Scope, Session

BRONZE, SILVER, GOLD = "bronze", "silver", "gold"


def fingerprint(table: SourceTable, first_partition: date | None = None) -> str:
    """Of everything a table's declaration says (columns, types, rules, layout); silver's also
    of the first partition, which its quarantine rules use."""
    text = json.dumps([dataclasses.asdict(table), str(first_partition)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Mark:
    fingerprint: str | None
    merged_through: datetime | None
    computed_through: date | None = None


def read_marks(session: Session) -> dict[tuple[str, str], Mark]:
    rel = session.scan(MARKS)
    rows = session.con.execute(
        f"SELECT table_name, layer, fingerprint, merged_through, computed_through FROM {rel}").fetchall()
    return {(t, layer): Mark(fp, m, c) for t, layer, fp, m, c in rows}


def write_mark(session: Session, table_name: str, layer: str, fingerprint: str | None,
               merged_through: datetime | None = None, computed_through: date | None = None) -> None:
    row = pl.DataFrame({"table_name": [table_name], "layer": [layer], "fingerprint": [fingerprint],
                        "merged_through": [merged_through], "computed_through": [computed_through]},
                       schema=polars_schema(MARKS.columns))
    session.replace(MARKS, row, Scope(keys=row.select("table_name", "layer")))
