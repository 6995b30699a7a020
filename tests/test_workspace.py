"""Workspaces against real git: round trips, copy/setup, hostile agents, cleanup, scale."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gitrepo import ISOLATION, GitRepo, git_identity
from plait.branches import integration_branch, snapshot_ref, task_branch
from plait.git import Git
from plait.inplace import InPlaceProvider
from plait.merge import MergeQueue
from plait.model import ScopePolicy
from plait.workspace import SetupFailed, Workspace
from plait.worktrees import WorktreeProvider

RUN = "20261127-120000-ab12"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    git_identity(monkeypatch)
    repo = GitRepo.create(
        tmp_path / "repo",
        {"README.md": "# demo\n", "src/app.py": "x = 1\n", "docs/api.md": "api\n"},
    )
    repo.git("branch", integration_branch(RUN))
    return repo


def make_provider(repo: GitRepo, **kwargs: object) -> WorktreeProvider:
    git = Git(repo.path, repo.common_dir)
    return WorktreeProvider(
        git, RUN, worktrees_dir=repo.common_dir / "plait" / "worktrees", **kwargs
    )  # type: ignore[arg-type]


def agent_git(ws: Path, *args: str) -> str:
    """git as an agent would run it inside its workspace (plain git, its own env)."""
    env = {**os.environ, **ISOLATION}
    out = subprocess.run(
        ["git", *args], cwd=ws, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


def test_open_collect_close_round_trip(repo: GitRepo) -> None:
    provider = make_provider(repo)
    base = repo.head()

    async def main() -> None:
        ws = await provider.open("api", 1, base)
        assert ws.path == provider.worktrees_dir / RUN / "api-1"
        assert repo.common_dir in ws.path.parents  # outside the user's working tree
        assert ws.branch == task_branch(RUN, "api")
        assert (ws.path / "src" / "app.py").read_text() == "x = 1\n"
        assert agent_git(ws.path, "symbolic-ref", "HEAD").strip() == f"refs/heads/{ws.branch}"

        (ws.path / "docs" / "api.md").write_text("api v2\n")
        (ws.path / "docs" / "new.md").write_text("new\n")
        (ws.path / "README.md").unlink()
        change = await provider.collect(ws, writes=["docs/**", "README.md"], message="api: v2")
        assert change.ok and change.commit is not None
        assert change.changed_files == ("README.md", "docs/api.md", "docs/new.md")
        assert change.scope_violations == () and change.protected_violations == ()
        assert repo.show(change.commit, "docs/api.md") == "api v2\n"
        assert repo.git("log", "-1", "--format=%s%n%P", change.commit).split() == [
            "api:",
            "v2",
            base,
        ]

        queue = MergeQueue(provider.git, integration_branch(RUN))
        merged = await queue.merge(change.commit, message="merge api")
        assert merged.status == "merged"
        await provider.close(ws, keep=False)
        assert not ws.path.exists()

    run(main)
    assert repo.worktrees() == [str(repo.path)]
    assert repo.branches("plait/tasks/*") == []  # merged: deleted
    assert repo.show(integration_branch(RUN), "docs/new.md") == "new\n"
    repo.fsck()


def test_agent_commits_are_kept(repo: GitRepo) -> None:
    provider = make_provider(repo)
    base = repo.head()

    async def main() -> None:
        ws = await provider.open("t", 1, base)
        (ws.path / "a.txt").write_text("first\n")
        agent_git(ws.path, "add", "a.txt")
        agent_git(ws.path, "commit", "-q", "-m", "agent's own commit")
        own = agent_git(ws.path, "rev-parse", "HEAD").strip()
        (ws.path / "b.txt").write_text("left uncommitted\n")
        change = await provider.collect(ws, writes=[], message="plait commit")
        assert change.ok and change.commit is not None
        assert repo.git("rev-parse", f"{change.commit}^").strip() == own
        assert repo.git("log", "--format=%s", f"{base}..{change.commit}").splitlines() == [
            "plait commit",
            "agent's own commit",
        ]
        assert change.changed_files == ("a.txt", "b.txt")
        await provider.close(ws, keep=False)

    run(main)
    # not merged anywhere: the branch keeps the work
    assert repo.branches("plait/tasks/*") == [task_branch(RUN, "t")]


def test_nothing_changed(repo: GitRepo) -> None:
    provider = make_provider(repo)

    async def main() -> None:
        ws = await provider.open("noop", 1, repo.head())
        change = await provider.collect(ws, writes=["src/**"], message="m")
        assert change.commit is None and change.changed_files == () and change.ok
        await provider.close(ws, keep=False)

    run(main)
    assert repo.branches("plait/tasks/*") == []
    assert repo.worktrees() == [str(repo.path)]


def test_scope_violation_and_warn(repo: GitRepo) -> None:
    async def main(policy: ScopePolicy) -> None:
        provider = make_provider(repo, scope=policy)
        ws = await provider.open(f"scoped-{policy.value}", 1, repo.head())
        (ws.path / "src" / "app.py").write_text("x = 2\n")
        (ws.path / "src" / "deep").mkdir()
        (ws.path / "src" / "deep" / "b.py").write_text("b\n")
        (ws.path / "elsewhere.txt").write_text("no\n")
        change = await provider.collect(ws, writes=["src/*.py"], message="m")
        assert change.scope_violations == ("elsewhere.txt", "src/deep/b.py")
        assert change.protected_violations == ()
        assert any("outside its writes" in p for p in change.problems)
        assert change.ok is (policy is ScopePolicy.WARN)
        await provider.close(ws, keep=not change.ok)

    asyncio.run(main(ScopePolicy.ENFORCE))
    asyncio.run(main(ScopePolicy.WARN))


def test_copy_and_setup(repo: GitRepo) -> None:
    (repo.path / ".env").write_text("SECRET=1\n")
    (repo.path / "conf").mkdir()
    (repo.path / "conf" / "local.ini").write_text("[x]\n")
    setup = [
        (sys.executable, "-c", "open('generated.txt', 'w').write('gen')"),
        ("/bin/sh", "-c", "test -f .env && echo setup-ran > setup.out"),
    ]
    provider = make_provider(repo, copy=[".env", "conf/*.ini"], setup=setup)

    async def main() -> None:
        ws = await provider.open("s", 1, repo.head())
        assert (ws.path / ".env").read_text() == "SECRET=1\n"
        assert (ws.path / "conf" / "local.ini").read_text() == "[x]\n"
        assert (ws.path / "setup.out").read_text() == "setup-ran\n"
        assert set(ws.excluded) >= {".env", "conf/local.ini", "generated.txt", "setup.out"}
        (ws.path / "src" / "app.py").write_text("x = 3\n")
        change = await provider.collect(ws, writes=["src/**"], message="m")
        # plait's own copies and setup output are never committed
        assert change.changed_files == ("src/app.py",) and change.ok
        await provider.close(ws, keep=False)

    run(main)


def test_a_gitignored_copy_file_does_not_stop_the_commit(repo: GitRepo) -> None:
    """`copy: [.env.test]` where .gitignore lists it (the usual case): git refuses a
    pathspec naming an ignored file, even one that excludes it."""
    (repo.path / ".gitignore").write_text(".env.test\n")
    repo.commit("ignore .env.test")
    (repo.path / ".env.test").write_text("SECRET=1\n")
    provider = make_provider(repo, copy=[".env.test"])

    async def main() -> None:
        ws = await provider.open("s", 1, repo.head())
        assert (ws.path / ".env.test").read_text() == "SECRET=1\n"
        (ws.path / "src" / "app.py").write_text("x = 3\n")
        change = await provider.collect(ws, writes=["src/**"], message="m")
        assert change.ok, change.problems
        assert change.changed_files == ("src/app.py",)
        await provider.close(ws, keep=False)

    run(main)


def test_a_kept_worktree_elsewhere_holding_the_task_branch_is_detached_not_a_failure(
    repo: GitRepo, tmp_path: Path
) -> None:
    """A worktree an earlier plait kept somewhere else (inside .git, before worktrees left
    it) still holds the task's branch: the next attempt detaches it and goes on."""
    elsewhere = tmp_path / "old-layout" / "t-1"
    repo.git("worktree", "add", "-q", "-b", task_branch(RUN, "t"), str(elsewhere))
    (elsewhere / "kept.txt").write_text("for inspection\n")
    provider = make_provider(repo)

    async def main() -> None:
        ws = await provider.open("t", 2, repo.head())
        assert ws.branch == task_branch(RUN, "t")
        await provider.close(ws, keep=False)

    run(main)
    assert (elsewhere / "kept.txt").read_text() == "for inspection\n"  # files kept
    assert agent_git(elsewhere, "rev-parse", "--abbrev-ref", "HEAD").strip() == "HEAD"


