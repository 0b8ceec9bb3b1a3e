"""Values every page's layout needs."""

from portal import access


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)
    url_name = match.url_name if match else ""
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
        "nav_can_audit": access.can_view_audit(user),
        "nav_roles": access.roles_of(user),
    }


SECTIONS = {
    "dashboard": ("dashboard",),
    "initiatives": ("initiative", "phase", "task"),
    "targets": ("target",),
    "departments": ("department",),
    "people": ("people", "person", "membership"),
    "audit": ("audit",),
}
