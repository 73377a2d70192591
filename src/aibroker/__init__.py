"""aibroker: a self-hostable, multi-tenant AI broker."""

__version__ = "0.1.0"
