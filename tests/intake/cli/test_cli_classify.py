"""`intake classify` (CONTRACTS section 2): one object per input, errors in place, goes on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "data" / "classify"
KEYS = {"path", "subject", "from", "priority", "severity", "urgent", "category",
        "auto_generated", "evidence"}  # fmt: skip


def classify(*args: str, stdin: bytes = b"") -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "intake.cli", "classify", *args],
        input=stdin, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_mail_and_bad_inputs_in_order(tmp_path: Path) -> None:
    urgent = write(tmp_path, "urgent.eml", (
        b"From: Jo <jo@fourco.example>\r\nTo: support@support.example.com\r\n"
        b"Subject: Urgent: IAM Services Offline\r\n\r\nNobody can log in since 9:00.\r\n"
    ))  # fmt: skip
    ooo = write(tmp_path, "ooo.eml", (
        b"From: a@b.example\r\nSubject: Out of Office\r\nAuto-Submitted: auto-replied\r\n\r\n"
        b"I am away.\r\n"
    ))  # fmt: skip
    empty = write(tmp_path, "empty.eml", b"")
    junk = write(tmp_path, "junk.bin", bytes(range(256)) * 3)
    big = write(tmp_path, "big.eml", b"Subject: x\r\n\r\n" + b"a" * 2000)
    out = classify("--policy", "four-tier", "--max-bytes", "1000", urgent, ooo, empty, junk, big)
    assert [o["path"] for o in out] == [urgent, ooo, empty, junk, big]
    first = out[0]
    assert KEYS <= set(first)
    assert (first["priority"], first["urgent"], first["subject"]) == (
        "urgent", True, "Urgent: IAM Services Offline")  # fmt: skip
    assert first["from"] == "jo@fourco.example"
    assert any(e["signal"] == "subject_priority" for e in first["evidence"])  # type: ignore[union-attr]
    assert out[1]["auto_generated"] is True
    assert out[2] == {"path": empty, "error": "empty input"}
    assert out[3] == {"path": junk, "error": "not an email message: no header fields"}
    assert out[4] == {"path": big, "error": "input is over the limit of 1000 bytes"}


def test_chat_text_from_stdin() -> None:
    [out] = classify("--channel", "whatsapp", "--policy", "circularo-saas", "-",
                     stdin=b"app down!!! urgent, nobody can sign")  # fmt: skip
    assert (out["path"], out["priority"], out["urgent"], out["auto_generated"]) == (
        "-", "urgent", True, False)  # fmt: skip


def test_onprem_email_without_evidence_starts_at_level_three(tmp_path: Path) -> None:
    path = write(tmp_path, "q.eml", b"Subject: SSO setup\r\n\r\nWe are setting up SSO.\r\n")
    [out] = classify("--policy", "circularo-onprem", path)
    assert (out["priority"], out["severity"]) == ("level-3", 3)


def test_every_corpus_message_answers() -> None:
    paths = sorted(str(p) for p in CORPUS.rglob("*.eml"))[:120]
    out = classify(*paths)
    assert [o["path"] for o in out] == paths
    assert all("error" in o or KEYS <= set(o) for o in out)
