"""The `intake` command line (CONTRACTS section 2).

Bad input is one line on stderr and a non-zero exit, never a traceback. This is the only
module that exits the process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from intake.config import Settings, load_settings
from intake.errors import IntakeError
from intake.sla import answer, answer_line

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2


def config_option(func: F) -> F:
    """`--config PATH` on every subcommand; the command receives the loaded `settings`."""

    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Configuration file (default ./intake.toml, then built-in defaults).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, config_path: Path | None, **kwargs: Any) -> Any:
        with refusals():
            settings = load_settings(config_path)
            return func(*args, settings=settings, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """Turn the product's own errors into one stderr line and exit status 2."""
    try:
        yield
    except IntakeError as exc:
        click.echo(f"intake: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


@click.group()
@click.version_option(package_name="support-intake")
def main() -> None:
    """Support intake: tickets with support-hours deadlines from a vendor's policy."""


@main.command()
@click.option("--policy", "policy_ref", help="Preset name or policy file (default: [policy] name).")
@click.option("--plan", help="The organization's plan, e.g. standard.")
@click.option("--priority", help="Priority name, e.g. urgent.")
@click.option("--received", help="When the request arrived, ISO 8601.")
@click.option("--tz", help="IANA zone: the organization's region, and how times are shown.")
@click.option("--batch", is_flag=True, help="Read JSON lines from stdin, answer one per line.")
@config_option
def sla(
    settings: Settings,
    policy_ref: str | None,
    plan: str | None,
    priority: str | None,
    received: str | None,
    tz: str | None,
    batch: bool,
) -> None:
    """Clock start, first-response and resolution deadlines of a request."""
    default_policy = policy_ref or settings.policy.name
    if batch:
        _sla_batch(default_policy)
        return
    if plan is None or priority is None or received is None:
        raise click.UsageError("--plan, --priority and --received are needed (or --batch)")
    _emit(answer(default_policy, plan, priority, received, tz))


def _sla_batch(default_policy: str) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue  # a blank line is no request
        try:
            _emit(answer_line(line, default_policy))
        except IntakeError as exc:
            _emit({"error": str(exc)})
    sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover
    main()
