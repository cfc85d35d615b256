"""docs/ stays true: the configuration reference matches the settings models, every link
resolves, and the examples the pages show are the files the tests run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from intake.policy.files import load_policy

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def intake(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_the_configuration_reference_matches_the_settings() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "config_reference.py")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    written = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert written == done.stdout, (
        "docs/configuration.md is out of date with intake/config.py: "
        "run python scripts/config_reference.py > docs/configuration.md"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    targets = [t for t in _LINK.findall(text) if "://" not in t and not t.startswith("mailto:")]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert missing == []


def test_docs_has_an_index_of_every_page() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    pages = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    assert {p for p in pages if f"]({p})" not in index} == set()


def test_the_contacts_examples_import_and_agree(tmp_path: Path) -> None:
    listed = []
    for example in ("contacts.csv", "contacts.toml"):
        folder = tmp_path / example
        folder.mkdir()
        done = intake("contacts", "import", str(DOCS / "examples" / example), cwd=folder)
        assert done.returncode == 0, done.stderr
        again = intake("contacts", "import", str(DOCS / "examples" / example), cwd=folder)
        assert again.returncode == 0, again.stderr
        shown = intake("contacts", "list", "--json", cwd=folder)
        listed.append([json.loads(line) for line in shown.stdout.splitlines()])
    assert [org["organization"] for org in listed[0]] == [
        "Acme Logistics", "Gulf Document Authority", "Northwind Analytics Ltd",
    ]  # fmt: skip
    assert listed[0] == listed[1]


def test_the_policy_example_loads_and_answers_as_the_page_says(tmp_path: Path) -> None:
    policy = load_policy(str(DOCS / "examples" / "policy.toml"))
    assert set(policy.plans) == {"basic", "premium"}
    done = intake(
        "sla", "--policy", str(DOCS / "examples" / "policy.toml"), "--plan", "basic",
        "--priority", "critical", "--received", "2026-12-30T16:00+01:00", cwd=tmp_path,
    )  # fmt: skip
    answer = json.loads(done.stdout)
    assert answer["first_response_due"] == "2027-01-04T11:00:00+01:00"
    assert answer["resolution_due"] == "2027-01-05T16:00:00+01:00"
    page = (DOCS / "policies.md").read_text(encoding="utf-8")
    assert "first response 4 January 2027 11:00" in page
    assert "resolution 5 January 16:00" in page


@pytest.mark.parametrize(
    ("example", "page"),
    [
        ("examples/policy.toml", "policies.md"),
        ("examples/postfix/main.cf", "deployment.md"),
        ("examples/postfix/transport", "deployment.md"),
        ("examples/postfix/intake.toml", "deployment.md"),
    ],
)
def test_pages_show_the_example_files_the_tests_run(example: str, page: str) -> None:
    """Each line of the example (its header comment aside) stands in the page as written."""
    shown = (DOCS / page).read_text(encoding="utf-8").splitlines()
    lines = (DOCS / example).read_text(encoding="utf-8").splitlines()
    body = [line for line in lines if line.strip() and not line.startswith("# ")]
    assert [line for line in body if line not in shown] == []
