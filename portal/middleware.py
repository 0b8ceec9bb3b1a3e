"""Activate the signed-in user's own time zone and language for each request."""

import zoneinfo

from django.conf import settings
from django.utils import timezone, translation

from departments.models import Profile
from portal.language import SESSION_KEY, stored_language, supported


class UserTimezoneMiddleware:
    """Reads the user's time zone once per session and keeps it there."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = None
        if request.user.is_authenticated:
            name = request.session.get("time_zone")
            if name is None:
                name = (
                    Profile.objects.filter(user=request.user)
                    .values_list("time_zone", flat=True)
                    .first()
                ) or "UTC"
                request.session["time_zone"] = name
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        return self.get_response(request)


ENGLISH_ONLY_PREFIXES = ("/api/",)


class UserLanguageMiddleware:
    """Puts the signed-in user's own language over the browser's (portal/language.py).

    Runs after LocaleMiddleware (which activated the Accept-Language choice)
    and after authentication; a user who chose none keeps the browser's.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(ENGLISH_ONLY_PREFIXES):
            # The JSON API (and its OpenAPI document) speaks English whatever
            # the client's Accept-Language: scripts parse its messages.
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
        elif request.user.is_authenticated:
            code = request.session.get(SESSION_KEY)
            if code is None:
                code = stored_language(request.user)
                request.session[SESSION_KEY] = code
            if code and supported(code):
                translation.activate(code)
                request.LANGUAGE_CODE = code
        return self.get_response(request)
