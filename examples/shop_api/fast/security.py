"""HTTP hardening of the fast mode: security headers and the API key for writes."""

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from examples.shop_api.common.auth import bearer_scheme

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The interactive docs load Swagger UI's scripts and styles; they keep the other headers.
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")


class SecurityHeadersMiddleware:
    """Add the usual security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
                if scope["path"] not in DOCS_PATHS:
                    headers.setdefault("Content-Security-Policy", API_CONTENT_SECURITY_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Needed for writes.")


async def require_api_key(
    request: Request, api_key: Annotated[str | None, Depends(api_key_header)]
) -> None:
    expected: str = request.app.state.api_key
    if api_key is None or not secrets.compare_digest(api_key.encode(), expected.encode()):
        raise HTTPException(
            status_code=401,
            detail="Missing or wrong X-API-Key",
            headers={"WWW-Authenticate": "ApiKey"},
        )


# Orders placed with the API key (the shop's own back office) belong to this account.
API_KEY_CUSTOMER = "api-key"


async def require_customer(
    request: Request,
    token: Annotated[str | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> str:
    """The customer of a valid bearer token, or the back office for the API key; else 401."""
    if token is not None:
        username = request.app.state.tokens.username(token)
        if username is not None:
            return username
    expected: str = request.app.state.api_key
    if api_key is not None and secrets.compare_digest(api_key.encode(), expected.encode()):
        return API_KEY_CUSTOMER
    raise HTTPException(
        status_code=401,
        detail="Log in (POST /auth/token) and send Authorization: Bearer <token>",
        headers={"WWW-Authenticate": "Bearer"},
    )


CustomerDep = Annotated[str, Depends(require_customer)]
