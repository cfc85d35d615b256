"""Machine mail in the agents' API over real HTTP: kept out of `?open=true`, found with
`?status=machine`, and made a request with the action `request`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import jsonschema
import pytest
from pipelines import make_pipeline
from sqlalchemy.ext.asyncio import async_sessionmaker

from channels.desk.api import AgentApi, api_routes
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.desk import agents
from intake.messages import ChannelKind, InboundMessage

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


@pytest.fixture
async def api(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    intake = make_pipeline(storage)
    for n, headers in enumerate(((("Precedence", "bulk"), ("List-Id", "<news.example>")), ())):
        await intake(
            InboundMessage(
                channel=ChannelKind.EMAIL,
                channel_message_id=f"<m{n}@x>",
                received_at=NOW,
                sender=f"writer{n}@else.example",
                subject=f"Mail {n}",
                text="Hello.",
                headers=headers,
            )
        )
    token = await agents.add_agent(storage.sessions, "ann@vendor.example", "a long password",
                                   name="Ann", now=NOW)  # fmt: skip
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [api_routes(storage.sessions)])
    await web.start(intake)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{web.port}", headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client
    await web.stop()


async def test_machine_mail_is_found_by_status_and_made_a_request(
    api: httpx.AsyncClient,
) -> None:
    opened = (await api.get("/api/tickets", params={"open": "true"})).json()["tickets"]
    assert [t["subject"] for t in opened] == ["Mail 1"]
    found = (await api.get("/api/tickets", params={"status": "machine"})).json()["tickets"]
    assert [(t["subject"], t["status"], t["first_response_due"]) for t in found] == [
        ("Mail 0", "machine", None)]  # fmt: skip
    components = AgentApi(async_sessionmaker()).app.openapi()["components"]  # generated
    schema = {"$ref": "#/components/schemas/Ticket", "components": components}
    jsonschema.Draft202012Validator(schema).validate(found[0])
    refused = await api.get("/api/tickets", params={"status": "lost"})
    assert refused.status_code == 400 and refused.json()["field"] == "status"

    reference = found[0]["reference"]
    reopened = await api.patch(f"/api/tickets/{reference}", json={"action": "reopen"})
    assert reopened.status_code == 409
    done = await api.patch(f"/api/tickets/{reference}", json={"action": "request"})
    assert done.status_code == 200, done.text
    shown = done.json()
    assert shown["status"] == "open" and shown["first_response_due"] is not None
    assert shown["events"][-1]["kind"] == "requested"
    opened = (await api.get("/api/tickets", params={"open": "true"})).json()["tickets"]
    assert sorted(t["subject"] for t in opened) == ["Mail 0", "Mail 1"]
