"""Configuration: `intake.toml` (CONTRACTS section 3) read once by pydantic-settings.

Every key may also be set as `INTAKE_<SECTION>_<KEY>`, which wins over the file. Each section
is a frozen model; code downstream receives only its own section. Secrets are `SecretStr`.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from intake.errors import ConfigError

DEFAULT_CONFIG = Path("intake.toml")
ENV_PREFIX = "INTAKE_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///intake.db"


class PolicySettings(_Section):
    name: str = "circularo-saas"


class ContactsSettings(_Section):
    file: Path | None = None
    # Phone numbers written without a country code are read as this country's (ISO code).
    default_region: str | None = None


class PipelineSettings(_Section):
    follow_up_window_hours: float = Field(default=24, gt=0)
    acks_per_sender_per_hour: int = Field(default=5, ge=0)
    # All acknowledgements to unidentified senders together, per hour and process; 0: none.
    unidentified_acks_per_hour: int = Field(default=30, ge=0)
    # Endorsement requests to a nominated contact: one digest per organization and period,
    # listing at most this many (the rest are counted).
    endorsement_digest_minutes: float = Field(default=15, gt=0)
    endorsement_digest_entries: int = Field(default=20, ge=1)
    # An address that bounced hard gets no automatic mail for this long.
    suppress_after_bounce_days: float = Field(default=30, ge=0)
    templates_dir: Path | None = None  # overrides any of intake/outbox/templates/*.j2 by name
    # HMAC key of the threading tokens; empty: one is made and kept in the database.
    secret: SecretStr = SecretStr("")


class ClassifierSettings(_Section):
    rules: list[Path] = []  # a team's own rule files, added to the packaged ones


class SlaSettings(_Section):
    warn_share: float = Field(default=0.75, gt=0, lt=1)  # alert when this share of the time is used
    check_seconds: float = Field(default=60, gt=0)
    inactivity_close_days: int = Field(default=5, ge=0)  # 0: never close for inactivity
    inactivity_policies: list[str] = ["circularo-saas", "circularo-onprem"]  # SaaS 10, on-prem 9


class SmtpSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=0, le=65535)
    domains: list[str] = ["support.example.com"]
    max_message_bytes: int = Field(default=26_214_400, ge=1024)
    # A message's DATA past this many bytes is kept in a temporary file, not in memory.
    spool_threshold_bytes: int = Field(default=262_144, ge=0)
    tls_cert: Path | None = None  # PEM certificate chain: offers STARTTLS when set
    tls_key: Path | None = None
    max_connections: int = Field(default=200, ge=1)
    timeout_seconds: float = Field(default=300, gt=0)  # idle client is dropped after this
    # Our name in the banner, the EHLO answer and our headers; empty: the first of `domains`
    # (else the machine's FQDN). No software name or version is ever shown.
    hostname: str = ""
    # Concurrent sessions from one client address; beyond it: 421 and closed. 0: no cap.
    max_connections_per_client: int = Field(default=20, ge=0)


def _check_oauth2(section: ImapSettings | OutboundSmtpSettings) -> None:
    """auth = "oauth2" needs a client and a token endpoint (channels.email.oauth2)."""
    if section.auth != "oauth2":
        return
    if not section.oauth2_client_id:
        raise ValueError('oauth2_client_id: required with auth = "oauth2"')
    url = section.oauth2_token_url
    # Plain HTTP only on loopback (a local authorization server): the secrets travel in it.
    loopback = url.startswith(("http://127.0.0.1", "http://[::1]", "http://localhost"))
    if not (url.startswith("https://") or loopback):
        raise ValueError('oauth2_token_url: an https:// URL is required with auth = "oauth2"')


class ImapSettings(_Section):
    enabled: bool = False
    host: str = "imap.example.com"
    port: int = Field(default=993, ge=0, le=65535)
    ssl: bool = True
    user: str = "support@example.com"
    password: SecretStr = SecretStr("")
    folder: str = "INBOX"
    starttls: bool = False  # with ssl = false: upgrade the plain connection with STARTTLS
    # After the ticket has committed, move the message here; empty: flag it \Seen instead.
    processed_folder: str = ""
    poll_seconds: float = Field(default=30, gt=0)  # when the server has no IDLE
    idle_seconds: float = Field(default=300, gt=0)  # re-issue IDLE this often (RFC 2177: <29 min)
    ca_file: Path | None = None  # trust this CA (a private server); default: the system's
    auth: Literal["password", "oauth2"] = "password"  # "oauth2": the oauth2_* keys, no password
    oauth2_token_url: str = ""  # the provider's token endpoint (docs/mailboxes.md)
    oauth2_client_id: str = ""  # the app registration's (Microsoft) or OAuth client's (Google)
    oauth2_client_secret: SecretStr = SecretStr("")  # empty: a public client
    oauth2_refresh_token: SecretStr = SecretStr("")  # delegated access; empty: client credentials
    oauth2_scope: str = ""  # space-separated
    # XOAUTH2 (Microsoft and Google) or OAUTHBEARER (RFC 7628; Google, not Microsoft).
    oauth2_mechanism: Literal["xoauth2", "oauthbearer"] = "xoauth2"

    @model_validator(mode="after")
    def _oauth2_complete(self) -> ImapSettings:
        _check_oauth2(self)
        return self


class OutboundSmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=0, le=65535)
    # `from` is a Python keyword: the TOML key reaches this field through the alias.
    from_address: str = Field(default="support@support.example.com", alias="from")
    auth: Literal["none", "password", "oauth2"] = "none"  # the relay's login
    user: str = ""  # the login of "password" and "oauth2" (the mailbox the token is for)
    password: SecretStr = SecretStr("")
    ssl: bool = False  # implicit TLS (submissions, port 465)
    starttls: bool = False  # require STARTTLS (submission, port 587); otherwise used if offered
    ca_file: Path | None = None  # trust this CA (a private relay); default: the system's
    oauth2_token_url: str = ""  # the provider's token endpoint (docs/mailboxes.md)
    oauth2_client_id: str = ""  # the app registration's (Microsoft) or OAuth client's (Google)
    oauth2_client_secret: SecretStr = SecretStr("")  # empty: a public client
    oauth2_refresh_token: SecretStr = SecretStr("")  # delegated access; empty: client credentials
    oauth2_scope: str = ""  # space-separated
    # XOAUTH2 (Microsoft and Google) or OAUTHBEARER (RFC 7628; Google, not Microsoft).
    oauth2_mechanism: Literal["xoauth2", "oauthbearer"] = "xoauth2"

    @model_validator(mode="after")
    def _credentials_over_tls(self) -> OutboundSmtpSettings:
        _check_oauth2(self)
        if self.auth != "none" and not (self.ssl or self.starttls):
            # Credentials and tokens never cross the network in the clear.
            raise ValueError("auth: needs ssl = true or starttls = true")
        if self.auth != "none" and not self.user:
            raise ValueError(f'user: required with auth = "{self.auth}"')
        return self


class OutboundSettings(_Section):
    smtp: OutboundSmtpSettings = OutboundSmtpSettings()


class WebSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "https://support.example.com"
    callback_per_hour: int = Field(default=5, ge=1)  # form submissions per client address
    # The files of one agent's reply, together (the API takes them base64 in its JSON).
    reply_attachments_max_bytes: int = Field(default=10_485_760, ge=0)


class NotifySettings(_Section):
    emails: list[str] = []
    telegram_chat_ids: list[int] = []


class TwilioSettings(_Section):
    enabled: bool = False
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    api_base: str = "https://api.twilio.com"
    whatsapp_from: str = ""  # our WhatsApp sender, E.164 (with or without "whatsapp:")
    sms_from: str = ""  # our SMS sender, E.164
    media_limit_bytes: int = Field(default=5_242_880, ge=0)  # larger media are not stored
    # An approved WhatsApp template (Content API ContentSid, "HX..."): sent instead of an
    # agent's reply outside the 24-hour window, with {{1}} the customer, {{2}} the reference.
    whatsapp_template_sid: str = ""


class TelegramSettings(_Section):
    enabled: bool = False
    token: SecretStr = SecretStr("")
    mode: Literal["polling", "webhook"] = "polling"
    api_base: str = "https://api.telegram.org/bot"
    secret_token: SecretStr = SecretStr("")
    poll_timeout_seconds: int = Field(default=30, ge=0, le=50)  # getUpdates long polling
    max_file_bytes: int = Field(default=20_971_520, ge=0)  # larger photos/documents not stored
    max_update_bytes: int = Field(default=1_048_576, ge=1024)  # webhook request body cap


class AuthenticationSettings(_Section):
    """Is a mail's From genuine? (intake.pipeline.authenticity) A sender that fails loses any
    nominated or designated standing and the ticket is flagged `sender_unverified`."""

    # authserv-ids of the upstream servers whose Authentication-Results headers we believe
    # (only the topmost such header counts); anyone else's are ignored.
    trusted_authserv_ids: list[str] = []
    # SMTP clients (CIDRs, e.g. "192.0.2.10/32"; default none) whose mail may carry those
    # Authentication-Results and an upstream filter's X-Spam-Flag / X-Spam-Status: anyone can
    # write such headers, so in mail from any other client they are ignored (and the evidence
    # says so). Mail read by IMAP carries its provider's headers.
    trusted_relays: list[IPvAnyNetwork] = []
    verify_dkim: bool = False  # SMTP: check DKIM signatures ourselves (needs DNS)
    verify_spf: bool = False  # SMTP: check SPF of the connecting client ourselves
    # A mail with no verdict at all ("none") is treated as unverified too.
    require_authentication: bool = False


class LimitsSettings(_Section):
    """Rate limits, per intake process (see intake.ratelimit for why per process)."""

    messages_per_sender_per_hour: int = Field(default=60, ge=0)  # every channel; 0: no limit
    # Generous: a relay in front of us (a trusted upstream) delivers everything from one address.
    smtp_connections_per_client_per_minute: int = Field(default=600, ge=0)  # 0: no limit
    # The call-back form, the page and the API; webhooks are limited per sender instead.
    web_requests_per_client_per_minute: int = Field(default=600, ge=0)  # 0: no limit
    login_failures_before_delay: int = Field(default=5, ge=0)  # per account and per client
    login_delay_cap_seconds: float = Field(default=900, gt=0)  # the doubling delay stops here
    # One account guessed from many addresses: past this many failures in an hour, a delay
    # for addresses the agent has not logged in from (never a lockout).
    login_account_failures_before_delay: int = Field(default=20, ge=0)
    login_account_delay_cap_seconds: float = Field(default=60, gt=0)  # that delay's bound


class MailgunSettings(_Section):
    """Mail posted by a Mailgun route (`forward` to /webhooks/mail/mailgun/mime: raw MIME)."""

    enabled: bool = False
    signing_key: SecretStr = SecretStr("")  # HMAC key of each post's timestamp + token
    max_request_bytes: int = Field(default=41_943_040, ge=1024)  # 25 MB of mail, form-encoded


class PostmarkSettings(_Section):
    """Postmark's inbound webhook; its URL carries these credentials (basic auth)."""

    enabled: bool = False
    user: str = ""
    password: SecretStr = SecretStr("")
    max_request_bytes: int = Field(default=52_428_800, ge=1024)  # 35 MB of mail, as JSON


