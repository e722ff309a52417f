"""The Me page lists my API tokens (prefix, created, last used, expiry) and revokes one (issue 9)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bccd.services import tokens, users
from tests.web.support import csrf_of

Web = tuple[Any, Any, Any]


async def test_me_lists_my_tokens_and_revokes_one(web: Web) -> None:
    app, world, login = web
    owner, colleague = await login("owner"), await login("colleague")
    _, forever = await users.issue_token(app.db, world.owner.id, actor=None)
    soon = datetime.now(UTC) + timedelta(days=3)
    raw, expiring = await tokens.issue_token(app.db, world.owner.id, actor=None, expires_at=soon)
    assert await users.authenticate(app.db, raw) is not None  # sets last_used_at
    _, theirs = await tokens.issue_token(app.db, world.colleague.id, actor=None)

    html = await owner.page("/me")
    rows = re.findall(r'<tr id="token-(\d+)">(.*?)</tr>', html, re.S)
    assert len(rows) == 2 and int(rows[1][0]) == expiring.id
    first, second = rows[0][1], rows[1][1]
    assert forever[:9] in first and "never" in first and raw not in html and forever not in html
    assert expiring.prefix in second and soon.strftime("%Y-%m-%d %H:%M") in second
    assert "never" not in second  # used, and expiring
    assert f'action="/me/tokens/{expiring.id}/revoke"' in html
    assert f"token-{theirs.id}" not in html

    # Without this session's CSRF token nothing is revoked.
    other_csrf = csrf_of(await colleague.page("/me"))
    for form in ({}, {"csrf": other_csrf}):
        refused = await owner.client.post(f"/me/tokens/{expiring.id}/revoke", data=form)
        assert refused.status_code == 403 and "Form expired" in refused.text
    assert await users.authenticate(app.db, raw) is not None

    done = await owner.post(f"/me/tokens/{expiring.id}/revoke", from_page="/me")
    assert done.status_code == 303 and done.headers["location"] == "/me?done=token_revoked"
    assert await users.authenticate(app.db, raw) is None
    after = await owner.page("/me?done=token_revoked")
    assert "Token revoked" in after and f"token-{expiring.id}" not in after and forever[:9] in after

    # Someone else's token, or one that is gone, is not found from my page — even for an admin.
    admin = await login("admin")
    for token_id in (theirs.id, expiring.id, 2**70):
        response = await admin.post(f"/me/tokens/{token_id}/revoke", from_page="/me")
        assert response.status_code == 404, token_id
    assert (await owner.post(f"/me/tokens/{theirs.id}/revoke", from_page="/me")).status_code == 404
    _, still = await tokens.list_tokens(app.db, world.colleague.id, actor=None)
    assert [t.id for t in still] == [theirs.id]
