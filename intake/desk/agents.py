"""Agents' accounts: passwords (Argon2id) and API bearer tokens (stored as SHA-256).

What agents do to tickets lives in `intake.desk.actions`. Neither a password nor a token is
ever stored, logged or returned after the moment it is made.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.errors import InputRefusedError
from storage import agents as repo

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # Argon2 takes any length; this only bounds the work per attempt
_HASHER = PasswordHasher()  # argon2-cffi's defaults: Argon2id, the RFC 9106 low-memory profile


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """Who is acting: what an action records as its actor."""

    id: int
    email: str
    name: str


class DuplicateAgentError(InputRefusedError):
    def __init__(self, email: str) -> None:
        super().__init__(f"an agent {email} already exists (use `intake agents token` for a token)")


def normalize_email(email: str) -> str:
    """An agent's login: a plain addr-spec, compared lower-cased."""
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(value) > 320
        or any(c.isspace() for c in value)
    ):
        raise InputRefusedError(f"{email!r} is not an email address")
    return value


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputRefusedError(
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters long"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputRefusedError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_password(password)
    return _HASHER.hash(password)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    # A fast hash is right here: the token carries 256 random bits, so there is nothing to
    # guess, and a deterministic digest lets the lookup be one indexed equality.
    return hashlib.sha256(token.encode()).hexdigest()


async def add_agent(
    sessions: async_sessionmaker[AsyncSession],
    email: str,
    password: str,
    *,
    name: str | None,
    now: datetime,
) -> str:
    """Create an agent with a first API token, in one transaction; returns the token."""
    address = normalize_email(email)
    password_hash = await asyncio.to_thread(hash_password, password)  # ~50 ms of CPU
    token = new_token()
    try:
        async with sessions.begin() as session:
            if await repo.agent_by_email(session, address) is not None:
                raise DuplicateAgentError(address)
            agent_id = await repo.insert_agent(
                session,
                email=address,
                name=(name or "").strip() or address.partition("@")[0],
                password_hash=password_hash,
                now=now,
            )
            await repo.insert_token(session, agent_id, token_digest(token), now)
    except IntegrityError:  # another process added the same email between check and insert
        raise DuplicateAgentError(address) from None
    return token


async def issue_token(
    sessions: async_sessionmaker[AsyncSession], email: str, *, now: datetime
) -> str:
    """Another token for an existing agent; earlier tokens keep working."""
    address = normalize_email(email)
    token = new_token()
    async with sessions.begin() as session:
        agent = await repo.agent_by_email(session, address)
        if agent is None:
            raise InputRefusedError(f"no agent {address}")
        if agent.deactivated_at is not None:
            raise InputRefusedError(f"agent {address} is deactivated")
        await repo.insert_token(session, agent.id, token_digest(token), now)
    return token


async def revoke_tokens(sessions: async_sessionmaker[AsyncSession], email: str) -> int:
    """End every API token of the agent at once; how many there were."""
    address = normalize_email(email)
    async with sessions.begin() as session:
        agent = await repo.agent_by_email(session, address)
        if agent is None:
            raise InputRefusedError(f"no agent {address}")
        return await repo.revoke_tokens(session, agent.id)


async def deactivate_agent(
    sessions: async_sessionmaker[AsyncSession], email: str, *, now: datetime
) -> None:
    """The agent can no longer log in; their tokens and page sessions stop working at once.
    Their name stays on what they did (events, replies)."""
    address = normalize_email(email)
    async with sessions.begin() as session:
        agent = await repo.agent_by_email(session, address)
        if agent is None:
            raise InputRefusedError(f"no agent {address}")
        await repo.deactivate(session, agent.id, now)


async def start_session(
    sessions: async_sessionmaker[AsyncSession], agent: AgentIdentity, *, now: datetime,
    lifetime: timedelta,
) -> str:  # fmt: skip
    """A new page session for a logged-in agent; returns the cookie's value (kept as a hash)."""
    token = new_token()
    async with sessions.begin() as session:
        await repo.insert_session(session, agent.id, token_digest(token), now, now + lifetime)
    return token


async def agent_for_session(
    sessions: async_sessionmaker[AsyncSession], token: str, *, now: datetime
) -> AgentIdentity | None:
    """The active agent whose unexpired session this cookie is, or None."""
    if not token or len(token) > 200:
        return None
    async with sessions() as session:
        agent = await repo.agent_by_session(session, token_digest(token), now)
    return None if agent is None else AgentIdentity(agent.id, agent.email, agent.name)


async def end_session(
    sessions: async_sessionmaker[AsyncSession], token: str, *, now: datetime
) -> None:
    """Log out on the server: the cookie no longer works, wherever a copy of it is."""
    if token and len(token) <= 200:
        async with sessions.begin() as session:
            await repo.end_session(session, token_digest(token), now)


async def list_agents(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await repo.list_agents(session)
    return [
        {
            "email": a.email,
            "name": a.name,
            "created_at": a.created_at.isoformat(),
            "tokens": a.tokens,
            "last_used_at": a.last_used_at.isoformat() if a.last_used_at else None,
            "active": a.deactivated_at is None,
        }
        for a in rows
    ]


async def agent_named(sessions: async_sessionmaker[AsyncSession], email: str) -> AgentIdentity:
    """The agent with this email (who a CLI action is recorded as), else InputRefusedError."""
    address = normalize_email(email)
    async with sessions() as session:
        agent = await repo.agent_by_email(session, address)
    if agent is None:
        raise InputRefusedError(f"no agent {address}")
    return AgentIdentity(agent.id, agent.email, agent.name)


async def agent_for_token(
    sessions: async_sessionmaker[AsyncSession], token: str, *, now: datetime
) -> AgentIdentity | None:
    """The agent a bearer token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    async with sessions.begin() as session:
        agent = await repo.agent_by_token(session, token_digest(token), now)
    return None if agent is None else AgentIdentity(agent.id, agent.email, agent.name)


async def agent_for_password(
    sessions: async_sessionmaker[AsyncSession], email: str, password: str
) -> AgentIdentity | None:
    """The agent if the password is right (the queue page's login), else None."""
    try:
        address = normalize_email(email)
    except InputRefusedError:
        return None
    async with sessions() as session:
        agent = await repo.agent_by_email(session, address)
    if agent is None or len(password) > MAX_PASSWORD_LENGTH:
        return None
    if agent.deactivated_at is not None:  # checked after the lookup, before any hashing
        return None
    if not await asyncio.to_thread(_verify, agent.password_hash, password):
        return None
    if _HASHER.check_needs_rehash(agent.password_hash):  # the library's parameters moved on
        new_hash = await asyncio.to_thread(_HASHER.hash, password)
        async with sessions.begin() as session:
            await repo.set_password_hash(session, agent.id, new_hash)
    return AgentIdentity(agent.id, agent.email, agent.name)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
