"""sec.fuzzing: schemathesis's generated requests, sent through the scan's own client,
judged by its checks — against the live test app, with and without the problems."""

import json

from optimizations.analyzers import securityscan
from optimizations.analyzers.base import CHECK_FAILED, CHECK_PASSED, LocalContext, TargetSpec
from tests.analyzers.securityscan_servers import API_KEY, Problems, make_app, serve_app
from tests.analyzers.test_securityscan_checks import keys, only, run_on, status_of

BOTH = ["sec.fuzzing", "sec.negative_testing"]
AUTH = ("X-API-Key", API_KEY)


def outcome(result, check_id):
    [found] = [c for c in result.checks if c.check_id == check_id]
    return found


def test_a_5xx_to_generated_input_is_the_negative_testing_finding_with_a_curl_command():
    problems = Problems(crash_on_bad_cursor=True, bounded_inputs=False)
    result, _ = run_on(problems, BOTH, auth=AUTH, fuzz_cases=20)
    finding = only(result, "sec.negative_testing:GET /widgets")
    assert finding.severity == "medium"
    failure = finding.evidence["failures"][0]
    assert failure["status"].startswith("HTTP/1.1 500")
    assert failure["curl"].startswith("curl -X GET") and "/widgets?" in failure["curl"]
    assert "cursor=" in failure["curl"]
    # The key is masked in the command and everywhere else in the evidence.
    assert "X-API-Key: [redacted]" in failure["curl"]
    assert API_KEY not in json.dumps(finding.evidence)
    # The hand-written cases did not run as well: the fuzzing covered them.
    covered = outcome(result, "sec.negative_testing")
    assert covered.status == CHECK_FAILED and covered.detail.startswith("covered by sec.fuzzing")
    assert status_of(result, "sec.fuzzing") == CHECK_FAILED
    counts = {m.name: m.value for m in result.measurements}
    assert counts["security.negative.server_errors"] >= 1
    assert counts["security.fuzz.cases"] == counts["security.negative.cases"] > 0
    assert result.summary["negative_testing"]["by"] == "sec.fuzzing"


def test_an_undocumented_status_is_a_low_conformance_finding():
    result, _ = run_on(Problems(), BOTH)
    finding = only(result, "sec.fuzzing:conformance:GET /widgets/{widget_id}")
    assert finding.severity == "low" and finding.category == "correctness"
    problems = [f["problem"] for f in finding.evidence["failures"]]
    assert any(p.startswith("Undocumented status code") and "404" in p for p in problems)
    # No 5xx on the app that validates its input: the negative testing part passes.
    assert status_of(result, "sec.negative_testing") == CHECK_PASSED
    assert not keys(result, "sec.negative_testing")


def test_only_safe_methods_unless_the_target_allows_writes():
    result, seen = run_on(Problems(secured_writes=False), ["sec.fuzzing"])
    assert seen.by_method["POST"] == 0
    assert result.summary["fuzzing"]["skipped_writes"] == ["POST /widgets"]
    assert "1 write operations not fuzzed" in outcome(result, "sec.fuzzing").detail
    # The job's parameter alone is not enough: the target's own setting must allow it too.
    result, seen = run_on(Problems(secured_writes=False), ["sec.fuzzing"], allow_writes=True)
    assert seen.by_method["POST"] == 0
    app, seen = make_app(Problems(secured_writes=False))
    with serve_app(app, seen=seen) as running:
        staging = TargetSpec(
            name="staging", base_url=running.base_url, max_rate=1_000, allows_writes=True
        )
        params = {"checks": ["sec.fuzzing"], "html_paths": [], "allow_writes": True}
        result = securityscan.run(staging, params, LocalContext())
    assert seen.by_method["POST"] > 0
    assert result.summary["fuzzing"]["writes"] is True
    assert result.summary["fuzzing"]["skipped_writes"] == []


def test_fuzzing_sends_the_same_requests_for_the_same_seed():
    runs = [run_on(Problems(), ["sec.fuzzing"], seed=seed)[1].lines for seed in (1, 1, 2)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_fuzzing_stays_within_the_request_budget_and_says_it_stopped():
    result, seen = run_on(Problems(), ["sec.fuzzing"], max_requests=8, fuzz_cases=20)
    # The budget counts the OpenAPI document too; the app counts what reached it.
    assert result.summary["requests"] <= 8 and seen.total <= 8
    assert "stopped early" in outcome(result, "sec.fuzzing").detail
