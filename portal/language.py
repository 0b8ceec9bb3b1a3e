"""The portal's language per user: their own choice, else the browser's, else English.

A signed-in user's choice (``UserPreference.language``) is read once per
session — at sign-in, or on the first request of a session that predates it —
and kept in the session under ``SESSION_KEY`` (an empty string: follow the
browser). ``portal.middleware.UserLanguageMiddleware`` activates it after
Django's ``LocaleMiddleware`` has picked the browser's Accept-Language.
"""

from __future__ import annotations

from django.conf import settings

from portal.models import UserPreference

SESSION_KEY = "language"


def supported(code: str) -> bool:
    return code in {language for language, _ in settings.LANGUAGES}


def stored_language(user) -> str:
    """The user's chosen language code, or "" to follow the browser."""
    code = UserPreference.objects.filter(user=user).values_list("language", flat=True).first()
    return code if code and supported(code) else ""


def do_set_language(user, code: str) -> None:
    """Save the user's language ("" follows the browser)."""
    if code and not supported(code):
        raise ValueError(f"unsupported language {code!r}")
    UserPreference.objects.update_or_create(user=user, defaults={"language": code})


def remember_at_login(sender, request, user, **kwargs) -> None:
    """The login hook (``user_logged_in``): the session starts with the user's language."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = stored_language(user)


def language_for(user) -> str:
    """The language to write to a user in when no browser is asking (emails, notifications)."""
    return stored_language(user) or settings.LANGUAGE_CODE
