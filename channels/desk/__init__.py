"""The agents' desk on the wire: the queue page and the JSON API."""
