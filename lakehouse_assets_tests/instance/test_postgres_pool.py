"""The connection plugin of the production storage (lakehouse_instance/postgres_pool.py), as
SQLAlchemy loads it from a storage URL: it swaps dagster-postgres's NullPool for a kept pool,
leaves any other pool alone, and is gone from the URL the driver sees. (That a Dagster process
then keeps its connections is tested against a real server in test_production_instance.py.)"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool, QueuePool

from lakehouse_instance.postgres_pool import POOL_SIZE

pytestmark = pytest.mark.unit

URL = "postgresql+psycopg2://dagster:secret@127.0.0.1:5432/dagster?sslmode=require&plugin=lakehouse_pool"


def test_nullpool_engines_get_a_kept_pool_that_never_blocks():
    engine = create_engine(URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)  # as dagster-postgres
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() == POOL_SIZE
        assert engine.pool._max_overflow == -1  # beyond the kept ones, open as NullPool would
        assert engine.pool._pre_ping and engine.pool._recycle == 3600
        assert engine.url.query == {"sslmode": "require"}  # the driver never sees `plugin`
    finally:
        engine.dispose()


def test_an_engine_with_its_own_pool_keeps_it():
    # dagster-webserver's optimize_for_webserver gives its engines a pool of its own.
    engine = create_engine(URL, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=20,
                           pool_recycle=100)
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() == 1 and engine.pool._max_overflow == 20
        assert engine.pool._recycle == 100 and not engine.pool._pre_ping
    finally:
        engine.dispose()

