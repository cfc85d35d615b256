"""Messages handled in one group-commit batch (intake.pipeline.batch_reads) get the answers
they would get one at a time: duplicates, threads, rate limits and suppressions made earlier in the
same batch count. `asyncio.gather` puts every message into one batch: all are waiting
before the writer task first runs."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from channels.email.inbound import inbound_from_raw
from intake.cli.app import Storage
from intake.messages import ChannelKind, InboundMessage, Receipt, ReceiptStatus
from intake.pipeline import references
from intake.pipeline.group_commit import GroupCommit
from intake.pipeline.pipeline import Pipeline
from storage import contacts
from storage.models import Message, Outbox, Suppression, Ticket
from tests.pipelines import make_pipeline

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
SECRET = b"s" * 32
_ids = itertools.count(1)


def mail(sender: str, subject: str, **fields: Any) -> InboundMessage:
    message_id = fields.pop("message_id", f"b{next(_ids)}@customer.example")
    return InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_message_id=message_id,
        rfc_message_id=message_id,
        received_at=NOW,
        sender=sender,
        subject=subject,
        text="The export fails with error 500.",
        **fields,
    )


class CountingCommits:
    """Wraps a pipeline's group commit to count its batches."""

    def __init__(self, intake: Pipeline) -> None:
        self.batches = 0
        group = intake.group
        commit = group._commit

        async def counted(batch: list[Any]) -> None:
            self.batches += 1
            await commit(batch)

        group._commit = counted  # type: ignore[method-assign]


async def count(storage: Storage, model: Any, *where: Any) -> int:
    async with storage.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_batch_sees_its_own_writes(storage: Storage) -> None:
    async with storage.sessions.begin() as session:
        org_id, _ = await contacts.upsert_organization(
            session, name="Acme", plan="plus", policy=None, support_start=None, region=None,
            domains=("acme.example",),
        )  # fmt: skip
        await contacts.upsert_contact(
            session, org_id, name="Alice", email="alice@acme.example", phone=None, telegram=None,
            role="nominated",
        )  # fmt: skip
    intake = make_pipeline(storage, acks_per_sender_per_hour=2)
    commits = CountingCommits(intake)
    first = mail("alice@acme.example", "Export fails", message_id="first@acme.example")
    batch = [
        first,
        first,  # redelivered within the batch
        mail("alice@acme.example", "Re: Export fails", thread_hints=("<first@acme.example>",)),
        mail("carol@acme.example", "Another problem"),  # known by the domain
        *(mail("dave@elsewhere.example", f"Request {n}") for n in range(4)),
    ]
    receipts = await asyncio.gather(*(intake(m) for m in batch))
    assert commits.batches == 1 and intake.group.redone == 0  # all of it the fast way
    statuses = [r.status for r in receipts]
    assert statuses[:3] == [
        ReceiptStatus.ACCEPTED,
        ReceiptStatus.DUPLICATE,
        ReceiptStatus.FOLLOW_UP,
    ]
    assert receipts[1].ticket_id == receipts[2].ticket_id == receipts[0].ticket_id
    async with storage.sessions() as session:
        alice = await session.get(Ticket, receipts[0].ticket_id)
        carol = await session.get(Ticket, receipts[3].ticket_id)
    assert alice is not None and alice.contact_status == "nominated"
    assert carol is not None and carol.contact_status == "known"
    assert await count(storage, Ticket) == 6 and await count(storage, Message) == 7
    # One ack to Alice (not for the follow-up), one to Carol, two of Dave's four (the limit).
    acks = await count(storage, Outbox, Outbox.kind == "ack")
    assert acks == 4
    assert await count(storage, Outbox, Outbox.recipient == "dave@elsewhere.example") == 2


async def test_a_batch_counts_acks_queued_before_it(storage: Storage) -> None:
    intake = make_pipeline(storage, acks_per_sender_per_hour=3)
    await intake(mail("erin@elsewhere.example", "One"))
    await intake(mail("erin@elsewhere.example", "Two"))
    await asyncio.gather(*(intake(mail("erin@elsewhere.example", f"More {n}")) for n in range(3)))
    assert await count(storage, Outbox, Outbox.kind == "ack") == 3
    assert intake.group.redone == 0


def bounce_of(ticket_id: int, recipient: str) -> InboundMessage:
    to = references.reply_address(SECRET, ticket_id, "support@support.example.com")
    raw = (
        "From: MAILER-DAEMON@mx.customer.example\r\n"
        f"To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn{next(_ids)}@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 No such user\r\n--b--\r\n"
    ).encode()
    return inbound_from_raw(raw, received_at=NOW, envelope_sender="", recipients=(to,))


async def test_a_bounce_suppresses_for_the_rest_of_its_batch(storage: Storage) -> None:
    intake = make_pipeline(storage, secret=SECRET)
    first = await intake(mail("frank@elsewhere.example", "Export fails"))
    report, again = await asyncio.gather(
        intake(bounce_of(first.ticket_id, "frank@elsewhere.example")),
        intake(mail("frank@elsewhere.example", "Another problem")),
    )
    assert report.status is ReceiptStatus.REPORT and report.ticket_id == first.ticket_id
    assert again.status is ReceiptStatus.ACCEPTED
    assert await count(storage, Suppression) == 1
    assert await count(storage, Outbox, Outbox.kind == "ack") == 1  # none after the bounce
    assert intake.group.redone == 0


async def test_a_failure_at_the_end_of_a_fast_batch_redoes_it_carefully(storage: Storage) -> None:
    """The fast path's finisher fails: nothing of that attempt is kept, every message is
    handled again in its own savepoint, and the finisher does not run again."""
    finished = 0

    async def prepare(session: Any, messages: Any) -> Any:
        async def finish(session: Any) -> None:
            nonlocal finished
            finished += 1
            raise ValueError("a write of the batch failed")

        return finish

    async def work(session: Any, message: InboundMessage) -> Receipt:
        n = int(message.channel_message_id)
        session.add(Message(
            ticket_id=ticket_id, channel="sms", channel_message_id=str(n),
            direction="in", sender="+420601123456", subject="", text="", raw=b"",
            problems=[], received_at=NOW,
        ))  # fmt: skip
        await session.flush()
        return Receipt(ReceiptStatus.ACCEPTED, ticket_id, "SUP-1")

    pipeline = make_pipeline(storage)
    ticket_id = (await pipeline(mail("gina@elsewhere.example", "Hello"))).ticket_id
    group = GroupCommit(storage.sessions, work, prepare=prepare)
    sms = [
        InboundMessage(
            channel=ChannelKind.SMS, channel_message_id=str(n), received_at=NOW, sender="+1"
        )
        for n in range(3)
    ]
    receipts = await asyncio.gather(*(group.submit(m) for m in sms))
    assert [r.status for r in receipts] == [ReceiptStatus.ACCEPTED] * 3
    assert finished == 1 and group.redone == 1
    assert await count(storage, Message, Message.channel == "sms") == 3
