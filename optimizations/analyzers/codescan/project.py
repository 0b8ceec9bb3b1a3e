"""Loading a target's source tree: where it is, which files count, how to parse them.

Precision starts here: migrations, tests, scripts, vendored code and Jinja
templates named ``*.py`` are excluded before any rule sees them, and a file
the worker's Python cannot parse is kept as a parse failure (reported) rather
than dropped. Syntax newer than the worker's Python (3.13 type-parameter
defaults, 3.14 ``except A, B:`` and t-strings, 3.15 ``lazy import``) is
rewritten token by token into an equivalent the worker's ``ast`` reads, with
line numbers unchanged.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
import tomllib
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..base import AnalysisError
from ..netguard import HostNotAllowed, check_host
from ..secrets import mask_credentials
from .syntax import words

# Directories never scanned, with the reason reported in the summary.
EXCLUDED_DIRS = {
    "migrations": "migrations",
    "alembic": "migrations",
    "versions": "migrations",
    "revisions": "migrations",
    "tests": "tests",
    "test": "tests",
    "testing": "tests",
    "scripts": "scripts",
    "bin": "scripts",
    "vendor": "vendored",
    "vendored": "vendored",
    "_vendor": "vendored",
    "third_party": "vendored",
    "site-packages": "vendored",
    "node_modules": "vendored",
    "templates": "templates",
}
# Tooling and build output: skipped silently, they are not the project's code.
IGNORED_DIRS = words(
    ".eggs .env .git .hg .idea .mypy_cache .nox .pytest_cache .ruff_cache .svn .tox "
    ".venv .vscode __pycache__ build dist env venv"
)
TEST_FILE_PATTERNS = ("test_*.py", "*_test.py", "tests.py", "conftest.py")

JINJA_MARKERS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")
# `# kaizen: ignore[FSA301] -- the schema is filtered upstream` (or `ignore-file[...]`): the
# reason is required; one without it suppresses nothing and is itself reported (FSA002).
SUPPRESSION = re.compile(
    r"#\s*kaizen:\s*ignore(-file)?(?:\[([A-Za-z0-9_,\s]+)\])?"
    r"(?:[ \t]*(?:--|—|:|-)?[ \t]*(?P<reason>[^#]*))?"
)
MIN_REASON = 3


@dataclass
class SourceFile:
    """One Python file of the target, parsed (or with the reason it could not be)."""

    path: Path
    rel: str
    module: str
    text: str
    lines: list[str]
    tree: ast.Module | None = None
    error: str = ""
    error_line: int = 0
    compat: list[str] = field(default_factory=list)
    # line → {rule id or "*": reason}; the file's own in file_suppressions
    suppressions: dict[int, dict[str, str]] = field(default_factory=dict)
    file_suppressions: dict[str, str] = field(default_factory=dict)
    # (line, comment) of suppressions written without a reason: they suppress nothing
    unjustified: list[tuple[int, str]] = field(default_factory=list)

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""

    @property
    def parsed(self) -> ast.Module:
        """The tree of a file that parsed (the Index keeps only those)."""
        if self.tree is None:
            raise ValueError(f"{self.rel} was not parsed: {self.error}")
        return self.tree

    def suppression(self, rule_id: str, line: int) -> dict[str, str] | None:
        """{"scope": "line"/"file", "reason": ...} when ``rule_id`` is suppressed there."""
        for scope, rules in (
            ("line", self.suppressions.get(line, {})),
            ("file", self.file_suppressions),
        ):
            reason = rules.get(rule_id) or rules.get("*")
            if reason:
                return {"scope": scope, "reason": reason}
        return None

    def suppressed(self, rule_id: str, line: int) -> bool:
        return self.suppression(rule_id, line) is not None


@dataclass
class Dependency:
    """What the project says about one package: its constraint and its locked version."""

    name: str
    spec: str = ""
    locked: str = ""
    source: str = ""
    extras: set[str] = field(default_factory=set)  # `uvicorn[standard]` → {"standard"}


# --- where the tree is ----------------------------------------------------------------------

_SCP_LIKE = re.compile(r"^[\w.-]+@([\w.-]+):(?!//)")


def git_host(source: str) -> str | None:
    """The host of a git URL, or None when ``source`` is a local path."""
    match = _SCP_LIKE.match(source)
    if match:
        return match.group(1)
    parts = urlsplit(source)
    if parts.scheme in {"http", "https", "ssh", "git", "git+ssh", "git+https"}:
        return parts.hostname or ""
    return None


def resolve_source(
    source: str,
    *,
    allowed_hosts: Iterable[str],
    cache_dir: str = "",
    git_ref: str = "",
    timeout: float = 300,
    log: Callable[[str, str], object] | None = None,
) -> tuple[Path, str]:
    """Return the local directory to scan and the commit it is at ('' when not a git tree).

    A git URL is checked against the allow-list on its resolved address and
    cloned shallowly into the cache (fetched again when it is already there).
    """
    if source.startswith("file://"):
        source = urlsplit(source).path
    host = git_host(source)
    if host is None:
        root = Path(source).expanduser()
        if not root.is_dir():
            raise AnalysisError(f"source path {source!r} is not a directory on the worker")
        return root.resolve(), _head_commit(root)
    try:
        port = _git_port(source)
        addresses = check_host(host, tuple(allowed_hosts), port)
    except HostNotAllowed as exc:
        raise AnalysisError(str(exc)) from None
    pin = _pinned(source, host, port, sorted(addresses, key=lambda a: ":" in a)[0])
    base = Path(
        cache_dir
        or os.environ.get("KAIZEN_CODESCAN_CACHE")
        or Path(tempfile.gettempdir()) / "kaizen-codescan"
    )
    checkout = base / hashlib.sha256(f"{source}#{git_ref}".encode()).hexdigest()[:20]
    base.mkdir(parents=True, exist_ok=True)
    if (checkout / ".git").is_dir():
        try:
            _git(["fetch", "--depth", "1", "origin", git_ref or "HEAD"], checkout, timeout, pin)
            _git(["reset", "--hard", "FETCH_HEAD"], checkout, timeout)
            return checkout, _head_commit(checkout)
        except AnalysisError:
            if log:
                log("cached checkout could not be updated; cloning again", "warning")
            shutil.rmtree(checkout, ignore_errors=True)
    args = ["clone", "--depth", "1", "--no-recurse-submodules"]
    if git_ref:
        args += ["--branch", git_ref]
    _git([*args, "--", pin.url, str(checkout)], base, timeout, pin)
    return checkout, _head_commit(checkout)


@dataclass
class _Pin:
    """How git reaches the checked address and nothing else: the URL, config and ssh command."""

    url: str
    config: list[str] = field(default_factory=list)
    ssh: str = ""


def _git_port(source: str) -> int:
    if _SCP_LIKE.match(source):
        return 22
    parts = urlsplit(source)
    try:
        explicit = parts.port
    except ValueError:
        raise HostNotAllowed("the git URL has an invalid port") from None
    defaults = {"http": 80, "https": 443, "git+https": 443, "git": 9418}
    return explicit or defaults.get(parts.scheme, 22)


def _pinned(source: str, host: str, port: int, address: str) -> _Pin:
    """Connect to ``address`` (checked) for ``host``: git must not look the name up again."""
    scheme = "ssh" if _SCP_LIKE.match(source) else urlsplit(source).scheme
    if scheme in {"http", "https", "git+https"}:
        # libcurl takes the address from here instead of DNS; the Host header and the
        # TLS name stay the URL's.
        bracketed = f"[{address}]" if ":" in address else address
        return _Pin(source, ["-c", f"http.curloptResolve={host}:{port}:{bracketed}"])
    if scheme == "git":
        # The git protocol has no name to keep: connect to the checked address itself.
        parts = urlsplit(source)
        netloc = f"[{address}]" if ":" in address else address
        return _Pin(parts._replace(netloc=f"{netloc}:{port}").geturl())
    # ssh: HostName pins the address, HostKeyAlias keeps checking the host's own key.
    return _Pin(source, ssh=f"-o HostName={address} -o HostKeyAlias={host}")


def _git(args: list[str], cwd: Path, timeout: float, pin: _Pin | None = None) -> str:
    env = {
        name: value
        for name, value in os.environ.items()
        # A proxy would connect to the name itself, past the pinned address.
        if name.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
        and not name.startswith("GIT_CONFIG")
    }
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            # No credential prompt of any kind: askpass programs answer nothing.
            "GIT_ASKPASS": "false",
            "SSH_ASKPASS": "false",
            "SSH_ASKPASS_REQUIRE": "never",
            # No system or user configuration: no url.*.insteadOf rewrite to another
            # host, no credential helper, no proxy.
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            # Only network protocols we can check; no ext:: or file:: tricks from a remote.
            "GIT_ALLOW_PROTOCOL": "http:https:ssh:git",
            "GIT_SSH_COMMAND": f"ssh -o BatchMode=yes {pin.ssh if pin else ''}".strip(),
        }
    )
    # A redirect could lead git to a host the allow-list never saw.
    command = [
        "git",
        "-c",
        "http.followRedirects=false",
        "-c",
        "credential.helper=",
        "-c",
        "http.proxy=",
        "-c",
        "core.hooksPath=/dev/null",
        *(pin.config if pin else []),
        *args,
    ]
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise AnalysisError("git is not installed on the worker") from None
    except subprocess.TimeoutExpired:
        raise AnalysisError(f"git {args[0]} took longer than {timeout:g} s") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        last = mask_credentials(message[-1]) if message else "no output"
        raise AnalysisError(f"git {args[0]} failed: {last}")
    return done.stdout


def _head_commit(root: Path) -> str:
    if not (root / ".git").exists():
        return ""
    try:
        return _git(["rev-parse", "HEAD"], root, 10).strip()
    except AnalysisError:
        return ""


# --- which files --------------------------------------------------------------------------


def discover(
    root: Path,
    *,
    include_tests: bool = False,
    exclude: Sequence[str] = (),
    max_files: int = 20000,
) -> tuple[list[Path], Counter[str]]:
    """The Python files to scan under ``root``, and how many were excluded for which reason."""
    excluded: Counter[str] = Counter()
    found: list[Path] = []
    for directory, dirnames, filenames in os.walk(root):
        rel_dir = Path(directory).relative_to(root)
        keep = []
        for name in sorted(dirnames):
            reason = _dir_reason(name, include_tests)
            if reason is None and Path(directory, name, "script.py.mako").is_file():
                reason = "migrations"  # an Alembic environment under any folder name
            rel = (rel_dir / name).as_posix()
            if name in IGNORED_DIRS or name.endswith(".egg-info"):
                continue
            if reason is None and any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
                reason = "excluded by pattern"
            if reason:
                excluded[reason] += sum(1 for _ in Path(directory, name).rglob("*.py"))
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            rel = (rel_dir / name).as_posix()
            if not include_tests and any(fnmatch.fnmatch(name, p) for p in TEST_FILE_PATTERNS):
                excluded["tests"] += 1
            elif any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
                excluded["excluded by pattern"] += 1
            else:
                found.append(Path(directory, name))
    if len(found) > max_files:
        raise AnalysisError(
            f"{len(found)} Python files found, more than max_files={max_files}; "
            "narrow the tree with exclude patterns or raise the limit"
        )
    return found, excluded


def _dir_reason(name: str, include_tests: bool) -> str | None:
    if "{{" in name or "{%" in name:  # cookiecutter / copier template directories
        return "templates"
    reason = EXCLUDED_DIRS.get(name)
    if reason == "tests" and include_tests:
        return None
    return reason


# --- reading and parsing -------------------------------------------------------------------


def module_name(rel: str) -> str:
    parts = rel[:-3].split("/")
    if parts and parts[0] in {"src", "app_src"} and len(parts) > 1:
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__init__"


def load_file(root: Path, path: Path) -> SourceFile | None:
    """Read and parse one file; None when it turns out to be a template, not Python."""
    rel = path.relative_to(root).as_posix()
    raw = path.read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        text = raw.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        text = raw.decode("utf-8", errors="replace")
        source = SourceFile(path, rel, module_name(rel), text, text.splitlines())
        source.error = f"cannot decode: {exc}"
        return source
    text = text.removeprefix("\ufeff")
    source = SourceFile(path, rel, module_name(rel), text, text.splitlines())
    try:
        source.tree, source.compat = parse_python(text, rel)
    except SyntaxError as exc:
        if JINJA_MARKERS.search(text):
            return None
        source.error = f"{exc.msg}"
        source.error_line = exc.lineno or 0
    except (RecursionError, MemoryError, ValueError) as exc:
        source.error = f"{type(exc).__name__}: {exc}"
    source.suppressions, source.file_suppressions, source.unjustified = _suppressions(text)
    return source


def parse_python(text: str, filename: str = "<unknown>") -> tuple[ast.Module, list[str]]:
    """Parse ``text``; on a SyntaxError retry once with newer syntax rewritten.

    Returns the tree and the names of the rewrites applied (empty when none
    were needed). Raises the original SyntaxError when the rewrite does not help.
    """
    try:
        return _parse(text, filename), []
    except SyntaxError as original:
        try:
            rewritten, applied = rewrite_newer_syntax(text)
        except (tokenize.TokenError, SyntaxError, IndentationError):
            raise original from None
        if not applied:
            raise
        try:
            return _parse(rewritten, filename), applied
        except SyntaxError:
            raise original from None


def _parse(text: str, filename: str) -> ast.Module:
    # Invalid escape sequences and the like are SyntaxWarnings: the target's
    # problem, not ours, and an error under a warnings-as-errors test run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text, filename=filename, type_comments=False)


def rewrite_newer_syntax(text: str) -> tuple[str, list[str]]:
    """Rewrite syntax newer than the running Python into what it can parse.

    Every edit stays on its own line, so line numbers in the tree are the
    original ones (columns after an edit may shift by a character or two).
    """
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    edits: list[tuple[int, int, int, str]] = []  # (row, col_start, col_end, replacement)
    applied: list[str] = []
    significant = [t for t in tokens if t.type not in {tokenize.NL, tokenize.COMMENT}]
    for index, token in enumerate(significant):
        if token.type == tokenize.NAME and token.string == "except":
            if _rewrite_except(significant, index, edits):
                applied.append("except without parentheses (3.14)")
        elif token.type == tokenize.NAME and token.string.lower() in {"t", "tr", "rt"}:
            following = significant[index + 1] if index + 1 < len(significant) else None
            if (
                following is not None
                and following.type == tokenize.STRING
                and following.start == token.end
            ):
                prefix = token.string.lower().replace("t", "f")
                edits.append((token.start[0], token.start[1], token.end[1], prefix))
                applied.append("template string (3.14)")
        elif token.type == tokenize.NAME and token.string == "lazy":
            following = significant[index + 1] if index + 1 < len(significant) else None
            at_line_start = index == 0 or significant[index - 1].type in {
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
            }
            if at_line_start and following is not None and following.string in {"import", "from"}:
                edits.append((token.start[0], token.start[1], following.start[1], ""))
                applied.append("lazy import (3.15)")
        elif (
            token.type == tokenize.NAME
            and token.string in {"def", "class", "type"}
            and sys.version_info < (3, 13)
        ) and _rewrite_type_param_defaults(significant, index, edits):
            applied.append("type parameter defaults (3.13)")
    lines = text.splitlines(keepends=True)
    for row, start, end, replacement in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + replacement + line[end:]
    return "".join(lines), sorted(set(applied))


# (row, col_start, col_end, replacement) of one text edit.
type Edit = tuple[int, int, int, str]


def _rewrite_except(tokens: list[tokenize.TokenInfo], index: int, edits: list[Edit]) -> bool:
    position = index + 1
    if position < len(tokens) and tokens[position].string == "*":
        position += 1
    if position >= len(tokens) or tokens[position].string in {":", "("}:
        return False
    first, depth, comma, last = tokens[position], 0, False, None
    while position < len(tokens):
        token = tokens[position]
        if token.string in "([{" and token.type == tokenize.OP:
            depth += 1
        elif token.string in ")]}" and token.type == tokenize.OP:
            depth -= 1
        elif depth == 0 and token.string == ":":
            break
        elif depth == 0 and token.string == "as":
            return False  # PEP 758: "as" still needs the parentheses
        elif depth == 0 and token.string == ",":
            comma = True
        last = token
        position += 1
    if not comma or last is None or first.start[0] != last.end[0]:
        return False
    edits.append((last.end[0], last.end[1], last.end[1], ")"))
    edits.append((first.start[0], first.start[1], first.start[1], "("))
    return True


def _rewrite_type_param_defaults(
    tokens: list[tokenize.TokenInfo], index: int, edits: list[Edit]
) -> bool:
    if index + 2 >= len(tokens) or tokens[index + 1].type != tokenize.NAME:
        return False
    if tokens[index + 2].string != "[":
        return False
    position, depth, changed = index + 3, 1, False
    while position < len(tokens) and depth > 0:
        token = tokens[position]
        if token.string in "([{" and token.type == tokenize.OP:
            depth += 1
        elif token.string in ")]}" and token.type == tokenize.OP:
            depth -= 1
        elif depth == 1 and token.string == "=":
            end = position + 1
            inner = 0
            while end < len(tokens):
                string = tokens[end].string
                if string in "([{":
                    inner += 1
                elif string in ")]}":
                    if inner == 0:
                        break
                    inner -= 1
                elif string == "," and inner == 0:
                    break
                end += 1
            if tokens[end - 1].end[0] != token.start[0]:
                return False
            edits.append((token.start[0], token.start[1], tokens[end - 1].end[1], ""))
            changed = True
            position = end
            continue
        position += 1
    return changed


def _suppressions(
    text: str,
) -> tuple[dict[int, dict[str, str]], dict[str, str], list[tuple[int, str]]]:
    """(by line, whole file, unjustified) suppressions of a file; see SUPPRESSION."""
    by_line: dict[int, dict[str, str]] = {}
    whole_file: dict[str, str] = {}
    unjustified: list[tuple[int, str]] = []
    if "kaizen" not in text:
        return by_line, whole_file, unjustified
    for number, line in enumerate(text.splitlines(), start=1):
        if "#" not in line:
            continue
        for match in SUPPRESSION.finditer(line):
            reason = (match.group("reason") or "").strip()
            if len(reason) < MIN_REASON or not re.search(r"[^\W\d_]", reason):
                unjustified.append((number, match.group(0).strip()))
                continue
            rules = {r.strip().upper() for r in (match.group(2) or "*").split(",") if r.strip()}
            table = whole_file if match.group(1) else by_line.setdefault(number, {})
            for rule in rules:
                table[rule] = reason
    return by_line, whole_file, unjustified


# --- what the project depends on -----------------------------------------------------------

_REQUIREMENT = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?\s*(?P<spec>[^;#]*)"
)


def normalise_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_dependencies(root: Path) -> dict[str, Dependency]:
    """Constraints from pyproject/requirements/setup.cfg/Pipfile, versions from lock files."""
    deps: dict[str, Dependency] = {}

    def add(requirement: str, source: str) -> None:
        match = _REQUIREMENT.match(requirement)
        if not match:
            return
        name = normalise_name(match.group(1))
        spec = match.group("spec").strip().strip("()").strip()
        current = deps.setdefault(name, Dependency(name))
        current.extras.update(
            e.strip().lower() for e in (match.group("extras") or "").split(",") if e.strip()
        )
        if spec and not current.spec:
            current.spec, current.source = spec, source

    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8", errors="replace"))
        except tomllib.TOMLDecodeError:
            data = {}
        project = data.get("project", {})
        for requirement in project.get("dependencies", []) or []:
            add(str(requirement), "pyproject.toml")
        for group in (project.get("optional-dependencies", {}) or {}).values():
            for requirement in group or []:
                add(str(requirement), "pyproject.toml")
        for group in (data.get("dependency-groups", {}) or {}).values():
            for requirement in group or []:
                if isinstance(requirement, str):
                    add(requirement, "pyproject.toml")
        poetry = data.get("tool", {}).get("poetry", {})
        for table in (poetry.get("dependencies", {}), poetry.get("dev-dependencies", {})):
            for name, spec in (table or {}).items():
                version = spec.get("version", "") if isinstance(spec, dict) else str(spec)
                extras = spec.get("extras", []) if isinstance(spec, dict) else []
                extras_text = f"[{','.join(map(str, extras))}]" if extras else ""
                add(f"{name}{extras_text} {_poetry_spec(version)}", "pyproject.toml")
        if project.get("requires-python"):
            deps["python"] = Dependency("python", project["requires-python"], "", "pyproject.toml")
    for path in sorted(root.glob("requirements*.txt")) + sorted(root.glob("requirements/*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "-", "git+", "http")):
                add(line, path.relative_to(root).as_posix())
    setup_cfg = root / "setup.cfg"
    if setup_cfg.is_file():
        text = setup_cfg.read_text(encoding="utf-8", errors="replace")
        block = re.search(r"install_requires\s*=\s*\n((?:[ \t]+\S.*\n?)+)", text)
        for line in block.group(1).splitlines() if block else []:
            add(line.strip(), "setup.cfg")
    _read_locks(root, deps)
    _read_python_version(root, deps)
    return deps


def _poetry_spec(version: str) -> str:
    version = version.strip()
    if version.startswith("^"):
        parts = version[1:].split(".")
        major = int(parts[0]) if parts[0].isdigit() else 0
        upper = f"{major + 1}" if major else f"0.{int(parts[1]) + 1 if len(parts) > 1 else 1}"
        return f">={version[1:]},<{upper}"
    if version.startswith("~") and not version.startswith("~="):
        return f"~={version[1:]}"
    if version and version[0].isdigit():
        return f"=={version}"
    return "" if version == "*" else version


def _read_locks(root: Path, deps: dict[str, Dependency]) -> None:
    def lock(name: str, version: str, source: str) -> None:
        name = normalise_name(name)
        dep = deps.setdefault(name, Dependency(name))
        if not dep.locked:
            dep.locked = version
            dep.source = dep.source or source

    for lock_name in ("uv.lock", "poetry.lock", "pdm.lock"):
        path = root / lock_name
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
            except tomllib.TOMLDecodeError:
                continue
            for package in data.get("package", []) or []:
                if package.get("name") and package.get("version"):
                    lock(package["name"], str(package["version"]), lock_name)
    pipfile_lock = root / "Pipfile.lock"
    if pipfile_lock.is_file():
        try:
            data = json.loads(pipfile_lock.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError:
            data = {}
        for section in ("default", "develop"):
            for name, info in (data.get(section) or {}).items():
                version = str(info.get("version", "")).lstrip("=")
                if version:
                    lock(name, version, "Pipfile.lock")
    for path in sorted(root.glob("requirements*.txt")) + sorted(root.glob("requirements*.lock")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([\w.+!-]+)", line)
            if match:
                lock(match.group(1), match.group(2), path.name)


def _read_python_version(root: Path, deps: dict[str, Dependency]) -> None:
    python = deps.setdefault("python", Dependency("python"))
    version_file = root / ".python-version"
    if version_file.is_file() and not python.locked:
        python.locked = version_file.read_text(encoding="utf-8", errors="replace").strip()
        python.source = ".python-version"
    for dockerfile in sorted(root.glob("Dockerfile*")):
        match = re.search(
            r"^FROM\s+(?:[\w./-]+/)?python:(\d+\.\d+)",
            dockerfile.read_text(encoding="utf-8", errors="replace"),
            re.MULTILINE,
        )
        if match and not python.locked:
            python.locked, python.source = match.group(1), dockerfile.name
    if not python.spec and not python.locked:
        del deps["python"]


def _version_tuple(text: str) -> tuple[int, ...]:
    numbers = []
    for part in text.split("."):
        match = re.match(r"\d+", part)
        if not match:
            break
        numbers.append(int(match.group()))
    return tuple(numbers)


def pinned_major(dep: Dependency | None) -> int | None:
    """The major version the project is pinned to, or None when it allows several or says none.

    A locked version decides; otherwise the constraint's lower bound (``>=2``,
    ``==2.5``, ``~=2.1``) or upper bound (``<2``) must leave a single major.
    """
    if dep is None:
        return None
    if dep.locked:
        version = _version_tuple(dep.locked)
        return version[0] if version else None
    low, high = None, None
    for clause in dep.spec.split(","):
        match = re.match(r"\s*(==|~=|>=|>|<=|<|!=)\s*([\w.*+!-]+)", clause)
        if not match:
            continue
        op, version = match.group(1), _version_tuple(match.group(2))
        if not version:
            continue
        if op in {"==", "~="}:
            return version[0]
        if op in {">=", ">"}:
            low = version[0] if low is None else max(low, version[0])
        elif op == "<":
            bound = version[0] - 1 if len(version) == 1 or not any(version[1:]) else version[0]
            high = bound if high is None else min(high, bound)
        elif op == "<=":
            high = version[0] if high is None else min(high, version[0])
    if low is not None and (high is None or high == low):
        return low
    if high is not None and high <= 1 and low is None:
        return high
    return None


def version_text(dep: Dependency | None) -> str:
    if dep is None:
        return ""
    return dep.locked or dep.spec


# --- other project files rules may read -----------------------------------------------------

CONFIG_GLOBS = (
    "docker-compose*.yml",
    "docker-compose*.yaml",
    "compose*.yml",
    "compose*.yaml",
    "Dockerfile*",
    "Procfile",
    "gunicorn*.py",
    "*.ini",
    ".env*",
    "*.env",
    "deploy/**/*.yaml",
    "deploy/**/*.yml",
    "k8s/**/*.yaml",
    "helm/**/*.yaml",
    "Makefile",
)


def read_config_texts(root: Path, limit: int = 200_000) -> dict[str, str]:
    """Small deployment files (compose, Dockerfile, Procfile, ini, env) by relative path."""
    texts: dict[str, str] = {}
    for pattern in CONFIG_GLOBS:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and path.stat().st_size <= limit:
                texts[path.relative_to(root).as_posix()] = path.read_text(
                    encoding="utf-8", errors="replace"
                )
    return texts


def read_migration_texts(root: Path, limit: int = 2_000_000) -> str:
    """Text of migrations and SQL files: rules read index definitions from it, nothing more."""
    chunks: list[str] = []
    total = 0
    patterns = ["**/migrations/**/*.py", "**/alembic/**/*.py", "**/versions/**/*.py"]
    patterns += ["**/revisions/**/*.py", "**/*.sql"]
    patterns += [  # Alembic environments under any other folder name
        f"{mako.parent.relative_to(root).as_posix()}/**/*.py"
        for mako in root.glob("**/script.py.mako")
        if mako.parent != root
    ]
    seen: set[Path] = set()
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path in seen or any(part in IGNORED_DIRS for part in path.relative_to(root).parts):
                continue
            seen.add(path)
            if total > limit:
                return "\n".join(chunks)
            text = path.read_text(encoding="utf-8", errors="replace")
            total += len(text)
            chunks.append(text)
    return "\n".join(chunks)
