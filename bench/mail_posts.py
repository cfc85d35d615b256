"""Mail posted by email APIs: N distinct messages per provider, each signed or authenticated
as its provider does it, posted over C connections to the real web channel on a real
pipeline (SQLite in a temporary directory, or --database-url), all in this one process.

Client and server share one event loop and core, so the figures are an upper bound on the
per-post cost, not a capacity. Printed per provider: posts per second and p50/p99 latency.
SES is left out: its cost beyond Mailgun's is one RSA verification per post (its certificate
is cached), and it needs a local HTTPS server for the certificate.

    python bench/mail_posts.py [--posts 300] [--connections 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pipelines import make_pipeline

from channels.email.posts import mail_post_routes
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import (
    MailgunSettings,
    PostmarkSettings,
    SendgridSettings,
    SesSettings,
    WebSettings,
)
from storage import db
from storage.webhook_tokens import SeenTokens

KEY, PASSWORD = "key-bench", "bench-password"


def raw(provider: str, n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Customer {n} <c{n}@customer{n % 50}.example>"
    message["To"] = "support@support.example.com"
    message["Subject"] = f"Export fails ({provider} {n})"
    message["Message-ID"] = f"<{provider}-{n}@customer.example>"
    message.set_content("Hello,\nthe export fails with error 500 since this morning.\n")
    return message.as_bytes()


def mailgun(n: int) -> dict[str, object]:
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    signature = hmac.new(KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    fields = {"timestamp": timestamp, "token": token, "signature": signature}
    return {"data": fields, "files": {"body-mime": (None, raw("mailgun", n))}}


def postmark(n: int) -> dict[str, object]:
    return {"json": {"RawEmail": raw("postmark", n).decode()}, "auth": ("bench", PASSWORD)}


def sendgrid(n: int) -> dict[str, object]:
    return {"files": {"email": (None, raw("sendgrid", n))}, "auth": ("bench", PASSWORD)}


async def measure(
    client: httpx.AsyncClient,
    path: str,
    build: Callable[[int], dict[str, object]],
    args: argparse.Namespace,
) -> None:
    for n in range(-20, 0):  # warm-up, not counted: the first posts fill the caches
        assert (await client.post(path, **build(n))).status_code == 200  # type: ignore[arg-type]
    requests = [build(n) for n in range(args.posts)]  # signed before the clock starts
    latencies: list[float] = []
    queue = iter(requests)

    async def worker() -> None:
        for request in queue:
            start = time.perf_counter()
            response = await client.post(path, **request)  # type: ignore[arg-type]
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 200, (response.status_code, response.text)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    rate = args.posts / elapsed
    print(f"{path}: {rate:.0f} posts/s, p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{folder}/bench.db"
        engine = db.create_engine(url)
        await db.upgrade(engine)
        storage = Storage(engine, db.session_factory(engine))
        routes = mail_post_routes(
            mailgun=MailgunSettings(enabled=True, signing_key=SecretStr(KEY)),
            postmark=PostmarkSettings(enabled=True, user="bench", password=SecretStr(PASSWORD)),
            sendgrid=SendgridSettings(enabled=True, user="bench", password=SecretStr(PASSWORD)),
            ses=SesSettings(),
            clock=lambda: datetime.now(UTC),
            tokens=SeenTokens(storage.sessions),
        )
        web = WebChannel(WebSettings(host="127.0.0.1", port=0), [routes])
        await web.start(make_pipeline(storage))
        try:
            limits = httpx.Limits(max_connections=args.connections)
            base = f"http://127.0.0.1:{web.port}"
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
                await measure(client, "/webhooks/mail/mailgun", mailgun, args)
                await measure(client, "/webhooks/mail/postmark", postmark, args)
                await measure(client, "/webhooks/mail/sendgrid", sendgrid, args)
        finally:
            await web.stop()
            await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--database-url", default="")
    asyncio.run(main(parser.parse_args()))
