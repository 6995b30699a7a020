"""Before a run starts: what it runs with, where, from which commit, and what to tell.

`start_run` and `resume_run` (`plait.session`, `plait.resume`) check here, before
anything is written, that the agents are defined and installed, that the repository
can hold the run (a checkout, not a bare repository; no branch `plait` in the way)
and that the base names a commit; `start_warnings` says what would otherwise surprise
the user only when agents fail (a `copy` entry matching nothing, changes the worktrees
will not have, a budget that cannot see some agents' spending).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from plait.agents import get_backend
from plait.errors import (
    BackendMissing,
    EnvironmentProblem,
    GitError,
    NotARepository,
    PlanError,
    Problem,
)
from plait.git import Git, status_entries
from plait.model import Isolation, Plan


def with_agents(plan: Plan) -> Plan:
    """The plan with every agent it uses resolved, profiles read (a broken one is a
    plan error now, not in the middle of the run)."""
    used = {t.agent for t in plan.tasks.values()}
    if plan.on_verify_failure is not None:
        used.add(plan.on_verify_failure.agent)
    agents = dict(plan.agents)
    if missing := sorted(used - agents.keys()):
        # Imported here: profiles are read with the pydantic models, which a plan
        # built in Python does not otherwise need.
        from plait.profiles import resolve_agent

        for name in missing:
            agents[name] = resolve_agent(plan, name)
    return dataclasses.replace(plan, agents=agents)


def check_backends(plan: Plan) -> None:
    """Exit 3 before anything starts when an agent's program is missing or too old."""
    used = {plan.tasks[t].agent for t in plan.tasks}
    if plan.on_verify_failure is not None:
        used.add(plan.on_verify_failure.agent)
    problems = []
    for name in sorted(used):
        agent = plan.agents[name]
        message = get_backend(agent.backend).check(agent)
        if message:
            problems.append(f"agent {name!r} ({agent.backend}): {message}")
    if problems:
        raise BackendMissing("cannot start the run:\n  " + "\n  ".join(problems))


async def discover(root: Path) -> Git | None:
    """The repository whose checkout holds `root`; None outside any repository.

    Inside a bare repository (or a `.git` folder) there is no checkout to work in, and
    running in place there would let agents write over git's own files.
    """
    try:
        return await Git.discover(root)
    except NotARepository as exc:
        if "safe.directory" in str(exc):
            # A repository git will not open for this user (owned by another): run in
            # place, the agents would write a checkout that only looks like no repository.
            raise NotARepository(
                f"git refuses to work in {root}: {exc}; plait runs only where git does"
            ) from None
        probe = await Git(root, root).run(
            "rev-parse", "--is-bare-repository", "--is-inside-git-dir",
            cwd=root, check=False, readonly=True,
        )  # fmt: skip
        if probe.ok and "true" in probe.stdout.split():
            raise NotARepository(
                f"{root} is a bare repository or a git folder, with no checkout for agents "
                "to work in: run plait in a clone, or in a worktree of it (`git worktree add`)"
            ) from None
        return None


async def check_branch_namespace(git: Git) -> None:
    """plait's branches live under `plait/`; a branch named `plait` blocks them all (git
    cannot have a ref and a folder of refs of one name)."""
    if await git.rev_parse("refs/heads/plait") is not None:
        raise EnvironmentProblem(
            "this repository has a branch named `plait`, so git cannot create the run's "
            "branches (plait/<run>, plait/tasks/...): rename it, e.g. "
            "`git branch -m plait plait-old`"
        )


def check_plan_place(root: Path, here: Path) -> None:
    """A plan outside any repository, run from inside one, would run in the plan's own
    folder, in place (agents wrote there, and `plait status` here found no run): what
    was meant is the repository, so say how instead of guessing."""
    from plait.errors import UsageError
    from plait.planfind import repo_top

    top = repo_top(here)
    if top is not None and repo_top(root) is None:
        raise UsageError(
            f"the plan's folder {root} is in no git repository, but you are in {top}: "
            "plait runs a plan in the repository that holds it; put the plan in "
            f"{top}, or run it from {root} to work in that folder (isolation: none)"
        )


def isolation_of(plan: Plan, git: Git | None) -> Isolation:
    if plan.isolation is Isolation.WORKTREE and git is None:
        raise NotARepository(
            f"{plan.root or Path.cwd()} is not inside a git repository; "
            "run `git init` first, or set `isolation: none` in the plan"
        )
    if plan.isolation is not None:
        return plan.isolation
    return Isolation.WORKTREE if git is not None else Isolation.NONE


