"""Is a From header exactly one mailbox? Read by the standard library's RFC 5322 parser,
which knows groups, quoting, comments and encoded words.

`channels.email.mime` reads the usual `Name <a@b>` shapes itself and asks here about the
rest: a group (`name: a@b;`), several mailboxes, a mailbox the parser finds invalid
(`alice@example.com <bob@example.com>`, two addresses without a comma, a missing `>`), or a
display name that decodes to a CR or LF names no one we may write to (an encoded word hiding
a colon once made `_victim5@example.org?=` the sender).

The parse tree comes from `email._header_value_parser`, the parser behind
`email.headerregistry`: the public header object reports an invalid mailbox's address as if
it were valid and keeps only a defect note, while the tree says which token was invalid.
"""

from __future__ import annotations

import functools
import re
from email import _header_value_parser as parser

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Mailbox defects that only concern how a display name is written, with a clear address: an
# encoded word inside quotes is common in old mailers' mail (RFC 2047 5 forbids it).
_NAME_ONLY = ("encoded word inside quoted string", "missing trailing whitespace after encoded")


@functools.lru_cache(maxsize=1024)  # senders write again and again
def one_mailbox(text: str) -> tuple[str, str] | None:
    """(addr-spec, display name) when `text` (one line) is exactly one mailbox, outside any
    group, that the parser finds valid (or faults only for its name's spelling), with a
    display name free of control characters; else None."""
    try:
        found, rest = parser.get_address_list(text)
    except Exception:  # the parser raises assorted errors on hostile text: not a mailbox
        return None
    addresses = [token for token in found if isinstance(token, parser.Address)]
    if rest or len(addresses) != 1 or len(addresses[0]) != 1:
        return None
    mailbox = addresses[0][0]
    if not isinstance(mailbox, parser.Mailbox):  # a group, or text with no address at all
        return None
    if mailbox.token_type == "invalid-mailbox":  # how the parser marks a mailbox it faults
        if not all(any(n in str(d) for n in _NAME_ONLY) for d in mailbox.all_defects):
            return None
    name, addr_spec = str(mailbox.display_name or ""), str(mailbox.addr_spec or "")
    if _CONTROL.search(name) or _CONTROL.search(addr_spec):
        return None
    return addr_spec, name
