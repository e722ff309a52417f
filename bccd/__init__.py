"""bccd: Smart Bcc inbound mail server for CRMs."""

__version__ = "0.1.0"
