from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from portal import demo_target, hooks
        from portal.celery import app as celery_app
        from portal.language import remember_at_login
        from portal.workerbeat import Heartbeat

        from . import checks  # noqa: F401 - registers the system checks

        hooks.register("target_written", demo_target.reseed_after_writes)
        user_logged_in.connect(remember_at_login, dispatch_uid="portal.language")
        # Each worker writes its heartbeat row (the status page reads it); read when a
        # worker builds itself, after Django is set up.
        celery_app.steps["worker"].add(Heartbeat)
