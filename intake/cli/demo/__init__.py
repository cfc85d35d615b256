"""The demo: packaged contacts, and a loopback mail sink that prints what the product sends."""
