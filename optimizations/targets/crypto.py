"""Target credentials at rest: encrypted with KAIZEN_ENCRYPTION_KEY, shown masked."""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from optimizations.analyzers.dbscan.connect import describe_database_url


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
    """A database URL as anyone may see it: scheme, user, host, port and database only.

    Read by libpq's rules, so a password in the query string (``?password=``)
    or any other option is left out too, not only the one after the user name.
    """
    if not url:
        return ""

    return describe_database_url(url)


def mask_secret(value: str) -> str:
    """That a secret is set, and not one character of it."""
    return "•••• (set)" if value else ""
