"""Code-scan speed: the demo target and a generated 100 000-line tree, with ruff beside it.

Run: .venv/bin/python bench/codescan.py [--lines 100000]
Prints lines per second of Kaizen's own rules (ruff off) and of the full scan
(ruff on), and ruff's own time on the same files for scale.

Precision on real projects (issue 14):
    .venv/bin/python bench/codescan.py --precision --corpus DIR [--show-unlabelled]
scans each project of bench/codescan_corpus.toml checked out under DIR, draws the
seeded sample stratified by rule, matches it against bench/codescan_labels.csv and
prints per rule: fired, labelled, precision with its Wilson 95 % interval, and how
many sampled findings are still unlabelled; the overall and critical/high figures
only when none are; and the scan's lines per second beside ruff's on the same files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizations.analyzers.codescan import scan_path
from optimizations.analyzers.codescan.project import discover
from optimizations.analyzers.codescan.ruff import IGNORE, SELECT, ruff_binary

BENCH = Path(__file__).resolve().parent
CORPUS_FILE = BENCH / "codescan_corpus.toml"
LABELS_FILE = BENCH / "codescan_labels.csv"
LABEL_COLUMNS = ("repo", "commit", "rule", "path", "line", "label", "reason")
LABEL_VALUES = ("TP", "FP")
SEED = 14
SEVERE = ("critical", "high")
PER_RULE = 20

MODULE = '''\
"""Generated module {n}: models, a repository, a service and routes."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from pkg.base import Base, get_session

router = APIRouter(prefix="/m{n}")
SessionDep = Annotated[AsyncSession, Depends(get_session)]


class Parent{n}(Base):
    __tablename__ = "parent_{n}"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    children: Mapped[list["Child{n}"]] = relationship(back_populates="parent")


class Child{n}(Base):
    __tablename__ = "child_{n}"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("parent_{n}.id"))
    parent: Mapped[Parent{n}] = relationship(back_populates="children")


class Repository{n}:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def page(self, limit: int, after: int):
        stmt = select(Parent{n}).where(Parent{n}.id > after).order_by(Parent{n}.id).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def with_children(self, limit: int):
        stmt = select(Parent{n}).options(selectinload(Parent{n}.children)).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def names(self, limit: int):
        rows = await self.page(limit, 0)
        return [row.name for row in rows]


@router.get("/parents")
async def parents(session: SessionDep, limit: Annotated[int, Query(le=100)] = 20) -> list[dict]:
    rows = await Repository{n}(session).page(limit, 0)
    return [{{"id": row.id, "name": row.name}} for row in rows]


@router.get("/children")
async def children(session: SessionDep, limit: Annotated[int, Query(le=100)] = 20) -> list[dict]:
    rows = await Repository{n}(session).with_children(limit)
    return [{{"id": row.id, "children": len(row.children)}} for row in rows]
