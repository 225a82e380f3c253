"""Performance benchmark of the lakehouse against a plain-DuckDB baseline (see README.md)."""
