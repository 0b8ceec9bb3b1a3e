"""The seed document's own code samples (tests/codescan_corpus/seed, copied verbatim from
the organisation's optimisation guide) produce the findings the guide's patterns call for,
and no high-severity finding that is not one of them."""

from pathlib import Path

import pytest

from optimizations.analyzers.codescan import RULES, scan_path

SEED = Path(__file__).resolve().parents[1] / "codescan_corpus" / "seed"
GUIDE = Path(__file__).resolve().parents[1] / "codescan_corpus" / "guide"

# What the issue lists as the seed's patterns, with where each one sits in the samples.
SEED_PATTERNS = {
    ("models.py", "FSA110"),  # `metadata = Column(JSONB)`: reserved Declarative attribute
    ("queries.py", "FSA111"),  # `[dict(row) for row in result]` on SQLAlchemy 2 rows
    ("monitoring.py", "FSA207"),  # `echo_pool=True,  # 開発時のみ` in the production engine
    ("main.py", "FSA302"),  # the request's bulk payload handed to BackgroundTasks
    ("responses.py", "FSA103"),  # one AsyncSession shared by create_task + gather
    ("main.py", "FSA306"),  # uvloop by event-loop policy at import, no httptools
    ("responses.py", "FSA112"),  # `async with db.stream(...)` on an AsyncSession
}
# True positives beyond the guide's own list (CORS * with credentials, NullPool without a
# pooler, leading-wildcard ILIKE, unbounded page size, OFFSET pages).
OTHER_TRUE = {
    ("main.py", "FSA401"),
    ("main.py", "FSA205"),
    ("queries.py", "FSA107"),
    ("responses.py", "FSA105"),
    ("responses.py", "FSA106"),
}


@pytest.fixture(scope="module")
def seed_result():
    return scan_path(SEED, ruff=False)


def _places(result):
    return {(f.location.rsplit(":", 1)[0], f.rule_id) for f in result.findings}


def test_seed_samples_yield_every_pattern_of_the_guide(seed_result):
    assert _places(seed_result) >= SEED_PATTERNS


def test_seed_samples_yield_no_finding_outside_the_judged_ones(seed_result):
    assert _places(seed_result) == SEED_PATTERNS | OTHER_TRUE


def test_no_high_severity_false_positive_on_the_seed(seed_result):
    high = {
        (f.location.rsplit(":", 1)[0], f.rule_id)
        for f in seed_result.findings
        if f.severity in {"high", "critical"}
    }
    assert high <= SEED_PATTERNS | OTHER_TRUE
    assert high  # the seed has real high-severity defects: metadata, stream, shared session


def test_seed_stream_is_reported_as_the_wrong_api_not_as_blocking(seed_result):
    stream = [f for f in seed_result.findings if f.location.startswith("responses.py:20")]
    assert [f.rule_id for f in stream] == ["FSA112"]
    assert "await db.stream" in stream[0].evidence["detail"]


def test_new_rules_carry_why_doc_link_and_fix():
    for rule_id in ("FSA110", "FSA111", "FSA112", "FSA113", "FSA207", "FSA306", "FSA307"):
        rule = RULES[rule_id]
        assert rule.doc_url.startswith("https://")
        assert rule.why and rule.fix
        assert rule.severity in {"critical", "high", "medium", "low", "info"}


def test_dict_row_is_high_when_sqlalchemy_2_is_pinned_and_medium_when_unknown(seed_result):
    pinned = scan_path(GUIDE, ruff=False, rules=["FSA111"])
    assert {f.severity for f in pinned.findings} == {"high"}
    unknown = [f for f in seed_result.findings if f.rule_id == "FSA111"]
    assert [f.severity for f in unknown] == ["medium"]


def test_dict_row_is_not_checked_on_sqlalchemy_1(tmp_path):
    (tmp_path / "requirements.txt").write_text("sqlalchemy==1.4.52\n")
    (tmp_path / "rows.py").write_text(
        "async def f(session):\n"
        "    result = await session.execute('SELECT 1')\n"
        "    return [dict(row) for row in result]\n"
    )
    result = scan_path(tmp_path, ruff=False, rules=["FSA111"])
    assert result.findings == []
    assert [c.status for c in result.checks if c.check_id == "FSA111"] == ["passed"]


@pytest.mark.parametrize(
    ("config_text", "fires"),
    [
        ('URL = "postgresql+psycopg://app@db/app"\n', True),
        ('URL = "postgresql+psycopg://app@db/app"\nTEST_URL = "sqlite:///test.db"\n', False),
    ],
)
def test_json_column_is_reported_only_where_postgresql_is_the_only_database(
    tmp_path, config_text, fires
):
    (tmp_path / "requirements.txt").write_text("sqlalchemy==2.0.36\npsycopg==3.2.3\n")
    (tmp_path / "settings.py").write_text(config_text)
    (tmp_path / "models.py").write_text(
        "from sqlalchemy import JSON\n"
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n\n\n"
        "class Base(DeclarativeBase):\n    pass\n\n\n"
        "class Pref(Base):\n"
        '    __tablename__ = "prefs"\n'
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    value: Mapped[dict] = mapped_column(JSON)\n"
    )
    result = scan_path(tmp_path, ruff=False, rules=["FSA113"])
    assert bool(result.findings) is fires
    assert [c.status for c in result.checks] == ["failed" if fires else "passed"]