'''
BASE = """\
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

engine = create_async_engine("postgresql+asyncpg://app@db/app", pool_pre_ping=True)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


async def get_session():
    async with SessionLocal() as session:
        yield session
"""


def generate(root: Path, lines: int) -> int:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "base.py").write_text(BASE)
    total, n = BASE.count("\n"), 0
    while total < lines:
        text = MODULE.format(n=n)
        (root / "pkg" / f"module_{n:04d}.py").write_text(text)
        total += text.count("\n")
        n += 1
    return total


def time_ruff(root: Path, files: list[str] | None = None) -> float:
    if files is None:
        files = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py"))]
    binary = ruff_binary()
    if binary is None:
        raise SystemExit("ruff is not installed next to this Python or on PATH")
    command = [
        binary,
        "check",
        "--isolated",
        "--no-cache",
        "--exit-zero",
        "--output-format",
        "json",
        "--select",
        ",".join(SELECT),
        "--ignore",
        ",".join(IGNORE),
        *files,
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=root, capture_output=True, check=True)
    return time.perf_counter() - started


def measure(label: str, root: Path) -> None:
    ours = scan_path(root, ruff=False)
    full = scan_path(root, ruff=True)
    ruff_s = time_ruff(root)
    lines = ours.summary["lines"]
    print(
        f"{label:<28} {ours.summary['files_scanned']:>6} files {lines:>8} lines | "
        f"FSA rules {ours.summary['duration_s']:6.2f} s "
        f"{lines / ours.summary['duration_s']:>9,.0f} "
        f"lines/s | full scan {full.summary['duration_s']:6.2f} s | "
        f"ruff alone {ruff_s:5.2f} s {lines / ruff_s:>10,.0f} lines/s | "
        f"findings {full.summary['counts']['total']}"
    )


# --- precision on the labelled corpus -------------------------------------------------------


def read_corpus(path: Path = CORPUS_FILE) -> list[dict]:
    """The pinned projects: [{"name": "owner/name", "commit": "<40 hex>"}, ...]."""
    return tomllib.loads(path.read_text())["repo"]


def read_labels(path: Path = LABELS_FILE) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def corpus_dir(root: Path, name: str) -> Path:
    return root / name.replace("/", "+")


@dataclass(frozen=True)
class Fired:
    repo: str
    rule: str
    severity: str
    path: str
    line: int
    title: str
    evidence: str = ""

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.repo, self.rule, self.path, self.line)


def sample_key(finding: Fired, seed: int = SEED) -> str:
    """A seeded random order that does not depend on which other findings fired.

    Each rule's sample is the ``PER_RULE`` findings with the smallest key, so a rule
    change that removes findings lets the next ones in without reshuffling the rest.
    """
    text = f"{seed}\x1f{finding.repo}\x1f{finding.rule}\x1f{finding.path}\x1f{finding.line}"
    return hashlib.sha256(text.encode()).hexdigest()


def draw_sample(fired: list[Fired], per_rule: int = PER_RULE, seed: int = SEED) -> dict[str, list]:
    by_rule: dict[str, dict] = defaultdict(dict)
    for finding in fired:
        by_rule[finding.rule].setdefault(finding.key, finding)
    return {
        rule: sorted(found.values(), key=lambda f: sample_key(f, seed))[:per_rule]
        for rule, found in sorted(by_rule.items())
    }


def wilson(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval for a proportion."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def stratified(rows: list[dict]) -> tuple[float, int] | None:
    """Per-rule precision weighted by findings fired (None when nothing was labelled)."""
    weight = sum(row["fired"] for row in rows if row["labelled"])
    if not weight:
        return None
    return sum(
        row["fired"] * row["tp"] / row["labelled"] for row in rows if row["labelled"]
    ) / weight, weight


def scan_corpus(root: Path, repos: list[dict]) -> tuple[list[Fired], int, float, float, list[str]]:
    """Scan each project (Kaizen's rules, ruff off), and time ruff on the same files."""
    fired: list[Fired] = []
    lines, ours_s, ruff_s, notes = 0, 0.0, 0.0, []
    for repo in repos:
        directory = corpus_dir(root, repo["name"])
        if not directory.is_dir():
            notes.append(f"{repo['name']}: not checked out under {root}")
            continue
        marker = directory / ".kaizen-commit"
        if marker.is_file() and marker.read_text().strip() != repo["commit"]:
            notes.append(
                f"{repo['name']}: checked out at {marker.read_text().strip()[:12]}, "
                f"not {repo['commit'][:12]}"
            )
        started = time.perf_counter()
        result = scan_path(directory, ruff=False)
        ours_s += time.perf_counter() - started
        lines += result.summary["lines"]
        files, _ = discover(directory)
        ruff_s += time_ruff(directory, [str(p.relative_to(directory)) for p in files])
        for finding in result.findings:
            path, _, line = finding.location.rpartition(":")
            fired.append(
                Fired(
                    repo["name"],
                    finding.rule_id,
                    finding.severity,
                    path,
                    int(line) if line.isdigit() else 0,
                    finding.title,
                    json.dumps(
                        {
                            k: v
                            for k, v in finding.evidence.items()
                            if k not in ("why", "rule_title", "excerpt")
                        },
                        default=str,
                        ensure_ascii=False,
                    )[:1500],
                )
            )
    return fired, lines, ours_s, ruff_s, notes


def excerpt(root: Path, finding: Fired, around: int = 3) -> str:
    try:
        text = (
            (corpus_dir(root, finding.repo) / finding.path).read_text(errors="replace").splitlines()
        )
    except OSError:
        return "    (file not readable)"
    low, high = max(1, finding.line - around), min(len(text), finding.line + around)
    return "\n".join(
        f"    {n:>5}{'>' if n == finding.line else ' '} {text[n - 1]}" for n in range(low, high + 1)
    )


def precision(
    root: Path, *, show_unlabelled: bool = False, per_rule: int = PER_RULE, seed: int = SEED
) -> int:
    repos = read_corpus()
    present = [repo for repo in repos if corpus_dir(root, repo["name"]).is_dir()]
    if not present:
        print(
            f"No corpus under {root}: none of the {len(repos)} projects of {CORPUS_FILE.name} "
            "is checked out there (see that file for how). Nothing measured."
        )
        return 0
    commits = {repo["name"]: repo["commit"] for repo in repos}
    labels: dict[tuple, dict] = {}
    for row in read_labels():
        labels[(row["repo"], row["rule"], row["path"], int(row["line"]))] = row
    fired, lines, ours_s, ruff_s, notes = scan_corpus(root, present)
    rank = ("info", "low", "medium", "high", "critical")
    unique = list({f.key: f for f in fired}.values())
    severities: dict[str, set] = defaultdict(set)
    for finding in unique:
        severities[finding.rule].add(finding.severity)
    counts = Counter(f.rule for f in unique)
    severe_counts = Counter(f.rule for f in unique if f.severity in SEVERE)
    sample = draw_sample(fired, per_rule, seed)
    rows: list[dict[str, Any]] = []
    severe_rows: list[dict[str, Any]] = []
    unlabelled: list[Any] = []
    for rule, drawn in sample.items():
        tally: Counter[str] = Counter()
        for finding in drawn:
            label = labels.get(finding.key)
            if label is None or label["commit"] != commits[finding.repo]:
                unlabelled.append(finding)
                continue
            tally["labelled"] += 1
            tally["tp"] += label["label"] == "TP"
            if finding.severity in SEVERE:
                tally["severe_labelled"] += 1
                tally["severe_tp"] += label["label"] == "TP"
        rows.append(
            {
                "rule": rule,
                "fired": counts[rule],
                "labelled": tally["labelled"],
                "tp": tally["tp"],
                "todo": len(drawn) - tally["labelled"],
            }
        )
        if severe_counts[rule]:
            severe_rows.append(
                {
                    "rule": rule,
                    "fired": severe_counts[rule],
                    "labelled": tally["severe_labelled"],
                    "tp": tally["severe_tp"],
                }
            )
    print(
        f"Corpus: {len(present)} of {len(repos)} projects under {root}, {lines:,} lines, "
        f"{len(unique)} findings"
    )
    for note in notes:
        print(f"  note: {note}")
    print(f"Sample: seed {seed}, up to {per_rule} per rule; labels from {LABELS_FILE.name}\n")
    print(
        f"{'rule':<8} {'severity':<16} {'fired':>6} {'labelled':>9} {'TP':>4} {'precision':>10}  "
        f"{'Wilson 95 %':<15} {'unlabelled':>10}"
    )
    for row in rows:
        if row["labelled"]:
            low, high = wilson(row["tp"], row["labelled"])
            figure, interval = f"{row['tp'] / row['labelled']:.0%}", f"[{low:.0%}, {high:.0%}]"
        else:
            figure, interval = "-", ""
        shown = "+".join(sorted(severities[row["rule"]], key=rank.index, reverse=True))
        print(
            f"{row['rule']:<8} {shown:<16} {row['fired']:>6} {row['labelled']:>9} {row['tp']:>4} "
            f"{figure:>10}  {interval:<15} {row['todo']:>10}"
        )
    print()
    if unlabelled:
        print(
            f"Overall precision: not computed, {len(unlabelled)} sampled findings are unlabelled "
            "(--show-unlabelled lists them; label them in the labels file)."
        )
    else:
        overall = stratified(rows)
        if overall:
            print(
                "Overall precision (per-rule precision weighted by findings fired): "
                f"{overall[0]:.1%} over {overall[1]} findings"
            )
        severe = stratified(severe_rows)
        if severe:
            unjudged = sum(row["fired"] for row in severe_rows if not row["labelled"])
            print(
                "Critical/high findings (per rule, weighted by critical/high fired): "
                f"{severe[0]:.1%} over {severe[1]} findings"
                + (f"; {unjudged} more in rules whose sample held none of them" if unjudged else "")
            )
            for row in severe_rows:
                if row["labelled"]:
                    print(
                        f"    {row['rule']}: {row['tp']}/{row['labelled']} "
                        f"of {row['fired']} critical/high"
                    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"\nSpeed: Kaizen rules {ours_s:.2f} s, {lines / ours_s:,.0f} lines/s | "
        f"ruff ({len(SELECT)} rule groups) "
        f"{ruff_s:.2f} s, {lines / ruff_s:,.0f} lines/s on the same files | load average {load}"
    )
    if show_unlabelled:
        for finding in unlabelled:
            print(
                f"\n{finding.repo},{commits[finding.repo]},{finding.rule},{finding.path},"
                f"{finding.line}  [{finding.severity}] {finding.title}"
            )
            print(f"    evidence: {finding.evidence}")
            print(excerpt(root, finding))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--precision", action="store_true", help="precision on the labelled corpus")
    parser.add_argument(
        "--corpus", type=Path, help="directory holding the corpus projects (owner+name)"
    )
    parser.add_argument(
        "--show-unlabelled", action="store_true", help="list the sampled findings still unlabelled"
    )
    parser.add_argument("--per-rule", type=int, default=PER_RULE)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    if args.precision:
        if args.corpus is None:
            print(
                "--precision needs --corpus DIR (see bench/codescan_corpus.toml); nothing measured."
            )
            sys.exit(0)
        sys.exit(
            precision(
                args.corpus,
                show_unlabelled=args.show_unlabelled,
                per_rule=args.per_rule,
                seed=args.seed,
            )
        )
    repo = Path(__file__).resolve().parents[1]
    for mode in ("slow", "fast"):
        tree = repo / "examples" / "shop_api" / mode
        if tree.is_dir():
            measure(f"demo target ({mode})", tree)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        generate(root, args.lines)
        measure(f"generated ({args.lines:,} lines)", root)


if __name__ == "__main__":
    main()
