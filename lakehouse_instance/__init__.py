"""Plugins of the Dagster *instance* (not of the code location): loaded by the webserver, the
daemon and every run process from `dagster.yaml`, so they import nothing from the product
package `lakehouse_assets`: a product that fails to import must not take the instance down.

- `sqlite_event_log`: the local instance's faster SQLite event log (data/dagster_home).
- `postgres_pool`: a SQLAlchemy engine plugin that keeps Postgres connections per process
  (deploy/dagster.yaml).

Nothing is imported here, so importing one plugin never loads the other.
"""
