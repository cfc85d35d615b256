"""libFuzzer (atheris) harness for the MIME path: raw bytes -> parse_email -> InboundMessage.

Run by tests/fuzz/test_atheris.py for a bounded number of runs, seeded with the real corpus;
by hand for longer: `python tests/fuzz/atheris_mime.py -max_total_time=600 CORPUS_DIR`.
A crash is an exception out of the harness: a parser bug, or an output out of bounds.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports(include=["channels"]):
    from channels.email.inbound import inbound_from_raw
    from channels.email.mime import parse_email

from fuzzing import check_inbound, check_parsed

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
LIMIT = 4096


def test_one_input(data: bytes) -> None:
    parsed = parse_email(data, max_attachment_bytes=LIMIT)
    internal = [p for p in parsed.problems if p.startswith("error:")]
    if internal:  # the parser's own catch-all caught a bug
        raise RuntimeError(f"parse_email caught {internal}")
    check_parsed(parsed, max_attachment_bytes=LIMIT)
    check_inbound(inbound_from_raw(data, received_at=NOW, max_attachment_bytes=LIMIT))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
