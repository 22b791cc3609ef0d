"""Which code produced a benchmark result: the repository's commit, marked when the tree is dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def code_version(repo: Path = REPO) -> str:
    """``git rev-parse HEAD`` of ``repo``, with ``+dirty`` when tracked files differ from it,
    or ``"unknown"`` outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")
