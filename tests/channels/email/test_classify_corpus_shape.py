"""The classifier evaluation corpus in tests/data/classify: complete, valid, parseable."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.email.mime import parse_email

CORPUS = Path(__file__).resolve().parents[2] / "data" / "classify"
COLUMNS = [
    "path",
    "channel",
    "urgent",
    "subject_priority",
    "severity",
    "category",
    "auto_generated",
    "notes",
]
ALLOWED = {
    "channel": {"email", "whatsapp", "sms", "telegram", "voice", "web"},
    "urgent": {"yes", "no"},
    "subject_priority": {"urgent", "high", "medium", "low", "-"},
    "severity": {"1", "2", "3", "4", "-"},
    "category": {
        "outage",
        "error",
        "question",
        "feature_request",
        "account_billing",
        "service_credit",
        "other",
    },
    "auto_generated": {"yes", "no"},
}


def _read() -> tuple[list[str], list[list[str]]]:
    lines = (CORPUS / "labels.tsv").read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


HEADER, ROWS = _read()


def test_header() -> None:
    assert HEADER == COLUMNS


def test_size_and_mix() -> None:
    assert len(ROWS) >= 300
    paths = [row[0] for row in ROWS]
    assert len(set(paths)) == len(paths)
    assert sum(path.startswith("real/") for path in paths) == 173


def test_every_eml_file_is_labelled() -> None:
    on_disk = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()}
    on_disk -= {"labels.tsv", "README.md", "make_synthetic.py"}
    assert on_disk == {row[0] for row in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_row(row: list[str]) -> None:
    assert len(row) == len(COLUMNS)
    fields = dict(zip(COLUMNS, row, strict=True))
    for column, allowed in ALLOWED.items():
        assert fields[column] in allowed, column
    path = CORPUS / fields["path"]
    assert path.is_file()
    parsed = parse_email(path.read_bytes())
    assert "unparseable" not in parsed.problems or fields["path"].startswith("real/")
    if fields["path"].startswith("synthetic/"):
        assert parsed.problems == ()  # our own mail is well-formed
        assert parsed.text.strip()
