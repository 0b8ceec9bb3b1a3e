from django.apps import AppConfig

from portal import hooks


class DepartmentsConfig(AppConfig):
    name = "departments"
    verbose_name = "Departments"

    def ready(self):
        # Registration, Django's documented place for it: the optimization work calls
        # these hooks without importing departments' actions (portal/hooks.py).
        from departments import actions

        hooks.register("phase_done", actions.flag_runbooks_for_review)
        hooks.register("postmortem_template_needed", actions.create_postmortem_runbook)
