"""The HTTP API (FastAPI, JSON, /api/v1): how a CRM syncs its directory and people read and link threads."""
