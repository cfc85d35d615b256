"""Agents, their API tokens, and what they do to tickets (`ticket_events`).

Repository functions take the session first and return plain dataclasses, never ORM rows.
They neither hash nor decide: `intake.desk.agents` and `intake.desk.actions` do that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Agent,
    AgentSession,
    ApiToken,
    Organization,
    SlaAlert,
    Ticket,
    TicketEvent,
)

# A token's last use is written at most this often: a read request should not be a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class AgentRow:
    id: int
    email: str
    name: str
    password_hash: str
    created_at: datetime
    deactivated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AgentListing:
    email: str
    name: str
    created_at: datetime
    tokens: int
    last_used_at: datetime | None
    deactivated_at: datetime | None = None


def _row(agent: Agent) -> AgentRow:
    return AgentRow(
        agent.id, agent.email, agent.name, agent.password_hash, agent.created_at,
        agent.deactivated_at,
    )  # fmt: skip


async def agent_by_email(session: AsyncSession, email: str) -> AgentRow | None:
    agent = await session.scalar(select(Agent).where(Agent.email == email))
    return None if agent is None else _row(agent)


async def insert_agent(
    session: AsyncSession, *, email: str, name: str, password_hash: str, now: datetime
) -> int:
    """A new agent; the unique email makes a racing duplicate an IntegrityError."""
    agent = Agent(email=email, name=name, password_hash=password_hash, created_at=now)
    session.add(agent)
    await session.flush()
    return agent.id


async def set_password_hash(session: AsyncSession, agent_id: int, password_hash: str) -> None:
    await session.execute(
        update(Agent).where(Agent.id == agent_id).values(password_hash=password_hash)
    )


async def list_agents(session: AsyncSession) -> list[AgentListing]:
    # max() keeps the column's type, so last_used_at comes back aware on every dialect.
    tokens = (
        select(
            ApiToken.agent_id,
            func.count(ApiToken.id).label("n"),
            func.max(ApiToken.last_used_at).label("last_used_at"),
        )
        .group_by(ApiToken.agent_id)
        .subquery()
    )
    rows = await session.execute(
        select(Agent, tokens.c.n, tokens.c.last_used_at)
        .outerjoin(tokens, tokens.c.agent_id == Agent.id)
        .order_by(Agent.email)
    )
    return [
        AgentListing(a.email, a.name, a.created_at, n or 0, last_used, a.deactivated_at)
        for a, n, last_used in rows.all()
    ]


async def insert_token(
    session: AsyncSession, agent_id: int, token_hash: str, now: datetime
) -> None:
    session.add(ApiToken(agent_id=agent_id, token_hash=token_hash, created_at=now))
    await session.flush()


async def agent_by_token(session: AsyncSession, token_hash: str, now: datetime) -> AgentRow | None:
    """The agent holding this token (looked up by hash), noting when it was last used."""
    found = (
        await session.execute(
            select(Agent, ApiToken.id)
            .join(ApiToken, ApiToken.agent_id == Agent.id)
            .where(ApiToken.token_hash == token_hash, Agent.deactivated_at.is_(None))
        )
    ).first()
    if found is None:
        return None
    agent, token_id = found
    await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(
                ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at < now - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=now)
    )
    return _row(agent)


async def revoke_tokens(session: AsyncSession, agent_id: int) -> int:
    """Delete every API token of the agent; how many there were."""
    done = await session.execute(delete(ApiToken).where(ApiToken.agent_id == agent_id))
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


async def deactivate(session: AsyncSession, agent_id: int, now: datetime) -> None:
    """No login, token or session of this agent works from the commit on."""
    await session.execute(
        update(Agent)
        .where(Agent.id == agent_id, Agent.deactivated_at.is_(None))
        .values(deactivated_at=now)
    )
    await session.execute(delete(AgentSession).where(AgentSession.agent_id == agent_id))
    await revoke_tokens(session, agent_id)


async def insert_session(
    session: AsyncSession, agent_id: int, token_hash: str, now: datetime, expires: datetime
) -> None:
    session.add(
        AgentSession(agent_id=agent_id, token_hash=token_hash, created_at=now, expires_at=expires)
    )
    await session.flush()


async def agent_by_session(
    session: AsyncSession, token_hash: str, now: datetime
) -> AgentRow | None:
    """The active agent of an unexpired page session (looked up by the cookie's hash)."""
    agent = await session.scalar(
        select(Agent)
        .join(AgentSession, AgentSession.agent_id == Agent.id)
        .where(
            AgentSession.token_hash == token_hash,
            AgentSession.expires_at > now,
            Agent.deactivated_at.is_(None),
        )
    )
    return None if agent is None else _row(agent)


async def end_session(session: AsyncSession, token_hash: str, now: datetime) -> None:
    """Log out: delete the session, and any of anyone's that have expired meanwhile."""
    await session.execute(
        delete(AgentSession).where(
            or_(AgentSession.token_hash == token_hash, AgentSession.expires_at <= now)
        )
    )


@dataclass(frozen=True, slots=True)
class TicketForUpdate:
    """What an agent's action reads of a ticket, locked for the rest of the transaction."""

    id: int
    status: str
    policy: str
    plan: str | None
    priority: str
    severity: int | None
    flags: tuple[str, ...]
    received_at: datetime
    clock_starts: datetime | None
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    on_hold_at: datetime | None
    closed_at: datetime | None
    decision: dict[str, Any]
    region: str | None  # the organization's zone, for regional calendars


async def ticket_for_update(session: AsyncSession, ticket_id: int) -> TicketForUpdate | None:
    # FOR UPDATE serializes two agents changing one ticket on PostgreSQL; SQLite's
    # BEGIN IMMEDIATE (storage.db) already serializes every writer.
    found = (
        await session.execute(
            select(Ticket, Organization.region)
            .outerjoin(Organization, Ticket.organization_id == Organization.id)
            .where(Ticket.id == ticket_id)
            .with_for_update(of=Ticket)
        )
    ).first()
    if found is None:
        return None
    t, region = found
    return TicketForUpdate(
        t.id, t.status, t.policy, t.plan, t.priority, t.severity, tuple(t.flags),
        t.received_at, t.clock_starts, t.first_response_due, t.resolution_due,
        t.first_response_at, t.resolved_at, t.on_hold_at, t.closed_at, dict(t.decision),
        region,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class TicketTimes:
    """What the list row (`intake.desk.views.ticket_json`) leaves out and agents need."""

    clock_starts: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    on_hold_at: datetime | None
    closed_at: datetime | None
    last_message_at: datetime


async def ticket_times(session: AsyncSession, ticket_id: int) -> TicketTimes | None:
    found = (
        await session.execute(
            select(
                Ticket.clock_starts,
                Ticket.first_response_at,
                Ticket.resolved_at,
                Ticket.on_hold_at,
                Ticket.closed_at,
                Ticket.last_message_at,
            ).where(Ticket.id == ticket_id)
        )
    ).first()
    return None if found is None else TicketTimes(*found)


async def insert_event(
    session: AsyncSession,
    ticket_id: int,
    *,
    at: datetime,
    actor: str,
    kind: str,
    details: dict[str, Any],
) -> None:
    session.add(TicketEvent(ticket_id=ticket_id, at=at, actor=actor, kind=kind, details=details))
    await session.flush()


@dataclass(frozen=True, slots=True)
class EventView:
    at: datetime
    actor: str
    kind: str
    details: dict[str, Any]


async def ticket_events(session: AsyncSession, ticket_id: int) -> list[EventView]:
    rows = await session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
    )
    return [EventView(e.at, e.actor, e.kind, dict(e.details)) for e in rows]


async def forget_sla_alerts(session: AsyncSession, ticket_id: int) -> None:
    """Forget the SLA alerts sent for a ticket whose deadlines were just recomputed."""
    await session.execute(delete(SlaAlert).where(SlaAlert.ticket_id == ticket_id))
