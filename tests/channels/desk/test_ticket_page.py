"""The ticket page's actions (issue 15) over real HTTP and in headless Chromium: CSRF-checked
forms answered by POST-redirect-GET, refusals announced with the draft kept, the timeline, the
"Mine" and "Unassigned" views, keyboard-only use, and axe-core's WCAG 2.1 AA checks on the
login, queue and ticket pages (axe-core from npm, installed once into a cache folder)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pipelines import make_pipeline
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from test_page import (  # the queue page's fixtures: one browser setup, one seed
    EMAIL,
    NOW,
    PAGE_NOW,
    PASSWORD,
    SQLITE_ONLY,
    agent,
    browser,
    client,
    csrf,
    listed,
    post_login,
    queue_page,
    seed,
    web,
)

from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.desk import agents, conversation
from intake.desk.actions import ticket_detail
from intake.desk.conversation import ReplyOptions
from intake.messages import Attachment, ChannelKind, InboundMessage
from intake.pipeline.references import parse_reference

__all__ = ["agent", "browser", "client", "web"]  # fixtures used by name

AXE_DIR = Path(os.environ.get("INTAKE_AXE_DIR", Path.home() / ".cache" / "intake-test" / "axe"))
OTHER = "bo@vendor.example"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


async def send(
    client: httpx.AsyncClient, ref: str, action: str, token: str, **fields: str
) -> httpx.Response:
    """Post one of the ticket page's forms."""
    return await client.post(f"/tickets/{ref}/{action}", data={"csrf_token": token, **fields})


async def status_of(storage: Storage, reference: str) -> str:
    shown = await ticket_detail(storage.sessions, parse_reference(reference) or 0)
    return str(shown["status"])


# -- over HTTP ----------------------------------------------------------------------------


async def test_an_action_needs_the_sessions_csrf_token(
    client: httpx.AsyncClient, agent: None, storage: Storage
) -> None:
    refs = await seed(storage)
    ref = refs["high"]
    assert (await post_login(client)).status_code == 303
    for token in ("", "1.nope", "x" * 90, "ä"):
        forged = await send(client, ref, "status", token, status="closed")
        assert forged.status_code == 403 and 'role="alert"' in forged.text, token
        assert "form expired" in forged.text
    assert await status_of(storage, ref) == "open"
    # Without a session the action never runs: back to the login page.
    page = await client.get(f"/tickets/{ref}")
    async with httpx.AsyncClient(base_url=str(client.base_url)) as stranger:
        answer = await send(stranger, ref, "status", csrf(page.text), status="closed")
        assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    assert await status_of(storage, ref) == "open"


async def test_status_change_is_post_redirect_get_and_on_the_timeline(
    client: httpx.AsyncClient, agent: None, storage: Storage
) -> None:
    refs = await seed(storage)
    ref = refs["high"]
    assert (await post_login(client)).status_code == 303
    page = await client.get(f"/tickets/{ref}")
    token = csrf(page.text)
    answer = await send(client, ref, "status", token, status="on_hold")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/tickets/{ref}?done=status#notice"
    assert await status_of(storage, ref) == "on_hold"
    after = await client.get(answer.headers["location"])
    assert 'id="status">on_hold<' in after.text and "The status is changed." in after.text
    timeline = after.text[after.text.index('id="messages"') :]
    assert "on hold" in timeline and f"by {EMAIL}" in timeline
    again = await send(client, ref, "status", token, status="on_hold")
    assert again.headers["location"].endswith("?done=unchanged#notice")
    # A status that does not apply now is refused with the reason, announced.
    await send(client, ref, "status", token, status="closed")
    refused = await send(client, ref, "status", token, status="resolved")
    assert refused.status_code == 409 and 'role="alert"' in refused.text
    assert "reopen it first" in refused.text and await status_of(storage, ref) == "closed"
    for bad in ({"status": "merged"}, {"status": ""}):
        answer = await send(client, ref, "status", token, **bad)
        assert answer.status_code == 400 and "choose a status" in answer.text
    nowhere = await send(client, ref, "explode", token)
    assert nowhere.status_code == 400 and "no action" in nowhere.text
    missing = await send(client, "SUP-999999", "status", token, status="closed")
    assert missing.status_code == 404


