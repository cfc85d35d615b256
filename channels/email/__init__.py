"""Email: SMTP server, IMAP poller, MIME, sender checks, composing our mail."""
