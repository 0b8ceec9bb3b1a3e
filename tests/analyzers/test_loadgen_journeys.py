"""Scripted scenarios: the YAML file's checks, and journeys run by the real engine.

The engine runs as its own process against a small order shop on loopback
(journey_server.py) that counts what it received, so every claim about what a
journey sent — the token carried into later steps, the order id read back and
cancelled, the typed body — is checked on the server's side.
"""

from pathlib import Path

import pytest

from optimizations.analyzers.base import AnalysisError, LocalContext, TargetSpec
from optimizations.analyzers.loadgen import run
from optimizations.analyzers.loadgen.journeys import (
    merge_journeys,
    parse_json_path,
    render_body,
    render_text,
)
from optimizations.analyzers.loadgen.runner import available_cpus, run_engines
from optimizations.analyzers.loadgen.script import ScriptError, engine_journeys, parse
from tests.analyzers.journey_server import JourneyServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "shop_journey.yaml"

SHOP = """\
name: shop
variables:
  username: qa
  password: pw
  item: 7
journeys:
  - name: buy
    steps:
      - name: log in
        method: POST
        path: /auth/token
        body: {username: "${username}", password: "${password}"}
        expect: 200
        extract: {token: $.access_token}
      - name: create order
        method: POST
        path: /orders
        headers: {Authorization: "Bearer ${token}"}
        body: {item_id: "${item}", quantity: 2, note: "j-${journey}"}
        expect: 201
        extract:
          order_id: $.id
          location: {header: Location}
      - name: read order
        path: ${location}
        headers: {Authorization: "Bearer ${token}"}
        extract: {status: $.status}
      - name: cancel order
        method: POST
        path: /orders/${order_id}/cancel
        headers: {Authorization: "Bearer ${token}"}
        expect: [200]
"""


@pytest.fixture(scope="module")
def shop():
    running = JourneyServer()
    yield running
    running.stop()


def engine_config(port, text, **extra):
    script = parse(text)
    config = {
        "host": "127.0.0.1",
        "port": port,
        "requests": [],
        "journeys": engine_journeys(script),
        "variables": script.variables,
        "model": "open",
        "rate": 80,
        "duration": 1,
        "timeout": 2,
        "grace": 2,
        "connections": 4,
        "max_connections": 32,
    }
    config.update(extra)
    return config


def drive(config):
    return run_engines(config, LocalContext(), cpu="none").result


def delta(before, after, key):
    return after["requests"].get(key, 0) - before["requests"].get(key, 0)


# -- the file's checks ------------------------------------------------------------------


def test_a_yaml_syntax_error_names_its_line():
    with pytest.raises(ScriptError, match=r"line 3, column 11: .*cannot start any token"):
        parse("steps:\n  - path: /x\n    body: @x\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "journeys:\n  - name: a\n    steps:\n      - path: /x\n        bdy: 1\n",
            r"line 4: unknown key 'bdy' in journey 'a', step 1 \(GET /x\)",
        ),
        (
            "steps:\n  - path: /orders/${order_id}\n",
            r"line 2: .* uses \$\{order_id\}, which no earlier step extracts",
        ),
        ("steps:\n  - path: /x\n    expect: ok\n", r"line 2: .*expect is a status code"),
        (
            "steps:\n  - path: /x\n    extract: {id: id}\n",
            r"line 3: .*id: a JSON path starts with \$",
        ),
        ("steps:\n  - path: /x\n    extract: {id: $.a..b}\n", r"cannot read the JSON path"),
        ("steps:\n  - path: x\n", r"path must start with /"),
        ("steps:\n  - path: /x\n    think: [2, 1]\n", r"least first"),
        (
            "journeys:\n  - {name: a, steps: [{path: /x}]}\n  - {name: a, steps: [{path: /y}]}\n",
            r"the name 'a' is used twice",
        ),
        ("steps:\n  - path: /x\n  - path: /x\n", r"two steps are named 'GET /x'"),
        ("- {path: /x}\n", r"a mapping with journeys: \(or steps:\)"),
    ],
)
def test_a_bad_file_is_refused_with_a_readable_reason(text, message):
    with pytest.raises(ScriptError, match=message):
        parse(text)


