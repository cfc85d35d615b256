"""Canned replies: the packaged ones, a team's own beside and over them, placeholders filled,
and a broken or hostile template refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.desk.agents import AgentIdentity
from intake.desk.canned import CannedNotFoundError, list_canned, render_canned
from intake.errors import InputRefusedError

ANN = AgentIdentity(1, "ann@vendor.example", "Ann Smith")
TICKET = {
    "reference": "SUP-000042",
    "subject": "Export fails",
    "sender": "jo@customer.example",
    "sender_name": "Jo Doe",
    "resolution_due": "2026-03-12T10:00:00+00:00",
}


def test_the_packaged_replies_fill_their_placeholders() -> None:
    assert {"thanks", "more_information", "resolved"} <= set(list_canned())
    text = render_canned("thanks", TICKET, ANN)
    assert text.startswith("Hello Jo Doe,")
    assert "SUP-000042" in text and "2026-03-12T10:00:00+00:00" in text
    assert text.rstrip().endswith("Ann Smith")
    unnamed = render_canned("thanks", TICKET | {"sender_name": ""}, ANN)
    assert unnamed.startswith("Hello jo@customer.example,")


def test_a_teams_own_replies_join_and_override(tmp_path: Path) -> None:
    canned = tmp_path / "canned"
    canned.mkdir()
    (canned / "thanks.txt.j2").write_text("Thanks, {{ customer }}! {{ reference }}\n")
    (canned / "outage.txt.j2").write_text("We know about the outage. {{ agent_email }}\n")
    (canned / "notes.md").write_text("not a template")
    assert list_canned(tmp_path) == ["more_information", "outage", "resolved", "thanks"]
    assert render_canned("thanks", TICKET, ANN, tmp_path) == "Thanks, Jo Doe! SUP-000042\n"
    assert "ann@vendor.example" in render_canned("outage", TICKET, ANN, tmp_path)


@pytest.mark.parametrize("name", ["nope", "../thanks", "thanks.txt.j2", ""])
def test_unknown_names_are_refused(name: str) -> None:
    with pytest.raises(CannedNotFoundError):
        render_canned(name, TICKET, ANN)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("{{ customer.__class__.__mro__ }}", "cannot be rendered"),  # the sandbox
        ("{{ no_such_placeholder }}", "no_such_placeholder"),
        ("{% if %}", "cannot be rendered"),
    ],
)
def test_broken_or_hostile_templates_are_refused(tmp_path: Path, body: str, says: str) -> None:
    (tmp_path / "canned").mkdir()
    (tmp_path / "canned" / "bad.txt.j2").write_text(body)
    with pytest.raises(InputRefusedError, match=says):
        render_canned("bad", TICKET, ANN, tmp_path)
