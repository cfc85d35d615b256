"""The agents' queue page over real HTTP (login, escaping, filters, headers) and in Debian's
headless Chromium driven by Selenium (the real login form, the live table, one ticket, and a
screenshot). Chromium missing is a failure, not a skip: CI installs it (scripts/test)."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pipelines import make_pipeline
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from starlette.applications import Starlette

from channels.desk.page import SESSION_COOKIE, QueuePage, duration, time_left
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.desk import agents
from intake.desk.actions import Action, act
from intake.messages import ChannelKind, InboundMessage
from intake.pipeline.references import parse_reference
from storage import contacts

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # when the tickets arrive (tests/pipelines.py)
PAGE_NOW = NOW + timedelta(hours=2)  # the page's clock: the urgent ticket (1 h) is overdue
EMAIL, PASSWORD = "ann@vendor.example", "correct horse battery"
SECRET = b"k" * 32
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
LOGIN_LIMIT = 4
SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)


async def seed(storage: Storage) -> dict[str, str]:
    """Fourco's urgent (due 1 h after receipt), high and low tickets and one whose subject and
    text are markup, and a WhatsApp ticket from Acme."""
    async with storage.sessions.begin() as session:
        for name, plan, policy, domain, email, phone in (
            ("Fourco", "standard", "four-tier", "fourco.example", "jo@fourco.example", None),
            ("Acme", "plus", None, "acme.example", "al@acme.example", "+420601123456"),
        ):
            org_id, _ = await contacts.upsert_organization(
                session, name=name, plan=plan, policy=policy, support_start=None,
                region="Europe/London", domains=(domain,),
            )  # fmt: skip
            await contacts.upsert_contact(
                session, org_id, name=name[:2], email=email, phone=phone, telegram=None,
                role="nominated",
            )  # fmt: skip
    intake = make_pipeline(storage)
    refs = {}
    for key, subject, text in (
        ("low", "Low: typo", "A typo on the invoice page."),
        ("urgent", "Urgent: down", "Production is down, nothing loads."),
        ("high", "High: slow", "Exports are slow."),
        ("markup", f"Broken {SCRIPT} {IMG}", f"It shows {SCRIPT} and {IMG} in the page."),
    ):
        receipt = await intake(
            InboundMessage(
                channel=ChannelKind.EMAIL, channel_message_id=f"<{key}@x>",
                rfc_message_id=f"{key}@x", received_at=NOW, sender="jo@fourco.example",
                subject=subject, text=text,
            )
        )  # fmt: skip
        refs[key] = receipt.reference
    receipt = await intake(
        InboundMessage(
            channel=ChannelKind.WHATSAPP, channel_message_id="SM1", received_at=NOW,
            sender="+420601123456", text="Export does not work",
        )
    )  # fmt: skip
    refs["whatsapp"] = receipt.reference
    return refs


def queue_page(storage: Storage, **options: object) -> QueuePage:
    defaults: dict[str, object] = {
        "clock": lambda: PAGE_NOW, "secure_cookie": False, "refresh_seconds": 1,
        "logins_per_window": LOGIN_LIMIT,
    }  # fmt: skip
    return QueuePage(storage.sessions, SECRET, **(defaults | options))  # type: ignore[arg-type,unused-ignore]


@pytest.fixture
async def web(storage: Storage) -> AsyncIterator[WebChannel]:
    channel = WebChannel(WebSettings(host="127.0.0.1", port=0), [queue_page(storage).routes])
    await channel.start(make_pipeline(storage))
    yield channel
    await channel.stop()


@pytest.fixture
async def agent(storage: Storage) -> None:
    await agents.add_agent(storage.sessions, EMAIL, PASSWORD, name="Ann", now=NOW)


@pytest.fixture
async def client(web: WebChannel) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
        yield http


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def post_login(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD
) -> httpx.Response:
    form = await client.get("/login")
    assert form.status_code == 200
    data = {"csrf_token": csrf(form.text), "email": email, "password": password}
    return await client.post("/login", data=data)


def listed(html: str) -> list[str]:
    """The references of the queue's rows, top to bottom."""
    return re.findall(r'<tr class="ticket[^"]*" data-reference="([^"]+)"', html)


