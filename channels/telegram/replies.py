"""What the bot says by itself (commands, contact cards): plain text, nothing a sender wrote.

Only values from our own database appear here (a reference we formatted, a contact's and an
organization's names); a stranger learns nothing about anyone else's ticket or contact.
"""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import KeyboardButton

from intake.contacts.chats import Link, LinkResult, TicketStatus
from intake.pipeline.references import format_reference

SHARE_PHONE = "Share my phone number"

WELCOME = (
    "Hello! This is the support desk's bot. Write your request here (text, photos or "
    "documents) and we will open a ticket and reply with its reference and when to expect an "
    'answer. Write "urgent" if production is down.\n\n'
    f'If your organization registered your phone number with us, tap "{SHARE_PHONE}" '
    "below so that we recognize you and apply your support plan.\n\n"
    "To see where a ticket stands, send /status followed by its reference, for example "
    "/status SUP-000123."
)
STATUS_USAGE = "Send /status followed by the ticket reference, for example /status SUP-000123."
NOT_YOUR_CONTACT = (
    "Please share your own phone number with the button below; "
    "I can only accept the contact card of the person writing."
)
NOT_MATCHED = (
    "Thank you. We could not match this number to a customer account automatically. "
    "You can still write your request here; please mention your organization's name."
)
UNSUPPORTED = "Please write your request as text; you can add photos or documents to it."
TOO_MANY = (
    "You have sent us many messages in a short time, so we cannot take more just now. "
    "Please wait a little and write again; what you sent before is with us."
)


def share_phone_button() -> KeyboardButton:
    return KeyboardButton(SHARE_PHONE, request_contact=True)


def no_such_ticket(reference: str) -> str:
    return f"No such ticket: {reference}."


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def status(ticket: TicketStatus) -> str:
    """The ticket's status, priority and first-response deadline, for its own sender."""
    head = f"{format_reference(ticket.id)}: {ticket.status.replace('_', ' ')}, "
    head += f"priority {ticket.priority}."
    if ticket.first_response_at is not None:
        return f"{head} We first responded on {_when(ticket.first_response_at)}."
    if ticket.first_response_due is not None:
        return f"{head} First response due by {_when(ticket.first_response_due)}."
    return f"{head} No fixed response time applies; we will answer as soon as we can."


def linked(link: Link) -> str:
    """The answer to the sender's own contact card."""
    if link.result in (LinkResult.LINKED, LinkResult.ALREADY) and link.contact_name:
        return (
            f"Thank you, you are identified as {link.contact_name} of {link.organization}. "
            "Please write your request here now."
        )
    return NOT_MATCHED
