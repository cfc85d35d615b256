"""Storage for tests that can be opened again, as a restarted process would open it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from intake.cli.app import Storage
from storage import db


@dataclass(frozen=True)
class ReopenableStorage(Storage):
    """Storage that can be opened again, as a restarted process would."""

    url: str = ""
    engine_options: dict[str, Any] = field(default_factory=dict)

    def reopen(self) -> AsyncEngine:
        return db.create_engine(self.url, **self.engine_options)
