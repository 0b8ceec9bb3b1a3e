"""The demo target that ``./kaizen up`` runs beside the portal (examples/shop_api).

Its state — mode, database, port — lives in ``var/demo_target.json``. The
``demo_target`` management command changes it; the launcher notices and
restarts the target in the new mode.

Beside it runs its fixed twin ("Shop API (demo, fixed)"): the same service in
fast mode on its own database, always on — the "after" deployment next to the
"before" one, so an interleaved A/B comparison can run at any time.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from examples.pgcluster import ensure_cluster, stop_cluster
from optimizations.models import TargetService
from optimizations.targets.crypto import CredentialUnreadable
from optimizations.work.actions import do_create_target, do_update_target
from portal.demo import DEMO_TARGET_SLUG

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_FILE = "demo_target.json"
# The throwaway cluster's port (another copy of Kaizen beside this one sets its own).
PG_PORT = int(os.environ.get("KAIZEN_DEMO_PG_PORT", "5544"))
MODES = ("slow", "fast")


@dataclass
class DemoState:
    mode: str = "slow"
    database: str = "sqlite"  # or "postgres"
    port: int = 8100
    database_url: str = ""
    seeded: list[str] = field(default_factory=list)  # databases already seeded
    var_dir: str = ""
    fixed_port: int = 8101
    fixed_database_url: str = ""
    # The key both demo shops take for writes (X-API-Key; made once, kept in var/), so the
    # portal's write jobs — the integrity probes — can write to the fixed twin too.
    api_key: str = ""

    @property
    def fixed_base_url(self) -> str:
        return f"http://127.0.0.1:{self.fixed_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_label(self) -> str:
        return "PostgreSQL" if self.database == "postgres" else "SQLite"

    @property
    def source_path(self) -> str:
        return str(BASE_DIR / "examples" / "shop_api" / self.mode)


def state_path(var_dir: Path) -> Path:
    return Path(var_dir) / STATE_FILE


def reload_state(var_dir: Path) -> DemoState:
    path = state_path(var_dir)
    if path.exists():
        data = json.loads(path.read_text())
        known = {k: v for k, v in data.items() if k in DemoState.__dataclass_fields__}
        return DemoState(**known)
    return DemoState(var_dir=str(var_dir))


def save_state(state: DemoState) -> None:
    path = state_path(Path(state.var_dir))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    os.replace(tmp, path)  # atomic: the launcher never reads half a file


def mode_of(target) -> str:
    """The demo target's mode when ``target`` is the demo target run by ./kaizen up, else ""."""
    from django.conf import settings

    if target.slug != DEMO_TARGET_SLUG:
        return ""
    state = reload_state(Path(settings.VAR_DIR))
    return state.mode if state.database_url else ""


def mode_changed(state: DemoState) -> bool:
    current = reload_state(Path(state.var_dir))
    return current.mode != state.mode


def _free_port(preferred: int) -> int:
    for port in range(preferred, preferred + 100):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {preferred} and {preferred + 99}")


def prepare(
    var_dir: Path, *, use_postgres: bool, port: int, say, fixed_port: int | None = None
) -> DemoState:
    """Choose the database and ports (the launcher may have chosen them), seed once, and
    remember the state."""
    state = reload_state(var_dir)
    state.var_dir = str(var_dir)
    if not state.api_key:
        state.api_key = secrets.token_urlsafe(24)
    if fixed_port is None:
        state.port = _free_port(port)
        state.fixed_port = _free_port(state.port + 1)
    else:  # chosen by the launcher, which moves a target whose port was taken since
        state.port, state.fixed_port = port, fixed_port
    if use_postgres:
        say(f"• Starting a throwaway PostgreSQL cluster in {var_dir / 'pg'} (port {PG_PORT})…")
        if not (Path(var_dir) / "pg" / "PG_VERSION").exists() and "postgres" in state.seeded:
            state.seeded.remove("postgres")  # the cluster was removed: a new one needs seeding
        state.database = "postgres"
        state.database_url = ensure_cluster(var_dir / "pg", PG_PORT)
        state.fixed_database_url = ensure_cluster(var_dir / "pg", PG_PORT, "kaizen_target_fixed")
    else:
        state.database = "sqlite"
        state.database_url = f"sqlite+aiosqlite:///{var_dir / 'shop_api.sqlite3'}"
        state.fixed_database_url = f"sqlite+aiosqlite:///{var_dir / 'shop_api_fixed.sqlite3'}"
    if state.database not in state.seeded:
        say(f"• Seeding the demo target's {state.database_label} databases (first start only)…")
        seed(state)
        seed(state, fixed=True)
        state.seeded.append(state.database)
    save_state(state)
    return state


