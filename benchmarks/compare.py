"""Row-for-row comparison of two warehouses (the baseline's and the project's DuckDB files).

Two tables are equal when they hold the same multiset of rows over the project's columns
(`EXCEPT ALL` both ways is empty: exact equality after sorting). Columns that cannot be
equal by construction are left out: `_ingested_at` in bronze (when the run read the file),
`_dq_reason` in quarantine and `reason` / `raw_text` in rejects (wording is not contract), and
the project's `_key` in quarantine (its own text of the primary key, bookkeeping for writing a
key's row in place; not a contract column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from benchmarks.baseline import GOLD_TABLES, TABLES

SKIP = {"_ingested_at", "_dq_reason", "reason", "raw_text", "_key"}


@dataclass
class TableDiff:
    table: str
    baseline_rows: int | None
    project_rows: int | None
    only_in_baseline: int = 0
    only_in_project: int = 0
    columns: list[str] = field(default_factory=list)
    sample_baseline: list[tuple] = field(default_factory=list)
    sample_project: list[tuple] = field(default_factory=list)
    type_notes: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def equal(self) -> bool:
        return self.problem is None and self.only_in_baseline == 0 and self.only_in_project == 0

    def as_dict(self) -> dict:
        return {
            "table": self.table,
            "equal": self.equal,
            "baseline_rows": self.baseline_rows,
            "project_rows": self.project_rows,
            "only_in_baseline": self.only_in_baseline,
            "only_in_project": self.only_in_project,
            "sample_baseline": [list(map(str, r)) for r in self.sample_baseline],
            "sample_project": [list(map(str, r)) for r in self.sample_project],
            "columns": self.columns,
            "type_notes": self.type_notes,
            "problem": self.problem,
        }

    def describe(self) -> str:
        if self.equal:
            return f"{self.table}: equal ({self.project_rows} rows)"
        lines = [
            f"{self.table}: DIFFERENT - baseline {self.baseline_rows} rows, project "
            f"{self.project_rows} rows; {self.only_in_baseline} only in baseline, "
            f"{self.only_in_project} only in project" + (f"; {self.problem}" if self.problem else "")
        ]
        if self.columns:
            lines.append("    columns: " + ", ".join(self.columns))
        lines += [f"    baseline only: {r}" for r in self.sample_baseline]
        lines += [f"    project only:  {r}" for r in self.sample_project]
        return "\n".join(lines)


def layer_tables(layers: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    if "gold" in layers:
        names += [f"gold.{g}" for g in GOLD_TABLES]
    if "silver" in layers:
        for t in TABLES:
            names += [f"silver.{t.entity}", f"silver.{t.entity}_quarantine"]
    if "bronze" in layers:
        names += [f"bronze.{t.name}" for t in TABLES] + ["bronze.cdc_rejects"]
    return names


def _columns(con, db: str, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [db, schema, table],
    ).fetchall()
    return dict(rows)


def compare(baseline: Path, project: Path, layers=("gold",), sample: int = 5,
            memory_limit: str = "4GB") -> list[TableDiff]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # Bounded, spilling next to the project's file: at scale 30 the bronze tables are ~16M rows.
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{Path(project).parent / 'compare.tmp'}'")
    con.execute(f"ATTACH '{baseline}' AS b (READ_ONLY)")
    con.execute(f"ATTACH '{project}' AS p (READ_ONLY)")
    diffs = []
    try:
        for name in layer_tables(tuple(layers)):
            schema, table = name.split(".")
            bcols, pcols = _columns(con, "b", schema, table), _columns(con, "p", schema, table)
            if not pcols or not bcols:
                missing = "project" if not pcols else "baseline"
                other = bcols or pcols
                n = con.execute(f'SELECT count(*) FROM {"b" if bcols else "p"}."{schema}"."{table}"').fetchone()[0] if other else 0
                if not pcols and not bcols:
                    diffs.append(TableDiff(name, None, None, problem="missing on both sides"))
                    continue
                # A table the project never writes because nothing lands in it equals an empty one.
                if n == 0:
                    diffs.append(TableDiff(name, 0, 0))
                    continue
                diffs.append(TableDiff(name, n if bcols else None, n if pcols else None,
                                       problem=f"table missing in the {missing}"))
                continue
            cols = [c for c in pcols if c not in SKIP]
            lost = [c for c in cols if c not in bcols]
            if lost:
                diffs.append(TableDiff(name, None, None, columns=cols,
                                       problem=f"columns missing in the baseline: {lost}"))
                continue
            notes = [f"{c}: baseline {bcols[c]}, project {pcols[c]}" for c in cols if bcols[c] != pcols[c]]
            sel = ", ".join(f'"{c}"' for c in cols)
            b = f'SELECT {sel} FROM b."{schema}"."{table}"'
            p = f'SELECT {sel} FROM p."{schema}"."{table}"'
            nb = con.execute(f"SELECT count(*) FROM ({b})").fetchone()[0]
            np_ = con.execute(f"SELECT count(*) FROM ({p})").fetchone()[0]
            only_b = con.execute(f"SELECT count(*) FROM ({b} EXCEPT ALL {p})").fetchone()[0]
            only_p = con.execute(f"SELECT count(*) FROM ({p} EXCEPT ALL {b})").fetchone()[0]
            diff = TableDiff(name, nb, np_, only_b, only_p, cols, type_notes=notes)
            if only_b or only_p:
                order = ", ".join(f'"{c}"' for c in cols[:3])
                diff.sample_baseline = con.execute(
                    f"SELECT * FROM ({b} EXCEPT ALL {p}) ORDER BY {order} LIMIT {sample}"
                ).fetchall()
                diff.sample_project = con.execute(
                    f"SELECT * FROM ({p} EXCEPT ALL {b}) ORDER BY {order} LIMIT {sample}"
                ).fetchall()
            diffs.append(diff)
    finally:
        con.close()
    return diffs


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare")
    parser.add_argument("baseline", type=Path)
    parser.add_argument("project", type=Path)
    parser.add_argument("--layers", default="gold,silver,bronze")
    args = parser.parse_args(argv)
    diffs = compare(args.baseline, args.project, tuple(args.layers.split(",")))
    for d in diffs:
        print(d.describe())
        for note in d.type_notes:
            print(f"    type: {note}")
    return 0 if all(d.equal for d in diffs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
