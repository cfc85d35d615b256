"""Telegram: polling and webhook updates, chat replies, the Bot API wire."""
