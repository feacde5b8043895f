"""Database access: one async engine per process, sessions, and the migration entry point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from settings import settings

ROOT = Path(__file__).resolve().parent.parent  # the repository: alembic.ini, migrations/


def driver_url(url: str, *, driver: str = "psycopg") -> str:
    """`postgresql://…` as SQLAlchemy wants it, with psycopg 3 as the driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return f"postgresql+{driver}://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def embedded_database_url(state_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL kept in the state folder; return its URL."""
    import pgserver

    data_dir = state_dir / "postgres"
    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; `o2o dev` stops it on Ctrl-C.
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    return server.get_uri()


@cache
def database_url() -> str:
    return settings.DATABASE_URL or embedded_database_url(settings.STATE_DIR)


@cache
def engine() -> AsyncEngine:
    return create_async_engine(
        driver_url(database_url()),
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,  # survive a database restart without a failed first query
    )


@cache
def _sessions() -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine(), class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def session() -> AsyncIterator[AsyncSession]:
    async with _sessions()() as db:
        yield db


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = driver_url(url)
    return config


def migrate(url: str | None = None) -> None:
    """Apply every Alembic migration (idempotent). Run in one place only: `o2o migrate`, the
    dev stack's start and compose's `migrate` pre-start service; every other process checks
    (`require_current_schema`) and refuses to start on a schema that is behind."""
    from alembic import command

    command.upgrade(_alembic_config(url or database_url()), "head")


class SchemaBehind(RuntimeError):
    """The database is not at the code's migration head."""


def schema_problem(url: str | None = None) -> str | None:
    """Why the database's schema does not fit this code (None: it is at the head)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, pool

    target = url or database_url()
    heads = set(ScriptDirectory.from_config(_alembic_config(target)).get_heads())
    sync = create_engine(driver_url(target), poolclass=pool.NullPool)
    try:
        with sync.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        sync.dispose()
    if current == heads:
        return None
    at = ", ".join(sorted(current)) or "no migration at all"
    return (
        f"the database schema is behind this code (it is at {at}; the code needs"
        f" {', '.join(sorted(heads))}): run `o2o migrate` first"
    )


def require_current_schema(url: str | None = None) -> None:
    """Refuse to start (SchemaBehind, saying `o2o migrate`) on a schema that is behind."""
    problem = schema_problem(url)
    if problem is not None:
        raise SchemaBehind(problem)