def test_a_value_used_before_the_step_that_extracts_it_is_refused():
    text = SHOP.replace("path: /orders/${order_id}/cancel", "path: /orders/x").replace(
        "path: ${location}", "path: /orders/${order_id}/${status}"
    )
    with pytest.raises(ScriptError, match=r"uses \$\{status\}"):
        parse(text)


def test_the_shorthand_steps_make_one_journey_and_names_join_journey_and_step():
    script = parse("name: quick\nsteps:\n  - {name: home, path: /}\n  - {path: /about}\n")
    assert [j["name"] for j in script.journeys] == ["quick"]
    assert script.operations() == ["quick › home", "quick › GET /about"]


def test_templates_fill_values_keeping_types_in_bodies_and_encoding_paths():
    values = {"n": 7, "name": "a b/c?", "flag": True}
    assert render_body({"n": "${n}", "s": "x${n}", "f": "${flag}"}, values) == {
        "n": 7,
        "s": "x7",
        "f": True,
    }
    assert render_text("/q/${name}", values, in_path=True) == "/q/a%20b/c%3F"
    assert parse_json_path("$.items[0].id") == ["items", 0, "id"]


def test_the_target_credentials_go_on_steps_that_do_not_set_the_header():
    journeys = engine_journeys(
        parse(SHOP), base_path="/api", auth_header=("authorization", "Bearer secret")
    )
    first, second = journeys[0]["steps"][:2]
    assert first["path"] == "/api/auth/token"
    assert first["headers"]["authorization"] == "Bearer secret"
    assert second["headers"] == {"Authorization": "Bearer ${token}"}


def test_the_example_file_is_a_valid_scenario():
    script = parse(EXAMPLE.read_text())
    labels = [step["label"] for step in script.journeys[0]["steps"]]
    assert labels == ["log in", "browse items", "create order", "read order", "cancel order"]
    assert script.journeys[0]["steps"][0]["path"] == "/auth/token"
    assert [journey["weight"] for journey in script.journeys] == [2.0, 1.0]


# -- journeys on the wire ----------------------------------------------------------------


def test_a_journey_carries_values_from_each_answer_into_the_next_request(shop):
    before = shop.stats()
    result = drive(engine_config(shop.port, SHOP))
    after = shop.stats()
    (journey,) = result["journeys"]
    assert journey["started"] > 10
    # Every journey is accounted for: done, failed, or cut by the end of the test.
    assert journey["started"] == journey["completed"] + journey["failed"] + journey["unfinished"]
    assert journey["failed"] == 0, journey["failures"]
    created = delta(before, after, "POST /orders")
    # The token worked (no 401), the order id and Location header were read back.
    assert delta(before, after, "POST /auth/token") == journey["started"]
    assert delta(before, after, "GET /orders/{id}") == journey["completed"]
    assert delta(before, after, "POST /orders/{id}/cancel") == journey["completed"]
    new_orders = [o for key, o in after["orders"].items() if key not in before["orders"]]
    assert len(new_orders) == created
    assert sum(o["status"] == "cancelled" for o in new_orders) == journey["completed"]
    # A body value that is exactly ${item} keeps its type; ${journey} is unique per journey.
    assert {o["item_id"] for o in new_orders} == {7}
    notes = [o["note"] for o in new_orders]
    assert len(set(notes)) == len(notes) and all(n.startswith("j-") for n in notes)
    # The per-step figures: one operation per step, in order, each with its own counts.
    names = [op["name"] for op in result["operations"]]
    assert names == ["buy › log in", "buy › create order", "buy › read order", "buy › cancel order"]
    by_name = {op["name"]: op for op in result["operations"]}
    assert by_name["buy › create order"]["ok"] == created
    assert by_name["buy › log in"]["ok"] == journey["started"]


