"""House rules that run (issue 19): imports at the top, no import cycle, the import contracts.

bench/imports.py reads the import graph with ``ast`` (imports inside functions
counted, ``if TYPE_CHECKING:`` left out); import-linter checks the layers
declared in pyproject.toml.
"""

import importlib.util
import sys
from pathlib import Path

import pytest
from importlinter import cli as import_linter

ROOT = Path(__file__).resolve().parents[1]


def _load_counter():
    # bench/ is a folder of programs, not a package: load the counter by its path.
    if "bench_imports" not in sys.modules:
        path = ROOT / "bench" / "imports.py"
        spec = importlib.util.spec_from_file_location("bench_imports", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["bench_imports"]


counter = _load_counter()


@pytest.fixture(scope="module")
def graph():
    return counter.build()


def _where(graph, found):
    return [f"{graph.modules[i.module].relative_to(ROOT)}:{i.line} {i.target}" for i in found]


def test_no_project_module_is_imported_inside_a_function(graph):
    assert _where(graph, graph.hidden) == []


def test_the_tests_import_project_modules_at_their_top_too(graph):
    assert counter.hidden_in_tests(graph) == []


def test_no_import_cycle_among_the_projects_modules(graph):
    assert counter.strongly_connected(graph.edges()) == []


def test_only_app_configs_import_in_ready_to_register_their_hooks_and_checks(graph):
    assert {i.module.rpartition(".")[2] for i in graph.registrations} <= {"apps"}


def test_the_counter_finds_a_cycle_hidden_in_a_function(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "engine.py").write_text("from app import runner\n")
    (tmp_path / "app" / "runner.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from app import engine\n"
        "def finish():\n    from app.engine import release\n    release()\n"
    )
    found = counter.build(tmp_path, ("app",))
    assert [(i.module, i.target, i.line) for i in found.hidden] == [("app.runner", "app.engine", 5)]
    cycles = counter.strongly_connected(found.edges())
    assert cycles == [["app.engine", "app.runner"]]
    assert counter.one_cycle(cycles[0], found.edges()) == ["app.engine", "app.runner", "app.engine"]


def test_the_import_contracts_hold():
    # The same check as `lint-imports` in .ci/run, so ./kaizen test catches a broken layer.
    config = str(ROOT / "pyproject.toml")
    assert import_linter.lint_imports(config_filename=config, no_cache=True, no_logo=True) == 0
