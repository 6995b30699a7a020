"""How plait starts one git process: fixed options, a scrubbed environment, argv only.

Every git command plait runs goes through `run_git`, which fixes the things that
must never vary: hooks and fsmonitor are off (a repository's hooks are code that
an agent may have written), automatic gc is off (it would prune objects that
parallel workspaces are still writing), the environment is scrubbed of the
variables that redirect git to another repository or index, and arguments are
an argv list, never a shell line. The typed commands and the repository's write
lock live in `plait.git`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from plait.errors import GIT_MISSING, EnvironmentProblem, GitError
from plait.procio import ExitWatch, PipeReader, PipeWriter, watcher
from plait.procspawn import ProgramNotFound, Started, spawn

_STOP_GRACE_S = 2.0  # a cancelled git command's time to clean up after SIGTERM

#: Options on every git command plait runs. Hooks run nothing (`/dev/null` is not
#: a directory), fsmonitor starts no daemon, gc and maintenance never start on
#: their own, and paths are printed verbatim.
GIT_OPTIONS: tuple[str, ...] = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "gc.auto=0",
    "-c",
    "maintenance.auto=false",
    "-c",
    "core.quotePath=false",
)

#: Variables that point git at another repository, index, object store or config,
#: or change how pathspecs and refs are read. A hook or alias that starts plait
#: (or an agent) inherits them from its own git, so they are always removed.
_SCRUBBED = frozenset(
    {
        "GIT_DIR",
        "GIT_INDEX_FILE",
        "GIT_WORK_TREE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_GRAFT_FILE",
        "GIT_SHALLOW_FILE",
        "GIT_REPLACE_REF_BASE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_QUARANTINE_PATH",
        "GIT_INDEX_VERSION",
        "GIT_LITERAL_PATHSPECS",
        "GIT_GLOB_PATHSPECS",
        "GIT_NOGLOB_PATHSPECS",
        "GIT_ICASE_PATHSPECS",
        "GIT_OPTIONAL_LOCKS",
        "GIT_EXTERNAL_DIFF",
        "GIT_DIFF_OPTS",
        "GIT_EDITOR",
        "GIT_SEQUENCE_EDITOR",
        "GIT_PAGER",
        "GIT_REFLOG_ACTION",
        "GIT_ATTR_SOURCE",
    }
)
_SCRUBBED_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_", "GIT_TRACE")


def scrubbed_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without git's redirecting variables."""
    source = os.environ if base is None else base
    return {
        key: value
        for key, value in source.items()
        if key not in _SCRUBBED and not key.startswith(_SCRUBBED_PREFIXES)
    }


@dataclass(frozen=True)
class GitResult:
    """What one git command printed, and how it ended."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _decode(data: bytes) -> str:
    # surrogateescape: a path that is not UTF-8 survives the round trip to argv
    return data.decode("utf-8", errors="surrogateescape")


async def run_git(
    *args: str,
    cwd: Path,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    readonly: bool = False,
) -> GitResult:
    """Run `git <args>` in `cwd` and wait for it.

    `env` adds to the scrubbed environment (it may set GIT_INDEX_FILE on
    purpose). `readonly` sets GIT_OPTIONAL_LOCKS=0 so queries such as
    `status` never take the index lock or rewrite the index. With `check`,
    a non-zero exit raises GitError.
    """
    child_env = scrubbed_env()
    child_env["GIT_TERMINAL_PROMPT"] = "0"
    # `refs/replace/` (an agent can write it) must not swap the objects plait
    # merges for others. The variable, because merge-tree ignores
    # `-c core.useReplaceRefs=false`.
    child_env["GIT_NO_REPLACE_OBJECTS"] = "1"
    if readonly:
        child_env["GIT_OPTIONAL_LOCKS"] = "0"
    if env:
        child_env.update(env)
    if not os.path.isdir(cwd):  # as starting a program in a missing directory fails
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(cwd))
    argv = ["git", "-C", os.fspath(cwd), *GIT_OPTIONS, *args]
    try:
        code, out, err = await _communicate(argv, child_env, input)
    except ProgramNotFound as exc:
        raise EnvironmentProblem(GIT_MISSING) from exc
    result = GitResult(code, _decode(out), _decode(err))
    if check and not result.ok:
        raise GitError(list(args), result.returncode, result.stderr)
    return result


async def _communicate(
    argv: list[str], env: Mapping[str, str], input: bytes | None
) -> tuple[int, bytes, bytes]:
    """Run `argv`, feed it `input`, and return its exit code, stdout and stderr.

    On the same footing as agents (`plait.proc`): `posix_spawn` from plait's own
    directory (hence `git -C`), the exit seen through a pidfd and the pipes read on
    the loop. `asyncio.create_subprocess_exec` costs about twice as much per command
    on Python 3.11 (a `fork`, and a thread started per child to wait for it), and a
    run of quick tasks starts thousands of git commands. If the caller is cancelled,
    git gets SIGTERM (it removes its lock files on that), then SIGKILL.
    """
    loop = asyncio.get_running_loop()
    watch = watcher(loop)
    opened: list[int] = []

    def pipe() -> tuple[int, int]:
        ends = os.pipe2(os.O_CLOEXEC)
        opened.extend(ends)
        return ends

    try:
        in_r, in_w = pipe() if input is not None else (subprocess.DEVNULL, -1)
        out_r, out_w = pipe()
        err_r, err_w = pipe()
        proc = spawn(argv, None, env, in_r, out_w, err_w)
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    for fd in (in_r, out_w, err_w):  # the child holds its own copies now
        if fd in opened:
            os.close(fd)
    for fd in (in_w, out_r, err_r):
        if fd in opened:
            os.set_blocking(fd, False)
    out, err = bytearray(), bytearray()
    exit_watch = ExitWatch(watch, proc)
    readers = (PipeReader(watch, out_r, out.extend), PipeReader(watch, err_r, err.extend))
    writer = PipeWriter(watch, in_w, input) if input is not None else None
    try:
        # asyncio.wait, not gather: a cancelled caller must not cancel these futures,
        # which `_stop` still waits on.
        await asyncio.wait([exit_watch.exited, *(r.eof for r in readers)])
    except BaseException:
        await _stop(proc, exit_watch.exited)
        raise
    finally:
        for reader in readers:
            reader.close()
        if writer is not None:
            writer.close()
        exit_watch.close()
    return proc.wait(), bytes(out), bytes(err)


async def _stop(proc: Started, exited: asyncio.Future[None]) -> None:
    """End a git command whose caller gave up on it, and reap it.

    SIGTERM to its group first (git removes its lock files on it), SIGKILL if it is
    still there after a grace period. The loop runs meanwhile (the pipes keep being
    read); cancelled again while waiting, it kills at once.
    """
    try:
        _signal_group(proc, signal.SIGTERM)
        if not await _exited(exited, _STOP_GRACE_S):
            _signal_group(proc, signal.SIGKILL)
            await _exited(exited, _STOP_GRACE_S)
    finally:
        if not exited.done():
            _signal_group(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):  # stuck in the kernel: let go
            proc.wait(timeout=0 if exited.done() else _STOP_GRACE_S)


async def _exited(exited: asyncio.Future[None], timeout: float) -> bool:
    if not exited.done():
        await asyncio.wait([exited], timeout=timeout)
    return exited.done()


def _signal_group(proc: Started, sig: int) -> None:
    """Signal the command's process group; only before it is reaped (its id could be
    reused after)."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
