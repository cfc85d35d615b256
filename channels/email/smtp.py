"""SMTP both ways: the inbound server for the support domains (aiosmtpd), and the replier
that sends our notices through the outbound relay (aiosmtplib).

Inbound mail is accepted only for the configured domains (it is never a relay), and 250 is
answered only after the ticket's transaction has committed; 451 when storage is away, so the
sending server retries and nothing is lost. aiosmtpd's protocol runs on our own event loop (its
`Controller` would start a second loop in a thread, away from the database's).

We name ourselves `[smtp] hostname` (default: the first served domain) in the banner and the
EHLO answer, and show no software name or version. One client address may hold at most
`max_connections_per_client` sessions at once, so that it cannot take every slot.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from typing import Any, AnyStr, cast

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.compose import compose
from channels.email.inbound import inbound_from_raw, inbound_from_spool
from channels.email.oauth2 import AccessTokens
from channels.email.refusals import note_reply
from channels.email.relays import IpNetwork, from_trusted_relay, without_spam_verdicts
from channels.email.sender_checks import SenderChecks, sender_authenticity
from channels.email.skeletons import wire_bytes
from channels.email.spool import Spool, read_data
from intake.config import OutboundSmtpSettings, SmtpSettings
from intake.errors import (
    InputRefusedError,
    IntakeError,
    PermanentChannelError,
    TransientChannelError,
    TransientError,
)
from intake.messages import Ack, Authenticity, InboundMessage, Intake, Receipt
from intake.ratelimit import RateLimitedError, RateLimiter

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
# The banner's text after our name: the protocol, never the software or its version.
BANNER_TEXT = "ESMTP"


def to_wire(outcome: Receipt | BaseException) -> str:
    """The one mapping from the pipeline's answer to an SMTP reply (RFC 5321, RFC 3463)."""
    if isinstance(outcome, Receipt):
        return f"250 2.0.0 OK {outcome.reference}"
    if isinstance(outcome, RateLimitedError):  # transient: the sending server retries later
        wait = outcome.retry_seconds
        return f"450 4.7.1 Too many messages from this sender, try again in {wait} s"
    if isinstance(outcome, InputRefusedError):
        return f"554 5.6.0 Message refused: {_safe(outcome.reason)}"
    if isinstance(outcome, TransientError):
        return "451 4.3.0 Temporarily unable to store the message, try again later"
    return "451 4.3.0 Internal error, try again later"


def _safe(text: str) -> str:
    # A reply line must not carry CR/LF (it would end the reply) nor run long.
    return " ".join(text.split())[:200]


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".").lower()


def server_name(settings: SmtpSettings) -> str:
    """Our name in the banner and headers: `hostname`, else the first served domain, else the
    machine's FQDN (the last is what aiosmtpd would say, and may be an internal name)."""
    if settings.hostname.strip():
        return settings.hostname.strip()
    for domain in settings.domains:
        if _domain("@" + domain):
            return _domain("@" + domain)
    return socket.getfqdn()