async def resolve_base(git: Git, plan: Plan, text: str | None) -> str:
    """The commit the run starts from; a `base` naming none is a plan error (exit 2)."""
    try:
        return await git.rev_parse_commit(plan.base or "HEAD")
    except GitError:
        if plan.base is None:
            raise EnvironmentProblem(
                f"{git.toplevel} has no commit yet: commit something before `plait run`"
            ) from None
    line = column = None
    if text is not None:
        from plait.planyaml import read_yaml

        line, column = read_yaml(text).where("base")
    message = f"{plan.base!r} does not name a commit in this repository"
    # (named as the other plan errors name it: from where the user is, if below)
    file = None
    if plan.path is not None:
        below = not os.path.relpath(plan.path).startswith("..")
        file = os.path.relpath(plan.path) if below else str(plan.path)
    raise PlanError([Problem("base", message, line, column)], file)


async def check_base(plan: Plan) -> None:
    """For `plait plan`: a `base` that names no commit here is the plan error `run`
    would give (exit 2), not a plan shown as valid. Outside a repository: unchecked."""
    if plan.base is None:
        return
    git = await discover((plan.root or Path.cwd()).resolve())
    if git is None:
        return
    text = None
    if plan.path is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = Path(plan.path).read_text(encoding="utf-8")
    await resolve_base(git, plan, text)


async def start_warnings(plan: Plan, git: Git | None, isolation: Isolation) -> list[str]:
    """What a run says at its start (and its end) that the user may not expect."""
    said: list[str] = []
    if isolation is Isolation.WORKTREE and git is not None:
        top = git.toplevel.resolve()
        copied = {p: _globbed(top, p) for p in plan.copy}  # (globbed once: trees are big)
        said += _copy_unmatched(copied, top)
        said += await _not_committed(git, plan, copied)
    return said + _budget_blind_spots(plan)


def _copy_unmatched(copied: Mapping[str, list[Path]], top: Path) -> list[str]:
    """What to say of `copy` entries that match no file in the checkout: a misspelt
    `.env.local` shows up otherwise only as agents and tests failing without it."""
    missing = [p for p, found in copied.items() if not found and not Path(p).is_absolute()]
    return [f"copy: {p!r} matches no file in {top}, so no workspace gets it" for p in missing]


async def _not_committed(git: Git, plan: Plan, copied: Mapping[str, list[Path]]) -> list[str]:
    """What to say of changes in the checkout that no worktree will have: agents start
    from a commit, and an uncommitted script or fix (the agent's own program, often)
    is simply not there. What plait itself takes from the checkout does not count: the
    plan, its prompt files, agent profiles (`.plait/`, `.claude/`), what `copy` brings;
    nor does a deleted file (the worktrees have it)."""
    listed = await git.run(
        "status", "--porcelain=v1", "-z", "--untracked-files=all",
        readonly=True, check=False,
    )  # fmt: skip
    if not listed.ok:
        return []
    top = git.toplevel.resolve()
    root = (plan.root or top).resolve()
    taken = {_inside(top, Path(plan.path)) if plan.path else None}
    taken |= {_inside(top, root / t.prompt_file) for t in plan.tasks.values() if t.prompt_file}
    brought = [m.relative_to(top).as_posix() for found in copied.values() for m in found]
    paths = [
        path
        for code, path in status_entries(listed.stdout)
        if "D" not in code
        and path not in taken
        and not {".plait", ".claude"} & set(PurePosixPath(path).parts)
        and not any(path == c or path.startswith(c + "/") for c in brought)
    ]
    paths = list(dict.fromkeys(paths))
    if not paths:
        return []
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return [f"not committed, so not in the agents' worktrees (they start from a commit): {shown}"]


def _inside(top: Path, path: Path) -> str | None:
    """`path` relative to the repository's top, None if outside it."""
    try:
        return path.resolve().relative_to(top).as_posix()
    except ValueError:
        return None


def _globbed(top: Path, pattern: str) -> list[Path]:
    """What a `copy` glob matches in the checkout (nothing for one plait refuses)."""
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        return []
    # (what `worktrees` copies: never anything under .git)
    return [m for m in top.glob(pattern) if ".git" not in m.relative_to(top).parts]


def _budget_blind_spots(plan: Plan) -> list[str]:
    """What to say of a `budget_usd` that some agents' spending cannot count toward:
    plait counts only the cost an agent reports, and never estimates one."""
    if plan.budget_usd is None:
        return []
    fixer = [plan.on_verify_failure.agent] if plan.on_verify_failure is not None else []
    used = dict.fromkeys([*(task.agent for task in plan.tasks.values()), *fixer])
    blind = [
        f"{name} ({plan.agents[name].backend})"
        for name in used
        if name in plan.agents
        and not getattr(get_backend(plan.agents[name].backend), "REPORTS_COST", False)
    ]
    if not blind:
        return []
    return [
        f"budget_usd counts only the cost agents report, and these report none: "
        f"{', '.join(blind)}; what they spend is not counted"
    ]
