"""SMTP intake under load: `intake serve` against a do-nothing aiosmtpd server, same client.

Both servers run as their own processes on loopback; the client sends N messages over C
concurrent connections and times each DATA (from sending the content to the 250). Printed:
messages per second, p50/p99 of that latency, and the server's peak RSS, with the product's
figures as a ratio of the do-nothing server's measured in the same run, and of the floor's
(`../shared/floor/floor_server.py`: a minimal intake with a group commit and an
acknowledgement per message, the least an intake must do), when it is there.

The product runs on its embedded defaults (SQLite in a temporary folder) or on the
PostgreSQL named by `--database-url`: that database is dropped and created afresh, so its
name must contain "bench". Its acknowledgements go to a do-nothing SMTP sink (a third
process), so they are composed and delivered as in production; the product's CPU is counted
until every acknowledgement has reached the sink. `--profile FILE` runs the
product under cProfile and writes its stats there (read them with `python -m pstats FILE`).

    python bench/smtp_load.py [--messages 2000] [--connections 20]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1/intake_bench [--nodes 2]]
        [--workers N] [--profile FILE]

`--nodes N` runs N product processes on that PostgreSQL (several nodes, as in production
behind a load balancer) against N do-nothing servers, the client's connections spread over
them; CPU is then the sum of the N processes'. `--workers N` is passed to each `intake serve`
(without it, `[serve] workers` decides); CPU and peak RSS then count its worker processes too.
`--profile` profiles the parent process only: use it with one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

FLOOR = Path(__file__).resolve().parents[2] / "shared" / "floor" / "floor_server.py"

NOTHING_SERVER = """
import asyncio, sys
from aiosmtpd.smtp import SMTP

class Nothing:
    async def handle_DATA(self, server, session, envelope):
        if len(sys.argv) > 2:  # a sink: one byte per message received, for the bench to count
            with open(sys.argv[2], "ab") as tally:
                tally.write(b".")
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    port = int(sys.argv[1])
    server = await loop.create_server(lambda: SMTP(Nothing(), loop=loop), "127.0.0.1", port)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """`pid` and its living descendants (the workers of `intake serve --workers N`)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        found.append(queue.pop())
        queue.extend(children.get(found[-1], []))
    return found


def family_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(member) for member in family(pid))


def message(n: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"customer{n % 500}@example.org"
    mail["To"] = "support@support.example.com"
    mail["Subject"] = f"Export fails ({n})"
    mail["Message-ID"] = f"<load-{n}-{time.monotonic_ns()}@example.org>"
    mail.set_content("The PDF export shows error 500 since the update this morning.\n" * 5)
    return mail


async def client(port: int, numbers: list[int], latencies: list[float]) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120) as smtp:
        for n in numbers:
            mail = message(n)
            await smtp.mail(str(mail["From"]))
            await smtp.rcpt("support@support.example.com")
            began = time.perf_counter()
            await smtp.data(mail.as_bytes())
            latencies.append(time.perf_counter() - began)


async def load(ports: list[int], messages: int, connections: int) -> tuple[float, list[float]]:
    """`messages` over `connections`, the connections spread over the servers' `ports`."""
    latencies: list[float] = []
    shares = [list(range(c, messages, connections)) for c in range(connections)]
    began = time.perf_counter()
    await asyncio.gather(
        *(client(ports[c % len(ports)], share, latencies) for c, share in enumerate(shares))
    )
    return messages / (time.perf_counter() - began), latencies


async def fresh_database(url: str) -> None:
    """Drop and create the bench's PostgreSQL database, so every run starts empty."""
    parsed = make_url(url)
    name = parsed.database or ""
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    admin = await asyncpg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, password=parsed.password,
        database="postgres",
    )  # fmt: skip
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


Load = Callable[[list[int], int, int], Coroutine[Any, Any, tuple[float, list[float]]]]
Server = tuple[list[str], int, dict[str, str] | None]  # argv, the port it listens on, environment


