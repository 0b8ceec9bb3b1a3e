from django.apps import AppConfig

from portal import hooks


class OptimizationsConfig(AppConfig):
    name = "optimizations"
    verbose_name = "Optimizations"

    def ready(self):
        # Registration, Django's documented place for it: the plan (work/) calls these
        # hooks without importing the job machinery that sits above it (portal/hooks.py).
        from optimizations.jobs import schedules, sentinel

        hooks.register("initiative_done", sentinel.arm)
        hooks.register("target_created", schedules.create_default_schedules)
