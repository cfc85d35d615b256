"""`intake.toml` and its `INTAKE_<SECTION>_<KEY>` overrides (CONTRACTS section 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.config import load_settings
from intake.errors import ConfigError

FULL = """
[database]
url = "postgresql+asyncpg://intake@127.0.0.1/test"
[policy]
name = "scalr"
[smtp]
port = 2526
domains = ["help.example.org"]
[outbound.smtp]
host = "mail.example.org"
port = 587
from = "help@example.org"
[imap]
password = "hunter2"
[telegram]
mode = "webhook"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "intake.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_built_in_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.database.url == "sqlite+aiosqlite:///intake.db"
    assert settings.smtp.port == 2525 and settings.smtp.max_message_bytes == 26_214_400
    assert settings.outbound.smtp.from_address == "support@support.example.com"
    assert settings.web.port == 8080 and not settings.imap.enabled


def test_file_values(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), env={})
    assert settings.policy.name == "scalr"
    assert settings.smtp.domains == ["help.example.org"]
    assert settings.outbound.smtp.host == "mail.example.org"
    assert settings.outbound.smtp.from_address == "help@example.org"
    assert settings.telegram.mode == "webhook"


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    env = {
        "INTAKE_DATABASE_URL": "sqlite+aiosqlite:///other.db",
        "INTAKE_SMTP_MAX_MESSAGE_BYTES": "1048576",
        "INTAKE_SMTP_DOMAINS": '["a.example", "b.example"]',
        "INTAKE_OUTBOUND_SMTP_HOST": "relay.example.org",
        "INTAKE_OUTBOUND_SMTP_FROM": "bot@example.org",
        "INTAKE_NOTIFY_EMAILS": "oncall@example.org, boss@example.org",
        "INTAKE_TWILIO_ENABLED": "true",
        "INTAKE_WEB_PUBLIC_URL": "https://help.example.org",
        "UNRELATED": "x",
    }
    settings = load_settings(write(tmp_path, FULL), env=env)
    assert settings.database.url == "sqlite+aiosqlite:///other.db"
    assert settings.smtp.max_message_bytes == 1_048_576
    assert settings.smtp.port == 2526  # untouched keys keep the file's value
    assert settings.smtp.domains == ["a.example", "b.example"]
    assert settings.outbound.smtp.host == "relay.example.org"
    assert settings.outbound.smtp.port == 587
    assert settings.outbound.smtp.from_address == "bot@example.org"
    assert settings.notify.emails == ["oncall@example.org", "boss@example.org"]
    assert settings.twilio.enabled is True
    assert settings.web.public_url == "https://help.example.org"


def test_secrets_never_show(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, FULL), env={"INTAKE_TELEGRAM_TOKEN": "123:abc"})
    assert "hunter2" not in repr(settings) and "123:abc" not in repr(settings)
    assert settings.imap.password.get_secret_value() == "hunter2"
    assert settings.telegram.token.get_secret_value() == "123:abc"


@pytest.mark.parametrize(
    ("text", "env", "says"),
    [
        ("[smtp]\nport = 99999\n", {}, "smtp.port: Input should be less than or equal to 65535"),
        ("[smtp]\nprot = 25\n", {}, "smtp.prot: Extra inputs are not permitted"),
        (
            "",
            {"INTAKE_SMTP_PORT": "twenty-five"},
            "environment variable INTAKE_SMTP_PORT: smtp.port: Input should be a valid integer",
        ),
        ('[telegram]\nmode = "push"\n', {}, "telegram.mode: Input should be 'polling'"),
        ("[smtp\n", {}, "(syntax)"),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, text: str, env: dict[str, str], says: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env)
    # A value from the environment names its variable instead of the file.
    assert str(caught.value).startswith("environment variable" if env else str(path))
    assert says in str(caught.value)


def test_a_bad_secret_value_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "[imap]\npassword = 12345678\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert "12345678" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"INTAKE_WEB_PORT": "abc"}, "environment variable INTAKE_WEB_PORT: web.port:"),
        ({"INTAKE_OUTBOUND_SMTP_PORT": "x"}, "environment variable INTAKE_OUTBOUND_SMTP_PORT:"),
        ({"INTAKE_NOTIFY_TELEGRAM_CHAT_IDS": "a,b"}, "INTAKE_NOTIFY_TELEGRAM_CHAT_IDS"),
        ({"INTAKE_SMTP_ENABLED": "perhaps"}, "environment variable INTAKE_SMTP_ENABLED"),
    ],
)
def test_a_bad_environment_variable_is_named(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, FULL), env=env)
    assert says in str(caught.value) and str(write(tmp_path, FULL)) not in str(caught.value)


def test_a_bad_file_value_still_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[web]\nport = 'abc'\n")
    with pytest.raises(ConfigError, match=r"intake.toml: web.port:"):
        load_settings(path, env={"INTAKE_SMTP_PORT": "2600"})
