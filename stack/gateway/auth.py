"""Admin authentication: a bearer token compared in constant time.

ADMIN_TOKEN wins; otherwise the token `workshop up` generated into `<data>/admin-token`.
The token is never logged or put on a span.
"""

from __future__ import annotations

import hmac
from functools import lru_cache

from fastapi import Request

from stack.common.problems import Problem
from stack.common.settings import Settings, get_settings


@lru_cache(maxsize=1)
def admin_token(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    token = settings.admin_token.get_secret_value()
    if token:
        return token
    path = settings.data_dir / "admin-token"
    return path.read_text().strip() if path.exists() else ""


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def is_admin(request: Request) -> bool:
    token = bearer(request)
    expected = admin_token()
    if not token or not expected:
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def require_admin(request: Request) -> None:
    token = bearer(request)
    if token is None:
        raise Problem(
            401,
            "admin token required: send `Authorization: Bearer <token>`",
            headers={"www-authenticate": "Bearer"},
            slug="unauthorized",
        )
    if not is_admin(request):
        raise Problem(403, "the admin token is not valid", slug="forbidden")
