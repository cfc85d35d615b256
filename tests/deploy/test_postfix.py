"""docs/deployment.md's Postfix example, run for real: a private Postfix instance built from
docs/examples/postfix/ relays a customer's mail to `intake serve`, and the acknowledgement
leaves through the same Postfix to the customer's (local) mail server.

Postfix comes from Debian's package (scripts/test installs it). Everything listens on loopback
only, in a folder of the test's own; the instance is stopped whatever happens.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from serving import Relay, ServeProcess, accepts, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"

# What a test instance needs beyond the example: its own folders, loopback only, no DNS.
INSTANCE = """
compatibility_level = 3.6
queue_directory = {folder}/spool
data_directory = {folder}/data
inet_interfaces = 127.0.0.1
inet_protocols = all
myhostname = mx.support.example.com
mydestination =
alias_maps =
alias_database =
smtp_dns_support_level = disabled
maillog_file = {folder}/maillog
maillog_file_prefixes = {folder}
"""


class Postfix:
    """A private Postfix instance (`postfix -c DIR`) listening on 127.0.0.1:`port`."""

    def __init__(self, folder: Path, port: int, transport: str) -> None:
        self.folder = folder
        self.etc = folder / "etc"
        self.port = port
        self.etc.mkdir()
        (folder / "spool").mkdir()
        data = folder / "data"
        data.mkdir()
        postfix_user = pwd.getpwnam("postfix")
        os.chown(data, postfix_user.pw_uid, postfix_user.pw_gid)  # master.lock lives here
        main = (EXAMPLES / "postfix" / "main.cf").read_text(encoding="utf-8")
        main = main.replace("/etc/postfix/transport", str(self.etc / "transport"))
        (self.etc / "main.cf").write_text(main + INSTANCE.format(folder=folder), "utf-8")
        (self.etc / "transport").write_text(transport, encoding="utf-8")
        (self.etc / "master.cf").write_text(self._master(), encoding="utf-8")

    def _master(self) -> str:
        """Debian's master.cf with smtpd on our loopback port and no chroot (none is set up)."""
        lines = []
        for line in Path("/etc/postfix/master.cf").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if line[:1].isalnum() and len(fields) >= 8:
                if fields[0] == "smtp" and fields[1] == "inet":
                    fields[0] = f"127.0.0.1:{self.port}"
                fields[4] = "n"
                line = " ".join(fields)
            lines.append(line)
        return "\n".join(lines) + "\n"

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.etc), *args], capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        done = self.command("start")
        assert done.returncode == 0, f"postfix start failed: {done.stderr}\n{self.log()}"

    def stop(self) -> None:
        self.command("stop")

    def log(self) -> str:
        path = self.folder / "maillog"
        return path.read_text(errors="replace") if path.exists() else "(no maillog)"


@pytest.fixture
def folder() -> Iterator[Path]:
    # Postfix's daemons run as the postfix user: the folder must be theirs to enter (pytest's
    # own tmp_path is private to root).
    path = Path(tempfile.mkdtemp(prefix="intake-postfix-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def intake_config(folder: Path, smtp_port: int, postfix_port: int) -> Path:
    """docs/examples/postfix/intake.toml with this test's ports, database and contacts."""
    text = (EXAMPLES / "postfix" / "intake.toml").read_text(encoding="utf-8")
    text = text.replace("port = 2525", f"port = {smtp_port}").replace(
        "port = 25\n", f"port = {postfix_port}\n"
    )
    text += (
        f'\n[database]\nurl = "sqlite+aiosqlite:///{folder / "intake.db"}"\n'
        f'\n[contacts]\nfile = "{EXAMPLES / "contacts.toml"}"\n'
        "\n[web]\nenabled = false\n"
    )
    path = folder / "intake.toml"
    path.write_text(text, encoding="utf-8")
    return path


def tickets(config: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "intake.cli", "tickets", "list", "--json", "--config", str(config)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return [json.loads(line) for line in done.stdout.splitlines()]


async def test_postfix_relays_to_intake_and_delivers_the_acknowledgement(folder: Path) -> None:
    assert Path(POSTFIX).exists(), "Postfix is not installed (scripts/test installs it)"
    smtp_port, postfix_port = free_port(), free_port()
    async with Relay() as customer_mx:  # acme.example's mail server
        transport = (EXAMPLES / "postfix" / "transport").read_text(encoding="utf-8")
        transport = transport.replace("[127.0.0.1]:2525", f"[127.0.0.1]:{smtp_port}")
        transport += f"acme.example    smtp:[127.0.0.1]:{customer_mx.port}\n"
        config = intake_config(folder, smtp_port, postfix_port)
        serve = ServeProcess("intake", folder, os.environ, ["--config", str(config)])
        postfix = Postfix(folder, postfix_port, transport)
        serve.start()
        try:
            await wait_until(lambda: accepts(smtp_port), "intake serve to listen")
            postfix.start()
            await wait_until(lambda: accepts(postfix_port), "Postfix to listen")
            mail = EmailMessage()
            mail["From"] = "Alice Novak <alice@acme.example>"
            mail["To"] = "help@support.example.com"
            mail["Subject"] = "Export to PDF fails"
            mail["Message-ID"] = "<postfix-1@acme.example>"
            mail.set_content("Every PDF export ends with error 500 since this morning.")
            await aiosmtplib.send(mail, hostname="127.0.0.1", port=postfix_port)

            await wait_until(lambda: bool(customer_mx.received), "the acknowledgement", 90)
            envelope, ack = customer_mx.received[0]
            assert envelope.rcpt_tos == ["alice@acme.example"]
            assert "[SUP-000001]" in str(ack["Subject"])
            assert ack["Auto-Submitted"] == "auto-replied"
            assert "by mx.support.example.com (Postfix)" in str(ack["Received"])
            found = tickets(config)
            assert [(t["reference"], t["sender"]) for t in found] == [
                ("SUP-000001", "alice@acme.example")
            ]
            assert found[0]["organization"] == "Acme Logistics"
            assert serve.stop() == 0
        except BaseException:
            print(postfix.log())
            print(serve.output())
            raise
        finally:
            serve.stop()
            postfix.stop()
