"""Typed git commands on one repository, behind its one write lock.

`Git` is a repository: queries (rev-parse, refs, worktrees, diffs, in-memory
merges), object writes, and ref and worktree updates, each parsed into plain
values. Every command goes through `plait.gitrun.run_git`, which fixes the
options and environment no command may vary. Commands that change the shared
git dir (worktree add/remove, branch and ref updates, config) are made under
`Git.write_lock`: concurrent `git worktree add` fails 20-40% of the time at 16 at
once without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from plait.errors import GitError, NotARepository
from plait.gitrun import GitResult, run_git

ZERO_OID = "0" * 40

#: The identity plait commits with when the environment and config have none.
FALLBACK_NAME = "plait"
FALLBACK_EMAIL = "plait@localhost"


@dataclass(frozen=True)
class WorktreeInfo:
    """One entry of `git worktree list`."""

    path: Path
    head: str | None  # None for a bare entry
    branch: str | None  # "refs/heads/..." or None when detached
    bare: bool = False
    locked: bool = False
    prunable: bool = False


@dataclass(frozen=True)
class MergeTree:
    """The result of `git merge-tree --write-tree`: a tree, and what conflicted."""

    tree: str
    conflicts: tuple[str, ...]  # paths with conflicts, sorted
    messages: str  # git's informational and conflict messages

    @property
    def clean(self) -> bool:
        return not self.conflicts


def status_paths(output: str) -> list[str]:
    """Paths from `git status --porcelain=v1 -z` (both sides of a rename)."""
    return [path for _, path in status_entries(output)]


def status_entries(output: str) -> list[tuple[str, str]]:
    """(XY code, path) pairs from `git status --porcelain=v1 -z` (both sides of a
    rename, each with the rename's code); "??" is an untracked path."""
    fields = output.split("\0")
    entries: list[tuple[str, str]] = []
    i = 0
    while i < len(fields):
        record = fields[i]
        i += 1
        if len(record) < 4:
            continue
        entries.append((record[:2], record[3:]))
        if record[0] in "RC":  # a rename or copy: the source path follows
            if i < len(fields) and fields[i]:
                entries.append((record[:2], fields[i]))
            i += 1
    return entries


class RefLedger:
    """The values plait itself gave refs, so that a move by anyone else shows.

    Every ref write of plait's is recorded here: while it runs (either the old or the
    new value may be seen) and once done (the value written; None: deleted). A ref
    that changed to a value the ledger does not vouch for was moved by someone else.
    `on_foreign` callbacks hear of moves found elsewhere (the merge queue's branch).
    """

    def __init__(self) -> None:
        self._values: dict[str, str | None] = {}
        self._pending: dict[str, list[str | None]] = {}
        self.on_foreign: list[Callable[[str, str], None]] = []

    @contextlib.contextmanager
    def writing(self, ref: str, value: str | None) -> Iterator[None]:
        """A write of `value` to `ref` is under way for the length of the block."""
        pending = self._pending.setdefault(ref, [])
        pending.append(value)
        try:
            yield
        finally:
            pending.remove(value)
            if not pending:
                del self._pending[ref]

    def wrote(self, ref: str, value: str | None) -> None:
        """plait set `ref` to `value` (None: deleted it)."""
        self._values[ref] = value

    def knows(self, ref: str) -> bool:
        """True if plait wrote `ref` in this process."""
        return ref in self._values

    def expected(self, ref: str) -> str | None:
        """The value plait last gave `ref` (None: deleted); only for a ref it `knows`."""
        return self._values[ref]

    def vouches(self, ref: str, value: str | None) -> bool:
        """True if `value` is what plait wrote to `ref` or is writing to it now."""
        if ref in self._values and self._values[ref] == value:
            return True
        return value in self._pending.get(ref, ())

    def foreign(self, ref: str, detail: str) -> None:
        """Tell the listeners that `ref` was found moved by someone else (and restored)."""
        for listener in list(self.on_foreign):
            listener(ref, detail)


class Git:
    """A repository, and the one lock that every write to its shared git dir goes through."""

    def __init__(self, toplevel: Path, common_dir: Path) -> None:
        self.toplevel = toplevel
        self.common_dir = common_dir
        self.write_lock = asyncio.Lock()
        self.ledger = RefLedger()
        self._identity: dict[str, str] | None = None

    @classmethod
    async def discover(cls, path: Path) -> Git:
        """The repository whose working tree holds `path` (NotARepository if none)."""
        probe = cls(path, path)
        result = await probe.run(
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-common-dir",
            cwd=path,
            check=False,
            readonly=True,
        )
        lines = result.stdout.splitlines()
        if not result.ok or len(lines) != 2:
            reason = result.stderr.strip() or "no working tree"
            raise NotARepository(f"{path} is not inside a git working tree ({reason})")
        return cls(Path(lines[0]), Path(lines[1]))

    def __repr__(self) -> str:
        return f"Git({str(self.toplevel)!r})"

    async def run(
        self,
        *args: str,
        cwd: Path | None = None,
        input: bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        readonly: bool = False,
    ) -> GitResult:
        """Run `git <args>` in `cwd` (default: the top level); see `run_git`."""
        return await run_git(
            *args, cwd=cwd or self.toplevel, input=input, check=check, env=env, readonly=readonly
        )

    # -- identity -------------------------------------------------------------

    async def identity_env(self) -> dict[str, str]:
        """Author/committer variables to add so commits never fail for want of an identity.

        Empty when the environment or config already names one; else plait's own.
        """
        if self._identity is None:
            identity: dict[str, str] = {}
            for role in ("AUTHOR", "COMMITTER"):
                probe = await self.run("var", f"GIT_{role}_IDENT", check=False, readonly=True)
                if not probe.ok:
                    identity[f"GIT_{role}_NAME"] = FALLBACK_NAME
                    identity[f"GIT_{role}_EMAIL"] = FALLBACK_EMAIL
            self._identity = identity
        return dict(self._identity)

    # -- queries --------------------------------------------------------------

    async def rev_parse(self, ref: str, *, cwd: Path | None = None) -> str | None:
        """The object id `ref` names, or None if it names nothing."""
        result = await self.run(
            "rev-parse", "-q", "--verify", "--end-of-options", ref,
            cwd=cwd, check=False, readonly=True,
        )  # fmt: skip
        return result.stdout.strip() if result.ok else None

    async def rev_parse_commit(self, ref: str) -> str:
        """The commit `ref` names (tags peeled); GitError if it names none."""
        oid = await self.rev_parse(f"{ref}^{{commit}}")
        if oid is None:
            raise GitError(["rev-parse", "--verify", f"{ref}^{{commit}}"], 128,
                           f"{ref!r} does not name a commit")  # fmt: skip
        return oid

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True if `ancestor` is reachable from `descendant` (or equal to it)."""
        result = await self.run(
            "merge-base", "--is-ancestor", ancestor, descendant, check=False, readonly=True
        )
        if result.returncode in (0, 1):
            return result.returncode == 0
        raise GitError(["merge-base", "--is-ancestor", ancestor, descendant],
                       result.returncode, result.stderr)  # fmt: skip

    async def branch_exists(self, name: str) -> bool:
        """True if `refs/heads/<name>` exists."""
        return await self.rev_parse(f"refs/heads/{name}") is not None

    async def list_refs(self, *prefixes: str) -> dict[str, str]:
        """Every ref under the prefixes (e.g. "refs/heads/plait/"), mapped to its object id."""
        result = await self.run(
            "for-each-ref", "--format=%(objectname) %(refname)", *prefixes, readonly=True
        )
        refs: dict[str, str] = {}
        for line in result.stdout.splitlines():
            oid, _, name = line.partition(" ")
            refs[name] = oid
        return refs

    async def worktree_list(self) -> list[WorktreeInfo]:
        """Every worktree git knows of, the main one first."""
        result = await self.run("worktree", "list", "--porcelain", "-z", readonly=True)
        items: list[WorktreeInfo] = []
        for record in result.stdout.split("\0\0"):
            fields = [f for f in record.split("\0") if f]
            if not fields or not fields[0].startswith("worktree "):
                continue
            values: dict[str, str] = {}
            for item in fields:
                key, _, value = item.partition(" ")
                values[key] = value
            items.append(
                WorktreeInfo(
                    path=Path(values["worktree"]),
                    head=values.get("HEAD"),
                    branch=values.get("branch"),
                    bare="bare" in values,
                    locked="locked" in values,
                    prunable="prunable" in values,
                )
            )
        return items

    async def changed_paths(self, old: str, new: str) -> list[str]:
        """Paths that differ between two commits; a rename counts on both sides."""
        result = await self.run(
            "diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", "--no-textconv",
            old, new, "--", readonly=True,
        )  # fmt: skip
        return sorted({p for p in result.stdout.split("\0") if p})

    async def merge_tree(self, ours: str, theirs: str) -> MergeTree:
        """Merge two commits in memory (no checkout, no index); git computes the base."""
        args = ("merge-tree", "--write-tree", "-z", "--name-only", "--messages", ours, theirs)
        result = await self.run(*args, check=False)
        if result.returncode not in (0, 1):
            raise GitError(list(args), result.returncode, result.stderr)
        tree, _, rest = result.stdout.partition("\0")
        conflicts: list[str] = []
        messages = ""
        if result.returncode == 1:
            # -z --name-only: "<tree>\0<path>\0...<path>\0\0<messages>"
            names, _, messages = rest.partition("\0\0")
            conflicts = [n for n in names.split("\0") if n]
            if not conflicts:  # defensive: a conflict git reported without a path
                conflicts = ["(unknown path)"]
        return MergeTree(tree.strip(), tuple(sorted(set(conflicts))), _readable(messages))

    # -- objects (safe without the lock: object writes are atomic renames) -----

    async def commit_tree(self, tree: str, parents: Sequence[str], message: str) -> str:
        """A new commit of `tree` with `parents`; the message goes through stdin."""
        parent_args: list[str] = []
        for parent in parents:
            parent_args += ["-p", parent]
        result = await self.run(
            "commit-tree", tree, *parent_args, "-F", "-",
            input=message.encode("utf-8"), env=await self.identity_env(),
        )  # fmt: skip
        return result.stdout.strip()

    # -- writes to the shared git dir (each takes write_lock) ------------------

    async def update_ref(
        self, ref: str, new: str, old: str | None = None, *, message: str = "plait"
    ) -> bool:
        """Set `ref` to `new` if it is still at `old` (compare-and-swap).

        `old=None` updates unconditionally; `old=ZERO_OID` requires that `ref`
        does not exist yet. Returns False if the ref was elsewhere.
        """
        async with self.write_lock:
            return await self.update_ref_locked(ref, new, old, message=message)

    async def update_ref_locked(
        self, ref: str, new: str, old: str | None = None, *, message: str = "plait"
    ) -> bool:
        """`update_ref` for a caller that already holds `write_lock`."""
        args = ["update-ref", "-m", message, ref, new, *([old] if old is not None else [])]
        with self.ledger.writing(ref, new):
            result = await self.run(*args, check=False)
            if result.ok:
                self.ledger.wrote(ref, new)
                return True
        current = await self.rev_parse(ref)
        if old is not None and current != (None if old == ZERO_OID else old):
            return False
        raise GitError(args, result.returncode, result.stderr)

    async def delete_ref(self, ref: str, old: str | None = None) -> bool:
        """Delete `ref` if it is still at `old` (any value if None). False if it moved."""
        async with self.write_lock:
            return await self.delete_ref_locked(ref, old)

    async def delete_ref_locked(self, ref: str, old: str | None = None) -> bool:
        """`delete_ref` for a caller that already holds `write_lock`."""
        args = ["update-ref", "-d", ref, *([old] if old is not None else [])]
        with self.ledger.writing(ref, None):
            result = await self.run(*args, check=False)
            if result.ok:
                self.ledger.wrote(ref, None)
                return True
        current = await self.rev_parse(ref)
        if current is None:
            return True
        if old is not None and current != old:
            return False
        raise GitError(args, result.returncode, result.stderr)

    async def create_branch(self, name: str, start: str, *, force: bool = False) -> None:
        """Create branch `name` at `start` without upstream tracking."""
        ref = f"refs/heads/{name}"
        async with self.write_lock:
            oid = await self.rev_parse(f"{start}^{{commit}}")
            with self.ledger.writing(ref, oid):
                await self.run("branch", "--no-track", *(["--force"] if force else []), name, start)
                self.ledger.wrote(ref, oid)

    async def delete_refs(self, refs: Iterable[str]) -> None:
        """Delete many refs in one transaction (missing ones are ignored)."""
        refs = list(refs)
        lines = "".join(f"delete {ref}\n" for ref in refs)
        if lines:
            async with self.write_lock:
                with contextlib.ExitStack() as stack:
                    for ref in refs:
                        stack.enter_context(self.ledger.writing(ref, None))
                    await self.run("update-ref", "--stdin", input=lines.encode("utf-8"))
                    for ref in refs:
                        self.ledger.wrote(ref, None)

    async def worktree_prune(self) -> None:
        """Forget worktrees whose directories are gone."""
        async with self.write_lock:
            await self.run("worktree", "prune")


def _readable(messages: str) -> str:
    """merge-tree's -z message records as lines: "<n>\\0<paths…>\\0<type>\\0<text>\\0"."""
    fields = messages.split("\0")
    out: list[str] = []
    i = 0
    while i < len(fields):
        count = fields[i]
        if not count.isdigit():
            i += 1
            continue
        n = int(count)
        # skip the n paths and the conflict type; keep the human text
        text_index = i + n + 2
        if text_index < len(fields):
            out.append(fields[text_index].rstrip("\n"))
        i = text_index + 1
    return "\n".join(out)
