"""`plait apply` and `plait clean --branches` never lose the user's work.

`apply` decides whether the merge can go through before it touches the checkout: an
ignored or untracked file where the result adds one, a merge that would conflict, an
operation of the user's own in progress (a merge, a rebase...) or a detached HEAD
is refused with the checkout byte-identical. `clean --branches` keeps a result
branch that no branch of the user's holds as a snapshot ref, and counts only the
refs it made itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitrepo import GitRepo, git_identity
from test_e2e_git import outline, plait, plan_text, run_plan

TWO_TASKS = {
    "feature": {"do": ["write src/feature.py 'ON = True'"], "writes": ["src/feature.py"]},
    "readme": {"do": ["append README.md 'Has a feature.'"], "writes": ["README.md"]},
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    git_identity(monkeypatch)
    monkeypatch.delenv("PLAIT_HOME", raising=False)
    return GitRepo.create(tmp_path / "repo", {"README.md": "# app\n", "src/app.py": "x = 1\n"})


def checkout(repo: GitRepo) -> dict[str, Any]:
    """HEAD, the branch, the index and every file under the top level (ignored ones too)."""
    files = {
        p.relative_to(repo.path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.path.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo.path).parts
    }
    index = hashlib.sha256((repo.common_dir / "index").read_bytes()).hexdigest()
    branch = repo.git("symbolic-ref", "-q", "HEAD", check=False)
    return {"HEAD": repo.head(), "branch": branch, "index": index, **files}


def succeeded_run(repo: GitRepo, *args: str) -> dict[str, Any]:
    code, status = run_plan(repo, plan_text(TWO_TASKS), "-j", "2", *args)
    assert code == 0, outline(status)
    return status


def ignore(repo: GitRepo, pattern: str) -> None:
    with (repo.common_dir / "info" / "exclude").open("a") as exclude:
        exclude.write(pattern + "\n")


# -- files the result would add, where the user has files of their own ---------------


def test_a_conflicting_apply_keeps_the_ignored_file_the_result_would_add(repo: GitRepo) -> None:
    run = succeeded_run(repo)["run"]
    ignore(repo, "src/feature.py")
    repo.write("src/feature.py", "the user's ignored local settings\n")
    repo.write("README.md", "# app\nThe user's own line.\n")
    repo.commit("user edits the README meanwhile", "README.md")
    before = checkout(repo)

    refused = plait(repo, "apply", run)

    assert refused.returncode == 1, refused.stdout
    # the file in the way is named first: `git merge` by hand would overwrite it too
    assert "src/feature.py" in refused.stderr and "move them away" in refused.stderr.lower()
    assert "README.md" in refused.stderr  # and the conflict waiting after it
    assert "nothing was changed" in refused.stderr
    assert checkout(repo) == before
    assert not (repo.common_dir / "MERGE_HEAD").exists()

    # moved away: the conflict is what stops it now, and `git merge` is the right advice
    (repo.path / "src" / "feature.py").rename(repo.path / "feature.py.mine")
    before = checkout(repo)
    refused = plait(repo, "apply", run)
    assert refused.returncode == 1
    assert "conflict" in refused.stderr and "README.md" in refused.stderr
    assert f"git merge plait/{run}" in refused.stderr
    assert checkout(repo) == before
    assert not (repo.common_dir / "MERGE_HEAD").exists()
    repo.git("merge", f"plait/{run}", check=False)
    assert repo.rev("MERGE_HEAD") is not None  # to resolve by hand


def _ignored_file(repo: GitRepo) -> None:
    ignore(repo, "src/feature.py")
    repo.write("src/feature.py", "the user's ignored file\n")


def _ignored_folder(repo: GitRepo) -> None:
    ignore(repo, "src/feature.py")
    repo.write("src/feature.py/notes.txt", "the user's notes\n")


def _untracked_file(repo: GitRepo) -> None:
    repo.write("src/feature.py", "the user's own, never committed\n")


def _ignored_by_a_folder_pattern(repo: GitRepo) -> None:
    ignore(repo, "src/")  # src/app.py stays tracked; any new file in src is ignored
    repo.write("src/feature.py", "ignored, in a tracked folder\n")


@pytest.mark.parametrize(
    "in_the_way",
    [_ignored_file, _ignored_folder, _untracked_file, _ignored_by_a_folder_pattern],
    ids=["ignored-file", "ignored-folder", "untracked-file", "folder-pattern"],
)
def test_apply_never_overwrites_a_file_the_result_would_add(
    repo: GitRepo, in_the_way: Callable[[GitRepo], None]
) -> None:
    run = succeeded_run(repo)["run"]
    in_the_way(repo)
    before = checkout(repo)

    refused = plait(repo, "apply", run)

    assert refused.returncode == 1, refused.stdout
    assert "src/feature.py" in refused.stderr and "untracked or ignored" in refused.stderr
    assert "move them away" in refused.stderr.lower() and f"plait apply {run}" in refused.stderr
    assert "git merge" not in refused.stderr  # it would overwrite or refuse the same
    assert checkout(repo) == before

    # the advice works: moved away, the run applies
    (repo.path / "src" / "feature.py").rename(repo.path / "moved-away")
    applied = plait(repo, "apply", run)
    assert applied.returncode == 0, applied.stderr
    assert (repo.path / "src" / "feature.py").read_text() == "ON = True\n"


def test_a_result_adding_a_file_under_an_ignored_file_of_that_name_is_refused(
    repo: GitRepo,
) -> None:
    tasks = {"deep": {"do": ["write notes/today.md 'plans'"], "writes": ["notes/**"]}}
    code, status = run_plan(repo, plan_text(tasks))
    assert code == 0, outline(status)
    ignore(repo, "notes")
    repo.write("notes", "the user's single notes file\n")
    before = checkout(repo)

    refused = plait(repo, "apply", status["run"])

    assert refused.returncode == 1, refused.stdout
    assert ": notes." in refused.stderr and "move them away" in refused.stderr.lower()
    assert checkout(repo) == before


# -- the user's own operation in progress, a detached HEAD ----------------------------


def _side_commit(repo: GitRepo, text: str) -> str:
    """A commit on branch `side` changing README.md to `text`; main stays checked out."""
    repo.git("checkout", "-q", "-b", "side")
    repo.write("README.md", text)
    side = repo.commit("side", "README.md")
    repo.git("checkout", "-q", "main")
    return side


def _merging(repo: GitRepo) -> str:
    _side_commit(repo, "# side\n")
    repo.git("merge", "-q", "-s", "ours", "--no-commit", "side")  # clean tree, MERGE_HEAD
    return "MERGE_HEAD"


def _cherry_picking(repo: GitRepo) -> str:
    side = _side_commit(repo, "# side\n")
    repo.write("README.md", "# main\n")
    repo.commit("main", "README.md")
    repo.git("cherry-pick", side, check=False)  # conflicts
    repo.git("checkout", "HEAD", "--", "README.md")  # resolved as ours: a clean tree
    return "CHERRY_PICK_HEAD"


def _reverting(repo: GitRepo) -> str:
    repo.write("README.md", "# one\n")
    first = repo.commit("one", "README.md")
    repo.write("README.md", "# two\n")
    repo.commit("two", "README.md")
    repo.git("revert", "--no-edit", first, check=False)  # conflicts
    repo.git("checkout", "HEAD", "--", "README.md")
    return "REVERT_HEAD"


def _rebasing(repo: GitRepo) -> str:
    repo.write("README.md", "# one\n")
    repo.commit("one", "README.md")
    repo.git("rebase", "--exec", "false", "HEAD~1", check=False)  # stops at the exec
    return "rebase-merge"


def _bisecting(repo: GitRepo) -> str:
    repo.git("bisect", "start")
    return "BISECT_START"


@pytest.mark.parametrize(
    ("start", "named"),
    [
        (_merging, "merge"),
        (_cherry_picking, "cherry-pick"),
        (_reverting, "revert"),
        (_rebasing, "rebase"),
        (_bisecting, "bisect"),
    ],
)
def test_apply_leaves_the_users_own_operation_in_progress_alone(
    repo: GitRepo, start: Callable[[GitRepo], str], named: str
) -> None:
    run = succeeded_run(repo)["run"]
    marker = repo.common_dir / start(repo)
    assert marker.exists()
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""
    kept = marker.read_bytes() if marker.is_file() else None
    before = checkout(repo)

    refused = plait(repo, "apply", run)

    assert refused.returncode == 1, refused.stdout
    assert f"a {named}" in refused.stderr and "in progress" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert marker.exists() and (kept is None or marker.read_bytes() == kept)
    assert checkout(repo) == before


def test_apply_in_a_linked_worktree_sees_the_merge_in_progress_there(
    repo: GitRepo, tmp_path: Path
) -> None:
    run = succeeded_run(repo)["run"]
    linked = GitRepo(tmp_path / "linked")
    repo.git("worktree", "add", "-q", "-b", "other", str(linked.path))
    linked.git("checkout", "-q", "-b", "theirs")
    linked.write("README.md", "# theirs\n")
    linked.commit("theirs", "README.md")
    linked.git("checkout", "-q", "other")
    linked.git("merge", "-q", "-s", "ours", "--no-commit", "theirs")
    marker = repo.common_dir / "worktrees" / "linked" / "MERGE_HEAD"
    assert marker.exists() and not (repo.common_dir / "MERGE_HEAD").exists()
    head = linked.head()

    refused = plait(linked, "apply", run)

    assert refused.returncode == 1, refused.stdout
    assert "a merge" in refused.stderr and "in progress" in refused.stderr
    assert marker.exists() and linked.head() == head

    # the main checkout has no merge of its own in progress: it applies
    applied = plait(repo, "apply", run)
    assert applied.returncode == 0, applied.stderr
    assert marker.exists()


def test_apply_on_a_detached_head_refuses_and_moves_no_branch(repo: GitRepo) -> None:
    run = succeeded_run(repo)["run"]
    main = repo.head("main")
    repo.git("checkout", "-q", "--detach")
    before = checkout(repo)

    refused = plait(repo, "apply", run)

    assert refused.returncode == 1, refused.stdout
    assert "detached" in refused.stderr and "check out the branch" in refused.stderr.lower()
    assert "applied" not in refused.stdout
    assert checkout(repo) == before and repo.head("main") == main

    repo.git("checkout", "-q", "main")  # as the refusal says
    assert plait(repo, "apply", run).returncode == 0
    assert repo.git("merge-base", "--is-ancestor", f"plait/{run}", "main", check=False) == ""


# -- clean --branches ----------------------------------------------------------------


def test_clean_branches_keeps_an_unapplied_result_as_a_snapshot(repo: GitRepo) -> None:
    status = succeeded_run(repo)
    run, result = status["run"], status["head"]

    cleaned = plait(repo, "clean", run, "--branches")

    assert cleaned.returncode == 0, cleaned.stderr
    assert repo.branches("plait/*") == []
    assert repo.rev(f"refs/plait/snapshots/{run}/_result") == result
    assert "1 new ref(s) under refs/plait/snapshots/" in cleaned.stdout
    # the work can still be applied by hand
    repo.git("merge", "-q", "--no-edit", f"refs/plait/snapshots/{run}/_result")
    assert (repo.path / "src" / "feature.py").read_text() == "ON = True\n"


def test_clean_branches_of_an_applied_run_keeps_nothing(repo: GitRepo) -> None:
    run = succeeded_run(repo, "--apply")["run"]

    cleaned = plait(repo, "clean", "--branches")

    assert cleaned.returncode == 0, cleaned.stderr
    assert repo.branches("plait/*") == []
    assert repo.git("for-each-ref", "refs/plait/") == ""
    assert "refs/plait/snapshots/" not in cleaned.stdout, run


def test_clean_counts_only_the_snapshot_refs_it_made(repo: GitRepo) -> None:
    failing = {"bad": {"do": ["write x.txt x"], "writes": ["x.txt"], "verify": ["false"]}}
    code, status = run_plan(repo, plan_text(failing))
    assert code == 1
    run = status["run"]
    unmerged = repo.head(f"plait/tasks/{run}/bad")

    first = plait(repo, "clean", run)
    assert first.returncode == 0, first.stderr
    assert "1 new ref(s)" in first.stdout
    assert repo.rev(f"refs/plait/snapshots/{run}/bad/branch") == unmerged

    # the result holds no task's work (main holds it): nothing new to keep
    second = plait(repo, "clean", run, "--branches")
    assert second.returncode == 0, second.stderr
    assert "new ref(s)" not in second.stdout
    assert repo.rev(f"refs/plait/snapshots/{run}/bad/branch") == unmerged
    assert repo.rev(f"refs/plait/snapshots/{run}/_result") is None
    assert repo.branches("plait/*") == []


def test_clean_never_overwrites_an_earlier_snapshot(repo: GitRepo) -> None:
    """A task branch cleaned twice (the run resumed in between) keeps both commits."""
    run = "20260101-000000-abcd"
    kept = f"refs/plait/snapshots/{run}/t/branch"

    def task_commit(text: str) -> str:
        repo.git("checkout", "-q", "-b", f"plait/tasks/{run}/t")
        repo.write("t.txt", text)
        commit = repo.commit(text, "t.txt")
        repo.git("checkout", "-q", "main")
        return commit

    first = task_commit("first")
    cleaned = plait(repo, "clean", run)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "1 new ref(s)" in cleaned.stdout and repo.rev(kept) == first

    second = task_commit("second")
    cleaned = plait(repo, "clean", run)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "1 new ref(s)" in cleaned.stdout
    assert repo.rev(kept) == first and repo.rev(f"{kept}-2") == second
    assert repo.branches("plait/*") == []


def test_apply_of_a_run_made_in_place_says_there_is_nothing_to_apply(repo: GitRepo) -> None:
    """With `isolation: none` the changes are in the checkout already: `run --apply`
    ended exit 2, "no result branch (was it cleaned?)", after a run that succeeded."""
    (repo.path / "plait.yaml").write_text(plan_text(TWO_TASKS, isolation="none"))
    ran = plait(repo, "run", "plait.yaml", "--apply", "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    data = json.loads(ran.stdout)
    assert data["applied"] is True and "apply_error" not in data
    assert "nothing to apply" in ran.stderr
    again = plait(repo, "apply", data["run"])
    assert again.returncode == 0 and "isolation: none" in again.stdout, again.stderr
