"""What the console's tests share: signing in, and the CSRF token of a page's forms."""

from __future__ import annotations

import re

import httpx

from hookline.testing import TEST_TOKEN


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token of the first form on ``page``."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, secret: str = TEST_TOKEN, next_path: str = "/console/") -> httpx.Response:
    """Sign in through the sign-in form (its own token, then the secret); the client keeps the cookie."""
    form = await client.get("/console/sign-in", params={"next": next_path})
    token = re.search(r'name="signin_token" value="([^"]+)"', form.text).group(1)
    return await client.post("/console/sign-in", data={"signin_token": token, "secret": secret, "next": next_path})
