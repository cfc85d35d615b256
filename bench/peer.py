"""Side by side with django-helpdesk: one corpus into `intake serve` and into the peer's intake.

One run: the shared generator writes the peer's corpus (2,000 .eml files and their
manifest.jsonl ground truth); the peer's own script times django-helpdesk's `get_email` on it
(its median of `--peer-runs`, fresh DB each); then, for each `--connections` value, a fresh
`intake serve` on its embedded defaults (SQLite in a temporary folder, loopback ports) gets the
same messages over SMTP, the 1,800 originals first and then the 200 replies and auto-replies
(as the peer's two phases), each file's bytes unchanged. Its acknowledgements are delivered to
a recording sink in another process. Measured: from the first message to the last 250, the
serve process's peak RSS and CPU, and, separately, until its outbox is drained. Then the stored
tickets, messages, attachments and acknowledgements are checked against the manifest.

    python bench/peer.py [--n 2000] [--seed 1] [--connections 4 20] [--peer-runs 3]
        [--keep-venv] [--skip-peer]

Settings that differ from the defaults: the acknowledgement limits are lifted, because the
corpus's dates span weeks while the replay takes a minute (a sender has up to 36 messages),
and so is the cap on connections per client, since every connection comes from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from email import policy
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtp_load import cpu_seconds, free_port, peak_rss_mb, wait_listening

# The shared folder sits beside the checkout (../shared), as CI lays it out.
PEER = Path(__file__).resolve().parents[2] / "shared" / "peer-django-helpdesk"
PEER_ROOT = Path("/tmp/peer-dh")
RCPT = "support@support.example.com"  # the envelope: the corpus's To is the peer's address
LEGACY = ("iso-8859-2", "shift_jis", "iso-2022-jp", "iso-8859-1", "windows-1251", "koi8-r")
Record = dict[str, Any]


# --------------------------------------------------------------------------- processes


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --------------------------------------------------------------------------- acks sink


class RecordingSink:
    """Accepts every acknowledgement and appends who it went to and what it answers."""

    def __init__(self, out: Path) -> None:
        self.out = out.open("a", encoding="utf-8")

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        head = BytesHeaderParser(policy=policy.default).parsebytes(envelope.original_content or b"")
        record = {
            "to": envelope.rcpt_tos,
            "subject": str(head["Subject"] or ""),
            "in_reply_to": str(head["In-Reply-To"] or ""),
            "auto_submitted": str(head["Auto-Submitted"] or ""),
        }
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()
        return "250 OK"


async def sink_main(port: int, out: Path) -> None:
    loop = asyncio.get_running_loop()
    sink = RecordingSink(out)
    await loop.create_server(lambda: SMTP(sink, loop=loop), "127.0.0.1", port)
    await asyncio.Event().wait()


# --------------------------------------------------------------------------- the corpus


def generate(folder: Path, n: int, seed: int) -> tuple[list[Record], str]:
    argv = [sys.executable, str(PEER / "gen_corpus.py"), "--n", str(n), "--seed", str(seed)]
    done = subprocess.run(
        [*argv, "--out", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    digest = re.search(r"sha256 (\w+)", done.stderr)
    lines = (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines], digest.group(1) if digest else "?"


def envelope_sender(raw: bytes) -> str:
    """Return-Path if the file has one (what the MTA was given), else From."""
    head = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    for name in ("Return-Path", "From"):
        value = str(head[name] or "")
        _, address = parseaddr(value)
        if address:
            return address
    return ""


def bare_id(value: str) -> str:
    return value.strip().strip("<>").strip()


def norm(text: str | None) -> str:
    return " ".join((text or "").replace("\xa0", " ").split())


# --------------------------------------------------------------------------- the peer


def run_peer(n: int, seed: int, runs: int, keep_venv: bool, log: Path) -> Record:
    argv = [sys.executable, str(PEER / "run_peer.py"), "--n", str(n), "--seed", str(seed)]
    argv += ["--runs", str(runs), "--root", str(PEER_ROOT)] + (["--keep-venv"] if keep_venv else [])
    with log.open("w") as err:
        done = subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=err, text=True)
    results: Record = json.loads((PEER_ROOT / "results.json").read_text(encoding="utf-8"))
    results["summary_line"] = done.stdout.strip().splitlines()[-1]
    median = next(r for r in results["runs"] if r["run"] == results["median_run"])
    cpu = sum(phase["user_s"] + phase["sys_s"] for phase in median["phases"])
    results["cpu_ms_per_msg"] = cpu * 1000 / median["n"]  # /usr/bin/time: both get_email runs
    return results


# --------------------------------------------------------------------------- ours


async def feed(
    port: int, items: list[tuple[str, bytes]], connections: int, refused: dict[str, str]
) -> None:
    """Send every item over `connections` SMTP sessions, each taking the next one in order."""
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def client() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=300) as smtp:
            while not queue.empty():
                name, raw = queue.get_nowait()
                try:
                    await smtp.sendmail(envelope_sender(raw), [RCPT], raw)
                except aiosmtplib.SMTPException as exc:  # recorded and reported, not retried
                    refused[name] = str(exc)[:120]
                    await smtp.rset()

    await asyncio.gather(*(client() for _ in range(min(connections, len(items)))))


def pending_notices(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(
            conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
        )


def run_ours(corpus: Path, manifest: list[Record], connections: int) -> Record:
    # The peer's two phases, each in the generator's (arrival) order.
    phases = [
        [
            (r["file"], (corpus / r["file"]).read_bytes())
            for r in manifest
            if original == (r["kind"] == "original")
        ]
        for original in (True, False)
    ]
    with tempfile.TemporaryDirectory(prefix="peer-ours-") as folder:
        root = Path(folder)
        smtp_port, web_port, sink_port = free_port(), free_port(), free_port()
        (root / "intake.toml").write_text(
            # Every connection comes from one loopback address: lift the per-client cap.
            f"[smtp]\nport = {smtp_port}\nmax_connections_per_client = 0\n"
            f"[web]\nport = {web_port}\n"
            f'[outbound.smtp]\nhost = "127.0.0.1"\nport = {sink_port}\n'
            "[pipeline]\nacks_per_sender_per_hour = 1000000\n"
            "unidentified_acks_per_hour = 1000000\n",
            encoding="utf-8",
        )
        sent_log = root / "sink.jsonl"
        sink = subprocess.Popen(
            [sys.executable, __file__, "--sink-port", str(sink_port), "--sink-file", str(sent_log)]
        )
        try:
            wait_listening(sink_port, sink, seconds=120)
            with (root / "serve.log").open("wb") as serve_log:
                serve = subprocess.Popen(
                    [sys.executable, "-m", "intake.cli", "serve"],
                    cwd=root,
                    stdout=serve_log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    wait_listening(smtp_port, serve, seconds=120)
                    cpu_before = cpu_seconds(serve.pid)
                    refused: dict[str, str] = {}
                    began = time.perf_counter()
                    asyncio.run(feed(smtp_port, phases[0], connections, refused))
                    originals_done = time.perf_counter() - began
                    asyncio.run(feed(smtp_port, phases[1], connections, refused))
                    last_250 = time.perf_counter() - began
                    while pending_notices(root / "intake.db"):
                        time.sleep(0.2)
                    drained = time.perf_counter() - began
                    cpu = cpu_seconds(serve.pid) - cpu_before
                    rss = peak_rss_mb(serve.pid)
                finally:
                    serve.terminate()
                    serve.wait(timeout=60)
        finally:
            sink.terminate()
            sink.wait(timeout=60)
        sent = [json.loads(line) for line in sent_log.read_text(encoding="utf-8").splitlines()]
        checks = check_ours(root / "intake.db", manifest, sent)
        errors = sum("Traceback" in line for line in (root / "serve.log").open(errors="replace"))
    n = len(manifest)
    return {
        "connections": connections,
        "n": n,
        "originals_s": originals_done,
        "last_250_s": last_250,
        "drained_s": drained,
        "msg_per_s": n / last_250,
        "peak_rss_mb": rss,
        "cpu_ms_per_msg": cpu * 1000 / n,
        "refused": refused,
        "tracebacks": errors,
        "checks": checks,
    }


def check_ours(db: Path, manifest: list[Record], sent: list[Record]) -> Record:
    """What `intake serve` stored and sent, against the generator's ground truth."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    messages = {
        bare_id(row["rfc_message_id"] or ""): row
        for row in conn.execute(
            "SELECT id, ticket_id, rfc_message_id, subject, sender, text, problems FROM messages"
            " WHERE direction = 'in'"
        )
    }
    tickets = {row["id"]: row for row in conn.execute("SELECT * FROM tickets")}
    attachments: dict[int, set[tuple[str, str]]] = {}
    for row in conn.execute("SELECT message_id, filename, sha256 FROM attachments"):
        attachments.setdefault(row["message_id"], set()).add((row["filename"], row["sha256"]))
    outbox = Counter(row[0] for row in conn.execute("SELECT kind || ':' || status FROM outbox"))
    conn.close()
    acked = Counter(bare_id(ack["in_reply_to"]) for ack in sent)

    c: Counter[str] = Counter()
    per_charset: dict[str, Counter[str]] = {}
    priorities: Counter[str] = Counter()
    contacts: Counter[str] = Counter()
    ticket_of: dict[str, int] = {}
    original_tickets: Counter[int] = Counter()
    for r in manifest:
        kind = r["kind"]
        c[f"{kind}"] += 1
        row = messages.get(bare_id(r["message_id"]))
        if row is None:
            c[f"{kind}_missing"] += 1
            continue
        ticket = tickets[row["ticket_id"]]
        c[f"{kind}_acked"] += bool(acked[bare_id(r["message_id"])])
        c[f"{kind}_body"] += norm(r["body_main"]) in norm(row["text"])
        c[f"{kind}_fffd"] += "\ufffd" in row["text"] or "\ufffd" in row["subject"]
        c[f"{kind}_problems"] += row["problems"] not in ("[]", None)
        for want in r["attachments"]:
            c["attachments"] += 1
            found = (want["filename"], want["sha256"]) in attachments.get(row["id"], set())
            c["attachments_ok"] += found
            if any(ord(ch) > 127 for ch in want["filename"]):
                c["attachments_nonascii"] += 1
                c["attachments_nonascii_ok"] += found
        if r.get("backslash_line"):
            c["paths"] += 1
            c["paths_ok"] += norm(r["backslash_line"]) in norm(row["text"])
        if kind == "original":
            ticket_of[r["message_id"]] = ticket["id"]
            original_tickets[ticket["id"]] += 1
            c["subject_ok"] += ticket["subject"] == r["expected_title"]
            c["sender_ok"] += ticket["sender"] == r["from_addr"]
            c["name_ok"] += ticket["sender_name"] == r["from_display"]
            charset = r["charset"].lower()
            if charset in LEGACY:
                stats = per_charset.setdefault(charset, Counter())
                stats["n"] += 1
                stats["subject"] += ticket["subject"] == r["expected_title"]
                stats["body"] += norm(r["body_main"]) in norm(row["text"])
                stats["name"] += ticket["sender_name"] == r["from_display"]
            record = json.loads(ticket["decision"])
            decision = record["priority"]
            marked = "Importance high" if r["high_priority"] else "no marker"
            priorities[f"{marked}: {decision['value']} ({decision['rule']})"] += 1
            signals = {item["signal"] for item in record["evidence"]}
            c["high_seen"] += r["high_priority"] and "header_priority" in signals
            c["deadlines"] += ticket["first_response_due"] is not None
            contacts[ticket["contact_status"]] += 1
        else:
            want = ticket_of.get(r["reply_to_message_id"])
            if ticket["id"] == want:
                c[f"{kind}_threaded"] += 1
            elif ticket["id"] in original_tickets:
                c[f"{kind}_misthreaded"] += 1
            else:
                c[f"{kind}_new_ticket"] += 1
    c["originals_own_ticket"] = sum(1 for count in original_tickets.values() if count == 1)
    c["tickets"] = len(tickets)
    c["high"] = sum(r["high_priority"] for r in manifest if r["kind"] == "original")
    return {
        "counts": dict(c),
        "per_charset": {k: dict(v) for k, v in per_charset.items()},
        "priorities": dict(priorities),
        "contacts": dict(contacts),
        "outbox": dict(outbox),
        "acks_delivered": len(sent),
    }