async def test_priority_change_needs_a_reason_and_keeps_the_draft(
    client: httpx.AsyncClient, agent: None, storage: Storage
) -> None:
    refs = await seed(storage)
    ref = refs["low"]
    assert (await post_login(client)).status_code == 303
    token = csrf((await client.get(f"/tickets/{ref}")).text)
    no_reason = await send(client, ref, "change", token, priority="high", severity="", reason=" ")
    assert no_reason.status_code == 400 and "say why" in no_reason.text
    bad = await send(
        client, ref, "change", token, priority="high", severity="9", reason="keep <me>"
    )
    assert bad.status_code == 400 and "severity must be 1 to 4" in bad.text
    assert 'value="keep &lt;me&gt;"' in bad.text  # the draft is kept, escaped
    reason = "the customer's invoices are blocked"
    done = await send(client, ref, "change", token, priority="high", severity="2", reason=reason)
    assert done.status_code == 303
    shown = await ticket_detail(storage.sessions, parse_reference(ref) or 0)
    assert (shown["priority"], shown["severity"]) == ("high", 2)
    page = (await client.get(done.headers["location"])).text
    assert '<option value="high" selected>' in page  # the policy's priorities offered
    assert all(f'<option value="{p}"' in page for p in ("urgent", "medium", "low"))


async def test_mine_and_unassigned_views(
    client: httpx.AsyncClient, agent: None, storage: Storage
) -> None:
    refs = await seed(storage)
    assert (await post_login(client)).status_code == 303
    everyone = listed((await client.get("/")).text)
    assert sorted(everyone) == sorted(refs.values())
    for path in ("/", "/queue/rows"):
        unassigned = await client.get(path, params={"view": "unassigned"})
        assert listed(unassigned.text) == everyone  # nobody has taken a ticket yet
        assert listed((await client.get(path, params={"view": "mine"})).text) == []
        assert (await client.get(path, params={"view": "theirs"})).status_code == 400
    queue = (await client.get("/?view=mine")).text
    assert '<option value="mine" selected>Mine</option>' in queue


# -- in Chromium --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core 4 from npm, installed once into a cache folder (the only network use: the
    npm registry, while installing)."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm not found: install Debian's npm (scripts/test does)")
        subprocess.run(
            [npm, "install", "--prefix", str(AXE_DIR), "--no-audit", "--no-fund", "axe-core@4"],
            check=True, timeout=600,
        )  # fmt: skip
    return script.read_text(encoding="utf-8")


def axe_check(driver: webdriver.Chrome, source: str, page: str) -> list[dict[str, Any]]:
    """Run axe-core on the page as it stands; fail on serious or critical violations, print
    the others."""
    driver.execute_script(source)  # through the driver, not a <script>: the CSP stays intact
    driver.set_script_timeout(60)
    violations: list[dict[str, Any]] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
        AXE_TAGS,
    )
    for v in violations:
        print(f"axe on {page}: {v['impact']} {v['id']}: {v['help']} at {v['nodes'][:3]}")
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, (page, serious)
    return violations


def active_id(driver: webdriver.Chrome) -> str:
    return str(driver.execute_script("return document.activeElement.id || ''"))


def tab_to(driver: webdriver.Chrome, element_id: str, limit: int = 80) -> int:
    """Press TAB until the element has focus; how many presses it took."""
    for presses in range(1, limit + 1):
        # Keys to the page, as a person presses them (an element's send_keys would type a
        # file input's path instead).
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if active_id(driver) == element_id:
            return presses
    raise AssertionError(f"#{element_id} never took focus in {limit} TABs")


