"""Mail parsing: bytes in, a parsed message (headers, bodies, attachments, defects, forwards) out."""
