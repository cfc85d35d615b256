"""The tokens of signed webhook posts already taken, each with the digest of its message.

Mailgun signs `timestamp + token`, not the body: a captured post could be replayed within its
five minutes with another message under the same signature. A token is therefore good once,
and again only with the same message (the provider's retry, which is the same ticket).
Shared through the database, so a replay to another node is caught too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import WebhookToken

# Posts older than five minutes are refused by their timestamp; a day is ample margin.
KEEP = timedelta(days=1)


async def remember_token(
    session: AsyncSession, *, provider: str, token: str, digest: str, at: datetime
) -> bool:
    """Keep the token's first digest; True when `digest` is that one."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    module = postgresql if dialect == "postgresql" else sqlite
    await session.execute(
        module.insert(WebhookToken)
        .values(provider=provider, token=token, digest=digest, seen_at=at)
        .on_conflict_do_nothing(index_elements=["provider", "token"])
    )
    stored = await session.scalar(
        select(WebhookToken.digest).where(
            WebhookToken.provider == provider, WebhookToken.token == token
        )
    )
    # Prune on about one post in 64 (chosen by the digest), not on every one: fewer writes
    # contending for the same old rows when several nodes take posts at once.
    if digest[:2] < "04":
        await session.execute(delete(WebhookToken).where(WebhookToken.seen_at < at - KEEP))
    return stored == digest


class SeenTokens:
    """The token ledger `channels.email.posts` takes: one transaction per post."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def __call__(self, *, provider: str, token: str, digest: str, at: datetime) -> bool:
        async with self.sessions.begin() as session:
            return await remember_token(
                session, provider=provider, token=token, digest=digest, at=at
            )