@SQLITE_ONLY
async def test_in_chromium_keyboard_only_and_axe(
    storage: Storage,
    web: WebChannel,
    agent: None,
    browser: webdriver.Chrome,
    axe_source: str,
    tmp_path: Path,
) -> None:
    refs = await seed(storage)
    base = f"http://127.0.0.1:{web.port}"
    ref = refs["high"]

    def drive() -> None:
        wait = WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException])
        browser.get(base + "/login")
        axe_check(browser, axe_source, "login")
        # Logging in from the keyboard alone: TAB into each field, ENTER submits.
        tab_to(browser, "email")
        browser.switch_to.active_element.send_keys(EMAIL)
        browser.switch_to.active_element.send_keys(Keys.TAB)
        assert active_id(browser) == "password"
        browser.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
        wait.until(lambda d: d.find_elements(By.ID, "queue-rows"))
        axe_check(browser, axe_source, "queue")

        browser.get(f"{base}/tickets/{ref}")
        wait.until(lambda d: d.find_elements(By.ID, "status-form"))
        axe_check(browser, axe_source, "ticket")
        # The skip link comes first and lands on the main content.
        browser.switch_to.active_element.send_keys(Keys.TAB)
        assert browser.switch_to.active_element.text == "Skip to the main content"
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        assert active_id(browser) == "main"
        # Put the ticket on hold with the keyboard: TAB to the status, choose, TAB, ENTER.
        tab_to(browser, "status-choice")
        browser.switch_to.active_element.send_keys("On hold")
        browser.switch_to.active_element.send_keys(Keys.TAB)
        assert browser.switch_to.active_element.text == "Change status"
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        wait.until(lambda d: "done=status" in d.current_url)
        assert browser.find_element(By.ID, "status").text == "on_hold"
        assert "The status is changed." in browser.find_element(By.ID, "notice").text
        # A refusal is announced (role=alert) and passes axe too.
        tab_to(browser, "change-reason")
        browser.switch_to.active_element.send_keys(" ", Keys.ENTER)  # only a space: refused
        wait.until(lambda d: d.find_elements(By.ID, "refusal"))
        refusal = browser.find_element(By.ID, "refusal")
        assert refusal.get_attribute("role") == "alert" and "say why" in refusal.text
        axe_check(browser, axe_source, "ticket with a refusal")
        browser.save_screenshot(str(tmp_path / "ticket-actions.png"))

    await asyncio.to_thread(drive)
    assert await status_of(storage, ref) == "on_hold"
    shot = tmp_path / "ticket-actions.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot of the ticket page: {shot}")


# -- replies, notes, files and the rest, over HTTP, on the core's functions ---------------

REPLIES = ReplyOptions(
    mailbox="support@support.example.com", secret=b"s" * 32, max_attachment_bytes=2000
)


