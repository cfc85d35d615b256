"""Prints docs/configuration.md: every key of `intake.toml`, its default and its variable.

Read from the settings models themselves (intake/config.py), with each key's comment taken
from the line that declares it, so the reference cannot drift from the code:

    python scripts/config_reference.py > docs/configuration.md

tests/test_docs.py fails when the file and the models disagree.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intake import config  # noqa: E402

HEAD = """# Configuration reference

`intake.toml` in the working directory, or the file `--config PATH` names; without one, the
built-in defaults below. Every key may also be set as an environment variable
`INTAKE_<SECTION>_<KEY>` (the table's last column), which wins over the file. Lists take JSON
(`["a.example","b.example"]`) or commas in a variable. Secrets (marked *secret*) are never
printed or logged. `intake config check` (where available) reads the file and reaches what it
names. A bad key or value stops the command with one line naming the key and the problem.

This page is generated from `intake/config.py` by `python scripts/config_reference.py`;
`tests/test_docs.py` fails when they disagree.
"""


def comments(model: type[BaseModel]) -> dict[str, str]:
    """Each field's comment: the `# ...` on its line, else the comment lines just above it."""
    source, _ = inspect.getsourcelines(model)
    found: dict[str, str] = {}
    tree = ast.parse("".join(source))
    for node in tree.body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line = source[node.lineno - 1]
            text = line.split("#", 1)[1].strip() if "#" in line and '"#' not in line else ""
            above = []
            index = node.lineno - 2
            while index >= 0 and source[index].strip().startswith("#"):
                above.insert(0, source[index].strip().lstrip("#").strip())
                index -= 1
            found[node.target.id] = " ".join([*above, text]).strip()
    return found


def shown(value: Any) -> str:
    if isinstance(value, SecretStr):
        return '`""`' if not value.get_secret_value() else "*set*"
    if isinstance(value, Path):
        return f'`"{value}"`'
    if value is None:
        return "none"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


WORDS = {
    "str": "text",
    "int": "integer",
    "float": "number",
    "bool": "true or false",
    "Path": "path",
    "SecretStr": "text, *secret*",
    "NoneType": "none",
}


def kind(annotation: Any) -> str:
    """The type in words, e.g. `path or none`, `list of text`, `"polling" or "webhook"`."""
    args = getattr(annotation, "__args__", ())
    origin = getattr(annotation, "__origin__", None)
    if origin is list:
        return "list of " + kind(args[0])
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if args:  # a union such as `Path | None`
        return " or ".join(kind(a) for a in args)
    name = getattr(annotation, "__name__", str(annotation))
    return WORDS.get(name, name)


# What a key means where intake/config.py has no comment on it (keys that explain themselves
# there, mostly); a key missing from both is listed with an empty description.
MEANING = {
    "database.url": "SQLAlchemy URL: `sqlite+aiosqlite:///PATH` (one node) or "
    "`postgresql+asyncpg://USER@HOST/DB` (several nodes)",
    "policy.name": "the default policy: a preset (`scoro`, `circularo-saas`, `scalr`, "
    "`four-tier`, `circularo-onprem`) or a path to a policy file",
    "contacts.file": "contacts file (CSV or TOML) imported at start; see contacts.md",
    "pipeline.follow_up_window_hours": "chat messages within this join the sender's open ticket",
    "pipeline.acks_per_sender_per_hour": "acknowledgements to one address per hour",
    "sla.check_seconds": "how often the SLA watcher looks",
    "smtp.enabled": "run the inbound SMTP server",
    "smtp.host": "address to listen on",
    "smtp.port": "port to listen on",
    "smtp.domains": "the domains we accept mail for; RCPT to any other is refused (550)",
    "smtp.max_message_bytes": "larger mail is refused (552)",
    "smtp.tls_key": "PEM private key of `tls_cert`",
    "smtp.max_connections": "concurrent SMTP sessions in all",
    "imap.enabled": "poll an existing mailbox",
    "imap.host": "IMAP server",
    "imap.port": "IMAP port (993 with `ssl`)",
    "imap.ssl": "implicit TLS",
    "imap.user": "mailbox login",
    "imap.password": "mailbox password",
    "imap.folder": "the folder to read",
    "outbound.smtp.host": "the relay our acknowledgements, replies and alerts go through",
    "outbound.smtp.port": "its port",
    "outbound.smtp.from": "our address: the From of everything we send",
    "web.enabled": "run the web app (webhooks, /callback, the agents' page and API, /healthz, "
    "/metrics)",
    "web.host": "address to listen on",
    "web.port": "port to listen on",
    "web.public_url": "the URL Twilio and Telegram call; Twilio signatures are checked against it",
    "notify.emails": "agents' addresses for urgent, on-call and SLA alerts",
    "notify.telegram_chat_ids": "Telegram chats (groups) for the same alerts",
    "twilio.enabled": "WhatsApp, SMS and voice call-backs through Twilio",
    "twilio.account_sid": "the account SID (AC...)",
    "twilio.auth_token": "the account's auth token: signs webhooks, authenticates the REST API",
    "twilio.api_base": "Twilio's REST API (tests point this at a local fake)",
    "telegram.enabled": "the Telegram bot",
    "telegram.token": "the bot's token from @BotFather",
    "telegram.mode": "long polling, or Telegram calls `POST /webhooks/telegram`",
    "telegram.api_base": "the Bot API (tests point this at a local fake)",
    "telegram.secret_token": "webhook mode: `X-Telegram-Bot-Api-Secret-Token` must equal it",
}


def rows(model: type[BaseModel], path: tuple[str, ...]) -> list[str]:
    notes = comments(model)
    out: list[str] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            continue
        env = config.ENV_PREFIX + "_".join((*path, key)).upper()
        note = notes.get(name) or MEANING.get(".".join((*path, key)), "")
        note = note.replace("|", "\\|")
        out.append(f"| `{key}` | {kind(annotation)} | {shown(info.default)} | `{env}` | {note} |")
    return out


def sections(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            continue
        key = info.alias or name
        here = (*path, key)
        body = rows(annotation, here)
        if body:
            doc = inspect.getdoc(annotation)
            own = doc if doc and annotation.__doc__ else ""
            out += ["", f"## `[{'.'.join(here)}]`", ""]
            if own:
                out += [" ".join(own.split()), ""]
            out += ["| key | type | default | variable | what |", "|---|---|---|---|---|", *body]
        out += sections(annotation, here)
    return out


def render() -> str:
    return HEAD + "\n".join(sections(config.Settings)) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
