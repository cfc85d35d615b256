"""Which SMTP clients are trusted relays (`[authentication] trusted_relays`), and what only
they may tell us: an upstream's `Authentication-Results` and a spam filter's verdict.

Anyone can write any header. A header about the sender is evidence only when a server we
trust wrote it about the client it got the mail from, so on the SMTP path it counts only in
mail handed to us by one of the configured relays (RFC 8601 section 5: a border MTA removes
such headers from everyone else's mail). Mail read from a mailbox (IMAP) carries its
provider's headers and is judged elsewhere (`sender_checks.UpstreamVerdict`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network

IpNetwork = IPv4Network | IPv6Network
# An upstream spam filter's verdict (SpamAssassin's names, which other filters copy).
SPAM_HEADERS = frozenset({"x-spam-flag", "x-spam-status"})


def from_trusted_relay(peer: str, relays: Sequence[IpNetwork]) -> bool:
    """Whether the client address `peer` lies in one of `relays` (none: nobody is trusted)."""
    if not relays or not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.partition("%")[0])  # drop an IPv6 zone index
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 clients this way
    return any(address.version == net.version and address in net for net in relays)


def without_spam_verdicts(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """`headers` less the spam filter verdicts, which only a trusted relay may give."""
    return tuple((name, value) for name, value in headers if name.lower() not in SPAM_HEADERS)