# -- over HTTP ----------------------------------------------------------------------------


def test_time_left_reads_as_an_agent_says_it() -> None:
    assert duration(timedelta(minutes=35, seconds=59)) == "35 min"
    assert duration(timedelta(hours=2, minutes=10)) == "2 h 10 min"
    assert duration(timedelta(hours=3)) == "3 h"
    assert duration(timedelta(days=3, hours=4, minutes=5)) == "3 d 4 h"
    assert time_left(NOW + timedelta(hours=2, minutes=10), NOW) == ("2 h 10 min left", False)
    assert time_left(NOW - timedelta(minutes=34, seconds=30), NOW) == ("overdue by 35 min", True)
    assert time_left(NOW - timedelta(seconds=5), NOW) == ("overdue by 1 min", True)
    assert time_left(None, NOW) == ("no deadline", False)


async def test_logged_out_goes_to_login(
    client: httpx.AsyncClient, storage: Storage, agent: None
) -> None:
    ann = await agents.agent_named(storage.sessions, EMAIL)
    # A session that ended yesterday (the page's clock is NOW), and cookies never issued.
    expired = await agents.start_session(
        storage.sessions, ann, now=NOW - timedelta(days=2), lifetime=timedelta(hours=12)
    )
    for cookie in (None, expired, secrets.token_urlsafe(32), "1.x.y.z", "ä.ö", "x" * 300):
        headers = {} if cookie is None else {b"cookie": f"{SESSION_COOKIE}={cookie}".encode()}
        for path in ("/", "/?show=overdue", "/tickets/SUP-000001"):
            answer = await client.get(path, headers=headers)
            assert (answer.status_code, answer.headers["location"]) == (303, "/login"), cookie
        assert (await client.get("/queue/rows", headers=headers)).status_code == 401
    login = await client.get("/login")
    assert login.status_code == 200 and 'id="login-form"' in login.text


async def test_wrong_password_is_refused_then_rate_limited(
    client: httpx.AsyncClient, agent: None
) -> None:
    for email, password in (
        (EMAIL, "wrong password!"),
        ("nobody@vendor.example", PASSWORD),
        ("not an email", PASSWORD),
    ):
        answer = await post_login(client, email, password)
        assert answer.status_code == 400 and "Wrong email or password" in answer.text
        assert SESSION_COOKIE not in answer.cookies
    no_token = await client.post("/login", data={"email": EMAIL, "password": PASSWORD})
    assert no_token.status_code == 403 and "expired" in no_token.text  # the 4th attempt
    limited = await post_login(client)  # the right password, but too many attempts
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert SESSION_COOKIE not in limited.cookies and "Too many login attempts" in limited.text


async def test_login_sets_the_cookie_and_logout_clears_it(
    client: httpx.AsyncClient, agent: None, storage: Storage
) -> None:
    answer = await post_login(client, EMAIL.upper(), PASSWORD)
    assert (answer.status_code, answer.headers["location"]) == (303, "/")
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "secure" not in cookie.lower()  # the page is on plain http here
    queue = await client.get("/")
    assert queue.status_code == 200 and EMAIL in queue.text
    assert (await client.get("/login")).headers["location"] == "/"  # already logged in
    forged = await client.post("/logout", data={"csrf_token": "1.nope"})
    assert forged.status_code == 403 and (await client.get("/")).status_code == 200
    kept = client.cookies[SESSION_COOKIE]  # a copy, as someone who stole it would keep it
    out = await client.post("/logout", data={"csrf_token": csrf(queue.text)})
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/")).status_code == 303
    # Logging out ended the session on the server: the copy is worth nothing either.
    replayed = await client.get("/", headers={b"cookie": f"{SESSION_COOKIE}={kept}".encode()})
    assert (replayed.status_code, replayed.headers["location"]) == (303, "/login")

    # Behind https the cookie is Secure.
    secure = queue_page(storage, secure_cookie=True)
    app = Starlette(routes=list(secure.routes(make_pipeline(storage))))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://page.test") as https:
        answer = await post_login(https)
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
        )
        assert answer.status_code == 303 and "; secure" in cookie.lower()


