"""The Alembic migrations against the models: no drift, and a clean way down and up again."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from models.db import (
    ROOT,
    SchemaBehind,
    database_url,
    driver_url,
    migrate,
    require_current_schema,
    schema_problem,
)
from tests.conftest import free_port


def _differences(url: str) -> list[object]:
    engine = create_engine(driver_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


@pytest.fixture
def scratch_db() -> Iterator[str]:
    """An empty database next to the test database, dropped afterwards."""
    name = f"o2o_migrations_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(database_url()).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_the_migrated_schema_is_what_the_models_declare() -> None:
    # A model changed without a migration (or the reverse) shows up here as a difference.
    assert _differences(database_url()) == []


def test_every_migration_goes_down_and_up_again(scratch_db: str) -> None:
    migrate(scratch_db)
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = driver_url(scratch_db)
    command.downgrade(config, "base")
    with psycopg.connect(scratch_db) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert [t for (t,) in tables if t != "alembic_version"] == []
    migrate(scratch_db)
    assert _differences(scratch_db) == []


# ------------------------------------------------------------------ migrations run once


def test_a_schema_behind_is_named_with_the_command_that_fixes_it(scratch_db: str) -> None:
    problem = schema_problem(scratch_db)
    assert problem is not None and "`o2o migrate`" in problem
    with pytest.raises(SchemaBehind):
        require_current_schema(scratch_db)
    migrate(scratch_db)
    assert schema_problem(scratch_db) is None


@pytest.mark.parametrize("command", [["worker"], ["api"], ["staff", "list"]])
def test_processes_refuse_to_start_on_a_schema_behind(scratch_db: str, command: list[str]) -> None:
    """The worker, the API and the CLI's module commands check; only `o2o migrate` migrates."""
    env = os.environ | {
        "DATABASE_URL": scratch_db,
        "TEMPORAL_ADDRESS": "127.0.0.1:1",  # never reached: the check comes first
        "API_PORT": str(free_port()),
        "O2O_API_URL": "",
    }
    run = subprocess.run(
        [sys.executable, "-m", "cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode != 0
    assert "o2o migrate" in run.stdout + run.stderr, (run.stdout + run.stderr)[-2000:]
    with psycopg.connect(scratch_db) as conn:  # nothing was created behind our back
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)