def test_setup_failure_raises_with_output(repo: GitRepo) -> None:
    provider = make_provider(repo, setup=[("/bin/sh", "-c", "echo npm exploded >&2; exit 3")])

    async def main() -> None:
        with pytest.raises(SetupFailed) as info:
            await provider.open("s", 1, repo.head())
        assert "exited 3" in str(info.value) and "npm exploded" in info.value.output
        # kept for inspection, with its log, and the branch is free for a retry
        assert "npm exploded" in (provider.path_for("s", 1).parent / "s-1.setup-1.log").read_text()
        provider.setup = ()
        retry = await provider.open("s", 2, repo.head())
        assert retry.branch == task_branch(RUN, "s")

    run(main)


def test_keep_for_inspection_then_retry(repo: GitRepo) -> None:
    provider = make_provider(repo)

    async def main() -> None:
        first = await provider.open("t", 1, repo.head())
        (first.path / "src" / "app.py").write_text("broken\n")
        change = await provider.collect(first, writes=["docs/**"], message="m")
        assert not change.ok
        await provider.close(first, keep=True)
        assert first.path.exists()
        # the retry reuses the task branch from the start commit
        second = await provider.open("t", 2, repo.head())
        assert (second.path / "src" / "app.py").read_text() == "x = 1\n"
        assert (first.path / "src" / "app.py").read_text() == "broken\n"
        kept_head = agent_git(first.path, "rev-parse", "HEAD").strip()
        assert kept_head == change.commit
        # moving the branch for attempt 2 kept attempt 1's commit under a ref
        assert repo.rev(snapshot_ref(RUN, "t", "before-2")) == change.commit
        await provider.close(second, keep=False)

    run(main)
    assert len(repo.worktrees()) == 2  # the failed attempt stays until clean


