"""The code scan's contract: exclusions, suppressions, parse failures, newer syntax, stable
fingerprints, check outcomes, ruff's merge, the exports and the command's exit codes."""

import json
import textwrap
from datetime import date

import pytest
from django.core.management import call_command

from optimizations.analyzers.base import (
    CHECK_FAILED,
    CHECK_PASSED,
    CHECK_UNKNOWN,
    AnalysisError,
    LocalContext,
    TargetSpec,
)
from optimizations.analyzers.codescan import PARAMS, run, scan_path, to_json, to_sarif
from optimizations.analyzers.codescan.project import (
    Dependency,
    parse_python,
    pinned_major,
    read_dependencies,
    rewrite_newer_syntax,
)
from optimizations.analyzers.codescan.stack import stack_report, support_status

N_PLUS_ONE = """\
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Line, Order

app = FastAPI()


@app.get("/totals")
async def totals(session: AsyncSession) -> dict:
    orders = (await session.scalars(select(Order).limit(10))).all()
    result = {}
    for order in orders:
        result[order.id] = await session.scalar(select(Line).where(Line.order_id == order.id))
    return result
"""


def write(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def rules_at(result):
    return sorted((f.location, f.rule_id) for f in result.findings)


def test_params_declare_defaults_the_form_can_show():
    names = [p.name for p in PARAMS]
    assert {"source", "focus", "rules", "ruff", "include_tests", "workers", "pooler"} <= set(names)
    assert len(names) == len(set(names))


def test_migrations_tests_scripts_vendored_and_templates_are_excluded(tmp_path):
    blocking = "import time\nasync def f():\n    time.sleep(1)\n"
    write(
        tmp_path,
        {
            "app/main.py": "x = 1\n",
            "migrations/0001.py": blocking,
            "alembic/versions/a1.py": blocking,
            "tests/test_app.py": blocking,
            "app/test_more.py": blocking,
            "conftest.py": blocking,
            "scripts/load.py": blocking,
            "vendor/lib.py": blocking,
            "templates/model.py": blocking,
            "{{cookiecutter.name}}/app.py": blocking,
            "app/settings.py": "URL = '{{ url }}'\n{% if debug %}\nX = 1\n{% endif %}\n",
        },
    )
    result = scan_path(tmp_path, ruff=False)
    assert result.summary["files_scanned"] == 1
    excluded = result.summary["files_excluded"]
    assert excluded["migrations"] == 2
    assert excluded["tests"] == 3
    assert excluded["scripts"] == 1
    assert excluded["vendored"] == 1
    assert excluded["templates"] == 3
    assert result.summary["parse_failures"] == []


def test_include_tests_scans_them(tmp_path):
    write(tmp_path, {"tests/test_app.py": "x = 1\n", "app.py": "y = 2\n"})
    assert scan_path(tmp_path, ruff=False, include_tests=True).summary["files_scanned"] == 2


def test_a_file_that_cannot_be_parsed_is_reported_not_dropped(tmp_path):
    write(tmp_path, {"ok.py": "x = 1\n", "bad.py": "x = 1\ndef broken(:\n    pass\n"})
    result = scan_path(tmp_path, ruff=False)
    assert ("bad.py:2", "FSA001") in rules_at(result)
    assert result.summary["parse_failures"][0]["path"] == "bad.py"
    assert result.summary["unparsed_paths"] == ["bad.py"]
    outcome = {c.check_id: c for c in result.checks}
    assert outcome["FSA001"].status == CHECK_FAILED
    assert "could not be parsed" in outcome["FSA104"].detail


def test_python_3_14_syntax_is_rewritten_with_lines_kept():
    source = textwrap.dedent(
        """\
        try:
            pass
        except ValueError, TypeError:
            pass
        name = t"hi {x}"
        lazy import json
        """
    )
    rewritten, applied = rewrite_newer_syntax(source)
    assert "except (ValueError, TypeError):" in rewritten
    assert 'f"hi {x}"' in rewritten
    assert rewritten.count("\n") == source.count("\n")
    assert len(applied) == 3
    tree, used = parse_python(source)
    assert used == applied
    assert tree.body[0].handlers[0].lineno == 3


def test_except_with_as_needs_parentheses_even_in_3_14():
    with pytest.raises(SyntaxError):
        parse_python("try:\n    pass\nexcept A, B as e:\n    pass\n")


def test_invalid_escapes_do_not_warn(tmp_path):
    # a SyntaxWarning in the target's code must not become an error in the scan
    write(tmp_path, {"re_use.py": 'import re\nPATTERN = re.compile("\\d+")\n'})
    assert scan_path(tmp_path, ruff=False).summary["parse_failures"] == []


def _active(result) -> set[str]:
    return {f.rule_id for f in result.findings if not f.evidence.get("suppressed")}


def test_suppression_with_a_reason_keeps_the_finding_shown_as_suppressed(tmp_path):
    comment = "# kaizen: ignore[FSA101] -- at most three lines per order, by contract"
    silenced = N_PLUS_ONE.replace("order.id))\n", f"order.id))  {comment}\n", 1)
    write(tmp_path, {"app.py": silenced, "models.py": "class Order: ...\nclass Line: ...\n"})
    result = scan_path(tmp_path, ruff=False)
    assert "FSA101" not in _active(result)
    (kept,) = [f for f in result.findings if f.rule_id == "FSA101"]
    assert kept.evidence["suppressed"] == {
        "scope": "line",
        "reason": "at most three lines per order, by contract",
    }
    assert result.summary["suppressed"] == 1
    assert "FSA101" not in result.summary["counts"]["by_rule"]
    assert [c.status for c in result.checks if c.check_id == "FSA101"] == ["passed"]
    assert result.verdict == "pass"


def test_suppression_without_a_reason_suppresses_nothing_and_is_reported(tmp_path):
    silenced = N_PLUS_ONE.replace("order.id))\n", "order.id))  # kaizen: ignore[FSA101]\n", 1)
    write(tmp_path, {"app.py": silenced, "models.py": "class Order: ...\nclass Line: ...\n"})
    result = scan_path(tmp_path, ruff=False)
    assert {"FSA101", "FSA002"} <= _active(result)
    (unjustified,) = [f for f in result.findings if f.rule_id == "FSA002"]
    fsa101 = next(f for f in result.findings if f.rule_id == "FSA101")
    assert unjustified.location == fsa101.location
    assert result.summary["suppressed"] == 0


def test_file_level_suppression_needs_a_reason_too(tmp_path):
    models = "class Order: ...\nclass Line: ...\n"
    reasoned = "# kaizen: ignore-file[FSA101] -- a nightly script, never on a request path\n"
    write(tmp_path / "a", {"app.py": reasoned + N_PLUS_ONE, "models.py": models})
    result = scan_path(tmp_path / "a", ruff=False)
    assert "FSA101" not in _active(result)
    assert {
        f.evidence["suppressed"]["scope"] for f in result.findings if f.rule_id == "FSA101"
    } == {"file"}
    write(
        tmp_path / "b",
        {"app.py": "# kaizen: ignore-file[FSA101]\n" + N_PLUS_ONE, "models.py": models},
    )
    bare = scan_path(tmp_path / "b", ruff=False)
    assert {"FSA101", "FSA002"} <= _active(bare)
    assert [f.location for f in bare.findings if f.rule_id == "FSA002"] == ["app.py:1"]


def test_fingerprints_survive_lines_moving(tmp_path):
    models = "class Order: ...\nclass Line: ...\n"
    before = scan_path(write(tmp_path / "a", {"app.py": N_PLUS_ONE, "models.py": models}))
    moved = N_PLUS_ONE.replace("app = FastAPI()\n", "# a comment\n\n\n\napp = FastAPI()\n")
    after = scan_path(write(tmp_path / "b", {"app.py": moved, "models.py": models}))
    assert before.findings and len(before.findings) == len(after.findings)
    assert [f.location for f in before.findings] != [f.location for f in after.findings]
    assert {f.fingerprint("code") for f in before.findings} == {
        f.fingerprint("code") for f in after.findings
    }


def test_finding_carries_excerpt_why_fix_and_doc(tmp_path):
    write(tmp_path, {"app.py": N_PLUS_ONE, "models.py": "class Order: ...\nclass Line: ...\n"})
    finding = next(f for f in scan_path(tmp_path, ruff=False).findings if f.rule_id == "FSA101")
    assert finding.location == "app.py:15"
    assert finding.severity == "high" and finding.category == "performance"
    assert "session.scalar(select(Line)" in finding.evidence["excerpt"]
    assert finding.evidence["why"] and finding.fix_hint
    assert finding.doc_url.startswith("https://docs.sqlalchemy.org/")
    assert finding.key.startswith("app.py::app.totals::")


def test_checks_say_which_rules_ran_and_passed(tmp_path):
    write(tmp_path, {"app.py": N_PLUS_ONE, "models.py": "class Order: ...\nclass Line: ...\n"})
    result = scan_path(tmp_path, ruff=False, rules=["FSA1", "FSA5"])
    status = {c.check_id: c.status for c in result.checks}
    assert status["FSA101"] == CHECK_FAILED
    assert status["FSA109"] == CHECK_PASSED
    # no Pydantic pin: FSA501 cannot judge, so it must not mark anything fixed
    assert status["FSA501"] == CHECK_UNKNOWN
    assert "FSA201" not in status


def test_focus_narrows_the_rules(tmp_path):
    write(tmp_path, {"app.py": "x = 1\n"})
    result = scan_path(tmp_path, ruff=False, focus=["security"])
    assert set(result.summary["rules_run"]) >= {"FSA401", "FSA402"}
    assert "FSA101" not in result.summary["rules_run"]


def test_ruff_is_merged_under_its_own_ids(tmp_path):
    write(
        tmp_path,
        {
            "app.py": """\
            import requests
            from fastapi import Depends, FastAPI, Query
            from sqlalchemy import text

            app = FastAPI()


            def get_db():
                yield None


            @app.get("/x")
            def x(q: str = Query(""), db=Depends(get_db)) -> dict:
                requests.get("https://example.org")
                db.execute(text(f"SELECT * FROM t WHERE a = '{q}'"))
                return {}
            """
        },
    )
    result = scan_path(tmp_path)
    rules = {f.rule_id for f in result.findings}
    assert result.summary["ruff"]["ran"]
    assert "S113" in rules  # requests without timeout
    assert "B008" not in rules  # Depends/Query are declared immutable
    assert "S608" not in rules  # said better by FSA402 on the same line
    fsa402 = next(f for f in result.findings if f.rule_id == "FSA402")
    assert fsa402.severity == "critical" and fsa402.evidence["also_reported_by"] == ["S608"]
    status = {c.check_id: c.status for c in result.checks}
    assert status["S113"] == CHECK_FAILED and status["B006"] == CHECK_PASSED


def test_sarif_export_is_well_formed(tmp_path):
    write(tmp_path, {"app.py": N_PLUS_ONE, "models.py": "class Order: ...\nclass Line: ...\n"})
    write(tmp_path, {"bad.py": "def (:\n"})
    result = scan_path(tmp_path, ruff=False)
    sarif = json.loads(json.dumps(to_sarif(result)))
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run_ = sarif["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    assert run_["tool"]["driver"]["name"]
    assert [r["id"] for r in rules] == sorted(
        {r["id"] for r in rules}, key=[r["id"] for r in rules].index
    )
    for item in run_["results"]:
        assert rules[item["ruleIndex"]]["id"] == item["ruleId"]
        assert item["level"] in {"error", "warning", "note"}
        assert item["message"]["text"]
        region = item["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
        assert item["partialFingerprints"]["kaizen/v1"]
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file://")
    notes = run_["invocations"][0]["toolExecutionNotifications"]
    assert notes and "bad.py" in notes[0]["message"]["text"]


def test_json_export_round_trips(tmp_path):
    write(tmp_path, {"app.py": N_PLUS_ONE, "models.py": "class Order: ...\nclass Line: ...\n"})
    document = json.loads(to_json(scan_path(tmp_path, ruff=False)))
    assert document["summary"]["files_scanned"] == 2
    assert document["findings"][0]["fingerprint"]
    assert {c["check_id"] for c in document["checks"]} >= {"FSA101"}


def test_summary_counts_and_measurements(tmp_path):
    write(tmp_path, {"app.py": N_PLUS_ONE, "models.py": "class Order: ...\nclass Line: ...\n"})
    result = scan_path(tmp_path, ruff=False)
    summary = result.summary
    assert summary["counts"]["by_rule"]["FSA101"] == 1
    assert summary["counts"]["total"] == len(result.findings)
    assert summary["lines"] == N_PLUS_ONE.count("\n") + 2
    assert summary["routes"] == 1
    assert {m.name for m in result.measurements} >= {"codescan.lines", "codescan.duration"}
    assert result.verdict == "fail"


def test_a_git_url_outside_the_allow_list_is_refused(tmp_path):
    target = TargetSpec(name="t", source_path="https://192.0.2.10/org/repo.git")
    with pytest.raises(AnalysisError, match="KAIZEN_ALLOWED_TARGET_HOSTS"):
        run(target, {"cache_dir": str(tmp_path)}, LocalContext())


def test_missing_source_is_explained():
    with pytest.raises(AnalysisError, match="no source"):
        run(TargetSpec(name="t"), {}, LocalContext())


@pytest.mark.parametrize(
    ("spec", "locked", "major"),
    [
        (">=2.5,<3", "", 2),
        ("==1.10.13", "", 1),
        (">=1.10,<2", "", 1),
        ("~=2.1", "", 2),
        (">=1.10,<3", "", None),
        ("", "2.7.1", 2),
        ("", "", None),
    ],
)
def test_pinned_major(spec, locked, major):
    assert pinned_major(Dependency("pydantic", spec, locked)) == major


def test_dependencies_from_pyproject_requirements_and_locks(tmp_path):
    write(
        tmp_path,
        {
            "pyproject.toml": """\
            [project]
            requires-python = ">=3.11"
            dependencies = ["fastapi>=0.110", "SQLAlchemy[asyncio]>=2.0"]
            """,
            "requirements.txt": "pydantic==2.7.1\nasyncpg>=0.29\n",
            "uv.lock": '[[package]]\nname = "sqlalchemy"\nversion = "2.0.36"\n',
        },
    )
    deps = read_dependencies(tmp_path)
    assert deps["sqlalchemy"].locked == "2.0.36" and deps["sqlalchemy"].spec == ">=2.0"
    assert deps["pydantic"].locked == "2.7.1"
    assert deps["python"].spec == ">=3.11"


def test_stack_report_reads_support_status_from_the_table():
    deps = {
        "python": Dependency("python", ">=3.9", "", "pyproject.toml"),
        "sqlalchemy": Dependency("sqlalchemy", "", "1.4.52", "poetry.lock"),
        "fastapi": Dependency("fastapi", ">=0.110", "", "pyproject.toml"),
    }
    report = stack_report(
        deps, {"docker-compose.yml": "image: postgres:13\n"}, today=date(2026, 6, 1)
    )
    status = {c["name"]: c["status"] for c in report["components"]}
    assert status == {
        "Python": "end-of-life",
        "FastAPI": "latest-only",
        "SQLAlchemy": "maintenance",
        "PostgreSQL": "end-of-life",
    }
    assert set(report["end_of_life"]) == {"Python", "PostgreSQL"}
    assert support_status("postgresql", "17.2", date(2026, 6, 1))["status"] == "supported"
    assert support_status("python", "3.10", date(2026, 6, 1))["status"] == "ending-soon"


def test_command_exit_codes(tmp_path, capsys):
    write(tmp_path / "clean", {"app.py": "x = 1\n"})
    write(
        tmp_path / "dirty",
        {"app.py": N_PLUS_ONE, "models.py": "class Order: ...\nclass Line: ...\n"},
    )
    call_command("codescan", str(tmp_path / "clean"), "--no-ruff")  # exit 0: returns
    with pytest.raises(SystemExit) as failed:
        call_command("codescan", str(tmp_path / "dirty"), "--no-ruff")
    assert failed.value.code == 1
    call_command("codescan", str(tmp_path / "dirty"), "--no-ruff", "--fail-on", "critical")
    with pytest.raises(SystemExit) as broken:
        call_command("codescan", str(tmp_path / "missing"))
    assert broken.value.code == 2
    assert "not a directory" in capsys.readouterr().err


def test_command_writes_sarif_and_json(tmp_path):
    write(tmp_path / "src", {"app.py": "x = 1\n"})
    sarif, report = tmp_path / "out.sarif", tmp_path / "out.json"
    call_command(
        "codescan", str(tmp_path / "src"), "--no-ruff", "--format", "sarif", "--output", str(sarif)
    )
    call_command(
        "codescan", str(tmp_path / "src"), "--no-ruff", "--format", "json", "--output", str(report)
    )
    assert json.loads(sarif.read_text())["version"] == "2.1.0"
    assert json.loads(report.read_text())["summary"]["files_scanned"] == 1
