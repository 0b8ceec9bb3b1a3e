"""docker-compose.yml runs the same processes as ./kaizen up; production settings are safe."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from portal.processes import commands

ROOT = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_every_kaizen_process_with_the_launchers_command():
    services = compose()["services"]
    for name in commands("/tmp"):
        assert name in services, f"docker-compose.yml has no {name} service"
        assert services[name]["command"] == ["python", "-m", "portal.processes", name]


def test_compose_wires_postgres_redis_and_the_secrets():
    services = compose()["services"]
    assert {"postgres", "redis"} <= set(services)
    env = services["web"]["environment"]
    assert env["KAIZEN_ENV"] == "production"
    assert env["DATABASE_URL"].startswith("postgres://")
    assert env["CELERY_BROKER_URL"].startswith("redis://")
    for secret in ("SECRET_KEY", "KAIZEN_ENCRYPTION_KEY"):
        assert "${" + secret in env[secret], f"{secret} must come from the operator"


def test_the_benchmark_worker_runs_one_job_at_a_time():
    argv = commands("/tmp")["worker-benchmark"]
    assert argv[argv.index("--concurrency") + 1] == "1"
    assert argv[argv.index("--queues") + 1] == "benchmark"
    assert (
        commands("/tmp")["worker-analysis"][
            commands("/tmp")["worker-analysis"].index("--queues") + 1
        ]
        == "analysis"
    )


def test_every_variable_the_settings_read_is_in_env_example():
    settings_source = (ROOT / "portal" / "settings.py").read_text()
    example = (ROOT / ".env.example").read_text()
    import re

    names = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', settings_source))
    names |= set(re.findall(r'env_secret\(\s*"([A-Z_]+)"', settings_source))
    missing = sorted(name for name in names if f"{name}=" not in example)
    assert not missing, f".env.example lacks {missing}"


def _manage(args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    result = _manage(["check"], {"KAIZEN_ENV": "production", "KAIZEN_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY must be set in production" in result.stderr


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {
        "KAIZEN_ENV": "production",
        "KAIZEN_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-1234567890",
        "KAIZEN_ENCRYPTION_KEY": "q3X2b3nO8rT0rV9J0Yl6k4C1pQm9JX0dHc1sVb2zWfA=",
        "ALLOWED_HOSTS": "kaizen.example.com",
        "DATABASE_URL": "postgres://kaizen:secret@db.example.com:5432/kaizen",
        "CELERY_BROKER_URL": "redis://redis.example.com:6379/0",
    }
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_embedded_defaults_are_flagged_in_production(tmp_path):
    env = {
        "KAIZEN_ENV": "production",
        "KAIZEN_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-1234567890",
        "KAIZEN_ENCRYPTION_KEY": "q3X2b3nO8rT0rV9J0Yl6k4C1pQm9JX0dHc1sVb2zWfA=",
        "ALLOWED_HOSTS": "kaizen.example.com",
    }
    result = _manage(["check", "--deploy"], env)
    assert "kaizen.W001" in result.stderr + result.stdout  # SQLite in production
    assert "kaizen.W002" in result.stderr + result.stdout  # file-system broker in production