def test_close_snapshots_uncommitted_work(repo: GitRepo) -> None:
    provider = make_provider(repo)

    async def main() -> None:
        ws = await provider.open("t", 1, repo.head())
        (ws.path / "unsaved.txt").write_text("precious\n")
        await provider.close(ws, keep=False)  # no collect: the work is uncommitted

    run(main)
    ref = snapshot_ref(RUN, "t", 1)
    assert repo.show(ref, "unsaved.txt") == "precious\n"
    assert repo.worktrees() == [str(repo.path)]


def test_clean_removes_worktrees_and_branches(repo: GitRepo) -> None:
    provider = make_provider(repo)

    async def main() -> None:
        kept = await provider.open("failed", 1, repo.head())
        (kept.path / "work.txt").write_text("unmerged\n")
        change = await provider.collect(kept, writes=[], message="m")
        await provider.close(kept, keep=True)
        (kept.path / "scratch.txt").write_text("uncommitted\n")
        other = await provider.open("other", 1, repo.head())
        report = await provider.clean(RUN)
        assert set(report.worktrees) == {kept.path, other.path}
        assert task_branch(RUN, "failed") in report.branches
        assert snapshot_ref(RUN, "failed", "branch") in report.snapshots
        assert repo.rev(snapshot_ref(RUN, "failed", "branch")) == change.commit
        assert repo.show(snapshot_ref(RUN, "failed", 1), "scratch.txt") == "uncommitted\n"
        final = await provider.clean(RUN, result_branches=True)
        assert integration_branch(RUN) in final.branches
        # no branch that stays holds the failed attempt's work: its snapshots stay
        kept_refs = {snapshot_ref(RUN, "failed", "branch"), snapshot_ref(RUN, "failed", 1)}
        assert set(final.snapshots) == kept_refs

    run(main)
    assert repo.worktrees() == [str(repo.path)]
    assert repo.branches("plait/*") == []
    left = repo.git("for-each-ref", "--format=%(refname)", "refs/plait/").split()
    assert set(left) == {
        snapshot_ref(RUN, "failed", "branch"),
        snapshot_ref(RUN, "failed", 1),
    }
    assert not (repo.common_dir / "plait" / "worktrees" / RUN).exists()
    repo.fsck()


