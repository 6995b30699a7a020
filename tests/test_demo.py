"""`plait demo` through the real CLI: a throwaway shop, eight scripted agents, one minute.

The demo is the README's first command, so it is tested the way a newcomer runs it:
`python -m plait demo --keep DIR` in a subprocess, then the repository it made is
read back with plain git and `plait status --json`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitrepo import GitRepo, git_identity
from plait.pool import POOL_DIR
from plait.statehome import worktrees_home

DEMO_TASKS = {
    "contract",
    "pricing",
    "pricing-tests",
    "storefront",
    "changelog-cart",
    "changelog-pricing",
    "feature-discounts",
    "feature-gift-cards",
}


def test_demo_runs_everything_in_under_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git_identity(monkeypatch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "plait", "demo", "--keep", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - started

    assert done.returncode == 0, done.stdout + done.stderr
    assert took < 60, f"the demo took {took:.1f}s"
    shop = GitRepo(tmp_path / "shop")
    # it says where the result is and how much time running in parallel saved
    found = re.search(r"the result is on branch (plait/\S+) of (\S+)", done.stdout)
    assert found is not None, done.stdout
    branch = found.group(1)
    assert Path(found.group(2)) == shop.path.resolve()
    saved = re.search(r"\(([0-9.]+)s saved\)", done.stdout)
    assert saved is not None and float(saved.group(1)) > 0, done.stdout

    status_run = subprocess.run(
        [sys.executable, "-m", "plait", "status", "--json"],
        cwd=shop.path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    status = json.loads(status_run.stdout)
    assert status["branch"] == branch and status["status"] == "succeeded"
    tasks = {t["id"]: t for t in status["tasks"]}
    assert set(tasks) == DEMO_TASKS
    assert all(t["status"] == "succeeded" and t["merged"] for t in tasks.values()), tasks
    assert status["verify"]["ok"] is True
    assert status["verify"]["commit"] == shop.head(branch)
    # the two feature agents collided without saying so: one was re-run
    attempts = sorted(t["attempts"] for t in tasks.values())
    assert attempts == [1] * 7 + [2], attempts
    assert {tid for tid, t in tasks.items() if t["attempts"] == 2} <= {
        "feature-discounts",
        "feature-gift-cards",
    }
    # every agent's work is on the result branch, and the tests there pass
    files = set(shop.git("ls-tree", "-r", "--name-only", branch).split())
    assert {"docs/api.md", "shop/pricing.py", "tests/test_pricing.py", "web/index.html"} <= files
    features = shop.show(branch, "shop/settings.py")
    assert '"discounts"' in features and '"gift-cards"' in features
    changelog = shop.show(branch, "CHANGELOG.md")
    assert "The cart counts items." in changelog and "Prices and discounts." in changelog
    assert "Ran 4 tests" in status["verify"]["output"]
    # the demo's own checkout stays on main, untouched
    assert shop.git("branch", "--show-current").strip() == "main"
    assert shop.git("status", "--porcelain", "--untracked-files=no") == ""
    # the closing hint works as printed, whether or not `plait` is on PATH
    hint = done.stdout.strip().splitlines()[-1].strip()
    report = hint.split(" && ")[1].replace("report.html", str(tmp_path / "r.html"))
    shown = subprocess.run(shlex.split(report), cwd=shop.path, env=env, capture_output=True)
    assert shown.returncode == 0 and (tmp_path / "r.html").is_file(), (hint, shown.stderr)
    # the worktrees parked for a next run are removed: nobody runs this repository again,
    # and they stayed in the user's data folder, one set per demo
    pool = worktrees_home((shop.path / ".git").resolve() / "plait").resolve() / POOL_DIR
    assert ".git" not in pool.parts
    assert shop.worktrees()[1:] == []
    assert not pool.exists() or not any(pool.iterdir())
