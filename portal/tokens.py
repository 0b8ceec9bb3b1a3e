"""Personal API tokens: created and revoked on /me/tokens/, checked by the JSON API.

A token is ``kz_`` followed by 40 random URL-safe characters. Kaizen keeps only
its SHA-256 (and its first characters, so people can tell their tokens apart):
the full key is shown once, when it is created, and never again.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.http import require_http_methods, require_POST

from portal import access
from portal.audit import record
from portal.i18n import Phrase
from portal.models import ApiToken

KEY_PREFIX = "kz_"
SHOWN_CHARS = 10  # "kz_" and 7 more: enough to tell tokens apart, useless to guess the rest
MAX_ACTIVE_TOKENS = 20
# last_used_at is written at most this often, so a busy CI job costs no write per call.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenRefused(Exception):
    """The key is missing, unknown, revoked or belongs to a disabled account; says which."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def do_create_token(user, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns it and its key (the only time the key exists)."""
    key = KEY_PREFIX + secrets.token_urlsafe(30)
    token = ApiToken.objects.create(
        user=user, name=name.strip(), prefix=key[:SHOWN_CHARS], key_hash=hash_key(key)
    )
    record(
        user,
        "token.create",
        token,
        Phrase(
            gettext_noop("created API token “%(name)s” (%(prefix)s…)"),
            name=token.name,
            prefix=token.prefix,
        ),
    )
    return token, key


def do_revoke_token(user, token: ApiToken) -> bool:
    """Revoke ``token``; False when it already was (nothing is recorded twice)."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db(fields=["revoked_at"])
    if revoked:
        record(
            user,
            "token.revoke",
            token,
            Phrase(
                gettext_noop("revoked API token “%(name)s” (%(prefix)s…)"),
                name=token.name,
                prefix=token.prefix,
            ),
        )
    return bool(revoked)


def authenticate(key: str) -> ApiToken:
    """The live token of ``key`` with its user loaded, or TokenRefused saying why not.

    One query; a second one at most once a minute per token to note its use.
    """
    if not key:
        raise TokenRefused(
            "No API token: send the header “Authorization: Bearer kz_…” "
            "(create a token on your settings page, /me/tokens/)."
        )
    if not key.startswith(KEY_PREFIX):
        raise TokenRefused("That is not a Kaizen API token (they start with “kz_”).")
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key)).first()
    if token is None:
        raise TokenRefused("Unknown API token: check it was copied whole, or create a new one.")
    if token.revoked_at is not None:
        raise TokenRefused(
            f"This API token ({token.prefix}…) was revoked on "
            f"{token.revoked_at:%Y-%m-%d %H:%M} UTC; create a new one on /me/tokens/."
        )
    if not token.user.is_active:
        raise TokenRefused("The account this API token belongs to is disabled.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("What it is for, e.g. “shop-api CI pipeline”."),
    )


@require_http_methods(["GET", "POST"])
def token_list(request):
    """The signed-in person's API tokens; creating one shows its key this once."""
    form = TokenForm()
    new_key = None
    status = 200
    if request.method == "POST":
        form = TokenForm(request.POST)
        active = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True).count()
        if active >= MAX_ACTIVE_TOKENS:
            form.add_error(
                None,
                _("You already have %(count)s active tokens: revoke one you no longer use first.")
                % {"count": active},
            )
        if form.is_valid():
            _token, new_key = do_create_token(request.user, form.cleaned_data["name"])
            form = TokenForm()
            status = 201
        else:
            status = 422
    tokens = list(ApiToken.objects.filter(user=request.user).order_by("-created_at", "-pk"))
    response = render(
        request,
        "portal/tokens.html",
        {"tokens": tokens, "form": form, "new_key": new_key},
        status=status,
    )
    if new_key:
        # The page holds a secret: no cache, no back-button copy of it.
        response["Cache-Control"] = "no-store"
    return response


@require_POST
def token_revoke(request, pk):
    token = access.get_own_token_for_user(request, pk)
    if do_revoke_token(request.user, token):
        messages.success(
            request, _("Revoked “%(name)s”: it no longer opens the API.") % {"name": token.name}
        )
    else:
        messages.info(request, _("“%(name)s” was already revoked.") % {"name": token.name})
    return redirect("token_list")