def test_in_place_provider(repo: GitRepo) -> None:
    (repo.path / "dirty-before.txt").write_text("already here\n")
    provider = InPlaceProvider(repo.path, Git(repo.path, repo.common_dir))

    async def main() -> None:
        ws = await provider.open("t", 1, repo.head())
        assert ws.path == repo.path
        (repo.path / "src" / "app.py").write_text("x = 9\n")
        (repo.path / "out.txt").write_text("o\n")
        change = await provider.collect(ws, writes=["src/**"], message="m")
        assert change.commit is None
        assert change.changed_files == ("out.txt", "src/app.py")
        assert change.scope_violations == ("out.txt",)
        await provider.close(ws, keep=False)

    run(main)


def test_in_place_a_staged_rename_reports_both_paths(repo: GitRepo) -> None:
    provider = InPlaceProvider(repo.path, Git(repo.path, repo.common_dir))

    async def main() -> None:
        ws = await provider.open("t", 1, repo.head())
        agent_git(repo.path, "mv", "src/app.py", "src/main.py")
        change = await provider.collect(ws, writes=["src/main.py"], message="m")
        assert change.changed_files == ("src/app.py", "src/main.py")
        assert change.scope_violations == ("src/app.py",)  # removing it was a change too

    run(main)


def test_in_place_outside_a_repository(tmp_path: Path) -> None:
    provider = InPlaceProvider(tmp_path)

    async def main() -> None:
        ws = await provider.open("t", 1, "")
        (tmp_path / "x").write_text("x")
        change = await provider.collect(ws, writes=[], message="m")
        assert change.changed_files == () and change.ok

    run(main)


# -- hostile agents --------------------------------------------------------------------

Hostile = Callable[[Workspace, GitRepo], None]


def escape_to_parent(ws: Workspace, repo: GitRepo) -> None:
    (ws.path / ".." / "escaped.txt").write_text("out\n")
    (ws.path / "ok.txt").write_text("in\n")


def write_common_hook(ws: Workspace, repo: GitRepo) -> None:
    common = Path(
        agent_git(ws.path, "rev-parse", "--path-format=absolute", "--git-common-dir").strip()
    )
    hook = common / "hooks" / "post-merge"
    hook.write_text("#!/bin/sh\ntouch /tmp/pwned\n")
    hook.chmod(0o755)


def add_fsmonitor(ws: Workspace, repo: GitRepo) -> None:
    agent_git(ws.path, "config", "core.fsmonitor", "/tmp/evil-monitor")


def switch_branch(ws: Workspace, repo: GitRepo) -> None:
    agent_git(ws.path, "switch", "-q", "-c", "evil")
    (ws.path / "evil.txt").write_text("evil\n")
    agent_git(ws.path, "add", "evil.txt")
    agent_git(ws.path, "commit", "-q", "-m", "evil")


