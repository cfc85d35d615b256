"""Amazon SES mail through SNS over real HTTP into the real pipeline, on SQLite and
PostgreSQL. Every SNS message is signed here as AWS documents it: the canonical string of the
signed fields in their order, RSA PKCS #1 v1.5 with SHA1 (SignatureVersion 1) or SHA256 (2),
under a test key whose certificate a local HTTPS "SNS" (trustme, 127.0.0.1) serves; that
server also takes the subscription confirmations. Nothing leaves loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import trustme
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from mail_posts import NOW, Desk, desk_for, mail, refuse, serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.email.posts import mail_post_routes
from channels.email.posts.sns import HttpsFetcher
from intake.cli.app import Storage
from intake.config import MailgunSettings, PostmarkSettings, SendgridSettings, SesSettings
from storage.webhook_tokens import SeenTokens

TOPIC = "arn:aws:sns:eu-west-1:123456789012:support-mail"
OTHER_TOPIC = "arn:aws:sns:eu-west-1:210987654321:someone-elses"
PATH = "/webhooks/mail/ses"
CONFIRMED = (
    '<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
    "<ConfirmSubscriptionResult><SubscriptionArn>{arn}:1</SubscriptionArn>"
    "</ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"
)


def signing_key(valid_from: datetime, valid_until: datetime) -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.eu-west-1.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test process keeps its signals
        yield


@dataclass
class FakeSns:
    """SNS's HTTPS side on 127.0.0.1: signing certificates and ConfirmSubscription."""

    tls: trustme.LeafCert
    certificates: dict[str, bytes] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    confirmed: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    async def certificate(self, request: Request) -> Response:
        self.fetched.append(request.url.path)
        pem = self.certificates.get(request.path_params["name"])
        return Response(pem, 200) if pem else Response("NoSuchKey", 404)

    async def confirm(self, request: Request) -> Response:
        self.confirmed.append(dict(request.query_params))
        body = CONFIRMED.format(arn=request.query_params.get("TopicArn", ""))
        return Response(body, media_type="text/xml")

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> FakeSns:
        app = Starlette(routes=[Route("/certs/{name}", self.certificate), Route("/", self.confirm)])
        with (
            self.tls.cert_chain_pems[0].tempfile() as cert,
            self.tls.private_key_pem.tempfile() as key,
        ):
            config = uvicorn.Config(
                app, log_level="warning", lifespan="off", ssl_certfile=cert, ssl_keyfile=key
            )
            config.load()  # reads the files while they exist
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        await self._task
        self._socket.close()


@dataclass
class Signer:
    key: rsa.RSAPrivateKey
    cert_url: str

    def sign(self, message: dict[str, str], version: str = "2") -> dict[str, str]:
        """`message` with SignatureVersion, SigningCertURL and Signature as SNS adds them."""
        if message["Type"] == "Notification":
            names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn"]
            names.append("Type")
        text = "".join(f"{n}\n{message[n]}\n" for n in names if n in message)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), algorithm)
        return message | {
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": self.cert_url,
        }


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[rsa.RSAPrivateKey, bytes]]:
    return {
        "sns": signing_key(NOW - timedelta(days=30), NOW + timedelta(days=300)),
        "other": signing_key(NOW - timedelta(days=30), NOW + timedelta(days=300)),
        "expired": signing_key(NOW - timedelta(days=400), NOW - timedelta(days=1)),
    }


@pytest.fixture
async def sns(authority: trustme.CA, keys: dict[str, Any]) -> AsyncIterator[FakeSns]:
    fake = FakeSns(authority.issue_cert("127.0.0.1"))
    fake.certificates = {
        "SimpleNotificationService-sns.pem": keys["sns"][1],
        "SimpleNotificationService-other.pem": keys["other"][1],
        "SimpleNotificationService-expired.pem": keys["expired"][1],
        "SimpleNotificationService-not-a-certificate.pem": b"<Error>AccessDenied</Error>",
    }
    async with fake:
        yield fake


def signer(sns: FakeSns, keys: dict[str, Any], name: str = "sns", key: str = "") -> Signer:
    cert_url = sns.url(f"/certs/SimpleNotificationService-{name}.pem")
    return Signer(keys[key or name][0], cert_url)


