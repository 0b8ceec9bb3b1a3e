"""The Celery app. Settings come from Django's, under the CELERY_ prefix."""

import os

from celery import Celery

from portal import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# filesystem:// (the embedded broker) means Kaizen's hardened transport: an
# atomic writer and a reader that sets torn messages aside (portal/broker.py).
broker.install()

app = Celery("kaizen")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
