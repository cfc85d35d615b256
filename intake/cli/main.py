"""The `intake` command line (CONTRACTS section 2): every command but `sla`, registered on
the group of `intake.cli.root`, which imports this module when one of them is named.

Bad input is one line on stderr and a non-zero exit, never a traceback. Only the command
line (this module and `intake.cli.root`) exits the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError

from classifier import load_rules
from intake.cli import admin, checks
from intake.cli.app import Storage, build_pipeline, open_storage, utc_now
from intake.cli.classify import classify_input
from intake.cli.existing import require_database, shown_url
from intake.cli.report import csv_text, json_rows, text_lines
from intake.cli.root import config_option, config_path_option, main, refusals
from intake.cli.serve import serve
from intake.cli.text import ticket_text
from intake.cli.workers import run_workers, worker_count
from intake.config import Settings, load_settings
from intake.desk import actions as agent_actions
from intake.desk import agents as accounts
from intake.desk.reporting import sla_report
from intake.errors import ConfigError, InputRefusedError, IntakeError
from intake.messages import ChannelKind
from intake.pipeline import references
from intake.policy.check import inconsistencies
from intake.policy.files import load_policy


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


@main.command("classify")
@click.option("--policy", "policy_ref", help="Preset name or policy file (default: [policy] name).")
@click.option(
    "--channel",
    type=click.Choice([c.value for c in ChannelKind]),
    default="email",
    show_default=True,
    help="email: each input is a raw RFC 5322 message; others: plain text.",
)
@click.option(
    "--max-bytes",
    type=int,
    default=10 * 1024 * 1024,
    show_default=True,
    help="Larger inputs are refused.",
)
@click.argument("paths", nargs=-1, required=True)
@config_option
def classify_command(
    settings: Settings, policy_ref: str | None, channel: str, max_bytes: int, paths: tuple[str, ...]
) -> None:
    """Classify messages: one JSON object per input, in order ("-" reads stdin)."""
    policy = load_policy(policy_ref or settings.policy.name)
    rules = load_rules(settings.classifier.rules)
    for path in paths:
        try:
            data = _read_input(path, max_bytes)
            result = classify_input(
                data, channel=ChannelKind(channel), policy=policy, rules=rules, max_bytes=max_bytes
            )
            _emit({"path": path, **result})
        except IntakeError as exc:
            _emit({"path": path, "error": str(exc)})
    sys.stdout.flush()


def _read_input(path: str, max_bytes: int) -> bytes:
    """At most one byte over the limit is read, so a huge file is refused cheaply."""
    try:
        if path == "-":
            return sys.stdin.buffer.read(max_bytes + 1)
        with open(path, "rb") as handle:
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise InputRefusedError(f"cannot read: {exc.strerror}") from None


@main.command("serve")
@click.option("--demo", is_flag=True, help="Demo contacts; notices print here, none go out.")
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=None,
    help="Processes sharing the ports (default: [serve] workers; 0: one per core).",
)
@config_option
def serve_command(settings: Settings, demo: bool, workers: int | None) -> None:
    """Run every enabled channel until SIGINT or SIGTERM, then drain and exit 0."""
    count = 1 if demo else worker_count(settings.serve.workers if workers is None else workers)
    who = " [%(processName)s]" if count > 1 else ""  # which worker says it
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s{who} %(name)s: %(message)s"
    )
    # aiosmtpd logs every command at INFO, sender-controlled text included: ours say enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # httpx logs each request's URL at INFO, and a Telegram Bot API URL holds the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The twilio library logs every REST request with its headers and form at INFO.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    if count == 1:
        asyncio.run(serve(settings, demo=demo))
    else:
        sys.exit(run_workers(settings, count))


@main.group("config")
def config_group() -> None:
    """The configuration file."""


@config_group.command("check")
@config_path_option
def config_check(config_path: Path | None) -> None:
    """Validate the configuration and reach what it names; one line per check, exit 0 when
    all is well, 1 otherwise."""
    try:
        settings = load_settings(config_path)
    except IntakeError as exc:
        click.echo(f"FAIL {exc}")
        sys.exit(1)
    findings = asyncio.run(checks.check_all(settings))
    for finding in findings:
        click.echo(finding.line())
    sys.exit(1 if any(f.problem for f in findings) else 0)


@main.group()
def imap() -> None:
    """The IMAP mailbox the product polls."""


@imap.command("backfill")
@click.option(
    "--since",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Re-read messages dated from this day (YYYY-MM-DD) on.",
)
@config_option
def imap_backfill(settings: Settings, since: datetime) -> None:
    """Re-read a date range after a long outage; stored messages are skipped by Message-ID."""

    from channels.email.imap import BackfillResult, backfill  # imapclient: only for IMAP

    async def run(storage: Storage) -> BackfillResult:
        pipeline = await build_pipeline(settings, storage)
        return await backfill(settings.imap, pipeline, since.date(), utc_now)

    result = asyncio.run(_with_storage(settings, run))
    click.echo(
        f"seen {result.seen}, accepted {result.accepted}, duplicates {result.duplicates}, "
        f"refused {result.refused}",
        err=True,
    )


@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@config_option
def db_upgrade(settings: Settings) -> None:
    """Apply every schema migration (the product also does this when it starts)."""
    asyncio.run(_with_storage(settings, _noop))
    click.echo("database is up to date", err=True)


async def _noop(_storage: Storage) -> None:
    return None


@main.group()
def contacts() -> None:
    """Customer organizations and their contacts (the file: docs/contacts.md)."""


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@config_option
def contacts_import(settings: Settings, file: Path) -> None:
    """Import a contacts CSV or TOML file; importing the same file again changes nothing."""

    async def run(storage: Storage) -> admin.ImportSummary:
        return await admin.import_contacts(
            storage,
            file,
            default_policy=settings.policy.name,
            default_region=settings.contacts.default_region,
        )

    summary = asyncio.run(_with_storage(settings, run))
    click.echo(
        f"{file}: {summary.organizations} organizations, {summary.contacts} contacts, "
        f"{summary.changed} changes",
        err=True,
    )


@contacts.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per organization.")
@config_option
def contacts_list(settings: Settings, as_json: bool) -> None:
    """Organizations with their plan, domains and contacts."""
    for org in asyncio.run(_reading(settings, admin.list_contacts)):
        if as_json:
            _emit(org)
            continue
        click.echo(f"{org['organization']} ({org['plan']}): {' '.join(org['domains'])}")
        for person in org["contacts"]:
            ids = ", ".join(filter(None, (person["email"], person["phone"], person["telegram"])))
            click.echo(f"  {person['role']:<10} {person['name']}: {ids}")


@main.group()
def tickets() -> None:
    """The ticket queue."""


@tickets.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--open", "only_open", is_flag=True, help="Only open tickets.")
@click.option("--overdue", is_flag=True, help="Only open tickets past a deadline now.")
@config_option
def tickets_list(settings: Settings, as_json: bool, only_open: bool, overdue: bool) -> None:
    """Tickets, soonest deadline first."""

    async def run(storage: Storage) -> list[dict[str, Any]]:
        now = datetime.now(UTC) if overdue else None
        return await admin.list_ticket_rows(storage, only_open=only_open, overdue_at=now)

    for row in asyncio.run(_reading(settings, run)):
        if as_json:
            _emit(row)
        else:
            due = row["first_response_due"] or row["resolution_due"] or "-"
            click.echo(
                f"{row['reference']}  {row['status']:<8} {row['priority']:<12} due {due:<25} "
                f"{row['sender']}: {row['subject'][:60]}"
            )


@tickets.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="The ticket as one JSON object.")
@config_option
def tickets_show(settings: Settings, reference: str, as_json: bool) -> None:
    """One ticket with its messages and the decision record."""

    async def run(storage: Storage) -> dict[str, Any]:
        return await admin.show_ticket(storage, reference)

    shown = asyncio.run(_reading(settings, run))
    if as_json:
        _emit(shown)
        return
    click.echo(ticket_text(shown))


@main.group("agents")
def agents_group() -> None:
    """Agents: accounts for the queue page, tokens for the API (CONTRACTS section 2)."""


def _read_password() -> str:
    # One line; only its line ending is dropped (spaces may belong to the password).
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


@agents_group.command("add")
@click.argument("email")
@click.option("--name", help="How the agent is shown (default: the email's local part).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (required).")
@config_option
def agents_add(settings: Settings, email: str, name: str | None, password_stdin: bool) -> None:
    """Create an agent and print an API token (shown this once) on stdout."""
    if not password_stdin:
        raise click.UsageError("--password-stdin is required: a password is never an argument")
    password = _read_password()
    accounts.check_password(password)  # before the database is opened
    token = asyncio.run(
        _with_storage(
            settings,
            lambda storage: accounts.add_agent(
                storage.sessions, email, password, name=name, now=utc_now()
            ),
        )
    )
    _print_token(token)


def _print_token(token: str) -> None:
    # The label goes to stderr: a terminal shows "API token: ...", while `$(intake agents
    # add ...)` still captures the bare token from stdout, as scripts always have.
    click.echo("API token: ", err=True, nl=False)
    click.echo(token)
    click.echo("(shown this once; send it as `Authorization: Bearer TOKEN` on /api/...)", err=True)


@agents_group.command("token")
@click.argument("email")
@config_option
def agents_token(settings: Settings, email: str) -> None:
    """Issue another API token for an agent (earlier ones keep working)."""
    token = asyncio.run(
        _with_storage(
            settings, lambda storage: accounts.issue_token(storage.sessions, email, now=utc_now())
        )
    )
    _print_token(token)


@agents_group.command("zone")
@click.argument("email")
@click.argument("zone", required=False)
@config_option
def agents_zone(settings: Settings, email: str, zone: str | None) -> None:
    """Show the agent's page times in ZONE (e.g. Europe/Prague); without ZONE, in the zone
    of their browser (the default)."""

    async def run(storage: Storage) -> str | None:
        return await accounts.set_agent_zone(storage.sessions, email, zone)

    chosen = asyncio.run(_with_storage(settings, run))
    click.echo(f"{email}: page times in {chosen or 'the browser zone'}", err=True)


@agents_group.command("deactivate")
@click.argument("email")
@config_option
def agents_deactivate(settings: Settings, email: str) -> None:
    """The agent can no longer log in; their API tokens and page sessions stop at once."""
    asyncio.run(
        _with_storage(
            settings,
            lambda storage: accounts.deactivate_agent(storage.sessions, email, now=utc_now()),
        )
    )
    click.echo(f"deactivated {accounts.normalize_email(email)}")


@agents_group.group("tokens")
def agents_tokens() -> None:
    """An agent's API tokens."""