async def test_sender_text_is_escaped_on_every_page(
    client: httpx.AsyncClient, agent: None, storage: Storage
) -> None:
    refs = await seed(storage)
    assert (await post_login(client)).status_code == 303
    ticket = await client.get(f"/tickets/{refs['markup']}")
    assert ticket.status_code == 200
    for answer in (await client.get("/"), await client.get("/queue/rows"), ticket):
        assert answer.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in answer.text
        assert "<script>alert" not in answer.text and "<img" not in answer.text
    assert "It shows &lt;script&gt;" in ticket.text  # the message's text, escaped too
    missing = await client.get("/tickets/SUP-999999")
    assert missing.status_code == 404 and "no ticket" in missing.text.lower()
    assert (await client.get("/tickets/%3Cb%3E")).text.count("<b>") == 0


async def test_filters_narrow_the_queue(
    client: httpx.AsyncClient, agent: None, storage: Storage
) -> None:
    refs = await seed(storage)
    assert (await post_login(client)).status_code == 303
    everything = listed((await client.get("/")).text)
    assert everything[:2] == [refs["urgent"], refs["high"]]  # soonest deadline first
    assert sorted(everything) == sorted(refs.values())
    for params, expected in (
        ({"show": "overdue"}, [refs["urgent"]]),
        ({"channel": "whatsapp"}, [refs["whatsapp"]]),
        ({"organization": "Acme"}, [refs["whatsapp"]]),
        ({"priority": "high"}, [refs["high"]]),
        ({"priority": "high", "channel": "whatsapp"}, []),
    ):
        for path in ("/", "/queue/rows"):
            answer = await client.get(path, params=params)
            assert answer.status_code == 200 and listed(answer.text) == expected, (path, params)
    assert "No tickets match" in (await client.get("/queue/rows?priority=nope")).text
    ann = await agents.agent_named(storage.sessions, EMAIL)
    closed = refs["low"]
    await act(storage.sessions, parse_reference(closed) or 0, Action.CLOSE, ann, now=PAGE_NOW)
    assert closed not in listed((await client.get("/")).text)  # open only, by default
    assert closed in listed((await client.get("/?show=all")).text)
    for bad in ("/?channel=fax", "/?show=maybe", "/queue/rows?channel=fax"):
        assert (await client.get(bad)).status_code == 400, bad


async def test_headers_forbid_inline_script(
    client: httpx.AsyncClient, agent: None, storage: Storage
) -> None:
    refs = await seed(storage)
    pages = [await client.get("/login")]
    assert (await post_login(client)).status_code == 303
    for path in ("/", "/queue/rows", f"/tickets/{refs['urgent']}", "/tickets/SUP-999999"):
        pages.append(await client.get(path))
    for answer in pages:
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        scripts = re.findall(r"<script[^>]*>", answer.text)
        assert scripts in ([], ['<script src="/static/page.js" defer>']), scripts
        assert " style=" not in answer.text and " on" + "click=" not in answer.text
    script = await client.get("/static/page.js")
    style = await client.get("/static/page.css")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "queue/rows" in script.text and style.headers["content-type"].startswith("text/css")


# -- in Chromium --------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Debian's headless Chromium through its own chromedriver (no Selenium Manager)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: install Debian's chromium and chromium-driver "
            "(scripts/test does)"
        )
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,900", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        pytest.fail(f"Chromium did not start through {CHROMEDRIVER}: {exc.msg}")
    try:
        yield driver
    finally:
        driver.quit()


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1280 and height >= 600, (width, height)
    assert len(data) > 10_000, len(data)  # a blank page compresses to far less