def test_a_step_answered_with_another_status_stops_its_journey(shop):
    before = shop.stats()
    result = drive(engine_config(shop.port, SHOP.replace("password: pw", "password: wrong")))
    after = shop.stats()
    (journey,) = result["journeys"]
    assert journey["completed"] == 0 and journey["failed"] == journey["started"] > 0
    assert journey["failures"] == {"buy › log in: status 401": journey["failed"]}
    assert delta(before, after, "POST /orders") == 0
    login = result["operations"][0]
    assert login["errors"]["non_2xx"] == journey["started"] and login["status"] == {
        "401": journey["started"]
    }


def test_an_expected_non_2xx_status_counts_as_answered_well(shop):
    # Cancelling twice: the second answer is 409, which this step expects.
    text = SHOP + (
        "      - name: cancel again\n        method: POST\n"
        "        path: /orders/${order_id}/cancel\n"
        '        headers: {Authorization: "Bearer ${token}"}\n        expect: 409\n'
    )
    result = drive(engine_config(shop.port, text))
    (journey,) = result["journeys"]
    assert journey["failed"] == 0 and journey["completed"] > 0
    again = result["operations"][-1]
    assert again["name"] == "buy › cancel again"
    assert again["errors"]["non_2xx"] == 0 and again["ok"] == journey["completed"]


def test_a_missing_value_to_extract_fails_the_journey_naming_it(shop):
    before = shop.stats()
    result = drive(engine_config(shop.port, SHOP.replace("order_id: $.id", "order_id: $.ident")))
    after = shop.stats()
    (journey,) = result["journeys"]
    assert journey["completed"] == 0 and journey["failed"] > 0
    (reason,) = journey["failures"]
    assert reason == "buy › create order: $.ident is not in the answer (201)"
    assert delta(before, after, "GET /orders/{id}") == 0


def test_latency_of_a_step_counts_from_its_intended_time_after_the_think_time(shop):
    # 300 ms of thinking between the steps: a step's latency counts from the end of the
    # think time (its intended send), so it stays far below the think time itself.
    text = "variables: {username: qa, password: pw}\n" + (
        "steps:\n"
        "  - {name: log in, method: POST, path: /auth/token, think: 0.3,\n"
        '     body: {username: "${username}", password: "${password}"},\n'
        "     extract: {token: $.access_token}}\n"
        "  - {name: create, method: POST, path: /orders, body: {item_id: 1},\n"
        '     headers: {Authorization: "Bearer ${token}"}}\n'
    )
    result = drive(engine_config(shop.port, text, rate=40, duration=1.5))
    (journey,) = result["journeys"]
    create = result["operations"][1]
    assert create["ok"] == journey["completed"] > 0
    assert create["latency"]["max"] < 250_000  # µs: well under the 300 ms think time
    # Journeys whose next step fell after the end were cut, not counted as failures.
    assert journey["unfinished"] > 0 and journey["failed"] == 0
    durations = journey["duration"]
    assert durations["sum"] / journey["completed"] >= 300_000


def test_two_engines_merge_their_journeys():
    one = {
        "name": "a",
        "weight": 1.0,
        "steps": ["a › x"],
        "started": 3,
        "completed": 2,
        "failed": 1,
        "unfinished": 0,
        "failures": {"a › x: status 500": 1},
        "duration": {"counts": [[5, 2]], "sum": 10, "max": 6},
    }
    two = {
        **one,
        "failures": {"a › x: timeout": 1},
        "duration": {"counts": [[5, 1]], "sum": 5, "max": 5},
    }
    (merged,) = merge_journeys([[one], [two]])
    assert merged["started"] == 6 and merged["failed"] == 2
    assert merged["failures"] == {"a › x: status 500": 1, "a › x: timeout": 1}
    assert merged["duration"] == {"counts": [[5, 3]], "sum": 15, "max": 6}


