"""The mailbox login keys (issue 20): [imap] auth = "oauth2" and [outbound.smtp] auth, from the
file and from INTAKE_* variables, and the refusals that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.config import load_settings
from intake.errors import ConfigError

TOKEN_URL = "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"


def test_defaults_keep_todays_logins() -> None:
    settings = load_settings(None, env={})
    assert settings.imap.auth == "password" and settings.outbound.smtp.auth == "none"
    assert not settings.outbound.smtp.ssl and not settings.outbound.smtp.starttls


def test_oauth2_keys_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "intake.toml"
    config.write_text(
        f"""
[imap]
auth = "oauth2"
oauth2_token_url = "{TOKEN_URL}"
oauth2_client_id = "11111111-2222-3333-4444-555555555555"
oauth2_client_secret = "app-secret"
oauth2_refresh_token = ""
oauth2_scope = "https://outlook.office365.com/.default"

[outbound.smtp]
host = "smtp.office365.com"
port = 587
starttls = true
auth = "oauth2"
user = "support@contoso.example"
oauth2_token_url = "{TOKEN_URL}"
oauth2_client_id = "11111111-2222-3333-4444-555555555555"
oauth2_refresh_token = "delegated-refresh"
oauth2_mechanism = "xoauth2"
"""
    )
    settings = load_settings(config, env={})
    assert settings.imap.auth == "oauth2"
    assert settings.imap.oauth2_client_secret.get_secret_value() == "app-secret"
    assert settings.imap.oauth2_refresh_token.get_secret_value() == ""
    smtp = settings.outbound.smtp
    assert (smtp.auth, smtp.starttls, smtp.user) == ("oauth2", True, "support@contoso.example")
    assert smtp.oauth2_refresh_token.get_secret_value() == "delegated-refresh"


def test_every_key_from_the_environment() -> None:
    env = {
        "INTAKE_IMAP_AUTH": "oauth2",
        "INTAKE_IMAP_OAUTH2_TOKEN_URL": "https://oauth2.googleapis.com/token",
        "INTAKE_IMAP_OAUTH2_CLIENT_ID": "web-client.apps.googleusercontent.com",
        "INTAKE_IMAP_OAUTH2_CLIENT_SECRET": "g-secret",
        "INTAKE_IMAP_OAUTH2_REFRESH_TOKEN": "1//refresh",
        "INTAKE_IMAP_OAUTH2_SCOPE": "https://mail.google.com/",
        "INTAKE_IMAP_OAUTH2_MECHANISM": "oauthbearer",
        "INTAKE_OUTBOUND_SMTP_AUTH": "password",
        "INTAKE_OUTBOUND_SMTP_SSL": "true",
        "INTAKE_OUTBOUND_SMTP_USER": "support@example.com",
        "INTAKE_OUTBOUND_SMTP_PASSWORD": "app-password",
        "INTAKE_OUTBOUND_SMTP_CA_FILE": "/etc/intake/ca.pem",
    }
    settings = load_settings(None, env=env)
    imap = settings.imap
    assert (imap.auth, imap.oauth2_mechanism, imap.oauth2_scope) == (
        "oauth2",
        "oauthbearer",
        "https://mail.google.com/",
    )
    assert imap.oauth2_refresh_token.get_secret_value() == "1//refresh"
    smtp = settings.outbound.smtp
    assert (smtp.auth, smtp.ssl, smtp.user) == ("password", True, "support@example.com")
    assert smtp.password.get_secret_value() == "app-password"
    assert smtp.ca_file == Path("/etc/intake/ca.pem")


@pytest.mark.parametrize(
    ("env", "key", "problem"),
    [
        ({"INTAKE_IMAP_AUTH": "oauth2"}, "imap.oauth2_client_id", "required"),
        (
            {"INTAKE_IMAP_AUTH": "oauth2", "INTAKE_IMAP_OAUTH2_CLIENT_ID": "x",
             "INTAKE_IMAP_OAUTH2_TOKEN_URL": "http://login.example/token"},
            "imap.oauth2_token_url",
            "https://",
        ),
        ({"INTAKE_IMAP_AUTH": "kerberos"}, "imap.auth", "'password' or 'oauth2'"),
        (
            {"INTAKE_OUTBOUND_SMTP_AUTH": "password", "INTAKE_OUTBOUND_SMTP_USER": "a@b.example"},
            "outbound.smtp.auth",
            "ssl = true or starttls = true",
        ),
        (
            {"INTAKE_OUTBOUND_SMTP_AUTH": "password", "INTAKE_OUTBOUND_SMTP_STARTTLS": "true"},
            "outbound.smtp.user",
            "required",
        ),
    ],
)  # fmt: skip
def test_incomplete_logins_are_refused_naming_the_key(
    env: dict[str, str], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(None, env=env)
    assert refused.value.key == key
    assert problem in refused.value.problem
