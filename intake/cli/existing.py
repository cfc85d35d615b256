"""The read-only commands' promise (CONTRACTS section 2 additions): they never create a
database. SQLite would make an empty file on first connect, so its path is checked first."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from intake.errors import ConfigError


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names; None for another database or an in-memory one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # the engine refuses it with its own message
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):  # a URI filename (?uri=true): leave it alone
        return None
    return Path(parsed.database)


def shown_url(url: str) -> str:
    """The database URL as it may be printed: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def require_database(url: str) -> None:
    """Raise ConfigError naming the path when the configured SQLite file does not exist."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise ConfigError(
            "database.url",
            f"no database at {path.absolute()} (this command only reads; "
            "run `intake db upgrade` or `intake serve` to create one, or check --config)",
        )
