"""Webhook intake under load: signed Twilio WhatsApp and SMS requests into `intake serve`,
against a do-nothing Starlette app on uvicorn answering the same route, same client.

Both servers run as their own processes on loopback; the client (httpx, async) sends N
requests over C connections, each a Twilio messaging webhook signed with the twilio package's
own RequestValidator for the configured public URL (signatures are computed before the clock
starts). Printed: requests per second, p50/p99 of the request latency, the server's peak RSS
and CPU per request, with the product's figures as ratios of the do-nothing app's measured
in the same run. The product's acknowledgements go to a third process, a do-nothing fake
of Twilio's Messages.json, so they are sent as in production, and the product's CPU is
counted until they have all been sent.

    python bench/webhook_load.py [--requests 2000] [--connections 20]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1/intake_bench]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from smtp_load import free_port, fresh_database, quantiles, run, wait_listening
from twilio.request_validator import RequestValidator

PUBLIC_URL = "https://support.example.com"
PATH = "/webhooks/twilio/messaging"
ACCOUNT = "AC11111111111111111111111111111111"
TOKEN = "0123456789abcdef0123456789abcdef"
WHATSAPP_FROM = "+14155238886"
SMS_FROM = "+14155550100"

NOTHING_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def messaging(request):
    await request.form()
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response />',
                    media_type="application/xml")

app = Starlette(routes=[Route(ROUTE, messaging, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
""".replace("ROUTE", repr(PATH))

# Twilio's Messages.json, doing nothing: where the product's acknowledgements go.
TWILIO_SINK = """
import itertools, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

sids = itertools.count(1)

async def create(request):
    form = await request.form()
    with open(sys.argv[2], "ab") as tally:  # one byte per message, for the bench to watch
        tally.write(b".")
    sid = f"SM{next(sids):032x}"
    return JSONResponse({"sid": sid, "status": "queued", "to": form.get("To", ""),
                         "from": form.get("From", ""), "body": form.get("Body", ""),
                         "account_sid": request.path_params["account"], "num_segments": "1",
                         "direction": "outbound-api", "api_version": "2010-04-01"},
                        status_code=201)

app = Starlette(routes=[Route("/2010-04-01/Accounts/{account}/Messages.json", create,
                              methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def webhook(n: int) -> tuple[dict[str, str], str]:
    """The form of request `n` (WhatsApp and SMS in turn, 500 senders) and its signature."""
    sid = f"SM{time.monotonic_ns():020x}{n:012x}"
    phone = f"+420601{n % 500:06d}"
    if n % 2:
        fields = {"From": phone, "To": SMS_FROM}
    else:
        fields = {"From": f"whatsapp:{phone}", "To": f"whatsapp:{WHATSAPP_FROM}"}
    fields |= {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT,
        "Body": f"The PDF export fails with error 500 since this morning ({n}).",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + PATH, fields)
    return fields, str(signature)


async def client(
    http: httpx.AsyncClient, requests: list[tuple[dict[str, str], str]], latencies: list[float]
) -> None:
    for fields, signature in requests:
        began = time.perf_counter()
        response = await http.post(PATH, data=fields, headers={"X-Twilio-Signature": signature})
        latencies.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise SystemExit(f"webhook answered {response.status_code}: {response.text[:200]}")


async def load(ports: list[int], requests: int, connections: int) -> tuple[float, list[float]]:
    [port] = ports  # one server
    signed = [webhook(n) for n in range(requests)]
    latencies: list[float] = []
    shares = [signed[c::connections] for c in range(connections)]
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=120
    ) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(http, share, latencies) for share in shares))
        return requests / (time.perf_counter() - began), latencies


def quiet(tally: Path, seconds: float = 3.0) -> Callable[[int], bool]:
    """Settled once the Twilio fake has received nothing for `seconds` (longer than the
    deliverer's idle poll): not every request is acknowledged (follow-ups are not), so the
    count to wait for is not known, but the last acknowledgement is."""
    last = (-1, time.monotonic())

    def settled(_: int) -> bool:
        nonlocal last
        size = tally.stat().st_size
        if size != last[0]:
            last = (size, time.monotonic())
            return False
        return time.monotonic() - last[1] >= seconds

    return settled


def settings(web_port: int, sink_port: int) -> str:
    return (
        "[smtp]\nenabled = false\n"
        f'[web]\nport = {web_port}\npublic_url = "{PUBLIC_URL}"\n'
        f'[twilio]\nenabled = true\naccount_sid = "{ACCOUNT}"\nauth_token = "{TOKEN}"\n'
        f'api_base = "http://127.0.0.1:{sink_port}"\n'
        f'whatsapp_from = "{WHATSAPP_FROM}"\nsms_from = "{SMS_FROM}"\n'
        "[pipeline]\nacks_per_sender_per_hour = 1000000\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument(
        "--database-url", default="", help="default: SQLite in a temp folder; else dropped!"
    )
    args = parser.parse_args()
    env = dict(os.environ)
    if args.database_url:
        asyncio.run(fresh_database(args.database_url))
        env["INTAKE_DATABASE_URL"] = args.database_url
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nothing_port, intake_port, sink_port = free_port(), free_port(), free_port()
        (root / "nothing.py").write_text(NOTHING_APP, encoding="utf-8")
        (root / "sink.py").write_text(TWILIO_SINK, encoding="utf-8")
        (root / "intake.toml").write_text(settings(intake_port, sink_port), encoding="utf-8")
        nothing = [sys.executable, str(root / "nothing.py"), str(nothing_port)]
        base = run([(nothing, nothing_port, env)], root, args.requests, args.connections, load=load)
        tally = root / "sent.tally"
        tally.touch()
        sink = subprocess.Popen([sys.executable, str(root / "sink.py"), str(sink_port), str(tally)])
        try:
            wait_listening(sink_port, sink)
            serve = [sys.executable, "-m", "intake.cli", "serve"]
            servers = [(serve, intake_port, env)]
            ours = run(
                servers, root, args.requests, args.connections, load=load, settled=quiet(tally)
            )
        finally:
            sink.terminate()
            sink.wait(timeout=60)
    where = args.database_url.split("@")[-1] if args.database_url else "SQLite"
    print(f"{args.requests} signed Twilio webhooks over {args.connections} connections, {where}")
    for name, (rate, latencies, rss, cpu_ms) in (
        ("do-nothing Starlette", base),
        ("intake serve", ours),
    ):
        p50, p99 = quantiles(latencies)
        print(
            f"{name:<20} {rate:8.0f} req/s   p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
            f"   peak RSS {rss:6.1f} MB   CPU {cpu_ms:5.2f} ms/req"
        )
    (rate, latencies, rss, cpu), (rate0, latencies0, rss0, cpu0) = ours, base
    (p50, p99), (p50_0, p99_0) = quantiles(latencies), quantiles(latencies0)
    print(
        f"intake serve / do-nothing: {rate / rate0:.2f}x the rate, p50 {p50 / p50_0:.1f}x, "
        f"p99 {p99 / p99_0:.1f}x, peak RSS {rss / rss0:.1f}x, CPU per request {cpu / cpu0:.1f}x"
    )


if __name__ == "__main__":
    main()
