"""Send one request to the demo: `python3 -m intake.cli.demo.send [--port N] SUBJECT [TEXT]`."""

from __future__ import annotations

import argparse
import smtplib
from email.message import EmailMessage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("subject")
    parser.add_argument("text", nargs="?", default="Please have a look.")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--sender", default="Alice Novak <alice@acme.example>")
    parser.add_argument("--to", default="support@support.example.com")
    args = parser.parse_args()
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = args.sender, args.to, args.subject
    mail.set_content(args.text)
    with smtplib.SMTP("127.0.0.1", args.port) as client:
        client.send_message(mail)
    print(f"sent: {args.subject}")


if __name__ == "__main__":
    main()