class SendgridSettings(_Section):
    """SendGrid Inbound Parse posting the raw MIME; its URL carries basic-auth credentials,
    and/or a Parse security policy signs each post (ECDSA, checked with `public_key`)."""

    enabled: bool = False
    user: str = ""
    password: SecretStr = SecretStr("")
    public_key: str = ""  # the policy's signature public key (base64), as SendGrid shows it
    max_request_bytes: int = Field(default=41_943_040, ge=1024)  # 30 MB of mail, form-encoded


class SesSettings(_Section):
    """Amazon SES receipt rules publishing to SNS, which posts to /webhooks/mail/ses."""

    enabled: bool = False
    topic_arns: list[str] = []  # the only topics we confirm and take mail from
    # Hosts (with an optional port) the signing certificate and SubscribeURL may come from,
    # always over https.
    cert_host_pattern: str = r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"
    encoding: Literal["base64", "utf8"] = "base64"  # the SNS action's, when it does not say
    max_request_bytes: int = Field(default=1_048_576, ge=1024)  # SNS messages are <= 256 KB


class SpamSettings(_Section):
    """An optional spam engine (intake.spam): mail over `threshold` is kept as machine mail
    (kind spam), never acknowledged; when the engine is away, intake goes on without it."""

    engine: Literal["none", "spamassassin"] = "none"
    host: str = "127.0.0.1"  # spamd's address
    port: int = Field(default=783, ge=1, le=65535)
    threshold: float = 5.0  # SpamAssassin's score at or over which mail is spam
    timeout_seconds: float = Field(default=5, gt=0)  # then the verdict is "unavailable"
    max_bytes: int = Field(default=512_000, ge=1)  # larger mail is not sent (as spamc does)


