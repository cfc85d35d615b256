"""Fuzzing what the email API posts are decoded by: form bodies, Postmark's JSON rebuilt as
MIME, SES notifications and SNS messages. The property: each input is either taken or refused
on purpose (HTTPException, InputRefusedError, SnsRefusedError), never anything else, and a
rebuilt message never carries a header a JSON value tried to smuggle in."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from starlette.exceptions import HTTPException

from channels.email.posts.bodies import form_fields
from channels.email.posts.postmark import raw_message
from channels.email.posts.ses import received_mail
from channels.email.posts.sns import FetchError, SnsRefusedError, SnsVerifier
from intake.errors import InputRefusedError

HOSTILE = (
    "", " ", "\x00", "\r\n", "\r\nBcc: x@y.example", "\ud800", "\u2028", "é" * 300, "x" * 3000,
    "=?utf-8?b?AA==?=", "<a@b>", "a@b", '"', "\\", "multipart/mixed", "text/html", "1", "-1",
)  # fmt: skip
text = st.sampled_from(HOSTILE) | st.text(max_size=40)
json_value: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
POSTMARK_KEYS = ("From", "FromFull", "To", "Cc", "Subject", "Date", "MessageID", "TextBody",
                 "HtmlBody", "Headers", "Attachments", "RawEmail", "OriginalRecipient")  # fmt: skip
header = st.fixed_dictionaries({"Name": text, "Value": text})
attachment = st.fixed_dictionaries(
    {
        "Name": text,
        "ContentType": text,
        "Content": text | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    }
)
postmark = st.dictionaries(
    st.sampled_from(POSTMARK_KEYS),
    json_value | st.lists(header, max_size=4) | st.lists(attachment, max_size=2),
    max_size=len(POSTMARK_KEYS),
)


@fuzz_settings(300)
@given(postmark)
def test_postmark_json_is_rebuilt_or_refused(data: dict[str, Any]) -> None:
    try:
        raw = raw_message(data)
    except InputRefusedError:
        return
    assert isinstance(raw, bytes)
    if "RawEmail" not in data or not isinstance(data["RawEmail"], str):
        head = raw.split(b"\n\n", 1)[0].lower()
        assert b"\nbcc:" not in head and not head.startswith(b"bcc:")


@fuzz_settings(300)
@given(
    st.sampled_from(
        (
            "multipart/form-data; boundary=b",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
        )
    ),
    st.binary(max_size=300) | st.sampled_from((b"--b\r\n", b"--b--\r\n", b"a=%zz&b")),
)
def test_form_bodies_are_decoded_or_refused(content_type: str, body: bytes) -> None:
    try:
        fields = form_fields(content_type, body)
    except HTTPException as exc:
        assert exc.status_code in (400, 415)
        return
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in fields.items())


@fuzz_settings(300)
@given(st.dictionaries(st.sampled_from(("content", "receipt", "mail")), json_value, max_size=3))
def test_ses_notifications_give_mail_or_a_refusal(notification: dict[str, Any]) -> None:
    try:
        raw, sender, recipients = received_mail(notification, "base64")
    except InputRefusedError:
        return
    assert isinstance(raw, bytes) and all(isinstance(r, str) for r in recipients)
    assert sender is None or isinstance(sender, str)


async def _no_certificate(url: str) -> bytes:
    raise FetchError("not fetched in this test")


SNS_KEYS = ("Type", "Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Token",
            "SubscribeURL", "Signature", "SignatureVersion", "SigningCertURL")  # fmt: skip


@fuzz_settings(300)
@given(st.dictionaries(st.sampled_from(SNS_KEYS), text, max_size=len(SNS_KEYS)))
def test_sns_messages_are_refused_on_purpose(message: dict[str, str]) -> None:
    verifier = SnsVerifier(_no_certificate, r"sns\.[a-z0-9-]+\.amazonaws\.com", lambda: None)  # type: ignore[arg-type, return-value]
    try:
        asyncio.run(verifier.verify(message))
    except (SnsRefusedError, FetchError):
        return
    raise AssertionError("an unsigned message was taken")
