"""Customer accounts and bearer tokens of the shop API (the same in both modes).

``POST /auth/token`` takes a username and password — as an OAuth2 password grant
(``application/x-www-form-urlencoded``) or as JSON — and returns a signed bearer token.
Tokens are stateless (HMAC-SHA256 over the username and expiry) with a per-process secret
unless ``SHOP_TOKEN_SECRET`` is set, so the slow shop and its fixed twin each accept only
their own tokens.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import DateTime, String, Uuid, column, insert, select
from sqlalchemy import table as table_clause
from sqlalchemy.ext.asyncio import AsyncConnection

DEMO_CUSTOMERS = ("alice", "bob", "carol")
DEFAULT_DEMO_PASSWORD = "shop-demo-password"
TOKEN_TTL_SECONDS = 3_600
# Far below OWASP's 600 000 for PBKDF2-SHA256: a login stays ~10 ms on the demo's 2 cores, so
# a scripted load test that logs in per virtual user measures the API, not the hash.
PBKDF2_ITERATIONS = 20_000
MAX_CREDENTIAL_LENGTH = 200
LOGIN_BODY_BYTES = 4_096

customers_table = table_clause(
    "customers",
    column("id", Uuid()),
    column("username", String()),
    column("password_hash", String()),
    column("created_at", DateTime()),
)

TOKEN_REQUEST_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            media_type: {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["password"]},
                        "username": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_CREDENTIAL_LENGTH,
                            "example": DEMO_CUSTOMERS[0],
                        },
                        "password": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_CREDENTIAL_LENGTH,
                            "example": DEFAULT_DEMO_PASSWORD,
                        },
                    },
                    "additionalProperties": False,
                }
            }
            for media_type in ("application/x-www-form-urlencoded", "application/json")
        },
    }
}


def demo_password() -> str:
    return os.environ.get("SHOP_DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        algorithm, iterations, salt, expected = encoded.split("$")
    except ValueError:
        return False
    if algorithm != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and checks the bearer tokens of one shop process."""

    def __init__(self, secret: str | None = None) -> None:
        secret = secret or os.environ.get("SHOP_TOKEN_SECRET") or secrets.token_urlsafe(32)
        self._key = secret.encode()

    def issue(self, username: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + TOKEN_TTL_SECONDS)
        payload = _b64(json.dumps({"sub": username, "exp": expires}).encode())
        signature = _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{signature}"

    def username(self, token: str, now: float | None = None) -> str | None:
        """The token's customer, or None when it is malformed, forged or expired."""
        payload, _, signature = token.partition(".")
        expected = _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
        if not signature or not hmac.compare_digest(signature, expected):
            return None
        try:
            claims = json.loads(_unb64(payload))
            subject, expires = str(claims["sub"]), int(claims["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        return subject if expires > (time.time() if now is None else now) else None


async def read_credentials(request: Request) -> tuple[str, str]:
    """Username and password from a form-encoded password grant or a JSON body; 422 else."""
    body = await request.body()
    if len(body) > LOGIN_BODY_BYTES:
        raise HTTPException(status_code=413, detail="Login body too large")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict = {}
    try:
        if content_type == "application/x-www-form-urlencoded":
            fields = {k: v[0] for k, v in parse_qs(body.decode(), strict_parsing=False).items()}
        elif content_type == "application/json":
            fields = json.loads(body)
        else:
            raise HTTPException(
                status_code=415,
                detail="Send application/x-www-form-urlencoded or application/json",
            )
    except (UnicodeDecodeError, ValueError) as error:
        raise HTTPException(status_code=422, detail="Malformed login body") from error
    if not isinstance(fields, dict):
        raise HTTPException(status_code=422, detail="The login body must be an object")
    username, password = fields.get("username"), fields.get("password")
    grant_type = fields.get("grant_type", "password")
    if (
        not isinstance(username, str)
        or not isinstance(password, str)
        or grant_type != "password"
        or not 0 < len(username) <= MAX_CREDENTIAL_LENGTH
        or not 0 < len(password) <= MAX_CREDENTIAL_LENGTH
    ):
        raise HTTPException(
            status_code=422, detail="username and password (1-200 characters) are required"
        )
    return username, password


async def ensure_demo_customers(connection: AsyncConnection) -> None:
    """Create the demo customers that are missing (idempotent; run with the schema)."""
    existing = set(await connection.scalars(select(customers_table.c.username)))
    missing = [name for name in DEMO_CUSTOMERS if name not in existing]
    if missing:
        password = demo_password()
        await connection.execute(
            insert(customers_table),
            [
                {"id": uuid.uuid4(), "username": name, "password_hash": hash_password(password)}
                for name in missing
            ],
        )


# Declares the bearer scheme (and its token URL) in the OpenAPI document; the routes decide
# whether a token is required.
bearer_scheme = OAuth2PasswordBearer(
    tokenUrl="auth/token", auto_error=False, description="Token from POST /auth/token."
)


async def optional_customer(
    request: Request, token: Annotated[str | None, Depends(bearer_scheme)]
) -> str | None:
    """The customer of a valid bearer token, None without one; 401 for a bad token."""
    if token is None:
        return None
    username = request.app.state.tokens.username(token)
    if username is None:
        raise HTTPException(
            status_code=401,
            detail="Invalid or expired token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return username