class _Handler:
    """aiosmtpd's hooks; it finds them by name (`handle_RCPT`, `handle_DATA`)."""

    def __init__(self, channel: SmtpChannel, intake: Intake) -> None:
        self.channel = channel
        self.intake = intake

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if _domain(address) not in self.channel.domains:
            return "550 5.7.1 Relaying denied: not a domain served here"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        mail_from = envelope.mail_from or ""
        spool = server.spool if isinstance(server, _Server) else None
        if spool is not None and spool.file is not None:
            # A large mail: parsed from its file in a thread, the loop serving meanwhile.
            message = await asyncio.to_thread(
                inbound_from_spool,
                spool.file,
                spool.size,
                received_at=self.channel.clock(),
                envelope_sender="" if mail_from in ("", "<>") else mail_from.lower(),
                recipients=tuple(envelope.rcpt_tos),
                max_attachment_bytes=self.channel.max_attachment_bytes,
            )
        else:
            raw = envelope.original_content or b""
            if isinstance(envelope.content, bytes) and not raw:
                raw = envelope.content
            message = inbound_from_raw(
                raw,
                received_at=self.channel.clock(),
                envelope_sender="" if mail_from in ("", "<>") else mail_from.lower(),
                recipients=tuple(envelope.rcpt_tos),
                max_attachment_bytes=self.channel.max_attachment_bytes,
            )
        peer = str(session.peer[0]) if session.peer else ""
        relay = from_trusted_relay(peer, self.channel.trusted_relays)
        if not relay and message.headers:  # a spam verdict counts only from a trusted relay
            headers = without_spam_verdicts(message.headers)
            if len(headers) != len(message.headers):
                message = replace(message, headers=headers)
        self.channel.in_flight += 1
        try:
            message = await self.channel.authenticate(message, session, mail_from, relay=relay)
            outcome: Receipt | BaseException = await self.intake(message)
        except Exception as exc:  # mapped to a reply; the server keeps serving
            if not isinstance(exc, InputRefusedError | TransientError):
                log.exception("intake of %r failed", message.channel_message_id)
            outcome = exc
        finally:
            self.channel.in_flight -= 1
            self.channel.idle.set()
        reply = to_wire(outcome)
        log.info("%s from %r: %s", message.channel_message_id[:80], mail_from, reply)
        return reply


