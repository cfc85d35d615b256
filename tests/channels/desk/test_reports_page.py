"""The reports page over real HTTP (login, headers, figures, escaping, refusals) and in
Debian's headless Chromium (the charts drawn, with their text alternatives, and a screenshot
saved in the test's folder). Tickets with known times: tests/sla_history.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pipelines import make_pipeline
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sla_history import REPORT_NOW, seed_history
from test_page import SECRET, browser, check_png, csrf  # noqa: F401  (browser: a fixture)

from channels.desk.page import QueuePage
from channels.desk.reports import ReportsPage
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import WebSettings
from storage import contacts

PASSWORD = "correct horse battery"
AGENT = "ann@vendor.example"
WINDOW = "/reports?since=2026-03-01&until=2026-04-30"
SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
MARKUP = "<b>Evil</b> & Co"


@pytest.fixture
async def web(storage: Storage) -> AsyncIterator[WebChannel]:
    queue = QueuePage(storage.sessions, SECRET, clock=lambda: REPORT_NOW, secure_cookie=False)
    reports = ReportsPage(
        storage.sessions, SECRET, default_policy="circularo-saas", clock=lambda: REPORT_NOW
    )
    channel = WebChannel(WebSettings(host="127.0.0.1", port=0), [queue.routes, reports.routes])
    await channel.start(make_pipeline(storage))
    yield channel
    await channel.stop()


@pytest.fixture
async def client(web: WebChannel, storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    await seed_history(storage)
    async with storage.sessions.begin() as session:
        await contacts.upsert_organization(
            session, name=MARKUP, plan="standard", policy=None, support_start=None,
            region=None, domains=("evil.example",),
        )  # fmt: skip
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
        yield http


async def log_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/login")
    data = {"csrf_token": csrf(form.text), "email": AGENT, "password": PASSWORD}
    assert (await client.post("/login", data=data)).status_code == 303


def cells(html: str, priority: str) -> list[str]:
    row = re.search(rf'<tr data-priority="{priority}">(.*?)</tr>', html, re.S)
    assert row, priority
    return re.findall(r"<td>(.*?)</td>", row.group(1))


async def test_logged_out_goes_to_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/reports")
    assert response.status_code == 303 and response.headers["location"] == "/login"


async def test_figures_charts_and_headers(client: httpx.AsyncClient) -> None:
    await log_in(client)
    queue = await client.get("/")
    assert 'href="/reports"' in queue.text
    page = await client.get(WINDOW)
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    html = page.text
    # Acme normal: 3 requests, 3 responded, 3 met, 0 breached, 1.5 h (target 32), 2 resolved,
    # 2 met, 1 breached, 14 h (target 40), 1 open overdue.
    assert cells(html, "normal")[2:] == ["3", "3", "3", "0", "1.50", "32.00", "2", "2", "1",
                                         "14.00", "40.00", "1"]  # fmt: skip
    assert cells(html, "high")[2:] == ["1", "1", "1", "0", "2.00", "4.00", "1", "-", "-",
                                       "5.00", "-", "0"]  # fmt: skip
    svgs = re.findall(r"<svg [^>]*>", html)
    assert len(svgs) == 2 * 4 + 1  # two charts per organization with requests, and quotas
    assert all('role="img"' in s and "aria-label=" in s and "aria-describedby=" in s for s in svgs)
    assert html.count("<title>") == len(svgs) + 1 and html.count("<desc ") == len(svgs)
    assert "Initech: 2 of 100, period ends 01 Jun 2026" in html
    # No inline script or style for CSP to refuse: SVG presentation attributes only.
    assert "<script>" not in html and " style=" not in html and "<style" not in html
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in html and MARKUP not in html


async def test_one_organization_and_bad_dates(client: httpx.AsyncClient) -> None:
    await log_in(client)
    page = await client.get(WINDOW + "&organization=Globex")
    assert re.findall(r'<h2 id="org-\d+-name">(.*?)</h2>', page.text) == ["Globex"]
    bad = await client.get("/reports?since=yesterday")
    assert bad.status_code == 400 and "since must be a date like 2026-03-31" in bad.text
    empty = await client.get("/reports?since=2026-05-01&until=2026-04-01")
    assert empty.status_code == 400 and "the period is empty" in empty.text
    nobody = await client.get("/reports?organization=Nobody")
    assert nobody.status_code == 400 and "no organization named" in nobody.text


@SQLITE_ONLY
async def test_in_chromium(
    client: httpx.AsyncClient,
    web: WebChannel,
    browser: webdriver.Chrome,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    base = f"http://127.0.0.1:{web.port}"
    shot = tmp_path / "reports.png"

    def drive() -> dict[str, object]:
        wait = WebDriverWait(browser, 15)
        browser.get(base + "/login")
        browser.find_element(By.ID, "email").send_keys(AGENT)
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        wait.until(lambda d: d.find_elements(By.ID, "reports-link"))
        browser.find_element(By.ID, "reports-link").click()
        wait.until(lambda d: d.find_elements(By.ID, "quotas"))
        browser.get(base + WINDOW)
        wait.until(lambda d: d.find_elements(By.ID, "quotas"))
        browser.set_window_size(1280, 2400)
        browser.save_screenshot(str(shot))
        return dict(
            browser.execute_script(
                "const svgs = Array.from(document.querySelectorAll('svg[role=img]'));"
                "return {charts: svgs.length,"
                " drawn: svgs.filter(s => s.getBoundingClientRect().height > 40).length,"
                " bars: document.querySelectorAll('#attainment-0 rect').length,"
                " labels: svgs.map(s => s.getAttribute('aria-label')),"
                " quota: document.querySelector('#quota').textContent,"
                " errors: performance.getEntriesByType('resource')"
                "   .filter(e => !e.name.startsWith(location.origin)).length};"
            )
        )

    found = await asyncio.to_thread(drive)
    print(f"reports page screenshot: {shot}")
    assert found["charts"] == found["drawn"] == 9
    assert found["bars"] > 4  # legend squares and Acme's weekly bars
    labels = found["labels"]
    assert isinstance(labels, list)
    assert "Acme: deadlines met per week" in labels
    assert "Globex: response times against the target" in labels
    assert "Initech" in str(found["quota"]) and "2 of 100" in str(found["quota"])
    assert found["errors"] == 0  # nothing fetched from anywhere but the page's own origin
    check_png(shot)
