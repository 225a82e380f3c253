"""A realistic AWS DMS landing zone for the source tables (CONTRACT sections 1 and 2).

The source database is simulated as *versions*: every row of every table gets the times at
which it was inserted and updated, and maybe deleted. Versions written before the full load
become the table's LOAD rows (its state at the load); later ones become CDC records, numbered
(`_dms_seq`) in commit order across the whole source. Which columns a table has comes from
`SOURCE_TABLES`; only the values come from the per-table hooks (`zone._HOOKS`), so a new table
needs a hook and nothing else. Everything is vectorized (numpy / polars): no Python loop
touches a data row, only files.

Times are int64 microseconds since the epoch, money is int64 cents, and `NULL` (the int64
maximum) stands for SQL NULL in those columns and for "this version never happens".

The modules, each importing only from those above it:

- `context`: time units, `NULL`, target row counts, and the timeline (`_Ctx`) hooks draw from
- `helpers`: vectorized picks, ids, version arrays and text columns the hooks share
- `versions`: a table's versions, split at the load into LOAD rows and numbered CDC records
- `summary`: what a generation reports
- `accounts`, `orders`, `events`, `billing`: the table hooks, one module per group of tables
- `records`: a record's DMS CSV text
- `writer`: LOAD and CDC files (splitting, gzip, names) and dirty records
- `zone`: `generate_landing_zone`, the order of work
- `drop`: `write_cdc_drop`, an incremental drop on a landed zone

Names with a leading underscore are the package's internals, shared between its modules; what
this module exports is the API.
"""

from __future__ import annotations

from lakehouse_assets.sample_data.generator.context import LIVE_ROWS, expected_live_rows
from lakehouse_assets.sample_data.generator.drop import write_cdc_drop
from lakehouse_assets.sample_data.generator.summary import GenerationSummary, TableSummary
from lakehouse_assets.sample_data.generator.zone import generate_landing_zone

__all__ = [
    "LIVE_ROWS",
    "GenerationSummary",
    "TableSummary",
    "expected_live_rows",
    "generate_landing_zone",
    "write_cdc_drop",
]