def reset_below_base(ws: Workspace, repo: GitRepo) -> None:
    agent_git(ws.path, "reset", "-q", "--hard", "HEAD~1")


def delete_dotgit(ws: Workspace, repo: GitRepo) -> None:
    (ws.path / ".git").unlink()
    (ws.path / "src" / "app.py").write_text("x = 666\n")


def replace_dotgit_with_repo(ws: Workspace, repo: GitRepo) -> None:
    (ws.path / ".git").unlink()
    agent_git(ws.path, "init", "-q")


def write_agent_config(ws: Workspace, repo: GitRepo) -> None:
    (ws.path / ".claude").mkdir()
    (ws.path / ".claude" / "settings.json").write_text('{"permissions": {"allow": ["*"]}}')


def borrow_objects(ws: Workspace, repo: GitRepo) -> None:
    (repo.common_dir / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (repo.common_dir / "objects" / "info" / "alternates").write_text("/tmp/evil/objects\n")


def redirect_worktrees(ws: Workspace, repo: GitRepo) -> None:
    record = repo.common_dir / "plait" / "worktrees.location"
    record.parent.mkdir(exist_ok=True)
    record.write_text('{"state": "x", "worktrees": "/tmp/victim/plait/worktrees/x-0123456789ab"}')


def uncommittable(ws: Workspace, repo: GitRepo) -> None:
    (ws.path / "src" / "nested").mkdir()
    agent_git(ws.path / "src" / "nested", "init", "-q")  # a repository with no commit


def symlink_out(ws: Workspace, repo: GitRepo) -> None:
    (ws.path / "src" / "passwd").symlink_to("/etc/passwd")


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        (write_common_hook, ".git/hooks/post-merge"),
        (add_fsmonitor, ".git/config"),
        (switch_branch, "HEAD"),
        (reset_below_base, "history"),
        (delete_dotgit, ".git"),
        (replace_dotgit_with_repo, ".git"),
        (write_agent_config, ".claude/settings.json"),
        (symlink_out, "src/passwd"),
        (borrow_objects, ".git/objects/info/alternates"),
        (redirect_worktrees, ".git/plait/worktrees.location"),
        (uncommittable, "(commit failed)"),
    ],
)
def test_hostile_agents_are_caught_and_never_merged(
    repo: GitRepo, hostile: Hostile, expected: str
) -> None:
    repo.write("src/app.py", "x = 2\n")
    base = repo.commit("second")  # so that HEAD~1 exists below the start commit
    repo.git("branch", "-f", integration_branch(RUN), base)
    config_before = (repo.common_dir / "config").read_bytes()
    hooks_before = sorted(p.name for p in (repo.common_dir / "hooks").iterdir())
    provider = make_provider(repo)

    async def main() -> None:
        ws = await provider.open("bad", 1, base)
        hostile(ws, repo)
        change = await provider.collect(ws, writes=["src/**"], message="m")
        assert expected in change.protected_violations, change
        assert not change.ok
        assert change.problems
        await provider.close(ws, keep=True)  # the runner keeps failed attempts

    run(main)
    # restored, and the integration branch never received anything
    assert (repo.common_dir / "config").read_bytes() == config_before
    assert sorted(p.name for p in (repo.common_dir / "hooks").iterdir()) == hooks_before
    assert repo.head(integration_branch(RUN)) == base
    repo.fsck()


def test_escape_to_parent_is_never_collected(repo: GitRepo) -> None:
    provider = make_provider(repo)
    queue = MergeQueue(provider.git, integration_branch(RUN))

    async def main() -> None:
        ws = await provider.open("t", 1, repo.head())
        escape_to_parent(ws, repo)
        change = await provider.collect(ws, writes=[], message="m")
        assert change.changed_files == ("ok.txt",)
        assert change.commit is not None
        result = await queue.merge(change.commit, message="merge")
        assert result.status == "merged"
        await provider.close(ws, keep=False)

    run(main)
    tree = repo.git("ls-tree", "-r", "--name-only", integration_branch(RUN)).split()
    assert "escaped.txt" not in tree and "ok.txt" in tree


