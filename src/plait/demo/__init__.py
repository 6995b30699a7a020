"""`plait demo`: a throwaway repository and a plan of scripted agents, run end to end.

The project is small but real (a package and its unittest suite); the agents are
`plait.demo.agent`, so no API key is needed. The plan exercises what plait is for:
a contract whose output feeds two tasks, parallel work in separate folders, two
tasks that share a file and so run one after another, two that collide without
saying so (the second is re-run on the merged code), and the tests at the end.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from plait.demo.project import PROJECT_FILES, demo_plan


def create_repository(folder: Path, *, speed: float = 1.0) -> Path:
    """Write the demo project into `folder` as a git repository with one commit."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in PROJECT_FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (folder / "plait.yaml").write_text(demo_plan(speed), encoding="utf-8")
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.name", "plait demo"],
        ["git", "config", "user.email", "demo@plait.invalid"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "A tiny shop"],
    ):
        subprocess.run(argv, cwd=folder, check=True, capture_output=True)  # noqa: S603
    return folder


def run_demo(keep: Path | None, jobs: int, console: Console, *, speed: float = 1.0) -> int:
    """Create the demo repository, run its plan, and say where the result is."""
    from rich.text import Text  # (the console prints text as it is, markup off)

    from plait.live import open_display
    from plait.planfile import load_plan
    from plait.session import RunSettings, start_run
    from plait.status import run_json

    parent = keep.resolve() if keep is not None else Path(tempfile.mkdtemp(prefix="plait-demo-"))
    repo = create_repository(parent / "shop", speed=speed)
    console.print(Text.assemble(("plait demo", "bold"), f": a throwaway repository at {repo}"))
    console.print("8 scripted agents, 4 at a time; the tests run on the merged result.\n")
    plan = load_plan(repo / "plait.yaml")
    with open_display(False, console) as sink:
        outcome = asyncio.run(start_run(plan, RunSettings(jobs=jobs, sink=sink)))

    from plait.apply import clean_runs
    from plait.statehome import state_home
    from plait.store import Store

    with Store.open(state_home(repo)) as store:
        data = run_json(store, outcome.run_id)
    # The worktrees parked for a next run would stay in the user's data folder, one set
    # per demo, for a repository nobody runs again (report and apply need none of them).
    asyncio.run(clean_runs(repo, None))
    totals = data["totals"]
    console.print()
    console.print(Text.assemble(f"run {outcome.run_id}: ", (outcome.status, "bold")))
    verify = data.get("verify") or {}
    if verify:
        verdict = (
            "not run" if verify.get("ok") is None else ("passed" if verify["ok"] else "FAILED")
        )
        console.print(
            Text.assemble("the project's tests on the merged result: ", (verdict, "bold"))
        )
    speedup = f"{totals['speedup']:.1f}x" if totals.get("speedup") else "—"
    console.print(
        f"wall time {totals['wall_s']:.1f}s; the same agents one after another: "
        f"{totals['sequential_s']:.1f}s; speed-up {speedup} "
        f"({max(0.0, totals['sequential_s'] - totals['wall_s']):.1f}s saved)"
    )
    console.print(
        Text.assemble("the result is on branch ", (data["branch"], "bold"), f" of {repo}")
    )
    console.print(f"  git -C {repo} log --oneline --graph {data['branch']}")
    plait = _how_to_call_plait()
    console.print(
        f"  cd {repo} && {plait} report --html report.html && {plait} apply {outcome.run_id}"
    )
    return outcome.exit_code


def _how_to_call_plait() -> str:
    """`plait` if the shell finds this one by that name, else a path that works anywhere
    (after the README's install, plait is in .venv/bin, which is not on PATH)."""
    this = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    found = shutil.which("plait")
    if found is not None and (this is None or Path(found).resolve() == this):
        return "plait"
    if this is not None and this.name == "plait" and this.is_file():
        return shlex.quote(str(this))
    return f"{shlex.quote(sys.executable)} -m plait"
