"""Helpers for tests: repo paths and running scripts as a user would."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


def run_script(script, *args, cwd=REPO, timeout=900, env=None):
    """Run a repo script with the test interpreter; returns the CompletedProcess."""
    path = script if os.path.isabs(script) else os.path.join(cwd, script)
    return subprocess.run([sys.executable, path, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def assert_user_error(result, *fragments):
    """A user error: non-zero exit, one `error:` line naming the problem, no traceback."""
    assert result.returncode != 0
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
