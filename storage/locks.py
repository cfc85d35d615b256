"""Leadership between nodes that share one database: one holder of a named role at a time.

On PostgreSQL the role is a session-level advisory lock held on a dedicated connection for as
long as the holder works. PostgreSQL releases a session lock when its connection ends, so a
holder that dies (kill -9, a lost host) hands the role over by itself. A holder that is only
half dead (frozen, cut off) is dealt with from both sides: the holder checks its lock on that
connection regularly and gives up its work when the check fails or hangs, and the server ends
the session when the checks stop coming (`idle_session_timeout`, TCP keepalives).

On SQLite there is no lock: SQLite is one node by nature (one file, one host), so the single
process that serves it always holds every role.

The lock saves duplicate work; it is not what keeps intake exactly-once (Message-ID
idempotency is). Between a frozen holder's last step and its own check failing, two nodes may
briefly both work: what they both take comes back as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# The first key of our two-key advisory locks: "intake leadership". The migration lock uses
# the one-bigint key space, which PostgreSQL keeps apart from the two-int4 one.
LOCK_CLASS = 0x1A7A
CHECK_TIMEOUT_SECONDS = 5.0  # a check that takes longer counts as failed
# The server drops a lock session silent for this long (the holder checks far more often).
IDLE_SESSION_TIMEOUT = "60s"


class Leadership(Protocol):
    """A role at most one node holds at a time."""

    name: str

    async def acquire(self) -> bool:
        """Try once, without waiting; True when this node holds the role now."""
        ...

    async def held(self) -> bool:
        """Whether the role is still ours (False also when the check fails or hangs)."""
        ...

    async def release(self) -> None:
        """Give the role up (nothing happens when it is not held)."""
        ...


class SoleNode:
    """SQLite: one process is the only node, so it holds every role."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def acquire(self) -> bool:
        return True

    async def held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def lock_key(name: str) -> int:
    """The second advisory-lock key for a role name: CRC-32, as a signed int4."""
    value = zlib.crc32(name.encode())
    return value - 2**32 if value >= 2**31 else value


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a connection of its own."""

    def __init__(
        self, engine: AsyncEngine, name: str, *, check_timeout: float = CHECK_TIMEOUT_SECONDS
    ) -> None:
        self.name = name
        self.key = lock_key(name)
        self._engine = engine
        self._check_timeout = check_timeout
        self._conn: AsyncConnection | None = None

    @property
    def keys(self) -> dict[str, int]:
        return {"cls": LOCK_CLASS, "key": self.key}

    async def acquire(self) -> bool:
        if self._conn is not None:
            return await self.held()
        try:
            async with asyncio.timeout(self._check_timeout):
                return await self._try_lock()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("lock %r: cannot try it: %s", self.name, type(exc).__name__)
            await self._drop()
            return False

    async def _try_lock(self) -> bool:
        # Autocommit: the session lock outlives transactions, and no transaction stays open.
        conn = await self._engine.connect()
        self._conn = conn
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(:cls, :key)"), self.keys)
        if not got:
            await self._close()
            return False
        # The server ends this session, and so frees the lock, when our checks stop coming
        # (a frozen holder) or the peer is gone (TCP keepalives; none on a Unix socket).
        for setting, value in (
            ("idle_session_timeout", IDLE_SESSION_TIMEOUT),
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
        ):
            await conn.execute(text(f"SET {setting} = '{value}'"))
        log.info("lock %r: held", self.name)
        return True

    async def held(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            async with asyncio.timeout(self._check_timeout):
                mine = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND pid = pg_backend_pid() AND granted"
                        " AND classid::int = :cls AND objid::int = :key AND objsubid = 2"
                    ),
                    self.keys,
                )
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("lock %r: lost (%s)", self.name, type(exc).__name__)
            await self._drop()
            return False
        if not mine:
            log.warning("lock %r: no longer held", self.name)
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            async with asyncio.timeout(self._check_timeout):
                await conn.execute(text("SELECT pg_advisory_unlock(:cls, :key)"), self.keys)
        except (SQLAlchemyError, OSError, TimeoutError):
            await self._drop()  # closing the session frees the lock anyway
            return
        await self._close()
        log.info("lock %r: released", self.name)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _drop(self) -> None:
        """Throw the connection away: never back to the pool with a lock it may still hold."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.invalidate()
            await conn.close()
        except (SQLAlchemyError, OSError) as exc:
            log.debug("lock %r: closing a broken connection: %s", self.name, exc)


def leadership(engine: AsyncEngine, name: str) -> Leadership:
    """The advisory lock on PostgreSQL; on SQLite, one node only, no lock."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, name)
    return SoleNode(name)
