"""Write-path load from OpenAPI: generated bodies, bulk batch sizes, only where writes are allowed.

The catalogue on loopback (journey_server.py) validates every body against the
schema it publishes and refuses duplicates of its unique SKU, and counts what it
refused: a generated body it rejects, or a load that collides with itself, shows.
"""

import pytest

from optimizations.analyzers.base import LocalContext, TargetSpec
from optimizations.analyzers.loadgen import bodies, run
from optimizations.analyzers.loadgen import scenario as scenarios
from tests.analyzers.journey_server import ITEM, OPENAPI, JourneyServer, item_problem


@pytest.fixture(scope="module")
def shop():
    running = JourneyServer()
    yield running
    running.stop()


def target_for(shop, allows_writes=True):
    return TargetSpec(
        name="catalogue",
        base_url=shop.url,
        health_path="/__stats",
        max_rate=500,
        allows_writes=allows_writes,
    )


def quiet(message, level="info"):
    pass


# -- the generator ------------------------------------------------------------------------


def test_bodies_are_valid_by_the_schema_and_the_same_for_the_same_seed():
    first = bodies.draw(OPENAPI, ITEM, 5, seed=7)
    assert len(first) == 5 and len({repr(b) for b in first}) == 5
    assert [item_problem(body) for body in first] == [""] * 5  # no unknown keys either
    assert bodies.draw(OPENAPI, ITEM, 5, seed=7) == first
    assert bodies.draw(OPENAPI, ITEM, 5, seed=8) != first