# --------------------------------------------------------------------------- the report


def peer_rows(results: Record, kinds: Counter[str]) -> dict[str, str]:
    """The peer's own verification (its median run) in the rows of our table."""
    run = next(r for r in results["runs"] if r["run"] == results["median_run"])
    v = run["verify"]
    c: Counter[str] = Counter(v["counts"])
    o, re_, au = kinds["original"], kinds["reply"], kinds["autoreply"]
    dropped = sum(n for key, n in c.items() if key.startswith("attachment_dropped"))
    legacy = [v["subject_ok_by_charset"].get(k) for k in v["subject_ok_by_charset"]]
    subj = [tuple(int(x) for x in s.split("/")) for s in legacy if s]
    return {
        "tickets": f"{v['tickets']}",
        "own": f"{o - c['original_not_ingested']}/{o}",
        "reply": f"{c['reply_threaded_ok']}/{re_} (subjects remapped)",
        "autoreply": f"{c['autoreply_threaded_ok']}/{au}",
        "new": "0",
        "ack_orig": f"{c['original_ack_sent']}/{o}",
        "ack_reply": f"{c['reply_ack_sent']}/{re_}",
        "ack_auto": f"{c['ack_to_autoreply']}",
        "subject": f"{sum(s[0] for s in subj)}/{sum(s[1] for s in subj)}",
        "sender": f"{o - c['submitter_email_wrong']}/{o}",
        "name": "not stored",
        "body": f"{c['body_ok']}/{o}",
        "paths": f"{c['backslash_line_ok']}/{c['backslash_line_ok'] + c['backslash_line_mangled']}",
        "fffd": f"{c['replacement_char_in_ticket']}",
        "attach": f"{c['attachment_ok']}/{c['attachment_ok'] + c['attachment_corrupt'] + dropped}",
        "high": f"{c['high_priority_ok']}/{c['high_priority_ok'] + c['high_priority_lost']}",
        "refused": "0",
    }


