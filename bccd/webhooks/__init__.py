"""Webhooks (issue 9): the event outbox, endpoint storage, signing, the SSRF guard and the delivery worker."""