@agents_tokens.command("revoke")
@click.argument("email")
@config_option
def agents_tokens_revoke(settings: Settings, email: str) -> None:
    """End every API token of the agent at once (page sessions are not affected)."""
    count = asyncio.run(
        _with_storage(settings, lambda storage: accounts.revoke_tokens(storage.sessions, email))
    )
    click.echo(f"revoked {count} token{'s' if count != 1 else ''} of {email.strip().lower()}")


@agents_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per agent.")
@config_option
def agents_list(settings: Settings, as_json: bool) -> None:
    """Agents with their number of tokens and when one was last used."""
    for agent in asyncio.run(
        _with_storage(settings, lambda storage: accounts.list_agents(storage.sessions))
    ):
        if as_json:
            _emit(agent)
        else:
            used = agent["last_used_at"] or "never"
            state = "" if agent["active"] else ", deactivated"
            click.echo(
                f"{agent['email']} ({agent['name']}): {agent['tokens']} tokens, used {used}{state}"
            )


@agents_group.command("update")
@click.argument("reference")
@click.option("--as", "email", required=True, help="The agent doing it (recorded as author).")
@click.option("--action", type=click.Choice([a.value for a in agent_actions.Action]))
@click.option("--priority", help="A priority of the ticket's policy.")
@click.option("--severity", type=click.IntRange(1, 4))
@config_option
def agents_update(
    settings: Settings,
    reference: str,
    email: str,
    action: str | None,
    priority: str | None,
    severity: int | None,
) -> None:
    """Record an action on a ticket, or change its priority/severity; prints the ticket."""
    if (action is None) == (priority is None and severity is None):
        raise click.UsageError("give --action, or --priority and/or --severity")
    ticket_id = references.parse_reference(reference)
    if ticket_id is None:
        raise InputRefusedError(f"{reference!r} is not a ticket reference like SUP-000123")

    async def run(storage: Storage) -> dict[str, Any]:
        agent = await accounts.agent_named(storage.sessions, email)
        if action is not None:
            await agent_actions.act(
                storage.sessions, ticket_id, agent_actions.Action(action), agent, now=utc_now()
            )
        else:
            await agent_actions.change_ticket(
                storage.sessions, ticket_id, agent, priority=priority, severity=severity,
                now=utc_now(),
            )  # fmt: skip
        return await agent_actions.ticket_detail(storage.sessions, ticket_id)

    _emit(asyncio.run(_with_storage(settings, run)))


