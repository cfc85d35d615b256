"""The attacker tests reuse the channel tests' local fakes of the Telegram and Twilio clouds."""

from __future__ import annotations

import sys
from pathlib import Path

CHANNEL_TESTS = str(Path(__file__).resolve().parents[1] / "channels")
if CHANNEL_TESTS not in sys.path:
    sys.path.append(CHANNEL_TESTS)
