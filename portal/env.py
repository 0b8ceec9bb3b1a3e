"""Small helpers that read settings from the environment and fail loudly.

A value they do not understand raises ImproperlyConfigured naming the
variable, rather than silently falling back to a default.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected one of true/false, 1/0, yes/no, on/off")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = env_str(name, default).lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def env_secret(name: str, keep_in: Path, *, required: bool, generate=None) -> str:
    """A secret from the environment; in the embedded run, generated once and
    kept in ``keep_in`` so restarts keep sessions and encrypted data readable.
    With ``required`` (production) a missing value refuses to start."""
    value = env_str(name)
    if value:
        return value
    if required:
        raise ImproperlyConfigured(f"{name} must be set in production (KAIZEN_ENV=production)")
    if keep_in.exists():
        return keep_in.read_text().strip()
    keep_in.parent.mkdir(parents=True, exist_ok=True)
    value = generate() if generate else secrets.token_urlsafe(50)
    # Create the file readable by its owner only, then write.
    fd = os.open(keep_in, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def database_from_url(url: str, sqlite_default: Path) -> dict:
    """A Django DATABASES entry from ``DATABASE_URL`` (postgres://… or sqlite:///…).

    SQLite is tuned for several writers at once (web, workers, beat): WAL, a
    busy timeout and IMMEDIATE transactions, so a writer waits for the lock
    instead of failing with "database is locked" half-way through.

    Connections are kept between requests on both (CONN_MAX_AGE): a poll of
    a job page is three small queries, and opening and closing a SQLite
    connection around them (the PRAGMAs, Django's SQL functions) cost the
    portal over a quarter of its CPU under 50 polling tabs (bench/polling.py).
    """
    if not url:
        url = f"sqlite:///{sqlite_default}"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:////abs/path → /abs/path; sqlite:///rel/path → rel/path
        path = unquote(parts.path)[1:]
        if not path:
            raise ImproperlyConfigured("DATABASE_URL: a sqlite URL needs a file path")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "CONN_MAX_AGE": 60,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=30000;"
                    "PRAGMA foreign_keys=ON;"
                ),
            },
            # A file, not memory: the fault tests start real worker processes
            # that must see the test database; one per test process.
            "TEST": {"NAME": str(Path(path).with_name(f"test-kaizen-{os.getpid()}.sqlite3"))},
        }
    if scheme in {"postgres", "postgresql", "pgsql"}:
        options = dict(parse_qsl(parts.query))
        # No JIT compilation: the portal's queries are short, and the planner's cost
        # estimate of some (a benchmark's summary rows by a list of jobs) passes
        # jit_above_cost at size, so compiling cost 35 ms for a query that runs in 1
        # (the SLO board at bench scale 10). A URL's own ?options= is kept as given.
        options.setdefault("options", "-c jit=off")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "kaizen",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
            # One test database per test process, so parallel runs do not collide.
            "TEST": {"NAME": f"test_{unquote(parts.path.lstrip('/')) or 'kaizen'}_{os.getpid()}"},
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL: unsupported scheme {scheme!r} (use postgres://… or sqlite:///…)"
    )
