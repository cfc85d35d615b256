"""What the pipeline asks of a spam engine, and how a message gets the engine's verdict."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from intake.messages import ChannelKind, InboundMessage, SpamVerdict


class SpamChecker(Protocol):
    """One spam engine. `check` never raises for the engine's own troubles (away, slow,
    confused): it answers `SpamVerdict("unavailable", ...)` and intake goes on without it."""

    async def check(self, raw: bytes) -> SpamVerdict: ...


async def screened(message: InboundMessage, checker: SpamChecker | None) -> InboundMessage:
    """`message` with the engine's verdict, for mail (the only channel spam engines read)."""
    if checker is None or message.spam is not None or message.channel is not ChannelKind.EMAIL:
        return message
    if not message.raw and message.raw_spooled is None:
        return message
    return replace(message, spam=await checker.check(message.raw_bytes()))
