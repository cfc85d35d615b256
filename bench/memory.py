"""Memory per large mail: how much a server's RSS grows while it takes one big message.

`intake serve` (embedded defaults: SQLite in a temporary folder, its acknowledgements to a
do-nothing SMTP sink) and, as the baseline in the same run, a do-nothing aiosmtpd server each
run as their own process. For each server: its idle RSS once listening, then one mail of 1, 5
and 20 MiB (a text part and base64 attachments of at most 8 MiB each, under the default
10 MiB attachment cap, so that every attachment is stored) and four concurrent 24 MiB mails.
The idle RSS is read after a warm-up of five mails, one of them 512 KiB.
Before each case the kernel's peak-RSS mark is reset (/proc/PID/clear_refs), and after the
last 250 (and, for the product, its acknowledgements) the peak is read back (VmHWM): the
growth is that peak less the idle RSS, printed in MiB and as a ratio to the bytes sent.

    python bench/memory.py [--sizes 1,5,20] [--concurrent 4x24]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1/intake_bench_memory]

With `--database-url` the product stores into that PostgreSQL database instead, dropped and
created afresh (so its name must contain "bench").
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
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from smtp_load import NOTHING_SERVER, free_port, fresh_database, wait_listening

MIB = 1 << 20
PART = 8 * MIB  # decoded bytes per attachment: under the default 10 MiB cap
WARM_UP = 5  # mails sent before the idle RSS is read


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Peak RSS (VmHWM) := current RSS (Linux 4.0+: clear_refs with 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def big_mail(n: int, size: int) -> bytes:
    """A mail of about `size` bytes: a short text part and base64 attachments."""
    mail = EmailMessage()
    mail["From"] = f"big{n}-{time.monotonic_ns()}@example.org"
    mail["To"] = "support@support.example.com"
    mail["Subject"] = f"Logs of the failed export ({n})"
    mail["Message-ID"] = f"<big-{n}-{time.monotonic_ns()}@example.org>"
    mail.set_content("The export fails since this morning; the logs are attached.\n" * 20)
    left = size * 3 // 4 - 4096  # base64 grows the bytes by 4/3 (and 2/76 for the line ends)
    number = 0
    while left > 0:
        chunk = min(left, PART)
        mail.add_attachment(
            os.urandom(chunk),
            maintype="application",
            subtype="octet-stream",
            filename=f"log{number}.bin",
        )
        left -= chunk
        number += 1
    return mail.as_bytes()


async def send(port: int, raw: bytes, sender: str) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=600) as smtp:
        await smtp.sendmail(sender, ["support@support.example.com"], raw)


def case(pid: int, port: int, mails: list[bytes], settled: Callable[[], bool]) -> float:
    """Peak RSS (KiB) while the server takes `mails` at once and finishes with them."""
    reset_peak(pid)

    async def all_at_once() -> None:
        await asyncio.gather(*(send(port, raw, f"big{n}@ex.org") for n, raw in enumerate(mails)))

    asyncio.run(all_at_once())
    deadline = time.monotonic() + 300
    while not settled():
        if time.monotonic() > deadline:
            raise SystemExit("the server did not finish")
        time.sleep(0.05)
    return status_kib(pid, "VmHWM")


Case = tuple[str, list[bytes]]


def measure(
    argv: list[str], port: int, cwd: Path, cases: list[Case], acks: Path | None
) -> tuple[float, list[float]]:
    """Idle RSS (MiB) and each case's peak growth over it (MiB)."""
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, process)
        # Warm up with a few small mails and one past the spool threshold, so that what a
        # first message costs once (templates compiled, the outbound connection, caches,
        # the parsing thread and its malloc arena: about 2.5 MiB) is in the idle figure.
        warm = [big_mail(1000 + n, 20_000) for n in range(WARM_UP - 1)]
        warm.append(big_mail(1000 + WARM_UP, 512 * 1024))
        peak = case(process.pid, port, warm, lambda: acks is None or acks.stat().st_size >= WARM_UP)
        time.sleep(2)
        idle = status_kib(process.pid, "VmRSS")
        growth = []
        sent = WARM_UP
        for _, mails in cases:
            sent += len(mails)
            done = sent

            def settled(done: int = done) -> bool:
                return acks is None or acks.stat().st_size >= done

            peak = case(process.pid, port, mails, settled)
            growth.append((peak - idle) / 1024)
        return idle / 1024, growth
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,20", help="single mails, MiB")
    parser.add_argument("--concurrent", default="4x24", help="COUNTxMiB sent at once")
    parser.add_argument("--database-url", default="", help="default: SQLite; else dropped!")
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(fresh_database(args.database_url))
    cases: list[Case] = [
        (f"1 x {s} MiB", [big_mail(n, int(s) * MIB)]) for n, s in enumerate(args.sizes.split(","))
    ]
    count, _, size = args.concurrent.partition("x")
    cases.append(
        (f"{count} x {size} MiB", [big_mail(100 + n, int(size) * MIB) for n in range(int(count))])
    )
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "nothing.py").write_text(NOTHING_SERVER, encoding="utf-8")
        nothing = [sys.executable, str(root / "nothing.py")]
        base_port = free_port()
        base = measure([*nothing, str(base_port)], base_port, root, cases, None)
        sink_port, port, web_port = free_port(), free_port(), free_port()
        database = f'[database]\nurl = "{args.database_url}"\n' if args.database_url else ""
        (root / "intake.toml").write_text(
            database + f"[smtp]\nport = {port}\n[web]\nport = {web_port}\n"
            f'[outbound.smtp]\nhost = "127.0.0.1"\nport = {sink_port}\n',
            encoding="utf-8",
        )
        acks = root / "acks.tally"
        acks.touch()
        sink = subprocess.Popen([*nothing, str(sink_port), str(acks)])
        try:
            wait_listening(sink_port, sink)
            ours = measure([sys.executable, "-m", "intake.cli", "serve"], port, root, cases, acks)
        finally:
            sink.terminate()
            sink.wait(timeout=60)
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"idle RSS: do-nothing aiosmtpd {base[0]:.1f} MiB, intake serve {ours[0]:.1f} MiB")
    print(f"{'case':<16}{'sent MiB':>9}  {'do-nothing growth':>22}  {'intake serve growth':>22}")
    for (name, mails), grown_base, grown in zip(cases, base[1], ours[1], strict=True):
        sent = sum(len(raw) for raw in mails) / MIB
        print(
            f"{name:<16}{sent:9.1f}  {grown_base:9.1f} MiB {grown_base / sent:5.2f}x"
            f"   {grown:9.1f} MiB {grown / sent:5.2f}x"
        )


if __name__ == "__main__":
    main()
