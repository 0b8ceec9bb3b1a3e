"""Every URL the pages fetch with htmx, opened directly (a copied link, a new tab),
gives a whole page — never a bare, unstyled fragment."""

import datetime

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from departments.models import Department, Runbook, Topic, TrainingModule
from departments.runbook_templates import ensure_topics
from optimizations.models import Initiative, Phase, PhaseTask, TargetService
from portal.demo import DEMO_TARGET_SLUG, load_demo
from tests.conftest import PASSWORD
from tests.factories import benchmark_job

# Doors for programs, not people: JSON, OTLP, the admin.
NOT_PAGES = ("admin/", "api/", "otlp/")


def routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield prefix + str(pattern.pattern), pattern


def arguments(route, objects):
    """Values for a route's parameters, taken from the demo's objects."""
    first = route.split("/")[0]
    pks = {
        "initiatives": objects["initiative"].pk,
        "portfolio": objects["initiative"].pk,
        "phases": objects["phase"].pk,
        "tasks": objects["task"].pk,
        "jobs": objects["job"].pk,
        "runs": objects["job"].run_id,
    }
    slugs = {
        "targets": objects["target"].slug,
        "portfolio": objects["target"].slug,
        "runbooks": objects["runbook"].slug,
        "training": objects["module"].slug,
    }
    values = {
        "pk": pks.get(first, 1),
        "slug": slugs.get(first, "x"),
        "kind": "benchmark",
        "fmt": "csv",
        "code": Department.DEV,
        "index": 0,
        "number": 1,
        "name": "x",
        "trace_id": "x",
        "action_pk": 1,
    }
    return {name: values[name] for name in _names(route)}


def _names(route):
    return [part.split(">")[0].split(":")[-1] for part in route.split("<")[1:]]


@pytest.fixture
def demo(departments):
    ensure_topics(Topic)
    load_demo(PASSWORD, "http://127.0.0.1:9")
    target = TargetService.objects.get(slug=DEMO_TARGET_SLUG)
    initiative = Initiative.objects.get(target=target)
    phase = Phase.objects.filter(initiative=initiative).order_by("number").first()
    job = benchmark_job(
        target,
        finished=timezone.now() - datetime.timedelta(hours=1),
        initiative=initiative,
        per_second={"p95_ms": [100.0, 110.0], "achieved": [50.0, 51.0]},
    )
    return {
        "target": target,
        "initiative": initiative,
        "phase": phase,
        "task": PhaseTask.objects.filter(phase=phase).first(),
        "job": job,
        "runbook": Runbook.objects.order_by("pk").first(),
        "module": TrainingModule.objects.order_by("pk").first(),
    }


def test_every_page_url_opened_directly_is_a_whole_page(client, demo):
    client.login(username="dev.manager", password=PASSWORD)
    bare = []
    checked = 0
    for route, pattern in routes(get_resolver().url_patterns):
        if route.startswith(NOT_PAGES) or pattern.name == "logout":
            continue
        url = reverse(pattern.name, kwargs=arguments(route, demo))
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response["Content-Type"]:
            continue
        checked += 1
        if not response.content.lstrip().lower().startswith(b"<!doctype html>"):
            bare.append(url)
    assert checked > 40
    assert not bare, bare
