"""SMTP adapter: aiosmtpd hooks that turn ingest outcomes into SMTP replies."""