def routes(storage: Storage, authority: trustme.CA) -> Any:
    client = ssl.create_default_context()
    authority.configure_trust(client)
    ses = SesSettings(enabled=True, topic_arns=[TOPIC], cert_host_pattern=r"127\.0\.0\.1:\d+")
    return mail_post_routes(
        mailgun=MailgunSettings(),
        postmark=PostmarkSettings(),
        sendgrid=SendgridSettings(),
        ses=ses,
        clock=lambda: NOW,
        tokens=SeenTokens(storage.sessions),
        fetch=HttpsFetcher(verify=client),
    )


@pytest.fixture
async def desk(storage: Storage, authority: trustme.CA, sns: FakeSns) -> AsyncIterator[Desk]:
    async with desk_for(storage, routes(storage, authority)) as desk:
        yield desk


def received(raw: bytes, encoding: str = "BASE64", **changes: Any) -> str:
    """An SES "Received" notification as a receipt rule's SNS action publishes it."""
    content = base64.b64encode(raw).decode() if encoding == "BASE64" else raw.decode()
    notification = {
        "notificationType": "Received",
        "mail": {
            "timestamp": "2026-03-10T09:59:58.000Z",
            "source": "bob@customer.example",
            "messageId": "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1",
            "destination": ["support@support.example.com"],
            "headersTruncated": False,
            "headers": [{"name": "Subject", "value": "Export fails with error 500"}],
            "commonHeaders": {
                "from": ["Bob Builder <bob@customer.example>"],
                "to": ["support@support.example.com"],
                "messageId": "<req-1@customer.example>",
                "subject": "Export fails with error 500",
            },
        },
        "receipt": {
            "timestamp": "2026-03-10T09:59:58.000Z",
            "processingTimeMillis": 222,
            "recipients": ["support@support.example.com"],
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"},
            "dkimVerdict": {"status": "PASS"},
            "dmarcVerdict": {"status": "PASS"},
            "action": {"type": "SNS", "topicArn": TOPIC, "encoding": encoding},
        },
        "content": content,
    }
    return json.dumps(notification | changes)


def notification(message: str, topic: str = TOPIC, **fields: str) -> dict[str, str]:
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": message,
        "Timestamp": "2026-03-10T09:59:59.120Z",
        "UnsubscribeURL": f"https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&T={topic}",
    } | fields


def subscription(sns: FakeSns, topic: str = TOPIC, **fields: str) -> dict[str, str]:
    token = "2336412f37fb687f5d51e6e2425c464de12884d3b8a0b1a8d4a7f2b7e5d1c3f0a9"
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.",
        "SubscribeURL": sns.url(f"/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}"),
        "Timestamp": "2026-03-10T09:00:00.000Z",
    } | fields


async def post(desk: Desk, message: dict[str, str]) -> int:
    headers = {
        "content-type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": message.get("Type", ""),
        "x-amz-sns-topic-arn": message.get("TopicArn", ""),
    }
    response = await desk.client.post(PATH, content=json.dumps(message), headers=headers)
    return response.status_code


async def test_subscription_to_our_topic_is_confirmed_others_are_not(
    desk: Desk, sns: FakeSns, keys: dict[str, Any]
) -> None:
    sign = signer(sns, keys).sign
    assert await post(desk, sign(subscription(sns))) == 200
    assert [c["Token"][:8] for c in sns.confirmed] == ["2336412f"]
    elsewhere = subscription(sns, SubscribeURL="https://sns.attacker.example/?Token=1")
    refused = [
        await post(desk, sign(subscription(sns, OTHER_TOPIC))),
        await post(desk, sign(elsewhere)),
        await post(desk, signer(sns, keys, key="other").sign(subscription(sns))),
    ]
    assert refused == [403, 403, 403]
    assert len(sns.confirmed) == 1


async def test_signed_notifications_are_one_ticket_in_either_signature_version(
    desk: Desk, sns: FakeSns, keys: dict[str, Any]
) -> None:
    sign = signer(sns, keys).sign
    message = notification(received(mail()))
    assert await post(desk, sign(message, version="1")) == 200
    assert await post(desk, sign(message, version="2")) == 200  # SNS redelivers
    again = notification(received(mail()))  # a second publication of the same mail
    assert await post(desk, sign(again)) == 200
    [ticket] = await desk.tickets()
    assert (ticket.sender, ticket.subject) == (
        "bob@customer.example",
        "Export fails with error 500",
    )
    [stored] = await desk.messages()
    assert stored.channel_message_id == "req-1@customer.example"
    assert sns.fetched == ["/certs/SimpleNotificationService-sns.pem"]  # fetched once


