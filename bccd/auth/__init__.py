"""Sender authentication at end of DATA (issue 11): SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489)
on an async resolver with a per-message DNS budget, combined into one verdict per message."""
