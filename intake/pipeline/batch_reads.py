"""What a group-commit batch reads up front, in a few set-based queries instead of a dozen
small ones per message, kept current with the batch's own writes.

It lives in the batch's session (`session.info`), so the pipeline's steps find it without
new parameters; in a session without one (the careful path of `intake.pipeline.group_commit`, tests,
other callers) every step asks the database as before. Its answers equal those of the
per-message queries:
- within the transaction only the batch itself writes the rows read here (SQLite holds the
  write lock; on PostgreSQL another node's commit made in between is seen at most one batch
  later, as if that node's message had arrived a moment after ours), and every write of the
  batch that matters is recorded here (`stored`, `enqueue`, `forget_suppression`);
- the rate-limit window starts at the batch's start, so it may count a notice a few
  milliseconds older than the per-message window would: never more acknowledgements than
  the limit, possibly one fewer right at the edge of the hour.

It also holds the batch's writes until they can go in one executemany each: new tickets (their
ids handed out up front by `storage.tickets.TicketIds`), messages and outbox rows. Any other
statement the batch's session runs first writes the tickets held so far, so nothing ever reads
(or refers to) a ticket that is not in the database yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from intake.messages import InboundMessage, Receipt, ReceiptStatus
from intake.outbox import handover
from storage import contacts, outbox, suppressions, tickets
from storage.contacts import Match

KEY = "intake.pipeline.batch_reads"
COUNTED_KINDS = ("ack", "endorse")  # the notices the per-sender rate limit counts


@dataclass
class BatchReads:
    seen: dict[tuple[str, str], int]  # (channel, channel message id) -> ticket
    senders: dict[tuple[str, str], Match]  # (column, normalized value) -> contact
    domains: dict[str, Match]  # mail domain -> organization
    rfc_tickets: dict[str, int]  # stored Message-ID -> newest ticket holding it
    suppressed: dict[str, datetime]  # address -> suppressed until
    suppression_known: set[str]  # addresses `suppressed` answers for
    notices: dict[str, int]  # recipient -> acks and endorsements since `since`
    since: datetime
    ids: tickets.TicketIds | None = None  # None: each ticket is inserted when it is opened
    ticket_rows: list[dict[str, Any]] = field(default_factory=list)
    message_rows: list[dict[str, Any]] = field(default_factory=list)
    outbox_rows: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def of(session: AsyncSession) -> BatchReads | None:
        found = session.info.get(KEY)
        return found if isinstance(found, BatchReads) else None

    def newest_ticket(self, rfc_ids: list[str]) -> int | None:
        """`tickets.ticket_by_message_ids`, as an id."""
        found = [self.rfc_tickets[i] for i in rfc_ids if i in self.rfc_tickets]
        return max(found, default=None)

    def is_suppressed(self, address: str, now: datetime) -> bool | None:
        """None: not read up front, ask the database."""
        address = address.lower()
        if address not in self.suppression_known:
            return None
        until = self.suppressed.get(address)
        return until is not None and until > now

    def notices_to(self, recipient: str, since: datetime) -> int | None:
        """None: not read up front (or a window older than the batch's), ask the database."""
        if recipient not in self.notices or since < self.since:
            return None
        return self.notices[recipient]

    def forget_suppression(self, address: str) -> None:
        """The batch suppressed `address`: from now on ask the database."""
        self.suppression_known.discard(address.lower())

    async def insert_ticket(self, session: AsyncSession, row: dict[str, Any]) -> int:
        """`tickets.insert_ticket`, written with the batch's other tickets (see the module)."""
        if self.ids is None:
            return await tickets.insert_ticket(session, **row)
        ticket_id = await self.ids.take(session)
        self.ticket_rows.append({"id": ticket_id, **row})
        return ticket_id

    def _write_tickets(self, session: Session) -> None:
        """Write the tickets held so far, if any (from the session's events and `finish`, in
        its greenlet). The list is emptied first: the insert's own event finds nothing."""
        rows, self.ticket_rows = self.ticket_rows, []
        if rows:
            session.execute(tickets.insert_tickets_statement(), rows)

    def _before_statement(self, state: ORMExecuteState) -> None:
        self._write_tickets(state.session)

    def _before_flush(self, session: Session, flush: UOWTransaction, instances: object) -> None:
        self._write_tickets(session)

    def insert_message(self, row: dict[str, Any]) -> None:
        """Queue a `tickets.message_values` row, written with the others before the commit.

        Nothing of the batch reads `messages` back but through `seen` and `rfc_tickets`, and
        a duplicate key (another node stored the message meanwhile) fails the whole fast
        batch at `finish`, which the careful path then handles message by message.
        """
        self.message_rows.append(row)

    def enqueue(self, row: dict[str, Any]) -> None:
        """Queue an `outbox.outbox_row`; all are written in one statement before the commit."""
        self.outbox_rows.append(row)
        if row["kind"] in COUNTED_KINDS and row["recipient"] in self.notices:
            self.notices[row["recipient"]] += 1

    def stored(self, message: InboundMessage, receipt: Receipt) -> None:
        """`message` was handled: a repeat of it in this batch is a duplicate of `receipt`."""
        if receipt.status is ReceiptStatus.DUPLICATE:
            return  # nothing was stored
        self.seen[(str(message.channel), message.channel_message_id)] = receipt.ticket_id
        if message.rfc_message_id:  # now stored with that ticket too
            before = self.rfc_tickets.get(message.rfc_message_id, receipt.ticket_id)
            self.rfc_tickets[message.rfc_message_id] = max(before, receipt.ticket_id)

    async def finish(self, session: AsyncSession) -> None:
        if self.ticket_rows:
            await session.run_sync(self._write_tickets)
        await tickets.insert_messages(session, self.message_rows)
        await handover.write(session, self.outbox_rows)  # to this node's deliverer, if any
        self.message_rows.clear()
        self.outbox_rows.clear()


async def read_batch(
    session: AsyncSession,
    *,
    message_keys: list[tuple[str, str]],
    sender_keys: list[tuple[str, str]],
    domains: list[str],
    rfc_ids: list[str],
    addresses: list[str],
    recipients: list[str],
    since: datetime,
    ids: tickets.TicketIds | None = None,
) -> BatchReads:
    """Read everything at once and keep it in `session` for the batch's steps.

    With `ids`, new tickets are held and written together (`BatchReads.insert_ticket`)."""
    addresses = [a.lower() for a in addresses]
    counts = await outbox.notices_to_each(session, recipients, since)
    reads = BatchReads(
        seen=await tickets.tickets_of_messages(session, message_keys),
        senders=await contacts.match_senders(session, sender_keys),
        domains=await contacts.match_domains(session, domains),
        rfc_tickets=await tickets.newest_tickets_by_message_ids(session, rfc_ids),
        suppressed=await suppressions.suppressed_until(session, addresses),
        suppression_known=set(addresses),
        notices={recipient: counts.get(recipient, 0) for recipient in recipients},
        since=since,
        ids=ids,
    )
    if ids is not None:
        ids.forget()
        # Writes held tickets before any other statement of the batch (the session is the
        # batch's alone and ends with it, so its listeners go with it).
        sync = session.sync_session
        event.listen(sync, "do_orm_execute", reads._before_statement)
        event.listen(sync, "before_flush", reads._before_flush)
    session.info[KEY] = reads
    return reads
