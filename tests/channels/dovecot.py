"""A throwaway Dovecot 2.3 on loopback for IMAP tests, started and stopped by the test.

Follows ../shared/NOTES-dovecot.md: a private base_dir under a world-readable temporary folder
(login processes run unprivileged), the test user mapped to the `dovecot` uid, 2.3 config
syntax, and the daemon's stdio pointed at a file so that no captured pipe stays open. Mail is
delivered the way an MDA does it: written into `tmp/`, then renamed into `new/`.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

USER = "support@example.com"
PASSWORD = "s3cret-Password"
_deliveries = itertools.count(1)

PASSWORD_PASSDB = """\
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}"""

# Only OAuth2 bearer tokens, checked at the tests' authorization server (RFC 7662).
OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}"""

OAUTH2_CONFIG = """\
introspection_mode = post
introspection_url = {url}
tokeninfo_url = {url}?token=
username_attribute = username
active_attribute = active
active_value = true
"""

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = {ssl}
{extra}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:{root}/Maildir
{passdb}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port}
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the server's certificate chain and private key, and the CA that issued it."""

    cert: Path
    key: Path
    ca: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def dovecot_version() -> str:
    """The installed Dovecot's version; fails clearly when it is missing or not 2.3."""
    if shutil.which("dovecot") is None:
        raise RuntimeError("dovecot is not installed: apt-get install -y dovecot-imapd")
    version = subprocess.run(
        ["dovecot", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not version.startswith("2.3."):
        raise RuntimeError(f"these tests write a Dovecot 2.3 config; found {version}")
    return version


class Dovecot:
    """One Dovecot instance with one user and a Maildir, on free loopback ports."""

    def __init__(
        self,
        *,
        tls: TlsFiles | None = None,
        capabilities: str | None = None,
        introspection_url: str | None = None,
        bearer: Callable[[], str] | None = None,
    ) -> None:
        dovecot_version()
        # With an introspection URL the server takes OAuth2 bearer tokens only, no password;
        # `bearer` gives the test's own connections a token.
        self.introspection_url = introspection_url
        self.bearer = bearer
        account = pwd.getpwnam("dovecot")
        self.uid, self.gid = account.pw_uid, account.pw_gid
        self.tls = tls
        # What the server advertises after login (`imap_capability`), e.g. without IDLE.
        self.capabilities = capabilities
        self.user, self.password = USER, PASSWORD
        # Not under pytest's tmp_path: its parents are private to root, and the unprivileged
        # login and mail processes must reach base_dir and the Maildir.
        self.root = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
        self.root.chmod(0o755)
        self.config = self.root / "dovecot.conf"
        self.maildir = self.root / "Maildir"
        self.port = 0
        self.ssl_port = 0
        self._running = False
        self._master = 0

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._prepare()
        try:
            self._start_on_free_ports()
        except RuntimeError:
            # Another process took the port between our probe and Dovecot's bind: once more.
            self._start_on_free_ports()

    def stop(self) -> None:
        """Tell the master to shut down (SIGTERM) and return; `wait_stopped` waits for it.

        The master takes a few seconds to exit after its children are gone: waiting for it in
        every test would make the suite slow, so a session fixture waits for them all at once.
        """
        if self._running:
            self._running = False
            self._master = int((self.root / "run" / "master.pid").read_text())
            os.kill(self._master, signal.SIGTERM)

    def wait_stopped(self, seconds: float = 30.0, *, remove: bool = True) -> None:
        """Wait until the master has exited, then remove the server's files."""
        self.stop()
        deadline = time.monotonic() + seconds
        while self._master and time.monotonic() < deadline:
            try:
                os.kill(self._master, 0)
            except ProcessLookupError:
                self._master = 0
            else:
                time.sleep(0.05)
        if self._master:
            raise RuntimeError(f"dovecot master {self._master} did not exit in {seconds}s")
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def _prepare(self) -> None:
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(mode=0o755)
        self._make_maildir(self.maildir)
        os.chown(self.root / "home", self.uid, self.gid)
        home = self.root / "home"
        (self.root / "passwd").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{self.uid}:{self.gid}::{home}::\n"
        )
        if self.introspection_url:
            (self.root / "oauth2.conf.ext").write_text(
                OAUTH2_CONFIG.format(url=self.introspection_url)
            )

    def _make_maildir(self, path: Path) -> None:
        path.mkdir(mode=0o700)
        os.chown(path, self.uid, self.gid)
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(mode=0o700)
            os.chown(path / sub, self.uid, self.gid)

    def _start_on_free_ports(self) -> None:
        self.port = free_port()
        self.ssl_port = free_port() if self.tls else 0
        self.config.write_text(self._config_text())
        log = self.root / "dovecot.log"
        with (self.root / "stdio.log").open("ab") as stdio:
            started = subprocess.run(
                ["dovecot", "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=stdio,
                stderr=stdio,
                check=False,
            )
        if started.returncode != 0:
            output = (self.root / "stdio.log").read_text(errors="replace")
            raise RuntimeError(f"dovecot did not start: {output}")
        self._running = True
        if not self._wait_listening():
            text = log.read_text(errors="replace") if log.exists() else "(no log)"
            self.wait_stopped(remove=False)
            raise RuntimeError(f"dovecot is not listening on {self.port}: {text}")

    def _config_text(self) -> str:
        extra = ""
        if self.tls:
            extra = (
                f"ssl_cert = <{self.tls.cert}\nssl_key = <{self.tls.key}\n"
                "ssl_dh = </usr/share/dovecot/dh.pem\n"
            )
        if self.capabilities:
            extra += f"imap_capability = {self.capabilities}\n"
        oauth2 = bool(self.introspection_url)
        return CONFIG.format(
            mechanisms="xoauth2 oauthbearer" if oauth2 else "plain login",
            passdb=(OAUTH2_PASSDB if oauth2 else PASSWORD_PASSDB).format(root=self.root),
            root=self.root,
            uid=self.uid,
            port=self.port,
            ssl_port=self.ssl_port,
            ssl="required" if self.tls else "no",
            extra=extra,
        )

    def _wait_listening(self, seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def _command(self, argv: list[str]) -> str:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def doveadm(self, *args: str) -> str:
        return self._command(["doveadm", "-c", str(self.config), *args])

    # -- what tests do to the server -------------------------------------------------------

    def deliver(self, raw: bytes, *, folder: str = "INBOX", days_ago: int = 0) -> None:
        """Drop one message into `folder` as an MDA would (tmp/, then rename into new/).

        Dovecot takes a Maildir message's INTERNALDATE (what SEARCH SINCE reads) from the
        file's mtime: `days_ago` backdates it.
        """
        box = self.maildir if folder == "INBOX" else self.maildir / f".{folder}"
        name = f"{time.time_ns()}.M{next(_deliveries)}P{os.getpid()}.intake-test"
        staged = box / "tmp" / name
        staged.write_bytes(raw)
        os.chown(staged, self.uid, self.gid)
        if days_ago:
            then = time.time() - days_ago * 86_400
            os.utime(staged, (then, then))
        staged.rename(box / "new" / name)

    def kick(self) -> None:
        """Cut every IMAP connection of the user, server side."""
        self.doveadm("kick", self.user)

    def change_uidvalidity(self) -> None:
        """Forget INBOX's UIDs, as a restored or migrated mailbox does (no session open)."""
        old = self.uidvalidity()
        # Dovecot numbers the messages afresh; their flags stay (they are in the file names).
        for stale in self.maildir.glob("dovecot*"):
            stale.unlink()
        # A fresh UIDVALIDITY is the current time: within the same second it would repeat.
        self.doveadm("mailbox", "update", "-u", self.user, "--uid-validity", str(old + 1), "INBOX")

    def uidvalidity(self) -> int:
        with self.client() as client:
            info = client.folder_status("INBOX", [b"UIDVALIDITY"])
            return int(info[b"UIDVALIDITY"])

    @contextmanager
    def client(self) -> Iterator[IMAPClient]:
        """A separate, plain connection for the test to look at the mailbox."""
        with IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10) as client:
            if self.tls:
                context = ssl.create_default_context(cafile=str(self.tls.ca))
                client.starttls(context)
            if self.bearer is not None:
                client.oauth2_login(self.user, self.bearer())
            else:
                client.login(self.user, self.password)
            yield client
