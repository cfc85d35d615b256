"""Fixtures of the fault suite: a relay for the acknowledgements, and the channel fakes."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# The clouds' local fakes (Twilio, Telegram) live with the channel tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channels"))

from harness import Relay  # after the path: it imports the fakes


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    server = Relay()
    await server.start()
    yield server
    await server.stop()
