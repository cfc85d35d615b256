"""Deadlines per second: the engine, the whole `intake sla` path, and its process.

Every figure is printed next to the deliberately simple day-stepping reference of the tests
(tests/intake/calendar_reference.py), measured in the same run on the same requests, so the
ratios hold on any machine. Pinned to one core; CPU time, so others' load counts less.

    python bench/sla.py [--requests 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "intake" / "policy"))

from calendar_reference import ref_add, ref_clock_starts  # noqa: E402

from intake.cli.sla import answer_lines  # noqa: E402
from intake.policy.calendar import Calendar, add_support_time  # noqa: E402
from intake.policy.files import PRESETS, load_policy  # noqa: E402
from intake.policy.model import Policy, TargetKind, compute_deadlines  # noqa: E402

Request = tuple[str, str, str, datetime]


def requests(count: int, seed: int) -> list[Request]:
    """A mixed workload: every preset, plan and priority, received over two years."""
    rng = random.Random(seed)
    combos = [
        (name, plan, priority)
        for name in PRESETS
        for plan in load_policy(name).plans
        for priority in load_policy(name).priorities.order
    ]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        (*rng.choice(combos), start + timedelta(seconds=rng.randrange(2 * 365 * 86400)))
        for _ in range(count)
    ]


def reference_deadlines(policy: Policy, plan_name: str, priority: str, received: datetime) -> None:
    """The same three instants as compute_deadlines, by the day-stepping reference."""
    plan = policy.plans[plan_name]
    targets = plan.targets[priority]
    for target, cal_name in (
        (targets.response, targets.calendar or plan.response_calendar),
        (targets.resolution, targets.calendar or plan.resolution_calendar),
    ):
        cal = policy.calendars[cal_name]
        if target is None:
            continue
        if target.kind is TargetKind.CALENDAR_HOURS or cal.always:
            received + timedelta(hours=target.amount)
            continue
        amount = timedelta(hours=target.amount)
        if target.kind is TargetKind.DAYS:
            amount = (cal.day_length() or amount) * target.amount
        ref_add(cal, received, amount)
    start_cal = policy.calendars[targets.calendar or plan.response_calendar]
    if not start_cal.always:
        ref_clock_starts(start_cal, received)


def rate(func: Callable[[], None], count: int, repeat: int = 3) -> float:
    """Best of `repeat` runs, in operations per second."""
    best = min(_timed(func) for _ in range(repeat))
    return count / best


def _timed(func: Callable[[], None]) -> float:
    # CPU time of this process: other engineers' load on the machine does not inflate it.
    began = time.process_time()
    func()
    return time.process_time() - began


def in_process(work: list[Request], reference_share: int) -> tuple[float, float]:
    policies = {name: load_policy(name) for name in PRESETS}
    for name, plan, priority, received in work:  # warm the per-year tables once
        compute_deadlines(policies[name], plan, priority, received)
    ours = rate(lambda: [compute_deadlines(policies[n], p, q, r) for n, p, q, r in work], len(work))
    sample = work[:reference_share]
    ref = rate(lambda: [reference_deadlines(policies[n], p, q, r) for n, p, q, r in sample],
               len(sample))  # fmt: skip
    return ours, ref


def request_lines(work: list[Request]) -> str:
    return "".join(
        json.dumps({"policy": n, "plan": p, "priority": q, "received": r.isoformat()}) + "\n"
        for n, p, q, r in work
    )


def whole_path(work: list[Request]) -> float:
    """What `intake sla --batch` runs, in-process: JSON lines in, JSON lines out."""
    text = request_lines(work)

    def run() -> None:
        io.StringIO().writelines(answer_lines(io.StringIO(text), "circularo-saas"))

    run()  # warm the per-year tables once, as for the engine
    return rate(run, len(work))


def through_cli(work: list[Request]) -> float:
    lines = request_lines(work)
    began = _children_cpu()
    done = subprocess.run(
        [sys.executable, "-m", "intake.cli", "sla", "--batch"],
        input=lines, capture_output=True, text=True, check=True,
    )  # fmt: skip
    elapsed = _children_cpu() - began
    answers = done.stdout.splitlines()
    assert len(answers) == len(work)
    assert not any(line.startswith('{"error"') for line in answers)
    return len(work) / elapsed


def one_call() -> float:
    """CPU seconds of one `intake sla` process: start, imports, policy, one answer."""
    began = _children_cpu()
    subprocess.run(
        [sys.executable, "-m", "intake.cli", "sla", "--policy", "circularo-saas", "--plan",
         "standard", "--priority", "normal", "--received", "2025-03-28T15:30+01:00"],
        capture_output=True, check=True,
    )  # fmt: skip
    return _children_cpu() - began


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def target_length(cal: Calendar, starts: list[datetime]) -> dict[str, float]:
    """Microseconds per `add support hours` for 1 h and 64 h targets, engine and reference."""
    out = {}
    for hours in (1, 64):
        amount = timedelta(hours=hours)
        for s in starts:
            add_support_time(cal, s, amount)
        out[f"engine {hours} h"] = 1e6 / rate(
            lambda a=amount: [add_support_time(cal, s, a) for s in starts], len(starts)
        )
        out[f"reference {hours} h"] = 1e6 / rate(
            lambda a=amount: [ref_add(cal, s, a) for s in starts], len(starts), repeat=1
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    work = requests(args.requests, args.seed)

    ours, ref = in_process(work, reference_share=min(len(work), 2_000))
    path = whole_path(work)
    cli = through_cli(work)
    start = min(one_call() for _ in range(3))
    print(f"requests: {len(work)} mixed over 5 presets, 13 plans, 2 years (seed {args.seed})")
    print(f"reference (day stepping)   {ref:>10,.0f} deadlines/s   1.00x")
    print(f"engine, in-process         {ours:>10,.0f} deadlines/s   {ours / ref:.2f}x reference")
    print(f"whole path, in-process     {path:>10,.0f} deadlines/s   {path / ref:.2f}x reference")
    print(f"intake sla --batch process {cli:>10,.0f} deadlines/s   {cli / ref:.2f}x reference"
          f"   (with its start)")  # fmt: skip
    print(f"one intake sla call        {start:>10.2f} s CPU (start, imports, policy, answer)")

    cal = load_policy("circularo-saas").calendars["standard"]
    rng = random.Random(args.seed)
    starts = [w[3] for w in work[:5_000]]
    rng.shuffle(starts)
    cost = target_length(cal, starts)
    print("target length on circularo-saas standard (8 h days, CZ holidays), us per addition:")
    for who in ("engine", "reference"):
        one, long = cost[f"{who} 1 h"], cost[f"{who} 64 h"]
        print(f"  {who:<9} 1 h {one:8.2f}   64 h {long:8.2f}   64 h / 1 h = {long / one:.2f}x")


if __name__ == "__main__":
    main()
