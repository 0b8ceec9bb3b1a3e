"""The code scan against its corpus and the demo target: which rule fires on which line.

Every ``# expect: FSAxxx`` comment in tests/codescan_corpus is a line that must
fire; every other line must stay quiet. Precision and recall are computed per
rule over the whole corpus and must both be 1.
"""

import re
from collections import Counter
from pathlib import Path

import pytest

from optimizations.analyzers.codescan import RULES, scan_path

CORPUS = Path(__file__).resolve().parents[1] / "codescan_corpus"
SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop_api"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
EXPECT = re.compile(r"#\s*expect:\s*([A-Z0-9, ]+)")
PLANTED = re.compile(r"#\s*PLANTED (FSA\d{3})")


def expected(case: str) -> set[tuple[str, int, str]]:
    root = CORPUS / case
    found = set()
    for path in root.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = EXPECT.search(line)
            if match:
                for rule in filter(None, match.group(1).replace(" ", "").split(",")):
                    found.add((path.relative_to(root).as_posix(), number, rule))
    return found


def reported(result) -> set[tuple[str, int, str]]:
    places = set()
    for finding in result.findings:
        if finding.evidence.get("suppressed"):
            continue  # kept and shown as suppressed, but not reported as a problem
        path, line = finding.location.rsplit(":", 1)
        places.add((path, int(line), finding.rule_id))
    return places


@pytest.fixture(scope="module")
def corpus_results():
    return {case: scan_path(CORPUS / case, ruff=False) for case in CASES}


@pytest.mark.parametrize("case", CASES)
def test_each_case_fires_exactly_where_expected(corpus_results, case):
    result = corpus_results[case]
    assert result.summary["rules_failed"] == {}
    assert reported(result) == expected(case)


def test_precision_and_recall_per_rule_are_perfect(corpus_results):
    true_positive, false_positive, false_negative = Counter(), Counter(), Counter()
    for case in CASES:
        want, got = expected(case), reported(corpus_results[case])
        for *_, rule in got & want:
            true_positive[rule] += 1
        for *_, rule in got - want:
            false_positive[rule] += 1
        for *_, rule in want - got:
            false_negative[rule] += 1
    for rule in RULES:
        tp = true_positive[rule]
        assert tp > 0, f"{rule} has no true positive in the corpus"
        assert tp / (tp + false_positive[rule]) == 1.0, f"{rule} precision"
        assert tp / (tp + false_negative[rule]) == 1.0, f"{rule} recall"


def _planted(tree: Path) -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(tree.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for rule in PLANTED.findall(line):
                found.append((path.relative_to(tree).as_posix(), number, rule))
    return found


# Markers whose finding is reported somewhere else, on purpose.
REPORTED_ELSEWHERE = {
    # the relationship's definition: FSA102 fires where routes read it row by row
    ("models.py", "FSA102"),
    # the refresh that works around expire_on_commit: FSA202 fires at the sessionmaker
    ("routes.py", "FSA202"),
}
WINDOW = 6  # a PLANTED comment sits just above the code it marks


@pytest.mark.skipif(not (SHOP / "slow").is_dir(), reason="the demo target is not in this tree")
def test_slow_demo_yields_each_planted_code_problem_and_nothing_else():
    result = scan_path(SHOP / "slow", ruff=False)
    planted = _planted(SHOP / "slow")
    found = reported(result)

    def near(path, line, rule):
        return any(p == path and r == rule and 0 < fl - line <= WINDOW for p, fl, r in found)

    missed = [m for m in planted if not near(*m) and (m[0], m[2]) not in REPORTED_ELSEWHERE]
    assert missed == []
    unplanted = [
        (path, line, rule)
        for path, line, rule in found
        if not any(p == path and r == rule and 0 < line - pl <= WINDOW for p, pl, r in planted)
    ]
    assert unplanted == []
    assert {rule for *_, rule in planted} <= {rule for *_, rule in found}


@pytest.mark.skipif(not (SHOP / "fast").is_dir(), reason="the demo target is not in this tree")
def test_fast_demo_yields_none_of_our_rules():
    result = scan_path(SHOP / "fast", ruff=False)
    assert [f.location + " " + f.rule_id for f in result.findings] == []
    assert result.summary["parse_failures"] == []
