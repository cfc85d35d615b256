"""Canned replies: a team's reply templates, `*.txt.j2` files in the `canned` folder under
`[pipeline] templates_dir`, beside a few packaged defaults (a team's file of the same name
wins). Rendered in a sandbox: a template is the team's text, not code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intake.desk.agents import AgentIdentity


def list_canned(templates_dir: Path | None = None) -> list[str]:
    """The names of the canned replies (file names without `.txt.j2`), sorted."""
    raise NotImplementedError


def render_canned(
    name: str,
    ticket: dict[str, Any],
    agent: AgentIdentity,
    templates_dir: Path | None = None,
) -> str:
    """The canned reply `name` for `ticket` (an API ticket object) from `agent`.

    Placeholders: customer (name or address), reference, subject, first_response_due,
    resolution_due, agent (the agent's name), agent_email."""
    raise NotImplementedError