def test_free_strings_end_unique_and_constrained_ones_stay_as_drawn():
    schema = {
        "type": "object",
        "properties": {
            "sku": {"type": "string"},
            "colour": {"type": "string", "enum": ["red"]},
            "code": {"type": "string", "maxLength": 8},
            "email": {"type": "string", "format": "email"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    value = {"sku": "a", "colour": "red", "code": "b", "email": "c@d.e", "tags": ["x"], "n": "y"}
    assert bodies.uniquify({}, value, schema, "-${journey}") == {
        "sku": "a-${journey}",
        "colour": "red",
        "code": "b",
        "email": "c@d.e",
        "tags": ["x-${journey}"],
        "n": "y",
    }


def test_bulk_endpoints_are_recognised_by_their_body():
    paths = OPENAPI["paths"]
    bulk = bodies.bulk_shape(
        OPENAPI,
        "/items/bulk",
        paths["/items/bulk"]["post"],
        bodies.json_schema(OPENAPI, paths["/items/bulk"]["post"]),
    )
    assert bulk is not None and bulk.prop == "" and bulk.max_items == 1000
    single = paths["/items"]["post"]
    assert bodies.bulk_shape(OPENAPI, "/items", single, bodies.json_schema(OPENAPI, single)) is None
    wrapped = {
        "type": "object",
        "properties": {"note": {"type": "string"}, "rows": {"type": "array", "items": ITEM}},
    }
    shape = bodies.bulk_shape(OPENAPI, "/imports/batch", {}, wrapped)
    assert shape is not None and shape.prop == "rows"
    assert bodies.bulk_shape(OPENAPI, "/imports", {}, wrapped) is None


# -- the scenario ---------------------------------------------------------------------------


def test_without_writes_allowed_the_scenario_stays_get_only_and_says_so(shop):
    ctx = LocalContext()
    operations = scenarios.build(target_for(shop), {"timeout": 2.0}, ctx.log)
    assert {op.name for op in operations} == {"GET /items", "GET /items/{item_id}"}
    assert any("write operations (POST, PUT, PATCH) left out" in m for _, m in ctx.logs)


def test_with_writes_allowed_each_write_gets_bodies_and_bulk_one_operation_per_size(shop):
    params = {"timeout": 2.0, "allow_writes": True, "seed": 3}
    operations = {op.name: op for op in scenarios.build(target_for(shop), params, quiet)}
    assert set(operations) == {
        "GET /items",
        "GET /items/{item_id}",
        "POST /items",
        "PATCH /items/{item_id}",
        "POST /items/bulk ×10",
        "POST /items/bulk ×100",
        "POST /items/bulk ×1000",
    }
    posts = operations["POST /items"].requests
    assert len(posts) == bodies.BODY_VARIANTS
    assert all(r["body"]["sku"].endswith("-${journey}") for r in posts)
    for size in (10, 100, 1000):
        (request,) = operations[f"POST /items/bulk ×{size}"].requests
        assert len(request["body"]) == size
        assert len({element["sku"] for element in request["body"]}) == size
    again = {op.name: op for op in scenarios.build(target_for(shop), params, quiet)}
    assert again["POST /items"].requests == posts


def test_a_load_test_with_writes_sends_valid_unique_bodies_and_every_batch_size(shop):
    before = shop.stats()
    result = run(
        target_for(shop),
        {
            "mode": "load",
            "rate": 60,
            "duration": 1.5,
            "allow_writes": True,
            "weights": {"POST /items": 4, "PATCH /items/{item_id}": 2},
            "cpu": "none",
        },
        LocalContext(),
    )
    after = shop.stats()
    by_name = {op["name"]: op for op in result.summary["operations"]}
    # The server refused nothing: every body valid, no SKU sent twice (not even in a rerun).
    assert after["refused"] == before["refused"]
    posted = after["requests"]["POST /items"] - before["requests"].get("POST /items", 0)
    assert posted == by_name["POST /items"]["ok"] > 0
    assert by_name["PATCH /items/{item_id}"]["ok"] > 0
    assert sorted(set(after["batches"][len(before["batches"]) :])) == [10, 100, 1000]
    assert all(op["error_rate"] == 0 for op in result.summary["operations"])


def test_a_load_test_without_writes_allowed_sends_no_write(shop):
    before = shop.stats()
    run(
        target_for(shop), {"mode": "load", "rate": 40, "duration": 1, "cpu": "none"}, LocalContext()
    )
    after = shop.stats()
    writes = {k for k in after["requests"] if not k.startswith("GET")}
    assert all(after["requests"][k] == before["requests"].get(k, 0) for k in writes)


def test_a_target_spec_that_forbids_writes_wins_over_the_parameter(shop):
    ctx = LocalContext()
    spec = target_for(shop, allows_writes=False)  # the target's own setting, as passed
    operations = scenarios.build(spec, {"timeout": 2.0, "allow_writes": True}, ctx.log)
    assert {op.name for op in operations} == {"GET /items", "GET /items/{item_id}"}
    assert any("this target does not allow writes: GET only" in m for _, m in ctx.logs)


def test_ids_in_a_body_refer_to_things_that_exist():
    known = {"category_id": ["c1", "c2"], "item_id": [7]}

    def ids(field):
        return known.get(field, [])

    body = {"category_id": "random", "lines": [{"item_id": 99, "qty": 1}], "owner_id": "x"}
    assert bodies.reference(body, ids, 1) == {
        "category_id": "c2",
        "lines": [{"item_id": 7, "qty": 1}],
        "owner_id": "x",  # nothing to read its ids from: as drawn
    }


def test_an_oauth2_login_is_left_to_scripted_scenarios():
    doc = {
        "components": {
            "securitySchemes": {
                "bearer": {"type": "oauth2", "flows": {"password": {"tokenUrl": "auth/token"}}}
            }
        }
    }
    assert bodies.login_paths(doc) == {"/auth/token"}
    logged = []
    make = bodies.write_bodies(doc, seed=1, log=lambda m, level="info": logged.append(m))
    assert make("/auth/token", "post", {}) == []
    assert "log in from a scripted scenario" in logged[0]


def test_unbounded_values_stay_ordinary_in_a_load():
    schema = {
        "type": "object",
        "required": ["n", "x", "s"],
        "properties": {
            "n": {"type": "integer"},
            "x": {"type": "number"},
            "s": {"type": "string"},
            "big": {"type": "integer", "minimum": 2**40},
        },
    }
    drawn = bodies.draw({}, schema, 20, seed=5)
    assert len(drawn) == 20
    for body in drawn:
        assert -(2**31) <= body["n"] < 2**31 and abs(body["x"]) <= 1e9 and len(body["s"]) <= 64
        # A bound the schema sets itself is kept, not replaced.
        assert "big" not in body or body["big"] >= 2**40


def test_codes_with_a_pattern_or_a_tight_max_length_are_made_unique_within_the_schema():
    # The demo shop's fixed twin: sku is ^[A-Za-z0-9-]+$ and at most 32 characters, unique.
    sku = {"type": "string", "minLength": 1, "maxLength": 32, "pattern": "^[A-Za-z0-9-]+$"}
    long_one = "A" * 30
    assert bodies.uniquify({}, "AB-1", sku, "-${journey}") == "AB-1-${journey}"
    shortened = bodies.uniquify({}, long_one, sku, "-${journey}")
    assert shortened == "A" * (32 - bodies.SUFFIX_ROOM) + "-${journey}"
    for rendered in ("-0-0", "-7-123-45", bodies.RENDERED_SUFFIX):
        text = shortened.replace("-${journey}", rendered)
        assert len(text) <= 32 and bodies._accepts(sku["pattern"], text)
    # A pattern the suffix cannot satisfy, or no room at all: left as drawn, never invalid.
    digits = {"type": "string", "pattern": "^[0-9]+$"}
    assert bodies.uniquify({}, "123", digits, "-${journey}") == "123"
    tiny = {"type": "string", "maxLength": 10}
    assert bodies.uniquify({}, "abc", tiny, "-${journey}") == "abc"
    unreadable = {"type": "string", "pattern": "(?<=x"}
    assert bodies.uniquify({}, "abc", unreadable, "-${journey}") == "abc"
