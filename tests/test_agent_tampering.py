"""Agents that attack plait's own bookkeeping rather than the code.

An agent that deletes or replaces its workspace, moves the run's refs it does not
own (the run's integration branch, another task's branch, snapshots), or hides
edits behind files its setup touched: each fails its own attempt (or has its work
committed and checked), and every other task goes on. The user's own branches and
tags are theirs: plait never writes them, even to undo what an agent did. Provider-level
tests use real git in a temporary repository; the end-to-end ones run the real
CLI as a subprocess with small shell agents.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import PlaitProc, write_plan
from gitrepo import ISOLATION, GitRepo, git_identity
from plait.branches import integration_branch, snapshot_ref, task_branch
from plait.git import Git
from plait.merge import MergeQueue
from plait.worktrees import WorktreeProvider

RUN = "20261128-120000-cd34"


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    git_identity(monkeypatch)
    repo = GitRepo.create(
        tmp_path / "local", {"README.md": "# demo\n", "src/app.py": "x = 1\n", "lock": "v1\n"}
    )
    repo.git("branch", integration_branch(RUN))
    return repo


def provider_for(repo: GitRepo, **kwargs: Any) -> WorktreeProvider:
    git = Git(repo.path, repo.common_dir)
    return WorktreeProvider(git, RUN, worktrees_dir=repo.common_dir / "plait" / "worktrees",
                            **kwargs)  # fmt: skip


def agent_git(ws: Path, *args: str) -> str:
    """git as an agent runs it in its workspace: plain git, nothing of plait's."""
    env = {**os.environ, **ISOLATION}
    done = subprocess.run(["git", *args], cwd=ws, env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout.strip()


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


def forge_commit(ws: Path, on: str, name: str) -> str:
    """A commit adding `name` on top of `on`, made with plumbing from inside `ws`."""
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=ws, input="evil\n",
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    listing = agent_git(ws, "ls-tree", on) + f"\n100644 blob {blob}\t{name}\n"
    tree = subprocess.run(["git", "mktree"], cwd=ws, input=listing, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    return agent_git(ws, "commit-tree", tree, "-p", on, "-m", "sneaky")


# --- 1. the workspace deleted or replaced ---------------------------------------------


@pytest.mark.parametrize("how", ["deleted", "symlink", "new-folder"])
def test_deleted_or_replaced_workspace_fails_only_that_attempt(
    local: GitRepo, tmp_path: Path, how: str
) -> None:
    provider = provider_for(local)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not plait's\n")

    async def main() -> None:
        ws = await provider.open("nuker", 1, local.head())
        other = await provider.open("other", 1, local.head())
        subprocess.run(["rm", "-rf", str(ws.path)], check=True)
        if how == "symlink":
            ws.path.symlink_to(outside)
        elif how == "new-folder":
            ws.path.mkdir()
            (ws.path / "README.md").write_text("agent's\n")
        change = await provider.collect(ws, writes=[], message="m")
        assert not change.ok
        if how == "new-folder":  # the file system may give it the old inode: its .git is gone
            assert {"(workspace)", ".git"} & set(change.protected_violations)
        else:
            assert "(workspace)" in change.protected_violations
            assert any("deleted or replaced its workspace" in p for p in change.problems)
        # kept for inspection is impossible: the registration goes, the branch is freed
        await provider.close(ws, keep=True)
        # the other attempt is unaffected
        (other.path / "src" / "app.py").write_text("x = 2\n")
        good = await provider.collect(other, writes=["src/**"], message="m")
        assert good.ok and good.changed_files == ("src/app.py",)
        await provider.close(other, keep=False)
        # the same task runs again, on the same branch
        again = await provider.open("nuker", 2, local.head())
        (again.path / "src" / "app.py").write_text("x = 3\n")
        assert (await provider.collect(again, writes=[], message="m")).ok
        await provider.close(again, keep=True)
        report = await provider.clean(RUN)
        assert task_branch(RUN, "nuker") in report.branches

    run(main)
    # nothing outside was touched, no worktree is left registered, git is sound
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert local.worktrees() == [str(local.path)]
    assert not any(p.is_symlink() for p in (local.common_dir / "plait" / "worktrees").rglob("*"))
    local.fsck()


def test_workspace_deleted_after_committing_keeps_its_commit(local: GitRepo) -> None:
    provider = provider_for(local)

    async def main() -> None:
        ws = await provider.open("t", 1, local.head())
        (ws.path / "new.txt").write_text("work\n")
        agent_git(ws.path, "add", "-A")
        agent_git(ws.path, "-c", "user.name=a", "-c", "user.email=a@a", "commit", "-qm", "w")
        subprocess.run(["rm", "-rf", str(ws.path)], check=True)
        change = await provider.collect(ws, writes=[], message="m")
        assert not change.ok and change.changed_files == ("new.txt",)
        await provider.close(ws, keep=False)  # no crash; unmerged commit kept on its branch

    run(main)
    assert local.show(task_branch(RUN, "t"), "new.txt") == "work\n"
    assert local.worktrees() == [str(local.path)]


# --- 2. refs moved by an agent --------------------------------------------------------


def test_refs_an_agent_moves_are_put_back_and_fail_it(local: GitRepo) -> None:
    provider = provider_for(local)
    base = local.head()
    other_branch = f"refs/heads/{task_branch(RUN, 'other')}"
    snapshot = snapshot_ref(RUN, "other", 1)

    async def main() -> None:
        other = await provider.open("other", 1, base)
        ws = await provider.open("evil", 1, base)
        evil = forge_commit(ws.path, base, "evil.txt")
        agent_git(ws.path, "update-ref", f"refs/heads/{integration_branch(RUN)}", evil)
        agent_git(ws.path, "update-ref", other_branch, evil)
        agent_git(ws.path, "update-ref", snapshot, evil)
        # its own branch is its own: committing there is fine
        (ws.path / "ok.txt").write_text("ok\n")
        change = await provider.collect(ws, writes=[], message="m")
        assert not change.ok
        moved = {f"refs/heads/{integration_branch(RUN)}", other_branch, snapshot}
        assert moved <= set(change.protected_violations)
        assert any(other_branch in p and "restored" in p for p in change.problems)
        # the attempt running beside it cannot be cleared: it reports the moves too
        bystander = await provider.collect(other, writes=[], message="m")
        assert other_branch in bystander.protected_violations
        later = await provider.open("later", 1, base)  # opened after: clean
        (later.path / "later.txt").write_text("l\n")
        assert (await provider.collect(later, writes=[], message="m")).ok

    run(main)
    assert local.head(integration_branch(RUN)) == base
    assert local.head(task_branch(RUN, "other")) == base
    assert local.rev(snapshot) is None


def test_the_users_branches_and_tags_are_never_written(local: GitRepo) -> None:
    """The user commits and tags while attempts run: no attempt fails, nothing is put
    back. (An agent that moves them runs as the user: plait cannot tell them apart.)"""
    provider = provider_for(local)
    base = local.head()

    async def main() -> None:
        ws = await provider.open("a", 1, base)
        local.write("mine.txt", "the user's own work\n")
        users = local.commit("the user goes on working")
        local.git("tag", "v1")
        local.git("branch", "topic")
        (ws.path / "a.txt").write_text("a\n")
        change = await provider.collect(ws, writes=[], message="m")
        assert change.ok, change.problems
        assert local.head("main") == users

    run(main)
    assert local.head("main") == local.head("v1") == local.head("topic")


def test_a_branch_an_agent_checks_out_is_pinned_on_it_alone(local: GitRepo) -> None:
    provider = provider_for(local)

    async def main() -> None:
        bystander = await provider.open("bystander", 1, local.head())
        ws = await provider.open("brancher", 1, local.head())
        agent_git(ws.path, "checkout", "-q", "-b", "mine")
        change = await provider.collect(ws, writes=[], message="m")
        assert "HEAD" in change.protected_violations
        (bystander.path / "b.txt").write_text("b\n")
        assert (await provider.collect(bystander, writes=[], message="m")).ok
        await provider.close(ws, keep=True)

    run(main)


def test_an_attempt_moving_its_own_branch_is_not_held_against_others(local: GitRepo) -> None:
    """A commit or a `git reset` in an attempt's own worktree moves its own task branch:
    the attempts open beside it see that ref move and must not take it for tampering."""
    provider = provider_for(local)

    async def main() -> None:
        bystander = await provider.open("bystander", 1, local.head())
        ws = await provider.open("resetter", 1, local.head())
        agent_git(ws.path, "commit", "-q", "--allow-empty", "-m", "one")
        agent_git(ws.path, "commit", "-q", "--allow-empty", "-m", "two")
        agent_git(ws.path, "reset", "-q", "--hard", "HEAD~")
        (bystander.path / "b.txt").write_text("b\n")
        change = await provider.collect(bystander, writes=[], message="m")
        assert change.ok, change.problems
        own = await provider.collect(ws, writes=[], message="m")
        assert own.ok, own.problems  # still on top of its start commit: fine

    run(main)


def test_a_closed_attempts_own_commit_is_not_tampering(local: GitRepo) -> None:
    """An agent commits on its own branch, its attempt fails and closes (kept): the
    attempt opened beside it before that commit must neither fail for it nor rewind it."""
    provider = provider_for(local)

    async def main() -> None:
        bystander = await provider.open("bystander", 1, local.head())
        ws = await provider.open("committer", 1, local.head())
        (ws.path / "work.txt").write_text("work\n")
        agent_git(ws.path, "add", "-A")
        agent_git(ws.path, "commit", "-q", "-m", "the agent's own commit")
        own = await provider.collect(ws, writes=["nothing/**"], message="m")
        assert not own.ok and own.commit is not None  # out of scope: failed, kept
        await provider.close(ws, keep=True)
        (bystander.path / "b.txt").write_text("b\n")
        change = await provider.collect(bystander, writes=[], message="m")
        assert change.ok, change.problems
        assert local.head(task_branch(RUN, "committer")) == own.commit  # not rewound

    run(main)


def test_a_merge_landing_during_the_ref_check_is_not_tampering(
    local: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check reads the refs, then judges them: plait's own merge landing between the
    two must not make the value just read look foreign."""
    provider = provider_for(local)
    git = provider.git
    ref = f"refs/heads/{integration_branch(RUN)}"

    async def main() -> None:
        base = local.head()
        ws = await provider.open("a", 1, base)
        first = forge_commit(ws.path, base, "one.txt")
        second = forge_commit(ws.path, first, "two.txt")
        await git.update_ref(ref, first)  # a merge of plait's
        real = git.list_refs
        merging: list[asyncio.Task[bool]] = []

        async def read_then_merge(*patterns: str) -> dict[str, str]:
            seen = await real(*patterns)
            # the merge queue's next merge, from another task, while the check goes on
            merging.append(asyncio.ensure_future(git.update_ref(ref, second, first)))
            await asyncio.sleep(0.1)
            return seen

        monkeypatch.setattr(git, "list_refs", read_then_merge)
        change = await provider.collect(ws, writes=[], message="m")
        monkeypatch.setattr(git, "list_refs", real)
        assert await merging[0]
        assert change.ok, change.problems
        assert local.head(integration_branch(RUN)) == second

    run(main)


def test_plaits_own_ref_writes_are_not_tampering(local: GitRepo) -> None:
    """Merges, commits, snapshots and other attempts' branches move while an attempt
    runs: none of that is held against it."""
    provider = provider_for(local)
    queue = MergeQueue(provider.git, integration_branch(RUN))

    async def main() -> None:
        base = await queue.tip()
        watcher = await provider.open("watcher", 1, base)
        for n in range(3):
            ws = await provider.open(f"t{n}", 1, await queue.tip())
            (ws.path / f"t{n}.txt").write_text(f"{n}\n")
            change = await provider.collect(ws, writes=[], message="m")
            assert change.ok and change.commit is not None
            assert (await queue.merge(change.commit, message="m")).status == "merged"
            await provider.close(ws, keep=n == 1)
        (watcher.path / "w.txt").write_text("w\n")
        change = await provider.collect(watcher, writes=[], message="m")
        assert change.ok, change.problems

    run(main)


def write_evil_plan(repo: GitRepo, tmp_path: Path) -> None:
    evil = tmp_path / "evil.sh"
    evil.write_text(
        "#!/bin/sh\n"
        "mkdir -p docs && echo doc > docs/x.md\n"
        'tip=$(git rev-parse "refs/heads/plait/$PLAIT_RUN_ID")\n'
        "blob=$(echo evil | git hash-object -w --stdin)\n"
        'tree=$( (git ls-tree "$tip"; printf \'100644 blob %s\\tevil.txt\\n\' "$blob")'
        " | git mktree)\n"
        'c=$(git commit-tree "$tree" -p "$tip" -m sneaky)\n'
        'git update-ref "refs/heads/plait/$PLAIT_RUN_ID" "$c" "$tip"\n'
        'git update-ref refs/heads/main "$c"\n'
    )
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nname: evil\njobs: 2\nagents:\n"
        f'  evil: {{backend: command, command: ["sh", "{evil}"]}}\n'
        "  nuke: {backend: command,"
        ' command: ["sh", "-c", "cd / && rm -rf \\"$PLAIT_WORKSPACE\\""]}\n'
        '  fine: {backend: command, command: ["sh", "-c", "sleep 1; echo ok > ok.txt"]}\n'
        "tasks:\n"
        '  docs: {agent: evil, prompt: write docs, writes: ["docs/**"]}\n'
        "  nuker: {agent: nuke, prompt: nuke}\n"
        # beside an agent that moved refs, an attempt cannot be cleared: it runs again
        "  other: {agent: fine, prompt: fine, retries: 2}\n"
        "  after: {agent: fine, prompt: after, needs: other}\n",
    )
    repo.commit("plan")


def test_run_with_hostile_agents_end_to_end(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """The reviewer's repros through the real CLI: a workspace deleted, the run's branch
    and the user's main moved. Only those attempts fail; the rest merges. The run's
    branch is put back; main is the user's: plait leaves it where the agent put it."""
    write_evil_plan(repo, tmp_path)
    done = plait_proc("run", "--json", cwd=repo.path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    status = json.loads(done.stdout)
    tasks = {t["id"]: t for t in status["tasks"]}
    assert {k: v["status"] for k, v in tasks.items()} == {
        "docs": "failed",
        "nuker": "failed",
        "other": "succeeded",
        "after": "succeeded",
    }
    assert "deleted or replaced its workspace" in tasks["nuker"]["error"]
    assert f"refs/heads/plait/{status['run']}" in tasks["docs"]["error"]
    sneaky = repo.head("main")
    assert repo.show(sneaky, "evil.txt") == "evil\n"  # the agent's doing, left alone
    files = repo.git("ls-tree", "-r", "--name-only", status["branch"]).split()
    assert "evil.txt" not in files and "docs/x.md" not in files
    assert "ok.txt" in files
    # the bookkeeping stays sane: clean afterwards works, leaves no worktree behind
    cleaned = plait_proc("clean", cwd=repo.path, timeout=60)
    assert cleaned.returncode == 0, cleaned.stderr
    assert repo.worktrees() == [str(repo.path)]
    repo.fsck()


# --- 3. files setup changed -----------------------------------------------------------


def test_agent_edits_to_files_setup_changed_are_committed(local: GitRepo) -> None:
    """setup rewrites a tracked lockfile (like `npm install`): left as setup left it, it
    is not the agent's change; edited by the agent, it is, and is held against scope."""
    setup = [("/bin/sh", "-c", "echo v2 >> lock; echo setup >> README.md; echo n > gen.txt")]
    provider = provider_for(local, setup=setup)

    async def main() -> None:
        ws = await provider.open("t", 1, local.head())
        (ws.path / "lock").write_text("agent's lock\n")  # README.md as setup left it
        (ws.path / "gen.txt").write_text("agent\n")  # untracked setup output: never
        (ws.path / "src" / "app.py").write_text("x = 2\n")
        change = await provider.collect(ws, writes=["src/**"], message="m")
        assert change.changed_files == ("lock", "src/app.py")
        assert change.scope_violations == ("lock",) and not change.ok
        assert change.commit is not None
        assert local.show(change.commit, "lock") == "agent's lock\n"
        assert local.show(change.commit, "README.md") == "# demo\n"
        await provider.close(ws, keep=True)
        # an agent that leaves setup's changes alone changes nothing
        quiet = await provider.open("q", 1, local.head())
        (quiet.path / "src" / "app.py").write_text("x = 5\n")
        done = await provider.collect(quiet, writes=["src/**"], message="m")
        assert done.ok and done.changed_files == ("src/app.py",)
        await provider.close(quiet, keep=False)

    run(main)


def test_setup_touched_file_edited_by_the_agent_reaches_the_result(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nname: setup-touch\n"
        'setup: [["sh", "-c", "echo \'lock v2\' >> README.md"]]\n'
        "agents:\n"
        '  w: {backend: command, command: ["sh", "-c", "echo mine > README.md"]}\n'
        "tasks:\n  a: {agent: w, prompt: a}\n",
    )
    repo.commit("plan")
    done = plait_proc("run", "--json", cwd=repo.path, timeout=90)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["tasks"][0]["changed_files"] == ["README.md"]
    assert repo.show(status["branch"], "README.md") == "mine\n"


# --- 4. the output file ---------------------------------------------------------------


def test_output_file_is_neither_committed_nor_scope_checked(local: GitRepo) -> None:
    provider = provider_for(local)

    async def main() -> None:
        ws = await provider.open("t", 1, local.head())
        (ws.path / "notes").mkdir()
        (ws.path / "notes" / "result.md").write_text("THE RESULT\n")
        (ws.path / "out.txt").write_text("via PLAIT_OUTPUT_FILE\n")
        (ws.path / "src" / "b.py").write_text("b = 1\n")
        change = await provider.collect(
            ws, writes=["src/**"], message="m",
            outputs=["notes/result.md", ws.path / "out.txt", "/elsewhere/x.out"],
        )  # fmt: skip
        assert change.ok, change.problems
        assert change.changed_files == ("src/b.py",)
        assert change.commit is not None
        tree = local.git("ls-tree", "-r", "--name-only", change.commit).split()
        assert "notes/result.md" not in tree and "out.txt" not in tree
        # still there for the caller to read; not snapshotted as lost work on close
        assert (ws.path / "notes" / "result.md").read_text() == "THE RESULT\n"
        await provider.close(ws, keep=False)

    run(main)
    assert local.git("for-each-ref", "refs/plait/") == ""


def test_output_file_in_place_is_not_a_change(local: GitRepo) -> None:
    from plait.inplace import InPlaceProvider

    provider = InPlaceProvider(local.path, Git(local.path, local.common_dir))

    async def main() -> None:
        ws = await provider.open("t", 1, local.head())
        (local.path / "notes").mkdir()
        (local.path / "notes" / "result.md").write_text("THE RESULT\n")
        (local.path / "src" / "b.py").write_text("b = 1\n")
        change = await provider.collect(
            ws, writes=["src/**"], message="m", outputs=["notes/result.md"]
        )
        assert change.ok and change.changed_files == ("src/b.py",)

    run(main)


def run_in_place(
    repo: GitRepo, plait_proc: PlaitProc, script: str, tasks: str
) -> dict[str, dict[str, Any]]:
    """`plait run --json` of a plan with `isolation: none` whose agent `sh` runs `script`
    in bash; it must exit 1 (an agent misbehaved). Its tasks, by id."""
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nisolation: none\n"
        f"agents:\n  sh: {{backend: command, command: [bash, -c, {json.dumps(script)}]}}\n"
        "tasks:\n" + tasks,
    )
    done = plait_proc("run", "--json", cwd=repo.path, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    return {t["id"]: t for t in json.loads(done.stdout)["tasks"]}


def test_in_place_a_hook_or_config_an_agent_writes_fails_it_and_is_put_back(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """With `isolation: none` git's own files went unwatched: a pre-commit hook an agent
    planted ran on the user's next commit, and its `git config` stayed."""
    config_before = (repo.common_dir / "config").read_bytes()
    script = (
        "common=$(git rev-parse --git-common-dir); "
        "printf '#!/bin/sh\\necho pwned\\n' > \"$common/hooks/pre-commit\"; "
        'chmod +x "$common/hooks/pre-commit"; git config core.pager evil; echo a > a.txt'
    )
    task = run_in_place(repo, plait_proc, script, "  a: {agent: sh, prompt: x, writes: [a.txt]}\n")[
        "a"
    ]
    assert task["status"] == "failed" and ".git/hooks/pre-commit" in task["error"], task
    assert not (repo.common_dir / "hooks" / "pre-commit").exists()
    assert (repo.common_dir / "config").read_bytes() == config_before


def test_in_place_a_retry_is_judged_with_what_earlier_attempts_left(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """In place, attempt 1 wrote c.txt outside its `writes` and failed; attempt 2 wrote
    the same bytes, "changed nothing", and the task succeeded with c.txt left behind."""
    tasks = "  c: {agent: sh, prompt: x, writes: [x.txt], retries: 1}\n"
    task = run_in_place(repo, plait_proc, "echo c > c.txt", tasks)["c"]
    assert (task["status"], task["attempts"]) == ("failed", 2)
    assert "c.txt" in task["error"] and "c.txt" in task["scope_violations"]


def test_in_place_what_an_agent_commits_counts_as_its_change(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """An agent that commits leaves a clean tree: its files were "no change", and a
    file outside its `writes` passed, committed on the user's branch."""
    script = "echo s > stray.txt; echo a > a.txt; git add stray.txt a.txt; git commit -qm agent"
    task = run_in_place(repo, plait_proc, script, "  a: {agent: sh, prompt: x, writes: [a.txt]}\n")[
        "a"
    ]
    assert task["status"] == "failed" and task["scope_violations"] == ["stray.txt"], task
    assert {"a.txt", "stray.txt"} <= set(task["changed_files"])


def test_status_v2_gives_head_and_every_kind_of_path() -> None:
    from plait.inplace import _status_v2

    oid = "a" * 40
    records = [
        f"# branch.oid {oid}",
        "# branch.head main",
        f"1 .M N... 100644 100644 100644 {oid} {oid} src/with space.py",
        f"u UU N... 100644 100644 100644 100644 {oid} {oid} {oid} conflicted.txt",
        "? new file.txt",
        "",
    ]
    assert _status_v2("\0".join(records)) == (
        oid,
        ["src/with space.py", "conflicted.txt", "new file.txt"],
    )
    assert _status_v2("# branch.oid (initial)\0# branch.head main\0? a\0") == (None, ["a"])


def test_in_place_a_file_no_task_may_write_names_the_tasks_that_ran_beside(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """`a` writes stray.txt, which no task may write, while `b` runs: both fail (which
    agent wrote it cannot be told in place), and each says so rather than accusing."""
    agent = (
        'read d1 files d2 < "$PLAIT_PROMPT_FILE"; sleep $d1; '
        "for f in ${files//,/ }; do echo $PLAIT_TASK_ID > $f; done; sleep $d2"
    )
    tasks = run_in_place(
        repo,
        plait_proc,
        agent,
        "  a: {agent: sh, prompt: '0.2 a.txt,stray.txt 0.2', writes: [a.txt]}\n"
        "  b: {agent: sh, prompt: '0 b.txt 1.5', writes: [b.txt]}\n",
    )
    for me, other in (("a", "b"), ("b", "a")):
        assert tasks[me]["status"] == "failed", tasks[me]
        assert "stray.txt" in tasks[me]["error"]
        assert f"other tasks ran beside it ({other})" in tasks[me]["error"], tasks[me]