def our_rows(run: Record) -> dict[str, str]:
    c: Counter[str] = Counter(run["checks"]["counts"])
    # Raised: anything but the policy's or the channel's default chose the priority.
    high = sum(
        n
        for key, n in run["checks"]["priorities"].items()
        if key.startswith("Importance") and "default" not in key
    )
    subject_ok = c["subject_ok"]
    return {
        "tickets": f"{c['tickets']}",
        "own": f"{c['originals_own_ticket']}/{c['original']}",
        "reply": f"{c['reply_threaded']}/{c['reply']}",
        "autoreply": f"{c['autoreply_threaded']}/{c['autoreply']}",
        "new": f"{c['reply_new_ticket'] + c['autoreply_new_ticket']}",
        "ack_orig": f"{c['original_acked']}/{c['original']}",
        "ack_reply": f"{c['reply_acked']}/{c['reply']}",
        "ack_auto": f"{c['autoreply_acked']}",
        "subject": f"{subject_ok}/{c['original']}",
        "sender": f"{c['sender_ok']}/{c['original']}",
        "name": f"{c['name_ok']}/{c['original']}",
        "body": f"{c['original_body']}/{c['original']}",
        "paths": f"{c['paths_ok']}/{c['paths']}",
        "fffd": f"{c['original_fffd'] + c['reply_fffd'] + c['autoreply_fffd']}",
        "attach": f"{c['attachments_ok']}/{c['attachments']}",
        "high": f"{high}/{c['high']} (header seen {c['high_seen']})",
        "refused": f"{len(run['refused'])}",
    }


