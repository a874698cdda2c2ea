"""The scratch PostgreSQL server answers queries and keeps tables."""

from __future__ import annotations

import sqlalchemy as sa


def test_postgres_server_runs_queries(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
            assert float(version.split()[0]) >= 10
            conn.execute(sa.text("CREATE TABLE scratch (id integer PRIMARY KEY, name text)"))
            conn.execute(sa.text("INSERT INTO scratch VALUES (1, 'one')"))
            assert conn.execute(sa.text("SELECT name FROM scratch")).scalar_one() == "one"
            conn.execute(sa.text("DROP TABLE scratch"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('scratch')")).scalar_one() is None
    finally:
        engine.dispose()
