"""Spooled bytes (a large mail and its attachments, `intake.messages.Spooled`) written into a
column without holding them whole.

SQLite: the row is inserted with `zeroblob(size)` and then filled in chunks through SQLite's
incremental blob I/O (`sqlite3.Connection.blobopen`). Binding the bytes instead would copy
them into SQLite (the driver binds with SQLITE_TRANSIENT), and that copy stays bound to the
cached statement until its next use. The column must be its record's last: SQLite writes a
trailing zeroblob in place, but allocates any other in full (measured: 2x the size).
aiosqlite does not wrap `blobopen`, so the write is queued to aiosqlite's own thread, the
one its sqlite3 connection belongs to.

PostgreSQL: asyncpg sends a bytea parameter in one message, so the bytes are read whole
into one buffer (and the driver holds its copy while sending): about twice their size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, Table, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from intake.messages import Spooled


def _sqlite(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "sqlite"


def column_value(session: AsyncSession, spooled: Spooled) -> Any:
    """What to insert for the column: room for the bytes (SQLite) or the bytes themselves."""
    if _sqlite(session):
        return func.zeroblob(spooled.size)
    # One buffer of the final size (asyncpg takes any bytes-like): b"".join would hold every
    # chunk and the joined copy at once.
    data = bytearray(spooled.size)
    view, position = memoryview(data), 0
    for chunk in spooled.chunks():
        view[position : position + len(chunk)] = chunk
        position += len(chunk)
    return data


async def fill(
    session: AsyncSession, table: Table, column: str, row: ColumnElement[bool], spooled: Spooled
) -> None:
    """Write the bytes into the room `column_value` made in the `row` of `table` (SQLite;
    elsewhere they are there already)."""
    if not _sqlite(session) or not spooled.size:
        return
    rowids = literal_column("rowid", Integer)
    rowid = (await session.execute(select(rowids).select_from(table).where(row))).scalar_one()
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection  # an aiosqlite.Connection

    def write() -> None:
        with driver._conn.blobopen(table.name, column, rowid) as blob:
            for chunk in spooled.chunks():
                blob.write(chunk)

    await driver._execute(write)
