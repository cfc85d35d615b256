"""Secrets every node must share, made once and kept in the database."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Setting

THREAD_SECRET = "thread_secret"


async def thread_secret(session: AsyncSession) -> bytes:
    """The HMAC key of our threading tokens: the first node to ask makes it, the rest read it."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    module = postgresql if dialect == "postgresql" else sqlite
    candidate = secrets.token_hex(32)
    await session.execute(
        module.insert(Setting)
        .values(key=THREAD_SECRET, value=candidate)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    value = await session.scalar(select(Setting.value).where(Setting.key == THREAD_SECRET))
    return bytes.fromhex(value or candidate)