class ServeSettings(_Section):
    """`intake serve` itself (docs/deployment.md, "Workers")."""

    # Processes sharing the SMTP and web ports on this host; 0: one per CPU core.
    workers: int = Field(default=1, ge=0, le=64)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    database: DatabaseSettings = DatabaseSettings()
    policy: PolicySettings = PolicySettings()
    contacts: ContactsSettings = ContactsSettings()
    pipeline: PipelineSettings = PipelineSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    sla: SlaSettings = SlaSettings()
    smtp: SmtpSettings = SmtpSettings()
    imap: ImapSettings = ImapSettings()
    outbound: OutboundSettings = OutboundSettings()
    web: WebSettings = WebSettings()
    notify: NotifySettings = NotifySettings()
    twilio: TwilioSettings = TwilioSettings()
    telegram: TelegramSettings = TelegramSettings()
    authentication: AuthenticationSettings = AuthenticationSettings()
    limits: LimitsSettings = LimitsSettings()
    mailgun: MailgunSettings = MailgunSettings()
    postmark: PostmarkSettings = PostmarkSettings()
    sendgrid: SendgridSettings = SendgridSettings()
    ses: SesSettings = SesSettings()
    spam: SpamSettings = SpamSettings()
    serve: ServeSettings = ServeSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init carries the TOML file's tables; the environment is merged into them by
        # `load_settings`, because pydantic-settings' nested delimiter cannot express both
        # INTAKE_SMTP_MAX_MESSAGE_BYTES and INTAKE_OUTBOUND_SMTP_HOST.
        return (init_settings,)


