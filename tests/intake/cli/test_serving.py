"""`intake serve` as an operator runs it (issue 18): refusals in its log and in /metrics, and
a SIGTERM right after a 250 that still lets the acknowledgement out."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from serving import Relay, ServeProcess, accepts, free_port, wait_until

ROOT = Path(__file__).resolve().parents[3]


def mail(subject: str, size: int = 0) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Jan Novak <jan@customer.example>"
    message["To"] = "support@support.example.com"
    message["Subject"] = subject
    message.set_content("The export fails." + " padding" * (size // 8))
    return message


class Served:
    def __init__(self, folder: Path, relay: Relay) -> None:
        self.smtp, self.web = free_port(), free_port()
        (folder / "intake.toml").write_text(
            f'[database]\nurl = "sqlite+aiosqlite:///{folder / "intake.db"}"\n'
            f"[smtp]\nport = {self.smtp}\nmax_message_bytes = 4096\n"
            f"[web]\nport = {self.web}\n"
            f"[outbound.smtp]\nport = {relay.port}\n",
            encoding="utf-8",
        )
        path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
        self.child = ServeProcess("intake serve", folder, env)

    async def start(self) -> None:
        self.child.start()

        def ready() -> bool:
            self.child.assert_running()
            return "serving; policy" in self.child.output() and accepts(self.smtp)

        await wait_until(ready, "intake serve to start")

    async def stop(self) -> int | None:
        return await asyncio.to_thread(self.child.stop)


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    async with Relay() as server:
        yield server


async def test_refusals_are_logged_and_counted(tmp_path: Path, relay: Relay) -> None:
    served = Served(tmp_path, relay)
    await served.start()
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=served.smtp) as client:
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                await client.send_message(mail("secret words"), recipients=["x@elsewhere.example"])
            with pytest.raises(aiosmtplib.SMTPResponseException) as big:
                await client.send_message(mail("secret words", size=8000))
            assert big.value.code == 552
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.web}") as web:
            refused = await web.post("/callback", data={"name": "secret words"})
            assert refused.status_code in (400, 403)
            metrics = (await web.get("/metrics")).text
    finally:
        assert await served.stop() == 0
    counted = dict(re.findall(r"^intake_refusals_total\{(.*?)\} (\S+)$", metrics, re.M))
    assert counted['channel="email",reason="relaying_denied"'] == "1.0"
    assert counted['channel="email",reason="too_large"'] == "1.0"
    assert any(key.startswith('channel="web"') for key in counted), counted
    lines = [x for x in served.child.output().splitlines() if "intake.refusals" in x]
    assert any("refused email from '127.0.0.1': relaying_denied" in x for x in lines), lines
    assert any("refused email from '127.0.0.1': too_large" in x for x in lines), lines
    assert any("refused web from '127.0.0.1'" in x for x in lines), lines
    assert not [x for x in lines if "secret words" in x or "export" in x.lower()]


async def test_sigterm_right_after_250_still_sends_its_acknowledgement(
    tmp_path: Path, relay: Relay
) -> None:
    served = Served(tmp_path, relay)
    await served.start()
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=served.smtp) as client:
            _, reply = await client.send_message(mail("Export fails"))
        assert reply.startswith("2.0.0 OK SUP-")
    finally:
        assert await served.stop() == 0  # SIGTERM at once, then its exit status
    assert relay.recipients() == ["jan@customer.example"], served.child.output()
    [(_, ack)] = relay.received
    # An unidentified sender's subject is not quoted back (issue 16: no reflection).
    reference = reply.split()[-1]
    assert str(ack["Subject"]) == f"[{reference}] Your support request"
