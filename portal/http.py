"""The request a view gets when it reads ``request.htmx`` (as django-htmx's docs type it).

``django_htmx.middleware.HtmxMiddleware`` sets ``request.htmx`` on every request;
a view that reads it takes an ``HtmxHttpRequest`` so the type checker knows the
attribute is there and what it holds (``boosted``, ``target``, ``trigger``, …).
"""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
