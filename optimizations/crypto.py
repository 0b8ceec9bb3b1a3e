"""Target credentials at rest: encrypted with KAIZEN_ENCRYPTION_KEY, shown masked."""

from __future__ import annotations

from functools import cache
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class CredentialUnreadable(Exception):
    """The stored secret cannot be decrypted (the encryption key changed)."""


@cache
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def encrypt(plain: str) -> str:
    if not plain:
        return ""
    return _fernet(settings.KAIZEN_ENCRYPTION_KEY).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet(settings.KAIZEN_ENCRYPTION_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialUnreadable(
            "A stored credential cannot be decrypted: KAIZEN_ENCRYPTION_KEY changed since it "
            "was saved. Enter the credential again on the target's settings page."
        ) from None


def mask_url(url: str) -> str:
    """A database URL with its password replaced, for display: never the secret."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:•••@{host}", parts.path, parts.query, ""))


def mask_secret(value: str) -> str:
    """Enough of a header value to recognise it, never enough to use it."""
    if not value:
        return ""
    if len(value) <= 8:
        return "•••"
    return value[:4] + "•••" + value[-2:]