@main.group("policy")
def policy_group() -> None:
    """Support policies: presets and a team's own files."""


@policy_group.command("check")
@click.argument("name_or_path")
@config_option
def policy_check(settings: Settings, name_or_path: str) -> None:
    """One line per inconsistency in a policy; exit 0 with warnings only, 2 if it won't load."""
    del settings  # every subcommand takes --config; this one needs nothing from it
    with refusals():
        policy = load_policy(name_or_path)
    for line in inconsistencies(policy):
        click.echo(f"{name_or_path}: {line}")


@main.group("report")
def report_group() -> None:
    """Reports: what each customer was promised, and what they got."""


@report_group.command("sla")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="From this day (UTC).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), help="To this day, inclusive.")
@click.option("--organization", help="Only this organization (its name).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with a `kind`.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with the JSON lines' keys as columns.")
@config_option
def report_sla(
    settings: Settings,
    since: datetime | None,
    until: datetime | None,
    organization: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Response and resolution times in support hours against the targets, and quotas used,
    for requests received in the period (default: the last 30 days)."""
    report = asyncio.run(
        _with_storage(
            settings,
            lambda storage: sla_report(
                storage.sessions, default_policy=settings.policy.name, now=utc_now(),
                since=since.date() if since else None, until=until.date() if until else None,
                organization=organization,
            ),
        )
    )  # fmt: skip
    if as_json:
        for row in json_rows(report):
            _emit(row)
        return
    if as_csv:
        sys.stdout.write(csv_text(report))
        return
    for line in text_lines(report):
        click.echo(line)


T = TypeVar("T")


async def _with_storage(settings: Settings, work: Callable[[Storage], Awaitable[T]]) -> T:
    async with open_storage(settings) as storage:
        return await work(storage)


async def _reading(settings: Settings, work: Callable[[Storage], Awaitable[T]]) -> T:
    """`_with_storage` for commands that only read: a database that is not there is an error,
    not a new empty one (CONTRACTS section 2 additions)."""
    require_database(settings.database.url)
    try:
        return await _with_storage(settings, work)
    except (OSError, DBAPIError) as exc:  # a server that is away or refuses us: one line
        problem = f"cannot reach {shown_url(settings.database.url)}: {type(exc).__name__}"
        raise ConfigError("database.url", problem) from None


if __name__ == "__main__":  # pragma: no cover
    main()
