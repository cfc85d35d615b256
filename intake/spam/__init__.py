"""Spam engines the pipeline may ask before it decides (`[spam]`): an interface, and
SpamAssassin's spamd as the one engine so far. Network I/O lives here, outside the pure core
and outside the ticket's transaction."""
