"""Kept Postgres connections for Dagster's Postgres storage, through SQLAlchemy's public
engine-plugin interface (`sqlalchemy.engine.CreateEnginePlugin`).

dagster-postgres 0.29 creates its run, event log and schedule storage engines with `NullPool`:
every read and every event write opens a new connection (TCP, TLS handshake, SCRAM password
exchange, a new server backend) and closes it. Only `dagster-webserver` switches to a pool
(`optimize_for_webserver`); the daemon, `dagster asset materialize` and every run process do
not, and no `dagster.yaml` setting changes that (upstream: dagster-io/dagster#33935, #33936).
A single-run backfill writes thousands of per-partition events, each one or two connections.

Named in the storage URL (`deploy/dagster.yaml`: `postgres_db.params.plugin: lakehouse_pool`,
which dagster-postgres passes on in the URL's query; SQLAlchemy finds the plugin through the
`sqlalchemy.plugins` entry point in pyproject.toml and removes the name from the URL before
connecting), it swaps NullPool for a QueuePool as the webserver's, per process:

- POOL_SIZE connections kept; more at once are opened and closed as before (unbounded
  overflow), so nothing ever waits for a connection that NullPool would have opened;
- `pool_pre_ping`: a kept connection is checked before use and replaced if the server
  dropped it (failover, restart), so a kept connection never fails an operation;
- recycled after RECYCLE_SECONDS, as the webserver's default `--db-pool-recycle`;
- a forked child forgets its parent's connections (SQLAlchemy's advice for pools and fork).

An engine given any other pool (the webserver's) is left as it is. Transactions, isolation
levels and statements are Dagster's own; only when a connection is opened changes.
"""

from __future__ import annotations

import os
import weakref

from sqlalchemy.engine import CreateEnginePlugin, Engine
from sqlalchemy.pool import NullPool, QueuePool

POOL_SIZE = 2  # the busiest thread of a run process plus one
RECYCLE_SECONDS = 3600


class KeptConnections(CreateEnginePlugin):
    def __init__(self, url, kwargs):
        super().__init__(url, kwargs)
        self.pooled = kwargs.get("poolclass") is NullPool
        if self.pooled:
            # create_engine reads these from the same dict after the plugins are built.
            kwargs.update(poolclass=QueuePool, pool_size=POOL_SIZE, max_overflow=-1,
                          pool_pre_ping=True, pool_recycle=RECYCLE_SECONDS)

    def update_url(self, url):
        return url  # it reads nothing from the URL but its name, which SQLAlchemy removes

    def engine_created(self, engine: Engine) -> None:
        if self.pooled:
            ref = weakref.ref(engine)
            os.register_at_fork(after_in_child=lambda: _forget(ref))


def _forget(ref: weakref.ref) -> None:
    engine = ref()
    if engine is not None:
        engine.dispose(close=False)  # the parent's connections stay the parent's
