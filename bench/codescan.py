"""Code-scan speed: the demo target and a generated 100 000-line tree, with ruff beside it.

Run: .venv/bin/python bench/codescan.py [--lines 100000]
Prints lines per second of Kaizen's own rules (ruff off) and of the full scan
(ruff on), and ruff's own time on the same files for scale.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizations.analyzers.codescan import scan_path
from optimizations.analyzers.codescan.ruff import IGNORE, SELECT, ruff_binary

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


def time_ruff(root: Path) -> float:
    files = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py"))]
    command = [
        ruff_binary(),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
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
