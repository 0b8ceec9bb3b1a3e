"""Values every page's layout needs, computed only when a template reads them.

Fragments swapped by HTMX (a polled job status, a task card) do not show the
navigation, so they must not pay for it: each value is lazy.
"""

from django.utils.functional import SimpleLazyObject

from portal import access
from portal.models import Notification

SECTIONS = {
    "dashboard": ("dashboard",),
    "initiatives": ("initiative", "phase", "task"),
    "targets": ("target", "finding", "schedule"),
    "jobs": ("job", "run"),
    "departments": ("department",),
    "people": ("people", "person", "membership"),
    "audit": ("audit",),
    "status": ("status",),
    "inbox": ("inbox",),
    "runbooks": ("runbook",),
    "training": ("training",),
}


def _unread(user) -> int:
    # portal.backends.KaizenBackend loads it with the user; count only otherwise.
    if hasattr(user, "unread_notifications"):
        return user.unread_notifications

    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)
    url_name = (match.url_name or "") if match else ""
    section = next(
        (
            name
            for name, prefixes in SECTIONS.items()
            if any(url_name.startswith(prefix) for prefix in prefixes)
        ),
        "",
    )
    return {
        "nav_section": section,
        "nav_can_audit": SimpleLazyObject(lambda: access.can_view_audit(user)),
        "nav_roles": SimpleLazyObject(lambda: access.roles_of(user)),
        "nav_unread": SimpleLazyObject(lambda: _unread(user)),
    }
