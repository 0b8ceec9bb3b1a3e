"""New since an earlier scan: states by fingerprint, from JSON or SARIF, in SARIF's
baselineState."""

import json

import pytest

from optimizations.analyzers.codescan import scan_path, to_json, to_sarif
from optimizations.analyzers.codescan.since import compare, counts, load_report, mark_sarif

ROUTES = """from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Order

app = FastAPI()


@app.get("/orders")
async def orders(session: AsyncSession):
    result = await session.execute(select(Order.id, Order.total))
    return [dict(row) for row in result]
"""
MODELS = """from sqlalchemy import Column, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    total = Column(Integer)
"""
METADATA = "    metadata = Column(JSONB)\n"


def scan(path, routes=ROUTES, models=MODELS):
    path.mkdir(exist_ok=True)
    (path / "routes.py").write_text(routes)
    (path / "models.py").write_text(models)
    return scan_path(path, ruff=False)


@pytest.fixture
def before_after(tmp_path):
    before = scan(tmp_path / "before")
    after = scan(
        tmp_path / "after",
        routes=ROUTES.replace("return [dict(row)", "return [dict(row._mapping)"),
        models=MODELS + METADATA,
    )
    return before, after


def test_states_new_unchanged_absent_by_fingerprint(before_after):
    before, after = before_after
    earlier = load_report(to_json(before), "scan #7")
    states, absent = compare(after, earlier)
    by_rule = {f.rule_id: states[f.fingerprint("code")] for f in after.findings}
    assert by_rule == {"FSA110": "new"}
    assert [gone["rule_id"] for gone in absent] == ["FSA111"]
    assert counts(states, absent) == {"new": 1, "unchanged": 0, "updated": 0, "absent": 1}
    same_states, same_absent = compare(before, earlier)
    assert set(same_states.values()) == {"unchanged"} and same_absent == []


def test_a_finding_whose_line_moved_is_updated(tmp_path):
    before = scan(tmp_path / "a")
    moved = scan(
        tmp_path / "b", routes=ROUTES.replace("app = FastAPI()\n", "\n\napp = FastAPI()\n")
    )
    states, absent = compare(moved, load_report(to_json(before), "scan #1"))
    assert set(states.values()) == {"updated"} and absent == []


def test_sarif_carries_baseline_state_and_the_gone_findings(before_after):
    before, after = before_after
    earlier = load_report(json.dumps(to_sarif(before)), "before.sarif")
    results = to_sarif(after, earlier)["runs"][0]["results"]
    assert [(r["ruleId"], r["baselineState"]) for r in results] == [
        ("FSA110", "new"),
        ("FSA111", "absent"),
    ]
    assert "baselineState" not in json.dumps(to_sarif(after))


def test_a_report_of_another_kind_is_refused():
    with pytest.raises(ValueError, match="neither"):
        load_report('{"hello": 1}', "other.json")
    with pytest.raises(ValueError, match="not JSON"):
        load_report("<html>", "page.html")


def test_a_stored_sarif_log_is_marked_against_an_earlier_one(tmp_path):
    before = scan(tmp_path / "a")
    moved = scan(
        tmp_path / "b", routes=ROUTES.replace("app = FastAPI()\n", "\n\napp = FastAPI()\n")
    )
    earlier = load_report(json.dumps(to_sarif(before)), "scan #1")
    marked = mark_sarif(to_sarif(moved), earlier)
    assert [r["baselineState"] for r in marked["runs"][0]["results"]] == ["updated"]
    again = mark_sarif(marked, earlier)  # marking twice gives the same log
    assert [r["baselineState"] for r in again["runs"][0]["results"]] == ["updated"]
