"""Issue 9 webhooks, pure parts: the retry schedule, Standard Webhooks signatures, the SSRF address check."""

from __future__ import annotations

import base64
import ipaddress

import pytest

from bccd.config import WebhookSettings
from bccd.webhooks import signing
from bccd.webhooks.ssrf import UnsafeEndpoint, check_url, is_public
from bccd.webhooks.worker import backoff


def test_default_retry_schedule_backs_off_with_jitter_and_lasts_over_24_hours() -> None:
    s = WebhookSettings()
    assert s.retry_for >= 24 * 3600
    lows = [s.retry_base * 2 ** (n - 1) * 0.75 for n in range(1, 12)]
    for n, low in enumerate(lows, start=1):
        delays = {backoff(n, s) for _ in range(50)}
        assert all(
            min(low / 0.75, s.retry_max) * 0.75 <= d <= min(low / 0.75, s.retry_max) * 1.25 for d in delays
        )
        assert len(delays) > 1  # jittered
    assert backoff(2, s) > backoff(1, s) * 0.75 * 2 / 1.25 - 1e-9  # doubling, within the jitter
    assert backoff(40, s) <= s.retry_max * 1.25
    # attempts until giving up at the default window: more than a day of trying, ~30 attempts
    elapsed, attempts = 0.0, 0
    while elapsed < s.retry_for:
        attempts += 1
        elapsed += backoff(attempts, s)
    assert 25 <= attempts <= 45


def test_signature_matches_the_standard_webhooks_definition() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    sig = signing.sign(secret, "msg_1", 1700000000, b'{"a":1}')
    # computed independently: HMAC-SHA256(b"k"*32, b'msg_1.1700000000.{"a":1}')
    import hashlib
    import hmac

    expected = hmac.new(b"k" * 32, b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest()
    assert sig == "v1," + base64.b64encode(expected).decode()
    assert signing.verify(secret, "msg_1", 1700000000, b'{"a":1}', f"v1,xxx {sig}")
    assert not signing.verify(secret, "msg_1", 1700000001, b'{"a":1}', sig)
    new = signing.new_secret()
    assert new.startswith("whsec_") and len(base64.b64decode(new[6:])) == 32 and new != signing.new_secret()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104 (an address under test, not a bind)
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("240.0.0.1", False),
    ],
)
def test_public_address_check(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url", ["ftp://x.test/", "http:///nohost", "https://u:p@x.test/", "http://x.test:99999/"]
)
def test_urls_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(UnsafeEndpoint):
        check_url(url)
