"""The `intake` command group, and `intake sla`, the command scripts call per request.

`intake sla` needs only the policy engine and the configuration, so it lives here and starts
in a fraction of the time the whole product takes to import (2 s: the web, mail and database
stacks). Every other command is registered by `intake.cli.main`, imported when one is named
or listed. Bad input is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from intake.cli.sla import answer, answer_lines
from intake.config import Settings, load_settings
from intake.errors import IntakeError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2


class _Commands(click.Group):
    """A group whose commands other than `sla` come from `intake.cli.main` when needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        importlib.import_module("intake.cli.main")  # registers its commands on this group
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            importlib.import_module("intake.cli.main")
        return super().get_command(ctx, cmd_name)


# `--config PATH`, given to the command as `config_path`.
config_path_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default ./intake.toml, then built-in defaults).",
)


def config_option(func: F) -> F:
    """`--config PATH` on every subcommand; the command receives the loaded `settings`."""

    @config_path_option
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


@click.group(cls=_Commands)
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
        sys.stdout.writelines(answer_lines(sys.stdin, default_policy))
        sys.stdout.flush()
        return
    if plan is None or priority is None or received is None:
        raise click.UsageError("--plan, --priority and --received are needed (or --batch)")
    sys.stdout.write(answer(default_policy, plan, priority, received, tz) + "\n")
