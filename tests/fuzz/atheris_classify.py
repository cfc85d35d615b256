"""libFuzzer (atheris) harness for the classifier: raw mail, parsed as the email adapter
parses it, classified as the pipeline classifies it (subject, text, headers, envelope).

Run by tests/fuzz/test_atheris.py for a bounded number of runs, seeded with the real corpus.
A crash is an exception out of `classify` or a Classification out of its contract.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["classifier"]):
    from classifier import MISSING_INFO, Classification, classify, load_rules

from channels.email.mime import parse_email

RULES = load_rules()
CHANNELS = ("email", "email", "whatsapp", "telegram", "web")


def test_one_input(data: bytes) -> None:
    parsed = parse_email(data)
    channel = CHANNELS[len(data) % len(CHANNELS)]
    result = classify(
        parsed.subject,
        parsed.text,
        parsed.headers,
        RULES,
        channel=channel,
        envelope_sender=parsed.from_addr,
    )
    if not isinstance(result, Classification):
        raise TypeError(f"classify returned {type(result).__name__}")
    if result.severity is not None and not 1 <= result.severity <= 4:
        raise ValueError(f"severity {result.severity}")
    if result.auto_generated != (result.machine_kind is not None):
        raise ValueError("auto_generated disagrees with machine_kind")
    if not set(result.missing) <= set(MISSING_INFO):
        raise ValueError(f"missing {result.missing}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