def _env_name(path: tuple[str, ...], field_name: str, info: FieldInfo) -> str:
    key = info.alias or field_name
    return ENV_PREFIX + "_".join((*path, key)).upper()


def _env_overrides(
    model: type[BaseModel], path: tuple[str, ...], env: dict[str, str]
) -> dict[str, Any]:
    """The `INTAKE_...` variables that name a key of `model`, as a nested dict."""
    found: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested = _env_overrides(annotation, (*path, key), env)
            if nested:
                found[key] = nested
            continue
        raw = env.get(_env_name(path, name, info))
        if raw is not None:
            found[key] = _env_value(raw, info)
    return found


def _env_value(raw: str, info: FieldInfo) -> Any:
    # Lists come as JSON (`["a.example", "b.example"]`) or comma-separated; scalars as text,
    # which pydantic converts ("true", "2525").
    if getattr(info.annotation, "__origin__", None) is list:
        text = raw.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                pass
        return [item.strip() for item in text.split(",") if item.strip()]
    return raw


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("config", f"cannot read: {exc.strerror}", source=str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("(syntax)", str(exc), source=str(path)) from None


def load_settings(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Settings from `path` (default ./intake.toml if present, else built-in defaults) and
    the environment. A bad file or value raises ConfigError naming the key."""
    environ = dict(os.environ) if env is None else env
    if path is not None:
        data = _read_toml(path)
        source = str(path)
    elif DEFAULT_CONFIG.is_file():
        data = _read_toml(DEFAULT_CONFIG)
        source = str(DEFAULT_CONFIG)
    else:
        data, source = {}, "built-in defaults"
    overrides = _env_overrides(Settings, (), environ)
    data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        key = ".".join(str(part) for part in error["loc"])
        problem = error["msg"]
        if error["type"] == "value_error":  # a section's own check says "key: problem"
            field, colon, said = str(error.get("ctx", {}).get("error", "")).partition(": ")
            if colon and field.isidentifier():
                key, problem = f"{key}.{field}", said
        variable = _env_variable(overrides, error["loc"])
        if variable is not None:  # the value came from the environment: name the variable
            source = f"environment variable {variable}"
        raise ConfigError(key, problem, source=source) from None


def _env_variable(overrides: dict[str, Any], loc: tuple[int | str, ...]) -> str | None:
    """The `INTAKE_...` variable that set the key at `loc`, or None if the file did."""
    found: Any = overrides
    for depth, part in enumerate(loc):
        if not isinstance(found, dict) or part not in found:
            return None
        found = found[part]
        if not isinstance(found, dict):  # a list's item is still the variable's value
            return ENV_PREFIX + "_".join(str(p) for p in loc[: depth + 1]).upper()
    return None
