"""The agents' JSON API over real HTTP: bearer tokens, the queue's filters and order, one
ticket with its events, updates, refusals naming their field, and the OpenAPI document
generated from the models (every answer fits it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from channels.desk.api import MAX_BODY_BYTES, AgentApi, api_routes
from channels.web.app import WebChannel
from classifier import load_rules
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.desk import agents
from intake.messages import ChannelKind, InboundMessage
from intake.outbox import acks
from intake.outbox.notices import NoticeOptions, Notifier
from intake.pipeline.pipeline import Pipeline, PipelineOptions
from intake.policy.files import load_policy
from intake.policy.model import compute_deadlines
from storage import contacts
from storage.models import ApiToken

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday; London is on GMT until 29 March
API_NOW = NOW + timedelta(hours=2)  # what the API's clock says: the urgent ticket is overdue
PASSWORD = "correct horse battery"


def make_pipeline(storage: Storage) -> Pipeline:
    notifier = Notifier(
        options=NoticeOptions(mailbox="support@support.example.com"),
        secret=b"p" * 32, templates=acks.environment(), clock=lambda: NOW,
    )  # fmt: skip
    return Pipeline(
        sessions=storage.sessions, rules=load_rules(),
        options=PipelineOptions(default_policy="circularo-saas"), notifier=notifier,
    )  # fmt: skip


async def seed(storage: Storage) -> dict[str, str]:
    """Four tickets: Fourco's urgent (due in 1 h), high and low, and a WhatsApp one from Acme."""
    async with storage.sessions.begin() as session:
        for name, plan, policy, domain, person, email, phone in (
            ("Fourco", "standard", "four-tier", "fourco.example", "Jo", "jo@fourco.example", None),
            ("Acme", "plus", None, "acme.example", "Al", "al@acme.example", "+420601123456"),
        ):
            org_id, _ = await contacts.upsert_organization(
                session,
                name=name,
                plan=plan,
                policy=policy,
                support_start=None,
                region="Europe/London",
                domains=(domain,),
            )
            await contacts.upsert_contact(
                session,
                org_id,
                name=person,
                email=email,
                phone=phone,
                telegram=None,
                role="nominated",
            )
    intake = make_pipeline(storage)
    refs = {}
    for key, subject in (("low", "Low: typo"), ("urgent", "Urgent: down"), ("high", "High: slow")):
        receipt = await intake(
            InboundMessage(
                channel=ChannelKind.EMAIL,
                channel_message_id=f"<{key}@x>",
                rfc_message_id=f"{key}@x",
                received_at=NOW,
                sender="jo@fourco.example",
                subject=subject,
                text="<script>alert(1)</script> It fails.",
            )
        )
        refs[key] = receipt.reference
    receipt = await intake(
        InboundMessage(
            channel=ChannelKind.WHATSAPP,
            channel_message_id="SM1",
            received_at=NOW,
            sender="+420601123456",
            text="Export does not work",
        )
    )
    refs["whatsapp"] = receipt.reference
    return refs  # fmt: skip


@pytest.fixture
async def web(storage: Storage) -> AsyncIterator[WebChannel]:
    channel = WebChannel(
        WebSettings(host="127.0.0.1", port=0), [api_routes(storage.sessions, lambda: API_NOW)]
    )
    await channel.start(make_pipeline(storage))
    yield channel
    await channel.stop()


@pytest.fixture
async def token(storage: Storage) -> str:
    return await agents.add_agent(storage.sessions, "ann@vendor.example", PASSWORD,
                                  name="Ann", now=NOW)  # fmt: skip


