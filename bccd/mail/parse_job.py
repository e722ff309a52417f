"""The one parse of a message and its forward detection, as a job a parse process can run.

Kept free of the store, the config and logging so a parse process imports only `bccd.mail`; the result
it sends back is plain data (the parsed `email.message.Message` tree stays behind: nothing after the
parse reads it, and for a 20 MB message it would be 20 MB more to pickle).
"""

from __future__ import annotations

import dataclasses
from email.message import Message

from bccd.mail.forwards import ForwardDetection, detect_forward
from bccd.mail.message import ParsedMessage, parse_message


def parse_and_detect(raw: bytes) -> tuple[ParsedMessage, ForwardDetection | None]:
    """The one parse of a message (S6: never raises) and its forward detection (F1)."""
    parsed = parse_message(raw)
    return parsed, detect_forward(parsed.message, parsed.text_body, parsed.html_body)


def parse_and_detect_detached(raw: bytes) -> tuple[ParsedMessage, ForwardDetection | None]:
    """`parse_and_detect` without the MIME tree in the result, for sending across processes."""
    parsed, forward = parse_and_detect(raw)
    return dataclasses.replace(parsed, message=Message()), forward
