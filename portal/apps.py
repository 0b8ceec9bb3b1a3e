from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from portal import checks  # noqa: F401 - registers the system checks
        from portal.language import remember_at_login

        user_logged_in.connect(remember_at_login, dispatch_uid="portal.language")