@pytest.fixture
async def api(web: WebChannel, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{web.port}", headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


# The document the API serves, generated from its models.
OPENAPI: dict[str, Any] = AgentApi(async_sessionmaker()).app.openapi()


def fits(data: Any, schema: str) -> None:
    """`data` is valid against a schema of the OpenAPI document."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": OPENAPI["components"]}
    jsonschema.Draft202012Validator(root).validate(data)


async def test_missing_or_wrong_tokens_are_401(web: WebChannel, token: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {token}"},
                        {"Authorization": "Bearer"}):  # fmt: skip
            for method, path in (("GET", "/api/tickets"), ("GET", "/api/tickets/SUP-000001"),
                                 ("PATCH", "/api/tickets/SUP-000001")):  # fmt: skip
                answer = await client.request(method, path, headers=headers)
                assert answer.status_code == 401, (headers, path)
                assert answer.headers["www-authenticate"].startswith("Bearer")
                fits(answer.json(), "Problem")
        wrong = await client.get("/api/tickets", headers={"Authorization": "Bearer nope"})
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        ok = await client.get("/api/tickets", headers={"Authorization": f"bearer {token}"})
        assert ok.status_code == 200 and ok.json() == {"tickets": []}
        document = await client.get("/api/openapi.json")  # no token needed
        assert document.status_code == 200
        assert document.json()["paths"] == OPENAPI["paths"]
        assert document.json()["servers"] == [{"url": "/api"}]  # where the paths are


async def test_list_is_soonest_deadline_first_with_each_filter(
    api: httpx.AsyncClient, storage: Storage
) -> None:
    refs = await seed(storage)

    async def listed(**params: str) -> list[str]:
        answer = await api.get("/api/tickets", params=params)
        assert answer.status_code == 200, answer.text
        fits(answer.json(), "TicketList")
        return [t["reference"] for t in answer.json()["tickets"]]

    rows = (await api.get("/api/tickets")).json()["tickets"]
    due = [r["first_response_due"] or r["resolution_due"] for r in rows]
    assert None not in due and due == sorted(due)
    assert [r["reference"] for r in rows][:3] == [refs["urgent"], refs["high"], refs["low"]]
    assert await listed(overdue="true") == [refs["urgent"]]
    assert await listed(channel="whatsapp") == [refs["whatsapp"]]
    assert await listed(organization="Acme") == [refs["whatsapp"]]
    assert await listed(priority="high") == [refs["high"]]
    assert await listed(limit="2", offset="1") == [r["reference"] for r in rows][1:3]
    closed = await api.patch(f"/api/tickets/{refs['urgent']}", json={"action": "close"})
    assert closed.status_code == 200
    assert refs["urgent"] not in await listed(open="true")
    assert refs["urgent"] in await listed(open="false")
    for params in ({"open": "maybe"}, {"limit": "0"}, {"offset": "-1"}, {"channel": "fax"},
                   {"colour": "red"}):  # fmt: skip
        answer = await api.get("/api/tickets", params=params)
        assert answer.status_code == 400 and answer.json()["error"], params
    async with storage.sessions() as session:
        assert (await session.scalar(select(ApiToken.last_used_at))) == API_NOW


async def test_show_and_each_action_with_its_event(
    api: httpx.AsyncClient, storage: Storage
) -> None:
    ref = (await seed(storage))["low"]
    path = f"/api/tickets/{ref}"
    recorded = await api.patch(path, json={"action": "first_response"})
    assert recorded.status_code == 200, recorded.text
    answer = await api.get(f"/api/tickets/{ref.lower()}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    shown = answer.json()
    fits(shown, "TicketDetail")
    assert shown == recorded.json() and (shown["reference"], shown["priority"]) == (ref, "low")
    # What the sender wrote comes back as data, as written: escaping is the page's job.
    assert shown["messages"][0]["text"] == "<script>alert(1)</script> It fails."
    assert shown["first_response_at"] == API_NOW.isoformat()
    assert shown["events"] == [
        {"at": API_NOW.isoformat(), "actor": "ann@vendor.example", "kind": "first_response",
         "details": {"status": "open"}}
    ]  # fmt: skip
    for action, status in (("hold", "on_hold"), ("resolve", "resolved"), ("reopen", "open"),
                           ("close", "closed")):  # fmt: skip
        answer = await api.patch(path, json={"action": action})
        assert answer.status_code == 200, answer.text
        fits(answer.json(), "TicketDetail")
        assert answer.json()["status"] == status
    again = (await api.patch(path, json={"action": "first_response"})).json()
    assert again["first_response_at"] == API_NOW.isoformat()
    assert [e["kind"] for e in again["events"]] == [
        "first_response", "on_hold", "resolved", "reopened", "closed"]  # fmt: skip
    conflict = await api.patch(path, json={"action": "hold"})
    assert conflict.status_code == 409 and "reopen it first" in conflict.json()["error"]
    for missing in ("SUP-999999", "nonsense"):
        gone = await api.get(f"/api/tickets/{missing}")
        assert gone.status_code == 404 and "no ticket" in gone.json()["error"]


async def test_priority_change_recomputes_deadlines(
    api: httpx.AsyncClient, storage: Storage
) -> None:
    ref = (await seed(storage))["low"]
    answer = await api.patch(f"/api/tickets/{ref}", json={"priority": "high", "severity": 2})
    assert answer.status_code == 200, answer.text
    changed = answer.json()
    expected = compute_deadlines(load_policy("four-tier"), "standard", "high", NOW, "Europe/London")
    assert expected.first_response_due == NOW + timedelta(hours=4)  # from receipt, not from now
    assert changed["first_response_due"] == expected.first_response_due.isoformat()
    assert (changed["priority"], changed["severity"]) == ("high", 2)
    [event] = changed["events"]
    assert event["kind"] == "changed" and event["details"]["priority"] == {
        "from": "low",
        "to": "high",
    }
    assert changed["decision"]["changes"][0]["by"] == "ann@vendor.example"


BAD_UPDATES: list[tuple[bytes, dict[str, str], int, str]] = [
    (b'{"priority": "critical"}', {}, 400, "no priority 'critical'"),
    (b'{"severity": 9}', {}, 400, "severity: Input should be less than or equal to 4"),
    (b'{"priority": 3}', {}, 400, "priority: Input should be a valid string"),
    (b'{"action": "explode"}', {}, 400, "action: Input should be 'first_response'"),
    (b'{"action": "close", "priority": "low"}', {}, 400, "an action goes alone"),
    (b'{"colour": "red"}', {}, 400, "unknown field 'colour'"),
    (b"{}", {}, 400, "give a priority"),
    (b"[1]", {}, 400, "a JSON object"),
    (b"{nope", {}, 400, "not valid JSON"),
    (b'{"action": "close"}', {"content-type": "text/plain"}, 415, "application/json"),
    (b'{"action": "close"}', {"content-type": "application/x-www-form-urlencoded"}, 415, ""),
    (b'{"x": "' + b"a" * MAX_BODY_BYTES + b'"}', {}, 413, "larger than"),
]


async def test_bad_updates_are_refused_clearly(api: httpx.AsyncClient, storage: Storage) -> None:
    ref = (await seed(storage))["low"]
    for body, headers, status, says in BAD_UPDATES:
        answer = await api.patch(
            f"/api/tickets/{ref}", content=body,
            headers={"content-type": "application/json"} | headers,
        )  # fmt: skip
        assert answer.status_code == status and says in answer.json()["error"], body[:40]
        fits(answer.json(), "Problem")
    shown = (await api.get(f"/api/tickets/{ref}")).json()
    assert (shown["status"], shown["priority"], shown["events"]) == ("open", "low", [])
    unknown = await api.patch("/api/tickets/SUP-999999", json={"action": "close"})
    assert unknown.status_code == 404


def test_the_document_is_valid_and_describes_every_operation() -> None:
    validate(OPENAPI)  # a valid OpenAPI 3.1 document
    operations = {
        (path, method): item
        for path, methods in OPENAPI["paths"].items()
        for method, item in methods.items()
    }
    assert set(operations) == {
        ("/tickets", "get"), ("/tickets/{reference}", "get"), ("/tickets/{reference}", "patch"),
        # the agents' desk (issue 15): tests/channels/desk/test_api_conversation.py
        ("/tickets/{reference}/replies", "post"), ("/tickets/{reference}/notes", "post"),
        ("/tickets/{reference}/timeline", "get"), ("/tickets/{reference}/merge", "post"),
        ("/tickets/{reference}/attachments/{attachment_id}", "get"),
        ("/tickets/{reference}/not-a-request", "post"), ("/canned", "get"),
        ("/tickets/{reference}/canned/{name}", "get"),
    }  # fmt: skip
    for item in operations.values():
        assert item["security"] == [{"HTTPBearer": []}]
        assert "400" in item["responses"] and "401" in item["responses"]
    patch = operations[("/tickets/{reference}", "patch")]
    assert {"409", "413", "415"} <= set(patch["responses"])
    body = patch["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TicketUpdate"}
    update = OPENAPI["components"]["schemas"]["TicketUpdate"]
    assert update["additionalProperties"] is False
    assert set(update["properties"]) == {
        "action", "priority", "severity", "assignee", "status", "reason"
    }  # fmt: skip
