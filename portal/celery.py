"""The Celery app. Settings come from Django's, under the CELERY_ prefix."""

import os

from celery import Celery
from celery.signals import worker_init

from portal import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# filesystem:// (the embedded broker) means Kaizen's hardened transport: an
# atomic writer and a reader that sets torn messages aside (portal/broker.py).
broker.install()

app = Celery("kaizen")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _forget_libpq_environment(**kwargs):
    # A target's database is reached only through its checked URL: libpq must not take a
    # host, service or password file from the worker's environment (PGHOST, PGSERVICE…).
    # Kaizen's own database comes from DATABASE_URL, never from PG* variables.
    from optimizations.analyzers.dbscan.connect import clear_libpq_environment

    clear_libpq_environment()
