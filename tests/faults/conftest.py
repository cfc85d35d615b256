"""Fixtures of the fault suite: a relay for the acknowledgements, and the channel fakes."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from serving import Relay

# The clouds' local fakes (Twilio, Telegram) live with the channel tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channels"))


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    async with Relay() as server:
        yield server