# -- the user's checkout and scale ----------------------------------------------------


def test_user_checkout_is_untouched(repo: GitRepo) -> None:
    repo.write("src/app.py", "x = 'uncommitted edit'\n")
    repo.write("staged.txt", "staged\n")
    repo.git("add", "staged.txt")
    repo.write("untracked.txt", "mine\n")
    before = repo.fingerprint()
    provider = make_provider(repo)
    queue = MergeQueue(provider.git, integration_branch(RUN), verify=("/bin/sh", "-c", "true"))

    async def task(name: str, rel: str) -> None:
        ws = await provider.open(name, 1, await queue.tip())
        (ws.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws.path / rel).write_text(f"{name}\n")
        change = await provider.collect(ws, writes=[], message=name)
        assert change.commit is not None
        assert (await queue.merge(change.commit, message=f"merge {name}")).status == "merged"
        await provider.close(ws, keep=False)

    async def main() -> None:
        await asyncio.gather(*(task(f"t{i}", f"pkg{i}/mod.py") for i in range(4)))
        assert (await queue.verify()).ok

    run(main)
    assert repo.fingerprint() == before
    for i in range(4):
        assert repo.show(integration_branch(RUN), f"pkg{i}/mod.py") == f"t{i}\n"
    repo.fsck()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_200_workspaces_16_at_a_time(repo: GitRepo) -> None:
    provider = make_provider(repo)
    base = repo.head()
    gate = asyncio.Semaphore(16)
    failures: list[BaseException] = []

    async def one(i: int) -> None:
        async with gate:
            try:
                ws = await provider.open(f"task{i}", 1, base)
                assert (ws.path / "README.md").exists()
                await provider.close(ws, keep=False)
            except Exception as exc:  # count, do not stop the others
                failures.append(exc)

    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            for i in range(200):
                group.create_task(one(i))

    run(main)
    assert failures == []
    assert repo.worktrees() == [str(repo.path)]
    assert repo.branches("plait/*") == [integration_branch(RUN)]
    assert not list((repo.common_dir / "worktrees").glob("*"))
    repo.fsck()


def test_open_after_an_interrupted_run(repo: GitRepo) -> None:
    """A crash left attempt 1's worktree on the branch; a new plait process opens again."""

    async def crashed() -> None:
        ws = await make_provider(repo).open("t", 1, repo.head())
        (ws.path / "half.txt").write_text("half done\n")  # then plait is killed

    async def resumed() -> None:
        provider = make_provider(repo)
        again = await provider.open("t", 1, repo.head())  # same attempt number: replaced
        assert not (again.path / "half.txt").exists()
        await provider.close(again, keep=True)
        retry = await provider.open("t", 2, repo.head())  # branch was held by attempt 1
        assert retry.branch == task_branch(RUN, "t")
        await provider.close(retry, keep=False)

    run(crashed)
    run(resumed)
    assert repo.show(snapshot_ref(RUN, "t", 1), "half.txt") == "half done\n"
    repo.fsck()


def test_stale_index_lock_of_a_killed_agent(repo: GitRepo) -> None:
    provider = make_provider(repo)

    async def main() -> None:
        ws = await provider.open("t", 1, repo.head())
        (ws.path / "src" / "app.py").write_text("x = 5\n")
        assert ws.git_dir is not None
        (ws.git_dir / "index.lock").write_text("")  # its git was SIGKILLed mid-add
        change = await provider.collect(ws, writes=["src/**"], message="m")
        assert change.ok and change.changed_files == ("src/app.py",)

    run(main)


