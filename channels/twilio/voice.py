"""Call-back requests by phone (Twilio Voice): the TwiML call flow and its signed callbacks.

An incoming call is greeted, asked "press 1 if production is down", and recorded (two minutes
at most, transcribed by Twilio). The ticket (channel `voice`, keyed by the CallSid) is made
when the recording completes; the transcription, when Twilio posts it, is a follow-up on the
same ticket, so the pipeline classifies its words too. The digit travels from step to step
in the callback URLs we write into the TwiML: Twilio signs those URLs, query included, so a
caller cannot forge it. Every step is checked with the same `SignedForms` as messaging.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from twilio.twiml.voice_response import VoiceResponse

from channels.twilio.forms import Clock, Form, SignedForms, clean, phone_sender, twiml
from channels.web.app import take, to_status
from intake.errors import InputRefusedError
from intake.messages import ChannelKind, InboundMessage, Intake, Receipt

log = logging.getLogger(__name__)

VOICE_PATH = "/webhooks/twilio/voice"
URGENCY_PATH = f"{VOICE_PATH}/urgency"
RECORDED_PATH = f"{VOICE_PATH}/recorded"
TRANSCRIPTION_PATH = f"{VOICE_PATH}/transcription"
SUBJECT = "Call-back request"
# Circularo SaaS 9: urgency is told "by telling ... that you regard the request as Urgent".
# The caller tells it with the digit; the ticket's text then carries the words the
# classifier's urgent marker reads, so the policy decides as it does for written requests.
URGENT_TEXT = "Urgent: production is down (the caller pressed 1)."
_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]{1,1000}")

GREETING = "Thank you for calling support. We will record your request and call you back."
QUESTION = "If production is down, press 1. Otherwise, press 2."
PROMPT = (
    "After the tone, please say your name, your organization and what you need. "
    "Press the hash key or hang up when you are done."
)
GOODBYE = "Thank you. We have your request and will call you back. Goodbye."


class VoiceWebhooks:
    """The call flow's routes: the incoming call and its follow-up steps."""

    def __init__(self, forms: SignedForms, clock: Clock, *, max_recording_seconds: int = 120):
        self.forms = forms
        self.clock = clock
        self.max_recording_seconds = max_recording_seconds
        # CallSid -> ticket reference, so the transcription names its ticket; a miss (another
        # node, a restart) falls back to the pipeline's same-caller threading.
        self._references: OrderedDict[str, str] = OrderedDict()

    def routes(self, intake: Intake) -> Sequence[BaseRoute]:
        async def recorded(request: Request) -> Response:
            return await self.recorded(request, intake)

        async def transcription(request: Request) -> Response:
            return await self.transcription(request, intake)

        return [
            Route(VOICE_PATH, self.incoming, methods=["POST"]),
            Route(URGENCY_PATH, self.urgency, methods=["POST"]),
            Route(RECORDED_PATH, recorded, methods=["POST"]),
            Route(TRANSCRIPTION_PATH, transcription, methods=["POST"]),
        ]

    def _url(self, path: str, digit: str | None = None) -> str:
        return self.forms.url(path, urlencode({"digit": digit}) if digit is not None else "")

    async def incoming(self, request: Request) -> Response:
        form = await self.forms.read(request, VOICE_PATH)
        if (refused := _refusal(form)) is not None:
            return refused
        response = VoiceResponse()
        response.say(GREETING)
        gather = response.gather(
            num_digits=1, action=self._url(URGENCY_PATH), method="POST", timeout=6
        )
        gather.say(QUESTION)
        response.redirect(self._url(URGENCY_PATH), method="POST")  # no key pressed
        return twiml(str(response))

    async def urgency(self, request: Request) -> Response:
        form = await self.forms.read(request, URGENCY_PATH)
        if (refused := _refusal(form)) is not None:
            return refused
        digits = form.get("Digits", 20)
        digit = digits[:1] if digits[:1].isdigit() else ""
        response = VoiceResponse()
        response.say(PROMPT)
        response.record(
            max_length=self.max_recording_seconds,
            transcribe=True,
            transcribe_callback=self._url(TRANSCRIPTION_PATH, digit),
            action=self._url(RECORDED_PATH, digit),
            method="POST",
            finish_on_key="#",
            play_beep=True,
        )
        # Twilio skips the action after a silent recording and goes on here: the call-back
        # request is still kept, without a recording.
        response.redirect(self._url(RECORDED_PATH, digit), method="POST")
        return twiml(str(response))

    async def recorded(self, request: Request, intake: Intake) -> Response:
        form = await self.forms.read(request, RECORDED_PATH)
        try:
            message = self.call_back_request(form)
        except InputRefusedError as exc:
            log.warning("refused a Twilio call step: %s", exc.reason)
            return PlainTextResponse(f"{exc.reason}\n", 400)
        outcome = await take(intake, lambda: message)
        if not isinstance(outcome, Receipt):
            # Not stored: the 5xx sends Twilio to the number's fallback URL, if one is set.
            return PlainTextResponse("not accepted, try again later\n", to_status(outcome))
        self._remember(message.channel_message_id, outcome.reference)
        response = VoiceResponse()
        response.say(GOODBYE)
        response.hangup()
        return twiml(str(response))

    def call_back_request(self, form: Form) -> InboundMessage:
        call_sid = form.sid("CallSid")
        sender, problems = phone_sender(form.get("From", 200), f"caller:{call_sid}")
        digit = _digit(form)
        recording = form.get("RecordingUrl", 1100)
        lines = ["Call-back request by phone."]
        if digit == "1":
            lines.append(URGENT_TEXT)
        else:
            lines.append(f"The caller pressed {digit}." if digit else "The caller chose no option.")
        lines.append(f"Call-back number: {sender}" if not problems else "No caller ID was given.")
        if _URL.fullmatch(recording):
            lines.append(f"Recording ({form.get('RecordingDuration', 10) or '?'} s): {recording}")
        else:
            lines.append("No recording was left.")
            recording = ""
        return InboundMessage(
            channel=ChannelKind.VOICE,
            channel_message_id=call_sid,
            received_at=self.clock(),
            sender=sender,
            sender_name=form.get("CallerName", 200),  # when caller-name lookup is on
            subject=SUBJECT,
            text="\n".join(lines),
            problems=problems,
            raw=form.raw,
            extra={
                "call_back": sender if not problems else "",
                "urgency_digit": digit,
                "urgent": digit == "1",
                "recording_url": recording,
                "recording_sid": form.get("RecordingSid", 40),
                "recording_duration": form.get("RecordingDuration", 10),
            },
        )

    async def transcription(self, request: Request, intake: Intake) -> Response:
        form = await self.forms.read(request, TRANSCRIPTION_PATH)
        try:
            message = self.transcribed(form)
        except InputRefusedError as exc:
            log.warning("refused a Twilio transcription: %s", exc.reason)
            return PlainTextResponse(f"{exc.reason}\n", 400)
        outcome = await take(intake, lambda: message)
        if not isinstance(outcome, Receipt):
            return PlainTextResponse("not accepted, try again later\n", to_status(outcome))
        return twiml()

    def transcribed(self, form: Form) -> InboundMessage:
        call_sid = form.sid("CallSid")
        sender, problems = phone_sender(form.get("From", 200), f"caller:{call_sid}")
        text = clean(form.fields.get("TranscriptionText", "")).strip()
        if form.get("TranscriptionStatus", 40).lower() != "completed" or not text:
            problems = (*problems, "transcription failed")
            text = "Twilio could not transcribe the recording."
        reference = self._references.get(call_sid)
        return InboundMessage(
            channel=ChannelKind.VOICE,
            channel_message_id=f"{call_sid}:transcription",
            received_at=self.clock(),
            sender=sender,
            # The reference threads it to its call's ticket (same caller only).
            subject=f"{SUBJECT} {reference}" if reference else SUBJECT,
            text=f"Transcription of the recorded request:\n{text}",
            problems=problems,
            raw=form.raw,
            extra={
                "urgency_digit": _digit(form),
                "recording_url": form.get("RecordingUrl", 1100),
                "transcription_sid": form.get("TranscriptionSid", 40),
            },
        )

    def _remember(self, call_sid: str, reference: str) -> None:
        self._references[call_sid] = reference
        while len(self._references) > 1000:
            self._references.popitem(last=False)


def _digit(form: Form) -> str:
    """The urgency digit carried in our own (signed) callback URL."""
    digit = form.query.get("digit", "")
    return digit if len(digit) == 1 and digit.isdigit() else ""


def _refusal(form: Form) -> Response | None:
    try:
        form.sid("CallSid")
    except InputRefusedError as exc:
        return PlainTextResponse(f"{exc.reason}\n", 400)
    return None
