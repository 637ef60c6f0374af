import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_package_loads_no_web_framework():
    # A fresh interpreter: inside pytest, Django may already be loaded by another app's tests.
    code = (
        "import sys, scoring.stats; "
        "loaded = [m for m in sys.modules if m.split('.')[0] in {'django', 'celery', 'annotate', 'config'}]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
