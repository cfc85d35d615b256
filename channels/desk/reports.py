"""The agents' reports page at `/reports`: the SLA report (`intake report sla`) per
organization, with charts drawn on the server (`channels.desk.charts`).

Login and headers are the queue page's (`channels.desk.page`): the same signed session
cookie, the same CSP (`default-src 'self'`, so no inline script or style: the charts use SVG
presentation attributes). The period and organization are a GET form; nothing needs
JavaScript.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from jinja2 import Environment, PackageLoader
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from channels.desk import charts
from channels.desk.page import SECURITY_HEADERS, LoggedIn, QueuePage, shown_time
from channels.web.callback import csrf_token
from intake.desk.reporting import organization_names, sla_report
from intake.desk.reports import SHARE_LABELS, Report
from intake.errors import InputRefusedError, TransientError
from intake.messages import Intake

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
UNIDENTIFIED = "(unidentified senders)"

_templates = Environment(
    loader=PackageLoader("channels.desk", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _day(query: Any, name: str) -> date | None:
    value = str(query.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise InputRefusedError(f"{name} must be a date like 2026-03-31, not {value!r}") from None


def sections(report: Report) -> list[dict[str, Any]]:
    """What the page shows per organization: its rows, and its charts with their figures."""
    by_org: dict[str, dict[str, Any]] = {}
    for row in report.priorities:
        name = row.organization or ""
        section = by_org.setdefault(name, {"name": name or UNIDENTIFIED, "rows": []})
        section["rows"].append(row)
    for number, (name, section) in enumerate(by_org.items()):
        weeks = report.weeks.get(name, [])
        counts = report.distribution.get(name, [0] * len(SHARE_LABELS))
        section |= {
            "anchor": f"org-{number}",
            "weeks": weeks,
            "attainment": charts.attainment_chart(f"attainment-{number}", section["name"], weeks),
            "distribution": list(zip(SHARE_LABELS, counts, strict=True)),
            "distribution_chart": charts.distribution_chart(
                f"distribution-{number}", section["name"], counts
            ),
        }
    return list(by_org.values())


class ReportsPage:
    """The page's route; `routes` is the web channel's factory."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret: bytes,
        *,
        default_policy: str,
        clock: Clock,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.secret = secret
        self.default_policy = default_policy
        self.clock = clock
        self.wall_clock = wall_clock
        # The queue page holds the session cookie's rules: one login for both pages.
        self.login = QueuePage(sessions, secret, clock=clock, wall_clock=wall_clock)

    def routes(self, _intake: Intake) -> Sequence[BaseRoute]:
        return [Route("/reports", self.reports, methods=["GET"])]

    def _html(self, template: str, status: int, agent: LoggedIn, **values: Any) -> HTMLResponse:
        token = csrf_token(self.secret, agent.cookie, int(self.wall_clock()))
        html = _templates.get_template(template).render(agent=agent, logout_token=token, **values)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    async def reports(self, request: Request) -> Response:
        agent = await self.login.logged_in(request)
        if agent is None:
            return RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
        query = request.query_params
        organization = str(query.get("organization") or "")[:200]
        try:
            since, until = _day(query, "since"), _day(query, "until")
            report = await sla_report(
                self.sessions, default_policy=self.default_policy, now=self.clock(),
                since=since, until=until, organization=organization or None,
            )  # fmt: skip
            names = await organization_names(self.sessions)
        except InputRefusedError as exc:
            return self._html("problem.html.j2", 400, agent, message=str(exc))
        except TransientError as exc:
            log.warning("reports page: %s", exc)
            message = "The database does not answer; try again shortly."
            return self._html("problem.html.j2", 503, agent, message=message)
        return self._html(
            "reports.html.j2",
            200,
            agent,
            report=report,
            sections=sections(report),
            quota_chart=charts.quota_chart("quota", report.organizations),
            organizations=names,
            chosen=organization,
            since=since.isoformat() if since else "",
            until=until.isoformat() if until else "",
            period=f"from {shown_time(report.since.isoformat())} until "
            f"{shown_time(report.until.isoformat())}",
            now=shown_time(report.now.isoformat()),
            unidentified=UNIDENTIFIED,
        )


def report_routes(
    sessions: async_sessionmaker[AsyncSession],
    secret: bytes,
    *,
    default_policy: str,
    clock: Clock,
) -> Callable[[Intake], Sequence[BaseRoute]]:
    """The web channel's factory for /reports."""
    return ReportsPage(sessions, secret, default_policy=default_policy, clock=clock).routes