ROWS = {
    "tickets": "tickets in the database",
    "own": "originals -> a ticket of their own",
    "reply": "replies threaded onto the original",
    "autoreply": "auto-replies threaded onto the original",
    "new": "replies/auto-replies -> new ticket",
    "ack_orig": "acks delivered for originals",
    "ack_reply": "acks delivered for replies",
    "ack_auto": "acks to auto-replies (want 0)",
    "subject": "subject == decoded subject (originals)",
    "sender": "sender address",
    "name": "sender display name",
    "body": "first paragraph in stored text",
    "paths": "Windows path line intact",
    "fffd": "U+FFFD in stored text",
    "attach": "attachments, name + sha256",
    "high": "Importance: high -> raised priority",
    "refused": "messages refused (SMTP 4xx/5xx)",
}


def table(columns: list[tuple[str, dict[str, str]]]) -> Iterable[str]:
    widths = [max(len(name), *(len(rows[k]) for k in ROWS)) for name, rows in columns]
    yield f"{'check':<40}" + "".join(
        f"  {n:<{w}}" for (n, _), w in zip(columns, widths, strict=True)
    )
    for key, label in ROWS.items():
        yield f"{label:<40}" + "".join(
            f"  {r[key]:<{w}}" for (_, r), w in zip(columns, widths, strict=True)
        )


