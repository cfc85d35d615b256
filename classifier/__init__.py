"""The rule classifier: text and headers in, signals with evidence out. Pure: no I/O."""
