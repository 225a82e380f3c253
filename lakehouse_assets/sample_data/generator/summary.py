"""What a generation reports (public): files and records per table, and the partition range that
rebuilds it all. Plain frozen dataclasses, apart from how they are computed: the CLI prints
them, tests and benchmarks read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class TableSummary:
    table: str
    files: int
    load_records: int
    cdc_records: int
    live_rows: int  # rows of the source table after the last CDC change

    @property
    def records(self) -> int:
        return self.load_records + self.cdc_records


@dataclass(frozen=True)
class GenerationSummary:
    root: Path
    scale: float
    seed: int
    tables: tuple[TableSummary, ...]
    first_business_date: date
    last_commit_date: date
    seconds: float
    last_file_date: date | None = None  # the newest CDC file's name day (may be after the last commit)

    def table(self, name: str) -> TableSummary:
        return next(t for t in self.tables if t.table == name)

    @property
    def files(self) -> int:
        return sum(t.files for t in self.tables)

    @property
    def records(self) -> int:
        return sum(t.records for t in self.tables)

    @property
    def partition_range(self) -> str:
        """The span `dagster asset materialize --partition-range` needs to rebuild it all, as
        `lakehouse-span` prints it: to the last commit date or the newest file's name day."""
        last = max(d for d in (self.last_commit_date, self.last_file_date) if d is not None)
        return f"{self.first_business_date.isoformat()}...{last.isoformat()}"
