"""Sample data: a realistic AWS DMS landing zone for the source tables, and incremental drops."""

from lakehouse_assets.sample_data.generator import (
    LIVE_ROWS,
    GenerationSummary,
    TableSummary,
    expected_live_rows,
    generate_landing_zone,
    write_cdc_drop,
)

__all__ = [
    "LIVE_ROWS",
    "GenerationSummary",
    "TableSummary",
    "expected_live_rows",
    "generate_landing_zone",
    "write_cdc_drop",
]