def test_shared_git_change_fails_every_attempt_running_at_the_time(repo: GitRepo) -> None:
    provider = make_provider(repo)

    async def main() -> None:
        guilty = await provider.open("guilty", 1, repo.head())
        bystander = await provider.open("bystander", 1, repo.head())
        write_common_hook(guilty, repo)
        # the bystander collects first and restores the hooks folder...
        seen = await provider.collect(bystander, writes=[], message="m")
        assert ".git/hooks/post-merge" in seen.protected_violations
        # it is not told it did it: only that plait cannot tell who did
        assert any("cannot tell which" in p for p in seen.problems), seen.problems
        assert not (repo.common_dir / "hooks" / "post-merge").exists()
        # ...and the agent that did it is still caught
        caught = await provider.collect(guilty, writes=[], message="m")
        assert ".git/hooks/post-merge" in caught.protected_violations and not caught.ok
        later = await provider.open("later", 1, repo.head())  # opened after: clean
        assert (await provider.collect(later, writes=[], message="m")).ok

    run(main)


def test_clean_all_runs_spares_the_users_own_plait_branches(repo: GitRepo) -> None:
    repo.git("branch", "plait/feature")  # the user's, not a run
    provider = make_provider(repo)

    async def main() -> None:
        ws = await provider.open("t", 1, repo.head())
        (ws.path / "x.txt").write_text("x\n")
        await provider.collect(ws, writes=[], message="m")
        report = await provider.clean(None, result_branches=True)
        assert set(report.branches) == {integration_branch(RUN), task_branch(RUN, "t")}

    run(main)
    assert repo.branches("plait/*") == ["plait/feature"]
    assert repo.worktrees() == [str(repo.path)]


def test_in_place_snapshots_are_shared_but_never_older_than_the_request() -> None:
    """Callers asking together share one snapshot; each gets one begun after it asked."""
    from plait.inplace import _SharedSnapshot

    begun: list[int] = []

    async def take() -> dict[str, str]:
        number = len(begun) + 1
        begun.append(number)
        await asyncio.sleep(0.05)
        return {"snapshot": str(number)}

    async def main() -> None:
        shared = _SharedSnapshot(take)
        first = asyncio.ensure_future(shared.fresh())
        await asyncio.sleep(0.01)  # snapshot 1 is being taken
        late = [asyncio.ensure_future(shared.fresh()) for _ in range(10)]
        assert (await first)["snapshot"] == "1"
        # Asked while snapshot 1 was under way: it may miss their changes, so the
        # ten share snapshot 2 instead.
        assert {(await call)["snapshot"] for call in late} == {"2"}
        assert begun == [1, 2]
        # The one taking a snapshot is cancelled: the next in line takes its own.
        taker = asyncio.ensure_future(shared.fresh())
        await asyncio.sleep(0.01)
        waiter = asyncio.ensure_future(shared.fresh())
        await asyncio.sleep(0)
        taker.cancel()
        assert (await waiter)["snapshot"] == "4"

    asyncio.run(main())


def test_in_place_attempts_at_once_each_see_only_their_own_start(repo: GitRepo) -> None:
    """Many attempts opening and collecting together (sharing snapshots) still report
    exactly the changes made after each opened."""
    provider = InPlaceProvider(repo.path, Git(repo.path, repo.common_dir))

    async def attempt(n: int) -> tuple[str, ...]:
        (repo.path / f"before-{n}.txt").write_text("made before the attempt opened\n")
        ws = await provider.open(f"t{n}", 1, repo.head())
        (repo.path / f"during-{n}.txt").write_text("x\n")
        await asyncio.sleep(0.01 * (n % 3))
        change = await provider.collect(ws, writes=[], message="m")
        return change.changed_files

    async def main() -> list[tuple[str, ...]]:
        return list(await asyncio.gather(*(attempt(n) for n in range(8))))

    for n, files in enumerate(asyncio.run(main())):
        assert f"during-{n}.txt" in files
        assert f"before-{n}.txt" not in files