def seed(state: DemoState, reset: bool = False, fixed: bool = False) -> None:
    url = state.fixed_database_url if fixed else state.database_url
    argv = [sys.executable, "-m", "examples.shop_api", "seed", "--database-url", url]
    if reset:
        argv.append("--reset")
    subprocess.run(argv, check=True, cwd=BASE_DIR)


def environment(state: DemoState) -> dict[str, str]:
    """What both demo shops read from the environment: the key for writes."""
    return {"SHOP_API_KEY": state.api_key} if state.api_key else {}


def reseed_after_writes(target, log) -> None:
    """After a job wrote through a demo shop's API (the "target_written" hook), put its
    data back to what seeding made: the data size is a comparability key of benchmarks."""
    from django.conf import settings

    if target.slug not in (DEMO_TARGET_SLUG, FIXED_SLUG):
        return
    state = reload_state(Path(settings.VAR_DIR))
    url = state.fixed_database_url if target.slug == FIXED_SLUG else state.database_url
    if not url:
        return  # not a demo shop that ./kaizen up runs
    argv = [sys.executable, "-m", "examples.shop_api", "reseed", "--database-url", url]
    done = subprocess.run(argv, cwd=BASE_DIR, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"reseeding the demo data failed: {done.stdout}{done.stderr}")
    log(f"demo shop: {done.stdout.strip()} (orders, stock changes and new items removed)")


def command(state: DemoState) -> list[str]:
    return [
        sys.executable,
        "-m",
        "examples.shop_api",
        "serve",
        "--mode",
        state.mode,
        "--port",
        str(state.port),
        "--database-url",
        state.database_url,
    ]


def fixed_command(state: DemoState) -> list[str]:
    return [
        sys.executable,
        "-m",
        "examples.shop_api",
        "serve",
        "--mode",
        "fast",
        "--port",
        str(state.fixed_port),
        "--database-url",
        state.fixed_database_url,
    ]


FIXED_SLUG = "shop-api-fixed"


def register(state: DemoState) -> None:
    """Point the registered demo targets at where they run now."""
    target = TargetService.objects.filter(slug=DEMO_TARGET_SLUG).first()
    if target is None:
        return
    twin = TargetService.objects.filter(slug=FIXED_SLUG).first()
    # Both shops allow writes (the integrity probes) with the demo's key.
    writes = {"allows_writes": True, "auth_header_name": "X-API-Key"} if state.api_key else {}
    fixed_fields = {
        "base_url": state.fixed_base_url,
        "source_location": str(BASE_DIR / "examples" / "shop_api" / "fast"),
        **writes,
    }
    fixed_credentials = {
        "database_url": state.fixed_database_url if state.database == "postgres" else ""
    }
    if state.api_key:
        fixed_credentials["auth_header_value"] = state.api_key
    if twin is None:
        do_create_target(
            None,
            name="Shop API (demo, fixed)",
            slug=FIXED_SLUG,
            owner_department=target.owner_department,
            environment="demo",
            max_rate=target.max_rate,
            max_duration=target.max_duration,
            expected_rps=target.expected_rps,
            description=(
                "The demo shop with every planted problem fixed, always running beside the "
                "demo target: the “after” deployment for interleaved A/B comparisons."
            ),
            credentials=fixed_credentials,
            **fixed_fields,
        )
    else:
        changed = {k: v for k, v in fixed_fields.items() if getattr(twin, k) != v}
        creds = _changed_credentials(twin, fixed_credentials)
        if changed or creds:
            do_update_target(None, twin, credentials=creds, **changed)
    fields = {"base_url": state.base_url, "source_location": state.source_path, **writes}
    fields = {name: value for name, value in fields.items() if getattr(target, name) != value}
    credentials = _changed_credentials(target, {"auth_header_value": state.api_key})
    if not state.api_key:
        credentials = {}
    database_url = state.database_url if state.database == "postgres" else ""
    current = target.database_url if target.database_url_encrypted else ""
    if database_url != current:
        credentials["database_url"] = database_url
    if fields or credentials:
        do_update_target(None, target, credentials=credentials, **fields)


def _changed_credentials(target, wanted: dict) -> dict:
    """The credentials in ``wanted`` that differ from what ``target`` stores."""
    stored = {}
    try:
        stored["database_url"] = target.database_url if target.database_url_encrypted else ""
        stored["auth_header_value"] = (
            target.auth_header_value if target.auth_header_value_encrypted else ""
        )
    except CredentialUnreadable:
        return dict(wanted)  # encrypted with another key: write them again
    return {name: value for name, value in wanted.items() if stored.get(name) != value}


def shutdown(state: DemoState) -> None:
    """Stop the throwaway PostgreSQL cluster (the demo targets are stopped already)."""
    if state.database == "postgres":
        stop_cluster(Path(state.var_dir) / "pg")