@pytest.fixture
async def desk(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    """The page with replies and canned replies, logged in as Ann, over real HTTP."""
    page = queue_page(storage, reply_options=REPLIES)
    channel = WebChannel(WebSettings(host="127.0.0.1", port=0), [page.routes])
    await channel.start(make_pipeline(storage))
    await agents.add_agent(storage.sessions, EMAIL, PASSWORD, name="Ann", now=NOW)
    await agents.add_agent(storage.sessions, OTHER, PASSWORD, name="Bo", now=NOW)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{channel.port}") as http:
            assert (await post_login(http)).status_code == 303
            yield http
    finally:
        await channel.stop()


async def customer_writes(storage: Storage, key: str, text: str, **more: Any) -> str:
    receipt = await make_pipeline(storage)(
        InboundMessage(
            channel=ChannelKind.EMAIL, channel_message_id=f"<{key}@x>", rfc_message_id=f"{key}@x",
            received_at=NOW, sender="jo@fourco.example", subject="Export fails", text=text,
            **more,
        )
    )  # fmt: skip
    return receipt.reference


def hidden(html: str, name: str, form: str) -> str:
    start = html.index(f'id="{form}"')
    found = re.search(rf'name="{name}" value="([^"]*)"', html[start:])
    assert found, (name, form)
    return found.group(1)


async def replies_of(storage: Storage, ref: str) -> list[str]:
    entries = await conversation.timeline(storage.sessions, parse_reference(ref) or 0)
    return [e["text"] for e in entries if e["kind"] == "reply"]


async def test_a_reply_composed_meanwhile_is_not_sent_blindly(
    desk: httpx.AsyncClient, storage: Storage
) -> None:
    ref = await customer_writes(storage, "c1", "The export fails.")
    page = (await desk.get(f"/tickets/{ref}")).text
    token, after = csrf(page), hidden(page, "after", "reply-form")
    key = hidden(page, "key", "reply-form")
    # While Ann writes, Bo answers (through the core, as the API does).
    bo = await agents.agent_named(storage.sessions, OTHER)
    await conversation.reply(storage.sessions, parse_reference(ref) or 0, bo, "Bo: on it.",
                             now=PAGE_NOW, options=REPLIES)  # fmt: skip
    fields = {"text": "Ann: please retry.", "after": after, "key": key}
    stale = await send(desk, ref, "reply", token, **fields)
    assert stale.status_code == 409 and 'role="alert"' in stale.text
    assert "nothing was sent" in stale.text and 'id="newer"' in stale.text
    newer = stale.text[stale.text.index('id="newer"') : stale.text.index("Back to your draft")]
    assert "Bo: on it." in newer and f"Reply</strong> by {OTHER}" in newer
    assert "queued" in newer  # its delivery state: no deliverer runs here
    assert ">Ann: please retry.</textarea>" in stale.text  # the draft is kept
    assert await replies_of(storage, ref) == ["Bo: on it."]
    # Sent again from the page that now shows Bo's reply: it goes, once, however often sent.
    fields |= {"after": hidden(stale.text, "after", "reply-form"),
               "key": hidden(stale.text, "key", "reply-form")}  # fmt: skip
    for _ in range(2):
        sent = await send(desk, ref, "reply", token, **fields)
        assert sent.status_code == 303 and sent.headers["location"].endswith("?done=reply#notice")
    assert await replies_of(storage, ref) == ["Bo: on it.", "Ann: please retry."]
    empty = await send(desk, ref, "reply", token, text="  ", after="", key="")
    assert empty.status_code == 400 and "write the reply first" in empty.text


async def test_reply_files_within_the_limit_and_downloads(
    desk: httpx.AsyncClient, storage: Storage
) -> None:
    log_file = Attachment(filename='a"b<c>.html', content_type="text/html", data=b"<script>x")
    ref = await customer_writes(storage, "c2", "See the file.", attachments=(log_file,))
    other = await customer_writes(storage, "c3", "Another ticket.")
    page = (await desk.get(f"/tickets/{ref}")).text
    token = csrf(page)
    link = re.search(rf'href="(/tickets/{ref}/attachments/(\d+))"', page)
    assert link, page
    got = await desk.get(link.group(1))
    assert got.status_code == 200 and got.content == b"<script>x"
    assert got.headers["content-type"] == "application/octet-stream"  # never rendered
    assert got.headers["x-content-type-options"] == "nosniff"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="a_b<c>.html"'), disposition
    assert (await desk.get(f"/tickets/{other}/attachments/{link.group(2)}")).status_code == 404
    async with httpx.AsyncClient(base_url=str(desk.base_url)) as stranger:
        assert (await stranger.get(link.group(1))).status_code == 303

    after = hidden(page, "after", "reply-form")
    fields = {"csrf_token": token, "text": "The fix is attached.", "after": after}
    files = [("files", ("fix.txt", b"x" * 1500, "text/plain"))]
    sent = await desk.post(f"/tickets/{ref}/reply", data=fields, files=files)
    assert sent.status_code == 303
    entries = await conversation.timeline(storage.sessions, parse_reference(ref) or 0)
    reply = next(e for e in entries if e["kind"] == "reply")
    assert [f["name"] for f in reply["files"]] == ["fix.txt"]
    # Over the limit (2000 bytes in all here): refused, the draft kept, nothing sent.
    big = [("files", ("a.bin", b"x" * 1500, "application/octet-stream")),
           ("files", ("b.bin", b"x" * 1500, "application/octet-stream"))]  # fmt: skip
    fields["after"] = hidden((await desk.get(f"/tickets/{ref}")).text, "after", "reply-form")
    refused = await desk.post(f"/tickets/{ref}/reply", data=fields | {"text": "Two files."},
                              files=big)  # fmt: skip
    assert refused.status_code in (400, 413), refused.status_code
    assert await replies_of(storage, ref) == ["The fix is attached."]


async def test_note_assign_merge_not_a_request_and_back(
    desk: httpx.AsyncClient, storage: Storage
) -> None:
    ref = await customer_writes(storage, "c4", "First.")
    dup = await customer_writes(storage, "c5", "The same again.")
    page = (await desk.get(f"/tickets/{ref}")).text
    token = csrf(page)
    assert (await send(desk, ref, "note", token, note="Called them <b>.")).status_code == 303
    shown = (await desk.get(f"/tickets/{ref}")).text
    assert "Internal note" in shown and "Called them &lt;b&gt;." in shown
    assert await replies_of(storage, ref) == []  # a note is never a reply
    assert (await send(desk, ref, "assign", token, assignee=OTHER)).status_code == 303
    assert f'id="assignee">{OTHER}<' in (await desk.get(f"/tickets/{ref}")).text
    assert listed((await desk.get("/?view=mine")).text) == []
    assert (await send(desk, ref, "assign", token, assignee=EMAIL)).status_code == 303
    assert listed((await desk.get("/?view=mine")).text) == [ref]
    assert ref not in listed((await desk.get("/?view=unassigned")).text)
    nobody = await send(desk, ref, "assign", token, assignee="nobody@vendor.example")
    assert nobody.status_code == 400 and 'role="alert"' in nobody.text
    assert dup != ref  # mail without threading hints opens a ticket of its own
    merged = await send(desk, dup, "merge", token, into=ref)
    assert merged.status_code == 303 and await status_of(storage, dup) == "merged"
    bad = await send(desk, ref, "merge", token, into="not a ticket")
    assert bad.status_code == 400 and "name the ticket" in bad.text
    done = await send(desk, ref, "request", token, request="no")
    assert done.status_code == 303 and await status_of(storage, ref) == "machine"
    # And back: machine mail that is a request after all (the page offers it on machine mail).
    assert "Make it a request" in (await desk.get(f"/tickets/{ref}")).text
    back = await send(desk, ref, "request", token, request="yes")
    assert back.status_code == 303 and await status_of(storage, ref) == "open"
    vague = await send(desk, ref, "request", token, request="maybe")
    assert vague.status_code == 400 and "whether it is a request" in vague.text


async def test_a_canned_reply_fills_the_draft(desk: httpx.AsyncClient, storage: Storage) -> None:
    ref = await customer_writes(storage, "c6", "Hello.")
    page = (await desk.get(f"/tickets/{ref}")).text
    names = re.findall(r'<option value="([^"]+)"[^>]*>', page[page.index('id="canned"') :])
    assert names, "no canned replies offered"
    filled = await desk.get(f"/tickets/{ref}", params={"canned": names[0]})
    assert filled.status_code == 200
    draft = filled.text[filled.text.index('id="reply-text"') :].split("</textarea>")[0]
    assert ref in draft or "Ann" in draft, draft
    assert (await desk.get(f"/tickets/{ref}", params={"canned": "../x"})).status_code == 400


async def test_the_timeline_in_the_browsers_zone(desk: httpx.AsyncClient, storage: Storage) -> None:
    """page.js reports Intl's zone in the `intake_zone` cookie; the server renders in it."""
    ref = await customer_writes(storage, "c7", "Hello.")  # NOW: 10:00 UTC on 10 March
    utc = (await desk.get(f"/tickets/{ref}")).text
    assert "times in UTC" in utc and "2026-03-10 10:00 UTC" in utc
    desk.cookies.set("intake_zone", "America/Los_Angeles")
    local = (await desk.get(f"/tickets/{ref}")).text
    assert 'data-zone="America/Los_Angeles" data-zone-source="browser"' in local
    assert "2026-03-10 03:00 PDT" in local and "10:00 UTC" not in local
    desk.cookies.set("intake_zone", "Mars/Olympus_Mons")  # unknown: UTC stands
    assert "times in UTC" in (await desk.get(f"/tickets/{ref}")).text
