"""The public call-back request form at `/callback` (Scoro 1.3, Circularo phone support).

Plain HTML that works without JavaScript. Protected by a double-submit CSRF token (a random
nonce in an HttpOnly SameSite cookie, and an HMAC of it with its time in the form) and by a
per-address rate limit. Written by hand: Starlette has no CSRF or rate limiting of its own,
and the maintained add-ons expect a JavaScript client sending a header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from channels.web.app import take, to_status
from intake.errors import InputRefusedError
from intake.messages import ChannelKind, InboundMessage, Intake, Receipt
from intake.ratelimit import RateLimitedError, RateLimiter

COOKIE = "intake_csrf"
ZONES = (
    "Europe/Prague",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Dubai",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Singapore",
    "Australia/Sydney",
    "UTC",
)
FIELDS = (
    "name",
    "organization",
    "phone",
    "email",
    "window_from",
    "window_to",
    "zone",
    "description",
    "urgent",
)
MAX_BODY = 32 * 1024
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_templates = Environment(
    loader=PackageLoader("channels.web", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "j2")),
)


def _style_source() -> str:
    """The CSP source of the form's one inline <style> (its hash): no other style, and no
    script at all, may run on the page."""
    source, _, _ = _templates.loader.get_source(_templates, "callback.html.j2")  # type: ignore[union-attr]
    found = re.search(r"<style>(.*?)</style>", source, re.S)
    if found is None:
        return "'none'"
    digest = hashlib.sha256(found.group(1).encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


# As the agents' page sends (channels.desk.page): no framing (clickjacking), no sniffing, no
# referrer, nothing cached (the form carries a CSRF token).
SECURITY_HEADERS = {
    "Content-Security-Policy": f"default-src 'none'; style-src {_style_source()}; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def csrf_token(secret: bytes, nonce: str, issued: int) -> str:
    mac = hmac.new(secret, f"csrf:{nonce}:{issued}".encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{mac}"


def csrf_valid(secret: bytes, nonce: str, token: str, now: int, max_age: int) -> bool:
    issued_text, _, _mac = token.partition(".")
    if not nonce or not issued_text.isdigit() or now - int(issued_text) > max_age:
        return False
    return hmac.compare_digest(token, csrf_token(secret, nonce, int(issued_text)))


def clean_field(field: str, value: str) -> str:
    """A field as stored: no control characters (PostgreSQL refuses NUL; a CR or LF in a name
    must not reach a header or a log line); only the description keeps its line breaks."""
    if field == "description":
        text = value.replace("\r\n", "\n").replace("\r", "\n")
        return _TEXT_CONTROLS.sub("", text).strip()
    return " ".join(_LINE_CONTROLS.sub(" ", value).split())


def validate(form: dict[str, str], default_region: str | None) -> tuple[dict[str, str], str]:
    """Field errors (field -> message) and the phone in E.164."""
    errors: dict[str, str] = {}
    if not form["name"].strip():
        errors["name"] = "Please tell us your name."
    phone = ""
    try:
        number = phonenumbers.parse(form["phone"], default_region)
        if not phonenumbers.is_valid_number(number):
            raise phonenumbers.NumberParseException(0, "invalid")
        phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        errors["phone"] = "Please give a phone number with its country code, e.g. +420 601 123 456."
    if form["email"] and not _EMAIL.match(form["email"]):
        errors["email"] = "That email address does not look right."
    start, end = form["window_from"], form["window_to"]
    if (
        (start and not _TIME.match(start))
        or (end and not _TIME.match(end))
        or (start and end and end <= start)
    ):
        errors["window_to"] = "The preferred time should end after it starts."
    if not form["description"].strip():
        errors["description"] = "Please describe what it is about."
    if form["zone"] and form["zone"] not in ZONES:
        errors["window_to"] = "Please choose a time zone from the list."
    return errors, phone


class CallbackForm:
    """The form's routes; each submission becomes a ticket on channel `web`."""

    def __init__(
        self,
        secret: bytes,
        *,
        clock: Callable[[], datetime],
        default_region: str | None = None,
        per_hour: int = 5,
        secure_cookie: bool = True,
        token_max_age: timedelta = timedelta(hours=2),
    ) -> None:
        self.secret = secret
        self.clock = clock
        self.default_region = default_region
        self.limiter = RateLimiter(per_hour, 3600)
        self.secure_cookie = secure_cookie
        self.max_age = int(token_max_age.total_seconds())

    def routes(self, intake: Intake) -> list[BaseRoute]:
        async def endpoint(request: Request) -> Response:
            if request.method == "POST":
                response = await self.submit(request, intake)
            else:
                response = self.page(request, {}, {})
            response.headers.update(SECURITY_HEADERS)  # every answer, refusals too
            return response

        return [Route("/callback", endpoint, methods=["GET", "POST"])]

    def page(
        self, request: Request, form: dict[str, str], errors: dict[str, str], status: int = 200
    ) -> Response:
        nonce = request.cookies.get(COOKIE) or secrets.token_hex(16)
        values = {field: form.get(field, "") for field in FIELDS}
        values["zone"] = values["zone"] or "Europe/Prague"
        html = _templates.get_template("callback.html.j2").render(
            form=values,
            errors=errors,
            zones=ZONES,
            csrf_token=csrf_token(self.secret, nonce, int(time.time())),
            submission=form.get("submission") or uuid.uuid4().hex,
            reference=None,
        )
        response = HTMLResponse(html, status_code=status)
        response.set_cookie(
            COOKIE,
            nonce,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
            max_age=self.max_age,
        )
        return response

    async def submit(self, request: Request, intake: Intake) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = self.limiter.retry_after(client)
        if wait is not None:
            return HTMLResponse(
                "Too many requests from your address; please try later.\n",
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return HTMLResponse("Request too large.\n", status_code=413)
        async with request.form(max_files=0, max_fields=len(FIELDS) + 4) as raw:
            form = {k: str(v)[:5000] for k, v in raw.items() if isinstance(v, str)}
        nonce = request.cookies.get(COOKIE, "")
        if not csrf_valid(
            self.secret, nonce, form.get("csrf_token", ""), int(time.time()), self.max_age
        ):
            return self.page(
                request, form, {"name": "The form expired; please send it again."}, status=403
            )
        values = {field: clean_field(field, form.get(field, "")) for field in FIELDS}
        errors, phone = validate(values, self.default_region)
        submission = form.get("submission", "")
        if not re.fullmatch(r"[0-9a-f]{32}", submission):
            errors.setdefault("name", "The form is incomplete; please send it again.")
        if errors:
            return self.page(request, form, errors, status=400)
        outcome = await take(intake, lambda: self._message(values, phone, submission, client))
        return self._answer(outcome, phone, values)

    def _message(
        self, form: dict[str, str], phone: str, submission: str, client: str
    ) -> InboundMessage:
        window = _window(form)
        urgent = form["urgent"] == "yes"
        lines = [
            form["description"],
            "",
            f"Call-back requested by {form['name']}"
            + (f" ({form['organization']})" if form["organization"] else "")
            + f" at {phone}"
            + (f", preferred {window}" if window else "")
            + ".",
        ]
        if urgent:
            lines.append("Urgent: production is down.")  # the caller's own words, Circularo 9
        extra: dict[str, Any] = {
            "phone": phone,
            "organization": form["organization"],
            "callback_window": window,
            "urgent": urgent,
            "client_address": client,
        }
        if form["email"]:
            extra["email"] = form["email"].lower()
        summary = " ".join(form["description"].split())[:80]
        return InboundMessage(
            channel=ChannelKind.WEB,
            channel_message_id=f"web:{submission}",
            received_at=self.clock(),
            sender=phone,
            sender_name=form["name"][:200],
            reply_to=form["email"].lower() or phone,
            ack_channel=ChannelKind.EMAIL if form["email"] else ChannelKind.SMS,
            subject=f"Call-back request: {summary}",
            text="\n".join(lines),
            extra=extra,
        )

    def _answer(self, outcome: Receipt | Exception, phone: str, form: dict[str, str]) -> Response:
        status = to_status(outcome)
        if not isinstance(outcome, Receipt):
            text = (
                "We could not take your request just now; please try again in a minute."
                if status == 503
                else "We could not take that request."
            )
            headers = {}
            if isinstance(outcome, RateLimitedError):
                headers["Retry-After"] = str(outcome.retry_seconds)
            if isinstance(outcome, InputRefusedError):
                text = f"We could not take that request: {outcome.reason}"
            html = f"<!doctype html><p role=alert>{escape(text)}</p>"
            return HTMLResponse(html, status, headers=headers)
        html = _templates.get_template("callback.html.j2").render(
            reference=outcome.reference, phone=phone, window=_window(form), form={}, errors={}
        )
        return HTMLResponse(html)


def _window(form: dict[str, str]) -> str:
    if form.get("window_from") and form.get("window_to"):
        return f"between {form['window_from']} and {form['window_to']} ({form['zone']})"
    return ""