async def test_utf8_content_and_no_subject(desk: Desk, sns: FakeSns, keys: dict[str, Any]) -> None:
    message = notification(received(mail("Přihlášení nefunguje"), encoding="UTF8"))
    del message["Subject"]
    assert await post(desk, signer(sns, keys).sign(message)) == 200
    [ticket] = await desk.tickets()
    assert ticket.subject == "Přihlášení nefunguje"


async def test_forged_notifications_are_403_and_fetch_nothing_elsewhere(
    desk: Desk, sns: FakeSns, keys: dict[str, Any]
) -> None:
    good = signer(sns, keys).sign(notification(received(mail())))
    evil = received(mail("Wire the money", message_id="<evil@attacker.example>"))
    forged = [
        signer(sns, keys, key="other").sign(notification(received(mail()))),  # wrong key
        good | {"Message": evil},  # tampered after signing
        good | {"Subject": "Changed"},
        good | {"Timestamp": "2026-03-10T10:30:00.000Z"},
        good | {"SignatureVersion": "3"},
        good | {"Signature": "bm90IGEgc2lnbmF0dXJl"},
        good | {"Signature": "***"},
        good | {"SigningCertURL": good["SigningCertURL"].replace("https:", "http:")},
        good | {"SigningCertURL": "https://sns.attacker.example/cert.pem"},
        good | {"SigningCertURL": f"https://x@127.0.0.1:{sns.port}/certs/x.pem"},
        good | {"Type": "Whatever"},
        {k: v for k, v in good.items() if k != "Signature"},
        signer(sns, keys, "expired").sign(notification(received(mail()))),
        signer(sns, keys, "not-a-certificate", key="sns").sign(notification(received(mail()))),
        signer(sns, keys).sign(notification(received(mail()), topic=OTHER_TOPIC)),
    ]
    assert [await post(desk, f) for f in forged] == [403] * len(forged)
    not_json = await desk.client.post(PATH, content=b"{", headers={"content-type": "text/plain"})
    assert not_json.status_code == 403
    assert await desk.tickets() == []
    assert all(path.startswith("/certs/") for path in sns.fetched)


async def test_certificate_not_fetchable_is_503_so_sns_retries(
    desk: Desk, sns: FakeSns, keys: dict[str, Any]
) -> None:
    missing = Signer(keys["sns"][0], sns.url("/certs/SimpleNotificationService-gone.pem"))
    assert await post(desk, missing.sign(notification(received(mail())))) == 503
    assert await desk.tickets() == []


async def test_what_is_no_mail_is_not_a_ticket(
    desk: Desk, sns: FakeSns, keys: dict[str, Any]
) -> None:
    sign = signer(sns, keys).sign
    bounce = json.dumps({"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}})
    no_content = json.loads(received(mail()))
    del no_content["content"]
    statuses = [
        await post(desk, sign(notification(bounce))),  # a sending event on the same topic
        await post(desk, sign(notification(json.dumps(no_content)))),  # over 150 KB: no content
        await post(desk, sign(notification("not json"))),
        await post(desk, sign(notification(received(mail(), content="%%%")))),
    ]
    assert statuses == [200, 400, 400, 400]
    assert await desk.tickets() == []


async def test_storage_away_is_503(
    storage: Storage, authority: trustme.CA, sns: FakeSns, keys: dict[str, Any]
) -> None:
    message = signer(sns, keys).sign(notification(received(mail())))
    async with serving(routes(storage, authority), refuse) as client:
        response = await client.post(PATH, content=json.dumps(message))
    assert response.status_code == 503


async def test_unsigned_extras_and_odd_utf8_content_are_still_mail(
    desk: Desk, sns: FakeSns, keys: dict[str, Any]
) -> None:
    ses = json.loads(received(mail("Odd bytes", message_id="<odd@customer.example>")))
    ses["content"] = base64.b64decode(ses["content"]).decode() + "\ud800"  # not encodable
    ses["receipt"]["action"]["encoding"] = "UTF8"
    message: dict[str, Any] = signer(sns, keys).sign(notification(json.dumps(ses)))
    message["MessageAttributes"] = {"origin": {"Type": "String", "Value": "ses"}}  # unsigned
    assert await post(desk, message) == 200
    [ticket] = await desk.tickets()
    assert ticket.subject == "Odd bytes"
