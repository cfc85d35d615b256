"""Normalizing one contact value as a person writes it: phone, email, Telegram, domain, zone.

Pure functions of their arguments. Each returns the one stored form (E.164, a lower-cased
addr-spec, an ASCII domain) or raises ValueError with a one-line message that names the
field and quotes the value, so callers can prefix a location and show it as it is.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

# Prefixes a phone number arrives with: Twilio's WhatsApp sender, RFC 3966 links.
_PHONE_PREFIXES = ("whatsapp:", "tel:")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# What may never appear in an addr-spec we store: whitespace, controls, and the characters
# that would mean someone pasted a display name or a list ("Jan <jan@x.cz>", "a@x.cz; b@x.cz").
_NOT_IN_EMAIL = re.compile(r"[\s\x00-\x1f\x7f<>(),;:\[\]\\\"]")
_TELEGRAM_ID = re.compile(r"^[1-9][0-9]{0,15}$")
# Telegram usernames: 5-32 of a-z, 0-9 and "_", starting with a letter (4 for auctioned ones).
_TELEGRAM_NAME = re.compile(r"^[a-z][a-z0-9_]{3,31}$")
_TELEGRAM_LINK = re.compile(r"^(?:https?://)?(?:www\.)?(?:t|telegram)\.me/", re.IGNORECASE)


def show(value: object, limit: int = 60) -> str:
    """A value quoted for a one-line message: repr escapes CR/LF, and long cells are cut."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def check_region(region: str) -> str:
    """A phonenumbers region code ("CZ", "gb") upper-cased, or ValueError."""
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default region {show(region)} is not a country code like 'CZ'")
    return code


def normalize_phone(raw: str, default_region: str | None = None) -> str:
    """A phone number in any notation a person writes, as E.164 ("+420601123456")."""
    text = raw.strip()
    for prefix in _PHONE_PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
    region = check_region(default_region) if default_region else None
    if text.startswith("00"):
        # "00" is the international prefix nearly everywhere; phonenumbers only reads it
        # when told a region whose prefix it is, and never without one.
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        # Without "+" and a region phonenumbers can only say "no country code"; that advice
        # helps for "601 123 456" but not for "12", which is no number anywhere.
        digits = sum(char.isdigit() for char in text)
        if exc.error_type == exc.INVALID_COUNTRY_CODE and not text.startswith("+") and digits > 5:
            raise ValueError(
                f"phone {show(raw)} has no country code (write it as +CC..., "
                "or give a default region)"
            ) from None
        raise ValueError(f"phone {show(raw)} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"phone {show(raw)} is not a phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_domain(raw: str) -> str:
    """A domain as its lower-case ASCII (IDNA) form, without a leading "@" or trailing dot."""
    text = raw.strip().removeprefix("@").removesuffix(".").lower()
    try:
        # The standard library's codec (IDNA 2003) is enough to store and compare names;
        # it maps Unicode labels to "xn--" and refuses empty or over-long labels.
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"domain {show(raw)} is not a domain name") from None
    labels = ascii_name.split(".")
    if (
        len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()  # an IP address is not a domain
        or len(ascii_name) > 253
    ):
        raise ValueError(f"domain {show(raw)} is not a domain name like 'example.com'")
    return ascii_name


def normalize_email(raw: str) -> str:
    """A lower-cased addr-spec ("jan@example.cz"), its domain in IDNA form, or ValueError."""
    text = raw.strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    local, at, domain = text.rpartition("@")
    # A quoted local part may legally hold "@" or spaces; nobody's support contact has one.
    if not at or not local or "@" in local or len(local) > 64 or _NOT_IN_EMAIL.search(text):
        hint = ""
        if text.count("@") > 1 and re.search(r"[,;\s]", text):
            hint = " (one address per contact: give each its own row or table)"
        raise ValueError(f"email {show(raw)} is not an email address{hint}")
    try:
        ascii_domain = normalize_domain(domain)
    except ValueError:
        raise ValueError(f"email {show(raw)} has no valid domain after '@'") from None
    return f"{local.lower()}@{ascii_domain}"


def normalize_telegram(raw: str | int) -> str:
    """A Telegram user id ("123456789") or a username without "@", lower-cased."""
    text = _TELEGRAM_LINK.sub("", str(raw).strip()).removeprefix("@").lower()
    if _TELEGRAM_ID.match(text) or _TELEGRAM_NAME.match(text):
        return text
    raise ValueError(
        f"telegram {show(raw)} is neither a numeric user id nor a username like '@jan_novak'"
    )


def check_zone(raw: str) -> str:
    """An IANA time zone name ("Europe/Prague"), as given, or ValueError."""
    zone = raw.strip()
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a directory of the zone database ("Europe") is not a zone.
        raise ValueError(
            f"region {show(raw)} is not a time zone (use an IANA name like 'Europe/Prague')"
        ) from None
    return zone


@functools.cache
def _zone_countries() -> dict[str, str]:
    # tzdata's zone.tab (the IANA database's own table, shipped by the `tzdata` package we
    # already depend on) gives each zone exactly one country; zone1970.tab lists several
    # for a shared zone (Europe/Zurich: CH, DE, LI), which cannot pick a phone region.
    text = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text("utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            country, _coordinates, zone, *_ = line.split("\t")
            table[zone] = country
    return table


def zone_country(zone: str | None) -> str | None:
    """The country (ISO code) of an IANA zone ("America/Los_Angeles" -> "US"), or None for a
    zone of no one country ("UTC", "Etc/GMT+1") or one phonenumbers does not know."""
    if not zone:
        return None
    country = _zone_countries().get(zone.strip())
    return country if country in phonenumbers.SUPPORTED_REGIONS else None
