"""The web app: ASGI server, health, the public call-back form, metrics."""
