"""Stores: where workflows, jobs and their logs live (SQLite by default, or in memory)."""

from __future__ import annotations

import os
from pathlib import Path

from engine.protocols import Store
from engine.stores.memory import MemoryStore
from engine.stores.sqlite import SQLiteStore

DB_ENVIRONMENT_VARIABLE = "FLOWGRAPH_DB"


def default_db_path() -> Path:
    """`$FLOWGRAPH_DB`, else `flowgraph.db` in the user's data directory."""
    configured = os.environ.get(DB_ENVIRONMENT_VARIABLE)
    if configured:
        return Path(configured)
    from platformdirs import user_data_dir

    return Path(user_data_dir("flowgraph")) / "flowgraph.db"


def open_store(location: str | Path | None = None) -> Store:
    """`:memory:` gives a MemoryStore, a `postgresql://` URL a PostgresStore, anything else a
    SQLite file (the default location if None)."""
    if str(location) == ":memory:":
        return MemoryStore()
    if str(location).startswith(("postgresql://", "postgres://")):
        from engine.stores.postgres import PostgresStore

        return PostgresStore(str(location))
    return SQLiteStore(Path(location) if location is not None else default_db_path())


__all__ = ["MemoryStore", "SQLiteStore", "default_db_path", "open_store"]
