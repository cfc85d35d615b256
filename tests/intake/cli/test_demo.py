"""`intake serve --demo` (what README's first command runs), as a real process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_acknowledges_a_request(tmp_path: Path) -> None:
    port, web_port = free_port(), free_port()
    config = f"[smtp]\nport = {port}\n[web]\nport = {web_port}\n"
    (tmp_path / "intake.toml").write_text(config, encoding="utf-8")
    out = (tmp_path / "out.txt").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "intake.cli", "serve", "--demo"],
        stdout=out, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "Ctrl-C stops" not in (tmp_path / "out.txt").read_text():
            assert server.poll() is None and time.monotonic() < deadline, "demo did not start"
            time.sleep(0.1)
        subprocess.run(
            [sys.executable, "-m", "intake.cli.demo.send", "--port", str(port),
             "Urgent: export fails", "It shows error 500."],
            check=True, timeout=30, capture_output=True,
        )  # fmt: skip
        # The acknowledgement, and the urgent alert to the demo's on-call address (issue 18).
        wanted = ("outgoing mail to alice@acme.example", "outgoing mail to oncall@vendor.example")
        while not all(w in (tmp_path / "out.txt").read_text() for w in wanted):
            assert time.monotonic() < deadline, (tmp_path / "out.txt").read_text()
            time.sleep(0.1)
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        out.close()
    printed = (tmp_path / "out.txt").read_text()
    assert "[SUP-000001] Re: Urgent: export fails" in printed
    assert "Hello Alice Novak" in printed and "Priority: Urgent" in printed
    assert (tmp_path / "intake.db").exists()  # the embedded default database
    # The banner says where the agents' page is and how to make an agent to log in with.
    assert f"The agents' page is http://127.0.0.1:{web_port}/" in printed
    assert "| intake agents add you@vendor.example --name You --password-stdin" in printed
    assert "Urgent alerts go to oncall@vendor.example" in printed
