"""Canned replies: a team's reply templates, `*.txt.j2` files in the `canned` folder under
`[pipeline] templates_dir`, beside a few packaged defaults (a team's file of the same name
wins). Rendered in Jinja's sandbox: a template is the team's text, not code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
)
from jinja2.sandbox import SandboxedEnvironment

from intake.desk.agents import AgentIdentity
from intake.errors import InputRefusedError

SUFFIX = ".txt.j2"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class CannedNotFoundError(InputRefusedError):
    """No canned reply of that name."""


def _environment(templates_dir: Path | None) -> SandboxedEnvironment:
    loaders: list[BaseLoader] = [PackageLoader("intake.desk", "canned")]
    if templates_dir is not None:
        loaders.insert(0, FileSystemLoader(templates_dir / "canned"))
    return SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=False,  # plain text: the page escapes what it shows
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def list_canned(templates_dir: Path | None = None) -> list[str]:
    """The names of the canned replies (file names without `.txt.j2`), sorted."""
    names = _environment(templates_dir).list_templates(filter_func=lambda n: n.endswith(SUFFIX))
    return sorted(
        {n.removesuffix(SUFFIX) for n in names if _NAME.fullmatch(n.removesuffix(SUFFIX))}
    )


def context(ticket: dict[str, Any], agent: AgentIdentity) -> dict[str, Any]:
    """The placeholders a canned reply may use."""
    return {
        "customer": ticket.get("sender_name") or ticket.get("sender") or "",
        "reference": ticket.get("reference", ""),
        "subject": ticket.get("subject", ""),
        "organization": ticket.get("organization") or "",
        "priority": ticket.get("priority", ""),
        "first_response_due": ticket.get("first_response_due") or "",
        "resolution_due": ticket.get("resolution_due") or "",
        "agent": agent.name or agent.email,
        "agent_email": agent.email,
    }


def render_canned(
    name: str,
    ticket: dict[str, Any],
    agent: AgentIdentity,
    templates_dir: Path | None = None,
) -> str:
    """The canned reply `name` for `ticket` (an API ticket object) from `agent`.

    Placeholders: customer (name or address), reference, subject, organization, priority,
    first_response_due, resolution_due, agent (the agent's name), agent_email."""
    if not _NAME.fullmatch(name) or name not in list_canned(templates_dir):
        raise CannedNotFoundError(f"no canned reply {name!r}")
    try:
        template = _environment(templates_dir).get_template(name + SUFFIX)
        return template.render(context(ticket, agent)).strip() + "\n"
    except TemplateError as exc:  # the team's file is broken: say which and why
        raise InputRefusedError(f"canned reply {name!r} cannot be rendered: {exc}") from None
