"""Builders for runbooks and training, on top of the suite's personas."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from departments import actions
from departments.models import Runbook, Topic, TrainingModule
from departments.runbook_templates import ensure_topics

QUIZ = """\
? Which pool setting opens connections beyond pool_size?
- pool_timeout
+ max_overflow
- pool_recycle
> max_overflow: extra connections opened under load.

? Where may you load test without approval?
+ Staging
+ The demo target
- Production
"""


@pytest.fixture
def topics(db):
    # A transactional test flushes what the data migration created; put it back.
    ensure_topics(Topic)
    return {topic.slug: topic for topic in Topic.objects.all()}


@pytest.fixture
def make_runbook(db, departments, topics, hr_editor):
    def make(title="Connection-pool exhaustion", body="# Steps\n\n1. Look.\n", **fields):
        fields.setdefault("owner_department", departments["hr"])
        fields.setdefault("owner", hr_editor)
        fields.setdefault("status", Runbook.PUBLISHED)
        fields["topics"] = [topics[slug] for slug in fields.pop("topic_slugs", [])]
        return actions.do_create_runbook(
            fields.pop("actor", hr_editor), title=title, body=body, **fields
        )

    return make


@pytest.fixture
def runbook(make_runbook, target):
    return make_runbook(targets=[target], topic_slugs=["connection-pool-exhaustion"])


@pytest.fixture
def make_module(db, departments, hr_editor):
    def make(title="Load testing safely", **fields):
        fields.setdefault("content", "Read the runbook, then answer.")
        fields.setdefault("quiz", QUIZ)
        fields.setdefault("pass_mark", 80)
        fields.setdefault("status", TrainingModule.PUBLISHED)
        fields.setdefault("owner_department", departments["hr"])
        return actions.do_create_module(hr_editor, title=title, **fields)

    return make


@pytest.fixture
def module(make_module):
    return make_module()


def days(n: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=n)


@pytest.fixture
def queries_of():
    """How many queries a GET of ``url`` costs now: the baseline a bigger data set must keep."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(client, url, data=None) -> int:
        client.get(url, data)  # warm the session and any per-process caches first
        with CaptureQueriesContext(connection) as context:
            assert client.get(url, data).status_code == 200
        return len(context)

    return count