def table(driver: webdriver.Chrome) -> dict[str, tuple[str, str]]:
    """reference -> (class, text) of each row, in order, read at one moment (the table is
    replaced every second, so element references go stale)."""
    found = driver.execute_script(
        "return Array.from(document.querySelectorAll('#queue-rows tr.ticket'))"
        ".map(r => [r.dataset.reference, r.className, r.innerText]);"
    )
    return {ref: (kind, text) for ref, kind, text in found}


def rows_of(driver: webdriver.Chrome) -> list[str]:
    return list(table(driver))


def click_link(driver: webdriver.Chrome, text: str) -> bool:
    driver.find_element(By.LINK_TEXT, text).click()
    return True


@SQLITE_ONLY
async def test_in_chromium_login_live_queue_and_ticket(
    storage: Storage, web: WebChannel, agent: None, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    refs = await seed(storage)
    loop = asyncio.get_running_loop()
    base = f"http://127.0.0.1:{web.port}"

    async def new_ticket() -> str:
        receipt = await make_pipeline(storage)(
            InboundMessage(
                channel=ChannelKind.EMAIL, channel_message_id="<new@x>", rfc_message_id="new@x",
                received_at=NOW + timedelta(minutes=5), sender="jo@fourco.example",
                subject="Urgent: login page down", text="Nobody can log in.",
            )
        )  # fmt: skip
        return receipt.reference

    def drive() -> None:
        wait = WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException])
        browser.get(base + "/")
        wait.until(lambda d: d.current_url == base + "/login")
        browser.find_element(By.ID, "email").send_keys(EMAIL)
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        wait.until(lambda d: d.find_elements(By.ID, "queue-rows"))
        assert browser.current_url == base + "/"

        # Soonest deadline first; the overdue one is marked by a class and in words.
        rows = table(browser)
        assert list(rows)[:2] == [refs["urgent"], refs["high"]] and len(rows) == 5
        kind, text = rows[refs["urgent"]]
        assert "overdue" in kind.split() and "OVERDUE overdue by 1 h" in text
        kind, text = rows[refs["high"]]
        assert "2 h left" in text and "overdue" not in kind
        assert f"Broken {SCRIPT} {IMG}" in rows[refs["markup"]][1]  # shown as text, not run
        assert not browser.find_elements(By.CSS_SELECTOR, "#queue-rows img, main script")

        # A ticket arriving while the page is open appears without a reload.
        browser.execute_script("window.notReloaded = true;")
        created = asyncio.run_coroutine_threadsafe(new_ticket(), loop).result(timeout=30)
        wait.until(lambda d: created in rows_of(d))
        assert rows_of(browser)[:2] == [refs["urgent"], created]  # due 10:05 + 1 h
        assert browser.execute_script("return window.notReloaded") is True

        # A filter narrows the table in place, and the address remembers it.
        Select(browser.find_element(By.ID, "channel")).select_by_value("whatsapp")
        wait.until(lambda d: rows_of(d) == [refs["whatsapp"]])
        assert browser.current_url == base + "/?show=open&channel=whatsapp"
        Select(browser.find_element(By.ID, "channel")).select_by_value("")
        wait.until(lambda d: len(rows_of(d)) == 6)
        assert browser.execute_script("return window.notReloaded") is True
        browser.save_screenshot(str(tmp_path / "queue.png"))

        # One ticket: its messages and the classifier's evidence.
        wait.until(lambda d: click_link(d, refs["urgent"]))
        wait.until(lambda d: d.find_elements(By.ID, "evidence"))
        assert "Production is down, nothing loads." in browser.find_element(By.ID, "messages").text
        evidence = browser.find_element(By.ID, "evidence").text
        assert "urgent" in evidence.lower() and "subject" in evidence
        assert "First response due" in browser.find_element(By.TAG_NAME, "main").text
        browser.save_screenshot(str(tmp_path / "ticket.png"))

    await asyncio.to_thread(drive)
    check_png(tmp_path / "queue.png")
    check_png(tmp_path / "ticket.png")
