"""The `email` policy our mail is parsed and composed with: `policy.default`, made cheaper.

`HeaderRegistry` builds a new class (`type(...)`) on every header it makes, about 20 us,
and a message makes some forty of them whether parsed or composed; the class for a given
name never changes, so the registry here keeps each one. Only the standard names and a
bounded number of others are kept: the names in received mail are the sender's to choose.
"""

from __future__ import annotations

from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from typing import Any

KEPT_NAMES = 1024


class KeepingHeaderRegistry(HeaderRegistry):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        found = self._kept.get(key)
        if found is None:
            found = super().__getitem__(name)
            if len(self._kept) < KEPT_NAMES:
                self._kept[key] = found
        return found

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        super().map_to_type(name, cls)
        self._kept.pop(name.lower(), None)


# `policy.default` with the keeping registry: same behaviour, same headers, same bytes.
DEFAULT = policy.default.clone(header_factory=KeepingHeaderRegistry())
