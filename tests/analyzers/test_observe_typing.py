"""The observe analyzers stay typed for ``mypy --strict`` (their callers get real types)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_observe_passes_mypy_strict(tmp_path):
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            # Modules it imports (jsondoc, safehttp, dbscan) are not annotated throughout;
            # their errors are theirs, the calls into them are still checked.
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "mypy"),
            "optimizations/analyzers/observe",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