class _Server(SMTP):
    """aiosmtpd's protocol with caps on concurrent connections, in all and per client, and
    DATA past `spool_threshold` bytes kept in a temporary file (channels.email.spool).

    A refused connection never reaches aiosmtpd: its `connection_lost` asserts the session
    that `connection_made` would have opened, so it is not called for one we refused.
    """

    def __init__(self, channel: SmtpChannel, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.channel = channel
        self.client = ""
        self.accepted = False
        self.spool: Spool | None = None  # the DATA being handled

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - the name aiosmtpd calls
        """aiosmtpd's DATA, except where the lines go: aiosmtpd keeps a buffer per line and
        then their join (four times the message's size); ours a file past the threshold."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert envelope is not None  # aiosmtpd's own invariant after MAIL
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = Spool(self.channel.spool_threshold)
        status: str | None = None
        try:
            limit = self.data_size_limit or 0
            refusal = await read_data(
                self._reader, spool, limit=limit, line_limit=self.line_length_limit
            )
            if refusal is None:
                spool.finish()
                if spool.file is None:  # small: in memory, as aiosmtpd hands it over
                    envelope.content = envelope.original_content = spool.getvalue()
                self.spool = spool
                status = await self._call_handler_hook("DATA")
        finally:
            self.spool = None
            spool.close()  # its file is gone: after the reply, a refusal, a lost connection
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(refusal or status or "451 4.3.0 Internal error, try again later")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if peer else ""
        refusal = self._refusal()
        if refusal is not None:
            note_reply(peer, refusal)  # one log line, counted in /metrics; no traceback
            cast(asyncio.WriteTransport, transport).write(refusal.encode() + b"\r\n")
            transport.close()
            return
        self.accepted = True
        self.channel.connections.add(self)
        self.channel.per_client[self.client] += 1
        super().connection_made(transport)

    async def push(self, status: AnyStr) -> None:
        note_reply(self.session.peer if self.session else None, status)  # refusals logged
        await super().push(status)

    def _refusal(self) -> str | None:
        """The 421 reply for a connection we do not take, or None to take it."""
        channel = self.channel
        if channel.closing:
            return "421 4.3.2 Service shutting down"
        cap = channel.max_connections_per_client
        if cap and channel.per_client[self.client] >= cap:
            return "421 4.7.0 Too many connections from your address, try again later"
        limiter = channel.client_limiter
        if limiter is not None and limiter.retry_after(self.client) is not None:
            return "421 4.7.0 Too many connections from your address, try again later"
        if len(channel.connections) >= channel.max_connections:
            return "421 4.3.2 Too busy, try again later"
        return None

    def connection_lost(self, error: Exception | None) -> None:
        if not self.accepted:
            return  # refused in connection_made: aiosmtpd never started a session
        self.accepted = False
        self.channel.connections.discard(self)
        per_client = self.channel.per_client
        per_client[self.client] -= 1
        if per_client[self.client] <= 0:
            del per_client[self.client]  # bounded by the clients connected now
        super().connection_lost(error)


class SmtpChannel:
    """The SMTP listener. `start` returns once it is bound; `stop` drains and closes."""

    name = "smtp"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        clock: Callable[[], datetime],
        tls_context: ssl.SSLContext | None = None,
        max_connections: int = 200,
        timeout: float = 300.0,
        max_attachment_bytes: int = 10_485_760,
        spool_threshold: int = 262_144,
        sender_checks: SenderChecks | None = None,
        client_limiter: RateLimiter | None = None,
        trusted_relays: Sequence[IpNetwork] = (),
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        self.settings = settings
        # Listening sockets bound by someone else (the parent of `intake serve --workers N`);
        # none: `start` binds host and port itself.
        self.sockets = tuple(sockets)
        self.domains = frozenset(_domain("@" + d) for d in settings.domains)
        self.clock = clock
        self.tls_context = tls_context
        self.max_connections = max_connections
        self.timeout = timeout
        self.max_attachment_bytes = max_attachment_bytes
        self.spool_threshold = spool_threshold  # DATA past this many bytes goes to a file
        self.sender_checks = sender_checks  # None: no verdict on the From domain ("none")
        self.client_limiter = client_limiter  # connections per client address
        self.trusted_relays = tuple(trusted_relays)  # whose upstream headers count
        self.max_connections_per_client = settings.max_connections_per_client
        self.hostname = server_name(settings)
        self.connections: set[_Server] = set()
        self.per_client: Counter[str] = Counter()  # open sessions per client address
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.closing = False
        self._servers: list[asyncio.Server] = []
        self._port = 0

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0); 0 before `start`."""
        return self._port

    async def authenticate(
        self, message: InboundMessage, session: Session, mail_from: str, *, relay: bool = False
    ) -> InboundMessage:
        """`message` with the verdict on its From domain (channels.email.sender_checks);
        `relay`: the client is a trusted relay, whose upstream's verdict may be believed."""
        if self.sender_checks is None:
            return message
        try:
            # DNS lookups and RSA verification block: a worker thread keeps the loop serving.
            verdict = await asyncio.to_thread(
                sender_authenticity,
                message.raw_bytes(),
                message.headers,
                message.sender.rpartition("@")[2] if "@" in message.sender else "",
                checks=self.sender_checks,
                ip=str(session.peer[0]) if session.peer else "",
                helo=session.host_name or "",
                mail_from="" if mail_from in ("", "<>") else mail_from,
                relay=relay,
            )
        except Exception as exc:  # mail our checks choke on proves nothing: unverified
            log.warning("sender check of %r failed: %s", message.channel_message_id[:80], exc)
            verdict = Authenticity("fail", (f"our check could not run: {type(exc).__name__}",))
        return replace(message, authenticity=verdict)

    async def start(self, intake: Intake) -> None:
        handler = _Handler(self, intake)
        loop = asyncio.get_running_loop()

        def session() -> _Server:
            return _Server(
                self,
                handler,
                data_size_limit=self.settings.max_message_bytes,
                enable_SMTPUTF8=True,
                tls_context=self.tls_context,
                timeout=self.timeout,
                hostname=self.hostname,
                ident=BANNER_TEXT,
                loop=loop,
            )

        if self.sockets:
            for sock in self.sockets:
                self._servers.append(await loop.create_server(session, sock=sock))
        else:
            self._servers.append(
                await loop.create_server(session, host=self.settings.host, port=self.settings.port)
            )
        self._port = int(self._servers[0].sockets[0].getsockname()[1])
        log.info("SMTP listening on %s:%d", self.settings.host, self._port)

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, let the messages being stored finish, then close every connection."""
        if not self._servers:
            return
        self.closing = True
        for server in self._servers:
            server.close()
        deadline = asyncio.get_running_loop().time() + grace
        while self.in_flight and asyncio.get_running_loop().time() < deadline:
            self.idle.clear()
            try:
                await asyncio.wait_for(self.idle.wait(), timeout=0.5)
            except TimeoutError:
                pass
        for connection in list(self.connections):
            transport = connection.transport
            if transport is not None and not transport.is_closing():
                transport.write(b"421 4.3.2 Service shutting down\r\n")  # type: ignore[attr-defined]
                transport.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers = []


class SmtpReplier:
    """Sends our notices through the outbound relay (`[outbound.smtp]`) with aiosmtplib.

    Kept connections carry the notices that follow each other (a deliverer's pass), instead
    of a connection, EHLO and QUIT per notice: up to `parallel` at once, since a send is
    several round trips, each waiting its turn on an event loop busy with intake, and one
    connection alone fell behind 130 messages a second (issue 19). They are closed after
    `keep_open` idle seconds, well under the five minutes a relay may wait on an idle client
    (RFC 5321 4.5.3.2.7), and a connection is dropped after any error, since the relay's state
    is then unknown. A notice whose send fails on a kept connection is not resent at once: the
    relay may have taken it before failing, and the deliverer's retry is the one place that
    decides to try again.

    The envelope sender is the notice's tokened reply address where there is one, so that a
    bounce comes back naming its ticket.
    """

    def __init__(
        self,
        settings: OutboundSmtpSettings,
        *,
        clock: Callable[[], datetime],
        sender_name: str = "Support",
        timeout: float = 30.0,
        keep_open: float = 5.0,
        local_hostname: str | None = None,
        parallel: int = 8,
    ) -> None:
        self.settings = settings
        self.local_hostname = local_hostname  # our name in EHLO; None: the machine's FQDN
        self.clock = clock
        self.sender_name = sender_name
        self.timeout = timeout
        self.keep_open = keep_open
        self.connections = 0  # opened so far (for tests and metrics)
        self._idle: list[aiosmtplib.SMTP] = []  # open, not sending now; the newest last
        self._slots = asyncio.Semaphore(parallel)
        self._sending = 0
        self._closer: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs
        # auth = "oauth2": the access token is kept across connections until shortly before
        # it expires.
        self.tokens = AccessTokens(settings, "outbound.smtp") if settings.auth == "oauth2" else None

    def _mail(self, ack: Ack, envelope_sender: str) -> bytes | EmailMessage:
        """The notice's bytes from its shape's skeleton; a message to flatten for mail with
        files or an address that needs SMTPUTF8 (rare: `compose` and the generator then)."""
        sender, now = self.settings.from_address, self.clock()
        if ack.files or not (envelope_sender + ack.to).isascii():
            return compose(ack, sender=sender, sender_name=self.sender_name, now=now)
        return wire_bytes(ack, sender=sender, sender_name=self.sender_name, now=now)

    async def send(self, ack: Ack) -> None:
        envelope_sender = ack.reply_to or self.settings.from_address
        mail = self._mail(ack, envelope_sender)
        async with self._slots:
            if self._closer is not None:
                self._closer.cancel()
            self._sending += 1
            client = None
            try:
                client = await self._connected()
                if isinstance(mail, bytes):  # 7-bit, CRLF: sent as it is, no second flatten
                    await client.sendmail(envelope_sender, [ack.to], mail)
                else:
                    await client.send_message(mail, sender=envelope_sender, recipients=[ack.to])
            except aiosmtplib.SMTPRecipientsRefused as exc:
                codes = [r.code for r in exc.recipients]
                text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
                if all(code >= 500 for code in codes):
                    raise PermanentChannelError(text) from exc
                raise TransientChannelError(text) from exc
            except aiosmtplib.SMTPResponseException as exc:
                self._drop(client)
                client = None
                text = f"{exc.code} {exc.message}"
                if exc.code >= 500:
                    raise PermanentChannelError(text) from exc
                raise TransientChannelError(text) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                self._drop(client)
                client = None
                raise TransientChannelError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:  # cancelled mid-send: the relay's state is unknown
                self._drop(client)
                client = None
                raise
            finally:
                self._sending -= 1
                if client is not None:
                    self._idle.append(client)
                if self._idle and not self._sending:
                    loop = asyncio.get_running_loop()
                    self._closer = loop.call_later(self.keep_open, self._idle_close)

    @property
    def connected(self) -> bool:
        return any(client.is_connected for client in self._idle) or self._sending > 0

    async def aclose(self) -> None:
        """Say goodbye to the relay (QUIT) on every idle connection; a later send opens a new
        one."""
        if self._closer is not None:
            self._closer.cancel()
        idle, self._idle = self._idle, []
        for client in idle:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        """A kept connection that is still open, else a new one, logged in."""
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
            client.close()  # one the relay closed
        settings = self.settings
        context = None
        if settings.ca_file is not None:
            context = ssl.create_default_context(cafile=str(settings.ca_file))
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=self.timeout,
            local_hostname=self.local_hostname,
            use_tls=settings.ssl,
            # None: STARTTLS when the relay offers it; True: refuse a relay that does not.
            start_tls=True if settings.starttls and not settings.ssl else None,
            tls_context=context,
        )
        await client.connect()
        self.connections += 1
        try:
            await self._authenticate(client)
        except BaseException:
            client.close()
            raise
        return client

    async def _authenticate(self, client: aiosmtplib.SMTP) -> None:
        """Log in as `[outbound.smtp] auth` says. A refusal is transient for the notice: the
        relay refuses us, not the message, and the notice waits until the login is fixed."""
        settings = self.settings
        try:
            if settings.auth == "password":
                await client.login(settings.user, settings.password.get_secret_value())
            elif self.tokens is not None:
                token = await self.tokens.aget()
                try:
                    await _bearer_auth(client, settings, token)
                except aiosmtplib.SMTPAuthenticationError:
                    # Expired early or revoked: once more with a fresh token.
                    self.tokens.invalidate(token)
                    await _bearer_auth(client, settings, await self.tokens.aget())
        except aiosmtplib.SMTPException as exc:  # refused, or the relay hung up meanwhile
            code = getattr(exc, "code", "")
            log.error("outbound SMTP %s: the relay refused our login: %s", settings.host, exc)
            raise TransientChannelError(f"the relay refused our login ({code})") from exc
        except IntakeError as exc:  # the token endpoint refused us or failed
            log.error("outbound SMTP %s: no access token: %s", settings.host, exc)
            raise TransientChannelError(f"no OAuth2 access token: {exc}") from exc

    @staticmethod
    def _drop(client: aiosmtplib.SMTP | None) -> None:
        """Close `client` after an error: the relay's state is unknown."""
        if client is not None:
            client.close()

    def _idle_close(self) -> None:
        if not self._sending:  # a send in progress rescheduled its own close
            self._closing = asyncio.get_running_loop().create_task(self.aclose())


async def _bearer_auth(client: aiosmtplib.SMTP, settings: OutboundSmtpSettings, token: str) -> None:
    if settings.oauth2_mechanism == "xoauth2":
        await client.auth_xoauth2(settings.user, token)
        return
    # RFC 7628 OAUTHBEARER, which aiosmtplib does not name: the same exchange by hand.
    if client.last_ehlo_response is None:  # after STARTTLS the relay wants EHLO again
        await client.ehlo()
    user = settings.user.replace("=", "=3D").replace(",", "=2C")
    initial = f"n,a={user},\x01auth=Bearer {token}\x01\x01".encode()
    response = await client.execute_command(b"AUTH", b"OAUTHBEARER", base64.b64encode(initial))
    if response.code == 334:  # the error challenge: a dummy %x01 ends the exchange
        response = await client.execute_command(base64.b64encode(b"\x01"))
    if response.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)
