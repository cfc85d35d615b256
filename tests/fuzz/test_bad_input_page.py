"""Markup and script in everything a sender controls, shown on the agents' page: the subject,
the display name, the text, an attachment's file name and the problems parsing recorded.

Over HTTP the page must hold them escaped; in Debian's headless Chromium nothing of them may
run (each payload would set `window.pwned` or open an alert) and each must read as text.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pipelines import make_pipeline
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from channels.desk.page import QueuePage
from channels.email.inbound import inbound_from_raw
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.desk import agents

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
EMAIL, PASSWORD = "ann@vendor.example", "correct horse battery"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCRIPT = "<script>window.pwned=1;alert(1)</script>"
IMG = "<img src=x onerror=window.pwned=2>"
SVG = "<svg onload=window.pwned=3>"
QUOTE = '"\'><iframe srcdoc="<script>parent.pwned=4</script>">'
SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)


def hostile_mail() -> bytes:
    """One mail carrying a payload in each place a sender controls."""
    return (
        b"From: =?utf-8?q?" + _q(f"Eve {IMG}") + b"?= <eve@customer.example>\r\n"
        b"To: support@support.example.com\r\nMessage-ID: <xss@customer.example>\r\n"
        b"Subject: =?utf-8?q?" + _q(f"Urgent: broken {SCRIPT} {SVG}") + b"?=\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>It shows &lt;script&gt; and " + QUOTE.encode() + b"</p>" + SCRIPT.encode() + b"\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="' + _q(IMG).replace(b"=", b"%") + b'.pdf"'
        b"\r\n\r\nJVBERi0=\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        b'filename="=?utf-8?q?' + _q(SVG) + b'?=.pdf"\r\n\r\n' + b"x" * 200 + b"\r\n--b--\r\n"
    )


def _q(text: str) -> bytes:
    """RFC 2047 Q-encoding of `text`, every byte escaped (no specials left)."""
    return "".join(f"={byte:02X}" for byte in text.encode()).encode()


async def seed(storage: Storage) -> str:
    message = inbound_from_raw(hostile_mail(), received_at=NOW, max_attachment_bytes=100)
    receipt = await make_pipeline(storage)(message)
    return receipt.reference


@pytest.fixture
async def web(storage: Storage) -> AsyncIterator[WebChannel]:
    page = QueuePage(
        storage.sessions,
        b"k" * 32,
        clock=lambda: NOW + timedelta(hours=1),
        secure_cookie=False,
        refresh_seconds=1,
    )
    channel = WebChannel(WebSettings(host="127.0.0.1", port=0), [page.routes])
    await agents.add_agent(storage.sessions, EMAIL, PASSWORD, name="Ann", now=NOW)
    await channel.start(make_pipeline(storage))
    yield channel
    await channel.stop()


async def test_payloads_are_escaped_in_every_answer(storage: Storage, web: WebChannel) -> None:
    reference = await seed(storage)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
        form = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        data = {"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD}
        assert (await client.post("/login", data=data)).status_code == 303
        pages = [await client.get(p) for p in ("/", "/queue/rows", f"/tickets/{reference}")]
    for answer in pages:
        assert answer.status_code == 200
        for payload in (SCRIPT, IMG, SVG):
            assert payload not in answer.text, (answer.url, payload)
        scripts = re.findall(r"<script[^>]*>", answer.text)
        assert scripts in ([], ['<script src="/static/page.js" defer>']), scripts
        assert "<iframe" not in answer.text and "<svg" not in answer.text
    ticket = pages[2].text
    assert "&lt;script&gt;window.pwned=1;alert(1)&lt;/script&gt;" in ticket  # the subject
    assert "&lt;svg onload=window.pwned=3&gt;" in ticket  # a file name, and a problem
    assert "attachment-too-large:" in ticket


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Debian's headless Chromium through its own chromedriver (no Selenium Manager)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: scripts/test installs chromium")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-component-update",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        pytest.fail(f"Chromium did not start through {CHROMEDRIVER}: {exc.msg}")
    try:
        yield driver
    finally:
        driver.quit()


def no_alert(driver: webdriver.Chrome) -> None:
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    pytest.fail(f"a sender's script opened an alert: {text!r}")


@SQLITE_ONLY
async def test_nothing_a_sender_wrote_runs_in_chromium(
    storage: Storage, web: WebChannel, browser: webdriver.Chrome
) -> None:
    reference = await seed(storage)
    base = f"http://127.0.0.1:{web.port}"

    def drive() -> None:
        wait = WebDriverWait(browser, 15)
        browser.get(base + "/login")
        browser.find_element(By.ID, "email").send_keys(EMAIL)
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-reference="{reference}"]'))
        # Two refreshes of the table by page.js: the fragment is inserted as HTML each time.
        browser.execute_script("window.rowsSeen = 0;")
        browser.get(base + "/")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-reference="{reference}"]'))
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-reference="{reference}"]').text
        assert SCRIPT in row and SVG in row, row  # shown as text
        no_alert(browser)
        assert browser.execute_script("return window.pwned === undefined") is True
        browser.get(f"{base}/tickets/{reference}")
        wait.until(lambda d: d.find_elements(By.ID, "messages"))
        shown = browser.find_element(By.TAG_NAME, "main").text
        no_alert(browser)
        assert browser.execute_script("return window.pwned === undefined") is True
        assert SCRIPT in shown and SVG in shown, shown
        assert not browser.find_elements(
            By.CSS_SELECTOR, "main script, main img, main svg, main iframe"
        )

    await asyncio.to_thread(drive)
