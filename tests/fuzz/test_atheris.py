"""Runs the atheris (libFuzzer) harnesses for a bounded number of inputs, in a subprocess,
seeded with the real corpus (tests/data/mail and tests/data/classify).

The test fails when a harness crashes (an exception, an output out of bounds), runs out of
memory (`-rss_limit_mb`), takes over `-timeout` seconds on one input (a hang), or does not
finish at all. `-seed` is fixed; `-runs` bounds the work and `-max_total_time` is only a
safety net, so CI is deterministic unless the machine is very slow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fuzzing import MAX_CORPUS_FILE, corpus

HERE = Path(__file__).resolve().parent
RSS_LIMIT_MB = 1536
ONE_INPUT_SECONDS = 20  # a hang, not slowness: the largest seed parses in well under 1 s


@pytest.mark.parametrize(
    ("harness", "runs"), [("atheris_mime.py", 900), ("atheris_classify.py", 400)]
)
def test_harness_survives_a_bounded_run(harness: str, runs: int, tmp_path: Path) -> None:
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    for number, data in enumerate(corpus()):
        (seeds / f"seed-{number:04d}").write_bytes(data)
    command = [
        sys.executable, str(HERE / harness),
        f"-runs={runs}", "-seed=1", "-max_total_time=120",
        f"-rss_limit_mb={RSS_LIMIT_MB}", f"-timeout={ONE_INPUT_SECONDS}",
        f"-max_len={MAX_CORPUS_FILE}", f"-artifact_prefix={tmp_path}/",
        "-print_final_stats=1", str(seeds),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{harness} did not finish in 300 s: {str(exc.stderr)[-2000:]}")
    log = done.stderr
    findings = ("crash-", "oom-", "timeout-", "leak-")
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(findings))
    assert done.returncode == 0 and not crashes, f"{harness}: {crashes}\n{log[-4000:]}"
    assert "Done " in log and "stat::number_of_executed_units" in log, log[-2000:]
    executed = int(log.split("stat::number_of_executed_units:")[1].split()[0])
    assert executed >= min(runs, len(corpus())), log[-2000:]
