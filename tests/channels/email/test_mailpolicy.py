"""The cheaper `policy.default` (channels.email.policy): the same headers and bytes, kept
classes."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.headerregistry import UnstructuredHeader
from pathlib import Path

import pytest

from channels.email import compose as outmail
from channels.email.policy import DEFAULT, KEPT_NAMES, KeepingHeaderRegistry
from intake.messages import Ack, ChannelKind

MAIL = sorted((Path(__file__).parents[2] / "data" / "mail").glob("*.eml"))


@pytest.mark.parametrize("path", MAIL, ids=lambda p: p.name)
def test_parsing_gives_what_policy_default_gives(path: Path) -> None:
    raw = path.read_bytes()
    ours = email.message_from_bytes(raw, policy=DEFAULT)
    theirs = email.message_from_bytes(raw, policy=policy.default)
    for (name, mine), (_, other) in zip(ours.items(), theirs.items(), strict=True):
        assert str(mine) == str(other)
        assert type(mine).__mro__[1:] == type(other).__mro__[1:], name
        assert [type(d) for d in mine.defects] == [type(d) for d in other.defects]
    assert ours.as_bytes() == theirs.as_bytes()


def test_composed_mail_is_byte_for_byte_policy_default_s(monkeypatch: pytest.MonkeyPatch) -> None:
    ack = Ack(
        outbox_id=7,
        kind="ack",
        channel=ChannelKind.EMAIL,
        to="zoë@example.org",
        subject="[SUP-000007] Re: Export selhává \u2013 naléhavé " + "x" * 90,
        text="Dobrý den,\nvaši žádost jsme přijali.\n",
        html="<p>Dobrý den,</p>",
        reference="SUP-000007",
        in_reply_to="a@example.org",
        references=("a@example.org", "b@example.org"),
        message_id="ack-7@support.example.com",
        reply_to="support+tok@support.example.com",
    )
    now = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    ours = outmail.compose(
        ack, sender="support@support.example.com", sender_name="Podpora", now=now
    )
    monkeypatch.setattr(outmail, "DEFAULT", policy.default)
    theirs = outmail.compose(
        ack, sender="support@support.example.com", sender_name="Podpora", now=now
    )
    assert theirs.policy is policy.default and ours.policy is DEFAULT
    theirs.set_boundary(str(ours.get_boundary()))  # the one random part
    assert ours.as_bytes() == theirs.as_bytes()


def test_composed_boundaries_are_random_and_absent_from_the_text() -> None:
    ack = Ack(outbox_id=1, kind="ack", channel=ChannelKind.EMAIL, to="a@example.org",
              subject="s", text="text", html="<p>html</p>")  # fmt: skip
    now = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    mails = [outmail.compose(ack, sender="s@x.example", sender_name="S", now=now) for _ in "ab"]
    first, second = (m.get_boundary() for m in mails)
    assert first and second and first != second
    raw = mails[0].as_bytes()
    assert raw.count(first.encode()) == 4  # the header's parameter, two parts, the close
    reparsed = email.message_from_bytes(raw, policy=policy.default)
    assert [p.get_content_type() for p in reparsed.iter_parts()] == ["text/plain", "text/html"]


def test_the_registry_keeps_a_bounded_number_of_names() -> None:
    registry = KeepingHeaderRegistry()
    assert registry["Subject"] is registry["subject"]
    for n in range(KEPT_NAMES + 100):
        registry[f"X-Sender-Chosen-{n}"]
    assert len(registry._kept) == KEPT_NAMES
    assert issubclass(registry["X-Not-Kept"], UnstructuredHeader)


def test_remapping_a_name_is_seen() -> None:
    registry = KeepingHeaderRegistry()
    before = registry["X-Custom"]

    class Custom(UnstructuredHeader):
        pass

    registry.map_to_type("X-Custom", Custom)
    after = registry["x-custom"]
    assert issubclass(after, Custom) and not issubclass(before, Custom)
