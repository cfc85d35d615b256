"""The contacts file (CONTRACTS section 5): CSV and TOML, normalization, one-line refusals."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from intake.contacts.file import (
    ContactRecord,
    ContactRole,
    ContactsFileError,
    OrganizationRecord,
    normalize_email,
    normalize_phone,
    parse_contacts_csv,
    parse_contacts_toml,
    read_contacts_file,
)
from intake.errors import ConfigError

DATA = Path(__file__).parents[2] / "data" / "contacts"
HEADER = "organization,plan,support_start,domains,name,email,phone,telegram,role,policy,region"
SHORT_HEADER = "organization,plan,support_start,domains,name,email,phone,telegram,role"
ACME = "Acme,standard,,acme.example"


def csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


def refusal_csv(text: str, **kwargs: str) -> ContactsFileError:
    with pytest.raises(ContactsFileError) as caught:
        parse_contacts_csv(text, "contacts.csv", **kwargs)
    assert "\n" not in str(caught.value)
    return caught.value


def refusal_toml(text: str) -> ContactsFileError:
    with pytest.raises(ContactsFileError) as caught:
        parse_contacts_toml(text, "contacts.toml")
    assert "\n" not in str(caught.value)
    return caught.value


def without_lines(orgs: tuple[OrganizationRecord, ...]) -> list[OrganizationRecord]:
    return [
        replace(org, line=0, contacts=tuple(replace(c, line=0) for c in org.contacts))
        for org in orgs
    ]


# --- the sample files -------------------------------------------------------------------


def test_the_csv_and_toml_samples_hold_the_same_records() -> None:
    from_csv = read_contacts_file(DATA / "contacts.csv")
    from_toml = read_contacts_file(DATA / "contacts.toml")
    assert without_lines(from_csv) == without_lines(from_toml)
    assert [org.policy for org in from_csv] == [
        "circularo-saas",
        "scalr",
        "circularo-onprem",
        "scoro",
        "four-tier",
        "circularo-saas",
    ]


def test_the_csv_sample_in_detail() -> None:
    bakery, northwind, gulf, brightside, harbour, kestrel = read_contacts_file(
        DATA / "contacts.csv"
    )
    assert bakery == OrganizationRecord(
        name="Pekárna Dvořák s.r.o.",
        plan="plus",
        support_start=None,
        domains=("pekarna-dvorak.example", "xn--pekrna-dvok-m7ah39n.example"),
        policy="circularo-saas",
        region="Europe/Prague",
        contacts=(
            ContactRecord(
                name="Dvořák, Jan",  # a quoted comma
                email="jan.dvorak@pekarna-dvorak.example",
                phone="+420601123456",
                telegram="jandvorak",
                role=ContactRole.NOMINATED,
                line=2,
            ),
            ContactRecord(
                "Eva Malá",
                "eva.mala@pekarna-dvorak.example",
                "+420737555010",
                None,
                ContactRole.USER,
                3,
            ),
            ContactRecord("Petr Novotný", None, "+420222333444", None, ContactRole.USER, 4),
        ),
        line=2,
    )
    assert [c.role for c in northwind.contacts].count(ContactRole.DESIGNATED) == 2
    assert northwind.contacts[1].telegram == "512345678"
    assert gulf.support_start == date(2024, 3, 1) and gulf.region == "Asia/Dubai"
    assert brightside.contacts[1].telegram == "mia_lewis"
    assert harbour.region is None and harbour.contacts[1].phone == "+14155550132"
    assert kestrel.contacts == () and kestrel.line == 14


def test_toml_records_carry_their_header_lines() -> None:
    orgs = read_contacts_file(DATA / "contacts.toml")
    text = (DATA / "contacts.toml").read_text(encoding="utf-8").split("\n")
    assert text[orgs[0].line - 1] == "[[organizations]]"
    assert all(text[c.line - 1] == "[[organizations.contacts]]" for c in orgs[0].contacts)
    assert orgs[1].contacts[0].line == orgs[1].line + 7


# --- reading the file -------------------------------------------------------------------


def test_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "contacts.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(ContactsFileError, match=r"contacts\.xlsx: file: .*\.csv or \.toml"):
        read_contacts_file(path)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ContactsFileError, match="cannot read: No such file") as caught:
        read_contacts_file(tmp_path / "none.csv")
    assert caught.value.line == 0


def test_a_file_not_in_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes(csv(f"{ACME},Jiří Černý,jiri@acme.example,,,user").encode("cp1250"))
    with pytest.raises(ContactsFileError, match=r"contacts\.csv: line 2: not UTF-8") as caught:
        read_contacts_file(path)
    assert caught.value.line == 2


def test_the_suffix_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "CONTACTS.CSV"
    path.write_text(csv(f"{ACME},,a@acme.example"), encoding="utf-8")
    assert read_contacts_file(path)[0].contacts[0].email == "a@acme.example"


def test_the_error_is_a_config_error_with_its_line() -> None:
    error = refusal_csv(csv(f"{ACME},,a@acme.example,12"))
    assert isinstance(error, ConfigError)
    assert error.line == 2 and error.source == "contacts.csv"
    assert str(error) == "contacts.csv: line 2: phone '12' is not a phone number"


def test_a_bad_default_region_is_the_callers_error() -> None:
    with pytest.raises(ConfigError, match=r"default_region: .*'XX'") as caught:
        parse_contacts_csv(csv(), "contacts.csv", default_region="XX")
    assert not isinstance(caught.value, ContactsFileError)


# --- CSV layout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        HEADER,
        SHORT_HEADER,
        SHORT_HEADER + ",policy",
        " Organization , PLAN,support_start,domains,name,email,phone,telegram,role",
        "email,organization,plan,support_start,domains,name,phone,telegram,role",
    ],
)
def test_headers_accepted(header: str) -> None:
    columns = [name.strip().lower() for name in header.split(",")]
    cells = {"organization": "Acme", "plan": "standard", "email": "a@acme.example"}
    row = ",".join(cells.get(name, "") for name in columns)
    (org,) = parse_contacts_csv(csv(row, header=header), "contacts.csv")
    assert (org.name, org.plan, org.contacts[0].email) == ("Acme", "standard", "a@acme.example")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (HEADER + ",notes", "line 1: header: unknown column 'notes'"),
        (SHORT_HEADER.replace(",phone", ""), "line 1: header: missing column 'phone'"),
        (
            SHORT_HEADER.replace("telegram", "whatsapp"),
            "unknown column 'whatsapp'; missing column 'telegram'",
        ),
        (SHORT_HEADER + ",email", "line 1: header: column 'email' appears twice"),
        ("name;email;phone", "unknown column 'name;email;phone'"),
    ],
)
def test_headers_refused(header: str, message: str) -> None:
    assert message in str(refusal_csv(csv(header=header)))


def test_an_empty_csv_has_no_header() -> None:
    assert refusal_csv("\n\n").line == 1


def test_a_header_alone_is_no_organizations() -> None:
    assert parse_contacts_csv(csv(), "contacts.csv") == ()


def test_bom_crlf_blank_rows_and_short_rows() -> None:
    text = "\ufeff" + csv(
        f"{ACME},Ann,ann@acme.example",  # a spreadsheet dropped the trailing empty cells
        ",,,,,,,,,,",
        "",
        f"{ACME},Bob,bob@acme.example,,,designated,,",
        header=SHORT_HEADER,
    ).replace("\n", "\r\n")
    (org,) = parse_contacts_csv(text, "contacts.csv")
    assert [(c.name, c.role, c.line) for c in org.contacts] == [
        ("Ann", ContactRole.USER, 2),
        ("Bob", ContactRole.DESIGNATED, 5),
    ]


def test_a_quoted_newline_keeps_physical_line_numbers() -> None:
    # A cell of nothing but a line break is empty; the row after it is on line 4.
    text = csv(f'{ACME},Ann,ann@acme.example,"\r\n"', f"{ACME},,,12")
    assert refusal_csv(text).line == 4


def test_quoted_commas_and_quotes() -> None:
    text = csv('"Acme, Inc.",standard,,acme.example,"Novák, ""Honza"" Jan",honza@acme.example')
    (org,) = parse_contacts_csv(text, "contacts.csv")
    assert org.name == "Acme, Inc." and org.contacts[0].name == 'Novák, "Honza" Jan'


def test_rows_of_one_organization_merge_and_inherit() -> None:
    text = csv(
        "Acme,,,,Ann,ann@acme.example",
        "ACME,standard,2024-05-01,acme.example acme.example,Bob,bob@acme.example",
        "Acme,standard,,,Cy,cy@acme.example,,,,scalr,Europe/Berlin",
        "Other,premium,,,,,,,,,",
        "acme,,2024-05-01,ACME.example,Dee,dee@acme.example",
    )
    acme, other = parse_contacts_csv(text, "contacts.csv")
    assert (acme.name, acme.line, acme.plan) == ("Acme", 2, "standard")
    assert acme.support_start == date(2024, 5, 1) and acme.domains == ("acme.example",)
    assert (acme.policy, acme.region) == ("scalr", "Europe/Berlin")
    assert [c.name for c in acme.contacts] == ["Ann", "Bob", "Cy", "Dee"]
    assert other.contacts == () and other.line == 5


def test_domains_in_another_order_agree() -> None:
    text = csv(
        "Acme,standard,,a.example b.example,Ann,ann@a.example",
        "Acme,,,b.example a.example,Bob,bob@a.example",
    )
    assert parse_contacts_csv(text, "contacts.csv")[0].domains == ("a.example", "b.example")


def test_an_identical_repeated_contact_is_kept_once() -> None:
    row = f"{ACME},Ann,Ann@Acme.example,+420 601 123 456,@ann_acme,Nominated"
    again = "ACME,,,,Ann,ann@acme.example,00420601123456,https://t.me/Ann_Acme,nominated"
    text = csv(row, again, row)
    (org,) = parse_contacts_csv(text, "contacts.csv")
    assert len(org.contacts) == 1 and org.contacts[0].line == 2


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        # organization fields
        ([",standard,,,Ann,ann@a.example"], "line 2: the organization has no name"),
        (["Acme,,,,Ann,ann@a.example"], "line 2: organization 'Acme' has no plan"),
        (
            [
                "Acme,,,,Ann,ann@a.example",
                "Beta,plus,,,Bob,bob@b.example",
                "Acme,,,,Cy,cy@a.example",
            ],
            "line 2: organization 'Acme' has no plan",
        ),
        (
            [f"{ACME},Ann,ann@a.example", "Acme,plus,,,Bob,bob@a.example"],
            "line 3: plan 'plus' differs from 'standard' given for 'Acme' on line 2",
        ),
        (
            [
                f"{ACME},Ann,ann@a.example",
                "Acme,,2024-01-01,,Bob,bob@a.example",
                "Acme,,2024-01-02",
            ],
            "line 4: support_start '2024-01-02' differs from '2024-01-01' "
            "given for 'Acme' on line 3",
        ),
        (
            [f"{ACME},Ann,ann@a.example", "Acme,,,acme.example b.example,Bob,bob@a.example"],
            "line 3: domains 'acme.example b.example' differs from 'acme.example'",
        ),
        (
            [f"{ACME},,,,,,scalr", "Acme,,,,,,,,,scoro"],
            "line 3: policy 'scoro' differs from 'scalr' given for 'Acme' on line 2",
        ),
        (
            [f"{ACME},,,,,,,Europe/Prague", "Acme,,,,,,,,,,Europe/London"],
            "line 3: region 'Europe/London' differs from 'Europe/Prague'",
        ),
        (["Acme,standard,2024-13-01"], "line 2: support_start '2024-13-01' is not a real date"),
        (["Acme,standard,1.3.2024"], "line 2: support_start '1.3.2024' is not a date like"),
        (["Acme,standard,20240301"], "line 2: support_start '20240301' is not a date like"),
        (["Acme,standard,,localhost"], "line 2: domain 'localhost' is not a domain name"),
        (["Acme,standard,,acme.example;b.example"], "domain 'acme.example;b.example' is not"),
        (["Acme,standard,,-acme.example"], "domain '-acme.example' is not a domain name"),
        (["Acme,standard,,10.0.0.1"], "domain '10.0.0.1' is not a domain name"),
        (["Acme,standard,,*.acme.example"], "domain '*.acme.example' is not a domain name"),
        (["Acme,standard,,acme..example"], "domain 'acme..example' is not a domain name"),
        ([f"{ACME},,,,,,,Mars/Olympus"], "line 2: region 'Mars/Olympus' is not a time zone"),
        ([f"{ACME},,,,,,,Europe"], "line 2: region 'Europe' is not a time zone"),
        ([f"{ACME},,,,,,,CET+1"], "line 2: region 'CET+1' is not a time zone"),
        # a plan must belong to the preset the organization names
        (
            ["Acme,plus,,,,,,,,scalr"],
            "line 2: plan 'plus' is not a plan of scalr (standard, premium)",
        ),
        (["Acme,premium,,,,,,,,scoro"], "line 2: plan 'premium' is not a plan of scoro (standard)"),
        (["Acme,gold,,,,,,,,four-tier"], "plan 'gold' is not a plan of four-tier (standard)"),
        (["Acme,plus,,,,,,,,", "Acme,,,,,,,,,scalr"], "line 3: plan 'plus' is not a plan of scalr"),
        # contacts
        ([f"{ACME},Ann"], "line 2: contact 'Ann' needs an email, phone or telegram"),
        ([f"{ACME},,,,,nominated"], "line 2: role is given but the row names no contact"),
        (
            [f"{ACME},Ann,ann@a.example,,,boss"],
            "role 'boss' is not one of nominated, designated, user",
        ),
        ([f"{ACME},Ann,ann.example"], "line 2: email 'ann.example' is not an email address"),
        ([f"{ACME},Ann,ann @a.example"], "line 2: email 'ann @a.example' is not an email"),
        ([f'{ACME},Ann,"ann@a.example\r\nBcc: x@y.example"'], r"email 'ann@a.example\r\nBcc: x"),
        ([f"{ACME},Ann,Ann <ann@a.example>"], "email 'Ann <ann@a.example>' is not an email"),
        ([f"{ACME},Ann,ann@a.example;bob@a.example"], "is not an email address"),
        ([f"{ACME},Ann,ann@localhost"], "email 'ann@localhost' has no valid domain after '@'"),
        ([f"{ACME},Ann,ann@"], "line 2: email 'ann@' has no valid domain after '@'"),
        ([f"{ACME},Ann,@a.example"], "line 2: email '@a.example' is not an email address"),
        ([f"{ACME},Ann,ann@@a.example"], "line 2: email 'ann@@a.example' is not an email"),
        ([f"{ACME},Ann,,12"], "line 2: phone '12' is not a phone number"),
        ([f"{ACME},Ann,,+420 12345"], "line 2: phone '+420 12345' is not a phone number"),
        ([f"{ACME},Ann,,601 123 456"], "phone '601 123 456' has no country code"),
        ([f"{ACME},Ann,,,ann"], "line 2: telegram 'ann' is neither a numeric user id"),
        ([f"{ACME},Ann,,,@ann-acme"], "line 2: telegram '@ann-acme' is neither"),
        ([f"{ACME},Ann,,,0123"], "line 2: telegram '0123' is neither"),
        # the same address, phone or Telegram on two different contacts
        (
            [f"{ACME},Ann,ann@a.example", f"{ACME},Ann B.,ANN@a.example"],
            "line 3: email 'ann@a.example' is already on line 2, with other details",
        ),
        (
            [f"{ACME},Ann,,+420601123456", "Beta,plus,,,Bob,,00420 601 123 456"],
            "line 3: phone '+420601123456' is already on line 2, with other details",
        ),
        (
            [f"{ACME},Ann,,,@Ann_A", "Acme,,,,Ann,ann@a.example,,ann_a"],
            "line 3: telegram 'ann_a' is already on line 2, with other details",
        ),
        (
            [f"{ACME},Ann,ann@a.example", f"{ACME},Ann,ann@a.example,,,designated"],
            "line 3: email 'ann@a.example' is already on line 2",
        ),
        (
            [f"{ACME},Ann,ann@a.example", "Beta,plus,,,Ann,ann@a.example"],
            "line 3: email 'ann@a.example' is already on line 2",
        ),
        # cells
        (['"Acme\nHoldings",standard'], r"line 2: organization 'Acme\nHoldings' holds a line"),
        ([f'{ACME},"Ann\x07",ann@a.example'], r"line 2: name 'Ann\x07' holds a line break or"),
        ([f"{ACME},Ann,ann@a.example,,,,,,extra"], "line 2: the row has 12 cells but the header"),
        (['"Acme,standard'], "line 2: organization 'Acme,standard' has no plan"),
    ],
)
def test_csv_refusals(rows: list[str], message: str) -> None:
    assert message in str(refusal_csv(csv(*rows)))


def test_a_cell_over_the_csv_modules_limit_is_refused() -> None:
    error = refusal_csv(csv(f"{ACME},Ann,ann@a.example", f'{ACME},"{"x" * 200_000}"'))
    assert (error.line, error.problem) == (
        3,
        "not valid CSV: field larger than field limit (131072)",
    )


def test_the_first_bad_row_is_the_one_named() -> None:
    error = refusal_csv(csv(f"{ACME},Ann,nobody", f"{ACME},Bob,,12"))
    assert error.line == 2


def test_a_long_bad_value_is_cut_in_the_message() -> None:
    error = refusal_csv(csv(f"{ACME},Ann,{'x' * 500}"))
    assert len(str(error)) < 120 and "...'" in str(error)


def test_a_policy_by_path_is_not_loaded_here() -> None:
    text = csv("Acme,gold,,,,,,,,policies/our-own.toml", "Beta,gold,,,,,,,,SCALR-premium")
    acme, beta = parse_contacts_csv(text, "contacts.csv")
    assert (acme.policy, acme.plan, beta.policy) == (
        "policies/our-own.toml",
        "gold",
        "SCALR-premium",
    )


def test_a_preset_name_in_capitals_is_the_preset() -> None:
    (org,) = parse_contacts_csv(csv("Acme,premium,,,,,,,,Scalr"), "contacts.csv")
    assert org.policy == "scalr"


def test_an_organization_without_policy_takes_any_plan() -> None:
    (org,) = parse_contacts_csv(csv("Acme,gold"), "contacts.csv")
    assert (org.plan, org.policy, org.domains, org.region) == ("gold", None, (), None)


# --- value normalization ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+420 601 123 456", None, "+420601123456"),
        ("+420601123456", None, "+420601123456"),
        ("00420 601-123-456", None, "+420601123456"),
        ("00420 601-123-456", "CZ", "+420601123456"),
        ("601 123 456", "CZ", "+420601123456"),
        ("(601) 123 456", "CZ", "+420601123456"),
        ("601123456", "cz", "+420601123456"),
        ("whatsapp:+420601123456", None, "+420601123456"),
        ("WhatsApp:+420 601 123 456", "GB", "+420601123456"),
        ("tel:+420-601-123-456", None, "+420601123456"),
        ("+44 20 7946 0018", None, "+442079460018"),
        ("+44 (0)20 7946 0018", None, "+442079460018"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("07911 123456", "GB", "+447911123456"),
        ("0044 7911 123456", "US", "+447911123456"),
        ("+1 (415) 555-0132", None, "+14155550132"),
        ("(415) 555-0132", "US", "+14155550132"),
        ("415.555.0132", "US", "+14155550132"),
        ("1-415-555-0132", "US", "+14155550132"),
        ("  +1 415 555 0132  ", "CZ", "+14155550132"),
    ],
)
def test_phone_notations(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "message"),
    [
        ("12", None, "phone '12' is not a phone number"),
        ("12", "CZ", "phone '12' is not a phone number"),
        ("601 123 456", None, "phone '601 123 456' has no country code"),
        ("(415) 555-0132", None, "has no country code"),
        ("+420 12345", None, "is not a phone number"),
        ("+44 7700 900123", None, "is not a phone number"),  # Ofcom's range for fiction
        ("call me", "CZ", "phone 'call me' is not a phone number"),
        ("+999 123 456 789", None, "is not a phone number"),
        ("601 123 456", "XX", "default region 'XX' is not a country code"),
    ],
)
def test_phone_refusals(raw: str, region: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("+", r"\+")):
        normalize_phone(raw, region)


def test_default_region_reaches_csv_phones() -> None:
    text = csv(f"{ACME},Ann,,601 123 456", f"{ACME},Bob,,+44 20 7946 0018")
    (org,) = parse_contacts_csv(text, "contacts.csv", default_region="CZ")
    assert [c.phone for c in org.contacts] == ["+420601123456", "+442079460018"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jan.Novak@Example.CZ", "jan.novak@example.cz"),
        ("  jan@example.cz ", "jan@example.cz"),
        ("mailto:Jan@Example.cz", "jan@example.cz"),
        ("jan+support@mail.example.cz", "jan+support@mail.example.cz"),
        ("jan@pekárna.example", "jan@xn--pekrna-rta.example"),
        ("o'brien@example.ie", "o'brien@example.ie"),
    ],
)
def test_emails(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("123456789", "123456789"),
        ("@Jan_Novak", "jan_novak"),
        ("jan_novak", "jan_novak"),
        ("https://t.me/Jan_Novak", "jan_novak"),
        ("t.me/jan_novak", "jan_novak"),
    ],
)
def test_telegram_ids_and_usernames(cell: str, expected: str) -> None:
    (org,) = parse_contacts_csv(csv(f"{ACME},Jan,,,{cell}"), "contacts.csv")
    assert org.contacts[0].telegram == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("acme.example", ("acme.example",)),
        ("@Acme.Example.", ("acme.example",)),
        ("acme.example  support.acme.example", ("acme.example", "support.acme.example")),
        ("Bücher.example", ("xn--bcher-kva.example",)),
        ("xn--bcher-kva.example bücher.example", ("xn--bcher-kva.example",)),
    ],
)
def test_domains(cell: str, expected: tuple[str, ...]) -> None:
    (org,) = parse_contacts_csv(csv(f"Acme,standard,,{cell}"), "contacts.csv")
    assert org.domains == expected


# --- TOML -------------------------------------------------------------------------------

ORG = '[[organizations]]\nname = "Acme"\nplan = "standard"\n'


def test_an_empty_toml_file_has_no_organizations() -> None:
    assert parse_contacts_toml("# nothing yet\n", "contacts.toml") == ()


def test_toml_types() -> None:
    text = (
        "\ufeff" + ORG + "support_start = 2024-03-01\ndomains = 'acme.example b.example'\n"
        "[[organizations.contacts]]\ntelegram = 123456789\nrole = 'DESIGNATED'\n"
        "[[organizations.contacts]]\nemail = 'ann@acme.example'\n"
    )
    (org,) = parse_contacts_toml(text.replace("\n", "\r\n"), "contacts.toml")
    assert org.support_start == date(2024, 3, 1)
    assert org.domains == ("acme.example", "b.example")
    assert org.contacts == (
        ContactRecord("", None, None, "123456789", ContactRole.DESIGNATED, 6),
        ContactRecord("", "ann@acme.example", None, None, ContactRole.USER, 9),
    )


def test_an_identical_repeated_toml_contact_is_kept_once() -> None:
    contact = "[[organizations.contacts]]\nemail = 'ann@acme.example'\n"
    (org,) = parse_contacts_toml(ORG + contact + contact, "contacts.toml")
    assert len(org.contacts) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("organisations = []\n", "contacts.toml: top level: unknown key 'organisations'"),
        ("[organizations]\nname = 'Acme'\n", "top level: organizations must be [[organizations]]"),
        (ORG + "tier = 'gold'\n", "line 4: unknown key 'tier' in an organization"),
        (ORG + "[[organizations.contacts]]\nmail = 'a@b.example'\n", "line 5: unknown key 'mail'"),
        ("[[organizations]]\nplan = 'standard'\n", "line 1: the organization has no name"),
        ("[[organizations]]\nname = 7\n", "line 2: name must be text, not a number"),
        ('[[organizations]]\nname = "Acme"\n', "line 1: organization 'Acme' has no plan"),
        (ORG + ORG.replace("Acme", "ACME"), "line 5: organization 'ACME' is already at line 1"),
        (ORG + "plan = 'plus'\n", "line 4: not valid TOML: Cannot overwrite a value (column"),
        (ORG + "policy = 'scalr'\nplan2 = 1\n", "line 5: unknown key 'plan2'"),
        (
            '[[organizations]]\nname = "Acme"\npolicy = "scoro"\n\nplan = "plus"\n',
            "line 5: plan 'plus' is not a plan of scoro (standard)",
        ),
        (ORG + "support_start = 2024-03-01T09:00:00\n", "line 4: support_start '2024-03-01T09"),
        (
            ORG + "support_start = 2024\n",
            "line 4: support_start must be text or a date, not a number",
        ),
        (ORG + "domains = ['acme.example', 5]\n", "line 4: domains must be a list of text"),
        (ORG + "domains = ['acme']\n", "line 4: domain 'acme' is not a domain name"),
        (ORG + "region = 'Europe/Praha'\n", "line 4: region 'Europe/Praha' is not a time zone"),
        (ORG + "plan = true\n", "not valid TOML"),
        (
            "[[organizations]]\nname = 'A'\nplan = true\n",
            "line 3: plan must be text, not true/false",
        ),
        (ORG + "contacts = 'ann@acme.example'\n", "line 4: contacts must be [[organizations.con"),
        (ORG + "[organizations.contacts]\nemail = 'a@b.example'\n", "line 1: contacts must be"),
        (
            ORG + "[[organizations.contacts]]\nname = 'Ann'\n",
            "line 5: contact 'Ann' needs an email",
        ),
        (ORG + "[[organizations.contacts]]\n", "line 4: a contact needs an email, phone or tele"),
        (
            ORG + "[[organizations.contacts]]\ntelegram = true\n",
            "line 5: telegram must be text or a number, not true/false",
        ),
        (ORG + "[[organizations.contacts]]\ntelegram = -5\n", "line 5: telegram -5 is neither"),
        (ORG + "[[organizations.contacts]]\n\n\nphone = '12'\n", "line 7: phone '12' is not a"),
        (
            ORG + "[[organizations.contacts]]\nemail = 'a@acme.example'\n"
            "[[organizations.contacts]]\nemail = 'A@acme.example'\nname = 'A'\n",
            "line 7: email 'a@acme.example' is already on line 4, with other details",
        ),
        ("[[organizations]]\nname = 'Acme'\nplan =\n", "line 3: not valid TOML: Invalid value"),
    ],
)
def test_toml_refusals(text: str, message: str) -> None:
    assert message in str(refusal_toml(text))


def test_inline_tables_parse_and_name_their_place_without_a_line() -> None:
    text = (
        "organizations = [\n"
        "  {name = 'Acme', plan = 'standard', contacts = [{email = 'ann@acme.example'}]},\n"
        "  {name = 'Beta', plan = 'plus', contacts = [{phone = '12'}]},\n"
        "]\n"
    )
    error = refusal_toml(text)
    assert error.line == 0
    assert str(error) == (
        "contacts.toml: organization 2, contact 1: phone '12' is not a phone number"
    )
    (org,) = parse_contacts_toml(text.split("\n  {name = 'Beta'")[0] + "]\n", "contacts.toml")
    assert org.line == 0 and org.contacts[0].line == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("organizations = ['Acme']\n", "organization 1: an organization must be a table"),
        (ORG + "contacts = [1]\n", "organization 1, contact 1: a contact must be a table"),
    ],
)
def test_toml_values_that_are_no_tables(text: str, message: str) -> None:
    assert f"contacts.toml: {message}, not " in str(refusal_toml(text))


def test_a_header_inside_a_string_does_not_shift_lines() -> None:
    text = ORG + 'policy = """\n[[organizations]]\n"""\n'
    (org,) = parse_contacts_toml(text, "contacts.toml")
    assert org.line == 0 and org.policy == "[[organizations]]"
