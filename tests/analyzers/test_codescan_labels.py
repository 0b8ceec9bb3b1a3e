"""The labelled sample behind the code scan's precision figure (bench/codescan.py --precision).

The corpus itself lives outside the repository and is never fetched by the tests;
this checks only the labels file's form: its columns, TP/FP values, a reason on
every row, and that every row's commit is the one pinned in the corpus file.
"""

import csv
import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench():
    if "bench_codescan" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_codescan", BENCH / "codescan.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["bench_codescan"]


def test_labels_file_has_the_agreed_columns_and_values():
    bench = _bench()
    with (BENCH / "codescan_labels.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == bench.LABEL_COLUMNS
        rows = list(reader)
    assert len(rows) >= 150
    pinned = {repo["name"]: repo["commit"] for repo in bench.read_corpus()}
    seen = Counter()
    for number, row in enumerate(rows, start=2):
        where = f"codescan_labels.csv line {number}"
        assert row["label"] in bench.LABEL_VALUES, where
        assert row["reason"].strip(), f"{where}: a label needs its one-line reason"
        assert "\n" not in row["reason"], where
        assert re.fullmatch(r"FSA\d{3}", row["rule"]), where
        assert row["line"].isdigit() and int(row["line"]) > 0, where
        assert (
            row["path"] and not row["path"].startswith("/") and ".." not in row["path"].split("/")
        ), where
        assert row["repo"] in pinned, f"{where}: {row['repo']} is not in codescan_corpus.toml"
        assert row["commit"] == pinned[row["repo"]], f"{where}: not the pinned commit"
        seen[(row["repo"], row["rule"], row["path"], row["line"])] += 1
    assert [key for key, count in seen.items() if count > 1] == []


def test_corpus_file_pins_full_commits():
    repos = _bench().read_corpus()
    assert len(repos) >= 7
    for repo in repos:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", repo["name"])
        assert re.fullmatch(r"[0-9a-f]{40}", repo["commit"])


def test_wilson_interval_and_stratified_figure():
    bench = _bench()
    low, high = bench.wilson(17, 20)
    assert round(low, 3) == 0.640 and round(high, 3) == 0.948
    assert bench.wilson(0, 0) == (0.0, 1.0)
    rows = [
        {"rule": "A", "fired": 90, "labelled": 10, "tp": 10},
        {"rule": "B", "fired": 10, "labelled": 10, "tp": 5},
        {"rule": "C", "fired": 5, "labelled": 0, "tp": 0},
    ]
    figure, weight = bench.stratified(rows)
    assert weight == 100 and abs(figure - 0.95) < 1e-9


def test_sample_is_seeded_stratified_and_stable_when_findings_vanish():
    bench = _bench()
    fired = [
        bench.Fired("o/r", rule, "high", f"m{n}.py", n, "t")
        for rule in ("FSA1", "FSA2")
        for n in range(30)
    ]
    sample = bench.draw_sample(fired, per_rule=5, seed=14)
    assert {rule: len(drawn) for rule, drawn in sample.items()} == {"FSA1": 5, "FSA2": 5}
    assert bench.draw_sample(list(reversed(fired)), per_rule=5, seed=14) == sample
    assert bench.draw_sample(fired, per_rule=5, seed=15) != sample
    # A rule change that removes one sampled finding keeps the other four in the sample.
    gone = sample["FSA1"][0]
    again = bench.draw_sample([f for f in fired if f != gone], per_rule=5, seed=14)
    assert set(sample["FSA1"][1:]) <= set(again["FSA1"])


def test_precision_without_a_corpus_says_so(tmp_path, capsys):
    assert _bench().precision(tmp_path / "nowhere") == 0
    assert "No corpus" in capsys.readouterr().out
