"""The contacts file: organizations, contacts and their values."""
