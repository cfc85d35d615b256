"""Where polling stands never goes back within one UIDVALIDITY, on both databases: a frozen
former holder of the mailbox that wakes and saves late cannot undo its successor's work."""

from __future__ import annotations

from datetime import UTC, datetime

from intake.cli.app import Storage
from storage import mailboxes

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
BOX = "support@example.com@127.0.0.1:143/INBOX"


async def save(storage: Storage, uidvalidity: int, last_uid: int) -> mailboxes.MailboxPosition:
    async with storage.sessions.begin() as session:
        return await mailboxes.save_position(
            session, BOX, uidvalidity=uidvalidity, last_uid=last_uid, at=NOW
        )


async def stored(storage: Storage) -> mailboxes.MailboxPosition | None:
    async with storage.sessions() as session:
        return await mailboxes.get_position(session, BOX)


async def test_position_moves_forward_only(storage: Storage) -> None:
    await save(storage, 7, 10)
    await save(storage, 7, 25)  # the successor
    late = await save(storage, 7, 12)  # the former holder, waking up
    assert late.last_uid == 25
    found = await stored(storage)
    assert found is not None and (found.uidvalidity, found.last_uid) == (7, 25)


async def test_a_new_uidvalidity_starts_over(storage: Storage) -> None:
    await save(storage, 7, 25)
    await save(storage, 8, 3)
    found = await stored(storage)
    assert found is not None and (found.uidvalidity, found.last_uid) == (8, 3)
