"""Support intake: tickets with support-hours deadlines from a vendor's support policy."""

__version__ = "0.1.0"
