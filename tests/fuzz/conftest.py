"""The fuzz folder's pytest setup.

When a hypothesis test fails, hypothesis formats a patch of the failing example with libcst,
which imports a deprecated mypy_extensions name; under `filterwarnings = error` that warning
would replace the failure's report with an INTERNALERROR.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )
