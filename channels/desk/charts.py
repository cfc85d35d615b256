"""The reports page's charts, drawn on the server as inline SVG: readable without JavaScript,
no network, nothing the page's CSP (`default-src 'self'`) blocks. Colours and type are SVG
presentation attributes, not `style` (an inline style attribute is what CSP would refuse).

Each chart is `role="img"` with an `aria-label`, a `<title>` and a `<desc>` saying in words
what it shows; the page puts the same figures in a table beside it. Every text that comes
from data (an organization's name) is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from intake.desk.reports import SHARE_BOUNDS, SHARE_LABELS, OrganizationFigures, WeekFigures

WIDTH = 640
FONT = 'font-family="sans-serif" fill="#222"'
RESPONSE, RESOLUTION = "#2b6cb0", "#b7791f"
IN_TIME, LATE, TRACK = "#2f855a", "#c53030", "#e2e8f0"


def _svg(chart_id: str, height: int, title: str, desc: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" '
        f'role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-label="{escape(title)}" aria-describedby="{escape(chart_id)}-desc">'
        f"<title>{escape(title)}</title>"
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>' + "".join(body) + "</svg>"
    )


def _percent(share: float | None) -> str:
    return "no deadline decided" if share is None else f"{share:.0%}"


def _text(x: float, y: float, words: str, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" {FONT}>'
        f"{escape(words)}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}"/>'  # noqa: E501


def _grid(left: float, top: float, height: float, right: float, labels: Sequence[str]) -> list[str]:
    """Horizontal lines at even steps from the bottom (labels[0]) to the top (labels[-1])."""
    parts = []
    for i, label in enumerate(labels):
        y = top + height - height * i / (len(labels) - 1)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#cbd5e0"/>')
        parts.append(_text(left - 6, y + 4, label, "end"))
    return parts


def attainment_chart(chart_id: str, organization: str, weeks: Sequence[WeekFigures]) -> Markup:
    """Per week of receipt: the share of first responses and of resolutions in time."""
    left, top, plot_h, bottom = 48, 36, 120, 198
    slot = (WIDTH - left - 10) / max(len(weeks), 1)
    bar = min(24.0, slot / 3)
    body = _grid(left, top, plot_h, WIDTH - 10, ("0%", "50%", "100%"))
    body += [
        _rect(left, 6, 10, 10, RESPONSE), _text(left + 14, 15, "first response in time"),
        _rect(left + 170, 6, 10, 10, RESOLUTION), _text(left + 184, 15, "resolution in time"),
    ]  # fmt: skip
    sentences = []
    for i, week in enumerate(weeks):
        x = left + slot * i + slot / 2
        for offset, share, colour in ((-bar, week.response_share, RESPONSE),
                                      (0.0, week.resolution_share, RESOLUTION)):  # fmt: skip
            if share is not None:  # labelled too: a 0% bar has no height to see
                h = plot_h * share
                body.append(_rect(x + offset, top + plot_h - h, bar - 2, h, colour))
                body.append(_text(x + offset + bar / 2 - 1, top + plot_h - h - 3, f"{share:.0%}",
                                  "middle", 9))  # fmt: skip
        body.append(_text(x, top + plot_h + 16, f"{week.week:%d %b}", "middle"))
        sentences.append(
            f"week of {week.week:%d %b %Y}: responses {_percent(week.response_share)}, "
            f"resolutions {_percent(week.resolution_share)}"
        )
    title = f"{organization}: deadlines met per week"
    desc = "; ".join(sentences) or "No deadline was decided in the period."
    return _svg(chart_id, bottom, title, desc, body)


def distribution_chart(chart_id: str, organization: str, counts: Sequence[int]) -> Markup:
    """How many responses took what share of their own time to the deadline."""
    left, top, plot_h, bottom = 48, 28, 120, 190
    slot = (WIDTH - left - 10) / len(counts)
    most = max(max(counts), 1)
    body = _grid(left, top, plot_h, WIDTH - 10, ("0", f"{most / 2:g}", str(most)))
    target_x = left + slot * (SHARE_BOUNDS.index(1.0) + 1)
    body.append(f'<line x1="{target_x:.1f}" y1="{top - 6}" x2="{target_x:.1f}" '
                f'y2="{top + plot_h}" stroke="#222" stroke-dasharray="4 3"/>')  # fmt: skip
    body.append(_text(target_x + 4, top - 10, "target (100% of the time to the deadline)"))
    for i, count in enumerate(counts):
        x = left + slot * i
        h = plot_h * count / most
        colour = IN_TIME if i <= SHARE_BOUNDS.index(1.0) else LATE
        body.append(_rect(x + 4, top + plot_h - h, slot - 8, h, colour))
        body.append(_text(x + slot / 2, top + plot_h - h - 4, str(count), "middle"))
        body.append(_text(x + slot / 2, top + plot_h + 16, SHARE_LABELS[i], "middle"))
    title = f"{organization}: response times against the target"
    desc = "Responses by share of the time to their deadline: " + ", ".join(
        f"{label}: {count}" for label, count in zip(SHARE_LABELS, counts, strict=True)
    )
    return _svg(chart_id, bottom, title, desc, body)


def quota_chart(chart_id: str, organizations: Sequence[OrganizationFigures]) -> Markup:
    """Per organization with a quota: requests used in the current period against it."""
    with_quota = [o for o in organizations if o.quota]
    left, row = 160, 26
    height = 20 + row * max(len(with_quota), 1)
    plot_w = WIDTH - left - 90
    body = []
    for i, org in enumerate(with_quota):
        quota = org.quota or 1
        y = 10 + row * i
        share = org.quota_used / quota
        body.append(_text(left - 8, y + 13, org.organization[:24], "end"))
        body.append(_rect(left, y, plot_w, 18, TRACK))
        body.append(_rect(left, y, plot_w * min(share, 1.0), 18, LATE if share >= 1 else IN_TIME))
        body.append(_text(left + plot_w + 6, y + 13, f"{org.quota_used} of {org.quota}"))
    if not with_quota:
        body.append(_text(10, 24, "No organization here has a request quota."))
    title = "Requests used against the quota, current support period"
    desc = (
        "; ".join(
            f"{o.organization}: {o.quota_used} of {o.quota}"
            + (f", period ends {o.support_period_ends:%d %b %Y}" if o.support_period_ends else "")
            for o in with_quota
        )
        or "No organization here has a request quota."
    )
    return _svg(chart_id, height, title, desc, body)