def run(
    servers: Sequence[Server],
    cwd: Path,
    messages: int,
    connections: int,
    *,
    load: Load = load,
    settled: Callable[[int], bool] | None = None,
) -> tuple[float, list[float], float, float]:
    """Start the servers (one process each), warm them up, then time `load` (ports, count,
    connections) against them: rate, latencies, the highest peak RSS of one process (MB)
    and the CPU per message of all of them together (ms).

    `settled(n)` says whether the servers have finished the work that `n` messages gave
    them (e.g. their acknowledgements delivered); the CPU is counted until they have, so that
    work deferred past the timed load is not left out."""
    processes = [
        subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        for argv, _, env in servers
    ]
    ports = [port for _, port, _ in servers]
    try:
        for process, port in zip(processes, ports, strict=True):
            wait_listening(port, process)
        warm = min(100, messages)
        asyncio.run(load(ports, warm, connections))  # warm up
        wait_settled(settled, warm)
        cpu_before = sum(family_cpu_seconds(p.pid) for p in processes)
        rate, latencies = asyncio.run(load(ports, messages, connections))
        wait_settled(settled, warm + messages)
        cpu_ms = sum(family_cpu_seconds(p.pid) for p in processes) - cpu_before
        cpu_ms *= 1000 / messages
        rss = max(peak_rss_mb(member) for p in processes for member in family(p.pid))
        return rate, latencies, rss, cpu_ms
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def wait_settled(settled: Callable[[int], bool] | None, count: int, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while settled is not None and not settled(count):
        if time.monotonic() > deadline:
            raise SystemExit(f"the server did not finish the work of {count} messages")
        time.sleep(0.05)


def quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def node(
    number: int, nodes: int, env: dict[str, str], profile: Path | None, workers: int | None
) -> Server:
    """The `intake serve` process `number`: its own SMTP port, the shared configuration."""
    port = free_port()
    cprofile = []
    if profile is not None:
        name = profile.absolute() if nodes == 1 else profile.absolute().with_suffix(f".{number}")
        cprofile = ["-m", "cProfile", "-o", str(name)]
    argv = [sys.executable, *cprofile, "-m", "intake.cli", "serve"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    return argv, port, {**env, "INTAKE_SMTP_PORT": str(port)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument(
        "--database-url", default="", help="default: SQLite in a temp folder; else dropped!"
    )
    parser.add_argument(
        "--nodes", type=int, default=1, help="product processes on one PostgreSQL (and as many "
        "do-nothing servers), the connections spread over them"
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, help="intake serve --workers N (default: [serve] workers)"
    )
    parser.add_argument("--profile", type=Path, help="cProfile the product into this file")
    parser.add_argument(
        "--floor", type=Path, default=FLOOR, help="the floor's server, a second baseline "
        "(skipped when missing or with --nodes)"
    )  # fmt: skip
    args = parser.parse_args()
    if args.nodes > 1 and not args.database_url:
        raise SystemExit("--nodes above 1 shares one PostgreSQL: give --database-url")
    env = dict(os.environ)
    if args.database_url:
        asyncio.run(fresh_database(args.database_url))
        env["INTAKE_DATABASE_URL"] = args.database_url
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sink_port = free_port()
        (root / "nothing.py").write_text(NOTHING_SERVER, encoding="utf-8")
        (root / "intake.toml").write_text(
            "[web]\nenabled = false\n"
            f'[outbound.smtp]\nhost = "127.0.0.1"\nport = {sink_port}\n'
            "[pipeline]\nacks_per_sender_per_hour = 1000000\n"
            "unidentified_acks_per_hour = 1000000\n"
            # Every connection comes from one loopback address: lift the per-client cap.
            "[smtp]\nmax_connections_per_client = 0\n",
            encoding="utf-8",
        )
        nothing_ports = [free_port() for _ in range(args.nodes)]
        nothing = [sys.executable, str(root / "nothing.py")]
        base = run(
            [([*nothing, str(port)], port, None) for port in nothing_ports],
            root,
            args.messages,
            args.connections,
        )
        floor = None
        if args.floor.is_file() and args.nodes == 1:
            floor = floor_run(args.floor, nothing, root, args.messages, args.connections)
        tally = root / "acks.tally"
        tally.touch()
        sink = subprocess.Popen([*nothing, str(sink_port), str(tally)])
        try:
            wait_listening(sink_port, sink)
            ours = run(
                [node(n, args.nodes, env, args.profile, args.workers) for n in range(args.nodes)],
                root,
                args.messages,
                args.connections,
                settled=lambda n: tally.stat().st_size >= n,  # every message acknowledged
            )
        finally:
            sink.terminate()
            sink.wait(timeout=60)
    where = args.database_url.split("@")[-1] if args.database_url else "SQLite"
    nodes = f", {args.nodes} processes each" if args.nodes > 1 else ""
    nodes += f", --workers {args.workers}" if args.workers is not None else ""
    print(f"{args.messages} messages over {args.connections} connections, loopback, {where}{nodes}")
    rows = [("do-nothing aiosmtpd", base), ("the floor", floor), ("intake serve", ours)]
    for name, figures in rows:
        if figures is None:
            continue
        rate, latencies, rss, cpu_ms = figures
        p50, p99 = quantiles(latencies)
        print(
            f"{name:<20} {rate:8.0f} msg/s   DATA->250 p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
            f"   peak RSS {rss:6.1f} MB   CPU {cpu_ms:5.2f} ms/msg"
        )
    print(
        f"intake serve / do-nothing: {ours[0] / base[0]:.2f}x the rate, "
        f"{ours[3] / base[3]:.1f}x the CPU per message"
    )
    if floor is not None:
        print(
            f"the floor / do-nothing: {floor[0] / base[0]:.2f}x the rate; intake serve / the "
            f"floor: {ours[0] / floor[0]:.2f}x the rate, {ours[3] / floor[3]:.1f}x the CPU per "
            "message"
        )


def floor_run(
    script: Path, nothing: list[str], root: Path, messages: int, connections: int
) -> tuple[float, list[float], float, float]:
    """The floor (../shared/floor): a minimal intake with a group commit and an acknowledgement
    per message, timed like the product, its CPU counted until its sink has every ack."""
    sink_port, port = free_port(), free_port()
    tally = root / "floor.tally"
    tally.touch()
    sink = subprocess.Popen([*nothing, str(sink_port), str(tally)])
    try:
        wait_listening(sink_port, sink)
        argv = [sys.executable, str(script), str(port), str(sink_port), str(root / "floor.db")]
        return run(
            [(argv, port, None)],
            root,
            messages,
            connections,
            settled=lambda n: tally.stat().st_size >= n,
        )
    finally:
        sink.terminate()
        sink.wait(timeout=60)


if __name__ == "__main__":
    main()
