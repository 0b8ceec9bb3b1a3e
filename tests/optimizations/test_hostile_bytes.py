"""A target that answers garbage: NUL bytes and invalid UTF-8 never break storage.

PostgreSQL refuses NUL in text and JSONB, and no driver encodes a lone
surrogate; these used to fail the log write and the result store, and the
job ended much later as "worker lost" with an empty log. Run on PostgreSQL
(``DATABASE_URL=postgres://…``) as well as SQLite: CI runs both.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from optimizations.analyzers.cleantext import REPLACEMENT, clean_json, clean_text
from optimizations.jobs import runner
from optimizations.models import Finding, Job, JobLog, Measurement, Run

pytestmark = pytest.mark.django_db(transaction=True)

BAD = "nul\x00 and a lone surrogate \ud800"
# JSON escapes: json.loads makes a NUL and a lone surrogate of them.
OPENAPI = (
    b'{"openapi": "3.1.0", "info": {"title": "Garbage\\u0000 API"}, "paths": {'
    b'"/items": {"get": {"summary": "list\\u0000 \\udc80 items"}},'
    b'"/x\\u0000y": {"get": {"summary": "a path with a NUL"}}}}'
)


class GarbageTarget:
    """Answers NUL bytes and invalid UTF-8 everywhere; its health endpoint fails."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/openapi.json":
                    return self._send(200, OPENAPI)
                if self.path == "/health":
                    return self._send(500, b"\x00\x00down\xff\xfe\x00 \xc3\x28")
                if self.path == "/metrics":
                    return self._send(200, b'db_pool_size{x="\x00"} 5\n\xff\x00garbage 1\n')
                return self._send(200, b"\x00\xff\xfe\xfd garbage \x00\x00")

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def garbage(target):
    server = GarbageTarget()
    target.base_url = server.url
    target.metrics_path = "/metrics"
    target.save()
    yield target
    server.close()


def test_clean_text_replaces_nul_and_lone_surrogates_and_keeps_the_rest():
    assert clean_text("plain") == "plain"
    assert clean_text("a\x00b") == f"a{REPLACEMENT}b"
    assert clean_text("ok é 😀 \ud800!") == f"ok é 😀 {REPLACEMENT}!"
    document = {"k\x00": ["x", ("\udc80", 1)], "n": None, "b": b"\x00\xff"}
    assert clean_json(document) == {
        f"k{REPLACEMENT}": ["x", [REPLACEMENT, 1]],
        "n": None,
        "b": f"{REPLACEMENT}{REPLACEMENT}",
    }
    clean = {"a": ["b", {"c": 1}]}
    assert clean_json(clean) is clean  # nothing to clean: not copied


def test_every_write_path_stores_hostile_text(target):
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(run=run, kind="probe", target=target, params={"p": BAD})
    JobLog.objects.bulk_create([JobLog(job=job, seq=1, at=timezone.now(), message=BAD)])
    now = timezone.now()
    Finding.objects.bulk_create(
        [
            Finding(
                target=target,
                source="probe",
                rule_id="r\x00",
                severity="high",
                category="x",
                title=BAD,
                location=BAD,
                evidence={"body": BAD, BAD: [BAD]},
                fix_hint=BAD,
                fingerprint="f" * 64,
                first_seen_at=now,
                last_seen_at=now,
            )
        ]
    )
    Measurement.objects.create(
        target=target, job=job, name="m", value=1, unit="ms", labels={"op": BAD}, measured_at=now
    )
    Job.objects.filter(pk=job.pk).update(summary={"body": BAD}, step=BAD)
    assert job.fail(BAD)  # the error a person reads, quoting what the target said
    job.refresh_from_db()
    for text in (job.error, job.step, job.summary["body"], job.params["p"]):
        assert "\x00" not in text and REPLACEMENT in text
    assert JobLog.objects.get(job=job).message == clean_text(BAD)
    finding = Finding.objects.get(target=target)
    assert finding.evidence == {"body": clean_text(BAD), clean_text(BAD): [clean_text(BAD)]}
    assert Measurement.objects.get(job=job).labels == {"op": clean_text(BAD)}


def test_a_probe_of_a_target_answering_garbage_ends_with_a_verdict_and_its_log(garbage):
    run = Run.objects.create(target=garbage, mode="custom")
    job = Job.objects.create(
        run=run, kind="probe", target=garbage, params={"timeout": 2, "requests_per_operation": 1}
    )
    outcome = runner.execute(job.pk, "test-worker")
    job.refresh_from_db()
    assert (outcome, job.status, job.verdict) == ("succeeded", Job.SUCCEEDED, "fail"), job.error
    lines = list(JobLog.objects.filter(job=job).values_list("message", flat=True))
    assert len(lines) == job.log_lines and len(lines) >= 4
    assert any(f"list{REPLACEMENT} {REPLACEMENT} items" in line for line in lines)
    assert not any("\x00" in line for line in lines)
    failing = Finding.objects.get(target=garbage, rule_id="probe.health_failing")
    assert "down" in failing.evidence["body"] and "\x00" not in failing.evidence["body"]
    assert json.dumps(job.summary).count("\\u0000") == 0
    assert job.summary["openapi"]["title"] == f"Garbage{REPLACEMENT} API"