# -- the benchmark analyzer ---------------------------------------------------------------


def target_for(shop):
    return TargetSpec(name="shop", base_url=shop.url, health_path="/__stats", max_rate=500)


def test_the_load_test_runs_a_scenario_file_with_per_step_and_journey_figures(shop):
    ctx = LocalContext()
    result = run(
        target_for(shop),
        {"mode": "load", "rate": 60, "duration": 1, "scenario": SHOP, "cpu": "none"},
        ctx,
    )
    summary = result.summary
    assert summary["scripted"] is True
    assert [op["name"] for op in summary["operations"]][:2] == [
        "buy › log in",
        "buy › create order",
    ]
    (journey,) = summary["journeys"]
    assert journey["completed"] > 0 and journey["failure_rate"] == 0.0
    assert journey["duration_ms"]["p95"] > 0
    assert summary["journey_rate"] == pytest.approx(60 / 4)
    assert any("journeys start at rate ÷ 4 steps" in message for _, message in ctx.logs)
    checks = {check.check_id: check.status for check in result.checks}
    assert checks["benchmark.journey_failures"] == "passed"
    assert not [f for f in result.findings if f.rule_id == "benchmark.journey_failures"]


def test_failing_journeys_are_a_finding_that_names_the_step(shop):
    result = run(
        target_for(shop),
        {
            "mode": "load",
            "rate": 40,
            "duration": 1,
            "scenario": SHOP.replace("password: pw", "password: no"),
            "cpu": "none",
        },
        LocalContext(),
    )
    (finding,) = [f for f in result.findings if f.rule_id == "benchmark.journey_failures"]
    assert "buy › log in: status 401" in finding.title
    assert finding.category == "reliability"


def test_a_scripted_scenario_is_refused_in_the_closed_model(shop):
    with pytest.raises(AnalysisError, match="runs in the open model"):
        run(target_for(shop), {"mode": "closed", "scenario": SHOP, "duration": 1}, LocalContext())


def test_a_bad_scenario_file_fails_the_job_before_anything_is_sent(shop):
    before = shop.stats()
    with pytest.raises(AnalysisError, match=r"line 2: .*uses \$\{nope\}"):
        run(
            target_for(shop),
            {"mode": "load", "rate": 10, "duration": 1, "scenario": "steps:\n  - path: /${nope}\n"},
            LocalContext(),
        )
    assert shop.stats()["requests"] == before["requests"]


def test_two_engine_processes_share_the_journeys_and_merge_their_tallies(shop):
    before = shop.stats()
    config = engine_config(shop.port, SHOP, rate=80, duration=1)
    output = run_engines(config, LocalContext(), cpu="none", workers=2)
    after = shop.stats()
    result = output.result
    (journey,) = result["journeys"]
    assert result["workers"] == min(2, len(available_cpus()))
    assert journey["started"] == delta(before, after, "POST /auth/token") > 10
    assert journey["failed"] == 0, journey["failures"]
    # ${journey} stays unique across the two processes (their seeds differ).
    new_orders = [o for key, o in after["orders"].items() if key not in before["orders"]]
    notes = [o["note"] for o in new_orders]
    assert len(set(notes)) == len(notes) == delta(before, after, "POST /orders")


def test_a_stress_test_steps_a_scripted_scenario_up_with_per_step_figures(shop):
    result = run(
        target_for(shop),
        {
            "mode": "stress",
            "start_rate": 20,
            "step_factor": 2,
            "step_duration": 1,
            "max_steps": 2,
            "scenario": SHOP,
            "cpu": "none",
        },
        LocalContext(),
    )
    steps = result.summary["steps"]
    assert [step["offered_rate"] for step in steps] == [20, 40]
    for step in steps:
        assert step["operations"][0]["name"] == "buy › log in"
    assert result.summary["journeys"][0]["name"] == "buy"