def report(
    corpus: str, kinds: Counter[str], peer: Record | None, ours: list[Record], loads: list[str]
) -> None:
    print(f"{corpus}; load average {' -> '.join(loads)}")
    columns: list[tuple[str, dict[str, str]]] = []
    peer_rate = 0.0
    if peer is not None:
        print(
            f"{peer['summary_line']}; CPU {peer['cpu_ms_per_msg']:.1f} ms/msg"
            f"  (median of {len(peer['runs'])}, walls {peer['walls']} s)"
        )
        peer_rate = float(peer["median_msg_per_s"])
        columns.append(("django-helpdesk", peer_rows(peer, kinds)))
    for run in ours:
        ratio = f" = {run['msg_per_s'] / peer_rate:.2f}x the peer" if peer_rate else ""
        print(
            f"intake serve, {run['connections']:>2} connections: {run['n']} msgs, last 250 at "
            f"{run['last_250_s']:.2f} s = {run['msg_per_s']:.1f} msg/s{ratio} "
            f"(originals {run['originals_s']:.2f} s); acks drained at {run['drained_s']:.2f} s; "
            f"peak RSS {run['peak_rss_mb']:.0f} MB; CPU {run['cpu_ms_per_msg']:.1f} ms/msg"
        )
        if peer is not None:
            rss = run["peak_rss_mb"] / float(peer["median_peak_rss_mb"])
            cpu = run["cpu_ms_per_msg"] / float(peer["cpu_ms_per_msg"])
            print(f"  ours/peer: {rss:.2f}x the peak RSS, {cpu:.2f}x the CPU per message")
        columns.append((f"ours C={run['connections']}", our_rows(run)))
    print()
    for line in table(columns):
        print(line)
    for run in ours:
        checks = run["checks"]
        print(
            f"\nours C={run['connections']}: outbox {checks['outbox']}, "
            f"acks delivered {checks['acks_delivered']}, serve tracebacks {run['tracebacks']}"
        )
        deadlines = checks["counts"].get("deadlines", 0)
        print(f"  contact status {checks['contacts']}; tickets with SLA deadlines {deadlines}")
        print("  legacy charsets (subject / first paragraph / display name of n originals):")
        for charset, s in sorted(checks["per_charset"].items()):
            print(
                f"    {charset:<13} n={s['n']:<4} {s['subject']:>4} {s['body']:>4} {s['name']:>4}"
            )
        print("  priority chosen:")
        for key, n in sorted(checks["priorities"].items()):
            print(f"    {n:5}  {key}")
        for name, why in sorted(run["refused"].items())[:5]:
            print(f"  refused {name}: {why}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, nargs="+", default=[4, 20])
    parser.add_argument("--peer-runs", type=int, default=3)
    parser.add_argument("--keep-venv", action="store_true", help="reuse the peer's venv")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--sink-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sink-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink_port:
        asyncio.run(sink_main(args.sink_port, args.sink_file))
        return
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="peer-corpus-") as folder:
        corpus = Path(folder)
        manifest, sha = generate(corpus, args.n, args.seed)
        peer = None
        if not args.skip_peer:
            peer = run_peer(args.n, args.seed, args.peer_runs, args.keep_venv, corpus / "peer.log")
            loads.append(load_average())
        ours = []
        for connections in args.connections:
            ours.append(run_ours(corpus, manifest, connections))
            loads.append(load_average())
    kinds = Counter(r["kind"] for r in manifest)
    described = f"corpus: gen_corpus.py --n {args.n} --seed {args.seed}, sha256 {sha}"
    report(described, kinds, peer, ours, loads)


if __name__ == "__main__":
    main()
