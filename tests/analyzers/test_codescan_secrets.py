"""Code-scan excerpts mask credentials exactly as the findings' own text does."""

import json
import textwrap

from optimizations.analyzers.codescan import scan_path, to_sarif
from optimizations.analyzers.secrets import mask_credentials

SOURCE = """\
import os

from sqlalchemy import create_engine

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://app:s3cr3t-Pa55@db.internal/app")
engine = create_engine("postgresql+psycopg://app@db.internal/app?password=qu3ry-Pa55")
API_TOKEN = "tok-l1ve-0123456789"


def connect(password: str = "d3fault-Pa55"):
    return password
"""
SECRETS = ("s3cr3t-Pa55", "qu3ry-Pa55", "tok-l1ve-0123456789", "d3fault-Pa55")


def test_no_excerpt_title_or_export_shows_a_password(tmp_path):
    (tmp_path / "settings.py").write_text(SOURCE)
    result = scan_path(tmp_path, ruff=True)
    dsn = next(f for f in result.findings if f.rule_id == "FSA405")
    assert dsn.evidence["excerpt"].endswith('"postgresql://app:******@db.internal/app")')
    assert "app:******@db.internal" in dsn.evidence["detail"]
    for finding in result.findings:
        shown = json.dumps([finding.title, finding.evidence], default=str)
        for secret in SECRETS:
            assert secret not in shown, (finding.rule_id, secret)
    sarif = json.dumps(to_sarif(result))
    for secret in SECRETS:
        assert secret not in sarif


def test_masking_keeps_where_the_secret_is_and_no_character_of_it():
    text = textwrap.dedent(
        """\
        url = "redis://:hunter2@cache:6379/0"
        dsn = "postgresql://app:p@ss@db/shop?sslmode=require&password=hunter3"
        settings = {"db_password": "hunter4", "user": "app"}
        SECRET_KEY = os.environ["SECRET_KEY"]
        """
    )
    masked = mask_credentials(text)
    assert "hunter" not in masked and "p@ss" not in masked
    assert "redis://:******@cache:6379/0" in masked
    assert "postgresql://app:******@db/shop?sslmode=require&password=******" in masked
    assert '"db_password": "******", "user": "app"' in masked
    assert 'SECRET_KEY = os.environ["SECRET_KEY"]' in masked  # no literal: nothing to hide
