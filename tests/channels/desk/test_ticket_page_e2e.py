"""An agent's day on the ticket page, end to end over real sockets (issue 15): the customer
writes by SMTP with a file; the agent logs in to `intake serve`'s page in headless Chromium,
replies with a file, adds a note from the keyboard alone, takes the ticket, puts it on hold
and downloads the customer's file; the reply reaches a real SMTP sink threaded to the
customer's message, and the customer's answer by SMTP joins the same ticket."""

from __future__ import annotations

import asyncio
import email
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from test_page import EMAIL, PASSWORD, SQLITE_ONLY, browser
from test_ticket_page import axe_check, axe_source, tab_to

from intake.cli.app import Storage, build_pipeline
from intake.cli.serve import Service
from intake.config import Settings
from intake.desk import agents
from intake.desk.actions import QueueFilter, ticket_detail, ticket_rows
from intake.pipeline.references import parse_reference

__all__ = ["axe_source", "browser"]  # fixtures, used by name

DOMAIN = "support.example.com"
CUSTOMER = "alice@customer.example"


class Sink:
    """The outbound relay: a real SMTP server (aiosmtpd) keeping what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[Envelope, EmailMessage]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        mail = email.message_from_bytes(raw, policy=policy.default)
        self.received.append((envelope, cast(EmailMessage, mail)))
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: SMTP(self, loop=loop), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the sink got {len(self.received)} of {count} messages")
            await asyncio.sleep(0.05)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    relay = Sink()
    await relay.start()
    yield relay
    await relay.stop()


@pytest.fixture
async def service(storage: Storage, sink: Sink) -> AsyncIterator[Service]:
    values: dict[str, Any] = {
        "policy": {"name": "four-tier"},
        "smtp": {"host": "127.0.0.1", "port": 0, "domains": [DOMAIN]},
        "web": {"host": "127.0.0.1", "port": 0, "public_url": "http://127.0.0.1"},
        "outbound": {"smtp": {"host": "127.0.0.1", "port": sink.port, "from": f"support@{DOMAIN}"}},
    }
    settings = Settings(**values)
    running = Service(settings, storage, await build_pipeline(settings, storage))
    running.deliverer.idle = 0.05
    await running.start()
    yield running
    await running.stop()


def port_of(service: Service, kind: str) -> int:
    channel = next(c for c in service.channels if type(c).__name__.lower().startswith(kind))
    return int(channel.port)


def customer_mail() -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Alice Customer <{CUSTOMER}>"
    mail["To"] = f"support@{DOMAIN}"
    mail["Subject"] = "Export fails"
    mail["Message-ID"] = "<c1@customer.example>"
    mail.set_content("The export shows 'error 500' since this morning.")
    mail.add_attachment(b"line 1: error 500\n", maintype="text", subtype="plain",
                        filename="export.log")  # fmt: skip
    return mail


def text_of(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    return "" if body is None else str(body.get_content())


def answer_to(reply: EmailMessage) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Alice Customer <{CUSTOMER}>"
    mail["To"] = str(reply["Reply-To"] or f"support@{DOMAIN}")
    mail["Subject"] = f"Re: {reply['Subject']}"
    mail["Message-ID"] = "<c2@customer.example>"
    mail["In-Reply-To"] = str(reply["Message-ID"]).strip()
    mail["References"] = f"<c1@customer.example> {str(reply['Message-ID']).strip()}"
    mail.set_content("Thanks, the new build works.")
    return mail


@SQLITE_ONLY
async def test_an_agents_day_on_the_ticket_page(
    storage: Storage,
    service: Service,
    sink: Sink,
    browser: webdriver.Chrome,
    axe_source: str,
    tmp_path: Path,
) -> None:
    await agents.add_agent(storage.sessions, EMAIL, PASSWORD, name="Ann", now=datetime.now(UTC))
    smtp_port, web_port = port_of(service, "smtp"), port_of(service, "web")
    await aiosmtplib.send(customer_mail(), hostname="127.0.0.1", port=smtp_port)
    await sink.wait_for(1)  # our acknowledgement
    rows = await ticket_rows(storage.sessions, only_open=False, overdue_at=None,
                             where=QueueFilter(), limit=10, offset=0)  # fmt: skip
    assert len(rows) == 1
    ref = rows[0]["reference"]
    base = f"http://127.0.0.1:{web_port}"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    upload = tmp_path / "fix.txt"
    upload.write_text("Use build 4.2.1.\n")

    def drive() -> None:
        wait = WebDriverWait(browser, 20, ignored_exceptions=[StaleElementReferenceException])
        browser.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        browser.get(base + "/login")
        browser.find_element(By.ID, "email").send_keys(EMAIL)
        browser.find_element(By.ID, "password").send_keys(PASSWORD, Keys.ENTER)
        wait.until(lambda d: d.find_elements(By.ID, "queue-rows"))
        browser.get(f"{base}/tickets/{ref}")

        # The reply, with a file.
        browser.find_element(By.ID, "reply-text").send_keys("We fixed it: see the file.")
        browser.find_element(By.ID, "reply-files").send_keys(str(upload))
        browser.find_element(By.CSS_SELECTOR, "#reply-form button[type=submit]").click()
        wait.until(lambda d: "done=reply" in d.current_url or d.find_elements(By.ID, "refusal"))
        assert "done=reply" in browser.current_url, browser.find_element(By.TAG_NAME, "main").text
        assert "queued" in browser.find_element(By.ID, "notice").text
        axe_check(browser, axe_source, "ticket with a reply and its files")

        # The note, from the keyboard alone.
        tab_to(browser, "note-text")
        browser.switch_to.active_element.send_keys("Customer on build 4.2.0.")
        browser.switch_to.active_element.send_keys(Keys.TAB)
        assert browser.switch_to.active_element.text == "Add note"
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        wait.until(lambda d: "done=note" in d.current_url)

        # Take it, then put it on hold.
        browser.find_element(By.CSS_SELECTOR, "#take-form button").click()
        wait.until(lambda d: "done=assign" in d.current_url)
        assert browser.find_element(By.ID, "assignee").text == EMAIL
        browser.find_element(By.ID, "status-choice").send_keys("On hold")
        browser.find_element(By.CSS_SELECTOR, "#status-form button").click()
        wait.until(lambda d: "done=status" in d.current_url)
        assert browser.find_element(By.ID, "status").text == "on_hold"

        # The customer's file downloads, and is not shown inline.
        browser.find_element(By.LINK_TEXT, "export.log").click()
        wait.until(lambda d: (downloads / "export.log").exists())
        timeline = browser.find_element(By.ID, "messages").text
        assert "Customer on build 4.2.0." in timeline and "Internal note" in timeline

    await asyncio.to_thread(drive)
    assert (downloads / "export.log").read_bytes() == b"line 1: error 500\n"

    await sink.wait_for(2)
    envelope, reply = next((e, m) for e, m in sink.received if "We fixed it" in text_of(m))
    assert envelope.rcpt_tos == [CUSTOMER]
    assert reply["In-Reply-To"] == "<c1@customer.example>"
    assert ref in str(reply["Subject"])
    assert [p.get_filename() for p in reply.iter_attachments()] == ["fix.txt"]

    # The customer answers the reply: it joins the same ticket and brings it back from hold.
    await aiosmtplib.send(answer_to(reply), hostname="127.0.0.1", port=smtp_port)
    shown = await ticket_detail(storage.sessions, parse_reference(ref) or 0)
    texts = [m["text"] for m in shown["messages"]]
    assert any("the new build works" in t for t in texts), texts
    assert shown["status"] == "open"
    rows = await ticket_rows(storage.sessions, only_open=False, overdue_at=None,
                             where=QueueFilter(), limit=10, offset=0)  # fmt: skip
    assert [r["reference"] for r in rows] == [ref]

    def final_look() -> None:
        browser.get(f"{base}/tickets/{ref}")
        assert "the new build works" in browser.find_element(By.ID, "messages").text
        browser.save_screenshot(str(tmp_path / "ticket.png"))

    await asyncio.to_thread(final_look)
    print(f"screenshot of the ticket page: {tmp_path / 'ticket.png'}")
