"""Phones read in the organization's region, and the hints a contacts error gives (issue 18)."""

from __future__ import annotations

import pytest

from intake.contacts.file import ContactsFileError, parse_contacts_csv, parse_contacts_toml
from intake.contacts.values import zone_country

HEADER = "organization,plan,support_start,domains,name,email,phone,telegram,role,policy,region"


@pytest.mark.parametrize(
    ("zone", "country"),
    [
        ("America/Los_Angeles", "US"),
        ("Europe/Prague", "CZ"),
        ("Asia/Dubai", "AE"),
        ("Europe/Zurich", "CH"),  # zone1970.tab would say CH, DE, LI
        ("UTC", None),
        ("Etc/GMT+1", None),
        (None, None),
        ("", None),
    ],
)
def test_a_zone_has_its_country(zone: str | None, country: str | None) -> None:
    assert zone_country(zone) == country


def test_a_csv_phone_is_read_in_the_organization_region() -> None:
    text = "\n".join([
        HEADER,
        "Acme,standard,,acme.example,Al,,(415) 555-0199,,user,scalr,America/Los_Angeles",
        "Acme,,,,Bo,,415.555.0142,,user,,",  # a later row of the same organization
        "Brno,standard,,brno.example,Cy,,601 123 456,,user,scalr,Europe/Prague",
        "Nowhere,standard,,nowhere.example,Di,,020 7946 0018,,user,scalr,UTC",
    ])  # fmt: skip
    orgs = parse_contacts_csv(text + "\n", "c.csv", default_region="GB")
    phones = [c.phone for org in orgs for c in org.contacts]
    # UTC names no country: the configured default region still applies.
    assert phones == ["+14155550199", "+14155550142", "+420601123456", "+442079460018"]


def test_a_toml_phone_is_read_in_the_organization_region() -> None:
    text = """
[[organizations]]
name = "Acme"
plan = "standard"
domains = ["acme.example"]
region = "America/Los_Angeles"
[[organizations.contacts]]
name = "Al"
phone = "(415) 555-0199"
"""
    [org] = parse_contacts_toml(text, "c.toml")
    assert org.contacts[0].phone == "+14155550199"


def test_without_a_region_a_local_phone_still_needs_a_country_code() -> None:
    text = f"{HEADER}\nAcme,standard,,acme.example,Al,,(415) 555-0199,,user,scalr,\n"
    with pytest.raises(ContactsFileError, match="has no country code"):
        parse_contacts_csv(text, "c.csv")


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("Acme,standard,,\"acme.example,acme.test\",Al,al@acme.example,,,user,,",
         "domains are separated by spaces, not commas: 'a.example b.example'"),
        ("Acme,standard,,\"acme.example; acme.test\",Al,al@acme.example,,,user,,",
         "domains are separated by spaces"),
        ("Acme,standard,,acme.example,Al,\"al@acme.example, bo@acme.example\",,,user,,",
         "one address per contact"),
    ],
)  # fmt: skip
def test_contact_errors_hint_at_the_separator(row: str, says: str) -> None:
    with pytest.raises(ContactsFileError) as caught:
        parse_contacts_csv(f"{HEADER}\n{row}\n", "c.csv")
    assert says in str(caught.value) and "line 2" in str(caught.value)


def test_a_toml_domain_with_a_comma_says_domains_is_a_list() -> None:
    text = (
        '[[organizations]]\nname = "Acme"\nplan = "standard"\ndomains = ["a.example,b.example"]\n'
    )
    with pytest.raises(ContactsFileError, match=r'domains is a list: \["a.example", "b.example"\]'):
        parse_contacts_toml(text, "c.toml")
