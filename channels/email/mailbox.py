"""Is a From header exactly one mailbox? Read by the standard library's RFC 5322 parser
(`email.headerregistry`), which knows groups, quoting, comments and encoded words.

`channels.email.mime` reads the usual `Name <a@b>` shapes itself and asks here about the
rest: a display name that decodes to a CR or LF, a group (`name: a@b;`), several mailboxes, or
a text our quicker split would have misread (an encoded word hiding a colon once made
`_victim5@example.org?=` the sender) makes a From that names no one we may write to.
"""

from __future__ import annotations

import functools
import re
from email.headerregistry import HeaderRegistry

_HEADERS = HeaderRegistry()
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@functools.lru_cache(maxsize=1024)  # senders write again and again
def one_mailbox(text: str) -> tuple[str, str] | None:
    """(addr-spec, display name) when `text` (one line) is exactly one mailbox outside any
    group with a display name free of control characters; else None."""
    try:
        header = _HEADERS("from", text)
        groups = header.groups  # type: ignore[attr-defined]
    except Exception:  # the parser raises assorted errors on hostile text: not a mailbox
        return None
    if len(groups) != 1 or groups[0].display_name is not None:
        return None
    addresses = groups[0].addresses
    if len(addresses) != 1:
        return None
    name, addr_spec = str(addresses[0].display_name), str(addresses[0].addr_spec)
    if _CONTROL.search(name) or _CONTROL.search(addr_spec):
        return None
    return addr_spec, name
